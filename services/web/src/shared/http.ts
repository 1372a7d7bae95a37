// HTTP for the pages: JSON in and out, the platform's error envelope
// ({code, message, type, details}), and polite retries under load: a 429 or 503 (or a
// network error) is retried with exponential backoff and full jitter, never sooner than the
// server's Retry-After, so a spike of phones does not turn into a storm of retries.

/** The error envelope every service answers with. */
export interface ApiErrorBody {
  code: string;
  message: string;
  type: string;
  details?: Record<string, unknown>;
}

/** A failed call: an HTTP answer with the envelope, or no answer at all (network). */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody | null,
    readonly network: boolean,
  ) {
    super(body?.message ?? (network ? "network error" : `HTTP ${status}`));
  }

  get code(): string {
    return this.body?.code ?? (this.network ? "NETWORK" : `HTTP_${this.status}`);
  }
}

export interface RetryPolicy {
  /** Attempts in all (1 = no retry). */
  attempts: number;
  /** First backoff, ms. */
  baseMs: number;
  /** Largest backoff, ms. */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 300, maxMs: 8_000 };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Full jitter: a random wait in [0, min(max, base·2^n)], at least Retry-After. */
export function backoffMs(attempt: number, policy: RetryPolicy, retryAfterSecs: number | null): number {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  const jittered = Math.floor(Math.random() * cap);
  return Math.max(jittered, (retryAfterSecs ?? 0) * 1000);
}

function retryAfter(resp: Response): number | null {
  const v = resp.headers.get("retry-after");
  if (v === null) return null;
  const secs = Number(v);
  return Number.isFinite(secs) && secs >= 0 ? secs : null;
}

/**
 * Sends the request `make()` builds (a fresh one per attempt: headers such as a signature
 * may change), retrying 429, 503 and network errors. Every other answer is returned: the
 * caller decides what a 4xx means.
 */
export async function sendWithRetry(
  make: () => Promise<Request> | Request,
  policy: RetryPolicy = DEFAULT_RETRY,
  onWait?: (ms: number, attempt: number) => void,
): Promise<Response> {
  let last: ApiFailure | null = null;
  for (let attempt = 0; attempt < policy.attempts; attempt++) {
    let resp: Response;
    try {
      resp = await fetch(await make());
    } catch {
      last = new ApiFailure(0, null, true);
      if (attempt + 1 < policy.attempts) {
        const wait = backoffMs(attempt, policy, null);
        onWait?.(wait, attempt + 1);
        await sleep(wait);
      }
      continue;
    }
    if (resp.status === 429 || resp.status === 503) {
      const body = (await resp.json().catch(() => null)) as ApiErrorBody | null;
      last = new ApiFailure(resp.status, body, false);
      if (attempt + 1 < policy.attempts) {
        const wait = backoffMs(attempt, policy, retryAfter(resp));
        onWait?.(wait, attempt + 1);
        await sleep(wait);
      }
      continue;
    }
    return resp;
  }
  throw last ?? new ApiFailure(0, null, true);
}

/** Reads a JSON answer: the body on 2xx, an ApiFailure otherwise. */
export async function jsonOrFailure<T>(resp: Response): Promise<T> {
  const body = (await resp.json().catch(() => null)) as unknown;
  if (resp.ok) return body as T;
  throw new ApiFailure(resp.status, body as ApiErrorBody | null, false);
}

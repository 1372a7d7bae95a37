// The reconciliation service's console API, same origin, relative `/v1/...` paths, the
// session in an HttpOnly cookie (credentials: same-origin). Every write carries the
// session's CSRF token (synchronizer token, kept in memory only: it is never in a cookie
// nor in storage). Reads retry 429, 503 and network errors through the shared
// sendWithRetry; writes are sent once, since a confirmation retried after it took effect
// would be refused as an invalid transition. A 401 about the session sends the page back to
// sign-in through the handler the app registers.

import { ApiFailure, jsonOrFailure, sendWithRetry, type RetryPolicy } from "../shared/http";
import type {
  AuditEntry,
  BatchDetail,
  BatchMerchants,
  Check,
  Officer,
  Ops,
  Overview,
  PeriodSummary,
  Redemption,
  Review,
  Run,
  Session,
  SettleResult,
} from "./types";

/** The 401 codes that mean "sign in again". */
export const SESSION_CODES = ["SESSION_REQUIRED", "SESSION_EXPIRED"];

const ONCE: RetryPolicy = { attempts: 1, baseMs: 0, maxMs: 0 };
const READ: RetryPolicy = { attempts: 3, baseMs: 300, maxMs: 3_000 };

let csrfToken: string | null = null;
let onSessionLost: (code: string) => void = () => {};

/** Registers what to do when the server says the session is gone. */
export function setSessionLostHandler(fn: (code: string) => void): void {
  onSessionLost = fn;
}

/** Keeps (or forgets) the CSRF token of the session every write must carry. */
export function adoptSession(session: Session | null): void {
  csrfToken = session?.csrf_token ?? null;
}

type Method = "GET" | "POST" | "DELETE";

interface CallOptions {
  method?: Method;
  body?: unknown;
  /** false: a 401 does not send the page to sign-in (the first session probe). */
  watchSession?: boolean;
}

async function call<T>(path: string, opts: CallOptions = {}): Promise<T> {
  const method = opts.method ?? "GET";
  const write = method !== "GET";
  const resp = await sendWithRetry(() => {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (write) {
      headers["Content-Type"] = "application/json";
      if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
    }
    return new Request(path, {
      method,
      headers,
      body: write ? JSON.stringify(opts.body ?? {}) : null,
      credentials: "same-origin",
      cache: "no-store",
    });
  }, write ? ONCE : READ);
  if (resp.status === 204) return undefined as T;
  try {
    return await jsonOrFailure<T>(resp);
  } catch (e) {
    if (
      opts.watchSession !== false &&
      e instanceof ApiFailure &&
      e.status === 401 &&
      SESSION_CODES.includes(e.code)
    ) {
      csrfToken = null;
      onSessionLost(e.code);
    }
    throw e;
  }
}

const enc = encodeURIComponent;

/** The current session; `401 SESSION_REQUIRED`/`SESSION_EXPIRED` when there is none. */
export const currentSession = (watch: boolean) =>
  call<Session>("/v1/session", { watchSession: watch });

export const signIn = (apiKey: string) =>
  call<Session>("/v1/session", { method: "POST", body: { api_key: apiKey }, watchSession: false });

/** The dev identity provider's officers; a 404 when it is off. */
export const devOfficers = () =>
  call<{ officers: Officer[] }>("/v1/session/dev", { watchSession: false });

export const devSignIn = (name: string) =>
  call<Session>("/v1/session/dev", { method: "POST", body: { name }, watchSession: false });

export const signOut = () => call<void>("/v1/session", { method: "DELETE", watchSession: false });

export const overview = (days: number) => call<Overview>(`/v1/overview?days=${days}`);

export const periods = () => call<{ periods: PeriodSummary[] }>("/v1/periods");

export const run = (id: number) => call<Run>(`/v1/runs/${id}`);

export const batch = (id: number) => call<BatchDetail>(`/v1/batches/${id}`);

export const batchMerchants = (id: number) => call<BatchMerchants>(`/v1/batches/${id}/merchants`);

export const confirmBatch = (id: number, to: string) =>
  call<BatchDetail>(`/v1/batches/${id}/confirm`, { method: "POST", body: { to } });

export const settle = (from: string, to: string) =>
  call<SettleResult>("/v1/settlements", { method: "POST", body: { from, to } });

export const review = (period: string) => call<Review>(`/v1/review?period=${enc(period)}`);

export const redemption = (id: string) => call<Redemption>(`/v1/redemptions/${enc(id)}`);

export const ops = () => call<Ops>("/v1/ops");

export const runCheck = () => call<Check>("/v1/checks", { method: "POST", body: {} });

export const audit = (limit: number) => call<{ entries: AuditEntry[] }>(`/v1/audit?limit=${limit}`);

/** Where a report file of `period` is downloaded from (a plain same-origin GET link). */
export const fileUrl = (period: string, name: string) => `/v1/periods/${enc(period)}/files/${enc(name)}`;

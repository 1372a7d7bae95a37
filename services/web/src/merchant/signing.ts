// Signed terminal requests, exactly like a hardware terminal: X-Terminal-Key, X-Timestamp,
// X-Nonce and X-Signature = hex HMAC-SHA256(key, METHOD\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\n
// hex(SHA-256(body))) over the exact bytes sent. Every attempt (the shared retry on
// 429/503/network calls `make()` each time) gets a fresh timestamp, nonce and signature. A
// 401 STALE_TIMESTAMP adopts the server's clock and is retried once; any other 401 means the
// key is no longer valid (revoked or rotated): the terminal must be paired again.

import { toHex } from "../shared/base64url";
import { type ApiErrorBody, sendWithRetry } from "../shared/http";
import { hmac, sha256 } from "../shared/keystore";

/** What signs: the non-extractable key and its id. */
export interface Credentials {
  key: CryptoKey;
  key_id: string;
}

const encoder = new TextEncoder();

const OFFSET_KEY = "till-clock-offset";

/**
 * Seconds to add to the local clock to get the server's (from a STALE_TIMESTAMP answer),
 * remembered across reloads (not a secret) so a till with a wrong clock does not pay a
 * refused round trip after every reload.
 */
let offsetSecs = readOffset();

function readOffset(): number {
  try {
    const v = Number(localStorage.getItem(OFFSET_KEY));
    return Number.isSafeInteger(v) ? v : 0;
  } catch {
    return 0;
  }
}

/** Now, in Unix seconds, on the server's clock as far as we know it. */
export function nowSecs(): number {
  return Math.floor(Date.now() / 1000) + offsetSecs;
}

/** Now, in ms, on the server's clock as far as we know it. */
export function nowMs(): number {
  return Date.now() + offsetSecs * 1000;
}

export function adoptServerTime(serverTime: number): void {
  offsetSecs = serverTime - Math.floor(Date.now() / 1000);
  try {
    localStorage.setItem(OFFSET_KEY, String(offsetSecs));
  } catch {
    // memory only
  }
}

/** 32 lowercase hex digits of 16 random bytes. */
export function newNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

/** The string that is signed. */
export function canonical(
  method: string,
  pathAndQuery: string,
  timestamp: number,
  nonce: string,
  bodySha256Hex: string,
): string {
  return `${method.toUpperCase()}\n${pathAndQuery}\n${timestamp}\n${nonce}\n${bodySha256Hex}`;
}

/** The four signature headers for one attempt. */
export async function signatureHeaders(
  cred: Credentials,
  method: string,
  pathAndQuery: string,
  bodySha256Hex: string,
): Promise<Record<string, string>> {
  const timestamp = nowSecs();
  const nonce = newNonce();
  const mac = await hmac(
    cred.key,
    encoder.encode(canonical(method, pathAndQuery, timestamp, nonce, bodySha256Hex)),
  );
  return {
    "x-terminal-key": cred.key_id,
    "x-timestamp": String(timestamp),
    "x-nonce": nonce,
    "x-signature": toHex(mac),
  };
}

/** The server no longer accepts this terminal's key (a 401 other than a stale clock). */
export class TerminalRejected extends Error {
  constructor(readonly code: string) {
    super(`terminal rejected: ${code}`);
  }
}

let onRejected: ((code: string) => void) | null = null;

/** Who hears that the key was refused (the app: back to pairing). */
export function setRejectedHandler(handler: ((code: string) => void) | null): void {
  onRejected = handler;
}

/**
 * Sends a signed request to `pathAndQuery` (absolute, e.g. `/v1/redemptions?date=…`) with
 * `body` serialised once as JSON (or no body at all when undefined) and returns the answer
 * for the caller to read; 429/503/network are retried by the shared policy.
 *
 * @throws TerminalRejected on a 401 other than a (first) STALE_TIMESTAMP; ApiFailure when
 *   every attempt failed on the network or was refused as busy.
 */
export async function signedFetch(
  cred: Credentials,
  method: string,
  pathAndQuery: string,
  body?: unknown,
  extraHeaders?: Record<string, string>,
  onWait?: (ms: number, attempt: number) => void,
): Promise<Response> {
  const upper = method.toUpperCase();
  const bytes = body === undefined ? null : encoder.encode(JSON.stringify(body));
  const bodyHash = toHex(await sha256(bytes ?? new Uint8Array(0)));
  for (let staleRetried = false; ; staleRetried = true) {
    const resp = await sendWithRetry(async () => {
      const headers = new Headers(extraHeaders);
      for (const [name, value] of Object.entries(
        await signatureHeaders(cred, upper, pathAndQuery, bodyHash),
      )) {
        headers.set(name, value);
      }
      if (bytes !== null) headers.set("content-type", "application/json");
      const init: RequestInit = {
        method: upper,
        headers,
        cache: "no-store",
        credentials: "same-origin",
      };
      if (bytes !== null) init.body = bytes;
      return new Request(pathAndQuery, init);
    }, undefined, onWait);
    if (resp.status !== 401) return resp;
    const err = (await resp.json().catch(() => null)) as ApiErrorBody | null;
    const code = err?.code ?? "HTTP_401";
    if (code === "STALE_TIMESTAMP" && !staleRetried) {
      const serverTime = Number(err?.details?.["server_time"]);
      if (Number.isSafeInteger(serverTime) && serverTime > 0) {
        adoptServerTime(serverTime);
        continue;
      }
    }
    onRejected?.(code);
    throw new TerminalRejected(code);
  }
}

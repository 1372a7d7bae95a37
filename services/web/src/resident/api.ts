// The issuance service's residents' API, same origin, absolute `/v1/...` paths. Every call
// carries the identity token; 429, 503 and network errors are retried by the shared
// sendWithRetry (backoff with full jitter, honouring Retry-After). A 401 about the identity
// sends the page back to sign-in through the handler the app registers.

import { toHex } from "../shared/base64url";
import { ApiFailure, jsonOrFailure, sendWithRetry, type RetryPolicy } from "../shared/http";
import { identity } from "./session";
import type {
  Campaign,
  ClaimResult,
  CodeKeyWire,
  History,
  MyLottery,
  MyVoucher,
  Registration,
  ServerCode,
  TradeInApplication,
  TradeInPapers,
  TradeInScheme,
  UploadedDocument,
} from "./types";

/** The 401 codes that mean "sign in again". */
export const IDENTITY_CODES = ["MISSING_IDENTITY", "IDENTITY_EXPIRED", "IDENTITY_INVALID"];

/** One attempt only: for background polls, which simply try again at their next tick. */
export const ONCE: RetryPolicy = { attempts: 1, baseMs: 0, maxMs: 0 };

/** A claim in a rush: a few more attempts, spread wider. */
export const CLAIM_RETRY: RetryPolicy = { attempts: 6, baseMs: 500, maxMs: 8_000 };

let onIdentityLost: (code: string) => void = () => {};

/** Registers what to do when the server refuses the identity. */
export function setIdentityLostHandler(fn: (code: string) => void): void {
  onIdentityLost = fn;
}

interface CallOptions {
  method?: "GET" | "POST" | "PUT";
  body?: unknown;
  /** A raw body (an uploaded file) sent with its own Content-Type instead of JSON. */
  raw?: { blob: Blob; type: string };
  policy?: RetryPolicy;
  onWait?: (ms: number, attempt: number) => void;
}

async function call<T>(path: string, opts: CallOptions = {}): Promise<{ status: number; body: T }> {
  const resp = await sendWithRetry(
    () => {
      const headers: Record<string, string> = { Accept: "application/json" };
      const token = identity();
      if (token) headers.Authorization = `Bearer ${token}`;
      if (opts.raw) headers["Content-Type"] = opts.raw.type;
      else if (opts.body !== undefined) headers["Content-Type"] = "application/json";
      return new Request(path, {
        method: opts.method ?? "GET",
        headers,
        body: opts.raw ? opts.raw.blob : opts.body === undefined ? null : JSON.stringify(opts.body),
        cache: "no-store",
      });
    },
    opts.policy,
    opts.onWait,
  );
  try {
    return { status: resp.status, body: await jsonOrFailure<T>(resp) };
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 401 && IDENTITY_CODES.includes(e.code)) onIdentityLost(e.code);
    throw e;
  }
}

/** A development sign-in (404 NOT_FOUND when the development identity provider is off). */
export async function devSignIn(person_id: string, home: number, real_name_level: number) {
  const r = await call<{ token: string; expires_at: string; dev: boolean }>("/v1/dev/sign-in", {
    method: "POST",
    body: { person_id, home, real_name_level },
    policy: { attempts: 3, baseMs: 300, maxMs: 2_000 },
  });
  return r.body;
}

export async function campaigns(policy?: RetryPolicy): Promise<Campaign[]> {
  return (await call<Campaign[]>("/v1/campaigns", { policy })).body;
}

/**
 * Claims a voucher with `claimId`, retried with the same id (the server makes the retry
 * idempotent and answers 200 `replayed`).
 */
export async function claim(campaignId: number, claimId: string, onWait: CallOptions["onWait"]): Promise<ClaimResult> {
  return (
    await call<ClaimResult>(`/v1/campaigns/${campaignId}/claims`, {
      method: "POST",
      body: { claim_id: claimId },
      policy: CLAIM_RETRY,
      onWait,
    })
  ).body;
}

export async function myVouchers(policy?: RetryPolicy): Promise<MyVoucher[]> {
  return (await call<MyVoucher[]>("/v1/me/vouchers", { policy })).body;
}

const voucherPath = (id: string) => `/v1/me/vouchers/${encodeURIComponent(id)}`;

export async function serverCode(voucherId: string): Promise<ServerCode> {
  return (await call<ServerCode>(`${voucherPath(voucherId)}/code`, { policy: ONCE })).body;
}

export async function codeKey(voucherId: string): Promise<CodeKeyWire> {
  return (await call<CodeKeyWire>(`${voucherPath(voucherId)}/code-key`, { policy: { attempts: 2, baseMs: 500, maxMs: 2_000 } })).body;
}

export async function revokeCodeKey(voucherId: string): Promise<CodeKeyWire> {
  return (await call<CodeKeyWire>(`${voucherPath(voucherId)}/code-key/revoke`, { method: "POST" })).body;
}

export async function history(): Promise<History> {
  return (await call<History>("/v1/me/history")).body;
}

// ---------------------------------------------------------------- lottery rounds (报名摇号)

const roundPath = (campaignId: number, roundNo: number) => `/v1/campaigns/${campaignId}/rounds/${roundNo}`;

/** Registers for a lottery round; idempotent on the server (a repeat answers the same entry). */
export async function register(campaignId: number, roundNo: number, onWait: CallOptions["onWait"]): Promise<Registration> {
  return (
    await call<Registration>(`${roundPath(campaignId, roundNo)}/registrations`, {
      method: "POST",
      policy: CLAIM_RETRY,
      onWait,
    })
  ).body;
}

/** My entry and result in a lottery round, with the round's public state. */
export async function myLottery(campaignId: number, roundNo: number, policy?: RetryPolicy): Promise<MyLottery> {
  return (await call<MyLottery>(`${roundPath(campaignId, roundNo)}/registrations/me`, { policy })).body;
}

/** The published draw (public JSON: seed, entries' hashes, winners), for `issuance verify-draw`. */
export function drawUrl(campaignId: number, roundNo: number): string {
  return `${roundPath(campaignId, roundNo)}/draw`;
}

// ---------------------------------------------------------------- car trade-in (汽车以旧换新)

export async function tradeInSchemes(): Promise<TradeInScheme[]> {
  return (await call<TradeInScheme[]>("/v1/trade-in/schemes")).body;
}

/** Uploads one paper's bytes (stored by SHA-256, so a retry stores nothing twice). */
export async function uploadDocument(blob: Blob, type: string): Promise<UploadedDocument> {
  return (await call<UploadedDocument>("/v1/trade-in/documents", { method: "POST", raw: { blob, type } })).body;
}

/** Applies; `applicationId` is made once per application and reused on every retry. */
export async function submitTradeIn(applicationId: string, programId: number, papers: TradeInPapers): Promise<TradeInApplication> {
  return (
    await call<TradeInApplication>("/v1/trade-in/applications", {
      method: "POST",
      body: { application_id: applicationId, program_id: programId, ...papers },
    })
  ).body;
}

/** The amended papers of an application that waits for more. */
export async function amendTradeIn(id: string, papers: TradeInPapers): Promise<TradeInApplication> {
  return (
    await call<TradeInApplication>(`/v1/trade-in/applications/${encodeURIComponent(id)}`, { method: "PUT", body: papers })
  ).body;
}

export async function myTradeIns(policy?: RetryPolicy): Promise<TradeInApplication[]> {
  return (await call<TradeInApplication[]>("/v1/me/trade-in/applications", { policy })).body;
}

/** A claim id: crypto.randomUUID where the WebView has it (Chrome 92+, Safari 15.4+), else v4 by hand. */
export function newClaimId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

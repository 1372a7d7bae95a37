// Identifiers of a sale, Asia/Shanghai dates and times, and errors in plain words.

import { toHex } from "../shared/base64url";
import { ApiFailure } from "../shared/http";
import { hasText, t } from "./i18n";
import { TerminalRejected, nowMs } from "./signing";

/** A fresh Idempotency-Key (one per sale). */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const SHANGHAI_OFFSET_MS = 8 * 3600 * 1000; // UTC+8, no daylight saving

/** The wall clock of Asia/Shanghai at `ms` as an ISO-like string "YYYY-MM-DDTHH:MM:SS". */
function shanghaiIso(ms: number): string {
  return new Date(ms + SHANGHAI_OFFSET_MS).toISOString().slice(0, 19);
}

/** Today in Asia/Shanghai, "YYYY-MM-DD" (on the server's clock as far as we know it). */
export function todayShanghai(): string {
  return shanghaiIso(nowMs()).slice(0, 10);
}

/** A merchant order reference, e.g. `T20260501100000-ab12cd` (one per sale). */
export function newOrderRef(): string {
  const stamp = shanghaiIso(nowMs()).replace(/[-T:]/g, "");
  return `T${stamp}-${toHex(crypto.getRandomValues(new Uint8Array(3)))}`;
}

/** One per refund attempt (reused when that attempt is retried). */
export function newReversalRef(): string {
  return `R${shanghaiIso(nowMs()).replace(/[-T:]/g, "")}-${toHex(crypto.getRandomValues(new Uint8Array(4)))}`;
}

/** "HH:MM:SS" in Asia/Shanghai of an RFC 3339 instant ("" when unreadable). */
export function timeShanghai(iso: string | null | undefined): string {
  if (!iso) return "";
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? shanghaiIso(ms).slice(11, 19) : "";
}

/** "MM-DD HH:MM" in Asia/Shanghai. */
export function dateTimeShanghai(iso: string | null | undefined): string {
  if (!iso) return "";
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? shanghaiIso(ms).slice(5, 16).replace("T", " ") : "";
}

/** A decline reason in plain words. */
export function declineText(reason: string, message: string): string {
  const key = `decline.${reason}`;
  return hasText(key) ? t(key) : t("decline.other", { message: message || reason });
}

/** A notice on an approved sale in plain words (null when none). */
export function noticeText(notice: string | null | undefined): string | null {
  if (!notice) return null;
  const key = `notice.${notice}`;
  return hasText(key) ? t(key) : notice;
}

/** An error in plain words. */
export function errorText(err: unknown): string {
  if (err instanceof TerminalRejected) return t("pair.revoked");
  if (err instanceof ApiFailure) {
    if (err.network) return t("error.NETWORK");
    if (err.status === 429 || err.status === 503) return t("error.BUSY");
    const code = err.code;
    if (code === "INVALID_FIELD" || code === "MALFORMED_JSON") {
      return t("error.INVALID_FIELD", { message: err.body?.message ?? code });
    }
    const key = `error.${code}`;
    if (hasText(key)) return t(key);
    return t("error.other", { code });
  }
  return t("error.other", { code: err instanceof Error ? err.message : String(err) });
}

/** The code of an error, for data attributes and tests. */
export function errorCode(err: unknown): string {
  if (err instanceof TerminalRejected) return err.code;
  if (err instanceof ApiFailure) return err.code;
  return "ERROR";
}

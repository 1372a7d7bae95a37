// The redemption service's API as the till uses it: pairing (unsigned, once), then only
// signed terminal requests. Answers are typed as the service writes them; money is integer
// fen throughout.

import { fromHex } from "../shared/base64url";
import { ApiFailure, type ApiErrorBody, jsonOrFailure, sendWithRetry } from "../shared/http";
import * as keystore from "../shared/keystore";
import { type Credentials, signedFetch } from "./signing";

export interface Merchant {
  id: string;
  name: string;
  category: string;
  city: number | string;
  county: number | string | null;
}

/** What is kept in IndexedDB under `terminal` (the key is a non-extractable CryptoKey). */
export interface StoredTerminal extends Credentials {
  terminal_id: string;
  merchant: Merchant;
}

export interface Decline {
  outcome: "declined";
  reason: string;
  message: string;
}

export interface Quote {
  outcome: "quote";
  discount_fen: number;
  to_pay_fen: number;
  notice: string | null;
  voucher: { voucher_id: string; campaign_id: number; rule: unknown; valid_until: string };
}

export interface RedemptionView {
  outcome: "approved";
  redemption_id: string;
  /** approved, held, captured, voided, expired */
  status: string;
  voucher_id: string;
  campaign_id: number;
  order_ref: string;
  order_amount_fen: number;
  discount_fen: number;
  to_pay_fen: number;
  reversed_fen: number;
  notice: string | null;
  cap_exhausted: boolean;
  hold_expires_at: string | null;
  created_at: string;
}

export interface ReversalView {
  outcome: "reversed" | "nothing_to_reverse";
  reversal_id: string | null;
  redemption_id: string;
  reversal_ref: string;
  refund_amount_fen: number;
  discount_reversed_fen: number;
  restored: boolean;
  created_at: string;
}

export interface DayReport {
  date: string;
  count: number;
  order_amount_fen: number;
  discount_fen: number;
  reversed_fen: number;
  net_discount_fen: number;
  redemptions: RedemptionView[];
}

export interface CheckoutBody {
  code: string;
  order_amount_fen: number;
  order_ref: string;
}

export type Mode = "sale" | "hold";

const STORE_NAME = "terminal";
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The paired terminal of this browser, if any. */
export async function loadTerminal(): Promise<StoredTerminal | null> {
  const stored = await keystore.get<StoredTerminal>(STORE_NAME);
  return stored && stored.key instanceof CryptoKey && stored.key_id ? stored : null;
}

export function forgetTerminal(): Promise<undefined> {
  return keystore.remove(STORE_NAME);
}

export class BadSecret extends Error {}

/**
 * Redeems a one-time pairing code: the secret is imported at once as a NON-extractable
 * HMAC key, its raw bytes are wiped, and only the key object is stored.
 *
 * @throws ApiFailure (404 PAIRING_CODE_INVALID for an unknown, used or expired code), BadSecret.
 */
export async function pair(code: string): Promise<StoredTerminal> {
  const text = JSON.stringify({ pairing_code: code });
  const resp = await sendWithRetry(
    () =>
      new Request("/v1/terminal-pairings", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: text,
        cache: "no-store",
      }),
  );
  const answer = await jsonOrFailure<{
    terminal_id: string;
    key_id: string;
    secret: string;
    merchant: Merchant;
  }>(resp);
  const secret = answer.secret;
  // Drop the secret text from the answer object before anything else can keep it.
  answer.secret = "";
  if (typeof secret !== "string" || !/^[0-9a-fA-F]{64}$/.test(secret)) throw new BadSecret();
  const raw = fromHex(secret);
  let key: CryptoKey;
  try {
    key = await keystore.importHmacKey(raw);
  } finally {
    raw.fill(0);
  }
  const stored: StoredTerminal = {
    key,
    key_id: answer.key_id,
    terminal_id: answer.terminal_id,
    merchant: answer.merchant,
  };
  await keystore.put(STORE_NAME, stored);
  return stored;
}

/** Signed calls of one paired terminal. */
export class TerminalApi {
  constructor(private readonly cred: Credentials) {}

  async me(): Promise<{ terminal_id: string; key_id: string; merchant: Merchant }> {
    return jsonOrFailure(await signedFetch(this.cred, "GET", "/v1/terminal/me"));
  }

  async unpair(): Promise<void> {
    await jsonOrFailure<unknown>(await signedFetch(this.cred, "POST", "/v1/terminal/unpair"));
  }

  async quote(code: string, orderAmountFen: number): Promise<Quote | Decline> {
    return jsonOrFailure(
      await signedFetch(this.cred, "POST", "/v1/quotes", {
        code,
        order_amount_fen: orderAmountFen,
      }),
    );
  }

  /**
   * A sale (`/v1/redemptions`) or a hold (`/v1/authorizations`) under the sale's one
   * Idempotency-Key. `409 IN_FLIGHT` (the same key still being decided) is waited for and
   * retried with the same key and body.
   */
  async checkout(
    mode: Mode,
    body: CheckoutBody,
    idempotencyKey: string,
    onWait?: (why: "in_flight" | "retry") => void,
  ): Promise<RedemptionView | Decline> {
    const path = mode === "hold" ? "/v1/authorizations" : "/v1/redemptions";
    for (let attempt = 0; ; attempt++) {
      const resp = await signedFetch(
        this.cred,
        "POST",
        path,
        body,
        { "Idempotency-Key": idempotencyKey },
        () => onWait?.("retry"),
      );
      if (resp.status === 409 && attempt < 8) {
        const err = (await resp.clone().json().catch(() => null)) as ApiErrorBody | null;
        if (err?.code === "IN_FLIGHT") {
          onWait?.("in_flight");
          const retryAfter = Number(resp.headers.get("retry-after"));
          const backoff = Math.min(4000, 400 * 2 ** attempt);
          await sleep(Math.max(backoff, Number.isFinite(retryAfter) ? retryAfter * 1000 : 0));
          continue;
        }
      }
      return jsonOrFailure(resp);
    }
  }

  async capture(redemptionId: string): Promise<RedemptionView> {
    return jsonOrFailure(
      await signedFetch(
        this.cred,
        "POST",
        `/v1/authorizations/${encodeURIComponent(redemptionId)}/capture`,
      ),
    );
  }

  async void(redemptionId: string): Promise<RedemptionView> {
    return jsonOrFailure(
      await signedFetch(
        this.cred,
        "POST",
        `/v1/authorizations/${encodeURIComponent(redemptionId)}/void`,
      ),
    );
  }

  /** `refundAmountFen` null = everything not yet refunded (the server's default). */
  async reverse(
    redemptionId: string,
    reversalRef: string,
    refundAmountFen: number | null,
  ): Promise<ReversalView> {
    const body: { reversal_ref: string; refund_amount_fen?: number } = {
      reversal_ref: reversalRef,
    };
    if (refundAmountFen !== null) body.refund_amount_fen = refundAmountFen;
    return jsonOrFailure(
      await signedFetch(
        this.cred,
        "POST",
        `/v1/redemptions/${encodeURIComponent(redemptionId)}/reversals`,
        body,
      ),
    );
  }

  async day(date: string): Promise<DayReport> {
    return jsonOrFailure(
      await signedFetch(this.cred, "GET", `/v1/redemptions?date=${encodeURIComponent(date)}`),
    );
  }
}

export { ApiFailure };

// The issuance service's answers as the residents' page reads them. Amounts are integer fen,
// rates integer basis points, times RFC 3339 text.

export type Rule =
  | { type: "threshold"; min_spend: number; off: number }
  | { type: "percent"; rate_bp: number; per_person_cap?: number | null };

export interface Round {
  round_no: number;
  starts_at: string;
  quantity: number;
}

export interface Campaign {
  id: number;
  name: string;
  owner_place: number;
  owner_place_name: string;
  category: string;
  rule: Rule;
  validity: { days_after_claim?: number | null; ends_at?: string | null };
  per_person_limit: number;
  my_claimed: number;
  live_stock: number;
  remaining_stock: number;
  current_round: Round | null;
  upcoming_rounds: Round[];
}

export interface ClaimResult {
  voucher_id: string;
  campaign_id: number;
  token: string;
  valid_from: string;
  valid_until: string;
  round_no: number;
  replayed: boolean;
}

export type VoucherStatus = "issued" | "redeemed" | "expired";

export interface MyVoucher {
  voucher_id: string;
  campaign_id: number;
  campaign_name: string;
  category: string;
  rule: Rule;
  status: VoucherStatus;
  usable: boolean;
  round_no: number;
  claimed_at: string;
  valid_from: string;
  valid_until: string;
}

/** The server-computed dynamic code (the fallback when no key is stored). */
export interface ServerCode {
  code: string;
  refresh_at: string;
  step_secs: number;
}

/** The per-voucher code key as sent once to the phone (`key` is base64url). */
export interface CodeKeyWire {
  voucher_id: string;
  token: string;
  key: string;
  step_secs: number;
  epoch: number;
}

export interface Redemption {
  redemption_id: string;
  voucher_id: string;
  campaign_name: string;
  merchant_name: string;
  order_amount_fen: number;
  discount_fen: number;
  to_pay_fen: number;
  reversed_fen: number;
  status: string;
  created_at: string;
}

export interface History {
  redemptions: Redemption[];
  total_spent_fen: number;
  total_saved_fen: number;
}

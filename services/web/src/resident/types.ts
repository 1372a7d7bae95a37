// The issuance service's answers as the residents' page reads them. Amounts are integer fen,
// rates integer basis points, times RFC 3339 text.

/** One product category of a per-item trade-in rule (its overrides of the rule's terms). */
export interface CategoryRule {
  product_category: string;
  per_person_items: number;
  rate_bp?: number | null;
  item_cap?: number | null;
  max_item_price?: number | null;
}

export type Rule =
  | { type: "threshold"; min_spend: number; off: number }
  | { type: "percent"; rate_bp: number; per_person_cap?: number | null }
  | {
      type: "item_percent";
      rate_bp: number;
      item_cap: number;
      per_person_cap?: number | null;
      max_item_price?: number | null;
      categories: CategoryRule[];
    }
  | { type: "annual_card"; subsidy: number };

export type RoundMode = "rush" | "lottery";

export interface Round {
  round_no: number;
  starts_at: string;
  quantity: number;
  /** Absent from older services: a rush round. */
  mode?: RoundMode;
  registration_opens_at?: string;
  registration_closes_at?: string;
  /** Hex SHA-256 of the seed revealed at the draw. */
  commitment?: string;
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

// ---------------------------------------------------------------- lottery rounds (报名摇号)

export type LotteryPhase = "upcoming" | "registration_open" | "registration_closed" | "drawn";

/** GET /v1/campaigns/{id}/rounds/{n}/lottery (and inside registrations/me). */
export interface LotteryState {
  campaign_id: number;
  round_no: number;
  quantity: number;
  registration_opens_at: string;
  registration_closes_at: string;
  draw_from: string;
  commitment: string;
  phase: LotteryPhase;
  registered: number;
  drawn_at?: string;
  seed?: string;
  winners?: number;
}

export interface Registration {
  campaign_id: number;
  round_no: number;
  registration_hash: string;
  registered_at: string;
  replayed: boolean;
}

export interface LotteryResult {
  won: boolean;
  rank?: number;
  issue_status?: "pending" | "issued" | "refused";
  voucher_id?: string;
  reason?: string;
}

/** GET /v1/campaigns/{id}/rounds/{n}/registrations/me */
export interface MyLottery {
  lottery: LotteryState;
  registration: Registration | null;
  result: LotteryResult | null;
}

// ---------------------------------------------------------------- car trade-in (汽车以旧换新)

export type TradeInKind = "transfer" | "scrap";

/** GET /v1/trade-in/schemes: days are Beijing dates "YYYY-MM-DD", both ends included. */
export interface TradeInScheme {
  program_id: number;
  program_name?: string;
  opens_on: string;
  closes_on: string;
  transfer_cap_fen: number;
  scrap_cap_fen: number;
  price_rate_bp: number | null;
}

export interface Business {
  name: string;
  credit_code: string;
}

/** The papers as sent (POST body without its ids, and the PUT body). */
export interface TradeInPapers {
  kind: TradeInKind;
  old_car: { vin: string; plate: string };
  certifier: Business;
  certificate_sha256: string;
  new_car: {
    invoice_no: string;
    invoice_date: string;
    vin: string;
    price_fen: number;
    dealer: Business;
    invoice_sha256: string;
  };
}

export type TradeInStatus = "submitted" | "needs_more" | "approved" | "rejected";

export interface TradeInApplication extends TradeInPapers {
  id: string;
  program_id: number;
  status: TradeInStatus | string;
  amount_fen: number;
  rejection_reason: string | null;
  requested: string | null;
  submissions: number;
  submitted_at: string;
  updated_at: string;
  decided_at: string | null;
}

export interface UploadedDocument {
  sha256: string;
  size_bytes: number;
  content_type: string;
  uploaded_at: string;
  created: boolean;
}

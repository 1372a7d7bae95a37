// The finance console's API answers, typed as services/reconciliation/docs/console-api.md
// writes them. Money is integer fen (`…_fen`), days are Beijing days (YYYY-MM-DD), times
// are RFC 3339.

export type Role = "province" | "city";

export interface Officer {
  name: string;
  role: Role;
  place: number;
  place_name: string;
}

export interface Session {
  officer: Officer;
  csrf_token: string;
  expires_at: string;
  method: "api_key" | "dev_idp";
}

export type BudgetKind = "pool" | "allocation" | "none";

export type RunOut =
  | { kind: "date"; day: string }
  | { kind: "exhausted" }
  | { kind: "idle" }
  | { kind: "uncapped" };

export interface BurnPoint {
  day: string;
  spent_fen: number;
  committed_fen: number;
  remaining_fen: number | null;
}

export interface ProgramOverview {
  program_id: number;
  program_name: string;
  ratio_bp: number;
  budget_kind: BudgetKind;
  budget_fen: number | null;
  spent_fen: number;
  committed_fen: number;
  remaining_fen: number | null;
  pace_fen_per_day: number;
  run_out: RunOut;
  burn: BurnPoint[];
}

export interface DaySpending {
  day: string;
  spending_fen: number;
  redemptions: number;
}

export interface CategorySpending {
  category: string;
  category_name: string;
  spending_fen: number;
  redemptions: number;
}

export interface CityBudget {
  program_id: number;
  program_name: string;
  city: number;
  city_name: string;
  allocation_fen: number | null;
  spent_fen: number;
  committed_fen: number;
  remaining_fen: number | null;
}

export interface Overview {
  today: string;
  scope: { role: Role; place: number; place_name: string };
  programs: ProgramOverview[];
  spending_by_day: DaySpending[];
  spending_by_category: CategorySpending[];
  cities: CityBudget[];
}

export type BatchStatus = "draft" | "city_confirmed" | "province_confirmed" | "paid";

export interface BatchCounts {
  draft: number;
  city_confirmed: number;
  province_confirmed: number;
  paid: number;
}

export interface RunSummary {
  run_id: number;
  program_id: number;
  program_name: string;
  created_at: string;
  created_by: string;
  spending_fen: number;
  province_fen: number;
  city_fen: number;
  county_fen: number;
  pool_after_fen: number;
  batches: BatchCounts;
}

export interface PeriodSummary {
  period: string;
  start: string;
  end: string;
  runs: RunSummary[];
}

export interface CountyLine {
  county: number;
  county_name: string;
  spending_fen: number;
  county_fen: number;
}

export interface Batch {
  batch_id: number;
  city: number;
  city_name: string;
  status: BatchStatus;
  granted_fen: number;
  reversed_fen: number;
  spending_fen: number;
  claim_fen: number;
  province_fen: number;
  city_fen: number;
  county_fen: number;
  allocation_fen: number | null;
  paid_before_fen: number;
  allocation_remaining_fen: number | null;
  pool_remaining_fen: number;
  limit: string;
  redemptions: number;
  reversals: number;
  merchants: number;
  counties: CountyLine[];
}

export interface Run {
  run_id: number;
  program_id: number;
  program_name: string;
  period: string;
  period_start: string;
  period_end: string;
  ratio_bp: number;
  county_cofund_bp: number | null;
  pool_fen: number;
  pool_before_fen: number;
  pool_after_fen: number;
  created_by: string;
  created_at: string;
  spending_fen: number;
  province_fen: number;
  city_fen: number;
  county_fen: number;
  payable_fen: number;
  batches: Batch[];
}

export interface Step {
  status: BatchStatus;
  actor: string;
  /** `city`, `province`, or `job` for the draft the settlement job wrote. */
  role: string;
  place: number | null;
  place_name: string | null;
  at: string;
}

export interface NextStep {
  to: Exclude<BatchStatus, "draft">;
  role: Role;
  allowed: boolean;
}

export interface BatchDetail extends Batch {
  run: { run_id: number; program_id: number; program_name: string; period: string };
  steps: Step[];
  next: NextStep | null;
}

export interface MerchantLine {
  merchant_id: string;
  merchant_name: string;
  granted_fen: number;
  reversed_fen: number;
  payable_fen: number;
  redemptions: number;
  reversals: number;
}

export interface SubsidyLine {
  kind: string;
  payee_kind: "merchant" | "resident";
  payee_id: string;
  payee_name: string;
  granted_fen: number;
  reversed_fen: number;
  payable_fen: number;
  lines: number;
}

export interface AdvanceLine {
  merchant_id: string;
  payable_fen: number;
  outstanding_before_fen: number;
  drawdown_fen: number;
  outstanding_after_fen: number;
  net_payable_fen: number;
}

export interface BatchMerchants {
  batch_id: number;
  payable_fen: number;
  merchants: MerchantLine[];
  lines: SubsidyLine[];
  advances: AdvanceLine[];
}

export interface Finding {
  rank: number;
  score: number;
  pattern: string;
  pattern_name: string;
  merchant_id: string;
  merchant_name: string;
  city: number;
  city_name: string;
  person_id: string | null;
  evidence: string;
  sample: string[];
}

export interface Review {
  period: string;
  findings: Finding[];
}

export interface Reversal {
  reversal_ref: string;
  refund_amount_fen: number;
  discount_reversed_fen: number;
  created_at: string;
}

export interface Redemption {
  id: string;
  merchant_id: string;
  merchant_name: string;
  city: number;
  city_name: string;
  campaign_id: number;
  campaign_name: string;
  category: string;
  program_id: number;
  person_id: string;
  status: string;
  order_ref: string;
  order_amount_fen: number;
  discount_fen: number;
  reversed_fen: number;
  created_at: string;
  resolved_at: string | null;
  reversals: Reversal[];
}

export interface Difference {
  /** null for a global item. */
  campaign_id: number | null;
  item: string;
  redis: string;
  postgres: string;
}

export interface Check {
  id: number;
  at: string;
  actor: string;
  clean: boolean;
  campaigns: number;
  outbox_len: number;
  outbox_pending: number;
  differences: Difference[];
}

export interface Ops {
  last_check: Check | null;
  outbox: { available: boolean; len?: number | null; pending?: number | null };
}

export interface AuditEntry {
  at: string;
  /** The officer, or for a refused sign-in what was claimed. */
  actor: string;
  /** null for a refused sign-in. */
  role: string | null;
  place: number | null;
  action: string;
  target: string | null;
  /** `ok`, or the error code that refused it. */
  outcome: string;
  detail: unknown;
}

export interface SettleResult {
  period: string;
  created: { program_id: number; run_id: number }[];
  existing: { program_id: number; run_id: number }[];
}

/** The report files of a period, as `GET /v1/periods/{period}/files/{name}` names them. */
export const REPORT_FILES = [
  "cities.csv",
  "merchants.csv",
  "programs.csv",
  "subsidy_lines.csv",
  "advances.csv",
  "report.json",
  "summary.txt",
] as const;

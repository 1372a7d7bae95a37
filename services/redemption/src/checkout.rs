//! The checkout decision (flow 3): redeem in one step, or authorise a hold.
//!
//! Order of checks: dynamic code and token (`CODE_STALE`, `TOKEN_INVALID`), validity window
//! (`VOUCHER_NOT_YET_VALID`, `VOUCHER_EXPIRED`), category (`MERCHANT_CATEGORY_MISMATCH`),
//! place (`OUTSIDE_ISSUING_PLACE`), the merchant's approval for the voucher's program
//! (`MERCHANT_NOT_APPROVED`), the threshold (`BELOW_THRESHOLD`); then ONE PostgreSQL
//! transaction decides and records: the voucher row is inserted from its token if the
//! persister has not written it, then either spent with `… WHERE status = 'issued'`
//! (threshold, `VOUCHER_ALREADY_REDEEMED`) or the person's entitlement row is locked and
//! charged with `… WHERE used_fen + d <= cap_fen` (percentage); the discount is taken from
//! one of the campaign's budget buckets (`BUDGET_EXHAUSTED` for a threshold voucher; a
//! percentage discount is cut to what is left); the redemption row, its event and the
//! stored idempotent response are written; commit; only then is "approved" sent.
//!
//! Declines are `200 {"outcome": "declined", "reason", "message"}` and write nothing (the
//! idempotency key is released, so a retry is decided afresh). A percentage purchase after
//! the cap (or the budget) is used up is APPROVED with `discount_fen: 0` and a `notice`
//! (`CAP_EXHAUSTED` / `BUDGET_EXHAUSTED`): POLICY rule 2, the sale is not ours to refuse.

use crate::error::{ApiError, Code};
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use uuid::Uuid;
use voucher_core::discount::{self, Limit};
use voucher_core::dynamic_code::CodeError;
use voucher_core::token::VoucherClaims;
use voucher_core::{Fen, RefundPolicy, Rule};
use voucher_proto::events::{event_envelope::Event, EventEnvelope, VoucherRedeemed};
use voucher_store::pg::redemptions::{self as db, IdempotencyBegin, RedemptionRecord, SingleUse};
use voucher_store::StoreError;

/// Largest order accepted: 100 million yuan.
const MAX_ORDER_FEN: i64 = 10_000_000_000;

/// `POST /v1/redemptions` and `POST /v1/authorizations` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// The scanned dynamic code (`<token>.<mac>`).
    pub code: String,
    /// The order amount after every other discount, fen (> 0).
    pub order_amount_fen: i64,
    /// The merchant's own order reference, 1–64 characters, unique per merchant.
    pub order_ref: String,
}

/// Why a checkout was declined: the stable reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decline {
    /// A single-use voucher already spent (or held by another checkout).
    VoucherAlreadyRedeemed,
    /// Past its validity, or expired by the expiry job.
    VoucherExpired,
    /// Before its validity.
    VoucherNotYetValid,
    /// The voucher's category is not the merchant's.
    MerchantCategoryMismatch,
    /// The merchant is outside the voucher's issuing city/county.
    OutsideIssuingPlace,
    /// The merchant is not approved for the voucher's program.
    MerchantNotApproved,
    /// 满减 threshold not reached.
    BelowThreshold,
    /// The campaign's budget cannot cover a threshold voucher's discount.
    BudgetExhausted,
    /// The dynamic code's time step is not current: a screenshot or an old code.
    CodeStale,
    /// Forged, malformed or signed by an unknown or retired key.
    TokenInvalid,
    /// The voucher's campaign is unknown to the record.
    VoucherNotFound,
}

impl Decline {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            Decline::VoucherAlreadyRedeemed => "VOUCHER_ALREADY_REDEEMED",
            Decline::VoucherExpired => "VOUCHER_EXPIRED",
            Decline::VoucherNotYetValid => "VOUCHER_NOT_YET_VALID",
            Decline::MerchantCategoryMismatch => "MERCHANT_CATEGORY_MISMATCH",
            Decline::OutsideIssuingPlace => "OUTSIDE_ISSUING_PLACE",
            Decline::MerchantNotApproved => "MERCHANT_NOT_APPROVED",
            Decline::BelowThreshold => "BELOW_THRESHOLD",
            Decline::BudgetExhausted => "BUDGET_EXHAUSTED",
            Decline::CodeStale => "CODE_STALE",
            Decline::TokenInvalid => "TOKEN_INVALID",
            Decline::VoucherNotFound => "VOUCHER_NOT_FOUND",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Decline::VoucherAlreadyRedeemed => "the voucher has already been redeemed",
            Decline::VoucherExpired => "the voucher has expired",
            Decline::VoucherNotYetValid => "the voucher is not valid yet",
            Decline::MerchantCategoryMismatch => {
                "the voucher is not accepted by merchants of this category"
            }
            Decline::OutsideIssuingPlace => {
                "the voucher is only valid in its issuing city or county"
            }
            Decline::MerchantNotApproved => {
                "this merchant is not approved for the voucher's program"
            }
            Decline::BelowThreshold => "the order amount is below the voucher's threshold",
            Decline::BudgetExhausted => "the campaign's budget is exhausted",
            Decline::CodeStale => "the code is out of date: ask the customer to refresh it",
            Decline::TokenInvalid => "the code is not a valid voucher",
            Decline::VoucherNotFound => "the voucher is unknown",
        }
    }
}

/// Whether the checkout spends at once or holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One-step redemption.
    Sale,
    /// Authorisation (hold), captured or voided later.
    Hold,
}

impl Mode {
    fn kind(self) -> &'static str {
        match self {
            Mode::Sale => "sale",
            Mode::Hold => "hold",
        }
    }
}

/// The answer to a checkout (approved) or a query about a redemption.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RedemptionView {
    /// `approved` (also for a query's answer).
    pub outcome: String,
    /// Redemption id.
    pub redemption_id: Uuid,
    /// `approved`, `held`, `captured`, `voided`, `expired`.
    pub status: String,
    /// Voucher.
    pub voucher_id: Uuid,
    /// Campaign.
    pub campaign_id: i64,
    /// The merchant's order reference.
    pub order_ref: String,
    /// Order amount, fen.
    pub order_amount_fen: i64,
    /// Discount granted, fen.
    pub discount_fen: i64,
    /// What the customer still pays, fen.
    pub to_pay_fen: i64,
    /// Discount given back by reversals so far, fen.
    pub reversed_fen: i64,
    /// What cut the discount, if anything: `CAP_EXHAUSTED` (the person's cap) or
    /// `BUDGET_EXHAUSTED` (the campaign's budget). With `discount_fen: 0` the sale is
    /// approved without discount.
    pub notice: Option<String>,
    /// True when the person's cap is used up by this (or an earlier) purchase.
    pub cap_exhausted: bool,
    /// For a hold: when it releases itself.
    #[schema(value_type = Option<String>)]
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// When decided.
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
}

impl RedemptionView {
    /// The view of a stored redemption.
    pub fn of(r: &RedemptionRecord, cap_exhausted: bool) -> RedemptionView {
        RedemptionView {
            outcome: "approved".to_owned(),
            redemption_id: r.id,
            status: r.status.clone(),
            voucher_id: r.voucher_id,
            campaign_id: r.campaign_id,
            order_ref: r.order_ref.clone(),
            order_amount_fen: r.order_amount_fen,
            discount_fen: r.discount_fen,
            to_pay_fen: r.order_amount_fen - r.discount_fen,
            reversed_fen: r.reversed_fen,
            notice: r.notice.clone(),
            cap_exhausted,
            hold_expires_at: r.hold_expires_at,
            created_at: r.created_at,
        }
    }
}

/// A declined checkout's body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeclineView {
    /// `declined`.
    pub outcome: String,
    /// The stable reason code.
    pub reason: String,
    /// For people.
    pub message: String,
}

/// What the handler sends: a status and a JSON body (also what is stored for replay).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
}

/// Hex SHA-256 of what identifies a request for idempotency: method, path and body.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(method.as_bytes());
    ctx.update(b"\n");
    ctx.update(path.as_bytes());
    ctx.update(b"\n");
    ctx.update(body);
    hex::encode(ctx.finish())
}

/// Runs a checkout with idempotency: replays a stored answer, refuses a reused key with
/// another body (`IDEMPOTENCY_KEY_REUSED`) or a concurrent duplicate (`IN_FLIGHT`).
///
/// The key is taken inside the transaction that decides (see [`db::idempotency_claim`]):
/// an approval commits the decision and the stored answer together, in one commit; a
/// decline or a failure rolls back and leaves the key free, so a retry is decided afresh.
///
/// # Errors
/// [`ApiError`] for bad input, idempotency conflicts and store failures.
#[tracing::instrument(name = "redemption.checkout", skip_all, fields(kind = mode.kind(), merchant = %terminal.merchant_id), err)]
pub async fn checkout(
    state: &AppState,
    terminal: &Terminal,
    idem_key: &str,
    hash: &str,
    req: CheckoutRequest,
    mode: Mode,
) -> Result<Answer, ApiError> {
    let started = Instant::now();
    let order = validate(&req)?;
    // The checks without a database come first; a replay is still answered below when they
    // fail now (e.g. a retry after the code went stale).
    let checked = precheck(state, terminal, &req, order);
    let campaign = match &checked {
        Ok(claims) => Some(campaign_facts(state, claims).await?),
        Err(_) => None,
    };
    let program_asked = campaign.as_ref().and_then(|c| c.as_ref().ok()).copied();
    let mut tx = state.pg.begin().await.map_err(StoreError::from)?;
    let stale = state.settings.idempotency.stale_in_flight_secs;
    let claim = db::idempotency_claim(
        &mut tx,
        &terminal.merchant_id,
        idem_key,
        hash,
        program_asked,
        stale,
    )
    .await?;
    match claim.begin {
        IdempotencyBegin::Started => {}
        IdempotencyBegin::Done(status, body) => {
            state.metrics.decision(mode.kind(), "replayed", "", started);
            return Ok(Answer {
                status: u16::try_from(status).unwrap_or(200),
                body,
            });
        }
        IdempotencyBegin::Mismatch => {
            return Err(ApiError::new(
                Code::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request body",
            ))
        }
        IdempotencyBegin::InFlight => {
            return Err(ApiError::new(
                Code::InFlight,
                "a request with this Idempotency-Key is still being processed",
            ))
        }
    }
    let decided = match (checked, campaign) {
        (Err(d), _) | (_, Some(Err(d))) => Ok(Err(d)),
        (Ok(_), None) => Err(ApiError::internal(anyhow::anyhow!(
            "campaign facts missing after a passed precheck"
        ))),
        (Ok(claims), Some(Ok(program_id))) => {
            if claim.approved {
                decide(
                    state, &mut tx, terminal, idem_key, hash, &req, order, mode, &claims,
                    program_id,
                )
                .await
            } else {
                Ok(Err(Decline::MerchantNotApproved))
            }
        }
    };
    match decided {
        Ok(Ok(view)) => {
            tx.commit().await.map_err(StoreError::from)?;
            let reason = view.notice.clone().unwrap_or_default();
            state
                .metrics
                .decision(mode.kind(), "approved", &reason, started);
            Ok(Answer {
                status: 200,
                body: serde_json::to_value(&view).map_err(ApiError::internal)?,
            })
        }
        Ok(Err(decline)) => {
            // Dropping the transaction rolls it back: nothing written, the key is free again.
            drop(tx);
            state
                .metrics
                .decision(mode.kind(), "declined", decline.as_str(), started);
            let view = DeclineView {
                outcome: "declined".to_owned(),
                reason: decline.as_str().to_owned(),
                message: decline.message().to_owned(),
            };
            Ok(Answer {
                status: 200,
                body: serde_json::to_value(&view).map_err(ApiError::internal)?,
            })
        }
        Err(e) => {
            drop(tx);
            state
                .metrics
                .decision(mode.kind(), "error", e.code.as_str(), started);
            Err(e)
        }
    }
}

/// The voucher's program as the record knows it, with the campaign's budget buckets made
/// sure of (both cached), or the decline an unknown campaign or a program mismatch is.
///
/// # Errors
/// Store failures.
async fn campaign_facts(
    state: &AppState,
    claims: &VoucherClaims,
) -> Result<Result<i64, Decline>, ApiError> {
    let campaign_id = claims.campaign_id.0;
    let program_id = match policy_of(state, campaign_id).await {
        Ok((program, _)) => program,
        Err(StoreError::NotFound) => return Ok(Err(Decline::VoucherNotFound)),
        Err(e) => return Err(e.into()),
    };
    if program_id != claims.program_id.0 {
        return Ok(Err(Decline::TokenInvalid));
    }
    ensure_budget(state, campaign_id).await?;
    Ok(Ok(program_id))
}

fn validate(req: &CheckoutRequest) -> Result<Fen, ApiError> {
    if req.order_amount_fen <= 0 || req.order_amount_fen > MAX_ORDER_FEN {
        return Err(ApiError::invalid_field(
            "order_amount_fen",
            format!("must be 1..={MAX_ORDER_FEN} fen"),
        ));
    }
    let len = req.order_ref.chars().count();
    if len == 0 || len > 64 || req.order_ref.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "order_ref",
            "must be 1-64 characters without control characters",
        ));
    }
    if req.code.is_empty() || req.code.len() > 2048 {
        return Err(ApiError::invalid_field(
            "code",
            "must be a scanned dynamic code",
        ));
    }
    Fen::try_from(req.order_amount_fen).map_err(|e| ApiError::invalid_field("order_amount_fen", e))
}

/// The checks that need no database: code, token, validity, category, place, threshold.
fn precheck(
    state: &AppState,
    terminal: &Terminal,
    req: &CheckoutRequest,
    order: Fen,
) -> Result<VoucherClaims, Decline> {
    let now = state.clock.now();
    let claims = state
        .dynamic_codes
        .verify(&req.code, &state.verifier, now)
        .map_err(|e| match e {
            CodeError::Stale => Decline::CodeStale,
            CodeError::Malformed | CodeError::Token(_) => Decline::TokenInvalid,
        })?;
    if now < claims.valid_from {
        return Err(Decline::VoucherNotYetValid);
    }
    if now > claims.valid_until {
        return Err(Decline::VoucherExpired);
    }
    if !claims.category.accepted_by(terminal.category) {
        return Err(Decline::MerchantCategoryMismatch);
    }
    if !claims.place.covers(terminal.place) {
        return Err(Decline::OutsideIssuingPlace);
    }
    if let Rule::Threshold { min_spend, .. } = claims.rule {
        if order < min_spend {
            return Err(Decline::BelowThreshold);
        }
    }
    Ok(claims)
}

/// The campaign's program and refund policy (cached: both are fixed once created).
///
/// # Errors
/// [`StoreError::NotFound`] for an unknown campaign.
pub async fn policy_of(
    state: &AppState,
    campaign_id: i64,
) -> Result<(i64, RefundPolicy), StoreError> {
    if let Some(found) = state
        .policies
        .read()
        .ok()
        .and_then(|m| m.get(&campaign_id).copied())
    {
        return Ok(found);
    }
    let found = db::campaign_policy(&state.pg, campaign_id).await?;
    if let Ok(mut m) = state.policies.write() {
        m.insert(campaign_id, found);
    }
    Ok(found)
}

async fn ensure_budget(state: &AppState, campaign_id: i64) -> Result<(), StoreError> {
    if state
        .budgets_ready
        .read()
        .is_ok_and(|s| s.contains(&campaign_id))
    {
        return Ok(());
    }
    db::ensure_budget(&state.pg, campaign_id, state.settings.budget.buckets).await?;
    if let Ok(mut s) = state.budgets_ready.write() {
        s.insert(campaign_id);
    }
    Ok(())
}

/// A bucket for this checkout: spread by redemption id.
pub fn bucket_for(state: &AppState, id: Uuid) -> i32 {
    let buckets = u128::from(state.settings.budget.buckets.unsigned_abs().max(1));
    i32::try_from(id.as_u128() % buckets).unwrap_or(0)
}

/// The `VoucherRedeemed` event of a redemption.
pub fn redeemed_event(r: &RedemptionRecord, at: DateTime<Utc>) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::now_v7().as_bytes().to_vec(),
        occurred_at_ms: at.timestamp_millis(),
        campaign_id: r.campaign_id,
        event: Some(Event::VoucherRedeemed(VoucherRedeemed {
            voucher_id: r.voucher_id.as_bytes().to_vec(),
            redemption_id: r.id.as_bytes().to_vec(),
            merchant_id: r.merchant_id.clone(),
            order_amount: r.order_amount_fen,
            discount: r.discount_fen,
        })),
    }
}

/// The decision, inside the transaction that holds the idempotency key: spend the voucher or
/// charge the entitlement, take the discount from the budget, record it all.
#[allow(clippy::too_many_arguments)]
async fn decide(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    terminal: &Terminal,
    idem_key: &str,
    hash: &str,
    req: &CheckoutRequest,
    order: Fen,
    mode: Mode,
    claims: &VoucherClaims,
    program_id: i64,
) -> Result<Result<RedemptionView, Decline>, ApiError> {
    let campaign_id = claims.campaign_id.0;
    let now = state.clock.now();
    let id = Uuid::now_v7();
    let bucket = bucket_for(state, id);
    let voucher_id = claims.voucher_id.0;
    let person = claims.person_id.as_str();

    let (status, hold_expires_at) = match mode {
        Mode::Sale => ("approved", None),
        Mode::Hold => (
            "held",
            Some(now + chrono::Duration::seconds(state.settings.holds.timeout_secs)),
        ),
    };
    let record_of = |discount: i64, notice: Option<&str>| RedemptionRecord {
        id,
        merchant_id: terminal.merchant_id.clone(),
        terminal_id: terminal.terminal_id,
        voucher_id,
        campaign_id,
        program_id,
        person_id: person.to_owned(),
        single_use: claims.rule.is_single_use(),
        status: status.to_owned(),
        order_ref: req.order_ref.clone(),
        order_amount_fen: order.as_i64(),
        discount_fen: discount,
        refunded_amount_fen: 0,
        reversed_fen: 0,
        notice: notice.map(str::to_owned),
        hold_expires_at,
        created_at: now,
        resolved_at: None,
    };
    let (discount, notice, cap_exhausted) = match claims.rule {
        Rule::Threshold { min_spend, off } => {
            let amount = match discount::threshold(min_spend, off, order) {
                Ok(a) => a.as_i64(),
                Err(_) => return Ok(Err(Decline::BelowThreshold)),
            };
            // The whole decision in one statement (spend, budget, record) when a budget
            // bucket is free; the answer is known before it runs.
            let record = record_of(amount, None);
            let view = RedemptionView::of(&record, false);
            let body = serde_json::to_value(&view).map_err(ApiError::internal)?;
            let event = (mode == Mode::Sale).then(|| redeemed_event(&record, now));
            db::savepoint(tx).await?;
            match db::redeem_single_use(
                tx,
                claims,
                &record,
                event.as_ref(),
                idem_key,
                hash,
                &body,
                bucket,
            )
            .await
            {
                Ok(SingleUse::Recorded) => return Ok(Ok(view)),
                Ok(SingleUse::NotIssued) => {
                    let status = db::voucher_status(tx, voucher_id).await?;
                    return Ok(Err(if status.as_deref() == Some("expired") {
                        Decline::VoucherExpired
                    } else {
                        Decline::VoucherAlreadyRedeemed
                    }));
                }
                Ok(SingleUse::BudgetBusy) => {
                    // Undo the attempt: besides spending the voucher it may hold the lock of
                    // a bucket it could not use (PostgreSQL keeps a row lock taken to re-check
                    // a row that no longer qualified), and gathering under the campaign lock
                    // while holding it could deadlock with another gatherer.
                    db::rollback_to_savepoint(tx).await?;
                    if !db::spend_voucher_from_token(tx, claims).await? {
                        return Ok(Err(Decline::VoucherAlreadyRedeemed));
                    }
                }
                Err(StoreError::NotFound) => return Ok(Err(Decline::VoucherNotFound)),
                Err(StoreError::Conflict(_)) => {
                    return Err(ApiError::new(
                        Code::OrderRefUsed,
                        "this order_ref was already used by this merchant",
                    ))
                }
                Err(e) => return Err(e.into()),
            }
            // Spent again, no bucket lock held: gather from several buckets.
            if db::take_budget(tx, campaign_id, amount, false, bucket).await? < amount {
                return Ok(Err(Decline::BudgetExhausted));
            }
            (amount, None, false)
        }
        Rule::Percent {
            rate_bp,
            per_person_cap,
        } => {
            match db::insert_voucher_from_token(tx, claims).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => return Ok(Err(Decline::VoucherNotFound)),
                Err(e) => return Err(e.into()),
            }
            if db::voucher_status(tx, voucher_id).await?.as_deref() == Some("expired") {
                return Ok(Err(Decline::VoucherExpired));
            }
            let (used, cap) =
                db::lock_entitlement(tx, campaign_id, person, per_person_cap.as_i64()).await?;
            let cap_remaining = Fen::try_from(cap - used).unwrap_or(Fen::ZERO);
            // The budget limit is applied by taking from the buckets below.
            let d = discount::percent(
                rate_bp,
                order,
                cap_remaining,
                Fen::try_from(MAX_ORDER_FEN).unwrap_or_default(),
            );
            let taken = db::take_budget(tx, campaign_id, d.amount.as_i64(), true, bucket).await?;
            if taken > 0 && !db::use_entitlement(tx, campaign_id, person, taken).await? {
                return Err(ApiError::internal(anyhow::anyhow!(
                    "entitlement changed under its row lock"
                )));
            }
            let notice = if taken < d.amount.as_i64() {
                Some("BUDGET_EXHAUSTED")
            } else if d.limited_by == Some(Limit::PersonCap) {
                Some("CAP_EXHAUSTED")
            } else {
                None
            };
            (taken, notice, used + taken >= cap)
        }
    };
    let record = record_of(discount, notice);
    let view = RedemptionView::of(&record, cap_exhausted);
    let body = serde_json::to_value(&view).map_err(ApiError::internal)?;
    let event = (mode == Mode::Sale).then(|| redeemed_event(&record, now));
    match db::record_decision(tx, &record, event.as_ref(), idem_key, hash, &body).await {
        Ok(()) => Ok(Ok(view)),
        Err(StoreError::Conflict(_)) => Err(ApiError::new(
            Code::OrderRefUsed,
            "this order_ref was already used by this merchant",
        )),
        Err(e) => Err(e.into()),
    }
}

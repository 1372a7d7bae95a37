//! The checkout decision (flow 3): redeem in one step, or authorise a hold.
//!
//! Order of checks: the decline rules that need no database (`voucher_core::checkout::precheck`:
//! dynamic code and token, validity window, category, place, threshold), the voucher's
//! campaign and program as the record knows them ([`crate::caches`]), the merchant's approval for
//! the program (`MERCHANT_NOT_APPROVED`); then ONE PostgreSQL
//! transaction decides and records: the voucher row is inserted from its token if the
//! persister has not written it, then either spent with `… WHERE status = 'issued'`
//! (threshold, `VOUCHER_ALREADY_REDEEMED`) or the person's entitlement row is locked and
//! charged with `… WHERE used_fen + d <= cap_fen` (percentage); the discount is taken from
//! one of the campaign's budget buckets (`BUDGET_EXHAUSTED` for a threshold voucher; a
//! percentage discount is cut to what is left); the redemption row, its event and the
//! stored idempotent response are written; commit; only then is "approved" sent.
//!
//! Declines are `200 {"outcome": "declined", "reason", "message"}` and write nothing (the
//! idempotency key is released, so a retry is decided afresh). A decline (or
//! `ORDER_REF_USED`) first reads the key again: a duplicate that committed while this request
//! was taking the key is answered with its stored response, not decided twice (the retry race:
//! [`voucher_store::pg::idempotency`]). A voucher known only by its token that would take its
//! person beyond the campaign's per-person limit is declined `PERSON_LIMIT_EXCEEDED`
//! ([`decide`]) and logged at WARN. A percentage purchase after
//! the cap (or the budget) is used up is APPROVED with `discount_fen: 0` and a `notice`
//! (`CAP_EXHAUSTED` / `BUDGET_EXHAUSTED`): POLICY rule 2, the sale is not ours to refuse.
//!
//! The request may carry the order's `lines` ([`lines`]: checked, and adding up to the order
//! amount, before anything is read). A 以旧换新 per-item voucher is priced on them and charged to
//! the person's per-category counts, and an annual card is subsidised at its first entry only
//! ([`items`]); a program's extra rules on certified attributes add their extras on top of any
//! voucher's discount ([`crate::extras`]). Unlike the percentage, a per-item purchase the
//! rule cannot subsidise (a category limit reached, the cap used up, the budget empty) is
//! declined: granting nothing would still spend the person's allowance of items.

pub mod decide;
pub mod group;
pub mod idempotency;
pub mod items;
pub mod lines;
pub mod views;

use crate::error::{ApiError, Code};
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use decide::{decide, Attempt};
use group::Grouped;
use idempotency::IdempotencyKey;
use serde::Deserialize;
use std::time::Instant;
use views::{Answer, DeclineView};
use voucher_core::checkout::{precheck, Decline, Till};
use voucher_core::dynamic_code::VerifiedCode;
use voucher_core::token::VoucherClaims;
use voucher_core::{Fen, ProgramId, RefundPolicy, VoucherId};
use voucher_store::pg::idempotency::{idempotency_claim, idempotency_stored, IdempotencyBegin};
use voucher_store::StoreError;

/// Largest order accepted: 100 million yuan.
pub(crate) const MAX_ORDER_FEN: i64 = 10_000_000_000;

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
    /// The order's lines (optional; a 以旧换新 per-item voucher needs them, a program's extra
    /// rules read their certifications): 1–50 lines whose unit price × quantity add up to
    /// `order_amount_fen` (else `422 LINES_TOTAL_MISMATCH`). See [`lines`].
    #[serde(default)]
    pub lines: Option<Vec<lines::OrderLineBody>>,
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
    /// The metric label: `sale` or `hold`.
    pub fn kind(self) -> &'static str {
        match self {
            Mode::Sale => "sale",
            Mode::Hold => "hold",
        }
    }
}

/// Runs a checkout with idempotency (see [`idempotency`]): replays a stored answer, refuses
/// a reused key with another body (`IDEMPOTENCY_KEY_REUSED`) or a concurrent duplicate
/// (`IN_FLIGHT`), and otherwise decides ([`decide`]) in the transaction that took the key.
///
/// # Errors
/// [`ApiError`] for bad input, idempotency conflicts and store failures.
#[tracing::instrument(name = "redemption.checkout", skip_all, fields(kind = mode.kind(), merchant = %terminal.merchant_id))]
pub async fn checkout(
    state: &AppState,
    terminal: &Terminal,
    key: &IdempotencyKey,
    hash: &str,
    req: CheckoutRequest,
    mode: Mode,
) -> Result<Answer, ApiError> {
    let started = Instant::now();
    let result = run(state, terminal, key, hash, &req, mode, started).await;
    if let Err(e) = &result {
        state
            .metrics
            .decision(mode.kind(), "error", e.code(), started);
    }
    result
}

async fn run(
    state: &AppState,
    terminal: &Terminal,
    key: &IdempotencyKey,
    hash: &str,
    req: &CheckoutRequest,
    mode: Mode,
    started: Instant,
) -> Result<Answer, ApiError> {
    let (order, lines) = validate(req)?;
    // The checks without a database come first; a replay is still answered below when they
    // fail now (e.g. a retry after the code went stale).
    let till = Till {
        category: terminal.category,
        place: terminal.place,
    };
    let checked = precheck(
        &state.dynamic_codes,
        &state.verifier,
        &req.code,
        state.clock.now(),
        till,
        order,
    );
    let facts = match &checked {
        Ok(verified) => Some(campaign_facts(state, &verified.claims).await?),
        Err(_) => None,
    };
    let for_good = spent_for_good(&checked, facts.as_ref(), mode);
    let campaign = facts.map(|f| f.map(|(program_id, _)| program_id));
    let ready = Ready {
        terminal: terminal.clone(),
        key: key.clone(),
        hash: hash.to_owned(),
        order_ref: req.order_ref.clone(),
        order,
        lines,
        mode,
        checked,
        campaign,
    };
    // A voucher known to be spent for good is refused without a transaction (its stored
    // answer is still replayed to a retry of the request that spent it: [`finish`]).
    if for_good.is_some_and(|v| state.caches.known_spent(v)) {
        state.metrics.spent_filter_hits.inc();
        let refused = Step::Declined(Decline::VoucherAlreadyRedeemed);
        return finish(state, (ready, refused), started).await;
    }
    let step = match &state.group {
        Some(group) => match group.decide(ready).await? {
            Grouped::Decided(ready, step) => (*ready, step),
            Grouped::Alone(ready) => alone(state, *ready).await?,
        },
        None => alone(state, ready).await?,
    };
    if let (Some(voucher_id), Step::Approved(_)) = (for_good, &step.1) {
        state.caches.remember_spent(voucher_id);
    }
    finish(state, step, started).await
}

/// The voucher, when a sale that spends it spends it for good: a single-use voucher of a
/// campaign whose refund policy is `forfeit`, in a sale (a hold may be voided). The spent
/// filter only remembers those ([`crate::caches`]).
fn spent_for_good(
    checked: &Result<VerifiedCode, Decline>,
    facts: Option<&Result<(ProgramId, RefundPolicy), Decline>>,
    mode: Mode,
) -> Option<VoucherId> {
    let claims = &checked.as_ref().ok()?.claims;
    let (_, policy) = facts?.as_ref().ok()?;
    (mode == Mode::Sale && claims.rule.is_single_use() && *policy == RefundPolicy::Forfeit)
        .then_some(claims.voucher_id)
}

/// A checkout checked without the database and ready for its transaction: everything the
/// decision needs, owned, so that it can be handed to a group commit ([`group`]).
#[derive(Debug)]
pub struct Ready {
    terminal: Terminal,
    key: IdempotencyKey,
    hash: String,
    order_ref: String,
    order: Fen,
    lines: Option<lines::OrderLines>,
    mode: Mode,
    /// The dynamic code and the checks without a database.
    checked: Result<VerifiedCode, Decline>,
    /// The campaign's facts as the record knows them (when the code passed).
    campaign: Option<Result<ProgramId, Decline>>,
}

/// What a checkout's transaction came to, before its commit.
#[derive(Debug)]
pub enum Step {
    /// Approved (or held): committed with the transaction, then answered.
    Approved(Box<views::RedemptionView>),
    /// The key was not free (a stored answer, another body, a duplicate in flight): nothing
    /// written.
    Settled(IdempotencyBegin),
    /// Declined: nothing written.
    Declined(Decline),
    /// The merchant's order reference was used by another request: nothing written.
    OrderRefUsed,
}

impl Step {
    /// Whether the transaction keeps what the step wrote (else it is rolled back).
    pub fn writes(&self) -> bool {
        matches!(self, Step::Approved(_))
    }
}

/// Takes the idempotency key and decides, on the connection of a transaction the caller
/// commits when [`Step::writes`] and rolls back otherwise. `bucket`: decided in a group
/// commit's batch, in a savepoint the batch rolls back on any error, preferring that bucket.
///
/// # Errors
/// Store failures (the caller rolls back).
pub async fn decide_step(
    state: &AppState,
    con: &mut sqlx::PgConnection,
    ready: &Ready,
    bucket: Option<i32>,
) -> Result<Step, ApiError> {
    let program_asked = ready
        .campaign
        .as_ref()
        .and_then(|c| c.as_ref().ok())
        .copied();
    let stale = state.settings.idempotency.stale_in_flight_secs;
    let claim = idempotency_claim(
        con,
        &ready.terminal.merchant_id,
        ready.key.as_str(),
        &ready.hash,
        program_asked,
        stale,
    )
    .await?;
    if claim.begin != IdempotencyBegin::Started {
        return Ok(Step::Settled(claim.begin));
    }
    let decided = match (&ready.checked, &ready.campaign) {
        (Err(d), _) | (_, Some(Err(d))) => Ok(Err(*d)),
        (Ok(_), None) => Err(ApiError::internal(anyhow::anyhow!(
            "campaign facts missing after a passed precheck"
        ))),
        (Ok(verified), Some(Ok(program_id))) if claim.approved => {
            let attempt = Attempt {
                terminal: &ready.terminal,
                key: &ready.key,
                hash: &ready.hash,
                order_ref: &ready.order_ref,
                order: ready.order,
                lines: ready.lines.as_ref(),
                mode: ready.mode,
                claims: &verified.claims,
                program_id: *program_id,
                code_epoch: verified.epoch,
                bucket,
            };
            decide(state, con, &attempt).await
        }
        (Ok(_), Some(Ok(_))) => Ok(Err(Decline::MerchantNotApproved)),
    };
    match decided {
        Ok(Ok(view)) => Ok(Step::Approved(Box::new(view))),
        Ok(Err(decline)) => Ok(Step::Declined(decline)),
        Err(e) if e.is(Code::OrderRefUsed) => Ok(Step::OrderRefUsed),
        Err(e) => Err(e),
    }
}

/// The checkout in a transaction of its own: commit when the step writes, else roll back
/// (before the answer, so the key is free again for a next request; a failed rollback is a
/// broken connection, whose transaction the server ends). On a store failure the
/// transaction is left to the pool: rolling back on a connection that may be gone must not
/// hold the answer.
async fn alone(state: &AppState, ready: Ready) -> Result<(Ready, Step), ApiError> {
    let mut tx = state.pg.begin().await.map_err(StoreError::from)?;
    let step = decide_step(state, &mut tx, &ready, None).await?;
    if step.writes() {
        tx.commit().await.map_err(StoreError::from)?;
    } else {
        let _ = tx.rollback().await;
    }
    Ok((ready, step))
}

/// The answer for a step that is over (committed or rolled back): metrics, and for a
/// decline or `ORDER_REF_USED` the answer a concurrent duplicate committed meanwhile.
async fn finish(
    state: &AppState,
    (ready, step): (Ready, Step),
    started: Instant,
) -> Result<Answer, ApiError> {
    let mode = ready.mode;
    match step {
        Step::Approved(view) => {
            let reason = view.notice.clone().unwrap_or_default();
            state
                .metrics
                .decision(mode.kind(), "approved", &reason, started);
            Ok(Answer {
                status: 200,
                body: serde_json::to_value(&view).map_err(ApiError::internal)?,
            })
        }
        Step::Settled(begin) => settled(state, begin, mode, started),
        Step::Declined(decline) => {
            if let Some(answer) = decided_meanwhile(state, &ready, started).await? {
                return answer;
            }
            state
                .metrics
                .decision(mode.kind(), "declined", decline.as_str(), started);
            Ok(Answer {
                status: 200,
                body: serde_json::to_value(DeclineView::of(decline)).map_err(ApiError::internal)?,
            })
        }
        Step::OrderRefUsed => {
            if let Some(answer) = decided_meanwhile(state, &ready, started).await? {
                return answer;
            }
            Err(ApiError::new(Code::OrderRefUsed))
        }
    }
}

/// The answer for a key that was not free: the stored response replayed, or the conflict.
fn settled(
    state: &AppState,
    begin: IdempotencyBegin,
    mode: Mode,
    started: Instant,
) -> Result<Answer, ApiError> {
    match begin {
        IdempotencyBegin::Done(status, body) => {
            state.metrics.decision(mode.kind(), "replayed", "", started);
            Ok(Answer {
                status: u16::try_from(status).unwrap_or(200),
                body,
            })
        }
        IdempotencyBegin::Mismatch => Err(ApiError::new(Code::IdempotencyKeyReused)),
        IdempotencyBegin::InFlight => Err(ApiError::new(Code::InFlight)),
        IdempotencyBegin::Started => Err(ApiError::internal(anyhow::anyhow!(
            "a key taken by this request is not a settled answer"
        ))),
    }
}

/// After a checkout that took the key did not approve (a decline, `ORDER_REF_USED`): the
/// answer a concurrent duplicate committed between this request's read of the key and its
/// lock, if one did (the retry race: [`voucher_store::pg::idempotency`]).
///
/// # Errors
/// Store failures.
async fn decided_meanwhile(
    state: &AppState,
    ready: &Ready,
    started: Instant,
) -> Result<Option<Result<Answer, ApiError>>, ApiError> {
    let stored = idempotency_stored(
        &state.pg,
        &ready.terminal.merchant_id,
        ready.key.as_str(),
        &ready.hash,
    )
    .await?;
    Ok(stored.map(|begin| settled(state, begin, ready.mode, started)))
}

/// The voucher's program and its campaign's refund policy as the record knows them, with the
/// campaign's budget buckets made sure of (all cached), or the decline an unknown campaign or
/// a program mismatch is.
///
/// # Errors
/// Store failures.
async fn campaign_facts(
    state: &AppState,
    claims: &VoucherClaims,
) -> Result<Result<(ProgramId, RefundPolicy), Decline>, ApiError> {
    let campaign_id = claims.campaign_id;
    let (program_id, policy) = match state.caches.policy_of(&state.pg, campaign_id).await {
        Ok(found) => found,
        Err(StoreError::NotFound) => return Ok(Err(Decline::VoucherNotFound)),
        Err(e) => return Err(e.into()),
    };
    if program_id != claims.program_id {
        return Ok(Err(Decline::TokenInvalid));
    }
    state
        .caches
        .ensure_budget(&state.pg, campaign_id, state.settings.budget.buckets)
        .await?;
    Ok(Ok((program_id, policy)))
}

fn validate(req: &CheckoutRequest) -> Result<(Fen, Option<lines::OrderLines>), ApiError> {
    let order = validate_order(&req.code, req.order_amount_fen)?;
    let len = req.order_ref.chars().count();
    if len == 0 || len > 64 || req.order_ref.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "order_ref",
            "must be 1-64 characters without control characters",
        ));
    }
    let lines = lines::parse(req.lines.as_deref(), order)?;
    Ok((order, lines))
}

/// The scanned code and the order amount of a checkout or a quote, checked.
///
/// # Errors
/// `INVALID_FIELD` naming the field.
pub(crate) fn validate_order(code: &str, order_amount_fen: i64) -> Result<Fen, ApiError> {
    if order_amount_fen <= 0 || order_amount_fen > MAX_ORDER_FEN {
        return Err(ApiError::invalid_field(
            "order_amount_fen",
            format!("must be 1..={MAX_ORDER_FEN} fen"),
        ));
    }
    if code.is_empty() || code.len() > 2048 {
        return Err(ApiError::invalid_field(
            "code",
            "must be a scanned dynamic code",
        ));
    }
    Fen::try_from(order_amount_fen).map_err(|e| ApiError::invalid_field("order_amount_fen", e))
}

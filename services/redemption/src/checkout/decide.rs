//! The decision itself, inside the transaction that holds the idempotency key: a threshold
//! voucher is spent with `… WHERE status = 'issued'` and its discount taken from one budget
//! bucket in one statement (several buckets when none alone is free); a percentage
//! entitlement's row is locked and charged with `… WHERE used_fen + d <= cap_fen`, the
//! discount cut to what the budget has left. Then the redemption row, its event and the
//! stored answer are written. The caller commits; only then is "approved" sent.

use super::idempotency::IdempotencyKey;
use super::views::{redeemed_event, RedemptionView};
use super::{Mode, MAX_ORDER_FEN};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use uuid::Uuid;
use voucher_core::checkout::Decline;
use voucher_core::discount::{self, Limit};
use voucher_core::token::VoucherClaims;
use voucher_core::{Fen, ProgramId, RedemptionId, Rule};
use voucher_store::pg::redemptions::{self as db, RedemptionRecord, RedemptionStatus, SingleUse};
use voucher_store::pg::vouchers::VoucherStatus;
use voucher_store::pg::{budget, entitlements, token_vouchers};
use voucher_store::{Conflict, StoreError};

/// One checkout attempt, checked and ready to decide.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The terminal and its merchant.
    pub terminal: &'a Terminal,
    /// The terminal's idempotency key for this attempt.
    pub key: &'a IdempotencyKey,
    /// The request's hash (what the key is bound to).
    pub hash: &'a str,
    /// The merchant's order reference.
    pub order_ref: &'a str,
    /// The order amount.
    pub order: Fen,
    /// Sale or hold.
    pub mode: Mode,
    /// The voucher, verified.
    pub claims: &'a VoucherClaims,
    /// Its program as the record knows it.
    pub program_id: ProgramId,
    /// The code key epoch the presented code was made with.
    pub code_epoch: u32,
}

/// Why a voucher the decision could not spend was refused: expired, a code made with a
/// revoked key, or already spent (or held).
fn not_spendable(state: Option<token_vouchers::VoucherState>, code_epoch: u32) -> Decline {
    match state {
        Some(v) if v.status == VoucherStatus::Expired => Decline::VoucherExpired,
        Some(v) if v.status == VoucherStatus::Issued && v.code_epoch != code_epoch => {
            Decline::CodeRevoked
        }
        _ => Decline::VoucherAlreadyRedeemed,
    }
}

/// A budget bucket for a redemption: spread by its id.
pub fn bucket_for(state: &AppState, id: RedemptionId) -> i32 {
    let buckets = u128::from(state.settings.budget.buckets.unsigned_abs().max(1));
    i32::try_from(id.0.as_u128() % buckets).unwrap_or(0)
}

/// The decision, inside the transaction that holds the idempotency key: spend the voucher or
/// charge the entitlement, take the discount from the budget, record it all.
///
/// # Errors
/// `ORDER_REF_USED`; store failures.
pub async fn decide(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    attempt: &Attempt<'_>,
) -> Result<Result<RedemptionView, Decline>, ApiError> {
    let Attempt {
        terminal,
        key,
        hash,
        order_ref,
        order,
        mode,
        claims,
        program_id,
        code_epoch,
    } = *attempt;
    let idem_key = key.as_str();
    let campaign_id = claims.campaign_id;
    let now = state.clock.now();
    let id = RedemptionId(Uuid::now_v7());
    let bucket = bucket_for(state, id);
    let voucher_id = claims.voucher_id;
    let person = &claims.person_id;

    let (status, hold_expires_at) = match mode {
        Mode::Sale => (RedemptionStatus::Approved, None),
        Mode::Hold => (
            RedemptionStatus::Held,
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
        person_id: person.clone(),
        single_use: claims.rule.is_single_use(),
        status,
        order_ref: order_ref.to_owned(),
        order_amount_fen: order.as_i64(),
        discount_fen: discount,
        refunded_amount_fen: 0,
        reversed_fen: 0,
        notice: notice.map(str::to_owned),
        hold_expires_at,
        created_at: now,
        resolved_at: None,
    };
    let (discount, notice, cap_exhausted) = match claims.rule.clone() {
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
                code_epoch,
            )
            .await
            {
                Ok(SingleUse::Recorded) => return Ok(Ok(view)),
                Ok(SingleUse::NotIssued) => {
                    let state = token_vouchers::voucher_state(tx, voucher_id).await?;
                    return Ok(Err(not_spendable(state, code_epoch)));
                }
                Ok(SingleUse::BudgetBusy) => {
                    // Undo the attempt: besides spending the voucher it may hold the lock of
                    // a bucket it could not use (PostgreSQL keeps a row lock taken to re-check
                    // a row that no longer qualified), and gathering under the campaign lock
                    // while holding it could deadlock with another gatherer.
                    db::rollback_to_savepoint(tx).await?;
                    if !token_vouchers::spend_voucher_from_token(tx, claims, code_epoch).await? {
                        let state = token_vouchers::voucher_state(tx, voucher_id).await?;
                        return Ok(Err(not_spendable(state, code_epoch)));
                    }
                }
                Err(StoreError::NotFound) => return Ok(Err(Decline::VoucherNotFound)),
                Err(StoreError::Conflict(Conflict::OrderRef)) => {
                    return Err(ApiError::new(Code::OrderRefUsed))
                }
                Err(e) => return Err(e.into()),
            }
            // Spent again, no bucket lock held: gather from several buckets.
            if budget::take_budget(tx, campaign_id, amount, false, bucket).await? < amount {
                return Ok(Err(Decline::BudgetExhausted));
            }
            (amount, None, false)
        }
        Rule::Percent {
            rate_bp,
            per_person_cap,
        } => {
            match token_vouchers::insert_voucher_from_token(tx, claims).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => return Ok(Err(Decline::VoucherNotFound)),
                Err(e) => return Err(e.into()),
            }
            let state = token_vouchers::voucher_state(tx, voucher_id).await?;
            if state
                .is_some_and(|v| v.status == VoucherStatus::Expired || v.code_epoch != code_epoch)
            {
                return Ok(Err(not_spendable(state, code_epoch)));
            }
            let (used, cap) =
                entitlements::lock_entitlement(tx, campaign_id, person, per_person_cap.as_i64())
                    .await?;
            let cap_remaining = Fen::try_from(cap - used).unwrap_or(Fen::ZERO);
            // The budget limit is applied by taking from the buckets below.
            let d = discount::percent(
                rate_bp,
                order,
                cap_remaining,
                Fen::try_from(MAX_ORDER_FEN).unwrap_or_default(),
            );
            let taken =
                budget::take_budget(tx, campaign_id, d.amount.as_i64(), true, bucket).await?;
            if taken > 0 && !entitlements::use_entitlement(tx, campaign_id, person, taken).await? {
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
        // TODO(issue 12, checkout helper): per-item and annual-card decisions.
        Rule::ItemPercent(_) | Rule::AnnualCard { .. } => {
            return Ok(Err(Decline::ItemsRequired))
        }
    };
    let record = record_of(discount, notice);
    let view = RedemptionView::of(&record, cap_exhausted);
    let body = serde_json::to_value(&view).map_err(ApiError::internal)?;
    let event = (mode == Mode::Sale).then(|| redeemed_event(&record, now));
    match db::record_decision(tx, &record, event.as_ref(), idem_key, hash, &body).await {
        Ok(()) => Ok(Ok(view)),
        Err(StoreError::Conflict(Conflict::OrderRef)) => Err(ApiError::new(Code::OrderRefUsed)),
        Err(e) => Err(e.into()),
    }
}

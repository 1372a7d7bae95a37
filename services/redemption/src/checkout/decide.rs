//! The decision itself, inside the transaction that holds the idempotency key: a threshold
//! voucher is spent with `… WHERE status = 'issued'` and its discount taken from one budget
//! bucket in one statement (several buckets when none alone is free); a percentage
//! entitlement's row is locked and charged with `… WHERE used_fen + d <= cap_fen`, the
//! discount cut to what the budget has left; a per-item voucher or an annual card is decided
//! by [`super::items`] under the same entitlement row lock. When the order's lines carry
//! certifications the program has extra rules for, the extras are granted after the budget
//! (a threshold voucher then takes the step-by-step path rather than the one statement, whose
//! stored answer would not know them). Then the redemption row, its event and the stored
//! answer are written, and after them the per-item lines, the extras and, for a sale, the
//! extras' settlement lines. The caller commits; only then is "approved" sent.
//!
//! When the record did not hold the voucher (it was inserted from its token in this
//! transaction), the last step counts the person's vouchers of the campaign under a (campaign,
//! person) lock and declines `PERSON_LIMIT_EXCEEDED` beyond the campaign's limit
//! ([`token_vouchers::person_vouchers`]: issue 13's second line of defence). It comes last so
//! that the transaction holding that lock waits for nothing else; the decline rolls back
//! everything the decision wrote. A voucher already in the record never takes the lock.

use super::idempotency::IdempotencyKey;
use super::items::{self, Decided};
use super::lines::OrderLines;
use super::views::{redeemed_event, ItemView, RedemptionView};
use super::{Mode, MAX_ORDER_FEN};
use crate::error::{ApiError, Code};
use crate::extras::{self, ExtraView};
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use uuid::Uuid;
use voucher_core::checkout::Decline;
use voucher_core::discount::{self, Limit};
use voucher_core::token::VoucherClaims;
use voucher_core::{Fen, ProgramId, RedemptionId, Rule};
use voucher_store::pg::item_counts::{self, RedemptionItem};
use voucher_store::pg::redemptions::{self as db, RedemptionRecord, RedemptionStatus, SingleUse};
use voucher_store::pg::token_vouchers::{self, TokenSpend};
use voucher_store::pg::vouchers::VoucherStatus;
use voucher_store::pg::{budget, entitlements};
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
    /// The order's lines, when the terminal sent them.
    pub lines: Option<&'a OrderLines>,
    /// Sale or hold.
    pub mode: Mode,
    /// The voucher, verified.
    pub claims: &'a VoucherClaims,
    /// Its program as the record knows it.
    pub program_id: ProgramId,
    /// The code key epoch the presented code was made with.
    pub code_epoch: u32,
    /// `Some`: decided inside a group commit's batch, trying the batch's own budget bucket
    /// first (so that its decisions share the bucket row it already holds), in a savepoint of
    /// its own that the batch rolls back on any error — the threshold sale then saves its own
    /// savepoint's round trip, and leaves the rare case of no free bucket to be decided alone
    /// after the batch. `None`: alone, the bucket spread by the redemption id.
    pub bucket: Option<i32>,
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

/// Inserts an entitlement voucher (percentage, per-item, annual card: never spent whole) from
/// its token if the record lacks it, and refuses one that expired or whose code was made with
/// a revoked key. `Ok(true)`: inserted from its token now.
async fn entitlement_voucher(
    tx: &mut sqlx::PgConnection,
    claims: &VoucherClaims,
    code_epoch: u32,
) -> Result<Result<bool, Decline>, ApiError> {
    let inserted = match token_vouchers::insert_voucher_from_token(tx, claims).await {
        Ok(inserted) => inserted,
        Err(StoreError::NotFound) => return Ok(Err(Decline::VoucherNotFound)),
        Err(e) => return Err(e.into()),
    };
    let state = token_vouchers::voucher_state(tx, claims.voucher_id).await?;
    if state.is_some_and(|v| v.status == VoucherStatus::Expired || v.code_epoch != code_epoch) {
        return Ok(Err(not_spendable(state, code_epoch)));
    }
    Ok(Ok(inserted))
}

/// The person's limit at the record, for a voucher this transaction inserted from its token:
/// `PERSON_LIMIT_EXCEEDED` when the record now holds more of the person's vouchers of the
/// campaign than it allows. Logged at WARN: an honest client never causes it (a claim was
/// acknowledged and lost, and the person claimed again), so an operator should see it.
async fn beyond_person_limit(
    tx: &mut sqlx::PgConnection,
    claims: &VoucherClaims,
) -> Result<Option<Decline>, ApiError> {
    let counted =
        match token_vouchers::person_vouchers(tx, claims.campaign_id, &claims.person_id).await {
            Ok(counted) => counted,
            Err(StoreError::NotFound) => return Ok(Some(Decline::VoucherNotFound)),
            Err(e) => return Err(e.into()),
        };
    if !counted.exceeded() {
        return Ok(None);
    }
    tracing::warn!(
        campaign = claims.campaign_id.0,
        voucher = %claims.voucher_id.0,
        held = counted.held - 1,
        limit = counted.limit,
        "a voucher known only by its token is refused: the record already holds the person's \
         limit of vouchers of its campaign (a claim acknowledged but lost before the record?)"
    );
    Ok(Some(Decline::PersonLimitExceeded))
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
        lines,
        mode,
        claims,
        program_id,
        code_epoch,
        bucket,
    } = *attempt;
    let in_batch = bucket.is_some();
    let idem_key = key.as_str();
    let campaign_id = claims.campaign_id;
    let now = state.now_stored();
    let id = RedemptionId(Uuid::now_v7());
    let bucket = bucket.unwrap_or_else(|| bucket_for(state, id));
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
    // Extras are granted on lines certified for attributes the program has active rules for;
    // such a checkout takes the path that can add them (a threshold voucher's one-statement
    // decision writes the answer before they are known).
    let extra_rules = extras::applicable(tx, program_id, lines).await?;
    // Whether the voucher was inserted from its token by this transaction (see the module
    // documentation: the person's limit is checked last).
    let mut from_token = false;
    let (discount, notice, cap_exhausted, priced) = match claims.rule.clone() {
        Rule::Threshold { min_spend, off } => {
            let amount = match discount::threshold(min_spend, off, order) {
                Ok(a) => a.as_i64(),
                Err(_) => return Ok(Err(Decline::BelowThreshold)),
            };
            if extra_rules.is_empty() {
                // The whole decision in one statement (spend, budget, record) when a budget
                // bucket is free; the answer is known before it runs.
                let record = record_of(amount, None);
                let view = RedemptionView::of(&record, false);
                let body = serde_json::to_value(&view).map_err(ApiError::internal)?;
                let event = (mode == Mode::Sale).then(|| redeemed_event(&record, now));
                if !in_batch {
                    db::savepoint(tx).await?;
                }
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
                    Ok(SingleUse::Recorded { from_token }) => {
                        if from_token {
                            if let Some(decline) = beyond_person_limit(tx, claims).await? {
                                return Ok(Err(decline));
                            }
                        }
                        return Ok(Ok(view));
                    }
                    Ok(SingleUse::NotIssued) => {
                        let state = token_vouchers::voucher_state(tx, voucher_id).await?;
                        return Ok(Err(not_spendable(state, code_epoch)));
                    }
                    Ok(SingleUse::BudgetBusy) if in_batch => {
                        // The batch rolls this decision back to its own savepoint; alone,
                        // after the batch, it may gather across buckets.
                        return Err(ApiError::unavailable(anyhow::anyhow!(
                            "no budget bucket free in a batch: decided alone"
                        )));
                    }
                    Ok(SingleUse::BudgetBusy) => {
                        // Undo the attempt: besides spending the voucher it may hold the lock
                        // of a bucket it could not use (PostgreSQL keeps a row lock taken to
                        // re-check a row that no longer qualified), and gathering under the
                        // campaign lock while holding it could deadlock with another gatherer.
                        db::rollback_to_savepoint(tx).await?;
                    }
                    Err(StoreError::NotFound) => return Ok(Err(Decline::VoucherNotFound)),
                    Err(StoreError::Conflict(Conflict::OrderRef)) => {
                        return Err(ApiError::new(Code::OrderRefUsed))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            match token_vouchers::spend_voucher_from_token(tx, claims, code_epoch).await {
                Ok(TokenSpend::Spent) => {}
                Ok(TokenSpend::SpentFromToken) => from_token = true,
                Ok(TokenSpend::NotSpendable) => {
                    let state = token_vouchers::voucher_state(tx, voucher_id).await?;
                    return Ok(Err(not_spendable(state, code_epoch)));
                }
                Err(StoreError::NotFound) => return Ok(Err(Decline::VoucherNotFound)),
                Err(e) => return Err(e.into()),
            }
            // Spent, no bucket lock held: gather from several buckets if need be.
            if budget::take_budget(tx, campaign_id, amount, false, bucket).await? < amount {
                return Ok(Err(Decline::BudgetExhausted));
            }
            (amount, None, false, Vec::new())
        }
        Rule::Percent {
            rate_bp,
            per_person_cap,
        } => {
            match entitlement_voucher(tx, claims, code_epoch).await? {
                Ok(inserted) => from_token = inserted,
                Err(decline) => return Ok(Err(decline)),
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
            (taken, notice, used + taken >= cap, Vec::new())
        }
        Rule::ItemPercent(rule) => {
            match entitlement_voucher(tx, claims, code_epoch).await? {
                Ok(inserted) => from_token = inserted,
                Err(decline) => return Ok(Err(decline)),
            }
            match items::item_percent(tx, &rule, claims, lines, bucket).await? {
                Ok(Decided {
                    discount,
                    notice,
                    cap_exhausted,
                    items,
                }) => (discount, notice, cap_exhausted, items),
                Err(decline) => return Ok(Err(decline)),
            }
        }
        Rule::AnnualCard { subsidy } => {
            match entitlement_voucher(tx, claims, code_epoch).await? {
                Ok(inserted) => from_token = inserted,
                Err(decline) => return Ok(Err(decline)),
            }
            let d = items::annual_card(tx, subsidy, claims, order, bucket).await?;
            (d.discount, d.notice, d.cap_exhausted, Vec::new())
        }
    };
    // Extras, after the campaign budget (the store's lock order), within what is left to pay.
    let granted = match lines {
        Some(lines) if !extra_rules.is_empty() => {
            let room = Fen::try_from(order.as_i64() - discount).unwrap_or(Fen::ZERO);
            extras::grant(tx, program_id, person, lines, &extra_rules, room).await?
        }
        _ => Vec::new(),
    };
    let record = record_of(discount, notice);
    let stored_items: Vec<RedemptionItem> = priced
        .iter()
        .enumerate()
        .map(|(i, l)| RedemptionItem {
            line_no: i32::try_from(i).unwrap_or(i32::MAX),
            product_category: l.product_category.as_str().to_owned(),
            unit_price_fen: l.unit_price.as_i64(),
            quantity: i32::try_from(l.quantity).unwrap_or(i32::MAX),
            per_item_fen: l.per_item.as_i64(),
            discount_fen: l.discount.as_i64(),
        })
        .collect();
    let extra_views: Vec<ExtraView> = granted
        .iter()
        .map(|g| ExtraView {
            attribute: g.attribute.as_str().to_owned(),
            kind: extras::kind(g.attribute.as_str()),
            base_fen: g.base.as_i64(),
            amount_fen: g.amount.as_i64(),
            reversed_fen: 0,
        })
        .collect();
    let view = RedemptionView::of(&record, cap_exhausted)
        .with_details(stored_items.iter().map(ItemView::of).collect(), extra_views);
    let body = serde_json::to_value(&view).map_err(ApiError::internal)?;
    let event = (mode == Mode::Sale).then(|| redeemed_event(&record, now));
    match db::record_decision(tx, &record, event.as_ref(), idem_key, hash, &body).await {
        Ok(()) => {}
        Err(StoreError::Conflict(Conflict::OrderRef)) => {
            return Err(ApiError::new(Code::OrderRefUsed))
        }
        Err(e) => return Err(e.into()),
    }
    item_counts::insert_items(tx, id, &stored_items).await?;
    if !granted.is_empty() {
        let place = extras::settlement_place(claims.place, terminal.place);
        let counted_at = (mode == Mode::Sale).then_some(now);
        extras::record(tx, &record, &granted, place, counted_at).await?;
    }
    if from_token {
        if let Some(decline) = beyond_person_limit(tx, claims).await? {
            return Ok(Err(decline));
        }
    }
    Ok(Ok(view))
}

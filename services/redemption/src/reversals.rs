//! Reversals (退货): give a redemption's discount back, fully or partly, within the refund
//! window, according to the program's refund policy (POLICY rule 9).
//!
//! The terminal sends its own `reversal_ref` (and optionally `refund_amount_fen`, the part of
//! the order refunded; absent = everything not yet refunded). The discount reversed is the
//! proportional part, computed on cumulative totals so that partial reversals add up exactly
//! to the discount: `⌊D × (R + r) / A⌋ − ⌊D × R / A⌋`. Single-use (threshold) vouchers are
//! reversed only in full.
//!
//! Idempotent like a card reversal advice: the same `reversal_ref` answers the first result
//! again; a full reversal of something already fully reversed answers `nothing_to_reverse`
//! and writes nothing; an unknown redemption is always `404 REDEMPTION_NOT_FOUND`.
//! Policy `restore` makes a single-use voucher usable again and gives the entitlement back;
//! `forfeit` only corrects spending. Either way the budget gets the discount back.
//!
//! A per-item (以旧换新) redemption gives its items back to the person's category counts when
//! the reversal completes the refund of the whole order (policy `restore`): a partial refund
//! returns its share of the discount but no item, since the amount refunded does not say
//! which item came back. An annual card's first entry refunded in full makes its subsidy
//! available again (`restore`). Extras on certified lines are given back in proportion to
//! the amount refunded, each with a negative settlement line of its own
//! ([`crate::extras::reverse`]).

use crate::checkout::decide::bucket_for;
use crate::error::{ApiError, Code};
use crate::extras;
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voucher_core::{RedemptionId, RefundPolicy, ReversalId};
use voucher_proto::events::{event_envelope::Event, EventEnvelope, RedemptionReversed};
use voucher_store::pg::extras as extras_db;
use voucher_store::pg::redemptions::{self as db, RedemptionStatus};
use voucher_store::pg::reversals::{self, ReversalRecord};
use voucher_store::pg::{budget, entitlements, event_log, item_counts, token_vouchers};
use voucher_store::{Conflict, StoreError};

/// `POST /v1/redemptions/{id}/reversals` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReversalRequest {
    /// The merchant's reference for this reversal, 1–64 characters (the idempotency key).
    pub reversal_ref: String,
    /// The part of the order refunded, fen; absent = all that is not yet refunded.
    #[serde(default)]
    pub refund_amount_fen: Option<i64>,
}

/// The answer to a reversal.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReversalView {
    /// `reversed`, or `nothing_to_reverse` (already fully reversed: a no-op).
    pub outcome: String,
    /// The reversal's id (absent for a no-op).
    pub reversal_id: Option<Uuid>,
    /// The reversed redemption.
    pub redemption_id: Uuid,
    /// The merchant's reference.
    pub reversal_ref: String,
    /// Order amount refunded by this reversal, fen.
    pub refund_amount_fen: i64,
    /// Discount given back by this reversal, fen.
    pub discount_reversed_fen: i64,
    /// Extras (on certified lines) given back by this reversal, fen: each a negative
    /// settlement line of the merchant's.
    pub extras_reversed_fen: i64,
    /// Whether the voucher or entitlement was restored (policy `restore`).
    pub restored: bool,
    /// When.
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
}

impl ReversalView {
    fn of(r: &ReversalRecord) -> ReversalView {
        ReversalView {
            outcome: "reversed".to_owned(),
            reversal_id: Some(r.id.0),
            redemption_id: r.redemption_id.0,
            reversal_ref: r.reversal_ref.clone(),
            refund_amount_fen: r.refund_amount_fen,
            discount_reversed_fen: r.discount_reversed_fen,
            extras_reversed_fen: 0,
            restored: r.restored,
            created_at: r.created_at,
        }
    }
}

/// The discount to give back when `refund` more of an `order` with `discount` is refunded,
/// `refunded` having been refunded before.
pub fn proportional(discount: i64, order: i64, refunded: i64, refund: i64) -> i64 {
    if order <= 0 {
        return 0;
    }
    let part = |r: i64| i128::from(discount) * i128::from(r) / i128::from(order);
    i64::try_from(part(refunded + refund) - part(refunded)).unwrap_or(0)
}

/// Reverses (part of) a redemption.
///
/// # Errors
/// `REDEMPTION_NOT_FOUND`, `NOT_REVERSIBLE`, `REFUND_WINDOW_CLOSED`, `REFUND_NOT_ALLOWED`,
/// `INVALID_FIELD`.
#[tracing::instrument(name = "redemption.reversals.reverse", skip_all, err(level = "debug"))]
pub async fn reverse(
    state: &AppState,
    terminal: &Terminal,
    id: Uuid,
    req: ReversalRequest,
) -> Result<ReversalView, ApiError> {
    let len = req.reversal_ref.chars().count();
    if len == 0 || len > 64 || req.reversal_ref.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "reversal_ref",
            "must be 1-64 characters without control characters",
        ));
    }
    if req.refund_amount_fen.is_some_and(|a| a <= 0) {
        return Err(ApiError::invalid_field(
            "refund_amount_fen",
            "must be positive",
        ));
    }
    let now = state.now_stored();
    let mut tx = state.pg.begin().await.map_err(StoreError::from)?;
    let r = db::redemption_by_id(&mut tx, &terminal.merchant_id, RedemptionId(id), true)
        .await?
        .ok_or_else(|| ApiError::new(Code::RedemptionNotFound))?;
    if let Some(done) = reversals::reversal_by_ref(&mut tx, r.id, &req.reversal_ref).await? {
        let extras_reversed_fen = extras_db::reversed_by(&mut tx, r.id, done.id.0).await?;
        return Ok(ReversalView {
            extras_reversed_fen,
            ..ReversalView::of(&done)
        });
    }
    if !matches!(
        r.status,
        RedemptionStatus::Approved | RedemptionStatus::Captured
    ) {
        return Err(ApiError::new(Code::NotReversible).with_message(format!(
            "a redemption that is {} cannot be reversed",
            r.status
        )));
    }
    if now > r.created_at + chrono::Duration::days(state.settings.refunds.window_days) {
        return Err(ApiError::new(Code::RefundWindowClosed));
    }
    let left = r.order_amount_fen - r.refunded_amount_fen;
    let refund = req.refund_amount_fen.unwrap_or(left);
    if refund == 0 {
        return Ok(ReversalView {
            outcome: "nothing_to_reverse".to_owned(),
            reversal_id: None,
            redemption_id: r.id.0,
            reversal_ref: req.reversal_ref,
            refund_amount_fen: 0,
            discount_reversed_fen: 0,
            extras_reversed_fen: 0,
            restored: false,
            created_at: now,
        });
    }
    if refund > left {
        return Err(ApiError::new(Code::RefundNotAllowed)
            .with_message(format!("only {left} fen of the order is left to refund")));
    }
    if r.single_use && refund != r.order_amount_fen {
        return Err(ApiError::new(Code::RefundNotAllowed)
            .with_message("a single-use voucher's redemption is reversed only in full"));
    }
    let delta = proportional(
        r.discount_fen,
        r.order_amount_fen,
        r.refunded_amount_fen,
        refund,
    );
    let (_, policy) = state.caches.policy_of(&state.pg, r.campaign_id).await?;
    let restored = policy == RefundPolicy::Restore;
    if restored {
        if r.single_use {
            token_vouchers::unspend_voucher(&mut tx, r.voucher_id).await?;
        } else if delta > 0
            && !entitlements::use_entitlement(&mut tx, r.campaign_id, &r.person_id, -delta).await?
        {
            return Err(ApiError::internal(anyhow::anyhow!(
                "entitlement below zero on reversal"
            )));
        }
        // Lock order as in a checkout: entitlement, category counts, budget, extras.
        if !r.single_use && r.refunded_amount_fen + refund == r.order_amount_fen {
            let items = item_counts::items_of(&mut tx, &[r.id])
                .await?
                .remove(&r.id.0)
                .unwrap_or_default();
            if !items.is_empty() {
                let per_category = item_counts::per_category(&items);
                item_counts::return_items(&mut tx, r.campaign_id, &r.person_id, &per_category)
                    .await?;
            }
        }
    }
    budget::return_budget(&mut tx, r.campaign_id, delta, bucket_for(state, r.id)).await?;
    let reversal_id = ReversalId(Uuid::now_v7());
    let extras_reversed_fen: i64 =
        extras::reverse(&mut tx, &r, refund, reversal_id.0, restored, now)
            .await?
            .iter()
            .map(|(_, back)| back)
            .sum();
    let record = ReversalRecord {
        id: reversal_id,
        redemption_id: r.id,
        reversal_ref: req.reversal_ref,
        refund_amount_fen: refund,
        discount_reversed_fen: delta,
        restored,
        created_at: now,
    };
    match reversals::insert_reversal(&mut tx, &record).await {
        Ok(()) => {}
        Err(StoreError::Conflict(Conflict::ReversalTotals | Conflict::ReversalRef)) => {
            return Err(ApiError::new(Code::InFlight)
                .with_message("a concurrent reversal changed this redemption; retry"))
        }
        Err(e) => return Err(e.into()),
    }
    let event = EventEnvelope {
        event_id: Uuid::now_v7().as_bytes().to_vec(),
        occurred_at_ms: now.timestamp_millis(),
        campaign_id: r.campaign_id.0,
        event: Some(Event::RedemptionReversed(RedemptionReversed {
            voucher_id: r.voucher_id.0.as_bytes().to_vec(),
            redemption_id: r.id.0.as_bytes().to_vec(),
            reversal_id: record.id.0.as_bytes().to_vec(),
            discount_reversed: delta,
        })),
    };
    event_log::append_event(&mut tx, &event).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(ReversalView {
        extras_reversed_fen,
        ..ReversalView::of(&record)
    })
}

#[cfg(test)]
mod tests {
    use super::proportional;

    #[test]
    fn partial_reversals_add_up_to_the_discount() {
        let (d, a) = (1_999, 19_990);
        let parts = [3_333, 3_333, 3_333, 9_991];
        let mut refunded = 0;
        let mut total = 0;
        for p in parts {
            total += proportional(d, a, refunded, p);
            refunded += p;
        }
        assert_eq!((refunded, total), (a, d));
        assert_eq!(proportional(1_000, 10_000, 0, 5_000), 500);
    }
}

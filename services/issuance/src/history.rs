//! What I spent with my vouchers, where, and how much I saved: the resident's history, read
//! from the redemptions of the record (newest first).

use crate::error::ApiError;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use voucher_core::identity::Identity;
use voucher_store::pg::vouchers;

/// Most rows answered.
const LIMIT: i64 = 200;

/// One spending.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Spending {
    /// The redemption.
    pub redemption_id: Uuid,
    /// The voucher.
    pub voucher_id: Uuid,
    /// The voucher's campaign.
    pub campaign_name: String,
    /// Where.
    pub merchant_name: String,
    /// The order, fen.
    pub order_amount_fen: i64,
    /// The discount granted, fen.
    pub discount_fen: i64,
    /// What I paid, fen (order − discount).
    pub to_pay_fen: i64,
    /// Discount given back by refunds, fen.
    pub reversed_fen: i64,
    /// `approved`, `held`, `captured`, `voided` or `expired`.
    pub status: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// My history with totals.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct History {
    /// Newest first.
    pub redemptions: Vec<Spending>,
    /// What I paid for completed sales (approved or captured), less refunds, fen.
    pub total_spent_fen: i64,
    /// What the vouchers saved me on those (discounts less reversals), fen.
    pub total_saved_fen: i64,
}

/// My history.
///
/// # Errors
/// PostgreSQL failure.
#[tracing::instrument(name = "issuance.history.mine", skip_all)]
pub async fn mine(state: &AppState, who: &Identity) -> Result<History, ApiError> {
    let rows = vouchers::spendings_of(&state.pg, &who.person_id, LIMIT).await?;
    let mut history = History {
        redemptions: Vec::with_capacity(rows.len()),
        total_spent_fen: 0,
        total_saved_fen: 0,
    };
    for r in rows {
        let to_pay = r.order_amount_fen - r.discount_fen;
        if r.status == "approved" || r.status == "captured" {
            // A refund gives back the part of the order refunded, less the part of the
            // discount reversed with it.
            history.total_spent_fen += to_pay - (r.refunded_amount_fen - r.reversed_fen);
            history.total_saved_fen += r.discount_fen - r.reversed_fen;
        }
        history.redemptions.push(Spending {
            redemption_id: r.redemption_id,
            voucher_id: r.voucher_id,
            campaign_name: r.campaign_name,
            merchant_name: r.merchant_name,
            order_amount_fen: r.order_amount_fen,
            discount_fen: r.discount_fen,
            to_pay_fen: to_pay,
            reversed_fen: r.reversed_fen,
            status: r.status,
            created_at: r.created_at,
        });
    }
    Ok(history)
}

//! What a terminal hears: an approved (or held) redemption, a decline, and the stored
//! answer replayed for a repeated `Idempotency-Key`; and the `VoucherRedeemed` event a
//! sale or a capture records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voucher_core::checkout::Decline;
use voucher_proto::events::{event_envelope::Event, EventEnvelope, VoucherRedeemed};
use voucher_store::pg::item_counts::RedemptionItem;
use voucher_store::pg::redemptions::RedemptionRecord;

use crate::extras::ExtraView;

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
    /// Σ of the extras granted on certified lines (`extras`), fen.
    pub extras_fen: i64,
    /// What the customer still pays, fen: order − discount − extras.
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
    /// A per-item (以旧换新) voucher's lines as subsidised (absent for other vouchers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemView>,
    /// The extras granted by the program's rules on certified lines, each settled to the
    /// merchant as its own line (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<ExtraView>,
}

/// One line of a per-item redemption as subsidised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemView {
    /// Position on the order, from 0.
    pub line_no: i32,
    /// The product category.
    pub product_category: String,
    /// Price of one unit, fen.
    pub unit_price_fen: i64,
    /// Units.
    pub quantity: i32,
    /// What one unit got: min(⌊price × rate⌋, cap per item), fen.
    pub per_item_fen: i64,
    /// What the line got (per item × quantity, possibly cut by the person's cap or the
    /// budget), fen.
    pub discount_fen: i64,
}

impl ItemView {
    /// The view of a stored line.
    pub fn of(i: &RedemptionItem) -> ItemView {
        ItemView {
            line_no: i.line_no,
            product_category: i.product_category.clone(),
            unit_price_fen: i.unit_price_fen,
            quantity: i.quantity,
            per_item_fen: i.per_item_fen,
            discount_fen: i.discount_fen,
        }
    }
}

impl RedemptionView {
    /// The view of a stored redemption.
    pub fn of(r: &RedemptionRecord, cap_exhausted: bool) -> RedemptionView {
        RedemptionView {
            outcome: "approved".to_owned(),
            redemption_id: r.id.0,
            status: r.status.as_str().to_owned(),
            voucher_id: r.voucher_id.0,
            campaign_id: r.campaign_id.0,
            order_ref: r.order_ref.clone(),
            order_amount_fen: r.order_amount_fen,
            discount_fen: r.discount_fen,
            extras_fen: 0,
            to_pay_fen: r.order_amount_fen - r.discount_fen,
            reversed_fen: r.reversed_fen,
            notice: r.notice.clone(),
            cap_exhausted,
            hold_expires_at: r.hold_expires_at,
            created_at: r.created_at,
            items: Vec::new(),
            extras: Vec::new(),
        }
    }

    /// With the redemption's subsidised lines and extras (and what the customer pays
    /// accordingly).
    pub fn with_details(mut self, items: Vec<ItemView>, extras: Vec<ExtraView>) -> RedemptionView {
        self.extras_fen = extras.iter().map(|e| e.amount_fen).sum();
        self.to_pay_fen = self.order_amount_fen - self.discount_fen - self.extras_fen;
        self.items = items;
        self.extras = extras;
        self
    }
}

/// Loads the subsidised lines and extras of stored redemptions into their views (two
/// queries for any number of views).
///
/// # Errors
/// Database failure.
pub async fn load_details(
    con: &mut sqlx::PgConnection,
    views: Vec<RedemptionView>,
) -> Result<Vec<RedemptionView>, voucher_store::StoreError> {
    use voucher_store::pg::{extras, item_counts};
    let ids: Vec<voucher_core::RedemptionId> = views
        .iter()
        .map(|v| voucher_core::RedemptionId(v.redemption_id))
        .collect();
    let mut items = item_counts::items_of(&mut *con, &ids).await?;
    let mut granted = extras::extras_of(&mut *con, &ids).await?;
    Ok(views
        .into_iter()
        .map(|v| {
            let i = items.remove(&v.redemption_id).unwrap_or_default();
            let e = granted.remove(&v.redemption_id).unwrap_or_default();
            v.with_details(
                i.iter().map(ItemView::of).collect(),
                e.iter().map(ExtraView::of).collect(),
            )
        })
        .collect())
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

/// The 200 of a checkout (`POST /v1/redemptions`, `POST /v1/authorizations`), for the
/// OpenAPI document: one of two shapes, told apart by `outcome`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documentation only: the handler sends an [`Answer`]
pub enum CheckoutAnswer {
    /// `outcome: "approved"`: the sale (or the hold) as recorded.
    Approved(RedemptionView),
    /// `outcome: "declined"`: why, and nothing was written.
    Declined(DeclineView),
}

/// The 200 of `POST /v1/quotes`, for the OpenAPI document: the quote, or the decline a
/// checkout would meet now.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = QuoteAnswer)]
#[allow(dead_code)] // documentation only: the handler sends a `QuoteAnswer`
pub enum QuoteAnswerSchema {
    /// `outcome: "quote"`.
    Quote(crate::quote::Quote),
    /// `outcome: "declined"`.
    Declined(DeclineView),
}

/// What the handler sends: a status and a JSON body (also what is stored for replay).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
}

impl DeclineView {
    /// The body of `decline`.
    pub fn of(decline: Decline) -> DeclineView {
        DeclineView {
            outcome: "declined".to_owned(),
            reason: decline.as_str().to_owned(),
            message: decline.message().to_owned(),
        }
    }
}

/// The `VoucherRedeemed` event of a redemption.
pub fn redeemed_event(r: &RedemptionRecord, at: DateTime<Utc>) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::now_v7().as_bytes().to_vec(),
        occurred_at_ms: at.timestamp_millis(),
        campaign_id: r.campaign_id.0,
        event: Some(Event::VoucherRedeemed(VoucherRedeemed {
            voucher_id: r.voucher_id.0.as_bytes().to_vec(),
            redemption_id: r.id.0.as_bytes().to_vec(),
            merchant_id: r.merchant_id.as_str().to_owned(),
            order_amount: r.order_amount_fen,
            discount: r.discount_fen,
        })),
    }
}

//! Merchant queries: a day's redemptions with totals (the day in China Standard Time,
//! UTC+8, the merchants' business day), one redemption by id or by order reference.

use crate::checkout::views::{load_details, RedemptionView};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use chrono::{FixedOffset, NaiveDate, TimeZone as _};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voucher_core::RedemptionId;
use voucher_store::pg::redemptions::{self as db, RedemptionStatus};
use voucher_store::StoreError;

/// A day's redemptions and totals.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DayReport {
    /// `YYYY-MM-DD` (UTC+8).
    pub date: String,
    /// Approved sales and captured holds.
    pub count: u64,
    /// Σ order amounts of those, fen.
    pub order_amount_fen: i64,
    /// Σ discounts of those, fen.
    pub discount_fen: i64,
    /// Σ discounts reversed of those, fen.
    pub reversed_fen: i64,
    /// discount − reversed, fen: what the merchant is reimbursed for the vouchers.
    pub net_discount_fen: i64,
    /// Σ extras on certified lines of those, net of what reversals gave back, fen: reimbursed
    /// too, each as its own settlement line.
    pub net_extras_fen: i64,
    /// Every redemption of the day (holds, voided and expired included).
    pub redemptions: Vec<RedemptionView>,
}

/// `?date=YYYY-MM-DD`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
pub struct DayQuery {
    /// The day, UTC+8.
    pub date: String,
}

/// The merchant's redemptions of `date`.
///
/// # Errors
/// `INVALID_FIELD` for a bad date.
pub async fn day(state: &AppState, terminal: &Terminal, date: &str) -> Result<DayReport, ApiError> {
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid_field("date", "must be YYYY-MM-DD"))?;
    let cst = FixedOffset::east_opt(8 * 3600)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("offset")))?;
    let start = day
        .and_hms_opt(0, 0, 0)
        .and_then(|t| cst.from_local_datetime(&t).single())
        .ok_or_else(|| ApiError::invalid_field("date", "out of range"))?
        .to_utc();
    let end = start + chrono::Duration::days(1);
    let rows = db::redemptions_between(&state.pg, &terminal.merchant_id, start, end).await?;
    let mut report = DayReport {
        date: date.to_owned(),
        count: 0,
        order_amount_fen: 0,
        discount_fen: 0,
        reversed_fen: 0,
        net_discount_fen: 0,
        net_extras_fen: 0,
        redemptions: Vec::with_capacity(rows.len()),
    };
    for r in &rows {
        if matches!(
            r.status,
            RedemptionStatus::Approved | RedemptionStatus::Captured
        ) {
            report.count += 1;
            report.order_amount_fen += r.order_amount_fen;
            report.discount_fen += r.discount_fen;
            report.reversed_fen += r.reversed_fen;
        }
        report.redemptions.push(RedemptionView::of(r, false));
    }
    report.net_discount_fen = report.discount_fen - report.reversed_fen;
    let mut con = state.pg.acquire().await.map_err(StoreError::from)?;
    report.redemptions = load_details(&mut con, std::mem::take(&mut report.redemptions)).await?;
    report.net_extras_fen = report
        .redemptions
        .iter()
        .filter(|v| v.status == "approved" || v.status == "captured")
        .flat_map(|v| v.extras.iter())
        .map(|e| e.amount_fen - e.reversed_fen)
        .sum();
    Ok(report)
}

fn not_found() -> ApiError {
    ApiError::new(Code::RedemptionNotFound)
}

/// One redemption by id.
///
/// # Errors
/// `REDEMPTION_NOT_FOUND`.
pub async fn by_id(
    state: &AppState,
    terminal: &Terminal,
    id: Uuid,
) -> Result<RedemptionView, ApiError> {
    let mut con = state.pg.acquire().await.map_err(StoreError::from)?;
    let r = db::redemption_by_id(&mut con, &terminal.merchant_id, RedemptionId(id), false)
        .await?
        .ok_or_else(not_found)?;
    one(&mut con, &r).await
}

async fn one(
    con: &mut sqlx::PgConnection,
    r: &voucher_store::pg::redemptions::RedemptionRecord,
) -> Result<RedemptionView, ApiError> {
    load_details(con, vec![RedemptionView::of(r, false)])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a view went missing")))
}

/// One redemption by the merchant's order reference.
///
/// # Errors
/// `REDEMPTION_NOT_FOUND`.
pub async fn by_order_ref(
    state: &AppState,
    terminal: &Terminal,
    order_ref: &str,
) -> Result<RedemptionView, ApiError> {
    let r = db::redemption_by_order_ref(&state.pg, &terminal.merchant_id, order_ref)
        .await?
        .ok_or_else(not_found)?;
    let mut con = state.pg.acquire().await.map_err(StoreError::from)?;
    one(&mut con, &r).await
}

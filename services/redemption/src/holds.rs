//! Authorisation holds: capture, void, and expiry. A hold reserved the voucher (or part of the
//! entitlement) and the budget when it was authorised; it resolves AT MOST ONCE, by a
//! conditional update `status = 'held' → captured | voided | expired` on the locked row.
//! Capture and void are idempotent (a repeated capture answers the captured hold again);
//! capture after void, void after capture, or capture after the timeout are refused with
//! `HOLD_RESOLVED` / `HOLD_EXPIRED`. Expired holds are released by the sweeper
//! ([`sweep_once`]) and lazily by any capture or void that finds them past their timeout.
//!
//! A released hold also gives back what a per-item voucher charged to the person's category
//! counts and what extra rules reserved (their budgets and the person's use); a capture writes
//! the extras' settlement lines, counted at the capture (the sale).

use crate::checkout::decide::bucket_for;
use crate::checkout::views::{load_details, redeemed_event, RedemptionView};
use crate::error::{ApiError, Code};
use crate::extras;
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;
use voucher_core::RedemptionId;
use voucher_store::pg::redemptions::{self as db, RedemptionRecord, RedemptionStatus};
use voucher_store::pg::{budget, entitlements, event_log, item_counts, token_vouchers};
use voucher_store::{Conflict, StoreError};

/// Gives back what a hold reserved and marks it `to` (`voided` or `expired`). `false` when
/// it was no longer held.
async fn release(
    state: &AppState,
    con: &mut PgConnection,
    r: &RedemptionRecord,
    to: RedemptionStatus,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !db::resolve(&mut *con, r.id, RedemptionStatus::Held, to, now).await? {
        return Ok(false);
    }
    if r.single_use {
        token_vouchers::unspend_voucher(&mut *con, r.voucher_id).await?;
    } else if r.discount_fen > 0
        && !entitlements::use_entitlement(&mut *con, r.campaign_id, &r.person_id, -r.discount_fen)
            .await?
    {
        return Err(StoreError::Conflict(Conflict::EntitlementRelease));
    }
    // Lock order as in a checkout: entitlement, category counts, budget, extras.
    let items = item_counts::items_of(&mut *con, &[r.id])
        .await?
        .remove(&r.id.0)
        .unwrap_or_default();
    if !items.is_empty() {
        let per_category = item_counts::per_category(&items);
        item_counts::return_items(&mut *con, r.campaign_id, &r.person_id, &per_category).await?;
    }
    budget::return_budget(
        &mut *con,
        r.campaign_id,
        r.discount_fen,
        bucket_for(state, r.id),
    )
    .await?;
    extras::release(&mut *con, r).await?;
    Ok(true)
}

/// The view of a stored redemption with its lines and extras.
async fn detailed(
    con: &mut PgConnection,
    r: &RedemptionRecord,
) -> Result<RedemptionView, ApiError> {
    let views = load_details(con, vec![RedemptionView::of(r, false)]).await?;
    views
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a view went missing")))
}

fn not_found() -> ApiError {
    ApiError::new(Code::RedemptionNotFound)
}

fn resolved(status: &str) -> ApiError {
    ApiError::new(Code::HoldResolved)
        .with_message(format!("the hold is already {status}"))
        .with_details(serde_json::json!({ "status": status }))
}

/// Captures a hold.
///
/// # Errors
/// `REDEMPTION_NOT_FOUND`, `HOLD_RESOLVED` (voided, or not a hold), `HOLD_EXPIRED`.
#[tracing::instrument(name = "redemption.holds.capture", skip_all, err(level = "debug"))]
pub async fn capture(
    state: &AppState,
    terminal: &Terminal,
    id: Uuid,
) -> Result<RedemptionView, ApiError> {
    let now = state.now_stored();
    let mut tx = state.pg.begin().await.map_err(StoreError::from)?;
    let r = db::redemption_by_id(&mut tx, &terminal.merchant_id, RedemptionId(id), true)
        .await?
        .ok_or_else(not_found)?;
    match r.status {
        RedemptionStatus::Captured => return detailed(&mut tx, &r).await,
        RedemptionStatus::Expired => return Err(ApiError::new(Code::HoldExpired)),
        RedemptionStatus::Held => {}
        other => return Err(resolved(other.as_str())),
    }
    if r.hold_expires_at.is_some_and(|at| at <= now) {
        release(state, &mut tx, &r, RedemptionStatus::Expired, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Err(ApiError::new(Code::HoldExpired));
    }
    if !db::resolve(
        &mut tx,
        r.id,
        RedemptionStatus::Held,
        RedemptionStatus::Captured,
        now,
    )
    .await?
    {
        return Err(resolved("resolved"));
    }
    event_log::append_event(&mut tx, &redeemed_event(&r, now)).await?;
    extras::capture(&mut tx, &r, now).await?;
    let captured = RedemptionRecord {
        status: RedemptionStatus::Captured,
        resolved_at: Some(now),
        ..r
    };
    let view = detailed(&mut tx, &captured).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(view)
}

/// Voids a hold (a hold already expired answers as expired: its reservation is released
/// either way).
///
/// # Errors
/// `REDEMPTION_NOT_FOUND`, `HOLD_RESOLVED` (captured, or not a hold).
#[tracing::instrument(name = "redemption.holds.void", skip_all, err(level = "debug"))]
pub async fn void(
    state: &AppState,
    terminal: &Terminal,
    id: Uuid,
) -> Result<RedemptionView, ApiError> {
    let now = state.now_stored();
    let mut tx = state.pg.begin().await.map_err(StoreError::from)?;
    let r = db::redemption_by_id(&mut tx, &terminal.merchant_id, RedemptionId(id), true)
        .await?
        .ok_or_else(not_found)?;
    match r.status {
        RedemptionStatus::Voided | RedemptionStatus::Expired => return detailed(&mut tx, &r).await,
        RedemptionStatus::Held => {}
        other => return Err(resolved(other.as_str())),
    }
    let to = if r.hold_expires_at.is_some_and(|at| at <= now) {
        RedemptionStatus::Expired
    } else {
        RedemptionStatus::Voided
    };
    if !release(state, &mut tx, &r, to, now).await? {
        return Err(resolved("resolved"));
    }
    let done = RedemptionRecord {
        status: to,
        resolved_at: Some(now),
        ..r
    };
    let view = detailed(&mut tx, &done).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(view)
}

/// Releases every hold past its timeout at the service clock's now. Returns how many.
///
/// # Errors
/// Database failure.
pub async fn sweep_once(state: &AppState) -> Result<u64, StoreError> {
    let now = state.now_stored();
    let mut released = 0;
    for (id, merchant) in db::due_holds(&state.pg, now, 500).await? {
        let mut tx = state.pg.begin().await?;
        if let Some(r) = db::redemption_by_id(&mut tx, &merchant, id, true).await? {
            if r.status == RedemptionStatus::Held
                && release(state, &mut tx, &r, RedemptionStatus::Expired, now).await?
            {
                released += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(released)
}

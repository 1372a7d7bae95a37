//! Authorisation holds: capture, void, and expiry. A hold reserved the voucher (or part of the
//! entitlement) and the budget when it was authorised; it resolves AT MOST ONCE, by a
//! conditional update `status = 'held' → captured | voided | expired` on the locked row.
//! Capture and void are idempotent (a repeated capture answers the captured hold again);
//! capture after void, void after capture, or capture after the timeout are refused with
//! `HOLD_RESOLVED` / `HOLD_EXPIRED`. Expired holds are released by the sweeper
//! ([`sweep_once`]) and lazily by any capture or void that finds them past their timeout.

use crate::checkout::decide::bucket_for;
use crate::checkout::views::{redeemed_event, RedemptionView};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;
use voucher_core::RedemptionId;
use voucher_store::pg::redemptions::{self as db, RedemptionRecord, RedemptionStatus};
use voucher_store::pg::{budget, entitlements, event_log, token_vouchers};
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
    budget::return_budget(
        &mut *con,
        r.campaign_id,
        r.discount_fen,
        bucket_for(state, r.id),
    )
    .await?;
    Ok(true)
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
    let now = state.clock.now();
    let mut tx = state.pg.begin().await.map_err(StoreError::from)?;
    let r = db::redemption_by_id(&mut tx, &terminal.merchant_id, RedemptionId(id), true)
        .await?
        .ok_or_else(not_found)?;
    match r.status {
        RedemptionStatus::Captured => return Ok(RedemptionView::of(&r, false)),
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
    tx.commit().await.map_err(StoreError::from)?;
    let captured = RedemptionRecord {
        status: RedemptionStatus::Captured,
        resolved_at: Some(now),
        ..r
    };
    Ok(RedemptionView::of(&captured, false))
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
    let now = state.clock.now();
    let mut tx = state.pg.begin().await.map_err(StoreError::from)?;
    let r = db::redemption_by_id(&mut tx, &terminal.merchant_id, RedemptionId(id), true)
        .await?
        .ok_or_else(not_found)?;
    match r.status {
        RedemptionStatus::Voided | RedemptionStatus::Expired => {
            return Ok(RedemptionView::of(&r, false))
        }
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
    tx.commit().await.map_err(StoreError::from)?;
    let done = RedemptionRecord {
        status: to,
        resolved_at: Some(now),
        ..r
    };
    Ok(RedemptionView::of(&done, false))
}

/// Releases every hold past its timeout at the service clock's now. Returns how many.
///
/// # Errors
/// Database failure.
pub async fn sweep_once(state: &AppState) -> Result<u64, StoreError> {
    let now = state.clock.now();
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

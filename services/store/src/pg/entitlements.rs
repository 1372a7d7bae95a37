//! 立减 entitlements: what one person has used of a percentage campaign's per-person cap
//! (the `entitlements` table, one row per campaign and person, created on first use).
//!
//! A checkout locks the person's row ([`lock_entitlement`]) so that purchases of one person
//! queue here while others do not, then charges it with the conditional update of
//! [`use_entitlement`] (`… WHERE used_fen + $d BETWEEN 0 AND cap_fen`): the cap cannot be
//! overdrawn, nor a release or reversal give back more than was used. Both take the
//! checkout transaction's connection.

use crate::StoreError;
use sqlx::{PgConnection, Row};
use voucher_core::{CampaignId, PersonId};

/// Locks the person's entitlement row of a percentage campaign (created with `cap` on first
/// use) and returns `(used, cap)`. Purchases of one person queue here; others do not.
///
/// # Errors
/// Database failure.
pub async fn lock_entitlement(
    con: &mut PgConnection,
    campaign_id: CampaignId,
    person_id: &PersonId,
    cap: i64,
) -> Result<(i64, i64), StoreError> {
    sqlx::query("INSERT INTO entitlements (campaign_id, person_id, cap_fen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(campaign_id.0)
        .bind(person_id.as_str())
        .bind(cap)
        .execute(&mut *con)
        .await?;
    let row = sqlx::query(
        "SELECT used_fen, cap_fen FROM entitlements WHERE campaign_id = $1 AND person_id = $2 FOR UPDATE",
    )
    .bind(campaign_id.0)
    .bind(person_id.as_str())
    .fetch_one(&mut *con)
    .await?;
    Ok((row.try_get("used_fen")?, row.try_get("cap_fen")?))
}

/// Adds `delta` (negative to restore) to the entitlement's use, only if the result stays
/// within `0..=cap`. `false` otherwise.
///
/// # Errors
/// Database failure.
pub async fn use_entitlement(
    con: &mut PgConnection,
    campaign_id: CampaignId,
    person_id: &PersonId,
    delta: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE entitlements SET used_fen = used_fen + $3
         WHERE campaign_id = $1 AND person_id = $2 AND used_fen + $3 BETWEEN 0 AND cap_fen",
    )
    .bind(campaign_id.0)
    .bind(person_id.as_str())
    .bind(delta)
    .execute(&mut *con)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What the person has used of the campaign's cap, and the cap, when an entitlement row
/// exists (read without a lock: for a quote, not a decision).
///
/// # Errors
/// Database failure.
pub async fn entitlement(
    pool: &sqlx::PgPool,
    campaign_id: CampaignId,
    person_id: &PersonId,
) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT used_fen, cap_fen FROM entitlements WHERE campaign_id = $1 AND person_id = $2",
    )
    .bind(campaign_id.0)
    .bind(person_id.as_str())
    .fetch_optional(pool)
    .await?)
}

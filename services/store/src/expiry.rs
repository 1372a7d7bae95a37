//! Expiry and recycling (POLICY rule 6). Vouchers past validity and unused are marked
//! expired in PostgreSQL (conditionally, so a concurrent redemption wins or loses cleanly),
//! with a `VoucherExpired` event in the same transaction; then their stock goes back to the
//! campaign's pool in Redis (idempotent per claim) with a `StockRecycled` event, and the
//! row is marked recycled. A crash between the two steps is repaired by the next pass.

use crate::{events, HotStore, StoreError};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;
use voucher_core::{CampaignId, ClaimId, VoucherId};
use voucher_proto::Message;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExpiryReport {
    /// Vouchers newly marked expired.
    pub expired: u64,
    /// Vouchers whose stock was returned to the pool.
    pub recycled: u64,
}

/// Expires what is due at `now` (at most `batch` vouchers per transaction, looping until
/// none are left) and recycles their stock.
///
/// # Errors
/// Redis or PostgreSQL failed; what was done stays done and the rest is retried next pass.
#[tracing::instrument(name = "store.expiry.run_once", skip_all, err(level = "debug"))]
pub async fn run_once(
    pg: &PgPool,
    hot: &HotStore,
    now: DateTime<Utc>,
    batch: i64,
) -> Result<ExpiryReport, StoreError> {
    let batch = batch.max(1);
    let mut report = ExpiryReport::default();
    loop {
        let n = expire_batch(pg, now, batch).await?;
        report.expired += n;
        if n < u64::try_from(batch).unwrap_or(u64::MAX) {
            break;
        }
    }
    report.recycled = recycle_expired(pg, hot, now, batch).await?;
    Ok(report)
}

/// Step 1: one transaction marks up to `batch` due vouchers expired (rows locked by a
/// concurrent redemption are skipped, and the `status = 'issued'` condition makes a voucher
/// redeemed meanwhile stay redeemed) and appends their `VoucherExpired` events.
async fn expire_batch(pg: &PgPool, now: DateTime<Utc>, batch: i64) -> Result<u64, StoreError> {
    let mut tx = pg.begin().await?;
    let rows = sqlx::query(
        "UPDATE vouchers SET status = 'expired', expired_at = $1
         WHERE voucher_id IN (
             SELECT voucher_id FROM vouchers
             WHERE status = 'issued' AND valid_until < $1
             ORDER BY valid_until
             LIMIT $2
             FOR UPDATE SKIP LOCKED)
           AND status = 'issued'
         RETURNING voucher_id, campaign_id, valid_until",
    )
    .bind(now)
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut campaigns = Vec::with_capacity(rows.len());
    let mut payloads = Vec::with_capacity(rows.len());
    let mut json = Vec::with_capacity(rows.len());
    for row in &rows {
        let voucher: Uuid = row.try_get("voucher_id")?;
        let campaign: i64 = row.try_get("campaign_id")?;
        let valid_until: DateTime<Utc> = row.try_get("valid_until")?;
        let bytes =
            events::voucher_expired(CampaignId(campaign), VoucherId(voucher), valid_until, now)
                .encode_to_vec();
        let decoded = events::decode(&bytes)?;
        ids.push(decoded.event_id);
        campaigns.push(campaign);
        json.push(decoded.json);
        payloads.push(bytes);
    }
    let kinds = vec!["voucher_expired"; rows.len()];
    let times = vec![now; rows.len()];
    sqlx::query(
        "INSERT INTO events (event_id, campaign_id, kind, occurred_at, payload, payload_json)
         SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::text[], $4::timestamptz[], $5::bytea[], $6::jsonb[])",
    )
    .bind(&ids)
    .bind(&campaigns)
    .bind(&kinds)
    .bind(&times)
    .bind(&payloads)
    .bind(&json)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX))
}

/// Step 2: every expired voucher not yet recycled (this pass's, and any left by a pass that
/// died between the steps) gets its stock back in Redis, then `recycled_at`. Recycling is
/// idempotent per claim, so a crash after Redis and before the update is harmless. A claim
/// Redis does not know (its hot state was lost) is logged and left for a later pass or a
/// rebuild; it does not stop the others.
async fn recycle_expired(
    pg: &PgPool,
    hot: &HotStore,
    now: DateTime<Utc>,
    batch: i64,
) -> Result<u64, StoreError> {
    let mut recycled = 0;
    let mut after = Uuid::nil();
    loop {
        let rows = sqlx::query(
            "SELECT voucher_id, campaign_id, claim_id FROM vouchers
             WHERE status = 'expired' AND recycled_at IS NULL AND voucher_id > $1
             ORDER BY voucher_id LIMIT $2",
        )
        .bind(after)
        .bind(batch)
        .fetch_all(pg)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("voucher_id")?;
        let mut done = Vec::with_capacity(rows.len());
        for row in &rows {
            let voucher: Uuid = row.try_get("voucher_id")?;
            let campaign: i64 = row.try_get("campaign_id")?;
            let claim: Uuid = row.try_get("claim_id")?;
            match hot
                .recycle(
                    CampaignId(campaign),
                    ClaimId(claim),
                    VoucherId(voucher),
                    now,
                )
                .await
            {
                Ok(fresh) => {
                    recycled += u64::from(fresh);
                    done.push(voucher);
                }
                Err(StoreError::NotFound) => {
                    tracing::warn!(campaign_id = campaign, voucher_id = %voucher, "expired voucher unknown to redis; not recycled");
                }
                Err(e) => return Err(e),
            }
        }
        sqlx::query("UPDATE vouchers SET recycled_at = $1 WHERE voucher_id = ANY($2) AND recycled_at IS NULL")
            .bind(now)
            .bind(&done)
            .execute(pg)
            .await?;
        if rows.len() < usize::try_from(batch).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(recycled)
}

//! Persisted voucher counts of a campaign, for the administrators' counters endpoint, so
//! that the live Redis counters can be compared with what the persister has recorded.
//!
//! This is the one query of the service that the storage crate does not (yet) offer; it
//! reads the store's `vouchers` table and belongs in `voucher_store::pg::vouchers` once
//! that crate grows a count function.

use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use voucher_core::CampaignId;
use voucher_store::StoreError;

/// Vouchers of a campaign in PostgreSQL, by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct PersistedCounts {
    /// All persisted vouchers.
    pub total: i64,
    /// Issued, not yet spent.
    pub issued: i64,
    /// Spent.
    pub redeemed: i64,
    /// Expired.
    pub expired: i64,
}

/// Counts the campaign's persisted vouchers.
///
/// # Errors
/// PostgreSQL failed.
pub async fn counts(pg: &PgPool, campaign: CampaignId) -> Result<PersistedCounts, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status::text, count(*) FROM vouchers WHERE campaign_id = $1 GROUP BY status",
    )
    .bind(campaign.0)
    .fetch_all(pg)
    .await?;
    let mut out = PersistedCounts::default();
    for (status, n) in rows {
        out.total += n;
        match status.as_str() {
            "issued" => out.issued += n,
            "redeemed" => out.redeemed += n,
            "expired" => out.expired += n,
            _ => {}
        }
    }
    Ok(out)
}

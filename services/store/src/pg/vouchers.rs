//! Vouchers as persisted from the outbox (the record), read by residents and jobs.

use crate::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use voucher_core::{CampaignId, ClaimId, PersonId, VoucherId};

/// Where a voucher stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VoucherStatus {
    /// Claimed, not yet spent.
    Issued,
    /// Spent (a single-use voucher), or an entitlement whose cap is used up.
    Redeemed,
    /// Past validity unused; its stock was (or is being) recycled.
    Expired,
}

/// A persisted voucher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoucherRecord {
    /// Id.
    pub voucher_id: VoucherId,
    /// Campaign.
    pub campaign_id: CampaignId,
    /// Holder.
    pub person_id: PersonId,
    /// The claim that made it.
    pub claim_id: ClaimId,
    /// Release round (0 for list issuance).
    pub round_no: u32,
    /// Status.
    pub status: VoucherStatus,
    /// When claimed.
    pub claimed_at: DateTime<Utc>,
    /// Validity start.
    pub valid_from: DateTime<Utc>,
    /// Validity end.
    pub valid_until: DateTime<Utc>,
}

/// A person's vouchers, newest first.
///
/// # Errors
/// Database failure.
pub async fn list_for_person(pool: &PgPool, person: &PersonId) -> Result<Vec<VoucherRecord>, StoreError> {
    todo!("store: vouchers for person")
}

/// One voucher.
///
/// # Errors
/// Database failure.
pub async fn get(pool: &PgPool, id: VoucherId) -> Result<Option<VoucherRecord>, StoreError> {
    todo!("store: voucher get")
}

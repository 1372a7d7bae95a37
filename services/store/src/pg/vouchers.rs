//! Vouchers as persisted from the outbox (the record), read by residents and jobs. The
//! persister inserts the rows; expiry and redemption change their status (the redemption
//! service's writes, including vouchers inserted from their token, are in
//! [`super::token_vouchers`]).

use crate::pg::text_enum::text_enum;
use crate::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
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

text_enum!(VoucherStatus, "voucher status" {
    Issued => "issued",
    Redeemed => "redeemed",
    Expired => "expired",
});

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
pub async fn list_for_person(
    pool: &PgPool,
    person: &PersonId,
) -> Result<Vec<VoucherRecord>, StoreError> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE person_id = $1 ORDER BY claimed_at DESC, voucher_id DESC"
    ))
    .bind(person.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(record_from_row).collect()
}

/// One voucher.
///
/// # Errors
/// Database failure.
pub async fn get(pool: &PgPool, id: VoucherId) -> Result<Option<VoucherRecord>, StoreError> {
    let row = sqlx::query(&format!("{SELECT} WHERE voucher_id = $1"))
        .bind(id.0)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(record_from_row).transpose()
}

const SELECT: &str =
    "SELECT voucher_id, campaign_id, person_id, claim_id, round_no, status, claimed_at, \
                      valid_from, valid_until FROM vouchers";

fn record_from_row(row: &PgRow) -> Result<VoucherRecord, StoreError> {
    let person: String = row.try_get("person_id")?;
    let round_no: i32 = row.try_get("round_no")?;
    let status: String = row.try_get("status")?;
    Ok(VoucherRecord {
        voucher_id: VoucherId(row.try_get("voucher_id")?),
        campaign_id: CampaignId(row.try_get("campaign_id")?),
        person_id: PersonId::parse(&person)
            .map_err(|_| StoreError::Corrupt(format!("person id {person:?}")))?,
        claim_id: ClaimId(row.try_get("claim_id")?),
        round_no: u32::try_from(round_no)
            .map_err(|_| StoreError::Corrupt(format!("round {round_no}")))?,
        status: status
            .parse()
            .map_err(|e: super::text_enum::UnknownText| StoreError::Corrupt(e.to_string()))?,
        claimed_at: row.try_get("claimed_at")?,
        valid_from: row.try_get("valid_from")?,
        valid_until: row.try_get("valid_until")?,
    })
}

#[cfg(test)]
mod tests {
    use super::VoucherStatus;

    #[test]
    fn voucher_statuses_serialise_as_stored() {
        crate::pg::text_enum::assert_names_agree(VoucherStatus::ALL, |s| s.as_str());
    }
}

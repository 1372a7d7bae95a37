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
    /// The generation of its code key (raised when the owner revokes the key).
    pub code_epoch: u32,
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
                      valid_from, valid_until, code_epoch FROM vouchers";

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
        code_epoch: epoch(row.try_get("code_epoch")?)?,
    })
}

fn epoch(value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("code epoch {value}")))
}

/// Revokes the code key of `person`'s usable voucher: its epoch goes up by one, so codes
/// drawn with the old key are refused at every till. Returns the new epoch; `None` when the
/// voucher is not `person`'s, does not exist (yet), or is no longer `issued`.
///
/// # Errors
/// Database failure.
pub async fn revoke_code_key(
    pool: &PgPool,
    id: VoucherId,
    person: &PersonId,
) -> Result<Option<u32>, StoreError> {
    let epoch: Option<i32> = sqlx::query_scalar(
        "UPDATE vouchers SET code_epoch = code_epoch + 1
         WHERE voucher_id = $1 AND person_id = $2 AND status = 'issued'
         RETURNING code_epoch",
    )
    .bind(id.0)
    .bind(person.as_str())
    .fetch_optional(pool)
    .await?;
    epoch.map(self::epoch).transpose()
}

/// One spending of a person's voucher, for the resident's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Spending {
    /// The redemption.
    pub redemption_id: uuid::Uuid,
    /// The voucher.
    pub voucher_id: uuid::Uuid,
    /// Its campaign's name.
    pub campaign_name: String,
    /// Where.
    pub merchant_name: String,
    /// The order, fen.
    pub order_amount_fen: i64,
    /// The discount granted, fen.
    pub discount_fen: i64,
    /// Given back by reversals, fen.
    pub reversed_fen: i64,
    /// Refunded of the order, fen.
    pub refunded_amount_fen: i64,
    /// `approved`, `held`, `captured`, `voided`, `expired`.
    pub status: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What `person` spent with vouchers, newest first (at most `limit` rows).
///
/// # Errors
/// Database failure.
pub async fn spendings_of(
    pool: &PgPool,
    person: &PersonId,
    limit: i64,
) -> Result<Vec<Spending>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT r.id AS redemption_id, r.voucher_id, c.name AS campaign_name, m.name AS merchant_name,
                r.order_amount_fen, r.discount_fen, r.reversed_fen, r.refunded_amount_fen, r.status,
                r.created_at
         FROM redemptions r
         JOIN campaigns c ON c.id = r.campaign_id
         JOIN merchants m ON m.id = r.merchant_id
         WHERE r.person_id = $1
         ORDER BY r.created_at DESC, r.id DESC
         LIMIT $2",
    )
    .bind(person.as_str())
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::VoucherStatus;

    #[test]
    fn voucher_statuses_serialise_as_stored() {
        crate::pg::text_enum::assert_names_agree(VoucherStatus::ALL, |s| s.as_str());
    }
}

//! Merchants and their program approvals: the `merchants` table (created minimal in
//! `0001_init.sql`, extended in `0002_redemption.sql`) and `merchant_programs`. A merchant
//! redeems only vouchers of programs it is approved for; the checkout reads that approval in
//! the same round trip as its idempotency key ([`super::idempotency`]).

use crate::pg::constraints::{self, Expected, Missing};
use crate::pg::text_enum::text_enum;
use crate::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use voucher_core::{MerchantId, ProgramId};

/// Whether a merchant may redeem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MerchantStatus {
    /// Its terminals' requests are served.
    Active,
    /// Its terminals are refused (`MERCHANT_NOT_ACTIVE`).
    Suspended,
}

text_enum!(MerchantStatus, "merchant status" {
    Active => "active",
    Suspended => "suspended",
});

/// A merchant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MerchantRecord {
    /// Merchant id (chosen by the administrator, e.g. `m-jc-0001`).
    #[sqlx(try_from = "String")]
    pub id: MerchantId,
    /// Business name.
    pub name: String,
    /// 统一社会信用代码 (18 characters).
    pub credit_code: String,
    /// Category name (`catering`, …).
    pub category: String,
    /// City code.
    pub city: i32,
    /// County code, when the merchant is registered in a county.
    pub county: Option<i32>,
    /// Whether it may redeem.
    pub status: MerchantStatus,
    /// Settlement bank account reference.
    pub settlement_account: String,
    /// Who created it.
    pub created_by: String,
    /// Programs the merchant is approved for.
    #[sqlx(rename = "programs")]
    pub approved_programs: Vec<i64>,
}

/// Inserts a merchant.
///
/// # Errors
/// [`StoreError::Conflict`] with [`Conflict::MerchantId`] or [`Conflict::MerchantCreditCode`]
/// when a merchant with the id or the credit code exists; database failure.
#[tracing::instrument(name = "store.merchants.create", skip_all, err(level = "debug"))]
pub async fn create_merchant(pool: &PgPool, m: &MerchantRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO merchants (id, name, credit_code, category, city, county, status, settlement_account, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(m.id.as_str())
    .bind(&m.name)
    .bind(&m.credit_code)
    .bind(&m.category)
    .bind(m.city)
    .bind(m.county)
    .bind(m.status)
    .bind(&m.settlement_account)
    .bind(&m.created_by)
    .execute(pool)
    .await
    .map_err(|e| {
        constraints::expected(
            e,
            &[
                Expected::Unique(Conflict::MerchantId),
                Expected::Unique(Conflict::MerchantCreditCode),
            ],
        )
    })?;
    Ok(())
}

/// One merchant with its approvals.
///
/// # Errors
/// Database failure.
pub async fn get_merchant(
    pool: &PgPool,
    id: &MerchantId,
) -> Result<Option<MerchantRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.name, m.credit_code, m.category, m.city, m.county, m.status, m.settlement_account,
                m.created_by,
                coalesce(array_agg(mp.program_id ORDER BY mp.program_id) FILTER (WHERE mp.program_id IS NOT NULL), '{}') AS programs
         FROM merchants m LEFT JOIN merchant_programs mp ON mp.merchant_id = m.id
         WHERE m.id = $1 GROUP BY m.id",
    )
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?)
}

/// Approves a merchant for a program (idempotent).
///
/// # Errors
/// [`StoreError::NotFound`] when the program does not exist; database failure.
#[tracing::instrument(name = "store.merchants.approve", skip_all, err(level = "debug"))]
pub async fn approve(
    pool: &PgPool,
    merchant_id: &MerchantId,
    program_id: ProgramId,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO merchant_programs (merchant_id, program_id, approved_by, approved_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(merchant_id.as_str())
    .bind(program_id.0)
    .bind(by)
    .bind(at)
    .execute(pool)
    .await
    .map_err(|e| constraints::expected(e, &[Expected::ForeignKey(Missing::ApprovalProgram)]))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MerchantStatus;

    #[test]
    fn merchant_statuses_serialise_as_stored() {
        crate::pg::text_enum::assert_names_agree(MerchantStatus::ALL, |s| s.as_str());
    }
}

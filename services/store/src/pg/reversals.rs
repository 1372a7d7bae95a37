//! Reversals (退货): the `reversals` table, idempotent on (redemption, `reversal_ref`).
//!
//! A reversal adds its amounts to its redemption's refunded and reversed totals with the
//! conditional update
//! `… WHERE refunded_amount_fen + $r <= order_amount_fen AND reversed_fen + $d <= discount_fen`,
//! so concurrent partial reversals can never refund more than the order nor give back more
//! than the discount. The caller holds the redemption's row lock and commits the reversal
//! with what it restores and its event.

use crate::pg::constraints::{self, Expected};
use crate::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;
use voucher_core::{RedemptionId, ReversalId};

/// A stored reversal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ReversalRecord {
    /// Id.
    #[sqlx(try_from = "Uuid")]
    pub id: ReversalId,
    /// The reversed redemption.
    #[sqlx(try_from = "Uuid")]
    pub redemption_id: RedemptionId,
    /// The merchant's reference for this reversal.
    pub reversal_ref: String,
    /// Order amount refunded by this reversal, fen.
    pub refund_amount_fen: i64,
    /// Discount given back by this reversal, fen.
    pub discount_reversed_fen: i64,
    /// Whether the voucher or entitlement was restored (refund policy `restore`).
    pub restored: bool,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The reversal with this reference, if any.
///
/// # Errors
/// Database failure.
pub async fn reversal_by_ref(
    con: &mut PgConnection,
    redemption_id: RedemptionId,
    reversal_ref: &str,
) -> Result<Option<ReversalRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, redemption_id, reversal_ref, refund_amount_fen, discount_reversed_fen, restored, created_at
         FROM reversals WHERE redemption_id = $1 AND reversal_ref = $2",
    )
    .bind(redemption_id.0)
    .bind(reversal_ref)
    .fetch_optional(&mut *con)
    .await?)
}

/// Records a reversal and adds it to its redemption's refunded and reversed totals (only
/// if they stay within the order amount and the discount).
///
/// # Errors
/// [`StoreError::Conflict`] with [`Conflict::ReversalTotals`] when the totals would
/// overflow, with [`Conflict::ReversalRef`] when the redemption already has a reversal with
/// this reference; database failure.
pub async fn insert_reversal(con: &mut PgConnection, r: &ReversalRecord) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE redemptions SET refunded_amount_fen = refunded_amount_fen + $2, reversed_fen = reversed_fen + $3
         WHERE id = $1 AND refunded_amount_fen + $2 <= order_amount_fen AND reversed_fen + $3 <= discount_fen",
    )
    .bind(r.redemption_id.0)
    .bind(r.refund_amount_fen)
    .bind(r.discount_reversed_fen)
    .execute(&mut *con)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict(Conflict::ReversalTotals));
    }
    sqlx::query(
        "INSERT INTO reversals (id, redemption_id, reversal_ref, refund_amount_fen, discount_reversed_fen, restored, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.id.0)
    .bind(r.redemption_id.0)
    .bind(&r.reversal_ref)
    .bind(r.refund_amount_fen)
    .bind(r.discount_reversed_fen)
    .bind(r.restored)
    .bind(r.created_at)
    .execute(&mut *con)
    .await
    .map_err(|e| constraints::expected(e, &[Expected::Unique(Conflict::ReversalRef)]))?;
    Ok(())
}

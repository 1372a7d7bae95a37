//! Expiry and recycling (POLICY rule 6). Vouchers past validity and unused are marked
//! expired in PostgreSQL (conditionally, so a concurrent redemption wins or loses cleanly),
//! with a `VoucherExpired` event in the same transaction; then their stock goes back to the
//! campaign's pool in Redis (idempotent per claim) with a `StockRecycled` event, and the
//! row is marked recycled. A crash between the two steps is repaired by the next pass.

use crate::{HotStore, StoreError};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

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
pub async fn run_once(pg: &PgPool, hot: &HotStore, now: DateTime<Utc>, batch: i64) -> Result<ExpiryReport, StoreError> {
    todo!("store: expiry")
}

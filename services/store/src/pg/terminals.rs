//! Point-of-sale terminals and their HMAC keys: the `terminals` table. `key_id` names a
//! terminal's current key; a rotation replaces key id and secret at once (the old key stops
//! working with the update), a revocation is final. Verifying a signed request reads the
//! key with its merchant's facts in one query ([`terminal_by_key`]).

use crate::pg::constraints::{self, Expected, Missing};
use crate::pg::merchants::MerchantStatus;
use crate::pg::text_enum::text_enum;
use crate::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use voucher_core::{MerchantId, TerminalId, TerminalKeyId};

/// Whether a terminal's key is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalStatus {
    /// Its key signs requests.
    Active,
    /// Revoked for good: its key is refused (`TERMINAL_KEY_INVALID`).
    Revoked,
}

text_enum!(TerminalStatus, "terminal status" {
    Active => "active",
    Revoked => "revoked",
});

/// A terminal's key and its merchant's facts: what request verification needs.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TerminalKey {
    /// Terminal.
    #[sqlx(try_from = "uuid::Uuid")]
    pub terminal_id: TerminalId,
    /// Its merchant.
    #[sqlx(try_from = "String")]
    pub merchant_id: MerchantId,
    /// The HMAC secret (base64).
    pub secret: String,
    /// Whether the terminal is active.
    pub status: TerminalStatus,
    /// The merchant's status.
    pub merchant_status: MerchantStatus,
    /// The merchant's category.
    pub category: String,
    /// The merchant's city.
    pub city: i32,
    /// The merchant's county.
    pub county: Option<i32>,
}

impl std::fmt::Debug for TerminalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalKey")
            .field("terminal_id", &self.terminal_id)
            .field("merchant_id", &self.merchant_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Inserts an active terminal with its first key.
///
/// # Errors
/// [`StoreError::NotFound`] when the merchant does not exist; [`StoreError::Conflict`] with
/// [`Conflict::TerminalId`] or [`Conflict::TerminalKeyId`] when another terminal has the id
/// or the key id; database failure.
pub async fn insert_terminal(
    pool: &PgPool,
    terminal_id: TerminalId,
    merchant_id: &MerchantId,
    key_id: &TerminalKeyId,
    secret: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO terminals (terminal_id, merchant_id, key_id, secret, status, created_at)
         VALUES ($1, $2, $3, $4, 'active', $5)",
    )
    .bind(terminal_id.0)
    .bind(merchant_id.as_str())
    .bind(key_id.as_str())
    .bind(secret)
    .bind(at)
    .execute(pool)
    .await
    .map_err(|e| {
        constraints::expected(
            e,
            &[
                Expected::ForeignKey(Missing::TerminalMerchant),
                Expected::Unique(Conflict::TerminalId),
                Expected::Unique(Conflict::TerminalKeyId),
            ],
        )
    })?;
    Ok(())
}

/// Replaces an active terminal's key and secret (the old key stops working at once).
///
/// # Errors
/// [`StoreError::NotFound`] when no active terminal of that merchant has the id;
/// [`StoreError::Conflict`] with [`Conflict::TerminalKeyId`] when another terminal holds the
/// new key id; database failure.
pub async fn rotate_terminal(
    pool: &PgPool,
    terminal_id: TerminalId,
    merchant_id: &MerchantId,
    key_id: &TerminalKeyId,
    secret: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE terminals SET key_id = $3, secret = $4, rotated_at = $5
         WHERE terminal_id = $1 AND merchant_id = $2 AND status = 'active'",
    )
    .bind(terminal_id.0)
    .bind(merchant_id.as_str())
    .bind(key_id.as_str())
    .bind(secret)
    .bind(at)
    .execute(pool)
    .await
    .map_err(|e| constraints::expected(e, &[Expected::Unique(Conflict::TerminalKeyId)]))?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Revokes a terminal (idempotent).
///
/// # Errors
/// [`StoreError::NotFound`] when the merchant has no such terminal.
pub async fn revoke_terminal(
    pool: &PgPool,
    terminal_id: TerminalId,
    merchant_id: &MerchantId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE terminals SET status = 'revoked', revoked_at = coalesce(revoked_at, $3)
         WHERE terminal_id = $1 AND merchant_id = $2",
    )
    .bind(terminal_id.0)
    .bind(merchant_id.as_str())
    .bind(at)
    .execute(pool)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// The terminal holding `key_id`, with its merchant.
///
/// # Errors
/// Database failure.
pub async fn terminal_by_key(
    pool: &PgPool,
    key_id: &TerminalKeyId,
) -> Result<Option<TerminalKey>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.terminal_id, t.merchant_id, t.secret, t.status, m.status AS merchant_status, m.category,
                m.city, m.county
         FROM terminals t JOIN merchants m ON m.id = t.merchant_id WHERE t.key_id = $1",
    )
    .bind(key_id.as_str())
    .fetch_optional(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::TerminalStatus;

    #[test]
    fn terminal_statuses_serialise_as_stored() {
        crate::pg::text_enum::assert_names_agree(TerminalStatus::ALL, |s| s.as_str());
    }
}

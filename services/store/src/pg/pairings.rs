//! One-time pairing codes of web terminals (`terminal_pairings`, migration 0004). An
//! administrator creates a terminal and a pairing code for it; the till's browser exchanges
//! the code, once and before it expires, for the terminal's key id and HMAC secret, which it
//! keeps as a non-extractable WebCrypto key. The secret therefore never passes through the
//! administrator's hands. Only the code's SHA-256 is stored; consuming it is a conditional
//! update (`… WHERE used_at IS NULL AND expires_at > now`), so of two browsers racing with
//! the same code exactly one gets the key.

use crate::pg::merchants::MerchantStatus;
use crate::pg::terminals::{StoredSecret, TerminalStatus};
use crate::StoreError;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use voucher_core::{MerchantId, TerminalId, TerminalKeyId};

/// Records a pairing code (by its SHA-256) for `terminal`, valid until `expires_at`.
///
/// # Errors
/// Database failure (a terminal that does not exist is a foreign-key error: a bug of the
/// caller, which creates the terminal first).
pub async fn create(
    pool: &PgPool,
    code_sha256: &str,
    terminal: TerminalId,
    by: &str,
    at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO terminal_pairings (code_sha256, terminal_id, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(code_sha256)
    .bind(terminal.0)
    .bind(by)
    .bind(at)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// What a consumed pairing code gives the till.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Paired {
    /// The terminal.
    #[sqlx(try_from = "uuid::Uuid")]
    pub terminal_id: TerminalId,
    /// Its key id.
    #[sqlx(try_from = "String")]
    pub key_id: TerminalKeyId,
    /// Its HMAC secret as stored (sealed: the query pairs no terminal whose secret is still
    /// plain, see migration 0012).
    #[sqlx(flatten)]
    pub secret: StoredSecret,
    /// Its merchant.
    #[sqlx(try_from = "String")]
    pub merchant_id: MerchantId,
    /// The merchant's name.
    pub merchant_name: String,
    /// The merchant's category.
    pub category: String,
    /// The merchant's city.
    pub city: i32,
    /// The merchant's county.
    pub county: Option<i32>,
}

impl std::fmt::Debug for Paired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paired")
            .field("terminal_id", &self.terminal_id)
            .field("merchant_id", &self.merchant_id)
            .finish_non_exhaustive()
    }
}

/// Consumes the pairing code whose SHA-256 is `code_sha256`: marks it used and answers the
/// terminal's key, if the code exists, is unused, has not expired at `now`, its terminal
/// and merchant are active and the terminal's secret is sealed. `None` otherwise (and
/// nothing changes).
///
/// # Errors
/// Database failure.
pub async fn consume(
    pool: &PgPool,
    code_sha256: &str,
    now: DateTime<Utc>,
) -> Result<Option<Paired>, StoreError> {
    Ok(sqlx::query_as(
        "WITH used AS (
             UPDATE terminal_pairings p SET used_at = $2
             FROM terminals t JOIN merchants m ON m.id = t.merchant_id
             WHERE p.code_sha256 = $1 AND p.used_at IS NULL AND p.expires_at > $2
               AND t.terminal_id = p.terminal_id AND t.status = $3 AND m.status = $4
               AND t.kek_id IS NOT NULL
             RETURNING t.terminal_id, t.key_id, t.secret, t.kek_id, t.secret_nonce,
                       t.secret_ciphertext, m.id AS merchant_id,
                       m.name AS merchant_name, m.category, m.city, m.county)
         SELECT * FROM used",
    )
    .bind(code_sha256)
    .bind(now)
    .bind(TerminalStatus::Active)
    .bind(MerchantStatus::Active)
    .fetch_optional(pool)
    .await?)
}

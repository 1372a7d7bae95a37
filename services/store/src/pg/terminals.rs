//! Point-of-sale terminals and their HMAC keys: the `terminals` table. `key_id` names a
//! terminal's current key; a rotation replaces key id and secret at once (the old key stops
//! working with the update), a revocation is final. Verifying a signed request reads the
//! key with its merchant's facts in one query ([`terminal_by_key`]).
//!
//! The secret is stored sealed ([`SealedSecret`]: ciphertext, nonce and the id of the
//! key-encryption key, migration 0012); this crate never sees a key-encryption key nor
//! writes a plaintext secret. Rows written as is by a version before 0012 read as
//! [`StoredSecret::Plain`] until the redemption service re-wraps them
//! ([`needing_wrap`], [`rewrap`]).

use crate::pg::constraints::{self, Expected, Missing};
use crate::pg::merchants::MerchantStatus;
use crate::pg::text_enum::text_enum;
use crate::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row as _};
use voucher_core::{MerchantId, TerminalId, TerminalKeyId};

/// A terminal's HMAC secret sealed under a key-encryption key (AEAD ciphertext with its tag,
/// the nonce, and the key's id). Sealing and opening are the redemption service's.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The key-encryption key that sealed it.
    pub kek_id: i32,
    /// The AEAD nonce (12 bytes).
    pub nonce: Vec<u8>,
    /// The ciphertext followed by the tag.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

/// A terminal's HMAC secret as the row holds it (migration 0012's CHECK allows exactly one
/// form).
#[derive(Clone, PartialEq, Eq)]
pub enum StoredSecret {
    /// Sealed: the only form written since migration 0012.
    Sealed(SealedSecret),
    /// As is, written by a version before migration 0012. Never accepted to verify a
    /// request; the redemption service seals it at its start or in `rewrap-secrets`.
    Plain(String),
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredSecret::Sealed(s) => s.fmt(f),
            StoredSecret::Plain(_) => f.write_str("Plain(..)"),
        }
    }
}

impl<'r> sqlx::FromRow<'r, PgRow> for StoredSecret {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let kek_id: Option<i32> = row.try_get("kek_id")?;
        let nonce: Option<Vec<u8>> = row.try_get("secret_nonce")?;
        let ciphertext: Option<Vec<u8>> = row.try_get("secret_ciphertext")?;
        let plain: Option<String> = row.try_get("secret")?;
        match (kek_id, nonce, ciphertext, plain) {
            (Some(kek_id), Some(nonce), Some(ciphertext), None) => {
                Ok(StoredSecret::Sealed(SealedSecret {
                    kek_id,
                    nonce,
                    ciphertext,
                }))
            }
            (None, None, None, Some(plain)) => Ok(StoredSecret::Plain(plain)),
            _ => Err(sqlx::Error::ColumnDecode {
                index: "secret".into(),
                source: "a terminal secret must be either sealed or plain".into(),
            }),
        }
    }
}

/// The secret columns, for the queries that read them.
const SECRET_COLUMNS: &str = "t.secret, t.kek_id, t.secret_nonce, t.secret_ciphertext";

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
    /// The HMAC secret as stored.
    #[sqlx(flatten)]
    pub secret: StoredSecret,
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

/// Inserts an active terminal with its first key (its secret sealed).
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
    secret: &SealedSecret,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO terminals (terminal_id, merchant_id, key_id, kek_id, secret_nonce,
                                secret_ciphertext, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7)",
    )
    .bind(terminal_id.0)
    .bind(merchant_id.as_str())
    .bind(key_id.as_str())
    .bind(secret.kek_id)
    .bind(&secret.nonce)
    .bind(&secret.ciphertext)
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

/// Replaces an active terminal's key and secret, sealed (the old key stops working at once).
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
    secret: &SealedSecret,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE terminals SET key_id = $3, secret = NULL, kek_id = $4, secret_nonce = $5,
                              secret_ciphertext = $6, rotated_at = $7
         WHERE terminal_id = $1 AND merchant_id = $2 AND status = 'active'",
    )
    .bind(terminal_id.0)
    .bind(merchant_id.as_str())
    .bind(key_id.as_str())
    .bind(secret.kek_id)
    .bind(&secret.nonce)
    .bind(&secret.ciphertext)
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
    Ok(sqlx::query_as(&format!(
        "SELECT t.terminal_id, t.merchant_id, {SECRET_COLUMNS}, t.status,
                m.status AS merchant_status, m.category, m.city, m.county
         FROM terminals t JOIN merchants m ON m.id = t.merchant_id WHERE t.key_id = $1"
    ))
    .bind(key_id.as_str())
    .fetch_optional(pool)
    .await?)
}

/// A stored secret that is not (yet) sealed under the current key-encryption key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ToWrap {
    /// Terminal.
    #[sqlx(try_from = "uuid::Uuid")]
    pub terminal_id: TerminalId,
    /// Its key id (part of the sealed secret's associated data).
    #[sqlx(try_from = "String")]
    pub key_id: TerminalKeyId,
    /// The secret as stored.
    #[sqlx(flatten)]
    pub secret: StoredSecret,
}

/// Up to `limit` terminals, in terminal id order after `after`, whose secret is plain or
/// (unless `plain_only`) sealed under another key-encryption key than `current`. Revoked
/// terminals count too: a retired key must open nothing that is stored.
///
/// # Errors
/// Database failure.
pub async fn needing_wrap(
    pool: &PgPool,
    current: i32,
    plain_only: bool,
    after: Option<TerminalId>,
    limit: i64,
) -> Result<Vec<ToWrap>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT t.terminal_id, t.key_id, {SECRET_COLUMNS} FROM terminals t
         WHERE (t.secret IS NOT NULL OR (NOT $2 AND t.kek_id <> $1))
           AND ($3::uuid IS NULL OR t.terminal_id > $3)
         ORDER BY t.terminal_id LIMIT $4"
    ))
    .bind(current)
    .bind(plain_only)
    .bind(after.map(|t| t.0))
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Replaces each row's stored secret with its new sealed form (the same secret, sealed
/// anew, all under `kek_id`), in two statements whatever the number of rows. A row that
/// changed since it was read (a rotation, another re-wrap) is left as it is. Answers how
/// many rows stored plain and how many stored sealed were replaced.
///
/// # Errors
/// Database failure.
pub async fn rewrap(
    pool: &PgPool,
    kek_id: i32,
    rows: &[(&ToWrap, SealedSecret)],
) -> Result<(u64, u64), StoreError> {
    let mut plain = Rewraps::default();
    let mut sealed = Rewraps::default();
    let mut old_secrets = Vec::new();
    let (mut old_keks, mut old_nonces) = (Vec::new(), Vec::new());
    for (row, new) in rows {
        let into = match &row.secret {
            StoredSecret::Plain(secret) => {
                old_secrets.push(secret.clone());
                &mut plain
            }
            StoredSecret::Sealed(old) => {
                old_keks.push(old.kek_id);
                old_nonces.push(old.nonce.clone());
                &mut sealed
            }
        };
        into.terminals.push(row.terminal_id.0);
        into.key_ids.push(row.key_id.as_str().to_owned());
        into.nonces.push(new.nonce.clone());
        into.ciphertexts.push(new.ciphertext.clone());
    }
    let from_plain = if plain.terminals.is_empty() {
        0
    } else {
        sqlx::query(
            "UPDATE terminals t SET secret = NULL, kek_id = $1, secret_nonce = u.nonce,
                                    secret_ciphertext = u.ciphertext
             FROM unnest($2::uuid[], $3::text[], $4::bytea[], $5::bytea[], $6::text[])
                  AS u(terminal_id, key_id, nonce, ciphertext, old_secret)
             WHERE t.terminal_id = u.terminal_id AND t.key_id = u.key_id
               AND t.secret = u.old_secret",
        )
        .bind(kek_id)
        .bind(&plain.terminals)
        .bind(&plain.key_ids)
        .bind(&plain.nonces)
        .bind(&plain.ciphertexts)
        .bind(&old_secrets)
        .execute(pool)
        .await?
        .rows_affected()
    };
    let from_sealed = if sealed.terminals.is_empty() {
        0
    } else {
        sqlx::query(
            "UPDATE terminals t SET kek_id = $1, secret_nonce = u.nonce,
                                    secret_ciphertext = u.ciphertext
             FROM unnest($2::uuid[], $3::text[], $4::bytea[], $5::bytea[], $6::integer[],
                         $7::bytea[])
                  AS u(terminal_id, key_id, nonce, ciphertext, old_kek, old_nonce)
             WHERE t.terminal_id = u.terminal_id AND t.key_id = u.key_id
               AND t.kek_id = u.old_kek AND t.secret_nonce = u.old_nonce",
        )
        .bind(kek_id)
        .bind(&sealed.terminals)
        .bind(&sealed.key_ids)
        .bind(&sealed.nonces)
        .bind(&sealed.ciphertexts)
        .bind(&old_keks)
        .bind(&old_nonces)
        .execute(pool)
        .await?
        .rows_affected()
    };
    Ok((from_plain, from_sealed))
}

/// The columns of one [`rewrap`] statement.
#[derive(Default)]
struct Rewraps {
    terminals: Vec<uuid::Uuid>,
    key_ids: Vec<String>,
    nonces: Vec<Vec<u8>>,
    ciphertexts: Vec<Vec<u8>>,
}

/// How many stored secrets each key-encryption key sealed (`None`: stored plain), in key
/// order.
///
/// # Errors
/// Database failure.
pub async fn secrets_by_kek(pool: &PgPool) -> Result<Vec<(Option<i32>, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT kek_id, count(*) FROM terminals GROUP BY kek_id ORDER BY kek_id NULLS FIRST",
    )
    .fetch_all(pool)
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

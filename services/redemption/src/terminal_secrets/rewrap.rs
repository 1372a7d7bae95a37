//! Re-wrapping stored terminal secrets while the service runs: every row still stored as is
//! (written before migration 0012) is sealed, and — unless only those are asked for —
//! every row sealed under another KEK than the current one is opened and sealed again
//! under the current one. The terminal's secret itself does not change, so its till keeps
//! signing as before.
//!
//! Rows are read in pages by terminal id and a page is replaced by one conditional update
//! per form that names, for each row, what was read (`… AND secret = $old` or `… AND kek_id = $old AND secret_nonce =
//! $old`): a row rotated or re-wrapped meanwhile by a running replica is left as that
//! replica wrote it and counted in [`RewrapReport::changed_meanwhile`]. Running it twice,
//! or from two processes at once, is harmless.

use super::{Keyring, SecretError};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use sqlx::PgPool;
use voucher_core::TerminalId;
use voucher_store::pg::terminals::{self, StoredSecret};
use voucher_store::StoreError;

/// Rows read per query.
const PAGE: i64 = 500;

/// What a re-wrap did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RewrapReport {
    /// The KEK that sealed.
    pub kek_id: i32,
    /// Rows stored as is, now sealed.
    pub sealed_plain: u64,
    /// Rows sealed under an older KEK, now under the current one.
    pub rewrapped: u64,
    /// Rows that changed between the read and the update (left as the writer left them).
    pub changed_meanwhile: u64,
    /// Terminals whose secret could not be opened (a KEK not loaded, or an altered row):
    /// left as they are; the old KEK must not be retired while any remain.
    pub unreadable: Vec<TerminalId>,
}

/// Why a re-wrap stopped.
#[derive(Debug, thiserror::Error)]
pub enum RewrapError {
    /// PostgreSQL failed.
    #[error("reading or writing terminals: {0}")]
    Store(#[from] StoreError),
    /// Sealing failed (the random source).
    #[error(transparent)]
    Seal(#[from] SecretError),
}

/// Seals the plain rows and (unless `plain_only`) re-seals every row not under the current
/// KEK. Rows that cannot be opened are reported, not fatal.
///
/// # Errors
/// Database failure, the random source.
pub async fn rewrap(
    pg: &PgPool,
    keyring: &Keyring,
    plain_only: bool,
) -> Result<RewrapReport, RewrapError> {
    let mut report = RewrapReport {
        kek_id: keyring.current(),
        ..RewrapReport::default()
    };
    let mut after = None;
    loop {
        let rows = terminals::needing_wrap(pg, keyring.current(), plain_only, after, PAGE).await?;
        let Some(last) = rows.last() else {
            return Ok(report);
        };
        after = Some(last.terminal_id);
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            let opened = match &row.secret {
                StoredSecret::Plain(plain) => Ok(SecretString::from(plain.clone())),
                StoredSecret::Sealed(sealed) => {
                    keyring.open_sealed(row.terminal_id, &row.key_id, sealed)
                }
            };
            match opened {
                Ok(secret) => {
                    let sealed =
                        keyring.seal(row.terminal_id, &row.key_id, secret.expose_secret())?;
                    page.push((row, sealed));
                }
                Err(e) => {
                    tracing::error!(terminal = %row.terminal_id, "not re-wrapped: {e}");
                    report.unreadable.push(row.terminal_id);
                }
            }
        }
        let (from_plain, from_sealed) = terminals::rewrap(pg, keyring.current(), &page).await?;
        report.sealed_plain += from_plain;
        report.rewrapped += from_sealed;
        report.changed_meanwhile += u64::try_from(page.len())
            .unwrap_or(u64::MAX)
            .saturating_sub(from_plain + from_sealed);
    }
}

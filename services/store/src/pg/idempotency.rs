//! Stored responses of terminal requests by idempotency key (`idempotency_keys`, kept at
//! least 24 h; see `redemption::checkout::idempotency` for the protocol the terminal sees).
//!
//! A key is taken inside the transaction that will decide the request, with a transaction
//! advisory lock on (merchant, key) that is not waited for: a concurrent duplicate finds it
//! held and answers `IN_FLIGHT`. The key's row is written only with the decision
//! ([`super::redemptions::record_decision`], in the same statement), so a decline or a
//! failure (rollback) leaves nothing behind and no `in_flight` row ever reaches the disk.
//!
//! The retry race: [`idempotency_claim`] reads the key's row and takes its lock in one
//! statement, and in READ COMMITTED a statement sees only what was committed when it began.
//! A duplicate whose statement begins just before the first request commits, and whose lock
//! is taken just after (the lock is released after the commit is visible), gets the lock but
//! not the row: it decides again, and its decision fails on what the first one wrote
//! (`ORDER_REF_USED`, or a decline such as `VOUCHER_ALREADY_REDEEMED`). So a checkout that
//! took the key and did not approve reads the key again ([`idempotency_stored`], a statement
//! of its own, after its rollback) and answers the stored response when there is one. That
//! costs a round trip on declines only; an approval, the common case, pays nothing.

use crate::StoreError;
use sqlx::{PgConnection, PgPool, Row};
use voucher_core::{MerchantId, ProgramId};

/// Where an idempotency key stands when a request arrives.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyBegin {
    /// First use: the key is now `in_flight` for this request.
    Started,
    /// The first request with this key is still being processed.
    InFlight,
    /// The key was used with another body.
    Mismatch,
    /// The stored response of the first request: `(status, body)`.
    Done(i32, serde_json::Value),
}

/// Where an idempotency key stands, read inside the transaction that will decide the
/// request, with the merchant's approval for the voucher's program read in the same round
/// trip.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyClaim {
    /// Where the key stands: `Started` means this transaction holds the key.
    pub begin: IdempotencyBegin,
    /// Whether the merchant is approved for the program asked about (`false` when none).
    pub approved: bool,
}

/// Takes an idempotency key for the current transaction, in one round trip: a transaction
/// advisory lock on (merchant, key) — not waited for: held by another transaction means a
/// concurrent duplicate, [`IdempotencyBegin::InFlight`] — and the stored response, if any.
/// The key's row is written by [`super::redemptions::record_decision`] in the same transaction, so a decline or
/// a failure (rollback) leaves nothing behind and no `in_flight` row ever reaches the disk:
/// one commit per decision instead of three (claim, decide, release). `program_id`: also
/// read whether the merchant is approved for it.
///
/// # Errors
/// Database failure.
pub async fn idempotency_claim(
    con: &mut PgConnection,
    merchant_id: &MerchantId,
    key: &str,
    request_sha256: &str,
    program_id: Option<ProgramId>,
    stale_secs: i64,
) -> Result<IdempotencyClaim, StoreError> {
    // Two int4 keys: a key space apart from the campaign-wide budget lock (one int8 key).
    let row = sqlx::query(
        "SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2)) AS got,
                k.request_sha256, k.state, k.response_status, k.response_body,
                coalesce(k.created_at < now() - make_interval(secs => $4::float8), false) AS stale,
                EXISTS (SELECT 1 FROM merchant_programs WHERE merchant_id = $1 AND program_id = $3) AS approved
         FROM (SELECT 1) AS one
         LEFT JOIN idempotency_keys k ON k.merchant_id = $1 AND k.idem_key = $2",
    )
    .bind(merchant_id.as_str())
    .bind(key)
    .bind(program_id.map_or(-1, |p| p.0))
    .bind(i32::try_from(stale_secs).unwrap_or(i32::MAX))
    .fetch_one(&mut *con)
    .await?;
    let approved: bool = row.try_get("approved")?;
    let claim = |begin| Ok(IdempotencyClaim { begin, approved });
    let got: bool = row.try_get("got")?;
    if !got {
        return claim(IdempotencyBegin::InFlight);
    }
    let Some(hash) = row.try_get::<Option<String>, _>("request_sha256")? else {
        return claim(IdempotencyBegin::Started);
    };
    if hash != request_sha256 {
        return claim(IdempotencyBegin::Mismatch);
    }
    let state: String = row.try_get("state")?;
    if state == "done" {
        let status: Option<i32> = row.try_get("response_status")?;
        let body: Option<serde_json::Value> = row.try_get("response_body")?;
        return claim(IdempotencyBegin::Done(
            status.unwrap_or(200),
            body.unwrap_or_default(),
        ));
    }
    // An `in_flight` row (written by an earlier version of the service): taken over when stale.
    if row.try_get("stale")? {
        claim(IdempotencyBegin::Started)
    } else {
        claim(IdempotencyBegin::InFlight)
    }
}

/// The stored response of a key, read in a statement of its own (so it sees every commit
/// before it): [`IdempotencyBegin::Done`] with the response when the key was used with this
/// request, [`IdempotencyBegin::Mismatch`] when with another, `None` when nothing is stored.
/// For a checkout that took the key and did not approve (see the module documentation).
///
/// # Errors
/// Database failure.
pub async fn idempotency_stored(
    pool: &PgPool,
    merchant_id: &MerchantId,
    key: &str,
    request_sha256: &str,
) -> Result<Option<IdempotencyBegin>, StoreError> {
    let row: Option<(String, Option<i32>, Option<serde_json::Value>)> = sqlx::query_as(
        "SELECT request_sha256, response_status, response_body FROM idempotency_keys
          WHERE merchant_id = $1 AND idem_key = $2 AND state = 'done'",
    )
    .bind(merchant_id.as_str())
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(hash, status, body)| {
        if hash == request_sha256 {
            IdempotencyBegin::Done(status.unwrap_or(200), body.unwrap_or_default())
        } else {
            IdempotencyBegin::Mismatch
        }
    }))
}

/// Deletes stored responses older than `hours` (the retention, at least 24).
///
/// # Errors
/// Database failure.
pub async fn idempotency_purge(pool: &PgPool, hours: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE state = 'done' AND created_at < now() - make_interval(hours => $1::int4)",
    )
    .bind(i32::try_from(hours.max(24)).unwrap_or(i32::MAX))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

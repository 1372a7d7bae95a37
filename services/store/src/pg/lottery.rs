//! Lottery rounds (报名摇号) in the record (`0007_lottery.sql`): each lottery round's secret
//! seed and published commitment, the registrations, and the draw with its winners.
//!
//! - **Seed.** Made (ring's `SystemRandom`) and stored in the transaction that records the
//!   round ([`commit_rounds_in_tx`]); its commitment goes into the round as loaded from then
//!   on. Nothing here returns the seed of a round that has not been drawn.
//! - **Registration** ([`register`]) is one transaction: the round's row is read `FOR
//!   SHARE` (so it cannot be drawn meanwhile; a drawn round takes no more entries), then the
//!   entry is inserted `ON CONFLICT ON CONSTRAINT lottery_registrations_pkey DO NOTHING`.
//!   Concurrent registrations of one person queue on that key: exactly one inserts, the
//!   others find its row.
//! - **Draw** ([`draw`]) is one transaction under the round's row lock `FOR UPDATE` (which
//!   waits for registrations in flight): a drawn round answers its recorded draw; otherwise
//!   the entries are read, [`voucher_core::lottery::draw`] picks the winners, and the winners
//!   and the draw's facts are written. A second call, concurrent or later, reads the same
//!   draw.
//! - **Issuing** happens outside (the issuance service runs the claim script per winner);
//!   [`record_outcomes`] writes what it gave, once per winner (`WHERE status = 'pending'`).

use crate::pg::text_enum::text_enum;
use crate::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::HashMap;
use voucher_core::campaign::RoundMode;
use voucher_core::lottery::{self, Commitment, RegistrationHash, Seed};
use voucher_core::{CampaignId, ClaimId, PersonId, Round, VoucherId};

/// Makes, stores and commits to the seed of each lottery round of `rounds` (just inserted
/// in `tx`), writing the commitment into the round.
///
/// # Errors
/// Database failure; [`StoreError::Corrupt`] if the system random source fails.
pub(crate) async fn commit_rounds_in_tx(
    tx: &mut Transaction<'_, Postgres>,
    campaign_id: CampaignId,
    rounds: &mut [Round],
) -> Result<(), StoreError> {
    for round in rounds.iter_mut() {
        let RoundMode::Lottery(window) = &mut round.mode else {
            continue;
        };
        let seed = Seed::generate().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let commitment = seed.commitment();
        sqlx::query(
            "INSERT INTO lottery_rounds (campaign_id, round_no, seed, commitment)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(campaign_id.0)
        .bind(to_i32(round.round_no, "round_no")?)
        .bind(&seed.as_bytes()[..])
        .bind(&commitment.as_bytes()[..])
        .execute(&mut **tx)
        .await?;
        window.commitment = Some(commitment);
    }
    Ok(())
}

/// The commitments of every lottery round (of one campaign, or all), by (campaign, round).
///
/// # Errors
/// Database failure; a stored commitment that is not 32 bytes.
pub(crate) async fn commitments(
    pool: &PgPool,
    only: Option<CampaignId>,
) -> Result<HashMap<(i64, u32), Commitment>, StoreError> {
    let rows = sqlx::query(
        "SELECT campaign_id, round_no, commitment FROM lottery_rounds
         WHERE ($1::int8 IS NULL OR campaign_id = $1)",
    )
    .bind(only.map(|c| c.0))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let campaign: i64 = row.try_get("campaign_id")?;
            let round = from_i32(row.try_get("round_no")?, "round_no")?;
            let bytes: Vec<u8> = row.try_get("commitment")?;
            Ok((
                (campaign, round),
                Commitment::from_bytes(bytes32(&bytes, "commitment")?),
            ))
        })
        .collect()
}

/// One person's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// Who.
    pub person_id: PersonId,
    /// The published form of the entry.
    pub registration_hash: RegistrationHash,
    /// When the entry was made (the first request's time).
    pub registered_at: DateTime<Utc>,
}

/// What a registration attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// A new entry.
    Created(Registration),
    /// The person had registered already: their entry.
    Existing(Registration),
    /// The round has been drawn: no more entries.
    Drawn,
}

/// Registers `person` in a lottery round, idempotently (one entry per person).
///
/// # Errors
/// [`StoreError::NotFound`] when the round is not a lottery round; database failure.
#[tracing::instrument(name = "store.lottery.register", skip_all, fields(campaign_id = campaign_id.0, round_no), err(level = "debug"))]
pub async fn register(
    pool: &PgPool,
    campaign_id: CampaignId,
    round_no: u32,
    person: &PersonId,
    at: DateTime<Utc>,
) -> Result<Registered, StoreError> {
    let round = to_i32(round_no, "round_no")?;
    let hash = lottery::registration_hash(campaign_id, round_no, person);
    let mut tx = pool.begin().await?;
    let drawn: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "SELECT drawn_at FROM lottery_rounds WHERE campaign_id = $1 AND round_no = $2 FOR SHARE",
    )
    .bind(campaign_id.0)
    .bind(round)
    .fetch_optional(&mut *tx)
    .await?;
    match drawn {
        None => return Err(StoreError::NotFound),
        Some(Some(_)) => return Ok(Registered::Drawn),
        Some(None) => {}
    }
    let inserted: Option<DateTime<Utc>> = sqlx::query_scalar(
        "INSERT INTO lottery_registrations (campaign_id, round_no, person_id, registration_hash, registered_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT ON CONSTRAINT lottery_registrations_pkey DO NOTHING
         RETURNING registered_at",
    )
    .bind(campaign_id.0)
    .bind(round)
    .bind(person.as_str())
    .bind(&hash.as_bytes()[..])
    .bind(at)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match inserted {
        Some(registered_at) => Registered::Created(Registration {
            person_id: person.clone(),
            registration_hash: hash,
            registered_at,
        }),
        None => {
            let existing = registration_in(&mut tx, campaign_id, round_no, person)
                .await?
                .ok_or_else(|| {
                    StoreError::Corrupt("a conflicting registration is not there".to_owned())
                })?;
            Registered::Existing(existing)
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

async fn registration_in(
    tx: &mut Transaction<'_, Postgres>,
    campaign_id: CampaignId,
    round_no: u32,
    person: &PersonId,
) -> Result<Option<Registration>, StoreError> {
    let row = sqlx::query(
        "SELECT person_id, registration_hash, registered_at FROM lottery_registrations
         WHERE campaign_id = $1 AND round_no = $2 AND person_id = $3",
    )
    .bind(campaign_id.0)
    .bind(to_i32(round_no, "round_no")?)
    .bind(person.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(registration_from_row).transpose()
}

/// `person`'s entry in a round, if any.
///
/// # Errors
/// Database failure.
pub async fn registration(
    pool: &PgPool,
    campaign_id: CampaignId,
    round_no: u32,
    person: &PersonId,
) -> Result<Option<Registration>, StoreError> {
    let mut tx = pool.begin().await?;
    let found = registration_in(&mut tx, campaign_id, round_no, person).await?;
    tx.commit().await?;
    Ok(found)
}

fn registration_from_row(row: &PgRow) -> Result<Registration, StoreError> {
    let person: String = row.try_get("person_id")?;
    let hash: Vec<u8> = row.try_get("registration_hash")?;
    Ok(Registration {
        person_id: PersonId::parse(&person)
            .map_err(|e| StoreError::Corrupt(format!("registration person {person:?}: {e}")))?,
        registration_hash: RegistrationHash::from_bytes(bytes32(&hash, "registration_hash")?),
        registered_at: row.try_get("registered_at")?,
    })
}

/// A lottery round's public state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundState {
    /// The published commitment.
    pub commitment: Commitment,
    /// Entries so far (after the draw: the entries drawn from).
    pub registrations: u32,
    /// When it was drawn, if it was.
    pub drawn_at: Option<DateTime<Utc>>,
    /// The revealed seed, once drawn.
    pub seed: Option<Seed>,
    /// How many won, once drawn.
    pub winners: Option<u32>,
}

/// The state of a lottery round, or `None` when it is not one.
///
/// # Errors
/// Database failure.
pub async fn state(
    pool: &PgPool,
    campaign_id: CampaignId,
    round_no: u32,
) -> Result<Option<RoundState>, StoreError> {
    let row = sqlx::query(
        "SELECT l.commitment, l.drawn_at,
                CASE WHEN l.drawn_at IS NULL THEN NULL ELSE l.seed END AS seed,
                coalesce(l.registrations,
                         (SELECT count(*) FROM lottery_registrations r
                          WHERE r.campaign_id = l.campaign_id AND r.round_no = l.round_no))::int4
                    AS registrations,
                CASE WHEN l.drawn_at IS NULL THEN NULL
                     ELSE (SELECT count(*) FROM lottery_winners w
                           WHERE w.campaign_id = l.campaign_id AND w.round_no = l.round_no)::int4
                END AS winners
         FROM lottery_rounds l WHERE l.campaign_id = $1 AND l.round_no = $2",
    )
    .bind(campaign_id.0)
    .bind(to_i32(round_no, "round_no")?)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let commitment: Vec<u8> = row.try_get("commitment")?;
    let seed: Option<Vec<u8>> = row.try_get("seed")?;
    let winners: Option<i32> = row.try_get("winners")?;
    Ok(Some(RoundState {
        commitment: Commitment::from_bytes(bytes32(&commitment, "commitment")?),
        registrations: from_i32(row.try_get("registrations")?, "registrations")?,
        drawn_at: row.try_get("drawn_at")?,
        seed: seed
            .map(|s| Seed::from_slice(&s).map_err(|_| corrupt_len("seed")))
            .transpose()?,
        winners: winners.map(|w| from_i32(w, "winners")).transpose()?,
    }))
}

/// What issuing a winner's voucher gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WinnerStatus {
    /// Not issued yet (or the store failed): the next draw call tries again.
    Pending,
    /// Issued: the voucher exists.
    Issued,
    /// The claim script refused (per-person limit, stock): final.
    Refused,
}

text_enum!(WinnerStatus, "winner status" {
    Pending => "pending",
    Issued => "issued",
    Refused => "refused",
});

/// One winner of a draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Winner {
    /// 1 for the first drawn.
    pub rank: u32,
    /// Their published entry.
    pub registration_hash: RegistrationHash,
    /// Who.
    pub person_id: PersonId,
    /// The deterministic claim id of their voucher.
    pub claim_id: ClaimId,
    /// What issuing gave.
    pub status: WinnerStatus,
    /// The voucher, when issued.
    pub voucher_id: Option<VoucherId>,
    /// Why refused.
    pub reason: Option<String>,
}

/// A drawn round as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawRecord {
    /// The revealed seed.
    pub seed: Seed,
    /// The commitment published before.
    pub commitment: Commitment,
    /// When.
    pub drawn_at: DateTime<Utc>,
    /// Winners offered.
    pub quantity: u32,
    /// Every entry drawn from, ascending.
    pub registration_hashes: Vec<RegistrationHash>,
    /// The winners, rank 1 first.
    pub winners: Vec<Winner>,
}

/// Draws a lottery round once: the first call picks and records the winners of `quantity`
/// at `now`; every later call (or a concurrent one, which waits) answers the same record.
///
/// # Errors
/// [`StoreError::NotFound`] when the round is not a lottery round; database failure.
#[tracing::instrument(name = "store.lottery.draw", skip_all, fields(campaign_id = campaign_id.0, round_no), err(level = "debug"))]
pub async fn draw(
    pool: &PgPool,
    campaign_id: CampaignId,
    round_no: u32,
    quantity: u32,
    now: DateTime<Utc>,
) -> Result<DrawRecord, StoreError> {
    let round = to_i32(round_no, "round_no")?;
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT seed, drawn_at FROM lottery_rounds
         WHERE campaign_id = $1 AND round_no = $2 FOR UPDATE",
    )
    .bind(campaign_id.0)
    .bind(round)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    let drawn: Option<DateTime<Utc>> = row.try_get("drawn_at")?;
    if drawn.is_none() {
        let seed: Vec<u8> = row.try_get("seed")?;
        let seed = Seed::from_slice(&seed).map_err(|_| corrupt_len("seed"))?;
        let entries = sqlx::query(
            "SELECT person_id, registration_hash, registered_at FROM lottery_registrations
             WHERE campaign_id = $1 AND round_no = $2",
        )
        .bind(campaign_id.0)
        .bind(round)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(registration_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let by_hash: HashMap<RegistrationHash, &PersonId> = entries
            .iter()
            .map(|e| (e.registration_hash, &e.person_id))
            .collect();
        let hashes: Vec<RegistrationHash> = by_hash.keys().copied().collect();
        let winners = lottery::draw(&seed, &hashes, quantity);
        let mut ranks = Vec::with_capacity(winners.len());
        let mut hash_bytes = Vec::with_capacity(winners.len());
        let mut persons = Vec::with_capacity(winners.len());
        let mut claims = Vec::with_capacity(winners.len());
        for (rank, hash) in (1i32..).zip(&winners) {
            let person = by_hash
                .get(hash)
                .ok_or_else(|| StoreError::Corrupt("a winner without an entry".to_owned()))?;
            ranks.push(rank);
            hash_bytes.push(hash.as_bytes().to_vec());
            persons.push(person.as_str().to_owned());
            claims.push(lottery::winner_claim_id(campaign_id, round_no, person).0);
        }
        sqlx::query(
            "INSERT INTO lottery_winners (campaign_id, round_no, rank, registration_hash, person_id, claim_id)
             SELECT $1, $2, k, h, p, c
             FROM UNNEST($3::int4[], $4::bytea[], $5::text[], $6::uuid[]) AS t (k, h, p, c)",
        )
        .bind(campaign_id.0)
        .bind(round)
        .bind(&ranks)
        .bind(&hash_bytes)
        .bind(&persons)
        .bind(&claims)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE lottery_rounds SET drawn_at = $3, quantity = $4, registrations = $5
             WHERE campaign_id = $1 AND round_no = $2",
        )
        .bind(campaign_id.0)
        .bind(round)
        .bind(now)
        .bind(to_i32(quantity, "quantity")?)
        .bind(i32::try_from(hashes.len()).map_err(|_| corrupt_len("registrations"))?)
        .execute(&mut *tx)
        .await?;
    }
    let record = load_draw_in(&mut tx, campaign_id, round_no)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a draw just recorded is not there".to_owned()))?;
    tx.commit().await?;
    Ok(record)
}

/// The recorded draw of a round, or `None` when it has not been drawn (or is not a
/// lottery round).
///
/// # Errors
/// Database failure.
pub async fn load_draw(
    pool: &PgPool,
    campaign_id: CampaignId,
    round_no: u32,
) -> Result<Option<DrawRecord>, StoreError> {
    // One transaction at REPEATABLE READ: the round, its entries and its winners as of one
    // snapshot (outcomes recorded meanwhile show up in the next read).
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let record = load_draw_in(&mut tx, campaign_id, round_no).await?;
    tx.commit().await?;
    Ok(record)
}

async fn load_draw_in(
    tx: &mut Transaction<'_, Postgres>,
    campaign_id: CampaignId,
    round_no: u32,
) -> Result<Option<DrawRecord>, StoreError> {
    let round = to_i32(round_no, "round_no")?;
    let row = sqlx::query(
        "SELECT seed, commitment, drawn_at, quantity FROM lottery_rounds
         WHERE campaign_id = $1 AND round_no = $2 AND drawn_at IS NOT NULL",
    )
    .bind(campaign_id.0)
    .bind(round)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let seed: Vec<u8> = row.try_get("seed")?;
    let commitment: Vec<u8> = row.try_get("commitment")?;
    let quantity: Option<i32> = row.try_get("quantity")?;
    let drawn_at: Option<DateTime<Utc>> = row.try_get("drawn_at")?;
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT registration_hash FROM lottery_registrations
         WHERE campaign_id = $1 AND round_no = $2 ORDER BY registration_hash",
    )
    .bind(campaign_id.0)
    .bind(round)
    .fetch_all(&mut **tx)
    .await?;
    let mut registration_hashes = hashes
        .iter()
        .map(|h| bytes32(h, "registration_hash").map(RegistrationHash::from_bytes))
        .collect::<Result<Vec<_>, _>>()?;
    // PostgreSQL orders bytea as unsigned bytes already; sorting again costs little and
    // does not depend on it.
    registration_hashes.sort_unstable();
    let winners = sqlx::query(
        "SELECT rank, registration_hash, person_id, claim_id, status, voucher_id, reason
         FROM lottery_winners WHERE campaign_id = $1 AND round_no = $2 ORDER BY rank",
    )
    .bind(campaign_id.0)
    .bind(round)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(winner_from_row)
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(DrawRecord {
        seed: Seed::from_slice(&seed).map_err(|_| corrupt_len("seed"))?,
        commitment: Commitment::from_bytes(bytes32(&commitment, "commitment")?),
        drawn_at: drawn_at.ok_or_else(|| corrupt_len("drawn_at"))?,
        quantity: from_i32(quantity.unwrap_or(0), "quantity")?,
        registration_hashes,
        winners,
    }))
}

fn winner_from_row(row: &PgRow) -> Result<Winner, StoreError> {
    let hash: Vec<u8> = row.try_get("registration_hash")?;
    let person: String = row.try_get("person_id")?;
    let voucher: Option<uuid::Uuid> = row.try_get("voucher_id")?;
    Ok(Winner {
        rank: from_i32(row.try_get("rank")?, "rank")?,
        registration_hash: RegistrationHash::from_bytes(bytes32(&hash, "registration_hash")?),
        person_id: PersonId::parse(&person)
            .map_err(|e| StoreError::Corrupt(format!("winner person {person:?}: {e}")))?,
        claim_id: ClaimId(row.try_get("claim_id")?),
        status: row.try_get("status")?,
        voucher_id: voucher.map(VoucherId),
        reason: row.try_get("reason")?,
    })
}

/// `person`'s line among the winners of a round, if they won.
///
/// # Errors
/// Database failure.
pub async fn winner(
    pool: &PgPool,
    campaign_id: CampaignId,
    round_no: u32,
    person: &PersonId,
) -> Result<Option<Winner>, StoreError> {
    let row = sqlx::query(
        "SELECT rank, registration_hash, person_id, claim_id, status, voucher_id, reason
         FROM lottery_winners WHERE campaign_id = $1 AND round_no = $2 AND person_id = $3",
    )
    .bind(campaign_id.0)
    .bind(to_i32(round_no, "round_no")?)
    .bind(person.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(winner_from_row).transpose()
}

/// What issuing one winner's voucher gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The voucher.
    Issued(VoucherId),
    /// The claim script's refusal.
    Refused(String),
}

/// Records the outcomes of pending winners, by rank (a winner already decided is left as
/// it is). Returns how many this call recorded.
///
/// # Errors
/// Database failure.
pub async fn record_outcomes(
    pool: &PgPool,
    campaign_id: CampaignId,
    round_no: u32,
    outcomes: &[(u32, Outcome)],
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    if outcomes.is_empty() {
        return Ok(0);
    }
    let mut ranks = Vec::with_capacity(outcomes.len());
    let mut statuses = Vec::with_capacity(outcomes.len());
    let mut vouchers = Vec::with_capacity(outcomes.len());
    let mut reasons = Vec::with_capacity(outcomes.len());
    for (rank, outcome) in outcomes {
        ranks.push(to_i32(*rank, "rank")?);
        let (status, voucher, reason) = match outcome {
            Outcome::Issued(v) => (WinnerStatus::Issued, Some(v.0), None),
            Outcome::Refused(why) => (WinnerStatus::Refused, None, Some(why.clone())),
        };
        statuses.push(status.as_str());
        vouchers.push(voucher);
        reasons.push(reason);
    }
    let updated = sqlx::query(
        "UPDATE lottery_winners w SET status = t.s, voucher_id = t.v, reason = t.r, decided_at = $7
         FROM UNNEST($3::int4[], $4::text[], $5::uuid[], $6::text[]) AS t (k, s, v, r)
         WHERE w.campaign_id = $1 AND w.round_no = $2 AND w.rank = t.k AND w.status = 'pending'",
    )
    .bind(campaign_id.0)
    .bind(to_i32(round_no, "round_no")?)
    .bind(&ranks)
    .bind(&statuses)
    .bind(&vouchers)
    .bind(&reasons)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected())
}

fn bytes32(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| corrupt_len(what))
}

fn corrupt_len(what: &str) -> StoreError {
    StoreError::Corrupt(format!("lottery {what} is not what was stored"))
}

fn to_i32(v: u32, what: &'static str) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

fn from_i32(v: i32, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winner_statuses_serialise_as_stored() {
        for s in WinnerStatus::ALL {
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::Value::String(s.as_str().to_owned()))
            );
        }
    }
}

//! Campaigns and their rounds: the `campaigns` and `rounds` tables, mapped to
//! [`voucher_core::Campaign`] (rounds are always loaded with their campaign, in order, a
//! lottery round with the commitment of its seed from [`super::lottery`]); and
//! the one fact of a campaign the checkout needs, its program's refund policy
//! ([`refund_policy`]).

use crate::pg::constraints::{self, Expected, Missing};
use crate::pg::lottery;
use crate::pg::programs::{fen_from_db, place_from_db, place_to_db};
use crate::{Conflict, StoreError};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::{BTreeMap, HashSet};
use voucher_core::campaign::RoundKind;
use voucher_core::{
    Campaign, CampaignId, CampaignStatus, Category, Distribution, Eligibility, NewCampaign,
    PlaceCode, ProgramId, RefundPolicy, Round, RoundMode, Rule, Validity,
};

/// Inserts a validated campaign with its rounds (one transaction).
///
/// # Errors
/// Database failure; [`StoreError::NotFound`] if the program does not exist.
#[tracing::instrument(name = "store.campaigns.create", skip_all, err(level = "debug"))]
pub async fn create(pool: &PgPool, spec: &NewCampaign) -> Result<Campaign, StoreError> {
    let mut tx = pool.begin().await?;
    let places: Vec<i32> = spec
        .eligibility
        .places
        .iter()
        .map(|p| place_to_db(*p))
        .collect();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO campaigns (program_id, name, owner_place, category, rule, stock, per_person_limit,
                                validity_days, valid_ends_at, budget_fen, eligible_places, min_real_name_level,
                                distribution, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'active') RETURNING id",
    )
    .bind(spec.program_id.0)
    .bind(&spec.name)
    .bind(place_to_db(spec.owner_place))
    .bind(spec.category.as_str())
    .bind(Json(&spec.rule))
    .bind(to_i32(spec.stock, "stock")?)
    .bind(to_i32(spec.per_person_limit, "per_person_limit")?)
    .bind(spec.validity.days_after_claim.map(|d| to_i32(d, "validity days")).transpose()?)
    .bind(spec.validity.ends_at)
    .bind(spec.budget.as_i64())
    .bind(&places)
    .bind(i16::from(spec.eligibility.min_real_name_level))
    .bind(distribution_name(spec.distribution))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| constraints::expected(e, &[Expected::ForeignKey(Missing::CampaignProgram)]))?;
    insert_rounds(&mut tx, id, &spec.rounds).await?;
    let mut spec = spec.clone();
    lottery::commit_rounds_in_tx(&mut tx, CampaignId(id), &mut spec.rounds).await?;
    tx.commit().await?;
    Ok(Campaign {
        id: CampaignId(id),
        status: CampaignStatus::Active,
        spec,
    })
}

/// One campaign with its rounds.
///
/// # Errors
/// Database failure.
pub async fn get(pool: &PgPool, id: CampaignId) -> Result<Option<Campaign>, StoreError> {
    Ok(load(pool, Some(id)).await?.into_iter().next())
}

/// Campaigns whose owner place lies within `within` (all when `None`), by id.
///
/// # Errors
/// Database failure.
pub async fn list(pool: &PgPool, within: Option<PlaceCode>) -> Result<Vec<Campaign>, StoreError> {
    let all = load(pool, None).await?;
    Ok(match within {
        None => all,
        Some(place) => all
            .into_iter()
            .filter(|c| place.covers(c.spec.owner_place))
            .collect(),
    })
}

/// Appends a validated round (its number must be the next one: another number, or a
/// concurrent append of the same number, gives [`StoreError::Conflict`] with
/// [`Conflict::Round`]). Returns the campaign as it now is.
///
/// # Errors
/// Database failure, conflict, not found.
#[tracing::instrument(name = "store.campaigns.add_round", skip_all, fields(campaign_id = id.0), err(level = "debug"))]
pub async fn add_round(
    pool: &PgPool,
    id: CampaignId,
    round: &Round,
) -> Result<Campaign, StoreError> {
    let mut tx = pool.begin().await?;
    // Appends to one campaign queue up behind this lock, so "the next number" is well defined.
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT id FROM campaigns WHERE id = $1 FOR UPDATE")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    let window = round.mode.lottery();
    let inserted = sqlx::query(
        "INSERT INTO rounds (campaign_id, round_no, starts_at, quantity, mode,
                             registration_opens_at, registration_closes_at)
         SELECT $1, $2, $3, $4, $5, $6, $7
         WHERE $2 = (SELECT coalesce(max(round_no), 0) + 1 FROM rounds WHERE campaign_id = $1)",
    )
    .bind(id.0)
    .bind(to_i32(round.round_no, "round_no")?)
    .bind(round.starts_at)
    .bind(to_i32(round.quantity, "quantity")?)
    .bind(mode_name(round.mode.kind()))
    .bind(window.map(|w| w.registration_opens_at))
    .bind(window.map(|w| w.registration_closes_at))
    .execute(&mut *tx)
    .await
    .map_err(|e| constraints::expected(e, &[ROUND_TAKEN]))?;
    if inserted.rows_affected() != 1 {
        return Err(StoreError::Conflict(Conflict::Round));
    }
    lottery::commit_rounds_in_tx(&mut tx, id, &mut [*round]).await?;
    tx.commit().await?;
    get(pool, id).await?.ok_or(StoreError::NotFound)
}

/// Sets the status. Returns the campaign as it now is.
///
/// # Errors
/// Database failure, not found.
#[tracing::instrument(name = "store.campaigns.set_status", skip_all, fields(campaign_id = id.0), err(level = "debug"))]
pub async fn set_status(
    pool: &PgPool,
    id: CampaignId,
    status: CampaignStatus,
) -> Result<Campaign, StoreError> {
    let updated = sqlx::query("UPDATE campaigns SET status = $2 WHERE id = $1")
        .bind(id.0)
        .bind(status_name(status))
        .execute(pool)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    get(pool, id).await?.ok_or(StoreError::NotFound)
}

async fn insert_rounds(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    rounds: &[Round],
) -> Result<(), StoreError> {
    if rounds.is_empty() {
        return Ok(());
    }
    let numbers = rounds
        .iter()
        .map(|r| to_i32(r.round_no, "round_no"))
        .collect::<Result<Vec<_>, _>>()?;
    let starts: Vec<_> = rounds.iter().map(|r| r.starts_at).collect();
    let quantities = rounds
        .iter()
        .map(|r| to_i32(r.quantity, "quantity"))
        .collect::<Result<Vec<_>, _>>()?;
    let modes: Vec<&str> = rounds.iter().map(|r| mode_name(r.mode.kind())).collect();
    let windows: Vec<_> = rounds.iter().map(|r| r.mode.lottery()).collect();
    let opens: Vec<_> = windows
        .iter()
        .map(|w| w.map(|w| w.registration_opens_at))
        .collect();
    let closes: Vec<_> = windows
        .iter()
        .map(|w| w.map(|w| w.registration_closes_at))
        .collect();
    sqlx::query(
        "INSERT INTO rounds (campaign_id, round_no, starts_at, quantity, mode,
                             registration_opens_at, registration_closes_at)
         SELECT $1, n, s, q, m, o, c
         FROM UNNEST($2::int4[], $3::timestamptz[], $4::int4[], $5::text[], $6::timestamptz[],
                     $7::timestamptz[]) AS t (n, s, q, m, o, c)",
    )
    .bind(id)
    .bind(&numbers)
    .bind(&starts)
    .bind(&quantities)
    .bind(&modes)
    .bind(&opens)
    .bind(&closes)
    .execute(&mut **tx)
    .await
    .map_err(|e| constraints::expected(e, &[ROUND_TAKEN]))?;
    Ok(())
}

/// Campaigns (one, or all), by id, with their rounds.
async fn load(pool: &PgPool, only: Option<CampaignId>) -> Result<Vec<Campaign>, StoreError> {
    let only = only.map(|id| id.0);
    let rows = sqlx::query(
        "SELECT id, program_id, name, owner_place, category, rule, stock, per_person_limit, validity_days,
                valid_ends_at, budget_fen, eligible_places, min_real_name_level, distribution, status
         FROM campaigns WHERE ($1::int8 IS NULL OR id = $1) ORDER BY id",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    let round_rows = sqlx::query(
        "SELECT campaign_id, round_no, starts_at, quantity, mode, registration_opens_at,
                registration_closes_at
         FROM rounds
         WHERE ($1::int8 IS NULL OR campaign_id = $1) ORDER BY campaign_id, round_no",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    let commitments = lottery::commitments(pool, only.map(CampaignId)).await?;
    let mut rounds: BTreeMap<i64, Vec<Round>> = BTreeMap::new();
    for row in round_rows {
        let campaign: i64 = row.try_get("campaign_id")?;
        let round_no = from_i32(row.try_get("round_no")?, "round_no")?;
        let starts_at = row.try_get("starts_at")?;
        let mode: String = row.try_get("mode")?;
        let kind = match mode.as_str() {
            "rush" => RoundKind::Rush,
            "lottery" => RoundKind::Lottery,
            other => return Err(StoreError::Corrupt(format!("round mode {other:?}"))),
        };
        let mode = RoundMode::from_parts(
            kind,
            row.try_get("registration_opens_at")?,
            row.try_get("registration_closes_at")?,
            commitments.get(&(campaign, round_no)).copied(),
            starts_at,
        )
        .map_err(|e| {
            StoreError::Corrupt(format!("round {round_no} of campaign {campaign}: {e}"))
        })?;
        rounds.entry(campaign).or_default().push(Round {
            round_no,
            starts_at,
            quantity: from_i32(row.try_get("quantity")?, "quantity")?,
            mode,
        });
    }
    rows.iter()
        .map(|row| campaign_from_row(row, &mut rounds))
        .collect()
}

fn campaign_from_row(
    row: &PgRow,
    rounds: &mut BTreeMap<i64, Vec<Round>>,
) -> Result<Campaign, StoreError> {
    let id: i64 = row.try_get("id")?;
    let category: String = row.try_get("category")?;
    let Json(rule): Json<Rule> = row.try_get("rule")?;
    let validity_days: Option<i32> = row.try_get("validity_days")?;
    let places: Vec<i32> = row.try_get("eligible_places")?;
    let level: i16 = row.try_get("min_real_name_level")?;
    let distribution: String = row.try_get("distribution")?;
    let status: String = row.try_get("status")?;
    Ok(Campaign {
        id: CampaignId(id),
        status: match status.as_str() {
            "active" => CampaignStatus::Active,
            "paused" => CampaignStatus::Paused,
            other => return Err(StoreError::Corrupt(format!("campaign status {other:?}"))),
        },
        spec: NewCampaign {
            program_id: ProgramId(row.try_get("program_id")?),
            name: row.try_get("name")?,
            owner_place: place_from_db(row.try_get("owner_place")?)?,
            category: category
                .parse::<Category>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            rule,
            stock: from_i32(row.try_get("stock")?, "stock")?,
            per_person_limit: from_i32(row.try_get("per_person_limit")?, "per_person_limit")?,
            rounds: rounds.remove(&id).unwrap_or_default(),
            validity: Validity {
                days_after_claim: validity_days
                    .map(|d| from_i32(d, "validity_days"))
                    .transpose()?,
                ends_at: row.try_get("valid_ends_at")?,
            },
            budget: fen_from_db(row.try_get("budget_fen")?)?,
            eligibility: Eligibility {
                places: places
                    .into_iter()
                    .map(place_from_db)
                    .collect::<Result<_, _>>()?,
                min_real_name_level: u8::try_from(level)
                    .map_err(|_| StoreError::Corrupt(format!("real-name level {level}")))?,
            },
            distribution: match distribution.as_str() {
                "claim" => Distribution::Claim,
                "list" => Distribution::List,
                other => return Err(StoreError::Corrupt(format!("distribution {other:?}"))),
            },
        },
    })
}

/// The campaign's program and that program's refund policy (what a checkout and a reversal
/// need of a campaign).
///
/// # Errors
/// [`StoreError::NotFound`]; database failure.
pub async fn refund_policy(
    pool: &PgPool,
    campaign_id: CampaignId,
) -> Result<(ProgramId, RefundPolicy), StoreError> {
    let row = sqlx::query(
        "SELECT p.id, p.refund_policy FROM campaigns c JOIN programs p ON p.id = c.program_id WHERE c.id = $1",
    )
    .bind(campaign_id.0)
    .fetch_optional(pool)
    .await?
    .ok_or(StoreError::NotFound)?;
    let policy: String = row.try_get("refund_policy")?;
    let policy = match policy.as_str() {
        "restore" => RefundPolicy::Restore,
        "forfeit" => RefundPolicy::Forfeit,
        other => return Err(StoreError::Corrupt(format!("refund policy {other:?}"))),
    };
    Ok((ProgramId(row.try_get("id")?), policy))
}

/// The campaigns whose hot state was created in Redis (`hot_created_at` set, migration
/// `0013_hot_created.sql`): Redis may only update theirs, never create it again (see
/// [`crate::hot`], "Creation").
///
/// # Errors
/// Database failure.
pub async fn hot_created(pool: &PgPool) -> Result<HashSet<CampaignId>, StoreError> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM campaigns WHERE hot_created_at IS NOT NULL")
            .fetch_all(pool)
            .await?;
    Ok(ids.into_iter().map(CampaignId).collect())
}

/// Whether the campaign's hot state was created in Redis (`false` for no such campaign).
///
/// # Errors
/// Database failure.
pub async fn is_hot_created(pool: &PgPool, id: CampaignId) -> Result<bool, StoreError> {
    let created: Option<bool> =
        sqlx::query_scalar("SELECT hot_created_at IS NOT NULL FROM campaigns WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?;
    Ok(created.unwrap_or(false))
}

/// Takes the right to create the campaign's hot state: `true` for exactly one caller ever
/// (the one whose conditional update set `hot_created_at`), which then creates it; every
/// other caller, concurrent or later, gets `false` and may only update what exists.
///
/// # Errors
/// Database failure.
#[tracing::instrument(name = "store.campaigns.take_hot_creation", skip_all, fields(campaign_id = id.0), err(level = "debug"))]
pub async fn take_hot_creation(pool: &PgPool, id: CampaignId) -> Result<bool, StoreError> {
    let taken = sqlx::query(
        "UPDATE campaigns SET hot_created_at = now() WHERE id = $1 AND hot_created_at IS NULL",
    )
    .bind(id.0)
    .execute(pool)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Records that the campaign's hot state exists (a rebuild writes it from the record);
/// keeps an earlier mark.
///
/// # Errors
/// Database failure.
pub async fn mark_hot_created(pool: &PgPool, id: CampaignId) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE campaigns SET hot_created_at = coalesce(hot_created_at, now()) WHERE id = $1",
    )
    .bind(id.0)
    .execute(pool)
    .await?;
    Ok(())
}

/// The conflict an insert into `rounds` expects: the campaign has a round of that number.
const ROUND_TAKEN: Expected = Expected::Unique(Conflict::Round);

fn to_i32(v: u32, what: &'static str) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

fn from_i32(v: i32, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

fn status_name(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Active => "active",
        CampaignStatus::Paused => "paused",
    }
}

fn mode_name(kind: RoundKind) -> &'static str {
    match kind {
        RoundKind::Rush => "rush",
        RoundKind::Lottery => "lottery",
    }
}

fn distribution_name(distribution: Distribution) -> &'static str {
    match distribution {
        Distribution::Claim => "claim",
        Distribution::List => "list",
    }
}

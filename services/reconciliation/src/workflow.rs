//! The workflow of a settlement batch: draft → city_confirmed → province_confirmed → paid.
//! Each step is taken by an administrator ([`Admin`]) and recorded with who, which role and
//! place, and when ([`settlement_batch_steps`]). Role scoping:
//!
//! | step | who |
//! |---|---|
//! | draft → city_confirmed | a **city** officer of the batch's city (市财政局 confirms its figures) |
//! | city_confirmed → province_confirmed | a **province** officer covering the city |
//! | province_confirmed → paid | a **province** officer covering the city |
//!
//! Reading a batch needs an administrator covering its city: a city officer sees only its
//! own city's batches. Steps are conditional updates (`… WHERE status = <from>`), so two
//! officers confirming at once move the batch once.
//!
//! [`settlement_batch_steps`]: ../../store/migrations/0003_ledger.sql

use crate::auth::{Admin, Role};
use crate::error::ReconError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use voucher_core::PlaceCode;

/// A batch's status.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Status {
    /// Written by the job.
    Draft,
    /// Confirmed by the city.
    CityConfirmed,
    /// Confirmed by the province.
    ProvinceConfirmed,
    /// Paid out.
    Paid,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::CityConfirmed => "city_confirmed",
            Status::ProvinceConfirmed => "province_confirmed",
            Status::Paid => "paid",
        }
    }

    /// The status a step to `self` starts from, and the role it needs.
    fn step(self) -> Option<(Status, Role)> {
        match self {
            Status::Draft => None,
            Status::CityConfirmed => Some((Status::Draft, Role::City)),
            Status::ProvinceConfirmed => Some((Status::CityConfirmed, Role::Province)),
            Status::Paid => Some((Status::ProvinceConfirmed, Role::Province)),
        }
    }
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The status reached.
    pub status: String,
    /// Who.
    pub actor: String,
    /// With which role (`job` for the draft).
    pub role: String,
    /// The actor's place.
    pub place: Option<i32>,
    /// When (RFC 3339).
    pub at: String,
}

/// A batch as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchView {
    /// The batch.
    pub batch_id: i64,
    /// Its run.
    pub run_id: i64,
    /// The program.
    pub program_id: i64,
    /// The city.
    pub city: u32,
    /// The period's first day.
    pub period_start: String,
    /// The period's last day.
    pub period_end: String,
    /// Current status.
    pub status: String,
    /// Spending S.
    pub spending_fen: i64,
    /// Province share.
    pub province_fen: i64,
    /// City share.
    pub city_fen: i64,
    /// County shares.
    pub county_fen: i64,
    /// The steps so far, in order.
    pub steps: Vec<Step>,
}

async fn batch_city(pool: &PgPool, batch: i64) -> Result<(PlaceCode, String), ReconError> {
    let row = sqlx::query("SELECT city, status FROM settlement_batches WHERE id = $1")
        .bind(batch)
        .fetch_optional(pool)
        .await?
        .ok_or(ReconError::NoSuchBatch(batch))?;
    let city: i32 = row.try_get("city")?;
    let city = u32::try_from(city)
        .ok()
        .and_then(|c| PlaceCode::try_from(c).ok())
        .ok_or_else(|| ReconError::Corrupt(format!("batch {batch} city {city}")))?;
    Ok((city, row.try_get("status")?))
}

fn require_place(admin: &Admin, city: PlaceCode) -> Result<(), ReconError> {
    if admin.can_manage(city) {
        Ok(())
    } else {
        Err(ReconError::ForbiddenPlace {
            who: admin.name.clone(),
            place: city,
        })
    }
}

/// Moves `batch` to `to`, as `admin`, at `now`.
///
/// # Errors
/// [`ReconError::ForbiddenPlace`], [`ReconError::ForbiddenRole`],
/// [`ReconError::InvalidTransition`], [`ReconError::NoSuchBatch`], database failure.
#[tracing::instrument(name = "reconciliation.workflow.advance", skip_all, fields(batch, to = to.as_str()), err(level = "debug"))]
pub async fn advance(
    pool: &PgPool,
    batch: i64,
    to: Status,
    admin: &Admin,
    now: DateTime<Utc>,
) -> Result<(), ReconError> {
    let (city, status) = batch_city(pool, batch).await?;
    // The place check comes first: another city's officer learns nothing about the batch.
    require_place(admin, city)?;
    let Some((from, role)) = to.step() else {
        return Err(ReconError::InvalidTransition {
            batch,
            status,
            to: to.as_str().to_owned(),
        });
    };
    if admin.role != role {
        return Err(ReconError::ForbiddenRole {
            who: admin.name.clone(),
            to: to.as_str().to_owned(),
            needed: role.as_str(),
        });
    }
    let mut tx = pool.begin().await?;
    let moved =
        sqlx::query("UPDATE settlement_batches SET status = $3 WHERE id = $1 AND status = $2")
            .bind(batch)
            .bind(from.as_str())
            .bind(to.as_str())
            .execute(&mut *tx)
            .await?;
    if moved.rows_affected() != 1 {
        return Err(ReconError::InvalidTransition {
            batch,
            status,
            to: to.as_str().to_owned(),
        });
    }
    sqlx::query(
        "INSERT INTO settlement_batch_steps (batch_id, status, actor, role, place, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(batch)
    .bind(to.as_str())
    .bind(&admin.name)
    .bind(admin.role.as_str())
    .bind(i32::try_from(admin.place.get()).unwrap_or(0))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Reads `batch`, as `admin`.
///
/// # Errors
/// [`ReconError::ForbiddenPlace`], [`ReconError::NoSuchBatch`], database failure.
pub async fn view(pool: &PgPool, batch: i64, admin: &Admin) -> Result<BatchView, ReconError> {
    let (city, _) = batch_city(pool, batch).await?;
    require_place(admin, city)?;
    let b = sqlx::query(
        "SELECT b.id, b.run_id, b.program_id, b.city, b.status, b.spending_fen, b.province_fen,
                b.city_fen, b.county_fen, r.period_start, r.period_end
           FROM settlement_batches b JOIN settlement_runs r ON r.id = b.run_id WHERE b.id = $1",
    )
    .bind(batch)
    .fetch_one(pool)
    .await?;
    let steps = sqlx::query(
        "SELECT status, actor, role, place, at FROM settlement_batch_steps WHERE batch_id = $1
          ORDER BY at, CASE status WHEN 'draft' THEN 0 WHEN 'city_confirmed' THEN 1
                                   WHEN 'province_confirmed' THEN 2 ELSE 3 END",
    )
    .bind(batch)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|s| {
        Ok(Step {
            status: s.try_get("status")?,
            actor: s.try_get("actor")?,
            role: s.try_get("role")?,
            place: s.try_get("place")?,
            at: s
                .try_get::<DateTime<Utc>, _>("at")?
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(BatchView {
        batch_id: b.try_get("id")?,
        run_id: b.try_get("run_id")?,
        program_id: b.try_get("program_id")?,
        city: city.get(),
        period_start: b
            .try_get::<chrono::NaiveDate, _>("period_start")?
            .to_string(),
        period_end: b.try_get::<chrono::NaiveDate, _>("period_end")?.to_string(),
        status: b.try_get("status")?,
        spending_fen: b.try_get("spending_fen")?,
        province_fen: b.try_get("province_fen")?,
        city_fen: b.try_get("city_fen")?,
        county_fen: b.try_get("county_fen")?,
        steps,
    })
}

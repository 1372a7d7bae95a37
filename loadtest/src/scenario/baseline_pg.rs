//! The usual alternative: the claim done the way a typical relational implementation does
//! it, one PostgreSQL transaction per attempt, in a database of its own (fsync on, as in
//! production):
//!
//! ```sql
//! BEGIN;
//! UPDATE stock SET remaining = remaining - 1 WHERE campaign_id = $1 AND remaining > 0;  -- 0 rows: SOLD_OUT
//! SELECT count(*) FROM vouchers WHERE campaign_id = $1 AND person_id = $2;             -- ≥ limit: PER_PERSON_LIMIT
//! INSERT INTO vouchers (...) VALUES (...);
//! COMMIT;
//! ```
//!
//! The stock update comes first on purpose: its row lock serialises the claims of the
//! campaign, which is what makes the per-person count check race-free under READ COMMITTED
//! (two phones of one person cannot both see zero). Checking the count first would be faster
//! and wrong. That hot row is the price of doing the claim in the database.

use super::{
    check_common, Scenario, ScenarioReport, Workload, CLAIMED, PER_PERSON_LIMIT, SOLD_OUT,
};
use crate::driver::drive;
use crate::invariants::Invariants;
use crate::residents::bench_person_id;
use crate::stats::Outcome;
use anyhow::{Context, Result};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::Duration;

/// The campaign id the baseline uses in its own database.
const CAMPAIGN: i64 = 1;

/// Where the baseline runs.
#[derive(Debug, Clone)]
pub struct PgTarget {
    /// A maintenance URL of the cluster (e.g. `postgres://postgres@127.0.0.1:55432/postgres`).
    pub admin_url: String,
    /// The database to (re)create for the baseline.
    pub database: String,
    /// Connections in the pool (the concurrency is capped by it, as in a real service).
    pub pool: u32,
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (head, query) = url
        .split_once('?')
        .map_or((url, None), |(h, q)| (h, Some(q)));
    let authority = head.find("://").map_or(0, |i| i + 3);
    let base = head[authority..]
        .find('/')
        .map_or(head, |i| &head[..authority + i]);
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

const SCHEMA: [&str; 3] = [
    "CREATE TABLE stock (campaign_id bigint PRIMARY KEY, remaining integer NOT NULL CHECK (remaining >= 0))",
    "CREATE TABLE vouchers (
        voucher_id  uuid        PRIMARY KEY,
        campaign_id bigint      NOT NULL,
        person_id   text        NOT NULL,
        claim_id    uuid        NOT NULL UNIQUE,
        claimed_at  timestamptz NOT NULL,
        valid_until timestamptz NOT NULL)",
    "CREATE INDEX vouchers_person_idx ON vouchers (campaign_id, person_id)",
];

/// Drops and creates the baseline database with its two tables, stock `stock`.
///
/// # Errors
/// The cluster is unreachable or refused.
pub async fn prepare(target: &PgTarget, stock: u32) -> Result<PgPool> {
    let mut admin = PgConnection::connect(&target.admin_url)
        .await
        .context("connecting to the cluster")?;
    let db = &target.database;
    if !db
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        anyhow::bail!("baseline database name {db:?}: lowercase letters, digits and _ only");
    }
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(target.pool.max(1))
        .min_connections(target.pool.max(1))
        .acquire_timeout(Duration::from_secs(60))
        .connect(&with_database(&target.admin_url, db))
        .await
        .context("connecting to the baseline database")?;
    for ddl in SCHEMA {
        sqlx::query(ddl).execute(&pool).await?;
    }
    sqlx::query("INSERT INTO stock VALUES ($1, $2)")
        .bind(CAMPAIGN)
        .bind(i64::from(stock))
        .execute(&pool)
        .await?;
    Ok(pool)
}

/// Drops the baseline database (after a test; the benchmark keeps it for inspection until
/// the next run recreates it).
///
/// # Errors
/// The cluster is unreachable or refused.
pub async fn drop_database(target: &PgTarget) -> Result<()> {
    let mut admin = PgConnection::connect(&target.admin_url)
        .await
        .context("connecting to the cluster")?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        target.database
    ))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

/// One claim, one transaction.
async fn claim(pool: &PgPool, person: &str, limit: i64) -> Result<Outcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let taken = sqlx::query(
        "UPDATE stock SET remaining = remaining - 1 WHERE campaign_id = $1 AND remaining > 0",
    )
    .bind(CAMPAIGN)
    .execute(&mut *tx)
    .await?;
    if taken.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(Outcome::Refused(SOLD_OUT.to_owned()));
    }
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM vouchers WHERE campaign_id = $1 AND person_id = $2",
    )
    .bind(CAMPAIGN)
    .bind(person)
    .fetch_one(&mut *tx)
    .await?;
    if held >= limit {
        tx.rollback().await?;
        return Ok(Outcome::Refused(PER_PERSON_LIMIT.to_owned()));
    }
    sqlx::query(
        "INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, claimed_at, valid_until)
         VALUES ($1, $2, $3, $4, now(), now() + interval '7 days')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(CAMPAIGN)
    .bind(person)
    .bind(uuid::Uuid::new_v4())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Outcome::Success(CLAIMED))
}

/// `(vouchers of the campaign, persons over the limit)` in `table` (`vouchers` both here and
/// in the service's schema).
///
/// # Errors
/// The queries failed.
pub async fn voucher_counts(
    pool: &PgPool,
    table: &str,
    campaign: i64,
    limit: u32,
) -> Result<(u64, u64)> {
    let count: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE campaign_id = $1"
    ))
    .bind(campaign)
    .fetch_one(pool)
    .await
    .context("counting vouchers")?;
    let over: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM (SELECT person_id FROM {table} WHERE campaign_id = $1
         GROUP BY person_id HAVING count(*) > $2) AS over_limit"
    ))
    .bind(campaign)
    .bind(i64::from(limit))
    .fetch_one(pool)
    .await
    .context("looking for persons over the limit")?;
    Ok((
        u64::try_from(count).unwrap_or(0),
        u64::try_from(over).unwrap_or(0),
    ))
}

/// Runs the baseline and checks its invariants.
///
/// # Errors
/// The database could not be prepared or read.
pub async fn run(target: &PgTarget, w: &Workload) -> Result<ScenarioReport> {
    let pool = prepare(target, w.stock).await?;
    let attempts: Vec<Arc<str>> = (1..=w.residents)
        .flat_map(|n| std::iter::repeat_n(Arc::<str>::from(bench_person_id(n)), w.devices))
        .collect();
    let limit = i64::from(w.per_person_limit);
    let p = pool.clone();
    let summary = drive(attempts, w.pace, w.deadline(), move |person: &Arc<str>| {
        let (pool, person) = (p.clone(), person.clone());
        async move {
            claim(&pool, &person, limit).await.unwrap_or_else(|e| {
                match e.as_database_error().and_then(|d| d.code()) {
                    Some(code) => Outcome::Error(format!("PG_ERROR_{code}")),
                    None => Outcome::Error("PG_ERROR".to_owned()),
                }
            })
        }
    })
    .await;
    let completed = summary.requests == u64::try_from(w.attempts()).unwrap_or(u64::MAX);
    let remaining: i32 = sqlx::query_scalar("SELECT remaining FROM stock WHERE campaign_id = $1")
        .bind(CAMPAIGN)
        .fetch_one(&pool)
        .await?;
    let (vouchers, over_limit) =
        voucher_counts(&pool, "vouchers", CAMPAIGN, w.per_person_limit).await?;
    pool.close().await;

    let mut inv = Invariants::default();
    let sold = u64::from(w.stock).saturating_sub(u64::try_from(remaining).unwrap_or(0));
    if completed {
        inv.equal(
            "vouchers = min(stock, demand)",
            w.expected_claims(),
            vouchers,
        );
    }
    inv.equal("vouchers = stock − remaining", sold, vouchers);
    inv.equal("persons over the per-person limit", 0, over_limit);
    check_common(&mut inv, &summary, vouchers);
    Ok(ScenarioReport {
        scenario: Scenario::BaselinePg,
        workload: *w,
        completed,
        summary,
        invariants: inv,
        redis_memory: None,
        rss: None,
    })
}

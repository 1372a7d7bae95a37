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
//!
//! How many connections fight over that row decides how fast it goes, so the standard run
//! [`sweep`]s the pool (16, 32, 64 and 512 claims in flight, a fresh database each) and takes
//! the best as the baseline: the design run as well as it runs, not at its worst. A point
//! asking for more connections than the target's `pool` (the cluster's `max_connections` is
//! shared with the services) keeps its claims in flight with the pool capped; the point
//! records both.

use super::{
    check_common, Point, Scenario, ScenarioReport, Workload, CLAIMED, PER_PERSON_LIMIT, SOLD_OUT,
};
use crate::driver::{drive, Pace};
use crate::fixed::Fixed;
use crate::invariants::Invariants;
use crate::residents::bench_person_id;
use crate::stats::Outcome;
use anyhow::{Context, Result};
use serde::Serialize;
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
    /// Connections in the pool, at most (the concurrency is capped by it, as in a real
    /// service).
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
    let db = &target.database;
    recreate_database(&target.admin_url, db, "baseline").await?;
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
    drop_database_at(&target.admin_url, &target.database).await
}

/// A maintenance connection to the cluster at `admin_url`.
async fn admin(admin_url: &str) -> Result<PgConnection> {
    PgConnection::connect(admin_url)
        .await
        .context("connecting to the cluster")
}

/// Drops `database` (forcing its connections off) and creates it empty, through the cluster
/// at `admin_url`. `what` names the database in the error about a name that is not plain
/// (lowercase letters, digits and `_`: it goes into the statement as is).
///
/// # Errors
/// A name that is not plain; the cluster is unreachable or refused.
pub async fn recreate_database(admin_url: &str, database: &str, what: &str) -> Result<()> {
    if !database
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        anyhow::bail!("{what} database name {database:?}: lowercase letters, digits and _ only");
    }
    let mut a = admin(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&mut a)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut a)
        .await?;
    a.close().await?;
    Ok(())
}

/// Drops `database` (forcing its connections off) through the cluster at `admin_url`.
///
/// # Errors
/// The cluster is unreachable or refused.
pub async fn drop_database_at(admin_url: &str, database: &str) -> Result<()> {
    let mut a = admin(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&mut a)
        .await?;
    a.close().await?;
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

/// One point of the pool sweep.
#[derive(Debug, Clone, Serialize)]
pub struct PgSweepPoint {
    /// Claims in flight (the driver's closed-loop concurrency).
    pub connections: usize,
    /// Connections the pool opened (`connections`, capped by the target's pool).
    pub pool: u32,
    /// Claims per second.
    pub claims_per_sec: u64,
    /// Attempts per second.
    pub requests_per_sec: u64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// The median in ms.
    pub p50_ms: Fixed,
    /// The 99th percentile in ms.
    pub p99_ms: Fixed,
    /// Whether every attempt was made (not cut at the deadline).
    pub completed: bool,
    /// The point's checks.
    pub invariants: Invariants,
    /// Whether this is the best point (the one reported as `baseline_pg`).
    pub best: bool,
}

impl PgSweepPoint {
    /// The point of run `r` made with `pool` connections.
    pub fn of(r: &ScenarioReport, pool: u32) -> PgSweepPoint {
        let l = r.summary.latency_us;
        PgSweepPoint {
            connections: r.workload.pace.concurrency(),
            pool,
            claims_per_sec: r.claims_per_sec(),
            requests_per_sec: r.summary.requests_per_sec,
            p50_us: l.p50,
            p99_us: l.p99,
            p50_ms: Fixed::ms_from_us(l.p50),
            p99_ms: Fixed::ms_from_us(l.p99),
            completed: r.completed,
            invariants: r.invariants.clone(),
            best: false,
        }
    }
}

impl Point for PgSweepPoint {
    fn per_sec(&self) -> u64 {
        self.claims_per_sec
    }

    fn set_best(&mut self, best: bool) {
        self.best = best;
    }
}

/// The sweep's result: the best run in full, and every point.
#[derive(Debug, Clone)]
pub struct PgSweep {
    /// The best run.
    pub best: ScenarioReport,
    /// Every point in order, the best marked.
    pub points: Vec<PgSweepPoint>,
}

/// Runs the baseline once per entry of `connections` (that many claims in flight, the pool
/// capped at the target's), each on a fresh database, calling `each` after every run.
/// `None` when `connections` is empty.
///
/// # Errors
/// A run failed (see [`run`]).
pub async fn sweep(
    target: &PgTarget,
    w: &Workload,
    connections: &[usize],
    each: impl Fn(&ScenarioReport),
) -> Result<Option<PgSweep>> {
    let mut runs = Vec::with_capacity(connections.len());
    for &n in connections {
        let pool = u32::try_from(n.max(1))
            .unwrap_or(u32::MAX)
            .min(target.pool.max(1));
        let t = PgTarget {
            pool,
            ..target.clone()
        };
        let mut point = *w;
        point.pace = Pace::Closed {
            concurrency: n.max(1),
        };
        let r = run(&t, &point).await?;
        each(&r);
        runs.push((PgSweepPoint::of(&r, pool), r));
    }
    let (mut points, reports): (Vec<_>, Vec<_>) = runs.into_iter().unzip();
    let Some(best) = super::mark_best(&mut points) else {
        return Ok(None);
    };
    Ok(reports
        .into_iter()
        .nth(best)
        .map(|best| PgSweep { best, points }))
}

//! The least a durable redemption costs on this PostgreSQL: the voucher's state change and
//! the redemption row in one transaction (`pg_redeem.sql`), no idempotency key, no budget,
//! no terminal signature, no HTTP — driven by PostgreSQL's own load generator, `pgbench`
//! (prepared statements, `-j` threads), against a database of its own in the benchmark's
//! cluster (fsync on):
//!
//! ```sql
//! BEGIN;
//! UPDATE voucher SET status = 'redeemed' WHERE id = :v AND status = 'issued';
//! INSERT INTO redemption (voucher_id, amount_fen, at) VALUES (:v, 2000, now());
//! COMMIT;
//! ```
//!
//! with `:v` drawn from the pre-filled vouchers. The client count is swept (16, 32, 64 by
//! default), each point for a fixed time on a freshly created and filled database after a
//! checkpoint, and the best transactions per second is the anchor
//! (`ratios.redemptions_vs_pg_redeem`). After each point: a redemption row per transaction
//! pgbench counted, none failed, no voucher `redeemed` without a row.

use super::baseline_pg::{drop_database_at, recreate_database, with_database};
use super::{tool, Point};
use crate::fixed::{parse_scaled, Fixed};
use crate::invariants::Invariants;
use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::{Connection, PgConnection};

/// The transaction pgbench runs, read from its standard input.
const SCRIPT: &str = include_str!("pg_redeem.sql");

const SCHEMA: [&str; 2] = [
    "CREATE TABLE voucher (id integer PRIMARY KEY, status text NOT NULL)",
    "CREATE TABLE redemption (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        voucher_id integer     NOT NULL,
        amount_fen bigint      NOT NULL,
        at         timestamptz NOT NULL)",
];

/// Where it runs.
#[derive(Debug, Clone)]
pub struct PgRedeemTarget {
    /// A maintenance URL of the cluster (a superuser: it creates databases and checkpoints).
    pub admin_url: String,
    /// The database to (re)create at each point.
    pub database: String,
}

/// The sweep.
#[derive(Debug, Clone)]
pub struct PgRedeemPlan {
    /// Vouchers pre-filled as `issued`.
    pub vouchers: u32,
    /// Client counts (`-c`), one point each.
    pub clients: Vec<u32>,
    /// pgbench threads (`-j`, at most the clients).
    pub threads: u32,
    /// Seconds per point (`-T`; 0: the sweep is skipped).
    pub secs: u32,
}

/// One point of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct PgRedeemPoint {
    /// Clients (connections).
    pub clients: u32,
    /// pgbench threads.
    pub threads: u32,
    /// Seconds it ran.
    pub secs: u32,
    /// Transactions committed.
    pub transactions: u64,
    /// Transactions that failed.
    pub failed: u64,
    /// Transactions per second, as pgbench measured them (truncated).
    pub tps: u64,
    /// Mean latency, µs.
    pub latency_avg_us: u64,
    /// Mean latency, ms.
    pub latency_avg_ms: Fixed,
    /// The checks of the tables after the point.
    pub invariants: Invariants,
    /// Whether this is the sweep's best point.
    pub best: bool,
}

impl Point for PgRedeemPoint {
    fn per_sec(&self) -> u64 {
        self.tps
    }

    fn set_best(&mut self, best: bool) {
        self.best = best;
    }
}

/// The figures pgbench prints at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgbenchFigures {
    /// `number of transactions actually processed`.
    pub transactions: u64,
    /// `number of failed transactions` (0 when not printed).
    pub failed: u64,
    /// `tps = …`, truncated.
    pub tps: u64,
    /// `latency average = … ms`, in µs.
    pub latency_avg_us: u64,
}

/// Reads pgbench's summary.
///
/// # Errors
/// A line is missing or not a number.
pub fn parse_output(out: &str) -> Result<PgbenchFigures> {
    let after = |prefix: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(str::trim)
    };
    let number = |prefix: &str, places: u32| -> Result<u64> {
        let text = after(prefix).with_context(|| format!("pgbench printed no {prefix:?}"))?;
        // The figure is the first word: `16138`, `0 (0.000%)`, `5434.02 (without …)`, `2.9 ms`.
        let word = text.split_whitespace().next().unwrap_or("");
        parse_scaled(word, places)
            .with_context(|| format!("pgbench's {prefix:?} is not a number: {text:?}"))
    };
    Ok(PgbenchFigures {
        transactions: number("number of transactions actually processed:", 0)?,
        failed: if after("number of failed transactions:").is_some() {
            number("number of failed transactions:", 0)?
        } else {
            0
        },
        tps: number("tps =", 0)?,
        latency_avg_us: number("latency average =", 3)?,
    })
}

/// Drops and creates the database, fills `vouchers` issued vouchers, and checkpoints.
async fn prepare(target: &PgRedeemTarget, vouchers: u32) -> Result<()> {
    let db = &target.database;
    recreate_database(&target.admin_url, db, "pgbench").await?;
    let mut con = PgConnection::connect(&with_database(&target.admin_url, db))
        .await
        .context("connecting to the pgbench database")?;
    for ddl in SCHEMA {
        sqlx::query(ddl).execute(&mut con).await?;
    }
    sqlx::query("INSERT INTO voucher SELECT g, 'issued' FROM generate_series(1, $1) AS g")
        .bind(i32::try_from(vouchers).unwrap_or(i32::MAX))
        .execute(&mut con)
        .await?;
    sqlx::query("VACUUM ANALYZE voucher")
        .execute(&mut con)
        .await?;
    // The fill's dirty pages are written now (the whole cluster's checkpoint), not in the
    // middle of the measurement.
    sqlx::query("CHECKPOINT").execute(&mut con).await?;
    con.close().await?;
    Ok(())
}

async fn verify(target: &PgRedeemTarget, f: &PgbenchFigures) -> Result<Invariants> {
    let mut con = PgConnection::connect(&with_database(&target.admin_url, &target.database))
        .await
        .context("connecting to the pgbench database")?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM redemption")
        .fetch_one(&mut con)
        .await?;
    let redeemed_without_row: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM voucher v WHERE v.status = 'redeemed'
         AND NOT EXISTS (SELECT 1 FROM redemption r WHERE r.voucher_id = v.id)",
    )
    .fetch_one(&mut con)
    .await?;
    con.close().await?;
    let mut inv = Invariants::default();
    inv.equal(
        "redemption rows = transactions pgbench counted",
        f.transactions,
        u64::try_from(rows).unwrap_or(0),
    );
    inv.equal("failed transactions", 0, f.failed);
    inv.equal(
        "vouchers redeemed without a redemption row",
        0,
        u64::try_from(redeemed_without_row).unwrap_or(u64::MAX),
    );
    Ok(inv)
}

/// Runs the sweep; the points in order (none when the plan has no seconds or clients).
///
/// # Errors
/// The cluster is unreachable, pgbench is missing or failed, or its output did not parse.
pub async fn run(target: &PgRedeemTarget, plan: &PgRedeemPlan) -> Result<Vec<PgRedeemPoint>> {
    let mut points = Vec::new();
    if plan.secs == 0 {
        return Ok(points);
    }
    let url = with_database(&target.admin_url, &target.database);
    for &clients in &plan.clients {
        let clients = clients.max(1);
        let threads = plan.threads.clamp(1, clients);
        prepare(target, plan.vouchers.max(1)).await?;
        let args: Vec<String> = [
            "--no-vacuum",
            "--protocol=prepared",
            "--file=-",
            &format!("--define=n={}", plan.vouchers.max(1)),
            &format!("--client={clients}"),
            &format!("--jobs={threads}"),
            &format!("--time={}", plan.secs),
            &url,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        let out = tool::run("pgbench", "postgresql-client", &args, Some(SCRIPT)).await?;
        let figures = parse_output(&out)?;
        let invariants = verify(target, &figures).await?;
        points.push(PgRedeemPoint {
            clients,
            threads,
            secs: plan.secs,
            transactions: figures.transactions,
            failed: figures.failed,
            tps: figures.tps,
            latency_avg_us: figures.latency_avg_us,
            latency_avg_ms: Fixed::ms_from_us(figures.latency_avg_us),
            invariants,
            best: false,
        });
    }
    Ok(points)
}

/// Drops the database (after a test; the benchmark keeps the last point's for inspection).
///
/// # Errors
/// The cluster is unreachable or refused.
pub async fn drop_database(target: &PgRedeemTarget) -> Result<()> {
    drop_database_at(&target.admin_url, &target.database).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: -
scaling factor: 1
query mode: prepared
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 16138
number of failed transactions: 0 (0.000%)
latency average = 2.944 ms
initial connection time = 55.013 ms
tps = 5434.024983 (without initial connection time)
";

    #[test]
    fn the_summary_lines_are_read() {
        assert_eq!(
            parse_output(OUTPUT).unwrap(),
            PgbenchFigures {
                transactions: 16_138,
                failed: 0,
                tps: 5_434,
                latency_avg_us: 2_944
            }
        );
    }

    #[test]
    fn a_summary_without_tps_is_an_error() {
        let cut: String = OUTPUT
            .lines()
            .filter(|l| !l.starts_with("tps"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(parse_output(&cut).is_err());
    }
}

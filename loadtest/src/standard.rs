//! The standard benchmark: the HTTP rush and its baselines, one after the other in one
//! process on one machine, against the same PostgreSQL and Redis with the same durability,
//! so the result is a set of ratios that hold on any machine; then the checkout (terminals
//! redeeming) on its own and mixed with a second rush. Writes the JSON, Markdown and PNG
//! reports and fails loudly (an error naming every broken check) when an invariant did not
//! hold, whatever the speed.
//!
//! In order: the rush over HTTP (closed loop), the rush in the open loop at 10,000
//! requests/s (its own campaign; the p99 target), the service's claim script straight at
//! Redis, the minimal claim script via `redis-benchmark` (swept), the claim as a PostgreSQL
//! transaction (swept over pool sizes, the best kept), the minimal durable redemption via
//! `pgbench` (swept), the checkout, and the mixed run. Every baseline is the best its sweep
//! found: a ratio against an alternative run badly proves nothing.

use crate::invariants::Invariants;
use crate::report::StandardReport;
use crate::scenario::baseline_pg::{self, PgTarget};
use crate::scenario::baseline_redis::{self, RedisTarget};
use crate::scenario::checkout::{self, CheckoutReport, CheckoutTarget, CheckoutWorkload};
use crate::scenario::mixed;
use crate::scenario::pg_redeem::{self, PgRedeemPlan, PgRedeemPoint, PgRedeemTarget};
use crate::scenario::redis_minimal::{
    self, RedisMinimalPlan, RedisMinimalPoint, RedisMinimalTarget,
};
use crate::scenario::rush::{self, RushTarget};
use crate::scenario::{Scenario, ScenarioReport, Sweep, Workload};
use crate::stats::Summary;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// The campaign id the raw-script baseline uses under its own key prefix.
pub const BASELINE_CAMPAIGN: i64 = 1_000_000_001;

/// Everything a standard run needs.
pub struct Standard {
    /// Report name (file stem).
    pub name: String,
    /// Where the reports go.
    pub reports_dir: PathBuf,
    /// The service.
    pub rush_target: RushTarget,
    /// The HTTP rush.
    pub rush: Workload,
    /// The HTTP rush in the open loop, on a campaign of its own (`None`: not run).
    pub rush_open_loop: Option<Workload>,
    /// Where the raw-script baseline runs.
    pub redis_target: RedisTarget,
    /// The raw-script baseline.
    pub redis: Workload,
    /// Where the minimal script runs.
    pub redis_minimal_target: RedisMinimalTarget,
    /// The minimal script's sweep (no calls: not run).
    pub redis_minimal: RedisMinimalPlan,
    /// Where the PostgreSQL baseline runs (its `pool` caps every point's).
    pub pg_target: PgTarget,
    /// The PostgreSQL baseline (its pace is replaced at each point of the sweep).
    pub pg: Workload,
    /// Claims in flight at each point of the PostgreSQL sweep (empty: one run at `pg`'s
    /// pace).
    pub pg_sweep: Vec<usize>,
    /// Where pgbench runs.
    pub pg_redeem_target: PgRedeemTarget,
    /// pgbench's sweep (no seconds: not run).
    pub pg_redeem: PgRedeemPlan,
    /// The checkout and mixed runs (`None`: claims only).
    pub checkout: Option<CheckoutPlan>,
}

/// The checkout part of the standard benchmark.
pub struct CheckoutPlan {
    /// Both services.
    pub target: CheckoutTarget,
    /// Terminals redeeming on their own.
    pub alone: CheckoutWorkload,
    /// The rush of the mixed run.
    pub mixed_rush: Workload,
    /// The checkout of the mixed run.
    pub mixed_checkout: CheckoutWorkload,
}

/// Prints a checkout's headline as it finishes.
pub fn announce_checkout(r: &CheckoutReport) {
    headline(
        r.scenario,
        r.redemptions_per_sec(),
        "redemptions/s",
        &r.summary,
        &r.invariants,
    );
}

/// Prints one scenario's headline as it finishes.
pub fn announce(r: &ScenarioReport) {
    headline(
        r.scenario,
        r.claims_per_sec(),
        "claims/s",
        &r.summary,
        &r.invariants,
    );
}

fn headline(
    scenario: Scenario,
    per_sec: u64,
    unit: &str,
    summary: &Summary,
    invariants: &Invariants,
) {
    let l = summary.latency_us;
    eprintln!(
        "{:<24} {:>7} {unit} {:>7} req/s  p50 {}  p99 {}  max {}  {:?}  invariants {}",
        scenario.name(),
        per_sec,
        summary.requests_per_sec,
        crate::report::ms(l.p50),
        crate::report::ms(l.p99),
        crate::report::ms(l.max),
        summary.outcomes,
        if invariants.ok() { "hold" } else { "BROKEN" },
    );
    for f in invariants.failures() {
        eprintln!("    INVARIANT BROKEN: {f}");
    }
}

/// Prints a point of the `redis-benchmark` sweep as it finishes.
pub fn announce_minimal(p: &RedisMinimalPoint) {
    eprintln!(
        "{:<24} {:>7} claims/s {:>7} calls/s  p50 {}  p99 {}  -c {} -P {}  invariants {}",
        "minimal script (r-b)",
        p.claims_per_sec,
        p.calls_per_sec,
        crate::report::ms(p.p50_us),
        crate::report::ms(p.p99_us),
        p.clients,
        p.pipeline,
        if p.invariants.ok() { "hold" } else { "BROKEN" },
    );
}

/// Prints a point of the `pgbench` sweep as it finishes.
pub fn announce_redeem(p: &PgRedeemPoint) {
    eprintln!(
        "{:<24} {:>7} transactions/s  mean {}  -c {} -j {}  failed {}  invariants {}",
        "minimal redemption (pgb)",
        p.tps,
        crate::report::ms(p.latency_avg_us),
        p.clients,
        p.threads,
        p.failed,
        if p.invariants.ok() { "hold" } else { "BROKEN" },
    );
}

/// Fails with every broken check of the checkout runs.
///
/// # Errors
/// An invariant is broken.
pub fn require_checkout_invariants(reports: &[&CheckoutReport]) -> Result<()> {
    require_all(
        reports
            .iter()
            .map(|r| (r.scenario.name().to_owned(), &r.invariants)),
    )
}

/// Fails with every broken check when `r`'s invariants did not hold.
///
/// # Errors
/// An invariant is broken.
pub fn require_invariants(reports: &[&ScenarioReport]) -> Result<()> {
    require_all(
        reports
            .iter()
            .map(|r| (r.scenario.name().to_owned(), &r.invariants)),
    )
}

/// Fails with every broken check of a standard report: every run, every baseline point.
///
/// # Errors
/// An invariant is broken.
pub fn require_report_invariants(report: &StandardReport) -> Result<()> {
    require_all(report.checks().into_iter())
}

fn require_all<'a>(runs: impl Iterator<Item = (String, &'a Invariants)>) -> Result<()> {
    let broken: Vec<String> = runs
        .flat_map(|(name, inv)| {
            inv.failures()
                .into_iter()
                .map(move |f| format!("{name}: {f}"))
        })
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        bail!(
            "INVARIANTS BROKEN — this run proves nothing, whatever its speed:\n  {}",
            broken.join("\n  ")
        )
    }
}

/// Runs every scenario and baseline and writes the reports (also when an invariant broke,
/// so the evidence is kept), then fails if one did.
///
/// # Errors
/// A scenario or baseline could not run, a report could not be written, or an invariant
/// broke.
pub async fn run(s: &Standard) -> Result<StandardReport> {
    let started_at = chrono::Utc::now().to_rfc3339();
    eprintln!("== rush over HTTP ==");
    let http = rush::run(&s.rush_target, &s.rush).await?;
    announce(&http);
    let open = match &s.rush_open_loop {
        Some(w) => {
            eprintln!(
                "== rush over HTTP, open loop ({} attempts/s, its own campaign) ==",
                match w.pace {
                    crate::driver::Pace::Open { rate_per_sec, .. } => rate_per_sec,
                    crate::driver::Pace::Closed { .. } => 0,
                }
            );
            let mut r = rush::run(&s.rush_target, w).await?;
            r.scenario = Scenario::RushOpenLoop;
            announce(&r);
            Some(r)
        }
        None => None,
    };
    eprintln!("== baseline: the claim script straight at Redis ==");
    let redis = baseline_redis::run(&s.redis_target, &s.redis, BASELINE_CAMPAIGN).await?;
    announce(&redis);
    eprintln!("== baseline: a minimal claim script via redis-benchmark ==");
    let minimal = redis_minimal::run(&s.redis_minimal_target, &s.redis_minimal).await?;
    minimal.iter().for_each(announce_minimal);
    eprintln!(
        "== baseline: one PostgreSQL transaction per claim, {:?} in flight ==",
        s.pg_sweep
    );
    let pg_sweep = baseline_pg::sweep(&s.pg_target, &s.pg, &s.pg_sweep, announce).await?;
    let pg = match &pg_sweep {
        Some(sweep) => sweep.best.clone(),
        None => {
            let r = baseline_pg::run(&s.pg_target, &s.pg).await?;
            announce(&r);
            r
        }
    };
    eprintln!("== baseline: a minimal durable redemption via pgbench ==");
    let redeem = pg_redeem::run(&s.pg_redeem_target, &s.pg_redeem).await?;
    redeem.iter().for_each(announce_redeem);
    let (alone, mixed) = match &s.checkout {
        Some(plan) => {
            let (a, m) = run_checkout(plan).await?;
            (Some(a), Some(m))
        }
        None => (None, None),
    };
    let mut report = StandardReport::new(&s.name, started_at, http, redis, pg)
        .with_open_loop(open)
        .with_tool_baselines(Sweep::of(minimal), Sweep::of(redeem))
        .with_checkout(alone, mixed);
    if let Some(sweep) = pg_sweep {
        report = report.with_pg_sweep(sweep);
    }
    for path in report.write(&s.reports_dir)? {
        eprintln!("wrote {}", path.display());
    }
    require_report_invariants(&report)?;
    Ok(report)
}

/// The checkout on its own, then mixed with a rush; the vouchers of both are claimed once,
/// up front.
///
/// # Errors
/// A run could not be set up or driven.
pub async fn run_checkout(plan: &CheckoutPlan) -> Result<(CheckoutReport, mixed::MixedReport)> {
    let (a, m) = (&plan.alone, &plan.mixed_checkout);
    eprintln!(
        "== checkout: claiming {} vouchers and {} entitlements, registering {} terminals ==",
        a.vouchers + m.vouchers,
        a.entitlements + m.entitlements,
        a.terminals
    );
    let mut setup = checkout::prepare(
        &plan.target,
        a.vouchers + m.vouchers,
        a.entitlements + m.entitlements,
        a,
    )
    .await?;
    eprintln!("== checkout: terminals redeem ==");
    let alone =
        checkout::run_prepared(&plan.target, &mut setup, a, "ck", Scenario::Checkout).await?;
    announce_checkout(&alone);
    eprintln!("== mixed: a rush while terminals redeem ==");
    let mixed = mixed::run_prepared(&plan.target, &mut setup, &plan.mixed_rush, m).await?;
    announce(&mixed.rush);
    announce_checkout(&mixed.checkout);
    Ok((alone, mixed))
}

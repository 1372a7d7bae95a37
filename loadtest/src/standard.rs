//! The standard benchmark: the HTTP rush and both baselines, one after the other in one
//! process on one machine, at the same concurrency, so the result is a set of ratios that
//! hold on any machine; then the checkout (terminals redeeming) on its own and mixed with a
//! second rush. Writes the JSON, Markdown and PNG reports and fails loudly (an error
//! naming every broken check) when an invariant did not hold, whatever the speed.

use crate::invariants::Invariants;
use crate::report::StandardReport;
use crate::scenario::baseline_pg::{self, PgTarget};
use crate::scenario::baseline_redis::{self, RedisTarget};
use crate::scenario::checkout::{self, CheckoutReport, CheckoutTarget, CheckoutWorkload};
use crate::scenario::mixed;
use crate::scenario::rush::{self, RushTarget};
use crate::scenario::{Scenario, ScenarioReport, Workload};
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
    /// Where the raw-script baseline runs.
    pub redis_target: RedisTarget,
    /// The raw-script baseline.
    pub redis: Workload,
    /// Where the PostgreSQL baseline runs.
    pub pg_target: PgTarget,
    /// The PostgreSQL baseline.
    pub pg: Workload,
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

/// Fails with every broken check of the checkout runs.
///
/// # Errors
/// An invariant is broken.
pub fn require_checkout_invariants(reports: &[&CheckoutReport]) -> Result<()> {
    require_all(reports.iter().map(|r| (r.scenario, &r.invariants)))
}

/// Fails with every broken check when `r`'s invariants did not hold.
///
/// # Errors
/// An invariant is broken.
pub fn require_invariants(reports: &[&ScenarioReport]) -> Result<()> {
    require_all(reports.iter().map(|r| (r.scenario, &r.invariants)))
}

fn require_all<'a>(runs: impl Iterator<Item = (Scenario, &'a Invariants)>) -> Result<()> {
    let broken: Vec<String> = runs
        .flat_map(|(scenario, inv)| {
            inv.failures()
                .into_iter()
                .map(move |f| format!("{}: {f}", scenario.name()))
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

/// Runs the three scenarios and writes the reports (also when an invariant broke, so the
/// evidence is kept), then fails if one did.
///
/// # Errors
/// A scenario could not run, a report could not be written, or an invariant broke.
pub async fn run(s: &Standard) -> Result<StandardReport> {
    let started_at = chrono::Utc::now().to_rfc3339();
    eprintln!("== rush over HTTP ==");
    let http = rush::run(&s.rush_target, &s.rush).await?;
    announce(&http);
    eprintln!("== baseline: the claim script straight at Redis ==");
    let redis = baseline_redis::run(&s.redis_target, &s.redis, BASELINE_CAMPAIGN).await?;
    announce(&redis);
    eprintln!("== baseline: one PostgreSQL transaction per claim ==");
    let pg = baseline_pg::run(&s.pg_target, &s.pg).await?;
    announce(&pg);
    let (alone, mixed) = match &s.checkout {
        Some(plan) => {
            let (a, m) = run_checkout(plan).await?;
            (Some(a), Some(m))
        }
        None => (None, None),
    };
    let report =
        StandardReport::new(&s.name, started_at, http, redis, pg).with_checkout(alone, mixed);
    for path in report.write(&s.reports_dir)? {
        eprintln!("wrote {}", path.display());
    }
    let (scenarios, checkouts) = (report.scenarios(), report.checkouts());
    let claims = require_invariants(&scenarios);
    let redemptions = require_checkout_invariants(&checkouts);
    claims.and(redemptions)?;
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

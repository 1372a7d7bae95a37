//! The standard benchmark: the HTTP rush and both baselines, one after the other in one
//! process on one machine, at the same concurrency, so the result is a set of ratios that
//! hold on any machine. Writes the JSON, Markdown and PNG reports and fails loudly (an error
//! naming every broken check) when an invariant did not hold, whatever the speed.

use crate::report::StandardReport;
use crate::scenario::baseline_pg::{self, PgTarget};
use crate::scenario::baseline_redis::{self, RedisTarget};
use crate::scenario::rush::{self, RushTarget};
use crate::scenario::{ScenarioReport, Workload};
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
}

/// Prints one scenario's headline as it finishes.
pub fn announce(r: &ScenarioReport) {
    let l = r.summary.latency_us;
    eprintln!(
        "{:<24} {:>7} claims/s {:>7} req/s  p50 {}  p99 {}  max {}  {:?}  invariants {}",
        r.scenario.name(),
        r.claims_per_sec(),
        r.summary.requests_per_sec,
        crate::report::ms(l.p50),
        crate::report::ms(l.p99),
        crate::report::ms(l.max),
        r.summary.outcomes,
        if r.invariants.ok() { "hold" } else { "BROKEN" },
    );
    for f in r.invariants.failures() {
        eprintln!("    INVARIANT BROKEN: {f}");
    }
}

/// Fails with every broken check when `r`'s invariants did not hold.
///
/// # Errors
/// An invariant is broken.
pub fn require_invariants(reports: &[&ScenarioReport]) -> Result<()> {
    let broken: Vec<String> = reports
        .iter()
        .flat_map(|r| r.invariants.failures().into_iter().map(move |f| format!("{}: {f}", r.scenario.name())))
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        bail!("INVARIANTS BROKEN — this run proves nothing, whatever its speed:\n  {}", broken.join("\n  "))
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
    let report = StandardReport::new(&s.name, started_at, http, redis, pg);
    for path in report.write(&s.reports_dir)? {
        eprintln!("wrote {}", path.display());
    }
    require_invariants(&report.scenarios())?;
    Ok(report)
}

//! The standard benchmark's report: one JSON document (everything measured), a Markdown
//! table for people (the README shows the latest), and the chart beside them.

use crate::chart::Series;
use crate::invariants::Invariants;
use crate::scenario::checkout::{CheckoutReport, CheckoutWorkload};
use crate::scenario::mixed::MixedReport;
use crate::scenario::{Scenario, ScenarioReport, Workload};
use crate::stats::Summary;
use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The targets.
pub mod targets {
    /// HTTP claims/s ÷ PostgreSQL-baseline claims/s, at least.
    pub const HTTP_OVER_PG: u64 = 15;
    /// HTTP claims/s ÷ raw-script claims/s, at least, in per mille (0.25).
    pub const HTTP_OVER_REDIS_PERMILLE: u64 = 250;
    /// p99 of HTTP claims, at most, µs.
    pub const P99_US: u64 = 25_000;
    /// Redis bytes per live voucher, at most.
    pub const BYTES_PER_VOUCHER: u64 = 200;
    /// The issuance service's resident memory under the rush, at most, KiB (150 MB).
    pub const RSS_KIB: u64 = 150 * 1000 * 1000 / 1024;
    /// Durable redemptions per second at the checkout's terminals, at least.
    pub const REDEMPTIONS_PER_SEC: u64 = 3_000;
    /// p99 of redemptions, at most, µs.
    pub const CHECKOUT_P99_US: u64 = 50_000;
}

/// A ratio in per mille (`num / den × 1000`), for display and comparison without floats.
pub fn permille(num: u64, den: u64) -> u64 {
    u64::try_from(u128::from(num) * 1000 / u128::from(den.max(1))).unwrap_or(u64::MAX)
}

/// Whether each target is met (`None`: not measured in this run).
#[derive(Debug, Clone, Serialize)]
pub struct Verdicts {
    /// HTTP ÷ PostgreSQL ≥ 15.
    pub http_over_pg: bool,
    /// HTTP ÷ raw Redis ≥ 0.25.
    pub http_over_redis: bool,
    /// p99 ≤ 25 ms.
    pub p99: bool,
    /// ≤ 200 bytes per live voucher (raw-script measurement).
    pub bytes_per_voucher: bool,
    /// RSS ≤ 150 MB.
    pub rss: Option<bool>,
    /// Durable redemptions/s ≥ 3,000 (checkout run on its own).
    pub redemptions_per_sec: Option<bool>,
    /// Redemption p99 ≤ 50 ms (checkout run on its own).
    pub checkout_p99: Option<bool>,
}

/// The standard benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct StandardReport {
    /// The report's name (file stem).
    pub name: String,
    /// When it ran (RFC 3339).
    pub started_at: String,
    /// Cores of the machine.
    pub cores: usize,
    /// The HTTP rush.
    pub rush: ScenarioReport,
    /// The raw Redis script.
    pub baseline_redis: ScenarioReport,
    /// The PostgreSQL transaction.
    pub baseline_pg: ScenarioReport,
    /// Terminals redeeming, on their own.
    pub checkout: Option<CheckoutReport>,
    /// A rush and the checkout at once.
    pub mixed: Option<MixedReport>,
    /// HTTP claims/s ÷ PostgreSQL claims/s, per mille.
    pub http_over_pg_permille: u64,
    /// HTTP claims/s ÷ raw-script claims/s, per mille.
    pub http_over_redis_permille: u64,
    /// Target verdicts.
    pub verdicts: Verdicts,
    /// Whether every invariant of every scenario held.
    pub invariants_ok: bool,
}

impl StandardReport {
    /// Assembles the report and its ratios from the three runs.
    pub fn new(
        name: &str,
        started_at: String,
        rush: ScenarioReport,
        redis: ScenarioReport,
        pg: ScenarioReport,
    ) -> StandardReport {
        let http = rush.claims_per_sec();
        let http_over_pg_permille = permille(http, pg.claims_per_sec());
        let http_over_redis_permille = permille(http, redis.claims_per_sec());
        let verdicts = Verdicts {
            http_over_pg: http_over_pg_permille >= targets::HTTP_OVER_PG * 1000,
            http_over_redis: http_over_redis_permille >= targets::HTTP_OVER_REDIS_PERMILLE,
            p99: rush.summary.latency_us.p99 <= targets::P99_US,
            bytes_per_voucher: redis
                .redis_memory
                .is_some_and(|m| m.bytes_per_voucher <= targets::BYTES_PER_VOUCHER),
            rss: rush
                .rss
                .map(|r| r.peak_rss_kib.max(r.hwm_kib) <= targets::RSS_KIB),
            redemptions_per_sec: None,
            checkout_p99: None,
        };
        let invariants_ok = rush.invariants.ok() && redis.invariants.ok() && pg.invariants.ok();
        StandardReport {
            name: name.to_owned(),
            started_at,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            rush,
            baseline_redis: redis,
            baseline_pg: pg,
            checkout: None,
            mixed: None,
            http_over_pg_permille,
            http_over_redis_permille,
            verdicts,
            invariants_ok,
        }
    }

    /// Adds the checkout and the mixed run, their verdicts and invariants.
    #[must_use]
    pub fn with_checkout(
        mut self,
        checkout: Option<CheckoutReport>,
        mixed: Option<MixedReport>,
    ) -> StandardReport {
        if let Some(c) = &checkout {
            self.verdicts.redemptions_per_sec =
                Some(c.redemptions_per_sec() >= targets::REDEMPTIONS_PER_SEC);
            self.verdicts.checkout_p99 = Some(c.summary.latency_us.p99 <= targets::CHECKOUT_P99_US);
        }
        self.checkout = checkout;
        self.mixed = mixed;
        self.invariants_ok = self.scenarios().iter().all(|s| s.invariants.ok())
            && self.checkouts().iter().all(|c| c.invariants.ok());
        self
    }

    /// The claim scenarios in report order.
    pub fn scenarios(&self) -> Vec<&ScenarioReport> {
        let mut all = vec![&self.rush, &self.baseline_redis, &self.baseline_pg];
        all.extend(self.mixed.as_ref().map(|m| &m.rush));
        all
    }

    /// The checkout runs in report order.
    pub fn checkouts(&self) -> Vec<&CheckoutReport> {
        let mut all: Vec<&CheckoutReport> = self.checkout.iter().collect();
        all.extend(self.mixed.as_ref().map(|m| &m.checkout));
        all
    }

    /// Every run as a line of the chart.
    pub fn series(&self) -> Vec<Series<'_>> {
        let claims = self.scenarios().into_iter().map(|s| Series {
            name: s.scenario.name(),
            headline: format!("{} claims/s", s.claims_per_sec()),
            summary: &s.summary,
        });
        let checkouts = self.checkouts().into_iter().map(|c| Series {
            name: c.scenario.name(),
            headline: format!("{} redemptions/s", c.redemptions_per_sec()),
            summary: &c.summary,
        });
        claims.chain(checkouts).collect()
    }

    /// The Markdown rendering.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Benchmark `{}`\n", self.name);
        let _ = writeln!(
            md,
            "{} on {} cores, load generator on the same machine.\n",
            self.started_at, self.cores
        );
        md.push_str("| scenario | workload | claims/s | requests/s | p50 | p90 | p99 | p99.9 | max | outcomes | invariants |\n");
        md.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|\n");
        for s in self.scenarios() {
            let work = workload(&s.workload, s.completed);
            table_row(
                &mut md,
                s.scenario,
                &work,
                s.claims_per_sec(),
                &s.summary,
                &s.invariants,
            );
        }
        if !self.checkouts().is_empty() {
            md.push_str("\n| checkout | workload | redemptions/s | requests/s | p50 | p90 | p99 | p99.9 | max | outcomes | invariants |\n");
            md.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|\n");
            for c in self.checkouts() {
                let work = checkout_workload(&c.workload, c.completed);
                table_row(
                    &mut md,
                    c.scenario,
                    &work,
                    c.redemptions_per_sec(),
                    &c.summary,
                    &c.invariants,
                );
            }
        }
        md.push_str("\n| target | measured | goal | met |\n|---|--:|--:|---|\n");
        let v = &self.verdicts;
        let _ = writeln!(
            md,
            "| HTTP ÷ PostgreSQL claims/s | {} | ≥ 15× | {} |",
            times(self.http_over_pg_permille),
            yes(v.http_over_pg)
        );
        let _ = writeln!(
            md,
            "| HTTP ÷ raw Redis claims/s | {} | ≥ 0.25× | {} |",
            times(self.http_over_redis_permille),
            yes(v.http_over_redis)
        );
        let _ = writeln!(
            md,
            "| HTTP p99 at {} connections | {} | ≤ 25 ms | {} |",
            self.rush.workload.pace.concurrency(),
            ms(self.rush.summary.latency_us.p99),
            yes(v.p99)
        );
        if let Some(m) = self.baseline_redis.redis_memory {
            let _ = writeln!(
                md,
                "| Redis bytes per live voucher (raw script, {} vouchers) | {} | ≤ 200 | {} |",
                m.vouchers,
                m.bytes_per_voucher,
                yes(v.bytes_per_voucher)
            );
        }
        if let Some(m) = self.rush.redis_memory {
            let _ = writeln!(
                md,
                "| Redis bytes per live voucher (HTTP rush, {} vouchers) | {} | ≤ 200 | {} |",
                m.vouchers,
                m.bytes_per_voucher,
                yes(m.bytes_per_voucher <= targets::BYTES_PER_VOUCHER)
            );
        }
        match self.rush.rss {
            Some(r) => {
                let _ = writeln!(
                    md,
                    "| issuance RSS under the rush (peak VmRSS / VmHWM) | {} / {} MB | ≤ 150 MB | {} |",
                    r.peak_rss_kib * 1024 / 1_000_000,
                    r.hwm_kib * 1024 / 1_000_000,
                    yes(v.rss.unwrap_or(false))
                );
            }
            None => md.push_str(
                "| issuance RSS under the rush | not measured (no pid) | ≤ 150 MB | – |\n",
            ),
        }
        if let Some(c) = &self.checkout {
            let terminals = c.workload.pace.concurrency();
            let _ = writeln!(
                md,
                "| durable redemptions/s at {terminals} terminals | {} | ≥ 3,000 | {} |",
                c.redemptions_per_sec(),
                yes(v.redemptions_per_sec.unwrap_or(false))
            );
            let _ = writeln!(
                md,
                "| redemption p99 at {terminals} terminals | {} | ≤ 50 ms | {} |",
                ms(c.summary.latency_us.p99),
                yes(v.checkout_p99.unwrap_or(false))
            );
            if let Some(r) = c.rss {
                let _ = writeln!(
                    md,
                    "| redemption service RSS under the checkout (peak VmRSS) | {} MB | – | – |",
                    r.peak_rss_kib * 1024 / 1_000_000
                );
            }
        }
        let _ = writeln!(
            md,
            "\nInvariants: {}.",
            if self.invariants_ok {
                "all held"
            } else {
                "**BROKEN** (see the table)"
            }
        );
        let _ = writeln!(md, "\n![throughput and p99 per second]({}.png)", self.name);
        md
    }

    /// Writes `<dir>/<name>.json`, `.md` and `.png`; returns their paths.
    ///
    /// # Errors
    /// A file could not be written or the chart drawn.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = dir.join(format!("{}.json", self.name));
        let md = dir.join(format!("{}.md", self.name));
        let png = dir.join(format!("{}.png", self.name));
        std::fs::write(&json, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", json.display()))?;
        std::fs::write(&md, self.markdown())
            .with_context(|| format!("writing {}", md.display()))?;
        crate::chart::draw(&png, &self.series())?;
        Ok(vec![json, md, png])
    }
}

fn workload(w: &Workload, completed: bool) -> String {
    let pace = match w.pace {
        crate::driver::Pace::Closed { concurrency } => format!("{concurrency} conns"),
        crate::driver::Pace::Open {
            rate_per_sec,
            max_in_flight,
        } => format!("{rate_per_sec}/s open, ≤{max_in_flight}"),
    };
    let cut = if completed {
        String::new()
    } else {
        format!(", cut at {} s", w.max_secs)
    };
    format!(
        "stock {}, {}×{} attempts, limit {}, {pace}{cut}",
        w.stock, w.residents, w.devices, w.per_person_limit
    )
}

fn checkout_workload(w: &CheckoutWorkload, completed: bool) -> String {
    let pace = match w.pace {
        crate::driver::Pace::Closed { concurrency } => {
            format!("{concurrency} terminals closed loop")
        }
        crate::driver::Pace::Open {
            rate_per_sec,
            max_in_flight,
        } => format!("{rate_per_sec}/s open, ≤{max_in_flight}"),
    };
    let cut = if completed {
        String::new()
    } else {
        format!(", cut at {} s", w.max_secs)
    };
    format!(
        "{} threshold vouchers (+{} duplicate presentations), {} entitlements × 2 purchases, {} merchants, {}{cut}",
        w.vouchers,
        w.duplicates(),
        w.entitlements,
        w.merchants,
        pace
    )
}

/// µs as milliseconds with one decimal, e.g. `12.3 ms`.
pub fn ms(us: u64) -> String {
    format!("{}.{} ms", us / 1000, (us % 1000) / 100)
}

fn times(permille: u64) -> String {
    format!("{}.{:02}×", permille / 1000, (permille % 1000) / 10)
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

/// One row of a results table: scenario, workload, the headline rate, requests/s, latency
/// percentiles, outcomes and the invariants' verdict.
fn table_row(
    md: &mut String,
    scenario: Scenario,
    work: &str,
    per_sec: u64,
    summary: &Summary,
    invariants: &Invariants,
) {
    let l = summary.latency_us;
    let outcomes: Vec<String> = summary
        .outcomes
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let verdict = if invariants.ok() {
        "hold".to_owned()
    } else {
        format!("**BROKEN**: {}", invariants.failures().join("; "))
    };
    let _ = writeln!(
        md,
        "| {} | {} | **{}** | {} | {} | {} | {} | {} | {} | {} | {} |",
        scenario.name(),
        work,
        per_sec,
        summary.requests_per_sec,
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max),
        outcomes.join(", "),
        verdict,
    );
}

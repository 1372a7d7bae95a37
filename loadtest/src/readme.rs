//! The README's benchmark tables, rendered from a report's JSON so that the README's numbers
//! are exactly the report's (`bench readme`).
//!
//! - [`Figures`] reads only the report's stable keys (see [`crate::report`]); a report from
//!   before they existed (no `ratios`) is refused, not half-rendered.
//! - [`baselines`], [`ratios`], [`targets`]: the tables, shared with the report's own
//!   Markdown; [`block`]: the README's section (the latest runs, then those three).
//! - [`splice`] replaces the text between [`BEGIN`] and [`END`] in the README; [`update`]
//!   writes it (and `loadtest/reports/LATEST`, the report the README shows) or, with
//!   `check`, only says whether the README already is what the report renders — the test
//!   command runs that check against the committed report.

use crate::driver::Pace;
use crate::fixed::Fixed;
use crate::report::{ms, targets};
use crate::stats::LatencySummary;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The line before the generated section.
pub const BEGIN: &str = "<!-- bench:begin -->";
/// The line after it.
pub const END: &str = "<!-- bench:end -->";
/// The file beside the reports naming the one the README shows.
pub const LATEST: &str = "LATEST";
/// Where the reports live, relative to the repository (the README's links).
pub const REPORTS_DIR: &str = "loadtest/reports";

/// The report's figures the tables show.
#[derive(Debug, Clone, Deserialize)]
pub struct Figures {
    /// The report's name.
    pub name: String,
    /// When it ran.
    pub started_at: String,
    /// Cores of the machine.
    pub cores: u64,
    /// The closed-loop rush.
    pub rush: Run,
    /// The open-loop rush.
    #[serde(default)]
    pub rush_open_loop: Option<Run>,
    /// The service's claim script straight at Redis.
    pub baseline_redis: Run,
    /// The minimal script via redis-benchmark.
    #[serde(default)]
    pub baseline_redis_minimal: Option<SweepOf<MinimalPoint>>,
    /// The PostgreSQL claim at its best pool.
    pub baseline_pg: Run,
    /// Every pool.
    #[serde(default)]
    pub baseline_pg_sweep: Vec<PgPoint>,
    /// The minimal redemption via pgbench.
    #[serde(default)]
    pub baseline_pg_redeem: Option<SweepOf<RedeemPoint>>,
    /// The checkout on its own.
    #[serde(default)]
    pub checkout: Option<Checkout>,
    /// The rush and the checkout at once.
    #[serde(default)]
    pub mixed: Option<Mixed>,
    /// The ratios' per-mille integers.
    pub ratios: Ratios,
    /// The verdicts.
    pub verdicts: Verdicts,
    /// Whether every invariant held.
    pub invariants_ok: bool,
}

/// A claim run.
#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    /// Its workload.
    pub workload: RunWorkload,
    /// Its measurements.
    pub summary: RunSummary,
    /// Redis memory, where measured.
    #[serde(default)]
    pub redis_memory: Option<Memory>,
    /// The service's memory, where measured.
    #[serde(default)]
    pub rss: Option<Rss>,
}

/// The part of a workload the tables name.
#[derive(Debug, Clone, Deserialize)]
pub struct RunWorkload {
    /// Closed or open loop.
    pub pace: Pace,
}

/// The part of a summary the tables show.
#[derive(Debug, Clone, Deserialize)]
pub struct RunSummary {
    /// Requests per second.
    pub requests_per_sec: u64,
    /// Successes per second.
    pub successes_per_sec: u64,
    /// Latency percentiles, µs.
    pub latency_us: LatencySummary,
}

/// Redis bytes per live voucher.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Memory {
    /// Live vouchers measured.
    pub vouchers: u64,
    /// Bytes per voucher.
    pub bytes_per_voucher: u64,
}

/// A process's memory.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Rss {
    /// Peak `VmRSS`, KiB.
    pub peak_rss_kib: u64,
    /// `VmHWM`, KiB.
    pub hwm_kib: u64,
}

/// The checkout on its own.
#[derive(Debug, Clone, Deserialize)]
pub struct Checkout {
    /// Its workload.
    pub workload: CheckoutWorkload,
    /// Its measurements.
    pub summary: RunSummary,
    /// Durable redemptions per second (a stable key).
    pub redemptions_per_sec: u64,
    /// The redemption service's memory.
    #[serde(default)]
    pub rss: Option<Rss>,
}

/// The part of a checkout workload the tables name.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutWorkload {
    /// Terminals.
    pub terminals: u64,
    /// Closed or open loop.
    pub pace: Pace,
}

/// The mixed run.
#[derive(Debug, Clone, Deserialize)]
pub struct Mixed {
    /// Its claims.
    pub rush: Run,
    /// Its redemptions.
    pub checkout: MixedCheckout,
}

/// The redemptions of the mixed run.
#[derive(Debug, Clone, Deserialize)]
pub struct MixedCheckout {
    /// Its workload.
    pub workload: CheckoutWorkload,
    /// Its measurements.
    pub summary: RunSummary,
}

/// A baseline's sweep.
#[derive(Debug, Clone, Deserialize)]
pub struct SweepOf<P> {
    /// The best point.
    pub best: P,
    /// Every point.
    pub sweep: Vec<P>,
}

/// A point of the PostgreSQL pool sweep.
#[derive(Debug, Clone, Deserialize)]
pub struct PgPoint {
    /// Claims in flight.
    pub connections: u64,
    /// Connections open.
    pub pool: u64,
    /// Claims per second.
    pub claims_per_sec: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// The best point.
    pub best: bool,
}

/// A point of the redis-benchmark sweep.
#[derive(Debug, Clone, Deserialize)]
pub struct MinimalPoint {
    /// `-c`.
    pub clients: u64,
    /// `-P`.
    pub pipeline: u64,
    /// Claims per second.
    pub claims_per_sec: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// The best point.
    pub best: bool,
}

/// A point of the pgbench sweep.
#[derive(Debug, Clone, Deserialize)]
pub struct RedeemPoint {
    /// `-c`.
    pub clients: u64,
    /// `-j`.
    pub threads: u64,
    /// `-T`.
    pub secs: u64,
    /// Transactions per second.
    pub tps: u64,
    /// Mean latency, µs.
    pub latency_avg_us: u64,
    /// The best point.
    pub best: bool,
}

/// The ratios, per mille (`None`: that baseline did not run).
#[derive(Debug, Clone, Deserialize)]
pub struct Ratios {
    /// HTTP ÷ PostgreSQL at its best pool.
    pub claims_vs_pg_best_permille: Option<u64>,
    /// HTTP ÷ the service's script at Redis.
    pub claims_vs_redis_script_permille: Option<u64>,
    /// HTTP ÷ the minimal script via redis-benchmark.
    pub claims_vs_redis_minimal_permille: Option<u64>,
    /// Checkout ÷ pgbench.
    pub redemptions_vs_pg_redeem_permille: Option<u64>,
}

/// The verdicts.
#[derive(Debug, Clone, Deserialize)]
pub struct Verdicts {
    /// HTTP ahead of PostgreSQL's best pool.
    pub http_over_pg: bool,
    /// HTTP ÷ script ≥ 0.35.
    pub http_over_redis: bool,
    /// Claim p99 ≤ 25 ms.
    pub p99: bool,
    /// Bytes per voucher ≤ 100.
    pub bytes_per_voucher: bool,
    /// RSS ≤ 150 MB.
    pub rss: Option<bool>,
    /// Redemptions ≥ 3,000/s.
    pub redemptions_per_sec: Option<bool>,
    /// Redemption p99 ≤ 50 ms.
    pub checkout_p99: Option<bool>,
}

impl Figures {
    /// Reads the figures from a report's JSON.
    ///
    /// # Errors
    /// A stable key is missing (a report from before issue 14) or has the wrong type.
    pub fn from_json(json: serde_json::Value) -> Result<Figures> {
        serde_json::from_value(json).context(
            "the report lacks the stable keys (`ratios`, …): it predates them; render a newer report",
        )
    }

    /// Reads the report at `path`.
    ///
    /// # Errors
    /// The file is unreadable, not JSON, or lacks the stable keys.
    pub fn load(path: &Path) -> Result<Figures> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        Figures::from_json(json).with_context(|| format!("rendering {}", path.display()))
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio as the JSON prints it: `0.357×`.
fn times(permille: Option<u64>) -> String {
    permille.map_or_else(
        || "not measured".to_owned(),
        |p| format!("{}×", Fixed::from_permille(p).text()),
    )
}

/// A goal's ratio without trailing zeros: `350` → `0.35`.
fn goal(permille: u64) -> String {
    let text = Fixed::from_permille(permille).text();
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

fn pace(p: &Pace, unit: &str) -> String {
    match *p {
        Pace::Closed { concurrency } => format!("{concurrency} {unit}, closed loop"),
        Pace::Open {
            rate_per_sec,
            max_in_flight,
        } => format!(
            "{} requests/s open loop over ≤ {max_in_flight} {unit}",
            thousands(rate_per_sec)
        ),
    }
}

/// A sweep row's setting and rate, both in bold with "(best of n)" on the best point.
fn best_marked(best: bool, setting: String, points: usize, rate: String) -> (String, String) {
    if best {
        (
            format!("**{setting} (best of {points})**"),
            format!("**{rate}**"),
        )
    } else {
        (setting, rate)
    }
}

fn latency_cells(l: &LatencySummary) -> String {
    format!("{} | {} | {}", ms(l.p50), ms(l.p99), ms(l.max))
}

/// The latest runs: the rushes, the checkout and the mixed run.
pub fn latest(f: &Figures) -> String {
    let mut md = String::new();
    md.push_str("| scenario | per second | p50 | p99 | max |\n|---|--:|--:|--:|--:|\n");
    let mut rush = |label: &str, r: &Run| {
        let _ = writeln!(
            md,
            "| {label}, {} | {} claims ({} requests) | {} |",
            pace(&r.workload.pace, "connections"),
            thousands(r.summary.successes_per_sec),
            thousands(r.summary.requests_per_sec),
            latency_cells(&r.summary.latency_us)
        );
    };
    rush("rush over HTTP", &f.rush);
    if let Some(open) = &f.rush_open_loop {
        rush("rush over HTTP, its own campaign", open);
    }
    if let Some(c) = &f.checkout {
        let _ = writeln!(
            md,
            "| checkout, {} | {} durable redemptions ({} requests) | {} |",
            pace(&c.workload.pace, "terminals"),
            thousands(c.redemptions_per_sec),
            thousands(c.summary.requests_per_sec),
            latency_cells(&c.summary.latency_us)
        );
    }
    if let Some(m) = &f.mixed {
        let (r, c) = (&m.rush.summary, &m.checkout.summary);
        let (rl, cl) = (r.latency_us, c.latency_us);
        let _ = writeln!(
            md,
            "| mixed: rush ({} connections) + checkout ({} terminals) | {} claims + {} redemptions | {} / {} | {} / {} | {} / {} |",
            m.rush.workload.pace.concurrency(),
            m.checkout.workload.terminals,
            thousands(r.successes_per_sec),
            thousands(c.successes_per_sec),
            ms(rl.p50),
            ms(cl.p50),
            ms(rl.p99),
            ms(cl.p99),
            ms(rl.max),
            ms(cl.max),
        );
    }
    md
}

/// Every anchor beside the project: the PostgreSQL pool sweep (best marked), the service's
/// own script, and the best of `redis-benchmark` and `pgbench` (`full`: their whole sweeps).
pub fn baselines(f: &Figures, full: bool) -> String {
    let mut md = String::new();
    md.push_str(
        "| baseline (same run, same PostgreSQL and Redis, same durability) | setting | per second | p50 | p99 |\n|---|---|--:|--:|--:|\n",
    );
    let pg = "PostgreSQL claim transaction (one hot stock row)";
    if f.baseline_pg_sweep.is_empty() {
        let r = &f.baseline_pg;
        let _ = writeln!(
            md,
            "| {pg} | {} | {} claims | {} | {} |",
            pace(&r.workload.pace, "connections"),
            thousands(r.summary.successes_per_sec),
            ms(r.summary.latency_us.p50),
            ms(r.summary.latency_us.p99)
        );
    }
    for p in &f.baseline_pg_sweep {
        let setting = if p.pool < p.connections {
            format!("{} in flight over {} connections", p.connections, p.pool)
        } else {
            format!("{} connections", p.connections)
        };
        let (setting, rate) = best_marked(
            p.best,
            setting,
            f.baseline_pg_sweep.len(),
            format!("{} claims", thousands(p.claims_per_sec)),
        );
        let _ = writeln!(
            md,
            "| {pg} | {setting} | {rate} | {} | {} |",
            ms(p.p50_us),
            ms(p.p99_us)
        );
    }
    let r = &f.baseline_redis;
    let _ = writeln!(
        md,
        "| the service's claim script straight at Redis (`EVALSHA` through `HotStore`) | {} in flight, pipelined | {} claims | {} | {} |",
        r.workload.pace.concurrency(),
        thousands(r.summary.successes_per_sec),
        ms(r.summary.latency_us.p50),
        ms(r.summary.latency_us.p99)
    );
    if let Some(s) = &f.baseline_redis_minimal {
        let rows: Vec<&MinimalPoint> = if full {
            s.sweep.iter().collect()
        } else {
            vec![&s.best]
        };
        for p in rows {
            let setting = format!("`-c {} -P {}`", p.clients, p.pipeline);
            let (setting, rate) = best_marked(
                p.best,
                setting,
                s.sweep.len(),
                format!("{} claims", thousands(p.claims_per_sec)),
            );
            let _ = writeln!(
                md,
                "| minimal claim script via `redis-benchmark` (stock, person count, record, outbox) | {setting} | {rate} | {} | {} |",
                ms(p.p50_us),
                ms(p.p99_us)
            );
        }
    }
    if let Some(s) = &f.baseline_pg_redeem {
        let rows: Vec<&RedeemPoint> = if full {
            s.sweep.iter().collect()
        } else {
            vec![&s.best]
        };
        for p in rows {
            let setting = format!("`-c {} -j {}`, {} s", p.clients, p.threads, p.secs);
            let (setting, rate) = best_marked(
                p.best,
                setting,
                s.sweep.len(),
                format!("{} transactions", thousands(p.tps)),
            );
            let _ = writeln!(
                md,
                "| minimal durable redemption via `pgbench` (`UPDATE` + `INSERT`, one transaction) | {setting} | {rate} | mean {} | – |",
                ms(p.latency_avg_us)
            );
        }
    }
    md
}

/// The project ÷ each baseline, with the goals.
pub fn ratios(f: &Figures) -> String {
    let r = &f.ratios;
    let v = &f.verdicts;
    let mut md = String::new();
    md.push_str("| ratio (`ratios.…` in the JSON) | measured | goal | met |\n|---|--:|---|---|\n");
    let _ = writeln!(
        md,
        "| HTTP claims ÷ the service's claim script at Redis (`claims_vs_redis_script`) | {} | ≥ {}× | {} |",
        times(r.claims_vs_redis_script_permille),
        goal(targets::HTTP_OVER_REDIS_PERMILLE),
        yes(v.http_over_redis)
    );
    let best = f
        .baseline_pg_sweep
        .iter()
        .find(|p| p.best)
        .map_or_else(String::new, |p| format!(" ({} in flight)", p.connections));
    let _ = writeln!(
        md,
        "| HTTP claims ÷ PostgreSQL at its best pool{best} (`claims_vs_pg_best`) | {} | ahead (≥ {}×); the former ≥ 15× was set against 512 connections, for information | {} |",
        times(r.claims_vs_pg_best_permille),
        goal(targets::HTTP_OVER_PG_PERMILLE),
        yes(v.http_over_pg)
    );
    let _ = writeln!(
        md,
        "| HTTP claims ÷ the minimal script via `redis-benchmark` (`claims_vs_redis_minimal`) | {} | – (the ceiling) | – |",
        times(r.claims_vs_redis_minimal_permille)
    );
    let _ = writeln!(
        md,
        "| checkout redemptions ÷ the minimal redemption via `pgbench` (`redemptions_vs_pg_redeem`) | {} | – (the ceiling) | – |",
        times(r.redemptions_vs_pg_redeem_permille)
    );
    md
}

/// The targets other than ratios.
pub fn targets(f: &Figures) -> String {
    let v = &f.verdicts;
    let mut md = String::new();
    md.push_str("| target | measured | goal | met |\n|---|--:|--:|---|\n");
    let closed = format!(
        "| claim p99, {} | {} |",
        pace(&f.rush.workload.pace, "connections"),
        ms(f.rush.summary.latency_us.p99)
    );
    match &f.rush_open_loop {
        Some(open) => {
            let _ = writeln!(
                md,
                "| claim p99, {} | {} | ≤ {} | {} |",
                pace(&open.workload.pace, "connections"),
                ms(open.summary.latency_us.p99),
                ms(targets::P99_US),
                yes(v.p99)
            );
            let _ = writeln!(md, "{closed} – (reported) | – |");
        }
        None => {
            let _ = writeln!(md, "{closed} ≤ {} | {} |", ms(targets::P99_US), yes(v.p99));
        }
    }
    if let Some(m) = f.baseline_redis.redis_memory {
        let _ = writeln!(
            md,
            "| Redis bytes per live voucher (the service's script, {} vouchers) | {} | ≤ {} | {} |",
            thousands(m.vouchers),
            m.bytes_per_voucher,
            targets::BYTES_PER_VOUCHER,
            yes(v.bytes_per_voucher)
        );
    }
    if let Some(m) = f.rush.redis_memory {
        let _ = writeln!(
            md,
            "| Redis bytes per live voucher (HTTP rush, {} vouchers) | {} | ≤ {} | {} |",
            thousands(m.vouchers),
            m.bytes_per_voucher,
            targets::BYTES_PER_VOUCHER,
            yes(m.bytes_per_voucher <= targets::BYTES_PER_VOUCHER)
        );
    }
    match (f.rush.rss, v.rss) {
        (Some(r), Some(ok)) => {
            let _ = writeln!(
                md,
                "| issuance RSS under the rush (peak VmRSS / VmHWM) | {} / {} MB | ≤ 150 MB | {} |",
                r.peak_rss_kib * 1024 / 1_000_000,
                r.hwm_kib * 1024 / 1_000_000,
                yes(ok)
            );
        }
        _ => {
            md.push_str("| issuance RSS under the rush | not measured (no pid) | ≤ 150 MB | – |\n")
        }
    }
    if let Some(c) = &f.checkout {
        let terminals = c.workload.terminals;
        let _ = writeln!(
            md,
            "| durable redemptions/s at {terminals} terminals | {} | ≥ {} | {} |",
            thousands(c.redemptions_per_sec),
            thousands(targets::REDEMPTIONS_PER_SEC),
            yes(v.redemptions_per_sec.unwrap_or(false))
        );
        let _ = writeln!(
            md,
            "| redemption p99 at {terminals} terminals | {} | ≤ {} | {} |",
            ms(c.summary.latency_us.p99),
            ms(targets::CHECKOUT_P99_US),
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
    md
}

/// The README's section between the markers (without them).
pub fn block(f: &Figures) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "<!-- Generated by `bench readme` from {REPORTS_DIR}/{}.json (deploy/local/bench.sh runs it); edit the renderer in loadtest/src/readme.rs, not this text. -->\n",
        f.name
    );
    let _ = writeln!(
        md,
        "Latest (`{REPORTS_DIR}/{}.md`, {}, {} cores, the load generator on the same machine):\n",
        f.name, f.started_at, f.cores
    );
    md.push_str(&latest(f));
    md.push('\n');
    md.push_str(&baselines(f, false));
    md.push('\n');
    md.push_str(&ratios(f));
    md.push('\n');
    md.push_str(&targets(f));
    let _ = writeln!(
        md,
        "\nInvariants: {}.",
        if f.invariants_ok {
            "all held"
        } else {
            "**BROKEN** (see the report)"
        }
    );
    let _ = writeln!(
        md,
        "\n![throughput and p99 per second]({REPORTS_DIR}/{}.png)",
        f.name
    );
    md
}

/// `readme` with the text between the marker lines replaced by `block`.
///
/// # Errors
/// A marker is missing, repeated, or out of order.
pub fn splice(readme: &str, block: &str) -> Result<String> {
    let find = |marker: &str| -> Result<usize> {
        let mut at = readme.match_indices(marker).map(|(i, _)| i);
        match (at.next(), at.next()) {
            (Some(i), None) => Ok(i),
            (None, _) => bail!("the README has no {marker} line"),
            (Some(_), Some(_)) => bail!("the README has {marker} more than once"),
        }
    };
    let (begin, end) = (find(BEGIN)?, find(END)?);
    if end < begin {
        bail!("the README's {END} comes before its {BEGIN}");
    }
    let head = &readme[..begin + BEGIN.len()];
    let tail = &readme[end..];
    Ok(format!("{head}\n{block}{tail}"))
}

/// What [`update`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The README already shows the report.
    UpToDate,
    /// The README was rewritten (not in check mode).
    Written,
    /// The README differs (check mode): the first differing line, README then report.
    Differs {
        /// 1-based line number in the README.
        line: usize,
        /// The README's line.
        found: String,
        /// The line the report renders.
        expected: String,
    },
}

/// Renders `report` into `readme` between the markers. With `check`, changes nothing and
/// says whether the README differs; otherwise writes the README and names the report in
/// `LATEST` beside it.
///
/// # Errors
/// A file is unreadable or unwritable, the report lacks the stable keys, or the markers are
/// wrong.
pub fn update(report: &Path, readme: &Path, check: bool) -> Result<Outcome> {
    let figures = Figures::load(report)?;
    let current =
        std::fs::read_to_string(readme).with_context(|| format!("reading {}", readme.display()))?;
    let rendered = splice(&current, &block(&figures))?;
    if rendered == current {
        if !check {
            write_latest(report)?;
        }
        return Ok(Outcome::UpToDate);
    }
    if check {
        let (line, (found, expected)) = current
            .lines()
            .chain(std::iter::repeat(""))
            .zip(rendered.lines().chain(std::iter::repeat("")))
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map_or((0, ("", "")), |(i, pair)| (i + 1, pair));
        return Ok(Outcome::Differs {
            line,
            found: found.to_owned(),
            expected: expected.to_owned(),
        });
    }
    std::fs::write(readme, rendered).with_context(|| format!("writing {}", readme.display()))?;
    write_latest(report)?;
    Ok(Outcome::Written)
}

fn write_latest(report: &Path) -> Result<PathBuf> {
    let name = report
        .file_name()
        .context("the report path has no file name")?;
    let latest = report.with_file_name(LATEST);
    std::fs::write(&latest, format!("{}\n", name.to_string_lossy()))
        .with_context(|| format!("writing {}", latest.display()))?;
    Ok(latest)
}

/// The report `LATEST` in `reports_dir` names.
///
/// # Errors
/// `LATEST` is missing or empty.
pub fn latest_report(reports_dir: &Path) -> Result<PathBuf> {
    let path = reports_dir.join(LATEST);
    let name =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let name = name.trim();
    if name.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(reports_dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(48_216), "48,216");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn goals_drop_trailing_zeros() {
        assert_eq!(goal(350), "0.35");
        assert_eq!(goal(1_000), "1");
        assert_eq!(goal(15_000), "15");
    }

    #[test]
    fn the_block_replaces_only_the_text_between_the_markers() {
        let readme = format!("intro\n{BEGIN}\nold table\n{END}\nprose after\n");
        let out = splice(&readme, "new table\n").unwrap();
        assert_eq!(
            out,
            format!("intro\n{BEGIN}\nnew table\n{END}\nprose after\n")
        );
        assert_eq!(splice(&out, "new table\n").unwrap(), out, "idempotent");
    }

    #[test]
    fn missing_repeated_or_swapped_markers_are_refused() {
        assert!(splice("no markers", "x").is_err());
        assert!(splice(&format!("{BEGIN}\n{BEGIN}\n{END}\n"), "x").is_err());
        assert!(splice(&format!("{END}\n{BEGIN}\n"), "x").is_err());
    }

    #[test]
    fn a_report_without_the_stable_keys_is_refused() {
        let old = serde_json::json!({"name": "old", "started_at": "x", "cores": 2});
        assert!(Figures::from_json(old).is_err());
    }
}

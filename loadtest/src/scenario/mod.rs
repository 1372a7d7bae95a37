//! The scenarios of the benchmark. Each one is a module with the same three steps —
//! **set up** (a campaign, residents, a fresh database), **drive** (through
//! [`crate::driver::drive`], closed or open loop), **verify** (the invariants, once the
//! outbox drained) — and returns a [`ScenarioReport`].
//!
//! - [`rush`]: residents claim through the issuance service's HTTP API (the subject).
//! - [`baseline_redis`]: the same claims as the service's own Lua script, straight at Redis
//!   (the raw limit).
//! - [`baseline_pg`]: the same claims the way a relational implementation does them, one
//!   PostgreSQL transaction each (the usual alternative).
//! - [`checkout`]: merchants' terminals redeem claimed vouchers with signed requests through
//!   the redemption service, including duplicate presentations of one code at two
//!   terminals; verified in PostgreSQL (no double redemption, caps, budgets).
//! - [`mixed`]: a new campaign's rush and the checkout at once.
//!
//! Two more anchors are measured by the alternatives' own load generators ([`tool`]), swept
//! over their settings, the best point kept ([`Sweep`]):
//!
//! - [`redis_minimal`]: a minimal claim script (stock, person count, record, outbox) driven by
//!   `redis-benchmark` — the most any claim can do on this Redis.
//! - [`pg_redeem`]: the minimal durable redemption (`UPDATE` + `INSERT`, one transaction)
//!   driven by `pgbench` — the most any checkout can commit on this PostgreSQL.
//!
//! The claim scenarios report a [`ScenarioReport`]; the checkout, whose workload has another
//! shape (vouchers, terminals, duplicates), a [`checkout::CheckoutReport`].

pub mod baseline_pg;
pub mod baseline_redis;
pub mod checkout;
pub mod mixed;
pub mod pg_redeem;
pub mod redis_minimal;
pub mod rush;
pub mod tool;

use crate::driver::Pace;
use crate::invariants::Invariants;
use crate::probe::RssReading;
use crate::stats::Summary;
use serde::Serialize;

/// The scenarios the harness knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// HTTP claims against the issuance service.
    Rush,
    /// HTTP claims at a fixed arrival rate (the p99 target's run).
    RushOpenLoop,
    /// The claim script straight at Redis.
    BaselineRedis,
    /// One PostgreSQL transaction per claim.
    BaselinePg,
    /// Terminals redeeming claimed vouchers against the redemption service.
    Checkout,
    /// The claims of a rush that runs while terminals redeem.
    MixedRush,
    /// The redemptions that run during a rush.
    MixedCheckout,
}

impl Scenario {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Rush => "rush (HTTP)",
            Scenario::RushOpenLoop => "rush (HTTP, open loop)",
            Scenario::BaselineRedis => "raw Redis script",
            Scenario::BaselinePg => "PostgreSQL transaction",
            Scenario::Checkout => "checkout (HTTP)",
            Scenario::MixedRush => "mixed: rush (HTTP)",
            Scenario::MixedCheckout => "mixed: checkout (HTTP)",
        }
    }
}

/// The shape of a claim rush: one campaign, `residents` people claiming from `devices`
/// phones each (every phone its own claim id), at a pace.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Workload {
    /// Vouchers in the campaign (all in one round, open from the start).
    pub stock: u32,
    /// Residents claiming.
    pub residents: usize,
    /// Phones per resident, each claiming once.
    pub devices: usize,
    /// Vouchers one person may hold.
    pub per_person_limit: u32,
    /// Closed or open loop.
    pub pace: Pace,
    /// Stop issuing new attempts after this many seconds (0 = run every attempt).
    pub max_secs: u64,
}

impl Workload {
    /// Claim attempts in all.
    pub fn attempts(&self) -> usize {
        self.residents * self.devices
    }

    /// Vouchers the run must hand out if every attempt is made: `min(stock, demand)`.
    pub fn expected_claims(&self) -> u64 {
        crate::invariants::expected_claims(
            u64::from(self.stock),
            u64::try_from(self.residents).unwrap_or(u64::MAX),
            u64::try_from(self.devices).unwrap_or(u64::MAX),
            u64::from(self.per_person_limit),
        )
    }

    /// The deadline handed to the driver.
    pub fn deadline(&self) -> Option<std::time::Duration> {
        (self.max_secs > 0).then(|| std::time::Duration::from_secs(self.max_secs))
    }
}

/// A point of a baseline's sweep: its rate, and whether it is the best.
pub trait Point {
    /// What the sweep maximises (claims or transactions per second).
    fn per_sec(&self) -> u64;
    /// Marks it the best (or not).
    fn set_best(&mut self, best: bool);
}

/// Marks the fastest point (the first of equals) and returns its index; `None` when there
/// is none.
pub fn mark_best<P: Point>(points: &mut [P]) -> Option<usize> {
    let best = points
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.per_sec().cmp(&b.per_sec()).then(j.cmp(i)))
        .map(|(i, _)| i)?;
    for (i, p) in points.iter_mut().enumerate() {
        p.set_best(i == best);
    }
    Some(best)
}

/// A baseline measured at several settings: the best point, and all of them in order.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep<P> {
    /// The fastest point.
    pub best: P,
    /// Every point (`best: true` on the fastest).
    pub sweep: Vec<P>,
}

impl<P: Point + Clone> Sweep<P> {
    /// The sweep of `points`, the best marked; `None` when there is none.
    pub fn of(mut points: Vec<P>) -> Option<Sweep<P>> {
        let best = mark_best(&mut points)?;
        Some(Sweep {
            best: points.get(best)?.clone(),
            sweep: points,
        })
    }
}

/// Redis memory around a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RedisMemory {
    /// `used_memory` before, bytes.
    pub before: u64,
    /// `used_memory` after the outbox is drained, bytes.
    pub after: u64,
    /// Live vouchers created in between.
    pub vouchers: u64,
    /// `(after − before) / vouchers`.
    pub bytes_per_voucher: u64,
}

impl RedisMemory {
    /// The reading for `vouchers` created between `before` and `after`.
    pub fn new(before: u64, after: u64, vouchers: u64) -> RedisMemory {
        RedisMemory {
            before,
            after,
            vouchers,
            bytes_per_voucher: after.saturating_sub(before) / vouchers.max(1),
        }
    }
}

/// What one scenario did.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Which scenario.
    pub scenario: Scenario,
    /// Its workload.
    pub workload: Workload,
    /// Whether every attempt was made (not cut off by `max_secs`).
    pub completed: bool,
    /// The measurements.
    pub summary: Summary,
    /// The invariants checked after the run.
    pub invariants: Invariants,
    /// Redis memory per live voucher, where measured.
    pub redis_memory: Option<RedisMemory>,
    /// The service's resident memory under the load, where measured.
    pub rss: Option<RssReading>,
}

impl ScenarioReport {
    /// Claims per second while the stock lasted.
    pub fn claims_per_sec(&self) -> u64 {
        self.summary.successes_per_sec
    }
}

/// The outcome a claim refusal code stands for: the two expected refusals, or an error.
pub fn refusal(code: &str) -> crate::stats::Outcome {
    use crate::stats::Outcome;
    match code {
        SOLD_OUT | PER_PERSON_LIMIT => Outcome::Refused(code.to_owned()),
        other => Outcome::Error(other.to_owned()),
    }
}

/// The stable code of a sold-out refusal.
pub const SOLD_OUT: &str = "SOLD_OUT";
/// The stable code of a per-person-limit refusal.
pub const PER_PERSON_LIMIT: &str = "PER_PERSON_LIMIT";
/// The success label of a claim.
pub const CLAIMED: &str = "claimed";

/// Counts of a drive that every scenario checks: no errors, and successes = vouchers found.
pub fn check_common(inv: &mut Invariants, summary: &Summary, vouchers_found: u64) {
    let errors: Vec<String> = summary
        .outcomes
        .iter()
        .filter(|(k, _)| {
            k.as_str() != CLAIMED && k.as_str() != SOLD_OUT && k.as_str() != PER_PERSON_LIMIT
        })
        .map(|(k, v)| format!("{k}×{v}"))
        .collect();
    inv.holds(
        "no outcome other than claimed / SOLD_OUT / PER_PERSON_LIMIT",
        errors.is_empty(),
        "none",
        if errors.is_empty() {
            "none".to_owned()
        } else {
            errors.join(", ")
        },
    );
    inv.equal(
        "successful answers = vouchers recorded",
        summary.successes,
        vouchers_found,
    );
}

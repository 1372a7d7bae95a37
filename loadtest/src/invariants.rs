//! The invariants every run must keep, whatever its speed: stock sold exactly
//! (`claimed = min(stock, demand)`) in Redis and in PostgreSQL, nobody over the per-person
//! limit, no error other than the expected refusals. Each check is recorded with what was
//! expected and what was found, so a failed run says exactly what broke.

use serde::Serialize;

/// One checked invariant.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked, e.g. `redis claimed = min(stock, demand)`.
    pub name: String,
    /// The expected value.
    pub expected: String,
    /// The value found.
    pub actual: String,
    /// Whether they agree.
    pub ok: bool,
}

/// The checks of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Invariants {
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl Invariants {
    /// Records that `actual` must equal `expected`.
    pub fn equal<V: PartialEq + std::fmt::Display>(&mut self, name: &str, expected: V, actual: V) {
        self.checks.push(Check {
            name: name.to_owned(),
            ok: expected == actual,
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }

    /// Records a condition with a description of what was found.
    pub fn holds(&mut self, name: &str, ok: bool, expected: &str, actual: String) {
        self.checks.push(Check {
            name: name.to_owned(),
            expected: expected.to_owned(),
            actual,
            ok,
        });
    }

    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The failed checks, one line each.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: expected {}, found {}", c.name, c.expected, c.actual))
            .collect()
    }
}

/// Vouchers a campaign must have handed out: every person gets at most
/// `min(devices, limit)`, and no more than the stock exists.
pub fn expected_claims(stock: u64, residents: u64, devices: u64, limit: u64) -> u64 {
    stock.min(residents * devices.min(limit))
}

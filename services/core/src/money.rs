//! Money as integer fen (分): 1 yuan = 100 fen. No floating point anywhere an amount
//! is computed, stored or sent (POLICY rule 1). `Fen` is a non-negative amount;
//! arithmetic is checked and never wraps.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A non-negative amount of money in fen. Construct with [`Fen::try_from`] or
/// [`Fen::from_yuan`]; once it exists it is valid.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Fen(i64);

/// An amount was negative or an operation overflowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Amounts are never negative.
    #[error("amount must not be negative (got {0} fen)")]
    Negative(i64),
    /// The result does not fit.
    #[error("amount overflow")]
    Overflow,
    /// A ratio in basis points must lie in 0..=10000.
    #[error("basis points must be between 0 and 10000 (got {0})")]
    BasisPointsOutOfRange(u32),
}

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// `yuan` whole yuan.
    ///
    /// # Errors
    /// Negative or overflowing input.
    pub fn from_yuan(yuan: i64) -> Result<Fen, MoneyError> {
        yuan.checked_mul(100)
            .ok_or(MoneyError::Overflow)
            .and_then(Fen::try_from)
    }

    /// The amount in fen.
    pub const fn as_i64(self) -> i64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    /// `self - other`, or `None` when it would go below zero.
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        let v = self.0.checked_sub(other.0)?;
        (v >= 0).then_some(Fen(v))
    }

    /// `self - other`, stopping at zero.
    pub fn saturating_sub(self, other: Fen) -> Fen {
        Fen(self.0.saturating_sub(other.0).max(0))
    }

    /// `⌊self × bp / 10000⌋`: a share in basis points, rounded down to the fen.
    pub fn mul_bp_floor(self, bp: BasisPoints) -> Fen {
        // i128 so that no realistic amount can overflow; the result is ≤ self.
        let v = (i128::from(self.0) * i128::from(bp.get())) / 10_000;
        Fen(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl TryFrom<i64> for Fen {
    type Error = MoneyError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        if v < 0 {
            Err(MoneyError::Negative(v))
        } else {
            Ok(Fen(v))
        }
    }
}

impl From<Fen> for i64 {
    fn from(f: Fen) -> i64 {
        f.0
    }
}

impl fmt::Display for Fen {
    /// Yuan with two decimals, e.g. `2000.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// A ratio in basis points (万分之一): 5000 = 50%, 1000 = 10%. Always within 0..=10000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct BasisPoints(u16);

impl BasisPoints {
    /// 100%.
    pub const FULL: BasisPoints = BasisPoints(10_000);

    /// The value, 0..=10000.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u32> for BasisPoints {
    type Error = MoneyError;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        u16::try_from(v)
            .ok()
            .filter(|v| *v <= 10_000)
            .map(BasisPoints)
            .ok_or(MoneyError::BasisPointsOutOfRange(v))
    }
}

impl From<BasisPoints> for u32 {
    fn from(b: BasisPoints) -> u32 {
        u32::from(b.0)
    }
}

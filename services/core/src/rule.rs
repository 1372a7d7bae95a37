//! Discount rules of a campaign: 满减 threshold vouchers and the 立减 percentage
//! entitlement with a per-person cumulative cap.

use crate::money::{BasisPoints, Fen};
use serde::{Deserialize, Serialize};

/// How a voucher's discount is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rule {
    /// 满减: an order of at least `min_spend` gets `off` off (never more than the order).
    /// Single use.
    Threshold {
        /// The order amount the purchase must reach (may be zero: 无门槛).
        min_spend: Fen,
        /// The discount.
        off: Fen,
    },
    /// 立减: `rate_bp` of the price paid after every other discount, floored to the fen,
    /// limited by what remains of `per_person_cap` (cumulative across purchases) and of
    /// the campaign's budget. Usable for many purchases until the cap is used up.
    Percent {
        /// E.g. 1000 = 10%.
        rate_bp: BasisPoints,
        /// E.g. 200,000 fen = 2,000 yuan per person.
        per_person_cap: Fen,
    },
}

/// A rule that cannot be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRule {
    /// `off` must be positive.
    #[error("the discount `off` must be greater than zero")]
    ZeroOff,
    /// `off` above `min_spend` (when a threshold is set) makes no sense.
    #[error("the discount `off` must not exceed `min_spend` when a threshold is set")]
    OffAboveThreshold,
    /// A zero rate grants nothing.
    #[error("`rate_bp` must be between 1 and 10000")]
    ZeroRate,
    /// A zero cap grants nothing.
    #[error("`per_person_cap` must be greater than zero")]
    ZeroCap,
}

impl Rule {
    /// Checks that the rule can be issued.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), InvalidRule> {
        match *self {
            Rule::Threshold { min_spend, off } => {
                if off == Fen::ZERO {
                    Err(InvalidRule::ZeroOff)
                } else if min_spend != Fen::ZERO && off > min_spend {
                    Err(InvalidRule::OffAboveThreshold)
                } else {
                    Ok(())
                }
            }
            Rule::Percent {
                rate_bp,
                per_person_cap,
            } => {
                if rate_bp.get() == 0 {
                    Err(InvalidRule::ZeroRate)
                } else if per_person_cap == Fen::ZERO {
                    Err(InvalidRule::ZeroCap)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether the voucher is spent in one purchase (threshold) or is an entitlement
    /// used across purchases up to a cap (percent).
    pub fn is_single_use(&self) -> bool {
        matches!(self, Rule::Threshold { .. })
    }
}

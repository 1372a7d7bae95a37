//! Discount arithmetic (POLICY rules 2 and 3), all in integer fen, floors to the fen.

use crate::money::{BasisPoints, Fen};
use crate::rule::Rule;
use serde::{Deserialize, Serialize};

/// What limited a percentage discount below its uncapped value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// What remained of the person's cumulative cap.
    PersonCap,
    /// What remained of the campaign's budget.
    Budget,
}

/// A computed discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    /// The discount granted (≤ the order amount).
    pub amount: Fen,
    /// What the customer still pays: order − amount.
    pub to_pay: Fen,
    /// The discount before cap and budget limits (for a percent rule), else equal to `amount`.
    pub uncapped: Fen,
    /// Set when a cap or the budget cut the discount.
    pub limited_by: Option<Limit>,
}

/// Why a voucher cannot be applied to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotApplicable {
    /// 满减 threshold not reached.
    #[error("the order amount is below the voucher's threshold of {min_spend} yuan")]
    BelowThreshold {
        /// The threshold.
        min_spend: Fen,
    },
    /// The campaign's remaining budget cannot cover a threshold voucher's discount.
    #[error("the campaign's budget is exhausted")]
    BudgetExhausted,
}

/// 满减: `off` off an order of at least `min_spend`, never more than the order.
///
/// # Errors
/// [`NotApplicable::BelowThreshold`] when `order < min_spend`.
pub fn threshold(min_spend: Fen, off: Fen, order: Fen) -> Result<Fen, NotApplicable> {
    todo!("core: threshold discount")
}

/// 立减: `⌊price × rate⌋`, then limited by `cap_remaining`, then by `budget_remaining`.
/// `price` is what the consumer pays after every other discount. Never fails: a purchase
/// after the cap is reached gets a zero discount and is still a sale.
pub fn percent(rate_bp: BasisPoints, price: Fen, cap_remaining: Fen, budget_remaining: Fen) -> Discount {
    todo!("core: percent discount")
}

impl Rule {
    /// The discount this rule grants on `order`. For a threshold rule `cap_remaining` is
    /// ignored and the whole `off` must fit in `budget_remaining`; for a percent rule see
    /// [`percent`].
    ///
    /// # Errors
    /// [`NotApplicable`] when a threshold voucher cannot be applied.
    pub fn discount(&self, order: Fen, cap_remaining: Fen, budget_remaining: Fen) -> Result<Discount, NotApplicable> {
        todo!("core: rule discount")
    }
}

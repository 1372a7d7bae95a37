//! Discount arithmetic (POLICY rules 2 and 3, and the annual card's once-only subsidy), all
//! in integer fen, floors to the fen. The per-item rule's arithmetic is in
//! [`crate::item_rule`].

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
    /// A per-item (以旧换新) voucher is priced per order line, not on an order amount: see
    /// [`crate::item_rule`].
    #[error("a per-item voucher is priced on the order's lines")]
    NeedsLines,
}

/// 满减: `off` off an order of at least `min_spend`, never more than the order.
///
/// # Errors
/// [`NotApplicable::BelowThreshold`] when `order < min_spend`.
pub fn threshold(min_spend: Fen, off: Fen, order: Fen) -> Result<Fen, NotApplicable> {
    if order < min_spend {
        return Err(NotApplicable::BelowThreshold { min_spend });
    }
    Ok(off.min(order))
}

/// 立减: `⌊price × rate⌋`, then limited by `cap_remaining`, then by `budget_remaining`.
/// `price` is what the consumer pays after every other discount. Never fails: a purchase
/// after the cap is reached gets a zero discount and is still a sale.
pub fn percent(
    rate_bp: BasisPoints,
    price: Fen,
    cap_remaining: Fen,
    budget_remaining: Fen,
) -> Discount {
    let uncapped = price.mul_bp_floor(rate_bp);
    let mut amount = uncapped;
    let mut limited_by = None;
    if amount > cap_remaining {
        amount = cap_remaining;
        limited_by = Some(Limit::PersonCap);
    }
    if amount > budget_remaining {
        amount = budget_remaining;
        limited_by = Some(Limit::Budget);
    }
    // amount ≤ uncapped ≤ price, so the subtraction cannot go below zero.
    let to_pay = price.saturating_sub(amount);
    Discount {
        amount,
        to_pay,
        uncapped,
        limited_by,
    }
}

/// 旅游惠民年卡: the card's `subsidy` at its first use (at most the order), nothing once it has
/// been granted. Never fails: every entry with the card is a sale.
pub fn annual_card(subsidy: Fen, order: Fen, already_granted: bool) -> Fen {
    if already_granted {
        Fen::ZERO
    } else {
        subsidy.min(order)
    }
}

impl Rule {
    /// The discount this rule grants on `order`. For a threshold rule `cap_remaining` is
    /// ignored and the whole `off` must fit in `budget_remaining`; for a percent rule see
    /// [`percent`]; for an annual card `cap_remaining` below its subsidy means it was
    /// granted, and the subsidy must fit in `budget_remaining` whole.
    ///
    /// # Errors
    /// [`NotApplicable`] when a threshold voucher cannot be applied, and for a per-item
    /// rule (priced on lines: [`crate::item_rule::ItemRule::price`]).
    pub fn discount(
        &self,
        order: Fen,
        cap_remaining: Fen,
        budget_remaining: Fen,
    ) -> Result<Discount, NotApplicable> {
        match *self {
            Rule::Threshold { min_spend, off } => {
                let amount = threshold(min_spend, off, order)?;
                if amount > budget_remaining {
                    return Err(NotApplicable::BudgetExhausted);
                }
                Ok(Discount {
                    amount,
                    to_pay: order.saturating_sub(amount),
                    uncapped: amount,
                    limited_by: None,
                })
            }
            Rule::Percent { rate_bp, .. } => {
                Ok(percent(rate_bp, order, cap_remaining, budget_remaining))
            }
            Rule::ItemPercent(_) => Err(NotApplicable::NeedsLines),
            Rule::AnnualCard { subsidy } => {
                let uncapped = annual_card(subsidy, order, cap_remaining < subsidy);
                let (amount, limited_by) = if uncapped > budget_remaining {
                    (Fen::ZERO, Some(Limit::Budget))
                } else {
                    (uncapped, None)
                };
                Ok(Discount {
                    amount,
                    to_pay: order.saturating_sub(amount),
                    uncapped,
                    limited_by,
                })
            }
        }
    }
}

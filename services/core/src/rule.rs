//! Discount rules of a campaign: 满减 threshold vouchers, the 立减 percentage entitlement
//! with a per-person cumulative cap, the 以旧换新 per-item percentage with a cap per item and
//! a limit per person per product category ([`crate::item_rule`]), and the 旅游惠民年卡 annual
//! card, subsidised once.
//!
//! `Rule` is not `Copy`: the per-item rule carries its list of product categories.

use crate::item_rule::{InvalidItemRule, ItemRule};
use crate::money::{BasisPoints, Fen};
use serde::{Deserialize, Serialize};

/// How a voucher's discount is computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// 以旧换新 per-item 立减 (2025 trade-in): each item gets `rate_bp` of its price, at most the
    /// item cap, for the product categories listed, each limited per person
    /// ([`crate::item_rule`]). The terminal sends the order's lines with their category.
    /// Usable for many purchases until the person's category limits (and optional cap) are
    /// used up.
    ItemPercent(ItemRule),
    /// 旅游惠民年卡: an annual card issued once per person, used at the gate any number of
    /// times; its first use (the card's sale or activation) gets `subsidy` (at most the
    /// order), every later entry nothing.
    AnnualCard {
        /// E.g. 1,000 fen = 10 yuan per card (001 item 13).
        subsidy: Fen,
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
    /// A per-item rule that cannot be issued.
    #[error(transparent)]
    Item(#[from] InvalidItemRule),
    /// An annual card with no subsidy.
    #[error("`subsidy` must be greater than zero")]
    ZeroSubsidy,
    /// An annual card is issued to a person once.
    #[error("an annual card is issued once per person: `per_person_limit` must be 1")]
    AnnualCardLimit,
}

impl Rule {
    /// Checks that the rule can be issued.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), InvalidRule> {
        match self {
            Rule::Threshold { min_spend, off } => {
                if *off == Fen::ZERO {
                    Err(InvalidRule::ZeroOff)
                } else if *min_spend != Fen::ZERO && off > min_spend {
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
                } else if *per_person_cap == Fen::ZERO {
                    Err(InvalidRule::ZeroCap)
                } else {
                    Ok(())
                }
            }
            Rule::ItemPercent(item) => Ok(item.validate()?),
            Rule::AnnualCard { subsidy } => {
                if *subsidy == Fen::ZERO {
                    Err(InvalidRule::ZeroSubsidy)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether the voucher is spent in one purchase (threshold) or is an entitlement
    /// used across purchases up to a cap (percent, per-item, annual card).
    pub fn is_single_use(&self) -> bool {
        matches!(self, Rule::Threshold { .. })
    }

    /// The rule's kind as its JSON `type`: `threshold`, `percent`, `item_percent`,
    /// `annual_card`.
    pub fn kind(&self) -> &'static str {
        match self {
            Rule::Threshold { .. } => "threshold",
            Rule::Percent { .. } => "percent",
            Rule::ItemPercent(_) => "item_percent",
            Rule::AnnualCard { .. } => "annual_card",
        }
    }

    /// The cap of the person's entitlement row (`entitlements.cap_fen`) for the rules that
    /// keep one: the percentage's cumulative cap, the per-item rule's optional cap (without
    /// one, the largest amount, so that the row still records what was used and reversals
    /// and releases give it back the same way), the annual card's subsidy (used once).
    pub fn entitlement_cap(&self) -> Option<Fen> {
        match self {
            Rule::Threshold { .. } => None,
            Rule::Percent { per_person_cap, .. } => Some(*per_person_cap),
            Rule::ItemPercent(item) => Some(
                item.per_person_cap
                    .unwrap_or_else(|| Fen::try_from(i64::MAX).unwrap_or_default()),
            ),
            Rule::AnnualCard { subsidy } => Some(*subsidy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_rules_read_and_write_their_json() {
        let item: Rule = serde_json::from_value(serde_json::json!({
            "type": "item_percent", "rate_bp": 1500, "item_cap": 200_000,
            "categories": [{"product_category": "refrigerator", "per_person_items": 1},
                           {"product_category": "air_conditioner", "per_person_items": 3}]
        }))
        .unwrap();
        assert_eq!(item.kind(), "item_percent");
        assert_eq!(item.validate(), Ok(()));
        let back: Rule = serde_json::from_value(serde_json::to_value(&item).unwrap()).unwrap();
        assert_eq!(back, item);
        let card: Rule =
            serde_json::from_value(serde_json::json!({"type": "annual_card", "subsidy": 1000}))
                .unwrap();
        assert_eq!(
            card,
            Rule::AnnualCard {
                subsidy: Fen::try_from(1000).unwrap()
            }
        );
        assert!(!card.is_single_use());
        let typo = serde_json::from_value::<Rule>(serde_json::json!({
            "type": "item_percent", "rate_bp": 1500, "item_cap": 200_000,
            "categories": [{"product_category": "tv", "per_person_item": 1}]
        }));
        assert!(typo.is_err());
    }
}

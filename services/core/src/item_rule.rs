//! 以旧换新 per-item instant discounts: the 2025 widening of trade-in (002 §(十五)) to home
//! appliances, e-bikes, kitchen-and-bath renovation (家装厨卫"焕新") and new phones and digital
//! products, modelled as the home-furnishing 立减 generalised: a percent of each item's price
//! with a **cap per item** and a **limit per person per product category**.
//!
//! The rule ([`ItemRule`]) is configuration of a campaign: a default rate and per-item cap,
//! an optional cumulative cap per person, an optional highest item price, and the product
//! categories it covers, each with the number of items one person may have subsidised and
//! optional overrides of rate, cap and highest price. Nothing here is a constant of the
//! policy: the README cites where each example value comes from.
//!
//! Arithmetic, all in integer fen:
//! - one item (unit) of a line: `min(⌊unit_price × rate⌋, item_cap)` ([`item_discount`]), so
//!   never above the cap, never above the price, floored to the fen;
//! - a line: that × its quantity;
//! - the order: Σ lines, then cut (in line order) to what remains of the person's cumulative
//!   cap when the rule has one ([`cut_to`]).
//!
//! Refusals before any record is read ([`ItemRefusal`]): no lines, a line whose category the
//! rule does not cover, an item above the highest price, or more items of a category on one
//! order than the category allows a person at all. Whether the person still has room in a
//! category is decided by the record (a conditional update under concurrent checkouts).

use crate::checkout::Decline;
use crate::money::{BasisPoints, Fen};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Most product categories one rule lists: the rule travels in the signed voucher token,
/// which must stay small enough for a QR code (the 2025 national list of home appliances has
/// 12 categories; phones, tablets and smart watches are 3).
pub const MAX_CATEGORIES: usize = 12;
/// Longest product category name.
pub const MAX_CATEGORY_LEN: usize = 24;
/// Most items of one category a rule may allow one person (and most units on one line).
pub const MAX_ITEMS: u32 = 100;

/// Whether `s` is 1–`max` characters of `[a-z0-9_]` starting with a letter: the shape of the
/// configured names (product categories, certified attributes).
pub(crate) fn is_code_name(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// A product category, e.g. `refrigerator`, `air_conditioner`, `phone`: 1–24 characters of
/// `[a-z0-9_]` starting with a letter. The names are configuration (each campaign lists its
/// own), so a year's new category needs no code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductCategory(String);

/// Not a product category name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a product category is 1-24 characters of a-z 0-9 _ starting with a letter")]
pub struct InvalidProductCategory;

impl ProductCategory {
    /// Parses a name.
    ///
    /// # Errors
    /// [`InvalidProductCategory`].
    pub fn parse(s: &str) -> Result<ProductCategory, InvalidProductCategory> {
        if is_code_name(s, MAX_CATEGORY_LEN) {
            Ok(ProductCategory(s.to_owned()))
        } else {
            Err(InvalidProductCategory)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProductCategory {
    type Error = InvalidProductCategory;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ProductCategory::parse(&s)
    }
}

impl From<ProductCategory> for String {
    fn from(c: ProductCategory) -> String {
        c.0
    }
}

impl fmt::Display for ProductCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One product category a rule covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    /// The category.
    pub product_category: ProductCategory,
    /// Items of this category one person may have subsidised (e.g. 1; 3 for air conditioners
    /// in the 2025 national rules).
    pub per_person_items: u32,
    /// Overrides the rule's rate for this category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_bp: Option<BasisPoints>,
    /// Overrides the rule's per-item cap for this category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_cap: Option<Fen>,
    /// Overrides the rule's highest item price for this category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_item_price: Option<Fen>,
}

/// 以旧换新 per-item 立减: `rate_bp` of each item's price, at most `item_cap` per item, for the
/// categories listed, each limited per person; optionally at most `per_person_cap` in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemRule {
    /// E.g. 1500 = 15%.
    pub rate_bp: BasisPoints,
    /// Most one item gets, e.g. 200,000 fen = 2,000 yuan.
    pub item_cap: Fen,
    /// Most one person gets across purchases of this campaign, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_person_cap: Option<Fen>,
    /// Items priced above this get nothing (e.g. phones up to 6,000 yuan), if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_item_price: Option<Fen>,
    /// The categories covered, 1–12, each once.
    pub categories: Vec<CategoryRule>,
}

/// The terms that apply to one category: the rule's, overridden by the category's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// Rate.
    pub rate_bp: BasisPoints,
    /// Per-item cap.
    pub item_cap: Fen,
    /// Highest item price, if any.
    pub max_item_price: Option<Fen>,
    /// Items per person.
    pub per_person_items: u32,
}

/// An order line as the per-item rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemLine {
    /// Its product category, when the terminal sent one.
    pub product_category: Option<ProductCategory>,
    /// The price of one unit, after every other discount.
    pub unit_price: Fen,
    /// Units, 1–100.
    pub quantity: u32,
}

/// What one line gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    /// The line's category.
    pub product_category: ProductCategory,
    /// Price of one unit.
    pub unit_price: Fen,
    /// Units.
    pub quantity: u32,
    /// What one unit gets: `min(⌊unit_price × rate⌋, item_cap)`.
    pub per_item: Fen,
    /// What the line gets: `per_item × quantity`, possibly cut by the person's cap.
    pub discount: Fen,
}

/// Why the per-item rule refuses an order before the record is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemRefusal {
    /// No order lines: a per-item voucher needs them.
    #[error("a per-item voucher needs the order's lines with their product category")]
    NoLines,
    /// A line's category is missing or not covered by the rule.
    #[error("product category {0:?} is not covered")]
    NotCovered(Option<ProductCategory>),
    /// An item is priced above the highest price.
    #[error("an item of {0} is priced above the highest subsidised price")]
    PriceAboveLimit(ProductCategory),
    /// The order alone holds more items of a category than one person may have.
    #[error("more items of {0} than one person may have subsidised")]
    OverLimit(ProductCategory),
}

impl ItemRefusal {
    /// The checkout decline this refusal is.
    pub fn decline(&self) -> Decline {
        match self {
            ItemRefusal::NoLines => Decline::ItemsRequired,
            ItemRefusal::NotCovered(_) => Decline::ProductCategoryNotCovered,
            ItemRefusal::PriceAboveLimit(_) => Decline::ItemPriceAboveLimit,
            ItemRefusal::OverLimit(_) => Decline::CategoryLimitReached,
        }
    }
}

/// A rule that cannot be issued (see [`crate::rule::InvalidRule`], which wraps it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidItemRule {
    /// Rate zero (or an override of zero).
    #[error("`rate_bp` must be between 1 and 10000")]
    ZeroRate,
    /// Per-item cap zero (or an override of zero).
    #[error("`item_cap` must be greater than zero")]
    ZeroItemCap,
    /// Cumulative cap zero.
    #[error("`per_person_cap` must be greater than zero when set")]
    ZeroPersonCap,
    /// Highest item price zero.
    #[error("`max_item_price` must be greater than zero when set")]
    ZeroMaxPrice,
    /// No categories, too many, or one listed twice.
    #[error("`categories` must list 1-12 product categories, each once")]
    Categories,
    /// Items per person out of range.
    #[error("`per_person_items` of {0} must be 1-100")]
    Items(ProductCategory),
}

/// `min(⌊unit_price × rate⌋, item_cap)`: what one item gets. Never above the cap, never above
/// the price, floored to the fen.
pub fn item_discount(rate_bp: BasisPoints, item_cap: Fen, unit_price: Fen) -> Fen {
    unit_price.mul_bp_floor(rate_bp).min(item_cap)
}

/// Cuts the lines' discounts, in line order, so that they add up to at most `room`; returns
/// the total after the cut. A line is cut only when the lines before it used the room up.
pub fn cut_to(lines: &mut [PricedLine], room: Fen) -> Fen {
    let mut left = room;
    let mut total = Fen::ZERO;
    for line in lines {
        line.discount = line.discount.min(left);
        left = left.saturating_sub(line.discount);
        total = total.checked_add(line.discount).unwrap_or(total);
    }
    total
}

/// Σ of the lines' discounts.
pub fn total(lines: &[PricedLine]) -> Fen {
    lines.iter().fold(Fen::ZERO, |acc, l| {
        acc.checked_add(l.discount).unwrap_or(acc)
    })
}

impl ItemRule {
    /// Checks that the rule can be issued.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), InvalidItemRule> {
        if self.rate_bp.get() == 0 {
            return Err(InvalidItemRule::ZeroRate);
        }
        if self.item_cap == Fen::ZERO {
            return Err(InvalidItemRule::ZeroItemCap);
        }
        if self.per_person_cap == Some(Fen::ZERO) {
            return Err(InvalidItemRule::ZeroPersonCap);
        }
        if self.max_item_price == Some(Fen::ZERO) {
            return Err(InvalidItemRule::ZeroMaxPrice);
        }
        let n = self.categories.len();
        let distinct: std::collections::BTreeSet<_> = self
            .categories
            .iter()
            .map(|c| &c.product_category)
            .collect();
        if n == 0 || n > MAX_CATEGORIES || distinct.len() != n {
            return Err(InvalidItemRule::Categories);
        }
        for c in &self.categories {
            if c.per_person_items == 0 || c.per_person_items > MAX_ITEMS {
                return Err(InvalidItemRule::Items(c.product_category.clone()));
            }
            if c.rate_bp.is_some_and(|r| r.get() == 0) {
                return Err(InvalidItemRule::ZeroRate);
            }
            if c.item_cap == Some(Fen::ZERO) {
                return Err(InvalidItemRule::ZeroItemCap);
            }
            if c.max_item_price == Some(Fen::ZERO) {
                return Err(InvalidItemRule::ZeroMaxPrice);
            }
        }
        Ok(())
    }

    /// The terms of `category`, when the rule covers it.
    pub fn terms(&self, category: &ProductCategory) -> Option<Terms> {
        let c = self
            .categories
            .iter()
            .find(|c| &c.product_category == category)?;
        Some(Terms {
            rate_bp: c.rate_bp.unwrap_or(self.rate_bp),
            item_cap: c.item_cap.unwrap_or(self.item_cap),
            max_item_price: c.max_item_price.or(self.max_item_price),
            per_person_items: c.per_person_items,
        })
    }

    /// Prices the order's lines (before the person's cumulative cap and the record's counts).
    ///
    /// # Errors
    /// [`ItemRefusal`] in the order of the module documentation.
    pub fn price(&self, lines: &[ItemLine]) -> Result<Vec<PricedLine>, ItemRefusal> {
        if lines.is_empty() {
            return Err(ItemRefusal::NoLines);
        }
        let mut priced = Vec::with_capacity(lines.len());
        for line in lines {
            let terms = line
                .product_category
                .as_ref()
                .and_then(|c| self.terms(c))
                .ok_or_else(|| ItemRefusal::NotCovered(line.product_category.clone()))?;
            let category = line
                .product_category
                .clone()
                .ok_or(ItemRefusal::NotCovered(None))?;
            if terms
                .max_item_price
                .is_some_and(|max| line.unit_price > max)
            {
                return Err(ItemRefusal::PriceAboveLimit(category));
            }
            let per_item = item_discount(terms.rate_bp, terms.item_cap, line.unit_price);
            // Only an absurd quantity overflows, and it is over any category's limit anyway.
            let discount = i64::from(line.quantity)
                .checked_mul(per_item.as_i64())
                .and_then(|v| Fen::try_from(v).ok())
                .ok_or_else(|| ItemRefusal::OverLimit(category.clone()))?;
            priced.push(PricedLine {
                product_category: category,
                unit_price: line.unit_price,
                quantity: line.quantity,
                per_item,
                discount,
            });
        }
        for (category, quantity) in quantities(&priced) {
            let limit = self.terms(&category).map_or(0, |t| t.per_person_items);
            if quantity > limit {
                return Err(ItemRefusal::OverLimit(category));
            }
        }
        Ok(priced)
    }
}

/// The items of each category on priced lines, by category name (the order in which the
/// record's per-category counts are charged, so concurrent checkouts lock them alike).
pub fn quantities(lines: &[PricedLine]) -> BTreeMap<ProductCategory, u32> {
    let mut out: BTreeMap<ProductCategory, u32> = BTreeMap::new();
    for l in lines {
        let q = out.entry(l.product_category.clone()).or_default();
        *q = q.saturating_add(l.quantity);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fen(v: i64) -> Fen {
        Fen::try_from(v).unwrap()
    }

    fn bp(v: u32) -> BasisPoints {
        BasisPoints::try_from(v).unwrap()
    }

    fn cat(s: &str) -> ProductCategory {
        ProductCategory::parse(s).unwrap()
    }

    fn rule() -> ItemRule {
        ItemRule {
            rate_bp: bp(1500),
            item_cap: fen(200_000),
            per_person_cap: None,
            max_item_price: None,
            categories: vec![
                CategoryRule {
                    product_category: cat("refrigerator"),
                    per_person_items: 1,
                    rate_bp: None,
                    item_cap: None,
                    max_item_price: None,
                },
                CategoryRule {
                    product_category: cat("air_conditioner"),
                    per_person_items: 3,
                    rate_bp: None,
                    item_cap: None,
                    max_item_price: None,
                },
            ],
        }
    }

    fn line(c: &str, price: i64, quantity: u32) -> ItemLine {
        ItemLine {
            product_category: Some(cat(c)),
            unit_price: fen(price),
            quantity,
        }
    }

    #[test]
    fn names_are_lowercase_identifiers() {
        for ok in ["phone", "air_conditioner", "tv4k", &"a".repeat(24)] {
            assert!(ProductCategory::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Phone",
            "4k_tv",
            "air-conditioner",
            "冰箱",
            &"a".repeat(25),
        ] {
            assert!(ProductCategory::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_item_gets_the_rate_capped_per_item() {
        // 15% of 9,999 yuan = 1,499.85 yuan; of 20,000 yuan = 3,000 yuan → the 2,000 cap.
        let priced = rule()
            .price(&[
                line("refrigerator", 999_900, 1),
                line("air_conditioner", 2_000_000, 2),
            ])
            .unwrap();
        assert_eq!(priced[0].discount, fen(149_985));
        assert_eq!(priced[1].per_item, fen(200_000));
        assert_eq!(priced[1].discount, fen(400_000));
    }

    #[test]
    fn refusals_come_before_the_record() {
        let r = rule();
        assert_eq!(r.price(&[]), Err(ItemRefusal::NoLines));
        assert_eq!(
            r.price(&[line("phone", 100, 1)]),
            Err(ItemRefusal::NotCovered(Some(cat("phone"))))
        );
        assert_eq!(
            r.price(&[line("refrigerator", 100, 1), line("refrigerator", 100, 1)]),
            Err(ItemRefusal::OverLimit(cat("refrigerator")))
        );
        let mut capped = rule();
        capped.max_item_price = Some(fen(600_000));
        assert_eq!(
            capped.price(&[line("refrigerator", 600_001, 1)]),
            Err(ItemRefusal::PriceAboveLimit(cat("refrigerator")))
        );
    }

    #[test]
    fn the_cut_goes_in_line_order() {
        let mut priced = rule()
            .price(&[
                line("refrigerator", 100_000, 1),
                line("air_conditioner", 100_000, 1),
            ])
            .unwrap();
        assert_eq!(cut_to(&mut priced, fen(20_000)), fen(20_000));
        assert_eq!(priced[0].discount, fen(15_000));
        assert_eq!(priced[1].discount, fen(5_000));
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(rule().validate(), Ok(()));
        let mut r = rule();
        r.categories.push(r.categories[0].clone());
        assert_eq!(r.validate(), Err(InvalidItemRule::Categories));
        let mut r = rule();
        r.categories[1].per_person_items = 0;
        assert_eq!(
            r.validate(),
            Err(InvalidItemRule::Items(cat("air_conditioner")))
        );
        let mut r = rule();
        r.item_cap = Fen::ZERO;
        assert_eq!(r.validate(), Err(InvalidItemRule::ZeroItemCap));
    }
}

//! Extra rules on certified attributes: the support for green and new-energy products when
//! a voucher is spent on them (000 item 63: 在政府消费券发放过程中对绿色产品、新能源产品给予
//! 资金扶持; 003 §(十八), the same words). Written as a general "extra rule on a certified
//! attribute", configured on a program: `green_product` and `new_energy` are two attributes
//! among any an administrator configures, not special cases.
//!
//! An order line carries the product's certifications ([`Certification`]: the attribute and
//! the certificate number). When a voucher of a program is redeemed on an order with lines
//! certified for an attribute the program has an [`ExtraRule`] for, the extra is:
//!
//! `base` = Σ (unit price × quantity) of the lines certified for the attribute;
//! `extra = min(⌊base × rate⌋, cap per order, what is left of the person's cap (if any),
//!              what is left of the extra's budget, what the customer still pays)`
//!
//! ([`extra_amount`]); floored to the fen, never negative. Several attributes are taken in
//! name order, each limited by what the ones before left to pay. The extra is a top-up on
//! top of the voucher's discount: the customer pays `order − discount − extras`, and the
//! merchant is reimbursed each extra as its own settlement line.
//!
//! A reversal gives back the extra in proportion to the order amount refunded, on cumulative
//! totals so that partial reversals add up exactly to the extra ([`proportional`]):
//! `⌊E × (R + r) / A⌋ − ⌊E × R / A⌋` with `A` the order amount, `R` refunded before and `r`
//! this refund (the same rule as the voucher's discount).

use crate::item_rule::is_code_name;
use crate::money::{BasisPoints, Fen};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest attribute name.
pub const MAX_ATTRIBUTE_LEN: usize = 32;

/// A certified attribute, e.g. `green_product` (绿色产品), `new_energy` (新能源产品): 1–32
/// characters of `[a-z0-9_]` starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Attribute(String);

/// Not an attribute name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an attribute is 1-32 characters of a-z 0-9 _ starting with a letter")]
pub struct InvalidAttribute;

impl Attribute {
    /// Parses a name.
    ///
    /// # Errors
    /// [`InvalidAttribute`].
    pub fn parse(s: &str) -> Result<Attribute, InvalidAttribute> {
        if is_code_name(s, MAX_ATTRIBUTE_LEN) {
            Ok(Attribute(s.to_owned()))
        } else {
            Err(InvalidAttribute)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Attribute {
    type Error = InvalidAttribute;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Attribute::parse(&s)
    }
}

impl From<Attribute> for String {
    fn from(a: Attribute) -> String {
        a.0
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A certificate number as the certification body prints it (e.g. a 中国绿色产品认证 number
/// such as `CQC-GP-2024-001234`): 4–64 characters of `[A-Za-z0-9]` and `- _ / .`, starting
/// with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertificateNo(String);

/// Not a certificate number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a certificate number is 4-64 characters of A-Z a-z 0-9 - _ / . starting with a letter or digit")]
pub struct InvalidCertificateNo;

impl CertificateNo {
    /// Parses a number.
    ///
    /// # Errors
    /// [`InvalidCertificateNo`].
    pub fn parse(s: &str) -> Result<CertificateNo, InvalidCertificateNo> {
        let b = s.as_bytes();
        let ok = (4..=64).contains(&b.len())
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'/' | b'.'));
        if ok {
            Ok(CertificateNo(s.to_owned()))
        } else {
            Err(InvalidCertificateNo)
        }
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CertificateNo {
    type Error = InvalidCertificateNo;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CertificateNo::parse(&s)
    }
}

impl From<CertificateNo> for String {
    fn from(c: CertificateNo) -> String {
        c.0
    }
}

/// A product's certification on an order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certification {
    /// What is certified.
    pub attribute: Attribute,
    /// The certificate.
    pub certificate_no: CertificateNo,
}

/// An extra rule of a program: a top-up on what a voucher buys when the product is certified
/// for `attribute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraRule {
    /// The certified attribute.
    pub attribute: Attribute,
    /// Of the certified lines' amount, e.g. 500 = 5%.
    pub rate_bp: BasisPoints,
    /// Most one order gets.
    pub cap_per_order: Fen,
    /// Most one person gets across orders, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_person_cap: Option<Fen>,
    /// The extra's own budget (the campaign budget is not drawn on).
    pub budget: Fen,
    /// Whether it applies to new redemptions (a rule is switched off, never deleted: its
    /// figures stay).
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// An extra rule that cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidExtraRule {
    /// A zero rate grants nothing.
    #[error("`rate_bp` must be between 1 and 10000")]
    ZeroRate,
    /// A zero cap grants nothing.
    #[error("`cap_per_order` must be greater than zero")]
    ZeroCap,
    /// A zero person cap grants nothing.
    #[error("`per_person_cap` must be greater than zero when set")]
    ZeroPersonCap,
    /// A zero budget grants nothing.
    #[error("`budget` must be greater than zero")]
    ZeroBudget,
}

impl InvalidExtraRule {
    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            InvalidExtraRule::ZeroRate => "rate_bp",
            InvalidExtraRule::ZeroCap => "cap_per_order",
            InvalidExtraRule::ZeroPersonCap => "per_person_cap",
            InvalidExtraRule::ZeroBudget => "budget",
        }
    }
}

impl ExtraRule {
    /// Checks the rule.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), InvalidExtraRule> {
        if self.rate_bp.get() == 0 {
            Err(InvalidExtraRule::ZeroRate)
        } else if self.cap_per_order == Fen::ZERO {
            Err(InvalidExtraRule::ZeroCap)
        } else if self.per_person_cap == Some(Fen::ZERO) {
            Err(InvalidExtraRule::ZeroPersonCap)
        } else if self.budget == Fen::ZERO {
            Err(InvalidExtraRule::ZeroBudget)
        } else {
            Ok(())
        }
    }
}

/// The extra on `base`: `⌊base × rate⌋`, then at most `cap_per_order`, `person_left` (when
/// the rule caps a person), `budget_left` and `room` (what the customer still pays).
pub fn extra_amount(
    rate_bp: BasisPoints,
    cap_per_order: Fen,
    base: Fen,
    person_left: Option<Fen>,
    budget_left: Fen,
    room: Fen,
) -> Fen {
    let mut amount = base.mul_bp_floor(rate_bp).min(cap_per_order);
    if let Some(left) = person_left {
        amount = amount.min(left);
    }
    amount.min(budget_left).min(room)
}

/// An order line as the extra rules see it: what the line costs (unit price × quantity) and
/// the product's certifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertifiedLine<'a> {
    /// The line's amount.
    pub amount: Fen,
    /// Its certifications.
    pub certifications: &'a [Certification],
}

/// `base` of the rule for `attribute`: Σ of the amounts of the lines certified for it.
pub fn certified_base(lines: &[CertifiedLine<'_>], attribute: &Attribute) -> Fen {
    lines
        .iter()
        .filter(|l| l.certifications.iter().any(|c| &c.attribute == attribute))
        .fold(Fen::ZERO, |acc, l| acc.checked_add(l.amount).unwrap_or(acc))
}

/// One rule's figures for an order, as the record has them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtraInput<'a> {
    /// The rule.
    pub rule: &'a ExtraRule,
    /// [`certified_base`] of the order for the rule's attribute.
    pub base: Fen,
    /// What is left of the rule's budget.
    pub budget_left: Fen,
    /// What the person has been granted of the rule so far.
    pub person_used: Fen,
}

/// The extras of an order whose customer still pays `room` after the voucher's discount: the
/// rules in the order given (name order), each by [`extra_amount`] within what the ones before
/// left to pay.
pub fn plan(inputs: &[ExtraInput<'_>], room: Fen) -> Vec<Fen> {
    let mut left = room;
    inputs
        .iter()
        .map(|i| {
            let person_left = i
                .rule
                .per_person_cap
                .map(|c| c.saturating_sub(i.person_used));
            let amount = extra_amount(
                i.rule.rate_bp,
                i.rule.cap_per_order,
                i.base,
                person_left,
                i.budget_left,
                left,
            );
            left = left.saturating_sub(amount);
            amount
        })
        .collect()
}

/// What to give back of `amount` (granted on an order of `order`) when `refund` more is
/// refunded, `refunded` having been refunded before: `⌊amount × (R + r) / A⌋ − ⌊amount × R / A⌋`.
/// Partial reversals add up exactly to `amount` once the whole order is refunded.
pub fn proportional(amount: Fen, order: Fen, refunded: Fen, refund: Fen) -> Fen {
    if order == Fen::ZERO {
        return Fen::ZERO;
    }
    let part = |r: Fen| {
        let r = r.min(order);
        i128::from(amount.as_i64()) * i128::from(r.as_i64()) / i128::from(order.as_i64())
    };
    let after = refunded.checked_add(refund).unwrap_or(order);
    let v = part(after) - part(refunded);
    i64::try_from(v)
        .ok()
        .and_then(|v| Fen::try_from(v).ok())
        .unwrap_or(Fen::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fen(v: i64) -> Fen {
        Fen::try_from(v).unwrap()
    }

    #[test]
    fn names_and_numbers_parse() {
        assert!(Attribute::parse("green_product").is_ok());
        assert!(Attribute::parse("Green").is_err());
        assert!(CertificateNo::parse("CQC-GP-2024-001234").is_ok());
        for bad in ["abc", "-abc1", "has space", "证书123456", &"1".repeat(65)] {
            assert!(CertificateNo::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_extra_is_floored_and_limited() {
        let rate = BasisPoints::try_from(500).unwrap();
        // 5% of 3,999.99 yuan = 199.9995 → 199.99 yuan.
        let e = extra_amount(
            rate,
            fen(50_000),
            fen(399_999),
            None,
            fen(i64::MAX),
            fen(i64::MAX),
        );
        assert_eq!(e, fen(19_999));
        assert_eq!(
            extra_amount(
                rate,
                fen(10_000),
                fen(399_999),
                Some(fen(5_000)),
                fen(4_000),
                fen(1_000_000)
            ),
            fen(4_000)
        );
    }

    #[test]
    fn partial_refunds_add_up_to_the_extra() {
        let (e, a) = (fen(1_999), fen(19_990));
        let mut refunded = Fen::ZERO;
        let mut back = Fen::ZERO;
        for r in [3_333, 3_333, 3_333, 9_991] {
            back = back
                .checked_add(proportional(e, a, refunded, fen(r)))
                .unwrap();
            refunded = refunded.checked_add(fen(r)).unwrap();
        }
        assert_eq!(back, e);
    }
}

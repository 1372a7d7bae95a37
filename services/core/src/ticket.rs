//! Scenic-spot first-entry ticket subsidies (001 item 13): 对收费A级旅游景区进行门票补贴，落实
//! 首道门票八折以上优惠省级补贴政策，市级财政在省级补贴的基础上按门票实际销售价格的20%给予补贴，
//! 鼓励县级财政配套补贴资金.
//!
//! A ticket scheme ([`NewTicketScheme`]) belongs to a city (or a county, which then co-funds
//! through its program's `county_cofund_bp`) and names two programs: the province's part and
//! the city's part are paid to the scenic spot and settle as separate lines. Its rule
//! ([`TicketRule`]) is configuration:
//!
//! - `max_sale_ratio_bp`: a sale qualifies only when `sale ≤ list × ratio` (8000: sold at 80% of
//!   the list price or less, 八折以上优惠), compared exactly in integers
//!   (`sale × 10000 ≤ list × ratio`, no rounding);
//! - the province's part per ticket: the seed does not state the provincial policy, so it is
//!   configured as a rate of a basis ([`ProvinceBasis`]: the discount `list − sale`, the sale
//!   price or the list price) with an optional cap per ticket, or absent;
//! - the city's part per ticket: `⌊sale × city_rate⌋` (2000: 20% of the actual sale price),
//!   with an optional cap per ticket.
//!
//! Every amount is per ticket, floored to the fen, then multiplied by the quantity, so a
//! refund of `q` tickets gives back exactly `q ×` the per-ticket amounts. A sale above the
//! ratio gets nothing (it is still recorded). The two parts together never exceed the sale
//! price: the city's part, the top-up 在省级补贴的基础上, is the one cut.

use crate::ids::ProgramId;
use crate::money::{BasisPoints, Fen};
use crate::place::{PlaceCode, PlaceLevel};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the province's rate applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvinceBasis {
    /// The discount the spot gives: `list − sale`.
    Discount,
    /// The actual sale price.
    SalePrice,
    /// The list price.
    ListPrice,
}

/// The province's part per ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvincePart {
    /// What the rate applies to.
    pub basis: ProvinceBasis,
    /// The rate, e.g. 5000 = 50% of the discount.
    pub rate_bp: BasisPoints,
    /// Most per ticket, if capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ticket_cap: Option<Fen>,
}

/// How a ticket sale is subsidised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRule {
    /// Highest sale price as a share of the list price that still qualifies, e.g. 8000.
    pub max_sale_ratio_bp: BasisPoints,
    /// The province's part, when the scheme pays one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<ProvincePart>,
    /// The city's part: rate of the actual sale price, e.g. 2000 = 20%.
    pub city_rate_bp: BasisPoints,
    /// Most the city pays per ticket, if capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city_per_ticket_cap: Option<Fen>,
}

/// What one ticket gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerTicket {
    /// Whether the sale qualifies (sold at or below the ratio).
    pub eligible: bool,
    /// The province's part.
    pub province: Fen,
    /// The city's part.
    pub city: Fen,
}

/// A ticket rule that cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTicketRule {
    /// A zero ratio lets nothing qualify.
    #[error("`max_sale_ratio_bp` must be between 1 and 10000")]
    ZeroRatio,
    /// Neither part pays anything.
    #[error("the scheme pays nothing: set `city_rate_bp` or a `province` part")]
    NothingPaid,
    /// A province part with a zero rate.
    #[error("`province.rate_bp` must be between 1 and 10000")]
    ZeroProvinceRate,
    /// A zero cap.
    #[error("a per-ticket cap must be greater than zero when set")]
    ZeroCap,
}

impl TicketRule {
    /// Checks the rule.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), InvalidTicketRule> {
        if self.max_sale_ratio_bp.get() == 0 {
            return Err(InvalidTicketRule::ZeroRatio);
        }
        if let Some(p) = self.province {
            if p.rate_bp.get() == 0 {
                return Err(InvalidTicketRule::ZeroProvinceRate);
            }
            if p.per_ticket_cap == Some(Fen::ZERO) {
                return Err(InvalidTicketRule::ZeroCap);
            }
        }
        if self.city_per_ticket_cap == Some(Fen::ZERO) {
            return Err(InvalidTicketRule::ZeroCap);
        }
        if self.province.is_none() && self.city_rate_bp.get() == 0 {
            return Err(InvalidTicketRule::NothingPaid);
        }
        Ok(())
    }

    /// Whether a ticket listed at `list` and sold at `sale` qualifies:
    /// `sale × 10000 ≤ list × max_sale_ratio_bp`, exactly.
    pub fn qualifies(&self, list: Fen, sale: Fen) -> bool {
        i128::from(sale.as_i64()) * 10_000
            <= i128::from(list.as_i64()) * i128::from(self.max_sale_ratio_bp.get())
    }

    /// What one ticket listed at `list` and sold at `sale` gets (see the module documentation).
    pub fn per_ticket(&self, list: Fen, sale: Fen) -> PerTicket {
        if !self.qualifies(list, sale) {
            return PerTicket {
                eligible: false,
                province: Fen::ZERO,
                city: Fen::ZERO,
            };
        }
        let province = self.province.map_or(Fen::ZERO, |p| {
            let basis = match p.basis {
                ProvinceBasis::Discount => list.saturating_sub(sale),
                ProvinceBasis::SalePrice => sale,
                ProvinceBasis::ListPrice => list,
            };
            let amount = basis.mul_bp_floor(p.rate_bp);
            p.per_ticket_cap.map_or(amount, |cap| amount.min(cap))
        });
        let province = province.min(sale);
        let mut city = sale.mul_bp_floor(self.city_rate_bp);
        if let Some(cap) = self.city_per_ticket_cap {
            city = city.min(cap);
        }
        let city = city.min(sale.saturating_sub(province));
        PerTicket {
            eligible: true,
            province,
            city,
        }
    }
}

/// `per_ticket × quantity`, or `None` on overflow.
pub fn times(per_ticket: Fen, quantity: u32) -> Option<Fen> {
    per_ticket
        .as_i64()
        .checked_mul(i64::from(quantity))
        .and_then(|v| Fen::try_from(v).ok())
}

/// What an administrator submits to create a ticket scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicketScheme {
    /// Human name, e.g. "晋城A级景区首道门票补贴 2023".
    pub name: String,
    /// The city (or county) whose scheme it is. A county's scheme is co-funded by the county
    /// through the city program's `county_cofund_bp`.
    pub owner_place: PlaceCode,
    /// The program that pays the province's part (`province_ratio_bp` 10000: the province
    /// pays it all, within its pool).
    pub province_program_id: ProgramId,
    /// The program that pays the city's part (`province_ratio_bp` 0).
    pub city_program_id: ProgramId,
    /// How sales are subsidised.
    pub rule: TicketRule,
    /// First sale instant that counts.
    pub starts_at: DateTime<Utc>,
    /// Sales from this instant on get nothing (e.g. 2023-06-01: 2023年6月前).
    pub ends_at: DateTime<Utc>,
}

/// A scheme that cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTicketScheme {
    /// Name empty or longer than 200 characters.
    #[error("name must be 1-200 characters")]
    Name,
    /// The owner must be a city or county.
    #[error("owner_place must be a city or county code")]
    OwnerLevel,
    /// The two programs must differ.
    #[error("the province's and the city's parts need two different programs")]
    SamePrograms,
    /// The window is empty.
    #[error("starts_at must be before ends_at")]
    Window,
    /// Bad rule.
    #[error(transparent)]
    Rule(#[from] InvalidTicketRule),
}

impl InvalidTicketScheme {
    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            InvalidTicketScheme::Name => "name",
            InvalidTicketScheme::OwnerLevel => "owner_place",
            InvalidTicketScheme::SamePrograms => "city_program_id",
            InvalidTicketScheme::Window => "ends_at",
            InvalidTicketScheme::Rule(_) => "rule",
        }
    }
}

impl NewTicketScheme {
    /// Checks the spec (the programs' funding rules are checked against the record by the
    /// service).
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), InvalidTicketScheme> {
        let len = self.name.trim().chars().count();
        if len == 0 || len > 200 {
            return Err(InvalidTicketScheme::Name);
        }
        if self.owner_place.level() == PlaceLevel::Province {
            return Err(InvalidTicketScheme::OwnerLevel);
        }
        if self.province_program_id == self.city_program_id {
            return Err(InvalidTicketScheme::SamePrograms);
        }
        if self.starts_at >= self.ends_at {
            return Err(InvalidTicketScheme::Window);
        }
        self.rule.validate()?;
        Ok(())
    }

    /// Whether a sale at `at` counts.
    pub fn open_at(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at && at < self.ends_at
    }
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

    fn jincheng() -> TicketRule {
        TicketRule {
            max_sale_ratio_bp: bp(8000),
            province: None,
            city_rate_bp: bp(2000),
            city_per_ticket_cap: None,
        }
    }

    #[test]
    fn a_ticket_listed_at_100_sold_at_80_gets_16_from_the_city() {
        let t = jincheng().per_ticket(fen(100_00), fen(80_00));
        assert!(t.eligible);
        assert_eq!((t.province, t.city), (Fen::ZERO, fen(16_00)));
    }

    #[test]
    fn sold_at_81_it_gets_nothing() {
        let t = jincheng().per_ticket(fen(100_00), fen(81_00));
        assert!(!t.eligible);
        assert_eq!((t.province, t.city), (Fen::ZERO, Fen::ZERO));
        // One fen above 80% of 99.99 yuan (79.992) does not qualify; 79.99 does.
        assert!(jincheng().qualifies(fen(99_99), fen(79_99)));
        assert!(!jincheng().qualifies(fen(99_99), fen(80_00)));
    }

    #[test]
    fn the_parts_never_exceed_the_sale_price() {
        let rule = TicketRule {
            province: Some(ProvincePart {
                basis: ProvinceBasis::ListPrice,
                rate_bp: bp(9000),
                per_ticket_cap: None,
            }),
            ..jincheng()
        };
        let t = rule.per_ticket(fen(100_00), fen(50_00));
        assert_eq!((t.province, t.city), (fen(50_00), Fen::ZERO));
    }
}

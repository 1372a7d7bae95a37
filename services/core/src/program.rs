//! A program: the funding rule behind one or more campaigns — the province's ratio of each
//! city's actual spending, the provincial pool, optional per-city allocations and county
//! co-funding, and what a refund does to the voucher.

use crate::ids::ProgramId;
use crate::money::{BasisPoints, Fen};
use crate::place::PlaceCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a reversed redemption (退货) does to the voucher (POLICY rule 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundPolicy {
    /// The voucher becomes usable again if still valid; an entitlement's cap is restored.
    Restore,
    /// The voucher stays spent; only the spending figure is corrected.
    Forfeit,
}

/// A program as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// Assigned by the database.
    pub id: ProgramId,
    /// The spec it was created from.
    #[serde(flatten)]
    pub spec: NewProgram,
}

/// What an administrator submits to create a program. Parse with [`NewProgram::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProgram {
    /// Human name, e.g. "家居惠民 2025".
    pub name: String,
    /// The province (or other funder) that owns the pool, e.g. 140000.
    pub funder_place: PlaceCode,
    /// The province's share of each city's actual spending, e.g. 5000 = 50%.
    pub province_ratio_bp: BasisPoints,
    /// The provincial pool, e.g. 20,000,000,000 fen = 200 million yuan.
    pub pool: Fen,
    /// Optional cap per city on what the province reimburses it.
    #[serde(default)]
    pub city_allocations: BTreeMap<PlaceCode, Fen>,
    /// Optional county co-funding: the county's share of the city part, in basis points.
    #[serde(default)]
    pub county_cofund_bp: Option<BasisPoints>,
    /// What a refund does to the voucher.
    pub refund_policy: RefundPolicy,
}

/// A program that cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidProgram {
    /// Name empty or longer than 200 characters.
    #[error("name must be 1-200 characters")]
    Name,
    /// The funder must be a province-level place.
    #[error("funder_place must be a province code such as 140000")]
    FunderNotProvince,
    /// A city allocation names a place outside the funder or not a city.
    #[error("city allocation for {0} is not a city of the funder's province")]
    AllocationPlace(PlaceCode),
    /// Allocations add up to more than the pool.
    #[error("city allocations add up to more than the pool")]
    AllocationsExceedPool,
}

impl NewProgram {
    /// Checks the spec.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), InvalidProgram> {
        use crate::place::PlaceLevel;
        let len = self.name.trim().chars().count();
        if len == 0 || len > 200 {
            return Err(InvalidProgram::Name);
        }
        if self.funder_place.level() != PlaceLevel::Province {
            return Err(InvalidProgram::FunderNotProvince);
        }
        let mut total = Fen::ZERO;
        for (place, amount) in &self.city_allocations {
            if place.level() != PlaceLevel::City || !self.funder_place.covers(*place) {
                return Err(InvalidProgram::AllocationPlace(*place));
            }
            total = total
                .checked_add(*amount)
                .ok_or(InvalidProgram::AllocationsExceedPool)?;
        }
        if total > self.pool {
            return Err(InvalidProgram::AllocationsExceedPool);
        }
        Ok(())
    }
}

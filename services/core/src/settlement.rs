//! Settlement arithmetic (结算): how one period's actual spending of a program is split between
//! the province, the cities and (where configured) the counties, to the fen (POLICY rules 7–9,
//! invariant I6). Pure functions, no I/O: the reconciliation job aggregates the records and
//! calls [`split_program_period`] and [`split_local_share`].
//!
//! ## Signed amounts
//! [`Fen`] is non-negative, but a period's actual spending S of a city is *signed*: a reversal
//! (退货) counts in the period it happens, so a period with more reversed than granted has
//! S < 0. Every signed amount here is a plain `i64` of fen whose name ends in `_fen`, and every
//! product is computed in `i128` so that no realistic amount overflows; conversions back to
//! `i64` are checked ([`SettlementError::Overflow`]).
//!
//! ## The rules
//! For each city of a program in one period, with the program's ratio r (basis points):
//! - **S ≥ 0**: the city's claim is `min(⌊S × r⌋, allocation remaining)`; allocation remaining
//!   is the city's allocation minus what the province paid it so far (no allocation = no cap).
//!   When the claims of all cities exceed what remains of the pool, the pool remaining is
//!   divided in proportion to the claims, to the fen, by largest remainder; ties go to the
//!   lower place code. So P ≤ claim ≤ ⌊S × r⌋ and Σ P never exceeds the pool.
//! - **S < 0**: P = max(⌊r × S⌋, −paid so far), with ⌊⌋ toward −∞ (the province's favour):
//!   the province is paid back its ratio of the reversed spending, into the pool and back to
//!   the city's allocation, but never more than it had paid the city (cumulative P ≥ 0).
//!   Paybacks are counted before the claims of the same period, so a payback can fund another
//!   city's claim in that period.
//! - The local share is `S − P` (city, and county where configured): every fen is accounted for.

use crate::money::{BasisPoints, Fen};
use crate::place::PlaceCode;
use serde::{Deserialize, Serialize};

/// Settlement input that makes no sense, or arithmetic that does not fit in an `i64`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettlementError {
    /// A city appears twice in one program period.
    #[error("city {0} appears twice in one program period")]
    DuplicateCity(PlaceCode),
    /// What the province paid a city so far cannot be negative.
    #[error("cumulative province share of city {0} is negative ({1} fen)")]
    NegativePaidToDate(PlaceCode, i64),
    /// An amount does not fit in 64 bits.
    #[error("settlement amount overflow")]
    Overflow,
}

/// One city's figures for one program and period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CityPeriod {
    /// The city (市).
    pub city: PlaceCode,
    /// Actual spending S: discounts redeemed − discounts reversed in the period (may be < 0).
    pub spending_fen: i64,
    /// The city's allocation of the provincial pool, if the program caps it.
    pub allocation: Option<Fen>,
    /// What the province has paid this city in earlier periods (cumulative P, ≥ 0).
    pub paid_to_date_fen: i64,
}

/// One program's period: its ratio, what remains of its pool, and its cities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramPeriod {
    /// The province's share of actual spending (5000 = 50%).
    pub ratio: BasisPoints,
    /// The pool minus everything paid from it so far (paybacks included).
    pub pool_remaining: Fen,
    /// The cities with spending in the period (any order; each at most once).
    pub cities: Vec<CityPeriod>,
}

/// What bounded a city's province share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// ⌊S × ratio⌋ in full (or nothing to pay).
    Ratio,
    /// What remained of the city's allocation.
    Allocation,
    /// The pool ran short: a pro-rata part of what remained.
    Pool,
    /// S < 0: the province was paid back ⌊ratio × S⌋.
    Payback,
    /// S < 0: the payback stopped at what the province had paid the city so far.
    PaybackCapped,
}

impl Limit {
    /// A stable name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Ratio => "ratio",
            Limit::Allocation => "allocation",
            Limit::Pool => "pool",
            Limit::Payback => "payback",
            Limit::PaybackCapped => "payback_capped",
        }
    }
}

/// One city's split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitySplit {
    /// The city.
    pub city: PlaceCode,
    /// Actual spending S (signed).
    pub spending_fen: i64,
    /// S ≥ 0: `min(⌊S × r⌋, allocation remaining)`, before the pool; S < 0: equals P.
    pub claim_fen: i64,
    /// Province share P (negative = paid back to the pool).
    pub province_fen: i64,
    /// Local share S − P (city plus counties).
    pub local_fen: i64,
    /// What bounded P.
    pub limit: Limit,
}

/// The split of one program period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramSplit {
    /// Per city, ordered by place code.
    pub cities: Vec<CitySplit>,
    /// The pool remaining after the period (input pool − Σ P).
    pub pool_remaining_after: Fen,
}

fn to_i64(v: i128) -> Result<i64, SettlementError> {
    i64::try_from(v).map_err(|_| SettlementError::Overflow)
}

/// `⌊amount × bp / 10000⌋` rounded toward −∞ (for negative amounts too).
///
/// # Errors
/// [`SettlementError::Overflow`] (not for any amount that fits an `i64`: the result is
/// smaller in magnitude than `amount`).
pub fn mul_bp_floor_signed(amount_fen: i64, bp: BasisPoints) -> Result<i64, SettlementError> {
    to_i64((i128::from(amount_fen) * i128::from(bp.get())).div_euclid(10_000))
}

/// Splits one program's period between the province and each city (module docs give the
/// rules). Deterministic: the result depends only on the input set, not its order.
///
/// # Errors
/// A city twice, a negative cumulative share, or overflow.
pub fn split_program_period(period: &ProgramPeriod) -> Result<ProgramSplit, SettlementError> {
    let mut cities = period.cities.clone();
    cities.sort_by_key(|c| c.city);
    for pair in cities.windows(2) {
        if pair[0].city == pair[1].city {
            return Err(SettlementError::DuplicateCity(pair[0].city));
        }
    }
    let mut out = Vec::with_capacity(cities.len());
    // Paybacks first: they refill the pool for this period's claims.
    let mut available = i128::from(period.pool_remaining.as_i64());
    for c in &cities {
        if c.paid_to_date_fen < 0 {
            return Err(SettlementError::NegativePaidToDate(
                c.city,
                c.paid_to_date_fen,
            ));
        }
        if c.spending_fen < 0 {
            let due = mul_bp_floor_signed(c.spending_fen, period.ratio)?;
            let (province, limit) = if due < -c.paid_to_date_fen {
                (-c.paid_to_date_fen, Limit::PaybackCapped)
            } else {
                (due, Limit::Payback)
            };
            available -= i128::from(province);
            out.push(CitySplit {
                city: c.city,
                spending_fen: c.spending_fen,
                claim_fen: province,
                province_fen: province,
                local_fen: to_i64(i128::from(c.spending_fen) - i128::from(province))?,
                limit,
            });
        } else {
            let full = mul_bp_floor_signed(c.spending_fen, period.ratio)?;
            let (claim, limit) = match c.allocation {
                Some(a) => {
                    let remaining = (a.as_i64() - c.paid_to_date_fen).max(0);
                    if remaining < full {
                        (remaining, Limit::Allocation)
                    } else {
                        (full, Limit::Ratio)
                    }
                }
                None => (full, Limit::Ratio),
            };
            out.push(CitySplit {
                city: c.city,
                spending_fen: c.spending_fen,
                claim_fen: claim,
                province_fen: claim,
                local_fen: 0,
                limit,
            });
        }
    }
    let claims: i128 = out
        .iter()
        .filter(|c| c.spending_fen >= 0)
        .map(|c| i128::from(c.claim_fen))
        .sum();
    if claims > available {
        prorate(&mut out, available, claims)?;
    }
    let mut paid = 0i128;
    for c in &mut out {
        if c.spending_fen >= 0 {
            c.local_fen = to_i64(i128::from(c.spending_fen) - i128::from(c.province_fen))?;
        }
        paid += i128::from(c.province_fen);
    }
    let after = to_i64(i128::from(period.pool_remaining.as_i64()) - paid)?;
    Ok(ProgramSplit {
        cities: out,
        pool_remaining_after: Fen::try_from(after).map_err(|_| SettlementError::Overflow)?,
    })
}

/// Divides `available` (< `claims`) among the positive claims in proportion, by largest
/// remainder: each gets `⌊available × claim / claims⌋`, and the fen left over go one each
/// to the largest remainders, ties to the lower place code (`out` is sorted by city).
fn prorate(out: &mut [CitySplit], available: i128, claims: i128) -> Result<(), SettlementError> {
    let available = available.max(0);
    let mut given = 0i128;
    let mut remainders: Vec<(i128, usize)> = Vec::new();
    for (i, c) in out.iter_mut().enumerate() {
        if c.spending_fen < 0 {
            continue;
        }
        let numerator = available * i128::from(c.claim_fen);
        let share = numerator / claims;
        remainders.push((numerator % claims, i));
        given += share;
        c.province_fen = to_i64(share)?;
        c.limit = Limit::Pool;
    }
    // Descending remainder, then ascending index (= ascending place code).
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = usize::try_from(available - given).map_err(|_| SettlementError::Overflow)?;
    for &(_, i) in remainders.iter().take(left) {
        out[i].province_fen += 1;
    }
    Ok(())
}

/// The split of a city's local share (S − P) between the city and its co-funding counties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalSplit {
    /// What the city pays (the remainder).
    pub city_fen: i64,
    /// What each county pays, ordered by place code.
    pub counties: Vec<(PlaceCode, i64)>,
}

/// County co-funding (县级配套): splits a city's local share `local_fen` for the spending of
/// county-issued campaigns. County k, whose campaigns account for `S_k` of the city's
/// spending `S`, pays `cofund × local × S_k / S` truncated toward zero; the city pays the
/// rest, so `city + Σ county = local` exactly. Without co-funding (`None`), or when S = 0,
/// the city pays everything.
///
/// # Errors
/// [`SettlementError::Overflow`].
pub fn split_local_share(
    local_fen: i64,
    city_spending_fen: i64,
    county_spending: &[(PlaceCode, i64)],
    cofund: Option<BasisPoints>,
) -> Result<LocalSplit, SettlementError> {
    let mut counties: Vec<(PlaceCode, i64)> = county_spending.to_vec();
    counties.sort_by_key(|c| c.0);
    let mut total = 0i128;
    for (_, share) in &mut counties {
        let s_k = *share;
        *share = match cofund {
            Some(bp) if city_spending_fen != 0 => to_i64(
                i128::from(local_fen) * i128::from(s_k) * i128::from(bp.get())
                    / (i128::from(city_spending_fen) * 10_000),
            )?,
            _ => 0,
        };
        total += i128::from(*share);
    }
    Ok(LocalSplit {
        city_fen: to_i64(i128::from(local_fen) - total)?,
        counties,
    })
}

/// A merchant's payable for a period (POLICY rule 8): the full discounts it granted minus
/// the discounts reversed, whatever the split between province and city. May be negative
/// when a period has more reversed than granted (set off against the next payment).
///
/// # Errors
/// [`SettlementError::Overflow`].
pub fn merchant_payable(granted_fen: i64, reversed_fen: i64) -> Result<i64, SettlementError> {
    granted_fen
        .checked_sub(reversed_fen)
        .ok_or(SettlementError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(code: u32) -> PlaceCode {
        PlaceCode::try_from(code).unwrap_or_else(|e| panic!("{e}"))
    }

    fn bp(v: u32) -> BasisPoints {
        BasisPoints::try_from(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn fen(v: i64) -> Fen {
        Fen::try_from(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn city(code: u32, s: i64, alloc: Option<i64>, paid: i64) -> CityPeriod {
        CityPeriod {
            city: place(code),
            spending_fen: s,
            allocation: alloc.map(fen),
            paid_to_date_fen: paid,
        }
    }

    #[test]
    fn half_of_odd_spending_rounds_down_in_the_provinces_favour() {
        let out = split_program_period(&ProgramPeriod {
            ratio: bp(5000),
            pool_remaining: fen(1_000_000),
            cities: vec![city(140_500, 12_345, None, 0)],
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.cities[0].province_fen, 6_172);
        assert_eq!(out.cities[0].local_fen, 6_173);
        assert_eq!(out.pool_remaining_after, fen(1_000_000 - 6_172));
    }

    #[test]
    fn a_short_pool_is_shared_by_largest_remainder_ties_to_the_lower_code() {
        // Claims 50, 50, 50 for a pool of 100: 33 each, and the 1 fen left to the lowest code.
        let out = split_program_period(&ProgramPeriod {
            ratio: bp(5000),
            pool_remaining: fen(100),
            cities: vec![
                city(140_700, 100, None, 0),
                city(140_100, 100, None, 0),
                city(140_500, 100, None, 0),
            ],
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let p: Vec<i64> = out.cities.iter().map(|c| c.province_fen).collect();
        assert_eq!(p, vec![34, 33, 33]);
        assert_eq!(out.pool_remaining_after, Fen::ZERO);
        assert!(out.cities.iter().all(|c| c.limit == Limit::Pool));
    }

    #[test]
    fn negative_spending_pays_back_but_never_below_zero_cumulatively() {
        let out = split_program_period(&ProgramPeriod {
            ratio: bp(5000),
            pool_remaining: fen(0),
            cities: vec![
                city(140_500, -301, None, 1_000),
                city(140_100, -5_001, None, 100),
            ],
        })
        .unwrap_or_else(|e| panic!("{e}"));
        // ⌊0.5 × −301⌋ = −151 (toward −∞); Taiyuan would owe −2501 but was paid only 100.
        assert_eq!(out.cities[1].province_fen, -151);
        assert_eq!(out.cities[1].local_fen, -150);
        assert_eq!(out.cities[0].province_fen, -100);
        assert_eq!(out.cities[0].limit, Limit::PaybackCapped);
        assert_eq!(out.pool_remaining_after, fen(251));
    }

    #[test]
    fn county_cofunding_splits_the_local_share_exactly() {
        let local = split_local_share(1_001, 2_000, &[(place(140_522), 1_000)], Some(bp(3333)))
            .unwrap_or_else(|e| panic!("{e}"));
        // 1001 × 1000/2000 × 0.3333 = 166.8 → 166; the city pays the rest.
        assert_eq!(local.counties, vec![(place(140_522), 166)]);
        assert_eq!(local.city_fen, 835);
    }
}

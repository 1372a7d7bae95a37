//! Property tests of the settlement arithmetic (invariant I6): over random redemptions,
//! reversals (in the same or a later period), ratios, pools, allocations and county
//! co-funding, settled period after period, every fen is accounted for and no bound is
//! broken.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use std::collections::BTreeMap;
use voucher_core::settlement::{
    merchant_payable, split_local_share, split_program_period, CityPeriod, ProgramPeriod,
};
use voucher_core::{BasisPoints, Fen, PlaceCode};

const CITIES: [u32; 4] = [140_100, 140_200, 140_500, 140_700];
const PERIODS: usize = 3;

/// One redemption: where, at which merchant, its discount, in which period, and the part
/// reversed later (in `reversal_period` ≥ its period).
#[derive(Debug, Clone)]
struct Redemption {
    city: usize,
    county: Option<u32>,
    merchant: usize,
    discount: i64,
    period: usize,
    reversed: i64,
    reversal_period: usize,
}

fn redemption() -> impl Strategy<Value = Redemption> {
    (
        0..CITIES.len(),
        prop::option::of(1u32..=3),
        0usize..6,
        0i64..50_000,
        0..PERIODS,
        0u32..=100,
        0..PERIODS,
    )
        .prop_map(
            |(city, county, merchant, discount, period, pct, later)| Redemption {
                city,
                county,
                merchant,
                discount,
                period,
                // Odd fen on purpose: a percentage of an odd amount, rounded down.
                reversed: if pct > 60 {
                    discount * i64::from(pct - 60) / 40
                } else {
                    0
                },
                reversal_period: period.max(later),
            },
        )
}

#[derive(Debug, Clone)]
struct Scenario {
    ratio: u32,
    pool: i64,
    allocations: Vec<Option<i64>>,
    cofund: Option<u32>,
    redemptions: Vec<Redemption>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![Just(5000u32), 0u32..=10_000],
        prop_oneof![0i64..200_000, 0i64..5_000_000],
        prop::collection::vec(prop::option::of(0i64..300_000), CITIES.len()),
        prop::option::of(0u32..=10_000),
        prop::collection::vec(redemption(), 0..60),
    )
        .prop_map(|(ratio, pool, allocations, cofund, redemptions)| Scenario {
            ratio,
            pool,
            allocations,
            cofund,
            redemptions,
        })
}

fn place(code: u32) -> PlaceCode {
    PlaceCode::try_from(code).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_fen_is_accounted_for_and_no_bound_is_broken(s in scenario()) {
        let ratio = BasisPoints::try_from(s.ratio).unwrap();
        let cofund = s.cofund.map(|c| BasisPoints::try_from(c).unwrap());
        let mut paid: BTreeMap<usize, i64> = BTreeMap::new();
        let mut pool_remaining = Fen::try_from(s.pool).unwrap();
        for period in 0..PERIODS {
            // Aggregate the period as the job does: per city (and county), per merchant.
            let mut spending: BTreeMap<usize, i64> = BTreeMap::new();
            let mut county_spending: BTreeMap<(usize, u32), i64> = BTreeMap::new();
            let mut granted: BTreeMap<usize, i64> = BTreeMap::new();
            let mut reversed: BTreeMap<usize, i64> = BTreeMap::new();
            for r in &s.redemptions {
                let mut delta = 0;
                if r.period == period {
                    delta += r.discount;
                    *granted.entry(r.merchant).or_default() += r.discount;
                }
                if r.reversed > 0 && r.reversal_period == period {
                    delta -= r.reversed;
                    *reversed.entry(r.merchant).or_default() += r.reversed;
                }
                if r.period == period || (r.reversed > 0 && r.reversal_period == period) {
                    *spending.entry(r.city).or_default() += delta;
                    if let Some(k) = r.county {
                        *county_spending.entry((r.city, k)).or_default() += delta;
                    }
                }
            }
            let payables: i64 = granted
                .keys()
                .chain(reversed.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|m| {
                    merchant_payable(
                        granted.get(m).copied().unwrap_or(0),
                        reversed.get(m).copied().unwrap_or(0),
                    )
                    .unwrap()
                })
                .sum();
            let cities: Vec<CityPeriod> = spending
                .iter()
                .map(|(&c, &s_fen)| CityPeriod {
                    city: place(CITIES[c]),
                    spending_fen: s_fen,
                    allocation: s.allocations[c].map(|a| Fen::try_from(a).unwrap()),
                    paid_to_date_fen: paid.get(&c).copied().unwrap_or(0),
                })
                .collect();
            let input = ProgramPeriod { ratio, pool_remaining, cities: cities.clone() };
            let split = split_program_period(&input).unwrap();

            // Deterministic whatever the input order.
            let mut reversed_input = input.clone();
            reversed_input.cities.reverse();
            prop_assert_eq!(&split_program_period(&reversed_input).unwrap(), &split);

            let total_s: i64 = spending.values().sum();
            prop_assert_eq!(payables, total_s, "Σ payables = Σ S");
            let mut total_p = 0i64;
            let mut total_city = 0i64;
            let mut total_county = 0i64;
            for c in &split.cities {
                let idx = CITIES.iter().position(|&x| place(x) == c.city).unwrap();
                prop_assert_eq!(c.province_fen + c.local_fen, c.spending_fen);
                if c.spending_fen >= 0 {
                    let full = c.spending_fen * i64::from(s.ratio) / 10_000;
                    prop_assert!(c.province_fen >= 0 && c.province_fen <= full, "0 ≤ P ≤ ⌊S×r⌋");
                } else {
                    prop_assert!(c.province_fen <= 0, "a negative period never pays the city");
                }
                let counties: Vec<(PlaceCode, i64)> = county_spending
                    .iter()
                    .filter(|((ci, _), _)| *ci == idx)
                    .map(|((_, k), &v)| (place(CITIES[idx] + k), v))
                    .collect();
                let local =
                    split_local_share(c.local_fen, c.spending_fen, &counties, cofund).unwrap();
                let county_sum: i64 = local.counties.iter().map(|k| k.1).sum();
                prop_assert_eq!(local.city_fen + county_sum, c.local_fen);
                total_p += c.province_fen;
                total_city += local.city_fen;
                total_county += county_sum;
                let cumulative = paid.entry(idx).or_default();
                *cumulative += c.province_fen;
                prop_assert!(*cumulative >= 0, "cumulative P never negative");
                if let Some(a) = s.allocations[idx] {
                    prop_assert!(*cumulative <= a, "allocation respected");
                }
            }
            prop_assert_eq!(total_s, total_p + total_city + total_county, "Σ S = Σ P + Σ city + Σ county");
            let paid_total: i64 = paid.values().sum();
            prop_assert!(paid_total <= s.pool, "Σ P ≤ pool");
            prop_assert_eq!(split.pool_remaining_after.as_i64(), s.pool - paid_total);
            pool_remaining = split.pool_remaining_after;
        }
    }

    #[test]
    fn a_pool_that_suffices_pays_every_claim_in_full(
        spend in prop::collection::vec(0i64..1_000_000, 1..4),
    ) {
        let cities: Vec<CityPeriod> = spend
            .iter()
            .enumerate()
            .map(|(i, &s)| CityPeriod {
                city: place(CITIES[i]),
                spending_fen: s,
                allocation: None,
                paid_to_date_fen: 0,
            })
            .collect();
        let split = split_program_period(&ProgramPeriod {
            ratio: BasisPoints::try_from(5000).unwrap(),
            pool_remaining: Fen::try_from(10_000_000).unwrap(),
            cities,
        })
        .unwrap();
        for (c, s) in split.cities.iter().zip(&spend) {
            prop_assert_eq!(c.province_fen, s / 2);
        }
    }
}

//! The overview: how fast each program's money goes, and where.
//!
//! - **Spent** is the province share settled by runs (exact, from the ledger's batches).
//! - **Committed** is the province share of spending not yet settled: actual spending S of
//!   the days no run of the program covers yet, times the program's province ratio (an
//!   estimate: the run may cap it by the pool or the city's allocation).
//! - **Remaining** is the budget less both: the pool for a province officer, the city's
//!   allocation for a city officer.
//! - **Forecast:** at the pace of the last 7 days ((spent + committed) today less 7 days
//!   ago), the day the remaining budget reaches zero, rounded up, in integer arithmetic.
//!
//! Spending counts as the settlement counts it (see [`crate::aggregate`]): a sale on its
//! day, a captured hold on its capture's day, a reversal on its own day; days are Beijing
//! days. What an officer sees is scoped by place: the settlement's city for cities (the
//! campaign owner's, or the merchant's for a province campaign) and the county (the
//! campaign's county, or for a province campaign the merchant's) for counties.

use super::error::ApiError;
use crate::places;
use chrono::{Days, NaiveDate};
use serde::Serialize;
use sqlx::{PgPool, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use utoipa::ToSchema;
use voucher_core::place::PlaceLevel;
use voucher_core::{AdminRole, PlaceCode};
use voucher_platform::admin::Admin;

/// Spending per program, Beijing day, category, settlement city and narrowest place.
const DAILY_SQL: &str = "
WITH counted AS (
    SELECT r.program_id, r.campaign_id, r.merchant_id, r.discount_fen AS spending, 1 AS n,
           CASE WHEN r.status = 'captured' THEN r.resolved_at ELSE r.created_at END AS at
      FROM redemptions r
     WHERE r.status IN ('approved', 'captured')
    UNION ALL
    SELECT r.program_id, r.campaign_id, r.merchant_id, -v.discount_reversed_fen, 0, v.created_at
      FROM reversals v JOIN redemptions r ON r.id = v.redemption_id
     WHERE r.status IN ('approved', 'captured')
)
SELECT k.program_id,
       ((k.at AT TIME ZONE 'UTC') + interval '8 hours')::date AS day,
       c.category,
       CASE WHEN c.owner_place % 10000 = 0 THEN m.city ELSE c.owner_place / 100 * 100 END AS city,
       CASE WHEN c.owner_place % 10000 <> 0 THEN c.owner_place ELSE coalesce(m.county, m.city) END AS place,
       sum(k.spending)::bigint AS spending, sum(k.n)::bigint AS redemptions
  FROM counted k
  JOIN campaigns c ON c.id = k.campaign_id
  JOIN merchants m ON m.id = k.merchant_id
 WHERE k.at < $1
 GROUP BY 1, 2, 3, 4, 5";

/// The forecast of a budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunOut {
    /// At the current pace the budget runs out on `day`.
    Date {
        /// The day.
        day: NaiveDate,
    },
    /// Nothing remains.
    Exhausted,
    /// Nothing was spent in the last 7 days.
    Idle,
    /// No budget bounds it.
    Uncapped,
}

/// One day of a burn-down.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BurnPoint {
    /// The day.
    pub day: NaiveDate,
    /// Settled by the end of the day, cumulative.
    pub spent_fen: i64,
    /// Not yet settled, cumulative.
    pub committed_fen: i64,
    /// The budget less both (none: uncapped).
    pub remaining_fen: Option<i64>,
}

/// A program's burn-down.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgramBurn {
    /// The program.
    pub program_id: i64,
    /// Its name.
    pub program_name: String,
    /// Province ratio (basis points).
    pub ratio_bp: i32,
    /// `pool`, `allocation` or `none`.
    pub budget_kind: String,
    /// The budget (none: uncapped).
    pub budget_fen: Option<i64>,
    /// Settled province share.
    pub spent_fen: i64,
    /// Estimated province share of unsettled spending.
    pub committed_fen: i64,
    /// The budget less both.
    pub remaining_fen: Option<i64>,
    /// (spent + committed) added per day over the last 7 days, rounded down.
    pub pace_fen_per_day: i64,
    /// When it runs out at that pace.
    pub run_out: RunOut,
    /// One point per day of the window, cumulative.
    pub burn: Vec<BurnPoint>,
}

/// Spending on one day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DaySpending {
    /// The day.
    pub day: NaiveDate,
    /// Actual spending S.
    pub spending_fen: i64,
    /// Redemptions counted.
    pub redemptions: i64,
}

/// Spending of one category over the window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategorySpending {
    /// The category.
    pub category: String,
    /// Its name.
    pub category_name: String,
    /// Actual spending S.
    pub spending_fen: i64,
    /// Redemptions counted.
    pub redemptions: i64,
}

/// A city against its allocation of a program.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CityBudget {
    /// The program.
    pub program_id: i64,
    /// Its name.
    pub program_name: String,
    /// The city.
    pub city: u32,
    /// Its name.
    pub city_name: String,
    /// Its allocation (none: uncapped).
    pub allocation_fen: Option<i64>,
    /// Settled province share.
    pub spent_fen: i64,
    /// Estimated province share of unsettled spending.
    pub committed_fen: i64,
    /// The allocation less both.
    pub remaining_fen: Option<i64>,
}

/// Whose view.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Scope {
    /// `province` or `city`.
    pub role: String,
    /// The place.
    pub place: u32,
    /// Its name.
    pub place_name: String,
}

/// `GET /v1/overview`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Overview {
    /// Today in Beijing.
    pub today: NaiveDate,
    /// Whose view.
    pub scope: Scope,
    /// Per program.
    pub programs: Vec<ProgramBurn>,
    /// Every day of the window, oldest first.
    pub spending_by_day: Vec<DaySpending>,
    /// Per category over the window.
    pub spending_by_category: Vec<CategorySpending>,
    /// Per program and city.
    pub cities: Vec<CityBudget>,
}

/// The categories, in display order, with their names.
pub const CATEGORIES: [(&str, &str); 5] = [
    ("catering", "餐饮"),
    ("lodging", "住宿"),
    ("culture_tourism", "文化旅游"),
    ("home_furnishing", "家居家装"),
    ("general", "综合"),
];

struct Row_ {
    program: i64,
    day: NaiveDate,
    category: String,
    city: i32,
    place: i32,
    spending: i64,
    redemptions: i64,
}

fn code(v: i32) -> Option<PlaceCode> {
    u32::try_from(v)
        .ok()
        .and_then(|c| PlaceCode::try_from(c).ok())
}

/// `floor(s × ratio / 10000)` without overflow.
fn share(spending: i64, ratio_bp: i32) -> i64 {
    let v = i128::from(spending) * i128::from(ratio_bp);
    i64::try_from(v.div_euclid(10_000)).unwrap_or(i64::MAX)
}

/// The forecast for `remaining` at `consumed_7d` over the last 7 days.
fn run_out(today: NaiveDate, remaining: Option<i64>, consumed_7d: i64) -> RunOut {
    let Some(remaining) = remaining else {
        return RunOut::Uncapped;
    };
    if remaining <= 0 {
        return RunOut::Exhausted;
    }
    if consumed_7d <= 0 {
        return RunOut::Idle;
    }
    // ceil(remaining / (consumed_7d / 7)) days, in integers.
    let days = (i128::from(remaining) * 7 + i128::from(consumed_7d) - 1) / i128::from(consumed_7d);
    u64::try_from(days)
        .ok()
        .and_then(|d| today.checked_add_days(Days::new(d)))
        .map_or(RunOut::Idle, |day| RunOut::Date { day })
}

/// The overview for `officer`, of the `days` days ending `today` (Beijing).
///
/// # Errors
/// Database failure.
#[allow(clippy::too_many_lines)]
pub async fn overview(
    pg: &PgPool,
    officer: &Admin,
    today: NaiveDate,
    days: u32,
) -> Result<Overview, ApiError> {
    let first = today
        .checked_sub_days(Days::new(u64::from(days.saturating_sub(1))))
        .unwrap_or(today);
    let window: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= today).collect();
    let end = crate::period::Period::day(today).ends_at();

    let programs: Vec<(i64, String, i32, i64)> =
        sqlx::query("SELECT id, name, province_ratio_bp, pool_fen FROM programs ORDER BY id")
            .fetch_all(pg)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("name")?,
                    r.try_get("province_ratio_bp")?,
                    r.try_get("pool_fen")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?;
    let allocations: HashMap<(i64, i32), i64> =
        sqlx::query("SELECT program_id, city, allocation_fen FROM program_city_allocations")
            .fetch_all(pg)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    (r.try_get("program_id")?, r.try_get("city")?),
                    r.try_get("allocation_fen")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?;
    // Settled days per program, and each batch's province share with its run's last day.
    let mut settled: HashMap<i64, Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
    for r in sqlx::query("SELECT program_id, period_start, period_end FROM settlement_runs")
        .fetch_all(pg)
        .await?
    {
        settled
            .entry(r.try_get("program_id")?)
            .or_default()
            .push((r.try_get("period_start")?, r.try_get("period_end")?));
    }
    let is_settled = |program: i64, day: NaiveDate| {
        settled
            .get(&program)
            .is_some_and(|ps| ps.iter().any(|(s, e)| *s <= day && day <= *e))
    };
    let mut batches: Vec<(i64, i32, NaiveDate, i64)> = Vec::new();
    for r in sqlx::query(
        "SELECT b.program_id, b.city, r.period_end, b.province_fen
           FROM settlement_batches b JOIN settlement_runs r ON r.id = b.run_id",
    )
    .fetch_all(pg)
    .await?
    {
        batches.push((
            r.try_get("program_id")?,
            r.try_get("city")?,
            r.try_get("period_end")?,
            r.try_get("province_fen")?,
        ));
    }
    let mut rows = Vec::new();
    for r in sqlx::query(DAILY_SQL).bind(end).fetch_all(pg).await? {
        rows.push(Row_ {
            program: r.try_get("program_id")?,
            day: r.try_get("day")?,
            category: r.try_get("category")?,
            city: r.try_get("city")?,
            place: r.try_get("place")?,
            spending: r.try_get("spending")?,
            redemptions: r.try_get("redemptions")?,
        });
    }

    let level = officer.place.level();
    let province = officer.role == AdminRole::Province && level == PlaceLevel::Province;
    let sees_city = |city: i32| {
        level != PlaceLevel::County && code(city).is_some_and(|c| officer.can_manage(c))
    };
    let visible: Vec<&Row_> = rows
        .iter()
        .filter(|r| code(r.place).is_some_and(|p| officer.can_manage(p)))
        .collect();

    // Spending of the window, by day and by category.
    let mut by_day: BTreeMap<NaiveDate, (i64, i64)> = window.iter().map(|d| (*d, (0, 0))).collect();
    let mut by_category: HashMap<&str, (i64, i64)> = HashMap::new();
    for r in &visible {
        if let Some(e) = by_day.get_mut(&r.day) {
            e.0 += r.spending;
            e.1 += r.redemptions;
            let c = by_category.entry(r.category.as_str()).or_default();
            c.0 += r.spending;
            c.1 += r.redemptions;
        }
    }

    let mut out_programs = Vec::new();
    let mut cities = Vec::new();
    for (program, name, ratio, pool) in &programs {
        // Unsettled spending S per day, and per city, of what the officer sees.
        let mut unsettled_by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        let mut settled_by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        let mut unsettled_by_city: BTreeMap<i32, i64> = BTreeMap::new();
        let mut active = false;
        for r in visible.iter().filter(|r| r.program == *program) {
            active = true;
            if is_settled(*program, r.day) {
                *settled_by_day.entry(r.day).or_default() += r.spending;
            } else {
                *unsettled_by_day.entry(r.day).or_default() += r.spending;
                *unsettled_by_city.entry(r.city).or_default() += r.spending;
            }
        }
        // Settled province share per run's last day, of the batches the officer sees.
        let mut spent_by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        let mut spent_by_city: BTreeMap<i32, i64> = BTreeMap::new();
        for (p, city, end_day, fen) in &batches {
            if p == program && sees_city(*city) {
                *spent_by_day.entry(*end_day).or_default() += fen;
                *spent_by_city.entry(*city).or_default() += fen;
                active = true;
            }
        }
        let (budget_kind, budget) = if province {
            ("pool", Some(*pool))
        } else if level == PlaceLevel::City {
            let city = i32::try_from(officer.place.get()).unwrap_or(0);
            match allocations.get(&(*program, city)) {
                Some(a) => {
                    active = true;
                    ("allocation", Some(*a))
                }
                None => ("none", None),
            }
        } else {
            ("none", None)
        };
        if !province && !active {
            continue;
        }
        // A county has no settled share of its own: its settled spending at the ratio.
        let county = level == PlaceLevel::County;
        let spent_until = |day: NaiveDate| -> i64 {
            if county {
                share(settled_by_day.range(..=day).map(|(_, v)| v).sum(), *ratio)
            } else {
                spent_by_day.range(..=day).map(|(_, v)| v).sum()
            }
        };
        let committed_until =
            |day: NaiveDate| share(unsettled_by_day.range(..=day).map(|(_, v)| v).sum(), *ratio);
        let spent = spent_until(NaiveDate::MAX);
        let committed = committed_until(NaiveDate::MAX);
        let remaining = budget.map(|b| b - spent - committed);
        let week_ago = today.checked_sub_days(Days::new(7)).unwrap_or(today);
        let consumed_7d = spent_until(today) + committed_until(today)
            - spent_until(week_ago)
            - committed_until(week_ago);
        let burn = window
            .iter()
            .map(|d| {
                let (s, c) = (spent_until(*d), committed_until(*d));
                BurnPoint {
                    day: *d,
                    spent_fen: s,
                    committed_fen: c,
                    remaining_fen: budget.map(|b| b - s - c),
                }
            })
            .collect();
        out_programs.push(ProgramBurn {
            program_id: *program,
            program_name: name.clone(),
            ratio_bp: *ratio,
            budget_kind: budget_kind.to_owned(),
            budget_fen: budget,
            spent_fen: spent,
            committed_fen: committed,
            remaining_fen: remaining,
            pace_fen_per_day: consumed_7d.max(0) / 7,
            run_out: run_out(today, remaining, consumed_7d),
            burn,
        });
        // Each city against its allocation.
        let mut city_set: BTreeSet<i32> = spent_by_city.keys().copied().collect();
        city_set.extend(unsettled_by_city.keys().copied());
        city_set.extend(
            allocations
                .keys()
                .filter(|(p, _)| p == program)
                .map(|(_, c)| *c),
        );
        for city in city_set.into_iter().filter(|c| sees_city(*c)) {
            let Some(place) = code(city) else { continue };
            let allocation = allocations.get(&(*program, city)).copied();
            let spent = spent_by_city.get(&city).copied().unwrap_or(0);
            let committed = share(unsettled_by_city.get(&city).copied().unwrap_or(0), *ratio);
            cities.push(CityBudget {
                program_id: *program,
                program_name: name.clone(),
                city: place.get(),
                city_name: places::name(place),
                allocation_fen: allocation,
                spent_fen: spent,
                committed_fen: committed,
                remaining_fen: allocation.map(|a| a - spent - committed),
            });
        }
    }

    Ok(Overview {
        today,
        scope: Scope {
            role: officer.role.as_str().to_owned(),
            place: officer.place.get(),
            place_name: places::name(officer.place),
        },
        programs: out_programs,
        spending_by_day: by_day
            .into_iter()
            .map(|(day, (spending_fen, redemptions))| DaySpending {
                day,
                spending_fen,
                redemptions,
            })
            .collect(),
        spending_by_category: CATEGORIES
            .iter()
            .map(|(category, name)| {
                let (spending_fen, redemptions) =
                    by_category.get(category).copied().unwrap_or_default();
                CategorySpending {
                    category: (*category).to_owned(),
                    category_name: (*name).to_owned(),
                    spending_fen,
                    redemptions,
                }
            })
            .collect(),
        cities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn shares_round_down_in_integers() {
        assert_eq!(share(333, 5000), 166);
        assert_eq!(share(-333, 5000), -167);
        assert_eq!(share(i64::MAX, 10_000), i64::MAX);
    }

    #[test]
    fn the_pool_runs_out_on_the_day_the_pace_reaches_it() {
        let today = d("2026-12-01");
        // 700 fen a week is 100 a day: 250 left lasts 2.5 days, so it runs out on the 3rd day.
        assert_eq!(
            run_out(today, Some(250), 700),
            RunOut::Date {
                day: d("2026-12-04")
            }
        );
        assert_eq!(
            run_out(today, Some(700), 700),
            RunOut::Date {
                day: d("2026-12-08")
            }
        );
        assert_eq!(run_out(today, Some(0), 700), RunOut::Exhausted);
        assert_eq!(run_out(today, Some(-5), 700), RunOut::Exhausted);
        assert_eq!(run_out(today, Some(100), 0), RunOut::Idle);
        assert_eq!(run_out(today, None, 700), RunOut::Uncapped);
    }
}

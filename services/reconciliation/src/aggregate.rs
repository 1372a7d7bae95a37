//! Reading a period in SQL: the database groups the redemption and reversal records per
//! program, city, county and merchant, and the job reads only the groups, as a stream, so
//! memory grows with the number of merchants, not of redemptions.
//!
//! What counts, and when (POLICY rules 7–9):
//! - a one-step sale (`approved`) counts at its `created_at`;
//! - a hold counts only once captured, at its `resolved_at` (the capture is the sale; a hold
//!   that is voided or expires never counts);
//! - a reversal counts at its own `created_at`, in whatever period that falls, against the
//!   redemption's program, city and merchant, and only if that redemption counted.
//!
//! The city is the one of the campaign's owner place (a county's campaign belongs to its
//! city, and the county is kept for co-funding); for a campaign the province owns, the
//! merchant's city.
//!
//! The other schemes' subsidies (car trade-in approvals, scenic-ticket subsidies, green
//! top-ups: `subsidy_lines`) count at their `counted_at`, in the city and county the line
//! names, grouped by kind and payee (a merchant or a resident): each is settled as its own
//! line beside the merchants' redemption lines.

use crate::error::ReconError;
use crate::period::Period;
use futures::TryStreamExt;
use sqlx::{PgConnection, Row};
use std::collections::BTreeMap;
use voucher_core::PlaceCode;

/// One merchant's figures in one city of one program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantAgg {
    /// The merchant's name at settlement time.
    pub name: String,
    /// Discounts granted (fen).
    pub granted_fen: i64,
    /// Discounts reversed (fen).
    pub reversed_fen: i64,
    /// Redemptions counted.
    pub redemptions: i64,
    /// Reversals counted.
    pub reversals: i64,
}

/// Who a subsidy line pays.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Payee {
    /// A merchant (by id).
    Merchant(String),
    /// A resident (by person id).
    Resident(String),
}

impl Payee {
    /// `merchant` or `resident`.
    pub fn kind(&self) -> &'static str {
        match self {
            Payee::Merchant(_) => "merchant",
            Payee::Resident(_) => "resident",
        }
    }

    /// The merchant's or the person's id.
    pub fn id(&self) -> &str {
        match self {
            Payee::Merchant(id) | Payee::Resident(id) => id,
        }
    }
}

/// One kind of subsidy to one payee in one city of one program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineAgg {
    /// The payee's name (a merchant's name; empty for a resident).
    pub name: String,
    /// Granted.
    pub granted_fen: i64,
    /// Given back.
    pub reversed_fen: i64,
    /// Rows counted.
    pub lines: i64,
}

/// One city's figures in one program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CityAgg {
    /// Discounts granted.
    pub granted_fen: i64,
    /// Discounts reversed.
    pub reversed_fen: i64,
    /// Redemptions counted.
    pub redemptions: i64,
    /// Reversals counted.
    pub reversals: i64,
    /// Spending (granted − reversed) of county-issued campaigns, per county.
    pub counties: BTreeMap<PlaceCode, i64>,
    /// Per merchant (redemptions).
    pub merchants: BTreeMap<String, MerchantAgg>,
    /// The other schemes' subsidies, per (kind, payee).
    pub lines: BTreeMap<(String, Payee), LineAgg>,
}

impl CityAgg {
    /// Actual spending S = granted − reversed.
    pub fn spending_fen(&self) -> i64 {
        self.granted_fen - self.reversed_fen
    }
}

/// Program id → city → figures.
pub type PeriodAgg = BTreeMap<i64, BTreeMap<PlaceCode, CityAgg>>;

/// The grouping query. `$1`/`$2` bound the period `[starts_at, ends_at)`.
const AGGREGATE_SQL: &str = "
WITH counted AS (
    SELECT r.program_id, r.campaign_id, r.merchant_id,
           r.discount_fen AS granted, 0::bigint AS reversed, 1 AS n_red, 0 AS n_rev
      FROM redemptions r
     WHERE r.status = 'approved' AND r.created_at >= $1 AND r.created_at < $2
    UNION ALL
    SELECT r.program_id, r.campaign_id, r.merchant_id, r.discount_fen, 0, 1, 0
      FROM redemptions r
     WHERE r.status = 'captured' AND r.resolved_at >= $1 AND r.resolved_at < $2
    UNION ALL
    SELECT r.program_id, r.campaign_id, r.merchant_id, 0, v.discount_reversed_fen, 0, 1
      FROM reversals v JOIN redemptions r ON r.id = v.redemption_id
     WHERE v.created_at >= $1 AND v.created_at < $2 AND r.status IN ('approved', 'captured')
), by_campaign AS (
    SELECT program_id, campaign_id, merchant_id,
           sum(granted)::bigint AS granted, sum(reversed)::bigint AS reversed,
           sum(n_red)::bigint AS n_red, sum(n_rev)::bigint AS n_rev
      FROM counted
     GROUP BY program_id, campaign_id, merchant_id
)
SELECT b.program_id,
       CASE WHEN c.owner_place % 10000 = 0 THEN m.city ELSE c.owner_place / 100 * 100 END AS city,
       CASE WHEN c.owner_place % 100 <> 0 THEN c.owner_place END AS county,
       b.merchant_id, m.name AS merchant_name,
       sum(b.granted)::bigint AS granted, sum(b.reversed)::bigint AS reversed,
       sum(b.n_red)::bigint AS n_red, sum(b.n_rev)::bigint AS n_rev
  FROM by_campaign b
  JOIN campaigns c ON c.id = b.campaign_id
  JOIN merchants m ON m.id = b.merchant_id
 GROUP BY 1, 2, 3, 4, 5
 ORDER BY 1, 2, 3, 4";

/// The other schemes' subsidy lines of the period, grouped. `$1`/`$2` bound the period.
const LINES_SQL: &str = "
SELECT s.program_id, s.city, s.county, s.kind, s.payee_kind,
       coalesce(s.merchant_id, s.person_id) AS payee_id, coalesce(m.name, '') AS payee_name,
       coalesce(sum(s.amount_fen) FILTER (WHERE s.amount_fen > 0), 0)::bigint AS granted,
       coalesce(-sum(s.amount_fen) FILTER (WHERE s.amount_fen < 0), 0)::bigint AS reversed,
       count(*)::bigint AS n
  FROM subsidy_lines s LEFT JOIN merchants m ON m.id = s.merchant_id
 WHERE s.counted_at >= $1 AND s.counted_at < $2
 GROUP BY 1, 2, 3, 4, 5, 6, 7
 ORDER BY 1, 2, 3, 4, 5, 6";

fn place(code: i32, what: &str) -> Result<PlaceCode, ReconError> {
    u32::try_from(code)
        .ok()
        .and_then(|c| PlaceCode::try_from(c).ok())
        .ok_or_else(|| ReconError::Corrupt(format!("{what} {code} is not a place code")))
}

/// Aggregates `period` for every program (those not in `skip`).
///
/// # Errors
/// Database failure; a stored place code that is not one.
#[tracing::instrument(name = "reconciliation.aggregate", skip_all, err(level = "debug"))]
pub async fn aggregate(
    con: &mut PgConnection,
    period: &Period,
    skip: &[i64],
) -> Result<PeriodAgg, ReconError> {
    let mut out = PeriodAgg::new();
    let mut rows = sqlx::query(AGGREGATE_SQL)
        .bind(period.starts_at())
        .bind(period.ends_at())
        .fetch(&mut *con);
    while let Some(row) = rows.try_next().await? {
        let program: i64 = row.try_get("program_id")?;
        if skip.contains(&program) {
            continue;
        }
        let city = place(row.try_get("city")?, "city")?;
        let county: Option<i32> = row.try_get("county")?;
        let merchant: String = row.try_get("merchant_id")?;
        let granted: i64 = row.try_get("granted")?;
        let reversed: i64 = row.try_get("reversed")?;
        let n_red: i64 = row.try_get("n_red")?;
        let n_rev: i64 = row.try_get("n_rev")?;
        let agg = out.entry(program).or_default().entry(city).or_default();
        agg.granted_fen += granted;
        agg.reversed_fen += reversed;
        agg.redemptions += n_red;
        agg.reversals += n_rev;
        if let Some(county) = county {
            *agg.counties.entry(place(county, "county")?).or_default() += granted - reversed;
        }
        let m = agg.merchants.entry(merchant).or_default();
        m.name = row.try_get("merchant_name")?;
        m.granted_fen += granted;
        m.reversed_fen += reversed;
        m.redemptions += n_red;
        m.reversals += n_rev;
    }
    drop(rows);
    let mut rows = sqlx::query(LINES_SQL)
        .bind(period.starts_at())
        .bind(period.ends_at())
        .fetch(&mut *con);
    while let Some(row) = rows.try_next().await? {
        let program: i64 = row.try_get("program_id")?;
        if skip.contains(&program) {
            continue;
        }
        let city = place(row.try_get("city")?, "city")?;
        let county: Option<i32> = row.try_get("county")?;
        let granted: i64 = row.try_get("granted")?;
        let reversed: i64 = row.try_get("reversed")?;
        let payee_id: String = row.try_get("payee_id")?;
        let payee = match row.try_get::<String, _>("payee_kind")?.as_str() {
            "resident" => Payee::Resident(payee_id),
            _ => Payee::Merchant(payee_id),
        };
        let agg = out.entry(program).or_default().entry(city).or_default();
        agg.granted_fen += granted;
        agg.reversed_fen += reversed;
        if let Some(county) = county {
            *agg.counties.entry(place(county, "county")?).or_default() += granted - reversed;
        }
        let line = agg.lines.entry((row.try_get("kind")?, payee)).or_default();
        line.name = row.try_get("payee_name")?;
        line.granted_fen += granted;
        line.reversed_fen += reversed;
        line.lines += row.try_get::<i64, _>("n")?;
    }
    Ok(out)
}

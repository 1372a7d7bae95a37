//! Settlement reports, rendered **only from what a run stored** (never from the live
//! records), in a fixed order, with no clock reading: printing a settled period again gives
//! the same bytes.
//!
//! - `cities.csv`: per program and city — spending S, province share, city share, county
//!   share, what bounded the province share, the pool remaining after the run;
//! - `merchants.csv`: per program, city and merchant — granted, reversed, payable, counts;
//! - `programs.csv`: per program — totals and the pool before and after;
//! - `subsidy_lines.csv`: per program, city, kind and payee — the other schemes' subsidies
//!   (car trade-in to residents, scenic tickets, green top-ups), each its own line;
//! - `advances.csv`: per program, city and merchant advanced money — the payable, the
//!   advance outstanding before, drawn down, outstanding after, and the net still to pay
//!   (negative: the merchant owes it back);
//! - `report.json`: all of it, amounts in integer fen;
//! - `summary.txt`: one page for people.
//!
//! The CSV files start with a UTF-8 byte-order mark so that a spreadsheet (Excel) opens the
//! Chinese names correctly; amounts are yuan with two decimals, computed from integer fen.

use crate::auth::Admin;
use crate::error::ReconError;
use crate::money::yuan;
use crate::period::Period;
use crate::places;
use serde::Serialize;
use sqlx::{PgPool, Row};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use voucher_core::PlaceCode;

/// A county's co-funded share in a city.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountyLine {
    /// The county.
    pub county: u32,
    /// Its name.
    pub county_name: String,
    /// Spending of its campaigns.
    pub spending_fen: i64,
    /// What it pays.
    pub county_fen: i64,
}

/// One city of a program (one batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CityLine {
    /// The batch.
    pub batch_id: i64,
    /// The city.
    pub city: u32,
    /// Its name.
    pub city_name: String,
    /// Discounts granted.
    pub granted_fen: i64,
    /// Discounts reversed.
    pub reversed_fen: i64,
    /// Actual spending S.
    pub spending_fen: i64,
    /// The claim before the pool.
    pub claim_fen: i64,
    /// Province share P.
    pub province_fen: i64,
    /// City share.
    pub city_fen: i64,
    /// County shares together.
    pub county_fen: i64,
    /// The city's allocation of the pool, if capped.
    pub allocation_fen: Option<i64>,
    /// Province share paid to the city before this run.
    pub paid_before_fen: i64,
    /// What bounded P.
    pub limit: String,
    /// Redemptions counted.
    pub redemptions: i64,
    /// Reversals counted.
    pub reversals: i64,
    /// County co-funding.
    pub counties: Vec<CountyLine>,
}

/// One merchant in one city of a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MerchantLine {
    /// The batch.
    pub batch_id: i64,
    /// The city.
    pub city: u32,
    /// The merchant.
    pub merchant_id: String,
    /// Its name at settlement.
    pub merchant_name: String,
    /// Discounts granted.
    pub granted_fen: i64,
    /// Discounts reversed.
    pub reversed_fen: i64,
    /// What it is owed.
    pub payable_fen: i64,
    /// Redemptions counted.
    pub redemptions: i64,
    /// Reversals counted.
    pub reversals: i64,
}

/// One kind of subsidy to one payee in one city of a program (the other schemes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubsidyLine {
    /// The batch.
    pub batch_id: i64,
    /// The city.
    pub city: u32,
    /// What for, e.g. `trade_in`, `ticket`, `extra:green_product`.
    pub kind: String,
    /// `merchant` or `resident`.
    pub payee_kind: String,
    /// The merchant's or the person's id.
    pub payee_id: String,
    /// The merchant's name (empty for a resident).
    pub payee_name: String,
    /// Granted.
    pub granted_fen: i64,
    /// Given back.
    pub reversed_fen: i64,
    /// What is owed.
    pub payable_fen: i64,
    /// Rows counted.
    pub lines: i64,
}

/// How a batch netted a merchant's payable against the program's advance to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdvanceLine {
    /// The batch.
    pub batch_id: i64,
    /// The city.
    pub city: u32,
    /// The merchant.
    pub merchant_id: String,
    /// What the batch owes the merchant, all kinds together.
    pub payable_fen: i64,
    /// Advance the merchant held before the batch.
    pub outstanding_before_fen: i64,
    /// Drawn down by the batch.
    pub drawdown_fen: i64,
    /// Advance the merchant still holds.
    pub outstanding_after_fen: i64,
    /// Still to pay the merchant (negative: it owes that back).
    pub net_payable_fen: i64,
}

/// One program's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgramRun {
    /// The run.
    pub run_id: i64,
    /// The program.
    pub program_id: i64,
    /// Its name.
    pub program_name: String,
    /// Province ratio.
    pub ratio_bp: i32,
    /// County co-funding, if any.
    pub county_cofund_bp: Option<i32>,
    /// The pool.
    pub pool_fen: i64,
    /// The pool remaining before the run.
    pub pool_before_fen: i64,
    /// The pool remaining after the run.
    pub pool_after_fen: i64,
    /// Who ran it.
    pub created_by: String,
    /// When (RFC 3339, UTC).
    pub created_at: String,
    /// Σ S.
    pub spending_fen: i64,
    /// Σ P.
    pub province_fen: i64,
    /// Σ city share.
    pub city_fen: i64,
    /// Σ county share.
    pub county_fen: i64,
    /// Σ payables.
    pub payable_fen: i64,
    /// Per city (only those the reader may see).
    pub cities: Vec<CityLine>,
    /// Per merchant (only in cities the reader may see).
    pub merchants: Vec<MerchantLine>,
    /// The other schemes' subsidy lines (only in cities the reader may see).
    pub lines: Vec<SubsidyLine>,
    /// Advances netted (only in cities the reader may see).
    pub advances: Vec<AdvanceLine>,
}

/// The report of a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeriodReport {
    /// The period, e.g. `2026-05-01` or `2026-05-01..2026-05-07`.
    pub period: String,
    /// Place whose view this is (`None`: the whole province).
    pub scope: Option<u32>,
    /// One per program settled for the period.
    pub programs: Vec<ProgramRun>,
}

/// Loads the stored runs of exactly `period`, restricted to the cities `reader` covers.
///
/// # Errors
/// Database failure.
pub async fn load(
    pool: &PgPool,
    period: &Period,
    reader: Option<&Admin>,
) -> Result<PeriodReport, ReconError> {
    let runs = sqlx::query(
        "SELECT id, program_id, program_name, ratio_bp, county_cofund_bp, pool_fen, pool_before_fen,
                pool_after_fen, created_by, created_at
           FROM settlement_runs WHERE period_start = $1 AND period_end = $2 ORDER BY program_id",
    )
    .bind(period.start())
    .bind(period.end())
    .fetch_all(pool)
    .await?;
    let visible = |city: i32| -> bool {
        match reader {
            None => true,
            Some(admin) => u32::try_from(city)
                .ok()
                .and_then(|c| PlaceCode::try_from(c).ok())
                .is_some_and(|c| admin.can_manage(c)),
        }
    };
    let mut programs = Vec::new();
    for r in &runs {
        let run_id: i64 = r.try_get("id")?;
        let created_at: chrono::DateTime<chrono::Utc> = r.try_get("created_at")?;
        let batch_rows = sqlx::query(
            "SELECT id, city, granted_fen, reversed_fen, spending_fen, claim_fen, province_fen,
                    city_fen, county_fen, allocation_fen, paid_before_fen, limit_kind, redemptions, reversals
               FROM settlement_batches WHERE run_id = $1 ORDER BY city",
        )
        .bind(run_id)
        .fetch_all(pool)
        .await?;
        let mut cities = Vec::new();
        for b in &batch_rows {
            let city: i32 = b.try_get("city")?;
            if !visible(city) {
                continue;
            }
            let batch_id: i64 = b.try_get("id")?;
            let county_rows = sqlx::query(
                "SELECT county, spending_fen, county_fen FROM settlement_county_shares
                  WHERE batch_id = $1 ORDER BY county",
            )
            .bind(batch_id)
            .fetch_all(pool)
            .await?;
            let mut counties = Vec::new();
            for k in &county_rows {
                let county = code(k.try_get("county")?);
                counties.push(CountyLine {
                    county,
                    county_name: name(county),
                    spending_fen: k.try_get("spending_fen")?,
                    county_fen: k.try_get("county_fen")?,
                });
            }
            let city = code(city);
            cities.push(CityLine {
                batch_id,
                city,
                city_name: name(city),
                granted_fen: b.try_get("granted_fen")?,
                reversed_fen: b.try_get("reversed_fen")?,
                spending_fen: b.try_get("spending_fen")?,
                claim_fen: b.try_get("claim_fen")?,
                province_fen: b.try_get("province_fen")?,
                city_fen: b.try_get("city_fen")?,
                county_fen: b.try_get("county_fen")?,
                allocation_fen: b.try_get("allocation_fen")?,
                paid_before_fen: b.try_get("paid_before_fen")?,
                limit: b.try_get("limit_kind")?,
                redemptions: b.try_get("redemptions")?,
                reversals: b.try_get("reversals")?,
                counties,
            });
        }
        let merchant_rows = sqlx::query(
            "SELECT l.batch_id, b.city, l.merchant_id, l.merchant_name, l.granted_fen, l.reversed_fen,
                    l.payable_fen, l.redemptions, l.reversals
               FROM settlement_merchant_lines l JOIN settlement_batches b ON b.id = l.batch_id
              WHERE b.run_id = $1 ORDER BY b.city, l.merchant_id",
        )
        .bind(run_id)
        .fetch_all(pool)
        .await?;
        let mut merchants = Vec::new();
        for m in &merchant_rows {
            let city: i32 = m.try_get("city")?;
            if !visible(city) {
                continue;
            }
            merchants.push(MerchantLine {
                batch_id: m.try_get("batch_id")?,
                city: code(city),
                merchant_id: m.try_get("merchant_id")?,
                merchant_name: m.try_get("merchant_name")?,
                granted_fen: m.try_get("granted_fen")?,
                reversed_fen: m.try_get("reversed_fen")?,
                payable_fen: m.try_get("payable_fen")?,
                redemptions: m.try_get("redemptions")?,
                reversals: m.try_get("reversals")?,
            });
        }
        let mut lines = Vec::new();
        for l in &sqlx::query(
            "SELECT l.batch_id, b.city, l.kind, l.payee_kind, l.payee_id, l.payee_name,
                    l.granted_fen, l.reversed_fen, l.payable_fen, l.lines
               FROM settlement_subsidy_lines l JOIN settlement_batches b ON b.id = l.batch_id
              WHERE b.run_id = $1 ORDER BY b.city, l.kind, l.payee_kind, l.payee_id",
        )
        .bind(run_id)
        .fetch_all(pool)
        .await?
        {
            let city: i32 = l.try_get("city")?;
            if !visible(city) {
                continue;
            }
            lines.push(SubsidyLine {
                batch_id: l.try_get("batch_id")?,
                city: code(city),
                kind: l.try_get("kind")?,
                payee_kind: l.try_get("payee_kind")?,
                payee_id: l.try_get("payee_id")?,
                payee_name: l.try_get("payee_name")?,
                granted_fen: l.try_get("granted_fen")?,
                reversed_fen: l.try_get("reversed_fen")?,
                payable_fen: l.try_get("payable_fen")?,
                lines: l.try_get("lines")?,
            });
        }
        let mut advances = Vec::new();
        for a in &sqlx::query(
            "SELECT a.batch_id, b.city, a.merchant_id, a.payable_fen, a.outstanding_before_fen,
                    a.drawdown_fen, a.outstanding_after_fen, a.net_payable_fen
               FROM settlement_advance_lines a JOIN settlement_batches b ON b.id = a.batch_id
              WHERE b.run_id = $1 ORDER BY b.city, a.merchant_id",
        )
        .bind(run_id)
        .fetch_all(pool)
        .await?
        {
            let city: i32 = a.try_get("city")?;
            if !visible(city) {
                continue;
            }
            advances.push(AdvanceLine {
                batch_id: a.try_get("batch_id")?,
                city: code(city),
                merchant_id: a.try_get("merchant_id")?,
                payable_fen: a.try_get("payable_fen")?,
                outstanding_before_fen: a.try_get("outstanding_before_fen")?,
                drawdown_fen: a.try_get("drawdown_fen")?,
                outstanding_after_fen: a.try_get("outstanding_after_fen")?,
                net_payable_fen: a.try_get("net_payable_fen")?,
            });
        }
        if reader.is_some() && cities.is_empty() {
            continue;
        }
        programs.push(ProgramRun {
            run_id,
            program_id: r.try_get("program_id")?,
            program_name: r.try_get("program_name")?,
            ratio_bp: r.try_get("ratio_bp")?,
            county_cofund_bp: r.try_get("county_cofund_bp")?,
            pool_fen: r.try_get("pool_fen")?,
            pool_before_fen: r.try_get("pool_before_fen")?,
            pool_after_fen: r.try_get("pool_after_fen")?,
            created_by: r.try_get("created_by")?,
            created_at: created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            spending_fen: cities.iter().map(|c| c.spending_fen).sum(),
            province_fen: cities.iter().map(|c| c.province_fen).sum(),
            city_fen: cities.iter().map(|c| c.city_fen).sum(),
            county_fen: cities.iter().map(|c| c.county_fen).sum(),
            payable_fen: merchants.iter().map(|m| m.payable_fen).sum::<i64>()
                + lines.iter().map(|l| l.payable_fen).sum::<i64>(),
            cities,
            merchants,
            lines,
            advances,
        });
    }
    Ok(PeriodReport {
        period: period.to_string(),
        scope: reader.map(|a| a.place.get()),
        programs,
    })
}

fn code(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn name(code: u32) -> String {
    PlaceCode::try_from(code).map_or_else(|_| code.to_string(), places::name)
}

/// The UTF-8 byte-order mark that makes Excel read a CSV file as UTF-8.
pub const BOM: &str = "\u{feff}";

fn csv_text(header: &[&str], rows: Vec<Vec<String>>) -> Result<String, ReconError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)
        .map_err(|e| ReconError::Encode(e.to_string()))?;
    for row in rows {
        w.write_record(&row)
            .map_err(|e| ReconError::Encode(e.to_string()))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReconError::Encode(e.to_string()))?;
    let body = String::from_utf8(bytes).map_err(|e| ReconError::Encode(e.to_string()))?;
    Ok(format!("{BOM}{body}"))
}

/// `cities.csv`.
///
/// # Errors
/// Encoding failed.
pub fn cities_csv(r: &PeriodReport) -> Result<String, ReconError> {
    let mut rows = Vec::new();
    for p in &r.programs {
        for c in &p.cities {
            rows.push(vec![
                r.period.clone(),
                p.program_id.to_string(),
                p.program_name.clone(),
                format!("{:06}", c.city),
                c.city_name.clone(),
                yuan(c.granted_fen),
                yuan(c.reversed_fen),
                yuan(c.spending_fen),
                yuan(c.province_fen),
                yuan(c.city_fen),
                yuan(c.county_fen),
                c.limit.clone(),
                yuan(p.pool_after_fen),
                c.batch_id.to_string(),
            ]);
        }
    }
    csv_text(
        &[
            "结算期 period",
            "项目编号 program_id",
            "项目 program",
            "城市代码 city",
            "城市 city_name",
            "核销优惠(元) granted",
            "退货冲回(元) reversed",
            "实际支出(元) spending_S",
            "省级承担(元) province_share",
            "市级承担(元) city_share",
            "县级承担(元) county_share",
            "省级上限 limit",
            "资金池余额(元) pool_remaining",
            "批次 batch_id",
        ],
        rows,
    )
}

/// `merchants.csv`.
///
/// # Errors
/// Encoding failed.
pub fn merchants_csv(r: &PeriodReport) -> Result<String, ReconError> {
    let mut rows = Vec::new();
    for p in &r.programs {
        for m in &p.merchants {
            rows.push(vec![
                r.period.clone(),
                p.program_id.to_string(),
                p.program_name.clone(),
                format!("{:06}", m.city),
                m.merchant_id.clone(),
                m.merchant_name.clone(),
                yuan(m.granted_fen),
                yuan(m.reversed_fen),
                yuan(m.payable_fen),
                m.redemptions.to_string(),
                m.reversals.to_string(),
            ]);
        }
    }
    csv_text(
        &[
            "结算期 period",
            "项目编号 program_id",
            "项目 program",
            "城市代码 city",
            "商户编号 merchant_id",
            "商户 merchant",
            "核销优惠(元) granted",
            "退货冲回(元) reversed",
            "应付商户(元) payable",
            "核销笔数 redemptions",
            "退货笔数 reversals",
        ],
        rows,
    )
}

/// `programs.csv`.
///
/// # Errors
/// Encoding failed.
pub fn programs_csv(r: &PeriodReport) -> Result<String, ReconError> {
    let rows = r
        .programs
        .iter()
        .map(|p| {
            vec![
                r.period.clone(),
                p.program_id.to_string(),
                p.program_name.clone(),
                format!("{}", p.ratio_bp),
                yuan(p.spending_fen),
                yuan(p.province_fen),
                yuan(p.city_fen),
                yuan(p.county_fen),
                yuan(p.payable_fen),
                yuan(p.pool_fen),
                yuan(p.pool_before_fen),
                yuan(p.pool_after_fen),
            ]
        })
        .collect();
    csv_text(
        &[
            "结算期 period",
            "项目编号 program_id",
            "项目 program",
            "省级比例(基点) ratio_bp",
            "实际支出(元) spending_S",
            "省级承担(元) province_share",
            "市级承担(元) city_share",
            "县级承担(元) county_share",
            "应付商户(元) payable",
            "资金池(元) pool",
            "期初余额(元) pool_before",
            "期末余额(元) pool_after",
        ],
        rows,
    )
}

/// `subsidy_lines.csv`.
///
/// # Errors
/// Encoding failed.
pub fn subsidy_lines_csv(r: &PeriodReport) -> Result<String, ReconError> {
    let mut rows = Vec::new();
    for p in &r.programs {
        for l in &p.lines {
            rows.push(vec![
                r.period.clone(),
                p.program_id.to_string(),
                p.program_name.clone(),
                format!("{:06}", l.city),
                l.kind.clone(),
                l.payee_kind.clone(),
                l.payee_id.clone(),
                l.payee_name.clone(),
                yuan(l.granted_fen),
                yuan(l.reversed_fen),
                yuan(l.payable_fen),
                l.lines.to_string(),
            ]);
        }
    }
    csv_text(
        &[
            "结算期 period",
            "项目编号 program_id",
            "项目 program",
            "城市代码 city",
            "补贴类型 kind",
            "收款方类型 payee_kind",
            "收款方 payee_id",
            "收款方名称 payee_name",
            "补贴(元) granted",
            "冲回(元) reversed",
            "应付(元) payable",
            "笔数 lines",
        ],
        rows,
    )
}

/// `advances.csv`.
///
/// # Errors
/// Encoding failed.
pub fn advances_csv(r: &PeriodReport) -> Result<String, ReconError> {
    let mut rows = Vec::new();
    for p in &r.programs {
        for a in &p.advances {
            rows.push(vec![
                r.period.clone(),
                p.program_id.to_string(),
                p.program_name.clone(),
                format!("{:06}", a.city),
                a.merchant_id.clone(),
                yuan(a.payable_fen),
                yuan(a.outstanding_before_fen),
                yuan(a.drawdown_fen),
                yuan(a.outstanding_after_fen),
                yuan(a.net_payable_fen),
            ]);
        }
    }
    csv_text(
        &[
            "结算期 period",
            "项目编号 program_id",
            "项目 program",
            "城市代码 city",
            "商户编号 merchant_id",
            "本期应付(元) payable",
            "期初预拨余额(元) advance_before",
            "本期冲抵(元) drawdown",
            "期末预拨余额(元) advance_after",
            "净应付(元) net_payable",
        ],
        rows,
    )
}

/// `report.json` (amounts in fen), pretty-printed with a final newline.
///
/// # Errors
/// Encoding failed.
pub fn json(r: &PeriodReport) -> Result<String, ReconError> {
    let mut s = serde_json::to_string_pretty(r).map_err(|e| ReconError::Encode(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

/// `summary.txt`: one page.
pub fn summary(r: &PeriodReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "结算报告 Settlement report — period {}", r.period);
    if let Some(scope) = r.scope {
        let _ = writeln!(s, "scope: {} ({scope:06})", name(scope));
    }
    if r.programs.is_empty() {
        let _ = writeln!(s, "\nNothing settled for this period.");
    }
    for p in &r.programs {
        let _ = writeln!(
            s,
            "\n[{}] {} (run {}, ratio {} bp{}, by {} at {})",
            p.program_id,
            p.program_name,
            p.run_id,
            p.ratio_bp,
            p.county_cofund_bp
                .map_or(String::new(), |c| format!(", county co-funding {c} bp")),
            p.created_by,
            p.created_at
        );
        let _ = writeln!(
            s,
            "  spending S {:>14}  province {:>14}  city {:>14}  county {:>12}",
            yuan(p.spending_fen),
            yuan(p.province_fen),
            yuan(p.city_fen),
            yuan(p.county_fen)
        );
        let _ = writeln!(
            s,
            "  payable {:>14} ({} merchants, {} other subsidy lines); pool {} → {} of {}",
            yuan(p.payable_fen),
            p.merchants.len(),
            p.lines.len(),
            yuan(p.pool_before_fen),
            yuan(p.pool_after_fen),
            yuan(p.pool_fen)
        );
        let _ = writeln!(
            s,
            "  {:<8} {:<8} {:>14} {:>14} {:>14} {:>12}  limit",
            "city", "", "S", "province", "city", "county"
        );
        for c in &p.cities {
            let _ = writeln!(
                s,
                "  {:06}   {:<6} {:>14} {:>14} {:>14} {:>12}  {}",
                c.city,
                c.city_name,
                yuan(c.spending_fen),
                yuan(c.province_fen),
                yuan(c.city_fen),
                yuan(c.county_fen),
                c.limit
            );
        }
        let balanced = p.spending_fen == p.province_fen + p.city_fen + p.county_fen
            && p.spending_fen == p.payable_fen;
        let _ = writeln!(
            s,
            "  check: Σ payables = Σ S = Σ province + Σ city + Σ county: {}",
            if balanced { "yes" } else { "NO" }
        );
    }
    s
}

/// The file names of a report, in the order [`render_all`] renders them.
pub const FILES: [&str; 7] = [
    "cities.csv",
    "merchants.csv",
    "programs.csv",
    "subsidy_lines.csv",
    "advances.csv",
    "report.json",
    "summary.txt",
];

/// Every rendering of `r`, by file name, in a fixed order.
///
/// # Errors
/// Encoding failed.
pub fn render_all(r: &PeriodReport) -> Result<Vec<(&'static str, String)>, ReconError> {
    let [cities, merchants, programs, lines, advances, json_file, summary_file] = FILES;
    Ok(vec![
        (cities, cities_csv(r)?),
        (merchants, merchants_csv(r)?),
        (programs, programs_csv(r)?),
        (lines, subsidy_lines_csv(r)?),
        (advances, advances_csv(r)?),
        (json_file, json(r)?),
        (summary_file, summary(r)),
    ])
}

/// Writes every rendering into `dir` (created if missing); returns the paths.
///
/// # Errors
/// Encoding or writing failed.
pub fn write_all(r: &PeriodReport, dir: &Path) -> Result<Vec<PathBuf>, ReconError> {
    std::fs::create_dir_all(dir).map_err(|source| ReconError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (file, text) in render_all(r)? {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(|source| ReconError::Io {
            path: path.display().to_string(),
            source,
        })?;
        out.push(path);
    }
    Ok(out)
}

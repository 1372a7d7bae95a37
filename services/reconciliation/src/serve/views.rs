//! What the console reads, assembled from the library the command line uses
//! ([`report::load`], [`workflow::view`], [`review::review`]) and scoped to the officer:
//! lists leave out what they may not see, a single thing they may not see is
//! `FORBIDDEN_PLACE`.

use super::error::{ApiError, Code};
use crate::period::Period;
use crate::report::{self, CityLine, ProgramRun};
use crate::review::{self, ReviewOptions};
use crate::workflow::{self, Status};
use crate::{check, places};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row};
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;
use uuid::Uuid;
use voucher_core::{AdminRole, PlaceCode};
use voucher_platform::admin::Admin;
use voucher_platform::error::Common;

fn place(code: i32) -> Option<PlaceCode> {
    u32::try_from(code)
        .ok()
        .and_then(|c| PlaceCode::try_from(c).ok())
}

fn place_name(code: i32) -> String {
    place(code).map_or_else(|| code.to_string(), places::name)
}

fn sees(officer: &Admin, code: i32) -> bool {
    place(code).is_some_and(|p| officer.can_manage(p))
}

fn forbidden(officer: &Admin, what: impl std::fmt::Display) -> ApiError {
    ApiError::new(Common::ForbiddenPlace).with_message(format!(
        "{} may not read {what}: it lies outside {}",
        officer.name,
        places::name(officer.place)
    ))
}

/// Batches per status.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct StatusCounts {
    /// Written by the job.
    pub draft: u32,
    /// Confirmed by the city.
    pub city_confirmed: u32,
    /// Confirmed by the province.
    pub province_confirmed: u32,
    /// Paid out.
    pub paid: u32,
}

impl StatusCounts {
    fn add(&mut self, status: &str) {
        match status {
            "draft" => self.draft += 1,
            "city_confirmed" => self.city_confirmed += 1,
            "province_confirmed" => self.province_confirmed += 1,
            _ => self.paid += 1,
        }
    }
}

/// One run in the list of periods.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunSummary {
    /// The run.
    pub run_id: i64,
    /// The program.
    pub program_id: i64,
    /// Its name.
    pub program_name: String,
    /// When the run was written.
    pub created_at: DateTime<Utc>,
    /// Who ran it.
    pub created_by: String,
    /// Σ S of the batches shown.
    pub spending_fen: i64,
    /// Σ province share of the batches shown.
    pub province_fen: i64,
    /// Σ city share of the batches shown.
    pub city_fen: i64,
    /// Σ county share of the batches shown.
    pub county_fen: i64,
    /// The pool after the run.
    pub pool_after_fen: i64,
    /// The batches shown, per status.
    pub batches: StatusCounts,
}

/// One settled period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PeriodSummary {
    /// As the reports print it.
    pub period: String,
    /// First day.
    pub start: NaiveDate,
    /// Last day.
    pub end: NaiveDate,
    /// One run per program.
    pub runs: Vec<RunSummary>,
}

/// `GET /v1/periods`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Periods {
    /// Newest first.
    pub periods: Vec<PeriodSummary>,
}

/// The settled periods and their runs, newest first.
///
/// # Errors
/// Database failure.
pub async fn periods(pg: &PgPool, officer: &Admin) -> Result<Periods, ApiError> {
    let rows = sqlx::query(
        "SELECT r.id, r.program_id, r.program_name, r.period_start, r.period_end, r.created_at,
                r.created_by, r.pool_after_fen, b.city, b.status, b.spending_fen, b.province_fen,
                b.city_fen, b.county_fen
           FROM settlement_runs r LEFT JOIN settlement_batches b ON b.run_id = r.id
          ORDER BY r.period_end DESC, r.period_start DESC, r.program_id, b.city",
    )
    .fetch_all(pg)
    .await?;
    let province = officer.role == AdminRole::Province;
    let mut periods: Vec<PeriodSummary> = Vec::new();
    let mut runs: BTreeMap<i64, RunSummary> = BTreeMap::new();
    let mut order: Vec<(NaiveDate, NaiveDate, i64)> = Vec::new();
    for r in &rows {
        let run_id: i64 = r.try_get("id")?;
        let city: Option<i32> = r.try_get("city")?;
        let visible = city.is_some_and(|c| sees(officer, c));
        if !(visible || (province && city.is_none())) {
            continue;
        }
        let entry = match runs.entry(run_id) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                order.push((r.try_get("period_start")?, r.try_get("period_end")?, run_id));
                v.insert(RunSummary {
                    run_id,
                    program_id: r.try_get("program_id")?,
                    program_name: r.try_get("program_name")?,
                    created_at: r.try_get("created_at")?,
                    created_by: r.try_get("created_by")?,
                    spending_fen: 0,
                    province_fen: 0,
                    city_fen: 0,
                    county_fen: 0,
                    pool_after_fen: r.try_get("pool_after_fen")?,
                    batches: StatusCounts::default(),
                })
            }
        };
        if visible {
            entry.spending_fen += r.try_get::<i64, _>("spending_fen")?;
            entry.province_fen += r.try_get::<i64, _>("province_fen")?;
            entry.city_fen += r.try_get::<i64, _>("city_fen")?;
            entry.county_fen += r.try_get::<i64, _>("county_fen")?;
            entry.batches.add(&r.try_get::<String, _>("status")?);
        }
    }
    for (start, end, run_id) in order {
        let Some(run) = runs.remove(&run_id) else {
            continue;
        };
        match periods.last_mut() {
            Some(p) if p.start == start && p.end == end => p.runs.push(run),
            _ => {
                let period =
                    Period::new(start, end).map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
                periods.push(PeriodSummary {
                    period: period.to_string(),
                    start,
                    end,
                    runs: vec![run],
                });
            }
        }
    }
    Ok(Periods { periods })
}

/// A county's co-funded share.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CountyShare {
    /// The county.
    pub county: u32,
    /// Its name.
    pub county_name: String,
    /// Spending of its campaigns.
    pub spending_fen: i64,
    /// What it pays.
    pub county_fen: i64,
}

/// One city's batch of a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Batch {
    /// The batch.
    pub batch_id: i64,
    /// The city.
    pub city: u32,
    /// Its name.
    pub city_name: String,
    /// `draft`, `city_confirmed`, `province_confirmed` or `paid`.
    pub status: String,
    /// Discounts granted.
    pub granted_fen: i64,
    /// Discounts reversed.
    pub reversed_fen: i64,
    /// Actual spending S.
    pub spending_fen: i64,
    /// The claim on the pool before the limits.
    pub claim_fen: i64,
    /// Province share P.
    pub province_fen: i64,
    /// City share.
    pub city_fen: i64,
    /// County shares together.
    pub county_fen: i64,
    /// The city's allocation (none: uncapped).
    pub allocation_fen: Option<i64>,
    /// Province share paid to the city before this run.
    pub paid_before_fen: i64,
    /// The allocation left after this batch (none: uncapped).
    pub allocation_remaining_fen: Option<i64>,
    /// The pool left after the run.
    pub pool_remaining_fen: i64,
    /// What bounded P.
    pub limit: String,
    /// Redemptions counted.
    pub redemptions: i64,
    /// Reversals counted.
    pub reversals: i64,
    /// Merchants paid.
    pub merchants: u32,
    /// County co-funding.
    pub counties: Vec<CountyShare>,
}

/// `GET /v1/runs/{run_id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    pub run_id: i64,
    /// The program.
    pub program_id: i64,
    /// Its name.
    pub program_name: String,
    /// As the reports print it.
    pub period: String,
    /// First day.
    pub period_start: NaiveDate,
    /// Last day.
    pub period_end: NaiveDate,
    /// Province ratio (basis points).
    pub ratio_bp: i32,
    /// County co-funding, if any.
    pub county_cofund_bp: Option<i32>,
    /// The pool.
    pub pool_fen: i64,
    /// The pool before the run.
    pub pool_before_fen: i64,
    /// The pool after the run.
    pub pool_after_fen: i64,
    /// Who ran it.
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// Σ S of the batches shown.
    pub spending_fen: i64,
    /// Σ province share.
    pub province_fen: i64,
    /// Σ city share.
    pub city_fen: i64,
    /// Σ county share.
    pub county_fen: i64,
    /// Σ payables.
    pub payable_fen: i64,
    /// The batches the officer may see, by city.
    pub batches: Vec<Batch>,
}

/// The stored report of a run, as `officer` may see it, and the run's period.
async fn load_run(
    pg: &PgPool,
    run_id: i64,
    officer: &Admin,
) -> Result<(Period, ProgramRun), ApiError> {
    let row = sqlx::query("SELECT period_start, period_end FROM settlement_runs WHERE id = $1")
        .bind(run_id)
        .fetch_optional(pg)
        .await?
        .ok_or_else(|| ApiError::new(Code::RunNotFound))?;
    let period = Period::new(row.try_get("period_start")?, row.try_get("period_end")?)
        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
    let found = report::load(pg, &period, Some(officer))
        .await?
        .programs
        .into_iter()
        .find(|p| p.run_id == run_id);
    let run = match found {
        Some(run) => run,
        // A run without batches (nothing spent) is shown to the province only.
        None if officer.role == AdminRole::Province => report::load(pg, &period, None)
            .await?
            .programs
            .into_iter()
            .find(|p| p.run_id == run_id && p.cities.is_empty())
            .ok_or_else(|| forbidden(officer, format!("settlement run {run_id}")))?,
        None => return Err(forbidden(officer, format!("settlement run {run_id}"))),
    };
    Ok((period, run))
}

fn batch_of(run: &ProgramRun, c: &CityLine, status: String) -> Batch {
    let merchants = run
        .merchants
        .iter()
        .filter(|m| m.batch_id == c.batch_id)
        .count();
    Batch {
        batch_id: c.batch_id,
        city: c.city,
        city_name: c.city_name.clone(),
        status,
        granted_fen: c.granted_fen,
        reversed_fen: c.reversed_fen,
        spending_fen: c.spending_fen,
        claim_fen: c.claim_fen,
        province_fen: c.province_fen,
        city_fen: c.city_fen,
        county_fen: c.county_fen,
        allocation_fen: c.allocation_fen,
        paid_before_fen: c.paid_before_fen,
        allocation_remaining_fen: c
            .allocation_fen
            .map(|a| a - c.paid_before_fen - c.province_fen),
        pool_remaining_fen: run.pool_after_fen,
        limit: c.limit.clone(),
        redemptions: c.redemptions,
        reversals: c.reversals,
        merchants: u32::try_from(merchants).unwrap_or(u32::MAX),
        counties: c
            .counties
            .iter()
            .map(|k| CountyShare {
                county: k.county,
                county_name: k.county_name.clone(),
                spending_fen: k.spending_fen,
                county_fen: k.county_fen,
            })
            .collect(),
    }
}

/// A run with the batches `officer` may see.
///
/// # Errors
/// `RUN_NOT_FOUND`, `FORBIDDEN_PLACE`, database failure.
pub async fn run(pg: &PgPool, run_id: i64, officer: &Admin) -> Result<RunDetail, ApiError> {
    let (period, run) = load_run(pg, run_id, officer).await?;
    let statuses: HashMap<i64, String> =
        sqlx::query("SELECT id, status FROM settlement_batches WHERE run_id = $1")
            .bind(run_id)
            .fetch_all(pg)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("status")?)))
            .collect::<Result<_, sqlx::Error>>()?;
    let batches = run
        .cities
        .iter()
        .map(|c| {
            let status = statuses.get(&c.batch_id).cloned().unwrap_or_default();
            batch_of(&run, c, status)
        })
        .collect();
    Ok(RunDetail {
        run_id,
        program_id: run.program_id,
        program_name: run.program_name.clone(),
        period: period.to_string(),
        period_start: period.start(),
        period_end: period.end(),
        ratio_bp: run.ratio_bp,
        county_cofund_bp: run.county_cofund_bp,
        pool_fen: run.pool_fen,
        pool_before_fen: run.pool_before_fen,
        pool_after_fen: run.pool_after_fen,
        created_by: run.created_by.clone(),
        created_at: run.created_at.clone(),
        spending_fen: run.spending_fen,
        province_fen: run.province_fen,
        city_fen: run.city_fen,
        county_fen: run.county_fen,
        payable_fen: run.payable_fen,
        batches,
    })
}

/// The run a batch belongs to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunRef {
    /// The run.
    pub run_id: i64,
    /// The program.
    pub program_id: i64,
    /// Its name.
    pub program_name: String,
    /// As the reports print it.
    pub period: String,
}

/// One step of a batch's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepView {
    /// The status reached.
    pub status: String,
    /// Who.
    pub actor: String,
    /// With which role (`job` for the draft).
    pub role: String,
    /// The actor's place.
    pub place: Option<i32>,
    /// Its name.
    pub place_name: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// The next step of a batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NextStep {
    /// The status it reaches.
    pub to: String,
    /// The role that takes it.
    pub role: String,
    /// Whether this officer may take it.
    pub allowed: bool,
}

/// `GET /v1/batches/{batch_id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchDetail {
    /// The batch's figures.
    #[serde(flatten)]
    pub batch: Batch,
    /// Its run.
    pub run: RunRef,
    /// Its history, the draft first.
    pub steps: Vec<StepView>,
    /// The next step (none once paid).
    pub next: Option<NextStep>,
}

/// The step after `status`, and who takes it.
pub fn next_step(status: &str) -> Option<(Status, AdminRole)> {
    match status {
        "draft" => Some((Status::CityConfirmed, AdminRole::City)),
        "city_confirmed" => Some((Status::ProvinceConfirmed, AdminRole::Province)),
        "province_confirmed" => Some((Status::Paid, AdminRole::Province)),
        _ => None,
    }
}

async fn run_of_batch(pg: &PgPool, batch_id: i64) -> Result<i64, ApiError> {
    Ok(
        sqlx::query("SELECT run_id FROM settlement_batches WHERE id = $1")
            .bind(batch_id)
            .fetch_optional(pg)
            .await?
            .ok_or_else(|| {
                ApiError::new(Code::BatchNotFound)
                    .with_details(serde_json::json!({ "batch_id": batch_id }))
            })?
            .try_get("run_id")?,
    )
}

/// A batch, its history and its next step, as `officer` sees it.
///
/// # Errors
/// `BATCH_NOT_FOUND`, `FORBIDDEN_PLACE`, database failure.
pub async fn batch(pg: &PgPool, batch_id: i64, officer: &Admin) -> Result<BatchDetail, ApiError> {
    let run_id = run_of_batch(pg, batch_id).await?;
    // The library's own place check, the one the command line's `show` makes.
    let view = workflow::view(pg, batch_id, officer).await?;
    let (period, run) = load_run(pg, run_id, officer).await?;
    let line = run
        .cities
        .iter()
        .find(|c| c.batch_id == batch_id)
        .ok_or_else(|| forbidden(officer, format!("settlement batch {batch_id}")))?;
    let batch = batch_of(&run, line, view.status.clone());
    let next = next_step(&view.status).map(|(to, role)| NextStep {
        to: to.as_str().to_owned(),
        role: role.as_str().to_owned(),
        allowed: officer.role == role
            && PlaceCode::try_from(batch.city).is_ok_and(|c| officer.can_manage(c)),
    });
    Ok(BatchDetail {
        run: RunRef {
            run_id,
            program_id: run.program_id,
            program_name: run.program_name.clone(),
            period: period.to_string(),
        },
        steps: view
            .steps
            .into_iter()
            .map(|s| StepView {
                place_name: s.place.filter(|p| *p != 0).map(place_name),
                status: s.status,
                actor: s.actor,
                role: s.role,
                place: s.place,
                at: s.at,
            })
            .collect(),
        next,
        batch,
    })
}

/// A merchant's line of a batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MerchantLineView {
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

/// One kind of subsidy to one payee (the other schemes: car trade-in, tickets, top-ups).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubsidyLineView {
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

/// How the batch netted a merchant's payable against the program's advance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdvanceLineView {
    /// The merchant.
    pub merchant_id: String,
    /// What the batch owes the merchant.
    pub payable_fen: i64,
    /// Advance held before.
    pub outstanding_before_fen: i64,
    /// Drawn down.
    pub drawdown_fen: i64,
    /// Advance still held.
    pub outstanding_after_fen: i64,
    /// Still to pay (negative: owed back).
    pub net_payable_fen: i64,
}

/// `GET /v1/batches/{batch_id}/merchants`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchMerchants {
    /// The batch.
    pub batch_id: i64,
    /// Σ payables, merchant lines and subsidy lines.
    pub payable_fen: i64,
    /// By merchant id.
    pub merchants: Vec<MerchantLineView>,
    /// The other schemes' subsidy lines, by kind and payee.
    pub lines: Vec<SubsidyLineView>,
    /// Advances netted, by merchant.
    pub advances: Vec<AdvanceLineView>,
}

/// A batch's merchant lines.
///
/// # Errors
/// `BATCH_NOT_FOUND`, `FORBIDDEN_PLACE`, database failure.
pub async fn merchants(
    pg: &PgPool,
    batch_id: i64,
    officer: &Admin,
) -> Result<BatchMerchants, ApiError> {
    let run_id = run_of_batch(pg, batch_id).await?;
    workflow::view(pg, batch_id, officer).await?;
    let (_, run) = load_run(pg, run_id, officer).await?;
    let lines: Vec<SubsidyLineView> = run
        .lines
        .iter()
        .filter(|l| l.batch_id == batch_id)
        .map(|l| SubsidyLineView {
            kind: l.kind.clone(),
            payee_kind: l.payee_kind.clone(),
            payee_id: l.payee_id.clone(),
            payee_name: l.payee_name.clone(),
            granted_fen: l.granted_fen,
            reversed_fen: l.reversed_fen,
            payable_fen: l.payable_fen,
            lines: l.lines,
        })
        .collect();
    let advances: Vec<AdvanceLineView> = run
        .advances
        .iter()
        .filter(|a| a.batch_id == batch_id)
        .map(|a| AdvanceLineView {
            merchant_id: a.merchant_id.clone(),
            payable_fen: a.payable_fen,
            outstanding_before_fen: a.outstanding_before_fen,
            drawdown_fen: a.drawdown_fen,
            outstanding_after_fen: a.outstanding_after_fen,
            net_payable_fen: a.net_payable_fen,
        })
        .collect();
    let merchants: Vec<MerchantLineView> = run
        .merchants
        .into_iter()
        .filter(|m| m.batch_id == batch_id)
        .map(|m| MerchantLineView {
            merchant_id: m.merchant_id,
            merchant_name: m.merchant_name,
            granted_fen: m.granted_fen,
            reversed_fen: m.reversed_fen,
            payable_fen: m.payable_fen,
            redemptions: m.redemptions,
            reversals: m.reversals,
        })
        .collect();
    Ok(BatchMerchants {
        batch_id,
        payable_fen: merchants.iter().map(|m| m.payable_fen).sum::<i64>()
            + lines.iter().map(|l| l.payable_fen).sum::<i64>(),
        merchants,
        lines,
        advances,
    })
}

/// A report file: its bytes (the command line's, for the same officer) and content type.
///
/// # Errors
/// `FILE_NOT_FOUND`, database failure.
pub async fn file(
    pg: &PgPool,
    period: &Period,
    name: &str,
    officer: &Admin,
) -> Result<(&'static str, String), ApiError> {
    let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("csv") => "text/csv; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => return Err(ApiError::new(Code::FileNotFound)),
    };
    if !report::FILES.contains(&name) {
        return Err(ApiError::new(Code::FileNotFound));
    }
    let r = report::load(pg, period, Some(officer)).await?;
    let text = report::render_all(&r)?
        .into_iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| text)
        .ok_or_else(|| ApiError::new(Code::FileNotFound))?;
    Ok((content_type, text))
}

/// One finding of the review, with its merchant's place.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FindingView {
    /// 1 = look first.
    pub rank: u32,
    /// Higher = look first.
    pub score: i64,
    /// The pattern.
    pub pattern: String,
    /// The pattern in words (zh-CN).
    pub pattern_name: String,
    /// The merchant.
    pub merchant_id: String,
    /// Its name.
    pub merchant_name: String,
    /// Its city.
    pub city: i32,
    /// The city's name.
    pub city_name: String,
    /// The person, when the pattern is about one.
    pub person_id: Option<String>,
    /// The figures behind it.
    pub evidence: String,
    /// Redemption ids to open.
    pub sample: Vec<String>,
}

/// `GET /v1/review`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewView {
    /// The period reviewed.
    pub period: String,
    /// Ranked.
    pub findings: Vec<FindingView>,
}

/// The pattern in words.
pub fn pattern_name(pattern: &str) -> &'static str {
    match pattern {
        "same_person_same_merchant" => "同一人在同一商户多次核销",
        "just_over_threshold" => "订单金额集中在满减门槛之上",
        "burst" => "短时核销量激增",
        "quick_reversal" => "核销后短时间内退货",
        _ => "其他",
    }
}

/// The review of `period`, for the merchants `officer` covers, at most `limit` findings.
///
/// # Errors
/// Database failure.
pub async fn review(
    pg: &PgPool,
    period: &Period,
    officer: &Admin,
    limit: usize,
) -> Result<ReviewView, ApiError> {
    let all = review::review(
        pg,
        period,
        &ReviewOptions {
            // Ranked over the whole province, cut after scoping, so a city sees its own top.
            limit: usize::MAX,
            ..ReviewOptions::default()
        },
    )
    .await?;
    let ids: Vec<String> = all.iter().map(|f| f.merchant_id.clone()).collect();
    let merchants: HashMap<String, (String, i32, Option<i32>)> =
        sqlx::query("SELECT id, name, city, county FROM merchants WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(pg)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    (r.try_get("name")?, r.try_get("city")?, r.try_get("county")?),
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?;
    let mut findings = Vec::new();
    for f in all {
        let Some((name, city, county)) = merchants.get(&f.merchant_id) else {
            continue;
        };
        if !sees(officer, county.unwrap_or(*city)) {
            continue;
        }
        findings.push(FindingView {
            rank: u32::try_from(findings.len() + 1).unwrap_or(u32::MAX),
            score: f.score,
            pattern: f.pattern.to_owned(),
            pattern_name: pattern_name(f.pattern).to_owned(),
            merchant_id: f.merchant_id,
            merchant_name: name.clone(),
            city: *city,
            city_name: place_name(*city),
            person_id: f.person_id,
            evidence: f.evidence,
            sample: f.sample,
        });
        if findings.len() >= limit {
            break;
        }
    }
    Ok(ReviewView {
        period: period.to_string(),
        findings,
    })
}

/// A reversal of a redemption.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReversalLine {
    /// The merchant's reference.
    pub reversal_ref: String,
    /// Refunded to the customer.
    pub refund_amount_fen: i64,
    /// Discount given back.
    pub discount_reversed_fen: i64,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/redemptions/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RedemptionDetail {
    /// The redemption.
    pub id: Uuid,
    /// The merchant.
    pub merchant_id: String,
    /// Its name.
    pub merchant_name: String,
    /// Its city.
    pub city: i32,
    /// The city's name.
    pub city_name: String,
    /// The campaign.
    pub campaign_id: i64,
    /// Its name.
    pub campaign_name: String,
    /// Its category.
    pub category: String,
    /// The program.
    pub program_id: i64,
    /// The resident.
    pub person_id: String,
    /// `approved`, `held`, `captured`, `voided` or `expired`.
    pub status: String,
    /// The merchant's order reference.
    pub order_ref: String,
    /// The order.
    pub order_amount_fen: i64,
    /// The discount.
    pub discount_fen: i64,
    /// Discount given back by reversals.
    pub reversed_fen: i64,
    /// When decided.
    pub created_at: DateTime<Utc>,
    /// When a hold was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Its reversals, oldest first.
    pub reversals: Vec<ReversalLine>,
}

/// One redemption, if `officer` covers its merchant.
///
/// # Errors
/// `REDEMPTION_NOT_FOUND`, `FORBIDDEN_PLACE`, database failure.
pub async fn redemption(
    pg: &PgPool,
    id: Uuid,
    officer: &Admin,
) -> Result<RedemptionDetail, ApiError> {
    let r = sqlx::query(
        "SELECT r.id, r.merchant_id, m.name AS merchant_name, m.city, m.county, r.campaign_id,
                c.name AS campaign_name, c.category, r.program_id, r.person_id, r.status,
                r.order_ref, r.order_amount_fen, r.discount_fen, r.reversed_fen, r.created_at,
                r.resolved_at
           FROM redemptions r JOIN merchants m ON m.id = r.merchant_id
           JOIN campaigns c ON c.id = r.campaign_id
          WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(pg)
    .await?
    .ok_or_else(|| ApiError::new(Code::RedemptionNotFound))?;
    let city: i32 = r.try_get("city")?;
    let county: Option<i32> = r.try_get("county")?;
    if !sees(officer, county.unwrap_or(city)) {
        return Err(forbidden(officer, format!("redemption {id}")));
    }
    let reversals = sqlx::query(
        "SELECT reversal_ref, refund_amount_fen, discount_reversed_fen, created_at
           FROM reversals WHERE redemption_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(pg)
    .await?
    .iter()
    .map(|v| {
        Ok(ReversalLine {
            reversal_ref: v.try_get("reversal_ref")?,
            refund_amount_fen: v.try_get("refund_amount_fen")?,
            discount_reversed_fen: v.try_get("discount_reversed_fen")?,
            created_at: v.try_get("created_at")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(RedemptionDetail {
        id,
        merchant_id: r.try_get("merchant_id")?,
        merchant_name: r.try_get("merchant_name")?,
        city,
        city_name: place_name(city),
        campaign_id: r.try_get("campaign_id")?,
        campaign_name: r.try_get("campaign_name")?,
        category: r.try_get("category")?,
        program_id: r.try_get("program_id")?,
        person_id: r.try_get("person_id")?,
        status: r.try_get("status")?,
        order_ref: r.try_get("order_ref")?,
        order_amount_fen: r.try_get("order_amount_fen")?,
        discount_fen: r.try_get("discount_fen")?,
        reversed_fen: r.try_get("reversed_fen")?,
        created_at: r.try_get("created_at")?,
        resolved_at: r.try_get("resolved_at")?,
        reversals,
    })
}

/// A recorded check, as `officer` may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckView {
    /// The record.
    pub id: i64,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// Who ran it.
    pub actor: String,
    /// Whether Redis and PostgreSQL agreed (everywhere, not only in the officer's place).
    pub clean: bool,
    /// Campaigns compared.
    pub campaigns: usize,
    /// Outbox events not yet persisted.
    pub outbox_len: u64,
    /// Of those, delivered and not acknowledged.
    pub outbox_pending: u64,
    /// The differences in the officer's campaigns.
    pub differences: Vec<DifferenceView>,
}

/// One difference.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DifferenceView {
    /// The campaign (none for global items).
    pub campaign_id: Option<i64>,
    /// What differs.
    pub item: String,
    /// In Redis.
    pub redis: String,
    /// In PostgreSQL.
    pub postgres: String,
}

/// `record` as `officer` may see it: the differences of campaigns whose owner place they
/// cover (global ones only for the province).
///
/// # Errors
/// Database failure.
pub async fn check_view(
    pg: &PgPool,
    record: check::CheckRecord,
    officer: &Admin,
) -> Result<CheckView, ApiError> {
    let owners: HashMap<i64, i32> = sqlx::query("SELECT id, owner_place FROM campaigns")
        .fetch_all(pg)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("owner_place")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let province = officer.role == AdminRole::Province;
    let differences = record
        .report
        .differences
        .into_iter()
        .filter(|d| match d.campaign_id.and_then(|c| owners.get(&c)) {
            Some(owner) => sees(officer, *owner),
            None => province,
        })
        .map(|d| DifferenceView {
            campaign_id: d.campaign_id,
            item: d.item,
            redis: d.redis,
            postgres: d.postgres,
        })
        .collect();
    Ok(CheckView {
        id: record.id,
        at: record.at,
        actor: record.actor,
        clean: record.clean,
        campaigns: record.report.campaigns,
        outbox_len: record.report.outbox_len,
        outbox_pending: record.report.outbox_pending,
        differences,
    })
}

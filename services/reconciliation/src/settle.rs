//! Settling a period: aggregate ([`crate::aggregate`]), split ([`voucher_core::settlement`]),
//! and write — all in **one transaction**, so a crash at any point leaves nothing behind and
//! the next run starts afresh.
//!
//! Per program and period one settlement run is written (unique on program and period), with
//! one batch per city that had spending, the county shares, the merchant lines, the ledger
//! postings ([`crate::ledger`], checked to sum to zero per batch before commit) and the
//! batch's first workflow step (`draft`). A program already settled for exactly this period is
//! skipped, so re-running writes nothing; a period that overlaps a settled one is refused.
//!
//! Cumulative figures come from the runs already written: what the province paid each city
//! (Σ P of its batches) and so what remains of the pool and of each city's allocation.
//!
//! The other schemes' subsidy lines are written per kind and payee beside the merchant lines
//! (`settlement_subsidy_lines`). A merchant the program advanced money to (预拨资金) has its
//! payable of the batch netted against what is still outstanding of the advance
//! (`settlement_advance_lines`; drawdown = min(payable, outstanding), never negative), and
//! the ledger posts the drawdown ([`crate::ledger`]).
//! Settle periods in order (the cron job settles each day once); paybacks of a negative
//! period are bounded by what was paid before it.
//!
//! Crash testing: `VP_RECON_FAULT=error` fails just before commit, `VP_RECON_FAULT=abort`
//! aborts the process there (as a `kill -9` would).

use crate::aggregate::{aggregate, CityAgg, Payee};
use crate::error::ReconError;
use crate::ledger::{self, BatchFigures, Posting};
use crate::period::Period;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::BTreeMap;
use voucher_core::settlement::{
    merchant_payable, split_local_share, split_program_period, CityPeriod, CitySplit, ProgramPeriod,
};
use voucher_core::{BasisPoints, Fen, PlaceCode};

/// The advisory lock that serialises settlement runs (two cron jobs never interleave).
const SETTLEMENT_LOCK: i64 = 0x5650_5345_5454; // "VPSETT"

/// What to settle.
#[derive(Debug, Clone)]
pub struct SettleRequest {
    /// The period.
    pub period: Period,
    /// Who runs the job (recorded as the run's creator and the batches' draft step).
    pub actor: String,
    /// The job's clock.
    pub now: DateTime<Utc>,
}

/// What a settle call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettleOutcome {
    /// Runs written now (program id, run id).
    pub created: Vec<(i64, i64)>,
    /// Programs already settled for the period (program id, run id): nothing written.
    pub existing: Vec<(i64, i64)>,
}

#[derive(Debug, Clone)]
struct ProgramRow {
    id: i64,
    name: String,
    ratio: BasisPoints,
    pool: Fen,
    cofund: Option<BasisPoints>,
}

fn bp(v: i32, what: &str) -> Result<BasisPoints, ReconError> {
    u32::try_from(v)
        .ok()
        .and_then(|v| BasisPoints::try_from(v).ok())
        .ok_or_else(|| ReconError::Corrupt(format!("{what} {v} is not in 0..=10000")))
}

fn place_db(p: PlaceCode) -> Result<i32, ReconError> {
    i32::try_from(p.get()).map_err(|_| ReconError::Corrupt(format!("place {p}")))
}

async fn programs(con: &mut PgConnection) -> Result<Vec<ProgramRow>, ReconError> {
    let rows = sqlx::query(
        "SELECT id, name, province_ratio_bp, pool_fen, county_cofund_bp FROM programs ORDER BY id",
    )
    .fetch_all(&mut *con)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ProgramRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                ratio: bp(r.try_get("province_ratio_bp")?, "province_ratio_bp")?,
                pool: Fen::try_from(r.try_get::<i64, _>("pool_fen")?)
                    .map_err(|e| ReconError::Corrupt(e.to_string()))?,
                cofund: r
                    .try_get::<Option<i32>, _>("county_cofund_bp")?
                    .map(|v| bp(v, "county_cofund_bp"))
                    .transpose()?,
            })
        })
        .collect()
}

/// Settles `req.period` for every program with records in it (see the module docs).
///
/// # Errors
/// Database failure, an overlapping period, an unbalanced batch (nothing is committed in
/// any of these cases).
#[tracing::instrument(name = "reconciliation.settle", skip_all, fields(period = %req.period), err(level = "debug"))]
pub async fn settle(pool: &PgPool, req: &SettleRequest) -> Result<SettleOutcome, ReconError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SETTLEMENT_LOCK)
        .execute(&mut *tx)
        .await?;
    let programs = programs(&mut tx).await?;
    let mut outcome = SettleOutcome::default();
    let runs = sqlx::query("SELECT id, program_id, period_start, period_end FROM settlement_runs")
        .fetch_all(&mut *tx)
        .await?;
    for r in &runs {
        let (id, program): (i64, i64) = (r.try_get("id")?, r.try_get("program_id")?);
        let (start, end): (NaiveDate, NaiveDate) =
            (r.try_get("period_start")?, r.try_get("period_end")?);
        let settled = Period::new(start, end).map_err(ReconError::Corrupt)?;
        if settled == req.period {
            outcome.existing.push((program, id));
        } else if settled.overlaps(&req.period) {
            return Err(ReconError::PeriodOverlap {
                program,
                period: req.period.to_string(),
                settled: settled.to_string(),
            });
        }
    }
    outcome.existing.sort_unstable();
    let skip: Vec<i64> = outcome.existing.iter().map(|e| e.0).collect();
    let agg = aggregate(&mut tx, &req.period, &skip).await?;
    for program in &programs {
        let Some(cities) = agg.get(&program.id) else {
            continue;
        };
        let run = settle_program(&mut tx, program, cities, req).await?;
        outcome.created.push((program.id, run));
    }
    match std::env::var("VP_RECON_FAULT").as_deref() {
        Ok("error") => return Err(ReconError::InjectedFault),
        Ok("abort") => {
            tracing::warn!("VP_RECON_FAULT=abort: aborting before commit");
            std::process::abort();
        }
        _ => {}
    }
    tx.commit().await?;
    Ok(outcome)
}

async fn settle_program(
    con: &mut PgConnection,
    program: &ProgramRow,
    cities: &BTreeMap<PlaceCode, CityAgg>,
    req: &SettleRequest,
) -> Result<i64, ReconError> {
    let paid_rows = sqlx::query(
        "SELECT city, sum(province_fen)::bigint AS paid FROM settlement_batches
          WHERE program_id = $1 GROUP BY city",
    )
    .bind(program.id)
    .fetch_all(&mut *con)
    .await?;
    let mut paid: BTreeMap<i32, i64> = BTreeMap::new();
    for r in &paid_rows {
        paid.insert(r.try_get("city")?, r.try_get("paid")?);
    }
    let alloc_rows = sqlx::query(
        "SELECT city, allocation_fen FROM program_city_allocations WHERE program_id = $1",
    )
    .bind(program.id)
    .fetch_all(&mut *con)
    .await?;
    let mut allocations: BTreeMap<i32, Fen> = BTreeMap::new();
    for r in &alloc_rows {
        let a = Fen::try_from(r.try_get::<i64, _>("allocation_fen")?)
            .map_err(|e| ReconError::Corrupt(e.to_string()))?;
        allocations.insert(r.try_get("city")?, a);
    }
    let paid_total: i64 = paid.values().sum();
    // A pool lowered below what was already paid leaves nothing, not a negative pool.
    let pool_before = Fen::try_from((program.pool.as_i64() - paid_total).max(0))
        .map_err(|e| ReconError::Corrupt(e.to_string()))?;
    let mut input = Vec::with_capacity(cities.len());
    for (&city, agg) in cities {
        let key = place_db(city)?;
        input.push(CityPeriod {
            city,
            spending_fen: agg.spending_fen(),
            allocation: allocations.get(&key).copied(),
            paid_to_date_fen: paid.get(&key).copied().unwrap_or(0),
        });
    }
    let mut outstanding = outstanding_advances(con, program.id, &req.period).await?;
    let split = split_program_period(&ProgramPeriod {
        ratio: program.ratio,
        pool_remaining: pool_before,
        cities: input.clone(),
    })?;

    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO settlement_runs (program_id, period_start, period_end, starts_at, ends_at,
             program_name, ratio_bp, county_cofund_bp, pool_fen, pool_before_fen, pool_after_fen,
             created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
    )
    .bind(program.id)
    .bind(req.period.start())
    .bind(req.period.end())
    .bind(req.period.starts_at())
    .bind(req.period.ends_at())
    .bind(&program.name)
    .bind(i32::from(program.ratio.get()))
    .bind(program.cofund.map(|c| i32::from(c.get())))
    .bind(program.pool.as_i64())
    .bind(pool_before.as_i64())
    .bind(split.pool_remaining_after.as_i64())
    .bind(&req.actor)
    .bind(req.now)
    .fetch_one(&mut *con)
    .await?;

    for (c, city_in) in split.cities.iter().zip(&input) {
        let agg = cities
            .get(&c.city)
            .ok_or_else(|| ReconError::Corrupt(format!("city {} lost in the split", c.city)))?;
        write_batch(con, program, run_id, c, city_in, agg, req, &mut outstanding).await?;
    }
    Ok(run_id)
}

/// What each merchant still holds of the program's advances made before the period ends:
/// Σ advances − Σ drawdowns of earlier batches.
async fn outstanding_advances(
    con: &mut PgConnection,
    program: i64,
    period: &Period,
) -> Result<BTreeMap<String, i64>, ReconError> {
    let rows = sqlx::query(
        "SELECT a.merchant_id,
                (a.advanced - coalesce((SELECT sum(l.drawdown_fen) FROM settlement_advance_lines l
                                         JOIN settlement_batches b ON b.id = l.batch_id
                                        WHERE b.program_id = $1 AND l.merchant_id = a.merchant_id), 0))::bigint
                  AS outstanding
           FROM (SELECT merchant_id, sum(amount_fen)::bigint AS advanced FROM merchant_advances
                  WHERE program_id = $1 AND created_at < $2 GROUP BY merchant_id) a",
    )
    .bind(program)
    .bind(period.ends_at())
    .fetch_all(&mut *con)
    .await?;
    let mut out = BTreeMap::new();
    for r in &rows {
        let left: i64 = r.try_get::<Option<i64>, _>("outstanding")?.unwrap_or(0);
        if left > 0 {
            out.insert(r.try_get("merchant_id")?, left);
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
async fn write_batch(
    con: &mut PgConnection,
    program: &ProgramRow,
    run_id: i64,
    c: &CitySplit,
    city_in: &CityPeriod,
    agg: &CityAgg,
    req: &SettleRequest,
    outstanding: &mut BTreeMap<String, i64>,
) -> Result<(), ReconError> {
    let counties: Vec<(PlaceCode, i64)> = agg.counties.iter().map(|(k, v)| (*k, *v)).collect();
    let local = split_local_share(c.local_fen, c.spending_fen, &counties, program.cofund)?;
    let county_total: i64 = local.counties.iter().map(|k| k.1).sum();
    let batch_id: i64 = sqlx::query_scalar(
        "INSERT INTO settlement_batches (run_id, program_id, city, granted_fen, reversed_fen,
             spending_fen, claim_fen, province_fen, local_fen, city_fen, county_fen, allocation_fen,
             paid_before_fen, limit_kind, redemptions, reversals)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
    )
    .bind(run_id)
    .bind(program.id)
    .bind(place_db(c.city)?)
    .bind(agg.granted_fen)
    .bind(agg.reversed_fen)
    .bind(c.spending_fen)
    .bind(c.claim_fen)
    .bind(c.province_fen)
    .bind(c.local_fen)
    .bind(local.city_fen)
    .bind(county_total)
    .bind(city_in.allocation.map(Fen::as_i64))
    .bind(city_in.paid_to_date_fen)
    .bind(c.limit.as_str())
    .bind(agg.redemptions)
    .bind(agg.reversals)
    .fetch_one(&mut *con)
    .await?;

    if !local.counties.is_empty() {
        let mut county_ids = Vec::new();
        let mut spending = Vec::new();
        let mut shares = Vec::new();
        for (county, share) in &local.counties {
            county_ids.push(place_db(*county)?);
            spending.push(agg.counties.get(county).copied().unwrap_or(0));
            shares.push(*share);
        }
        sqlx::query(
            "INSERT INTO settlement_county_shares (batch_id, county, spending_fen, county_fen)
             SELECT $1, * FROM UNNEST($2::integer[], $3::bigint[], $4::bigint[])",
        )
        .bind(batch_id)
        .bind(&county_ids)
        .bind(&spending)
        .bind(&shares)
        .execute(&mut *con)
        .await?;
    }

    let mut ids = Vec::with_capacity(agg.merchants.len());
    let mut names = Vec::with_capacity(agg.merchants.len());
    let (mut granted, mut reversed, mut payable, mut n_red, mut n_rev) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, m) in &agg.merchants {
        ids.push(id.clone());
        names.push(m.name.clone());
        granted.push(m.granted_fen);
        reversed.push(m.reversed_fen);
        payable.push(merchant_payable(m.granted_fen, m.reversed_fen)?);
        n_red.push(m.redemptions);
        n_rev.push(m.reversals);
    }
    sqlx::query(
        "INSERT INTO settlement_merchant_lines (batch_id, merchant_id, merchant_name, granted_fen,
             reversed_fen, payable_fen, redemptions, reversals)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
                                  $7::bigint[], $8::bigint[])",
    )
    .bind(batch_id)
    .bind(&ids)
    .bind(&names)
    .bind(&granted)
    .bind(&reversed)
    .bind(&payable)
    .bind(&n_red)
    .bind(&n_rev)
    .execute(&mut *con)
    .await?;

    let mut payables: Vec<(Payee, i64, &str)> = ids
        .iter()
        .zip(payable.iter().copied())
        .map(|(id, amount)| {
            (
                Payee::Merchant(id.clone()),
                amount,
                "discounts granted − reversed",
            )
        })
        .collect();
    // What each merchant is owed by this batch, all kinds together (for the advance).
    let mut merchant_total: BTreeMap<String, i64> =
        ids.iter().cloned().zip(payable.iter().copied()).collect();
    if !agg.lines.is_empty() {
        let (mut kinds, mut payee_kinds, mut payee_ids, mut payee_names) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut granted, mut reversed, mut line_payable, mut counts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((kind, payee), l) in &agg.lines {
            let amount = merchant_payable(l.granted_fen, l.reversed_fen)?;
            kinds.push(kind.clone());
            payee_kinds.push(payee.kind());
            payee_ids.push(payee.id().to_owned());
            payee_names.push(l.name.clone());
            granted.push(l.granted_fen);
            reversed.push(l.reversed_fen);
            line_payable.push(amount);
            counts.push(l.lines);
            payables.push((payee.clone(), amount, kind.as_str()));
            if let Payee::Merchant(m) = payee {
                *merchant_total.entry(m.clone()).or_default() += amount;
            }
        }
        sqlx::query(
            "INSERT INTO settlement_subsidy_lines (batch_id, kind, payee_kind, payee_id, payee_name,
                 granted_fen, reversed_fen, payable_fen, lines)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                                      $7::bigint[], $8::bigint[], $9::bigint[])",
        )
        .bind(batch_id)
        .bind(&kinds)
        .bind(&payee_kinds)
        .bind(&payee_ids)
        .bind(&payee_names)
        .bind(&granted)
        .bind(&reversed)
        .bind(&line_payable)
        .bind(&counts)
        .execute(&mut *con)
        .await?;
    }

    // Advances: each merchant's payable of the batch draws down what it still holds.
    let mut drawdowns: Vec<(String, i64)> = Vec::new();
    for (merchant, total) in &merchant_total {
        let Some(left) = outstanding.get_mut(merchant) else {
            continue;
        };
        let before = *left;
        let drawn = (*total).clamp(0, before);
        *left -= drawn;
        sqlx::query(
            "INSERT INTO settlement_advance_lines (batch_id, merchant_id, payable_fen,
                 outstanding_before_fen, drawdown_fen, outstanding_after_fen, net_payable_fen)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(batch_id)
        .bind(merchant)
        .bind(total)
        .bind(before)
        .bind(drawn)
        .bind(before - drawn)
        .bind(total - drawn)
        .execute(&mut *con)
        .await?;
        if drawn > 0 {
            drawdowns.push((merchant.clone(), drawn));
        }
    }

    let county_figures: Vec<(u32, i64)> =
        local.counties.iter().map(|(k, v)| (k.get(), *v)).collect();
    let drawdown_refs: Vec<(&str, i64)> = drawdowns.iter().map(|(m, d)| (m.as_str(), *d)).collect();
    let postings = ledger::postings(&BatchFigures {
        program_id: program.id,
        city: c.city.get(),
        province_fen: c.province_fen,
        city_fen: local.city_fen,
        counties: &county_figures,
        payables: &payables,
        drawdowns: &drawdown_refs,
    });
    write_postings(con, Some(batch_id), None, &postings).await?;

    sqlx::query(
        "INSERT INTO settlement_batch_steps (batch_id, status, actor, role, place, at)
         VALUES ($1, 'draft', $2, 'job', NULL, $3)",
    )
    .bind(batch_id)
    .bind(&req.actor)
    .bind(req.now)
    .execute(&mut *con)
    .await?;
    Ok(())
}

/// Writes `postings` of a batch (`batch_id`) or of an advance (`advance_id`), creating their
/// accounts, and checks that they sum to zero.
///
/// # Errors
/// Database failure; [`ReconError::Unbalanced`].
pub async fn write_postings(
    con: &mut PgConnection,
    batch_id: Option<i64>,
    advance_id: Option<i64>,
    postings: &[Posting],
) -> Result<(), ReconError> {
    let mut codes = Vec::with_capacity(postings.len());
    let mut kinds = Vec::with_capacity(postings.len());
    let mut programs: Vec<Option<i64>> = Vec::with_capacity(postings.len());
    let mut places: Vec<Option<i32>> = Vec::with_capacity(postings.len());
    let mut merchants: Vec<Option<String>> = Vec::with_capacity(postings.len());
    let mut persons: Vec<Option<String>> = Vec::with_capacity(postings.len());
    let mut line_nos = Vec::with_capacity(postings.len());
    let mut amounts = Vec::with_capacity(postings.len());
    let mut memos = Vec::with_capacity(postings.len());
    for (i, p) in postings.iter().enumerate() {
        codes.push(p.account.code.clone());
        kinds.push(p.account.kind.as_str());
        programs.push(p.account.program_id);
        places.push(
            p.account
                .place
                .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
        );
        merchants.push(p.account.merchant_id.clone());
        persons.push(p.account.person_id.clone());
        line_nos.push(
            i32::try_from(i + 1).map_err(|_| ReconError::Corrupt("too many postings".into()))?,
        );
        amounts.push(p.amount_fen);
        memos.push(p.memo.clone());
    }
    sqlx::query(
        "INSERT INTO ledger_accounts (code, kind, program_id, place, merchant_id, person_id)
         SELECT DISTINCT ON (code) * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::integer[],
                                                 $5::text[], $6::text[])
                AS a(code, kind, program_id, place, merchant_id, person_id)
         ON CONFLICT (code) DO NOTHING",
    )
    .bind(&codes)
    .bind(&kinds)
    .bind(&programs)
    .bind(&places)
    .bind(&merchants)
    .bind(&persons)
    .execute(&mut *con)
    .await?;
    sqlx::query(
        "INSERT INTO ledger_postings (batch_id, advance_id, line_no, account_code, amount_fen, memo)
         SELECT $1, $2, * FROM UNNEST($3::integer[], $4::text[], $5::bigint[], $6::text[])",
    )
    .bind(batch_id)
    .bind(advance_id)
    .bind(&line_nos)
    .bind(&codes)
    .bind(&amounts)
    .bind(&memos)
    .execute(&mut *con)
    .await?;
    let sum: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(amount_fen), 0)::bigint FROM ledger_postings
          WHERE batch_id IS NOT DISTINCT FROM $1 AND advance_id IS NOT DISTINCT FROM $2",
    )
    .bind(batch_id)
    .bind(advance_id)
    .fetch_one(&mut *con)
    .await?;
    if sum != 0 {
        return Err(ReconError::Unbalanced {
            batch: batch_id.or(advance_id).unwrap_or(0),
            sum,
        });
    }
    Ok(())
}

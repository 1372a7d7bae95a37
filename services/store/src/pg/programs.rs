//! Programs (funding rules): the `programs` table and each program's city allocations in
//! `program_city_allocations`, mapped to [`voucher_core::Program`].

use crate::StoreError;
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;
use voucher_core::{BasisPoints, Fen, NewProgram, PlaceCode, Program, ProgramId, RefundPolicy};

/// Inserts a validated program.
///
/// # Errors
/// Database failure.
#[tracing::instrument(name = "store.programs.create", skip_all, err(level = "debug"))]
pub async fn create(pool: &PgPool, spec: &NewProgram) -> Result<Program, StoreError> {
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO programs (name, funder_place, province_ratio_bp, pool_fen, county_cofund_bp, refund_policy)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&spec.name)
    .bind(place_to_db(spec.funder_place))
    .bind(i32::from(spec.province_ratio_bp.get()))
    .bind(spec.pool.as_i64())
    .bind(spec.county_cofund_bp.map(|bp| i32::from(bp.get())))
    .bind(refund_policy_name(spec.refund_policy))
    .fetch_one(&mut *tx)
    .await?;
    if !spec.city_allocations.is_empty() {
        let cities: Vec<i32> = spec
            .city_allocations
            .keys()
            .map(|c| place_to_db(*c))
            .collect();
        let amounts: Vec<i64> = spec.city_allocations.values().map(|f| f.as_i64()).collect();
        sqlx::query(
            "INSERT INTO program_city_allocations (program_id, city, allocation_fen)
             SELECT $1, city, amount FROM UNNEST($2::int4[], $3::int8[]) AS t (city, amount)",
        )
        .bind(id)
        .bind(&cities)
        .bind(&amounts)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Program {
        id: ProgramId(id),
        spec: spec.clone(),
    })
}

/// One program.
///
/// # Errors
/// Database failure.
pub async fn get(pool: &PgPool, id: ProgramId) -> Result<Option<Program>, StoreError> {
    let programs = load(pool, Some(id)).await?;
    Ok(programs.into_iter().next())
}

/// All programs, by id.
///
/// # Errors
/// Database failure.
pub async fn list(pool: &PgPool) -> Result<Vec<Program>, StoreError> {
    load(pool, None).await
}

/// Programs (one, or all), by id, with their allocations.
async fn load(pool: &PgPool, only: Option<ProgramId>) -> Result<Vec<Program>, StoreError> {
    let only = only.map(|id| id.0);
    let rows = sqlx::query(
        "SELECT id, name, funder_place, province_ratio_bp, pool_fen, county_cofund_bp, refund_policy
         FROM programs WHERE ($1::int8 IS NULL OR id = $1) ORDER BY id",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    let allocations = sqlx::query(
        "SELECT program_id, city, allocation_fen FROM program_city_allocations
         WHERE ($1::int8 IS NULL OR program_id = $1)",
    )
    .bind(only)
    .fetch_all(pool)
    .await?;
    let mut by_program: BTreeMap<i64, BTreeMap<PlaceCode, Fen>> = BTreeMap::new();
    for row in allocations {
        let program: i64 = row.try_get("program_id")?;
        let city = place_from_db(row.try_get("city")?)?;
        let amount = fen_from_db(row.try_get("allocation_fen")?)?;
        by_program.entry(program).or_default().insert(city, amount);
    }
    rows.into_iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            let county_cofund_bp: Option<i32> = row.try_get("county_cofund_bp")?;
            let refund_policy: String = row.try_get("refund_policy")?;
            Ok(Program {
                id: ProgramId(id),
                spec: NewProgram {
                    name: row.try_get("name")?,
                    funder_place: place_from_db(row.try_get("funder_place")?)?,
                    province_ratio_bp: bp_from_db(row.try_get("province_ratio_bp")?)?,
                    pool: fen_from_db(row.try_get("pool_fen")?)?,
                    city_allocations: by_program.remove(&id).unwrap_or_default(),
                    county_cofund_bp: county_cofund_bp.map(bp_from_db).transpose()?,
                    refund_policy: match refund_policy.as_str() {
                        "restore" => RefundPolicy::Restore,
                        "forfeit" => RefundPolicy::Forfeit,
                        other => {
                            return Err(StoreError::Corrupt(format!("refund policy {other:?}")))
                        }
                    },
                },
            })
        })
        .collect()
}

fn refund_policy_name(policy: RefundPolicy) -> &'static str {
    match policy {
        RefundPolicy::Restore => "restore",
        RefundPolicy::Forfeit => "forfeit",
    }
}

/// A place code as stored (`integer`): six digits always fit.
pub(crate) fn place_to_db(place: PlaceCode) -> i32 {
    i32::try_from(place.get()).unwrap_or(i32::MAX)
}

pub(crate) fn place_from_db(v: i32) -> Result<PlaceCode, StoreError> {
    u32::try_from(v)
        .ok()
        .and_then(|v| PlaceCode::try_from(v).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("place code {v}")))
}

pub(crate) fn fen_from_db(v: i64) -> Result<Fen, StoreError> {
    Fen::try_from(v).map_err(|e| StoreError::Corrupt(format!("amount {v}: {e}")))
}

fn bp_from_db(v: i32) -> Result<BasisPoints, StoreError> {
    u32::try_from(v)
        .ok()
        .and_then(|v| BasisPoints::try_from(v).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("basis points {v}")))
}

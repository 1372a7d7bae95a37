//! Advances (预拨资金, 002 §(十五): "结合实际预拨资金降低企业压力"): a program pays a
//! participating merchant an amount before its sales, to ease its cash flow. The advance is
//! recorded with its own balanced ledger postings ([`crate::ledger::advance_postings`]);
//! each later settlement batch nets what the merchant earned against what it still holds
//! ([`crate::settle`]), so the ledger always shows the advance, its drawdown and the balance
//! owed in either direction, to the fen.
//!
//! Only a province officer advances (the province funds the programs); the merchant must be
//! approved for the program. `reference` makes the call idempotent: the same reference for
//! the same program and merchant returns the first advance and writes nothing.

use crate::auth::{Admin, Role};
use crate::error::ReconError;
use crate::ledger;
use crate::settle::write_postings;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row};

/// Largest single advance: 100 million yuan.
pub const MAX_ADVANCE_FEN: i64 = 10_000_000_000;

/// An advance to make.
#[derive(Debug, Clone)]
pub struct AdvanceRequest {
    /// The program paying it.
    pub program_id: i64,
    /// The merchant receiving it.
    pub merchant_id: String,
    /// How much (fen, > 0).
    pub amount_fen: i64,
    /// The payment's reference (idempotency), 1–64 characters.
    pub reference: String,
}

/// A merchant's advances under a program and what is left of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AdvanceBalance {
    /// The program.
    pub program_id: i64,
    /// The merchant.
    pub merchant_id: String,
    /// Its name.
    pub merchant_name: String,
    /// Its city.
    pub city: i32,
    /// Advanced so far.
    pub advanced_fen: i64,
    /// Drawn down by settlements so far.
    pub drawn_fen: i64,
    /// Still held by the merchant (owed back if the program ends now).
    pub outstanding_fen: i64,
}

/// An advance as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Advance {
    /// The record.
    pub id: i64,
    /// The program.
    pub program_id: i64,
    /// The merchant.
    pub merchant_id: String,
    /// How much.
    pub amount_fen: i64,
    /// The payment's reference.
    pub reference: String,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// `false` when this answers a repeated reference (nothing written).
    pub created: bool,
}

/// Makes an advance (see the module docs).
///
/// # Errors
/// [`ReconError::ForbiddenRole`] for a city officer, [`ReconError::ForbiddenPlace`] for a
/// merchant outside the officer's province, [`ReconError::Usage`] for a bad amount,
/// reference, unknown program or merchant, or a merchant not approved for the program;
/// database failure.
pub async fn advance(
    pool: &PgPool,
    who: &Admin,
    req: &AdvanceRequest,
    now: DateTime<Utc>,
) -> Result<Advance, ReconError> {
    if who.role != Role::Province {
        return Err(ReconError::ForbiddenRole {
            who: who.name.clone(),
            to: "advance".into(),
            needed: Role::Province.as_str(),
        });
    }
    if !(1..=MAX_ADVANCE_FEN).contains(&req.amount_fen) {
        return Err(ReconError::Usage(format!(
            "amount_fen must be 1–{MAX_ADVANCE_FEN}"
        )));
    }
    let reference = req.reference.trim();
    if reference.is_empty() || reference.chars().count() > 64 {
        return Err(ReconError::Usage(
            "reference must be 1–64 characters".into(),
        ));
    }
    let mut tx = pool.begin().await?;
    let merchant = sqlx::query(
        "SELECT m.city, EXISTS (SELECT 1 FROM merchant_programs p
                                 WHERE p.merchant_id = m.id AND p.program_id = $2) AS approved,
                EXISTS (SELECT 1 FROM programs WHERE id = $2) AS program_exists
           FROM merchants m WHERE m.id = $1",
    )
    .bind(&req.merchant_id)
    .bind(req.program_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ReconError::Usage(format!("no merchant {}", req.merchant_id)))?;
    if !merchant.try_get::<bool, _>("program_exists")? {
        return Err(ReconError::Usage(format!("no program {}", req.program_id)));
    }
    let city: i32 = merchant.try_get("city")?;
    let place = u32::try_from(city)
        .ok()
        .and_then(|c| voucher_core::PlaceCode::try_from(c).ok())
        .ok_or_else(|| ReconError::Corrupt(format!("merchant city {city}")))?;
    if !who.can_manage(place) {
        return Err(ReconError::ForbiddenPlace {
            who: who.name.clone(),
            place,
        });
    }
    if !merchant.try_get::<bool, _>("approved")? {
        return Err(ReconError::Usage(format!(
            "merchant {} is not approved for program {}",
            req.merchant_id, req.program_id
        )));
    }
    let inserted = sqlx::query(
        "INSERT INTO merchant_advances (program_id, merchant_id, amount_fen, reference, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (program_id, merchant_id, reference) DO NOTHING
         RETURNING id",
    )
    .bind(req.program_id)
    .bind(&req.merchant_id)
    .bind(req.amount_fen)
    .bind(reference)
    .bind(&who.name)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let created = if let Some(row) = inserted {
        let id: i64 = row.try_get("id")?;
        let postings = ledger::advance_postings(req.program_id, &req.merchant_id, req.amount_fen);
        write_postings(&mut tx, None, Some(id), &postings).await?;
        true
    } else {
        false
    };
    let row = sqlx::query(
        "SELECT id, program_id, merchant_id, amount_fen, reference, created_by, created_at
           FROM merchant_advances WHERE program_id = $1 AND merchant_id = $2 AND reference = $3",
    )
    .bind(req.program_id)
    .bind(&req.merchant_id)
    .bind(reference)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Advance {
        id: row.try_get("id")?,
        program_id: row.try_get("program_id")?,
        merchant_id: row.try_get("merchant_id")?,
        amount_fen: row.try_get("amount_fen")?,
        reference: row.try_get("reference")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        created,
    })
}

/// Every merchant's advance balance under every program, for the merchants `who` covers.
///
/// # Errors
/// Database failure.
pub async fn balances(pool: &PgPool, who: &Admin) -> Result<Vec<AdvanceBalance>, ReconError> {
    let rows = sqlx::query(
        "SELECT a.program_id, a.merchant_id, m.name, m.city, m.county, a.advanced,
                coalesce((SELECT sum(l.drawdown_fen) FROM settlement_advance_lines l
                            JOIN settlement_batches b ON b.id = l.batch_id
                           WHERE b.program_id = a.program_id AND l.merchant_id = a.merchant_id), 0)::bigint AS drawn
           FROM (SELECT program_id, merchant_id, sum(amount_fen)::bigint AS advanced
                   FROM merchant_advances GROUP BY 1, 2) a
           JOIN merchants m ON m.id = a.merchant_id
          ORDER BY a.program_id, a.merchant_id",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let city: i32 = r.try_get("city")?;
        let county: Option<i32> = r.try_get("county")?;
        let visible = u32::try_from(county.unwrap_or(city))
            .ok()
            .and_then(|c| voucher_core::PlaceCode::try_from(c).ok())
            .is_some_and(|p| who.can_manage(p));
        if !visible {
            continue;
        }
        let (advanced, drawn): (i64, i64) = (r.try_get("advanced")?, r.try_get("drawn")?);
        out.push(AdvanceBalance {
            program_id: r.try_get("program_id")?,
            merchant_id: r.try_get("merchant_id")?,
            merchant_name: r.try_get("name")?,
            city,
            advanced_fen: advanced,
            drawn_fen: drawn,
            outstanding_fen: advanced - drawn,
        });
    }
    Ok(out)
}

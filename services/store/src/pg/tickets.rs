//! Scenic-spot ticket subsidies (门票补贴, seed 001 item 13): the tables of
//! `0011_tickets.sql` — schemes (`ticket_schemes`), the sales the spots' terminals report
//! (`ticket_sales`) and refunds of some of their tickets (`ticket_refunds`) — and the
//! `subsidy_lines` rows (`0006`) a sale or a refund writes, paid to the scenic spot.
//!
//! What makes the rules hold is here, in the database:
//! - **a sale is recorded once**: `UNIQUE (merchant_id, sale_ref)`; [`insert_sale_in_tx`]
//!   inserts with `ON CONFLICT DO NOTHING` and says whether it did, so two reports racing
//!   with the same reference record one sale (the second waits for the first to commit);
//! - **never more refunded than sold**: [`add_refund_in_tx`] raises `refunded_quantity`
//!   only `WHERE refunded_quantity + q <= quantity` (and a CHECK says the same);
//! - **a subsidy line is written once**: `subsidy_lines.source` is unique
//!   (`ticket:<sale>:province|city`, `ticket-refund:<refund>:province|city`).
//!
//! This module decides no business rule (eligibility, amounts, the window, who may report):
//! the redemption service's `tickets` flow does, and calls the `…_in_tx` writes inside one
//! transaction.

use crate::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

// ---------------------------------------------------------------- schemes

/// A scheme as submitted (validated by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchemeRecord {
    /// Human name.
    pub name: String,
    /// The city or county whose scheme it is.
    pub owner_place: i32,
    /// The program that pays the province's part.
    pub province_program_id: i64,
    /// The program that pays the city's part.
    pub city_program_id: i64,
    /// Highest sale price as a share of the list price that qualifies.
    pub max_sale_ratio_bp: i32,
    /// `discount`, `sale_price` or `list_price`; `None` when the province pays no part.
    pub province_basis: Option<String>,
    /// The province's rate of its basis.
    pub province_rate_bp: Option<i32>,
    /// Most the province pays per ticket.
    pub province_per_ticket_cap_fen: Option<i64>,
    /// The city's rate of the sale price.
    pub city_rate_bp: i32,
    /// Most the city pays per ticket.
    pub city_per_ticket_cap_fen: Option<i64>,
    /// First sale instant that counts.
    pub starts_at: DateTime<Utc>,
    /// Sales from this instant on are refused.
    pub ends_at: DateTime<Utc>,
    /// The administrator's name.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A scheme as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SchemeRecord {
    /// Assigned by the database.
    pub id: i64,
    /// Human name.
    pub name: String,
    /// The city or county whose scheme it is.
    pub owner_place: i32,
    /// The program that pays the province's part.
    pub province_program_id: i64,
    /// The program that pays the city's part.
    pub city_program_id: i64,
    /// Highest sale price as a share of the list price that qualifies.
    pub max_sale_ratio_bp: i32,
    /// `discount`, `sale_price` or `list_price`; `None` when the province pays no part.
    pub province_basis: Option<String>,
    /// The province's rate of its basis.
    pub province_rate_bp: Option<i32>,
    /// Most the province pays per ticket.
    pub province_per_ticket_cap_fen: Option<i64>,
    /// The city's rate of the sale price.
    pub city_rate_bp: i32,
    /// Most the city pays per ticket.
    pub city_per_ticket_cap_fen: Option<i64>,
    /// First sale instant that counts.
    pub starts_at: DateTime<Utc>,
    /// Sales from this instant on are refused.
    pub ends_at: DateTime<Utc>,
    /// The administrator's name.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

const SCHEME_COLUMNS: &str = "id, name, owner_place, province_program_id, city_program_id, max_sale_ratio_bp,
    province_basis, province_rate_bp, province_per_ticket_cap_fen, city_rate_bp, city_per_ticket_cap_fen,
    starts_at, ends_at, created_by, created_at";

/// Inserts a scheme and answers it as stored.
///
/// # Errors
/// Database failure (a program that does not exist is a foreign-key violation: the caller
/// checks the programs first).
#[tracing::instrument(name = "store.tickets.create_scheme", skip_all, err(level = "debug"))]
pub async fn create_scheme(pool: &PgPool, s: &NewSchemeRecord) -> Result<SchemeRecord, StoreError> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO ticket_schemes (name, owner_place, province_program_id, city_program_id,
             max_sale_ratio_bp, province_basis, province_rate_bp, province_per_ticket_cap_fen,
             city_rate_bp, city_per_ticket_cap_fen, starts_at, ends_at, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         RETURNING {SCHEME_COLUMNS}"
    ))
    .bind(&s.name)
    .bind(s.owner_place)
    .bind(s.province_program_id)
    .bind(s.city_program_id)
    .bind(s.max_sale_ratio_bp)
    .bind(&s.province_basis)
    .bind(s.province_rate_bp)
    .bind(s.province_per_ticket_cap_fen)
    .bind(s.city_rate_bp)
    .bind(s.city_per_ticket_cap_fen)
    .bind(s.starts_at)
    .bind(s.ends_at)
    .bind(&s.created_by)
    .bind(s.created_at)
    .fetch_one(pool)
    .await?)
}

/// One scheme (on a pool, or inside a transaction).
///
/// # Errors
/// Database failure.
pub async fn get_scheme<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    id: i64,
) -> Result<Option<SchemeRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SCHEME_COLUMNS} FROM ticket_schemes WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?)
}

/// Every scheme, by id (the caller keeps those an administrator may see).
///
/// # Errors
/// Database failure.
pub async fn list_schemes(pool: &PgPool) -> Result<Vec<SchemeRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SCHEME_COLUMNS} FROM ticket_schemes ORDER BY id"
    ))
    .fetch_all(pool)
    .await?)
}

/// Which of `programs` the merchant is approved for (`merchant_programs`).
///
/// # Errors
/// Database failure.
pub async fn approved_programs(
    con: &mut PgConnection,
    merchant_id: &str,
    programs: &[i64],
) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT program_id FROM merchant_programs
         WHERE merchant_id = $1 AND program_id = ANY($2) ORDER BY program_id",
    )
    .bind(merchant_id)
    .bind(programs)
    .fetch_all(con)
    .await?)
}

// ---------------------------------------------------------------- sales

/// A ticket sale as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SaleRecord {
    /// Made by the service (UUID v7).
    pub id: Uuid,
    /// The scheme it was reported under.
    pub scheme_id: i64,
    /// The scenic spot.
    pub merchant_id: String,
    /// The terminal that reported it.
    pub terminal_id: Uuid,
    /// The spot's own reference, unique per merchant.
    pub sale_ref: String,
    /// The list price of one ticket.
    pub list_price_fen: i64,
    /// The actual sale price of one ticket.
    pub sale_price_fen: i64,
    /// Tickets sold.
    pub quantity: i32,
    /// Whether the sale qualified.
    pub eligible: bool,
    /// The province's part per ticket.
    pub province_per_ticket_fen: i64,
    /// The city's part per ticket.
    pub city_per_ticket_fen: i64,
    /// Tickets refunded so far.
    pub refunded_quantity: i32,
    /// When it was reported (the service's clock): the instant it counts at.
    pub sold_at: DateTime<Utc>,
}

const SALE_COLUMNS: &str =
    "id, scheme_id, merchant_id, terminal_id, sale_ref, list_price_fen, sale_price_fen,
    quantity, eligible, province_per_ticket_fen, city_per_ticket_fen, refunded_quantity, sold_at";

/// The merchant's sale with this reference.
///
/// # Errors
/// Database failure.
pub async fn sale_by_ref(
    con: &mut PgConnection,
    merchant_id: &str,
    sale_ref: &str,
) -> Result<Option<SaleRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SALE_COLUMNS} FROM ticket_sales WHERE merchant_id = $1 AND sale_ref = $2"
    ))
    .bind(merchant_id)
    .bind(sale_ref)
    .fetch_optional(con)
    .await?)
}

/// The merchant's sale `id`, its row locked until the transaction ends (a refund's
/// decision).
///
/// # Errors
/// Database failure.
pub async fn lock_sale_in_tx(
    con: &mut PgConnection,
    merchant_id: &str,
    id: Uuid,
) -> Result<Option<SaleRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SALE_COLUMNS} FROM ticket_sales WHERE id = $1 AND merchant_id = $2 FOR UPDATE"
    ))
    .bind(id)
    .bind(merchant_id)
    .fetch_optional(con)
    .await?)
}

/// Inserts a sale unless the merchant already has one with its `sale_ref` (then nothing is
/// written and `false` is answered; a concurrent insert of the same reference is waited
/// for).
///
/// # Errors
/// Database failure.
pub async fn insert_sale_in_tx(con: &mut PgConnection, s: &SaleRecord) -> Result<bool, StoreError> {
    let done = sqlx::query(&format!(
        "INSERT INTO ticket_sales ({SALE_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (merchant_id, sale_ref) DO NOTHING"
    ))
    .bind(s.id)
    .bind(s.scheme_id)
    .bind(&s.merchant_id)
    .bind(s.terminal_id)
    .bind(&s.sale_ref)
    .bind(s.list_price_fen)
    .bind(s.sale_price_fen)
    .bind(s.quantity)
    .bind(s.eligible)
    .bind(s.province_per_ticket_fen)
    .bind(s.city_per_ticket_fen)
    .bind(s.refunded_quantity)
    .bind(s.sold_at)
    .execute(con)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------- refunds

/// A refund of some of a sale's tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RefundRecord {
    /// Made by the service (UUID v7).
    pub id: Uuid,
    /// The sale.
    pub sale_id: Uuid,
    /// The spot's reference for this refund (unique per sale).
    pub refund_ref: String,
    /// Tickets refunded.
    pub quantity: i32,
    /// Province's part given back.
    pub province_fen: i64,
    /// City's part given back.
    pub city_fen: i64,
    /// When (the service's clock): the instant it counts at.
    pub created_at: DateTime<Utc>,
}

const REFUND_COLUMNS: &str =
    "id, sale_id, refund_ref, quantity, province_fen, city_fen, created_at";

/// The sale's refund with this reference.
///
/// # Errors
/// Database failure.
pub async fn refund_by_ref(
    con: &mut PgConnection,
    sale_id: Uuid,
    refund_ref: &str,
) -> Result<Option<RefundRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM ticket_refunds WHERE sale_id = $1 AND refund_ref = $2"
    ))
    .bind(sale_id)
    .bind(refund_ref)
    .fetch_optional(con)
    .await?)
}

/// Records a refund and raises the sale's refunded quantity, in one statement, only while
/// `refunded_quantity + quantity <= quantity sold`. Answers `false` (nothing written) when
/// that does not hold. Call with the sale's row locked ([`lock_sale_in_tx`]).
///
/// # Errors
/// Database failure.
pub async fn add_refund_in_tx(
    con: &mut PgConnection,
    r: &RefundRecord,
) -> Result<bool, StoreError> {
    let done = sqlx::query(&format!(
        "WITH sale AS (
             UPDATE ticket_sales SET refunded_quantity = refunded_quantity + $4
              WHERE id = $2 AND refunded_quantity + $4 <= quantity
             RETURNING id)
         INSERT INTO ticket_refunds ({REFUND_COLUMNS})
         SELECT $1, sale.id, $3, $4, $5, $6, $7 FROM sale"
    ))
    .bind(r.id)
    .bind(r.sale_id)
    .bind(&r.refund_ref)
    .bind(r.quantity)
    .bind(r.province_fen)
    .bind(r.city_fen)
    .bind(r.created_at)
    .execute(con)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------- subsidy lines

/// A subsidy line paid to a scenic spot (a merchant): one row of `subsidy_lines`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantSubsidyLine {
    /// New id.
    pub id: Uuid,
    /// `ticket:<sale>:<part>` or `ticket-refund:<refund>:<part>` (unique).
    pub source: String,
    /// `ticket_province` or `ticket_city`.
    pub kind: String,
    /// The program that pays it.
    pub program_id: i64,
    /// Settlement city.
    pub city: i32,
    /// Co-funding county, if any.
    pub county: Option<i32>,
    /// The scenic spot.
    pub merchant_id: String,
    /// Granted (> 0) or given back (< 0).
    pub amount_fen: i64,
    /// The instant that puts it in a settlement period.
    pub counted_at: DateTime<Utc>,
    /// Facts for the reports.
    pub detail: serde_json::Value,
}

/// Inserts subsidy lines paid to merchants, in one statement.
///
/// # Errors
/// Database failure (a second line of the same source is a unique violation: a bug, since
/// the sale or the refund it comes from is written once).
pub async fn insert_lines_in_tx(
    con: &mut PgConnection,
    lines: &[MerchantSubsidyLine],
) -> Result<(), StoreError> {
    if lines.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = lines.iter().map(|l| l.id).collect();
    let sources: Vec<&str> = lines.iter().map(|l| l.source.as_str()).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l.kind.as_str()).collect();
    let programs: Vec<i64> = lines.iter().map(|l| l.program_id).collect();
    let cities: Vec<i32> = lines.iter().map(|l| l.city).collect();
    let counties: Vec<Option<i32>> = lines.iter().map(|l| l.county).collect();
    let merchants: Vec<&str> = lines.iter().map(|l| l.merchant_id.as_str()).collect();
    let amounts: Vec<i64> = lines.iter().map(|l| l.amount_fen).collect();
    let counted: Vec<DateTime<Utc>> = lines.iter().map(|l| l.counted_at).collect();
    let details: Vec<serde_json::Value> = lines.iter().map(|l| l.detail.clone()).collect();
    sqlx::query(
        "INSERT INTO subsidy_lines (id, source, kind, program_id, campaign_id, city, county, payee_kind,
                                    merchant_id, person_id, amount_fen, counted_at, detail)
         SELECT id, source, kind, program_id, NULL, city, county, 'merchant', merchant_id, NULL,
                amount_fen, counted_at, detail
           FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::int4[], $6::int4[],
                       $7::text[], $8::int8[], $9::timestamptz[], $10::jsonb[])
                AS t (id, source, kind, program_id, city, county, merchant_id, amount_fen, counted_at, detail)",
    )
    .bind(&ids)
    .bind(&sources)
    .bind(&kinds)
    .bind(&programs)
    .bind(&cities)
    .bind(&counties)
    .bind(&merchants)
    .bind(&amounts)
    .bind(&counted)
    .bind(&details)
    .execute(con)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- idempotency

/// Stores the answer to a terminal request under its idempotency key, in the transaction
/// that took the key (`super::idempotency::idempotency_claim`) and wrote what it answers.
///
/// # Errors
/// Database failure.
pub async fn store_response_in_tx(
    con: &mut PgConnection,
    merchant_id: &str,
    idem_key: &str,
    request_sha256: &str,
    status: i32,
    body: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO idempotency_keys (merchant_id, idem_key, request_sha256, state, response_status, response_body)
         VALUES ($1, $2, $3, 'done', $4, $5)
         ON CONFLICT (merchant_id, idem_key) DO UPDATE
         SET request_sha256 = EXCLUDED.request_sha256, state = 'done',
             response_status = EXCLUDED.response_status, response_body = EXCLUDED.response_body,
             created_at = now()",
    )
    .bind(merchant_id)
    .bind(idem_key)
    .bind(request_sha256)
    .bind(status)
    .bind(body)
    .execute(con)
    .await?;
    Ok(())
}

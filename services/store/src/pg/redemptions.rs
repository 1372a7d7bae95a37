//! The redemption service's tables (migration `0002_redemption.sql`): merchants, program
//! approvals, terminals, entitlements, budget buckets, redemptions, reversals and stored
//! idempotent responses.
//!
//! Writes that belong to one checkout decision take a `&mut PgConnection` (a transaction's
//! connection, `&mut *tx`) so the caller commits the voucher update, the entitlement and
//! budget changes, the redemption row, the event and the stored response together.
//! Conditional updates (`… WHERE status = 'issued'`, `… WHERE used_fen + $d <= cap_fen`,
//! `… WHERE remaining_fen >= $d`) are what make double spends and overdrafts impossible;
//! this module never decides business rules.

use crate::events;
use crate::pg::campaigns::is_violation;
use crate::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;
use voucher_core::token::VoucherClaims;
use voucher_core::RefundPolicy;
use voucher_proto::events::EventEnvelope;
use voucher_proto::Message as _;

/// A merchant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MerchantRecord {
    /// Merchant id (chosen by the administrator, e.g. `m-jc-0001`).
    pub id: String,
    /// Business name.
    pub name: String,
    /// 统一社会信用代码 (18 characters).
    pub credit_code: String,
    /// Category name (`catering`, …).
    pub category: String,
    /// City code.
    pub city: i32,
    /// County code, when the merchant is registered in a county.
    pub county: Option<i32>,
    /// `active` or `suspended`.
    pub status: String,
    /// Settlement bank account reference.
    pub settlement_account: String,
    /// Who created it.
    pub created_by: String,
    /// Programs the merchant is approved for.
    #[sqlx(rename = "programs")]
    pub approved_programs: Vec<i64>,
}

/// Inserts a merchant.
///
/// # Errors
/// [`StoreError::Conflict`] when the id or credit code exists; database failure.
#[tracing::instrument(name = "store.merchants.create", skip_all, err(level = "debug"))]
pub async fn create_merchant(pool: &PgPool, m: &MerchantRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO merchants (id, name, credit_code, category, city, county, status, settlement_account, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&m.id)
    .bind(&m.name)
    .bind(&m.credit_code)
    .bind(&m.category)
    .bind(m.city)
    .bind(m.county)
    .bind(&m.status)
    .bind(&m.settlement_account)
    .bind(&m.created_by)
    .execute(pool)
    .await
    .map_err(|e| {
        if is_violation(&e, "23505") {
            StoreError::Conflict("merchant")
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// One merchant with its approvals.
///
/// # Errors
/// Database failure.
pub async fn get_merchant(pool: &PgPool, id: &str) -> Result<Option<MerchantRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.name, m.credit_code, m.category, m.city, m.county, m.status, m.settlement_account,
                m.created_by,
                coalesce(array_agg(mp.program_id ORDER BY mp.program_id) FILTER (WHERE mp.program_id IS NOT NULL), '{}') AS programs
         FROM merchants m LEFT JOIN merchant_programs mp ON mp.merchant_id = m.id
         WHERE m.id = $1 GROUP BY m.id",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Approves a merchant for a program (idempotent).
///
/// # Errors
/// [`StoreError::NotFound`] when the program does not exist; database failure.
#[tracing::instrument(name = "store.merchants.approve", skip_all, err(level = "debug"))]
pub async fn approve(
    pool: &PgPool,
    merchant_id: &str,
    program_id: i64,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO merchant_programs (merchant_id, program_id, approved_by, approved_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(merchant_id)
    .bind(program_id)
    .bind(by)
    .bind(at)
    .execute(pool)
    .await
    .map_err(|e| {
        if is_violation(&e, "23503") {
            StoreError::NotFound
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// A terminal's key and its merchant's facts: what request verification needs.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TerminalKey {
    /// Terminal.
    pub terminal_id: Uuid,
    /// Its merchant.
    pub merchant_id: String,
    /// The HMAC secret (base64).
    pub secret: String,
    /// `active` or `revoked`.
    pub status: String,
    /// The merchant's status.
    pub merchant_status: String,
    /// The merchant's category.
    pub category: String,
    /// The merchant's city.
    pub city: i32,
    /// The merchant's county.
    pub county: Option<i32>,
}

impl std::fmt::Debug for TerminalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalKey")
            .field("terminal_id", &self.terminal_id)
            .field("merchant_id", &self.merchant_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Inserts a terminal with its first key.
///
/// # Errors
/// [`StoreError::NotFound`] when the merchant does not exist; database failure.
pub async fn insert_terminal(
    pool: &PgPool,
    terminal_id: Uuid,
    merchant_id: &str,
    key_id: &str,
    secret: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO terminals (terminal_id, merchant_id, key_id, secret, status, created_at)
         VALUES ($1, $2, $3, $4, 'active', $5)",
    )
    .bind(terminal_id)
    .bind(merchant_id)
    .bind(key_id)
    .bind(secret)
    .bind(at)
    .execute(pool)
    .await
    .map_err(|e| {
        if is_violation(&e, "23503") {
            StoreError::NotFound
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Replaces an active terminal's key and secret (the old key stops working at once).
///
/// # Errors
/// [`StoreError::NotFound`] when no active terminal of that merchant has the id.
pub async fn rotate_terminal(
    pool: &PgPool,
    terminal_id: Uuid,
    merchant_id: &str,
    key_id: &str,
    secret: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE terminals SET key_id = $3, secret = $4, rotated_at = $5
         WHERE terminal_id = $1 AND merchant_id = $2 AND status = 'active'",
    )
    .bind(terminal_id)
    .bind(merchant_id)
    .bind(key_id)
    .bind(secret)
    .bind(at)
    .execute(pool)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Revokes a terminal (idempotent).
///
/// # Errors
/// [`StoreError::NotFound`] when the merchant has no such terminal.
pub async fn revoke_terminal(
    pool: &PgPool,
    terminal_id: Uuid,
    merchant_id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE terminals SET status = 'revoked', revoked_at = coalesce(revoked_at, $3)
         WHERE terminal_id = $1 AND merchant_id = $2",
    )
    .bind(terminal_id)
    .bind(merchant_id)
    .bind(at)
    .execute(pool)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// The terminal holding `key_id`, with its merchant.
///
/// # Errors
/// Database failure.
pub async fn terminal_by_key(
    pool: &PgPool,
    key_id: &str,
) -> Result<Option<TerminalKey>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.terminal_id, t.merchant_id, t.secret, t.status, m.status AS merchant_status, m.category,
                m.city, m.county
         FROM terminals t JOIN merchants m ON m.id = t.merchant_id WHERE t.key_id = $1",
    )
    .bind(key_id)
    .fetch_optional(pool)
    .await?)
}

/// The campaign's program and that program's refund policy.
///
/// # Errors
/// [`StoreError::NotFound`]; database failure.
pub async fn campaign_policy(
    pool: &PgPool,
    campaign_id: i64,
) -> Result<(i64, RefundPolicy), StoreError> {
    let row = sqlx::query(
        "SELECT p.id, p.refund_policy FROM campaigns c JOIN programs p ON p.id = c.program_id WHERE c.id = $1",
    )
    .bind(campaign_id)
    .fetch_optional(pool)
    .await?
    .ok_or(StoreError::NotFound)?;
    let policy: String = row.try_get("refund_policy")?;
    let policy = match policy.as_str() {
        "restore" => RefundPolicy::Restore,
        "forfeit" => RefundPolicy::Forfeit,
        other => return Err(StoreError::Corrupt(format!("refund policy {other:?}"))),
    };
    Ok((row.try_get("id")?, policy))
}

/// The claim id given to a voucher inserted from its token: UUID v5 of the voucher id, so it
/// is stable and never collides with a real (v4/v5-of-person) claim id.
pub fn token_claim_id(voucher_id: Uuid) -> Uuid {
    Uuid::new_v5(&TOKEN_NAMESPACE, voucher_id.as_bytes())
}

const TOKEN_NAMESPACE: Uuid = Uuid::from_u128(0x6a0e_52f4_9d1b_4c6e_8f3a_1b2c_3d4e_5f60);

/// Inserts the voucher from its verified token if the persister has not written it yet
/// (idempotent on the voucher id).
///
/// # Errors
/// [`StoreError::NotFound`] when the token's campaign does not exist; database failure.
pub async fn insert_voucher_from_token(
    con: &mut PgConnection,
    claims: &VoucherClaims,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                               claimed_at, valid_from, valid_until)
         VALUES ($1, $2, $3, $4, 0, 'token', 'issued', $5, $5, $6)
         ON CONFLICT DO NOTHING",
    )
    .bind(claims.voucher_id.0)
    .bind(claims.campaign_id.0)
    .bind(claims.person_id.as_str())
    .bind(token_claim_id(claims.voucher_id.0))
    .bind(claims.valid_from)
    .bind(claims.valid_until)
    .execute(&mut *con)
    .await
    .map_err(|e| if is_violation(&e, "23503") { StoreError::NotFound } else { e.into() })?;
    Ok(())
}

/// Spends a single-use voucher in one statement: inserts it from its verified token already
/// `redeemed` if the persister has not written it yet, or moves it `issued → redeemed`.
/// `false` when it exists and was not `issued` (spent, held or expired). This is
/// [`insert_voucher_from_token`] plus [`spend_voucher`] in one round trip; a concurrent
/// spender of the same voucher waits for this transaction and then finds it spent.
///
/// # Errors
/// [`StoreError::NotFound`] when the token's campaign does not exist; database failure.
pub async fn spend_voucher_from_token(
    con: &mut PgConnection,
    claims: &VoucherClaims,
) -> Result<bool, StoreError> {
    let spent: Option<i32> = sqlx::query_scalar(
        "INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                               claimed_at, valid_from, valid_until)
         VALUES ($1, $2, $3, $4, 0, 'token', 'redeemed', $5, $5, $6)
         ON CONFLICT (voucher_id) DO UPDATE SET status = 'redeemed' WHERE vouchers.status = 'issued'
         RETURNING 1",
    )
    .bind(claims.voucher_id.0)
    .bind(claims.campaign_id.0)
    .bind(claims.person_id.as_str())
    .bind(token_claim_id(claims.voucher_id.0))
    .bind(claims.valid_from)
    .bind(claims.valid_until)
    .fetch_optional(&mut *con)
    .await
    .map_err(|e| if is_violation(&e, "23503") { StoreError::NotFound } else { e.into() })?;
    Ok(spent.is_some())
}

/// Sets the savepoint a checkout returns to when its one-statement attempt
/// ([`redeem_single_use`]) could not finish: rolling back to it also releases the row locks
/// the attempt took.
///
/// # Errors
/// Database failure.
pub async fn savepoint(con: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SAVEPOINT checkout_attempt")
        .execute(&mut *con)
        .await?;
    Ok(())
}

/// Undoes everything since [`savepoint`], locks included.
///
/// # Errors
/// Database failure.
pub async fn rollback_to_savepoint(con: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("ROLLBACK TO SAVEPOINT checkout_attempt")
        .execute(&mut *con)
        .await?;
    Ok(())
}

/// Marks a single-use voucher spent: `issued → redeemed`. `false` when it was not `issued`.
///
/// # Errors
/// Database failure.
pub async fn spend_voucher(con: &mut PgConnection, voucher_id: Uuid) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE vouchers SET status = 'redeemed' WHERE voucher_id = $1 AND status = 'issued'",
    )
    .bind(voucher_id)
    .execute(&mut *con)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes a spent single-use voucher usable again: `redeemed → issued`.
///
/// # Errors
/// Database failure.
pub async fn unspend_voucher(con: &mut PgConnection, voucher_id: Uuid) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE vouchers SET status = 'issued' WHERE voucher_id = $1 AND status = 'redeemed'",
    )
    .bind(voucher_id)
    .execute(&mut *con)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The voucher's status (`issued`, `redeemed`, `expired`).
///
/// # Errors
/// Database failure.
pub async fn voucher_status(
    con: &mut PgConnection,
    voucher_id: Uuid,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT status FROM vouchers WHERE voucher_id = $1")
            .bind(voucher_id)
            .fetch_optional(&mut *con)
            .await?,
    )
}

/// Locks the person's entitlement row of a percentage campaign (created with `cap` on first
/// use) and returns `(used, cap)`. Purchases of one person queue here; others do not.
///
/// # Errors
/// Database failure.
pub async fn lock_entitlement(
    con: &mut PgConnection,
    campaign_id: i64,
    person_id: &str,
    cap: i64,
) -> Result<(i64, i64), StoreError> {
    sqlx::query("INSERT INTO entitlements (campaign_id, person_id, cap_fen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(campaign_id)
        .bind(person_id)
        .bind(cap)
        .execute(&mut *con)
        .await?;
    let row = sqlx::query(
        "SELECT used_fen, cap_fen FROM entitlements WHERE campaign_id = $1 AND person_id = $2 FOR UPDATE",
    )
    .bind(campaign_id)
    .bind(person_id)
    .fetch_one(&mut *con)
    .await?;
    Ok((row.try_get("used_fen")?, row.try_get("cap_fen")?))
}

/// Adds `delta` (negative to restore) to the entitlement's use, only if the result stays
/// within `0..=cap`. `false` otherwise.
///
/// # Errors
/// Database failure.
pub async fn use_entitlement(
    con: &mut PgConnection,
    campaign_id: i64,
    person_id: &str,
    delta: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE entitlements SET used_fen = used_fen + $3
         WHERE campaign_id = $1 AND person_id = $2 AND used_fen + $3 BETWEEN 0 AND cap_fen",
    )
    .bind(campaign_id)
    .bind(person_id)
    .bind(delta)
    .execute(&mut *con)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Creates the campaign's budget buckets from `campaigns.budget_fen` on first use (the
/// remainder of the division goes to bucket 0). Idempotent; outside any checkout.
///
/// # Errors
/// [`StoreError::NotFound`] when the campaign does not exist; database failure.
pub async fn ensure_budget(
    pool: &PgPool,
    campaign_id: i64,
    buckets: i32,
) -> Result<(), StoreError> {
    let exists: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM campaign_budget_buckets WHERE campaign_id = $1 AND bucket = 0",
    )
    .bind(campaign_id)
    .fetch_optional(pool)
    .await?;
    if exists.is_some() {
        return Ok(());
    }
    let budget: Option<i64> = sqlx::query_scalar("SELECT budget_fen FROM campaigns WHERE id = $1")
        .bind(campaign_id)
        .fetch_optional(pool)
        .await?;
    let budget = budget.ok_or(StoreError::NotFound)?;
    let n = i64::from(buckets.max(1));
    // One statement: concurrent first uses both try, the primary key keeps one set.
    sqlx::query(
        "INSERT INTO campaign_budget_buckets (campaign_id, bucket, remaining_fen)
         SELECT $1, b, $2 / $3 + CASE WHEN b = 0 THEN $2 % $3 ELSE 0 END
         FROM generate_series(0, ($3 - 1)::int4) AS b
         ON CONFLICT DO NOTHING",
    )
    .bind(campaign_id)
    .bind(budget)
    .bind(n)
    .execute(pool)
    .await?;
    Ok(())
}

/// Takes up to `want` fen of the campaign's budget.
///
/// 1. Fast path: all of it from ONE bucket that is not locked right now (`FOR UPDATE SKIP
///    LOCKED`, starting at bucket `hint`, so concurrent checkouts spread over the rows and
///    never wait for each other). A checkout holds at most this one bucket lock.
/// 2. Otherwise (every fitting bucket is busy, or none holds enough: the budget is nearly
///    used up): gather from the buckets in bucket order, waiting for their locks, under a
///    per-campaign transaction advisory lock so that gatherers queue one behind the other.
///    Fast-path holders never wait for anything on the budget, so this cannot deadlock —
///    provided a gatherer holds no bucket lock while it waits for the campaign lock. But
///    PostgreSQL keeps the row lock it took to re-check a concurrently updated row even when
///    the re-check fails, so a failed fast attempt may hold one: the attempt runs under a
///    savepoint, and rolling back to it releases that lock before gathering.
///
/// With `partial`, whatever is left (possibly 0) is taken; without it, all of `want` or
/// nothing. Returns what was taken.
///
/// # Errors
/// Database failure.
pub async fn take_budget(
    con: &mut PgConnection,
    campaign_id: i64,
    want: i64,
    partial: bool,
    hint: i32,
) -> Result<i64, StoreError> {
    if want <= 0 {
        return Ok(0);
    }
    // The fast attempt may leave a lock on a bucket it re-checked and could not use (see
    // above): the savepoint lets the gathering below start without it.
    sqlx::query("SAVEPOINT take_budget")
        .execute(&mut *con)
        .await?;
    let fast: Option<i32> = sqlx::query_scalar(
        "UPDATE campaign_budget_buckets b SET remaining_fen = b.remaining_fen - $3
         FROM (SELECT bucket FROM campaign_budget_buckets
               WHERE campaign_id = $1 AND remaining_fen >= $3
               ORDER BY (bucket - $2 + 1024) % 1024 LIMIT 1 FOR UPDATE SKIP LOCKED) AS pick
         WHERE b.campaign_id = $1 AND b.bucket = pick.bucket RETURNING b.bucket",
    )
    .bind(campaign_id)
    .bind(hint)
    .bind(want)
    .fetch_optional(&mut *con)
    .await?;
    if fast.is_some() {
        return Ok(want);
    }
    sqlx::query("ROLLBACK TO SAVEPOINT take_budget")
        .execute(&mut *con)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(campaign_id)
        .execute(&mut *con)
        .await?;
    let rows = sqlx::query(
        "SELECT bucket, remaining_fen FROM campaign_budget_buckets
         WHERE campaign_id = $1 AND remaining_fen > 0 ORDER BY bucket FOR UPDATE",
    )
    .bind(campaign_id)
    .fetch_all(&mut *con)
    .await?;
    let mut available: i64 = 0;
    let mut plan = Vec::new();
    for row in &rows {
        let bucket: i32 = row.try_get("bucket")?;
        let remaining: i64 = row.try_get("remaining_fen")?;
        let need = want - available;
        if need <= 0 {
            break;
        }
        let take = remaining.min(need);
        available += take;
        plan.push((bucket, take));
    }
    if available < want && !partial {
        return Ok(0);
    }
    for (bucket, take) in plan {
        sqlx::query(
            "UPDATE campaign_budget_buckets SET remaining_fen = remaining_fen - $3
             WHERE campaign_id = $1 AND bucket = $2",
        )
        .bind(campaign_id)
        .bind(bucket)
        .bind(take)
        .execute(&mut *con)
        .await?;
    }
    Ok(available)
}

/// Gives `amount` back to the campaign's budget (into bucket `hint`).
///
/// # Errors
/// Database failure.
pub async fn return_budget(
    con: &mut PgConnection,
    campaign_id: i64,
    amount: i64,
    hint: i32,
) -> Result<(), StoreError> {
    if amount <= 0 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE campaign_budget_buckets SET remaining_fen = remaining_fen + $3 WHERE campaign_id = $1 AND bucket = $2",
    )
    .bind(campaign_id)
    .bind(hint)
    .bind(amount)
    .execute(&mut *con)
    .await?;
    Ok(())
}

/// What remains of a campaign's budget (Σ of its buckets), `None` before first use.
///
/// # Errors
/// Database failure.
pub async fn budget_remaining(pool: &PgPool, campaign_id: i64) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT sum(remaining_fen)::int8 FROM campaign_budget_buckets WHERE campaign_id = $1",
    )
    .bind(campaign_id)
    .fetch_one(pool)
    .await?)
}

/// A redemption as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RedemptionRecord {
    /// Id.
    pub id: Uuid,
    /// Merchant.
    pub merchant_id: String,
    /// Terminal.
    pub terminal_id: Uuid,
    /// Voucher.
    pub voucher_id: Uuid,
    /// Campaign.
    pub campaign_id: i64,
    /// Program.
    pub program_id: i64,
    /// Holder.
    pub person_id: String,
    /// A threshold voucher (spent whole) rather than a percentage entitlement.
    pub single_use: bool,
    /// `approved`, `held`, `captured`, `voided`, `expired`.
    pub status: String,
    /// The merchant's order reference.
    pub order_ref: String,
    /// Order amount, fen.
    pub order_amount_fen: i64,
    /// Discount granted, fen.
    pub discount_fen: i64,
    /// Order amount refunded so far, fen.
    pub refunded_amount_fen: i64,
    /// Discount given back by reversals so far, fen.
    pub reversed_fen: i64,
    /// Why a discount was limited (`CAP_EXHAUSTED`, `BUDGET_EXHAUSTED`), if it was.
    pub notice: Option<String>,
    /// For a hold: when it releases itself.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// When decided.
    pub created_at: DateTime<Utc>,
    /// When a hold was captured, voided or expired.
    pub resolved_at: Option<DateTime<Utc>>,
}

const REDEMPTION_COLUMNS: &str = "id, merchant_id, terminal_id, voucher_id, campaign_id, program_id, person_id, \
     single_use, status, order_ref, order_amount_fen, discount_fen, refunded_amount_fen, reversed_fen, notice, \
     hold_expires_at, created_at, resolved_at";

/// Binds a redemption row's 18 columns as `$1`…`$18`, in [`REDEMPTION_COLUMNS`] order.
trait BindRedemption<'q> {
    fn bind_redemption(self, r: &'q RedemptionRecord) -> Self;
}

impl<'q> BindRedemption<'q>
    for sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
{
    fn bind_redemption(self, r: &'q RedemptionRecord) -> Self {
        self.bind(r.id)
            .bind(&r.merchant_id)
            .bind(r.terminal_id)
            .bind(r.voucher_id)
            .bind(r.campaign_id)
            .bind(r.program_id)
            .bind(&r.person_id)
            .bind(r.single_use)
            .bind(&r.status)
            .bind(&r.order_ref)
            .bind(r.order_amount_fen)
            .bind(r.discount_fen)
            .bind(r.refunded_amount_fen)
            .bind(r.reversed_fen)
            .bind(&r.notice)
            .bind(r.hold_expires_at)
            .bind(r.created_at)
            .bind(r.resolved_at)
    }
}

/// Inserts a redemption row.
///
/// # Errors
/// [`StoreError::Conflict`]`("order_ref")` when the merchant already used the order
/// reference; database failure.
pub async fn insert_redemption(
    con: &mut PgConnection,
    r: &RedemptionRecord,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO redemptions ({REDEMPTION_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    ))
    .bind_redemption(r)
    .execute(&mut *con)
    .await
    .map_err(|e| {
        if is_violation(&e, "23505") {
            StoreError::Conflict("order_ref")
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// One redemption of a merchant by id, locked for update when `lock`.
///
/// # Errors
/// Database failure.
pub async fn redemption_by_id(
    con: &mut PgConnection,
    merchant_id: &str,
    id: Uuid,
    lock: bool,
) -> Result<Option<RedemptionRecord>, StoreError> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    Ok(sqlx::query_as(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = $1 AND merchant_id = $2{suffix}"
    ))
    .bind(id)
    .bind(merchant_id)
    .fetch_optional(&mut *con)
    .await?)
}

/// One redemption of a merchant by its order reference.
///
/// # Errors
/// Database failure.
pub async fn redemption_by_order_ref(
    pool: &PgPool,
    merchant_id: &str,
    order_ref: &str,
) -> Result<Option<RedemptionRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE merchant_id = $1 AND order_ref = $2"
    ))
    .bind(merchant_id)
    .bind(order_ref)
    .fetch_optional(pool)
    .await?)
}

/// A merchant's redemptions created in `[from, to)`, oldest first.
///
/// # Errors
/// Database failure.
pub async fn redemptions_between(
    pool: &PgPool,
    merchant_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<RedemptionRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions
         WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3 ORDER BY created_at, id"
    ))
    .bind(merchant_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

/// Moves a redemption from status `from` to `to` (resolving a hold). `false` when it was not
/// in `from`: a hold resolves at most once.
///
/// # Errors
/// Database failure.
pub async fn resolve(
    con: &mut PgConnection,
    id: Uuid,
    from: &str,
    to: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE redemptions SET status = $3, resolved_at = $4 WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(at)
    .execute(&mut *con)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Holds whose timeout passed at `now` (the sweeper releases them).
///
/// # Errors
/// Database failure.
pub async fn due_holds(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Uuid, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, merchant_id FROM redemptions WHERE status = 'held' AND hold_expires_at <= $1
         ORDER BY hold_expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("merchant_id")?)))
        .collect()
}

/// Holds not yet resolved.
///
/// # Errors
/// Database failure.
pub async fn holds_outstanding(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM redemptions WHERE status = 'held'")
            .fetch_one(pool)
            .await?,
    )
}

/// A stored reversal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ReversalRecord {
    /// Id.
    pub id: Uuid,
    /// The reversed redemption.
    pub redemption_id: Uuid,
    /// The merchant's reference for this reversal.
    pub reversal_ref: String,
    /// Order amount refunded by this reversal, fen.
    pub refund_amount_fen: i64,
    /// Discount given back by this reversal, fen.
    pub discount_reversed_fen: i64,
    /// Whether the voucher or entitlement was restored (refund policy `restore`).
    pub restored: bool,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The reversal with this reference, if any.
///
/// # Errors
/// Database failure.
pub async fn reversal_by_ref(
    con: &mut PgConnection,
    redemption_id: Uuid,
    reversal_ref: &str,
) -> Result<Option<ReversalRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, redemption_id, reversal_ref, refund_amount_fen, discount_reversed_fen, restored, created_at
         FROM reversals WHERE redemption_id = $1 AND reversal_ref = $2",
    )
    .bind(redemption_id)
    .bind(reversal_ref)
    .fetch_optional(&mut *con)
    .await?)
}

/// Records a reversal and adds it to its redemption's refunded and reversed totals (only
/// if they stay within the order amount and the discount).
///
/// # Errors
/// [`StoreError::Conflict`] when the totals would overflow; database failure.
pub async fn insert_reversal(con: &mut PgConnection, r: &ReversalRecord) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE redemptions SET refunded_amount_fen = refunded_amount_fen + $2, reversed_fen = reversed_fen + $3
         WHERE id = $1 AND refunded_amount_fen + $2 <= order_amount_fen AND reversed_fen + $3 <= discount_fen",
    )
    .bind(r.redemption_id)
    .bind(r.refund_amount_fen)
    .bind(r.discount_reversed_fen)
    .execute(&mut *con)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict("reversal"));
    }
    sqlx::query(
        "INSERT INTO reversals (id, redemption_id, reversal_ref, refund_amount_fen, discount_reversed_fen, restored, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.id)
    .bind(r.redemption_id)
    .bind(&r.reversal_ref)
    .bind(r.refund_amount_fen)
    .bind(r.discount_reversed_fen)
    .bind(r.restored)
    .bind(r.created_at)
    .execute(&mut *con)
    .await
    .map_err(|e| if is_violation(&e, "23505") { StoreError::Conflict("reversal_ref") } else { e.into() })?;
    Ok(())
}

/// Appends an event (encoded envelope plus its readable JSON) to the event log.
///
/// # Errors
/// [`StoreError::Corrupt`] for an envelope that does not decode; database failure.
pub async fn append_event(
    con: &mut PgConnection,
    envelope: &EventEnvelope,
) -> Result<(), StoreError> {
    let bytes = envelope.encode_to_vec();
    let decoded = events::decode(&bytes)?;
    sqlx::query(
        "INSERT INTO events (event_id, campaign_id, kind, occurred_at, payload, payload_json)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(decoded.event_id)
    .bind(decoded.campaign_id)
    .bind(decoded.kind)
    .bind(decoded.occurred_at)
    .bind(&bytes)
    .bind(&decoded.json)
    .execute(&mut *con)
    .await?;
    Ok(())
}

/// Where an idempotency key stands when a request arrives.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyBegin {
    /// First use: the key is now `in_flight` for this request.
    Started,
    /// The first request with this key is still being processed.
    InFlight,
    /// The key was used with another body.
    Mismatch,
    /// The stored response of the first request: `(status, body)`.
    Done(i32, serde_json::Value),
}

/// Where an idempotency key stands, read inside the transaction that will decide the
/// request, with the merchant's approval for the voucher's program read in the same round
/// trip.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyClaim {
    /// Where the key stands: `Started` means this transaction holds the key.
    pub begin: IdempotencyBegin,
    /// Whether the merchant is approved for the program asked about (`false` when none).
    pub approved: bool,
}

/// Takes an idempotency key for the current transaction, in one round trip: a transaction
/// advisory lock on (merchant, key) — not waited for: held by another transaction means a
/// concurrent duplicate, [`IdempotencyBegin::InFlight`] — and the stored response, if any.
/// The key's row is written by [`record_decision`] in the same transaction, so a decline or
/// a failure (rollback) leaves nothing behind and no `in_flight` row ever reaches the disk:
/// one commit per decision instead of three (claim, decide, release). `program_id`: also
/// read whether the merchant is approved for it.
///
/// # Errors
/// Database failure.
pub async fn idempotency_claim(
    con: &mut PgConnection,
    merchant_id: &str,
    key: &str,
    request_sha256: &str,
    program_id: Option<i64>,
    stale_secs: i64,
) -> Result<IdempotencyClaim, StoreError> {
    // Two int4 keys: a key space apart from the campaign-wide budget lock (one int8 key).
    let row = sqlx::query(
        "SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2)) AS got,
                k.request_sha256, k.state, k.response_status, k.response_body,
                coalesce(k.created_at < now() - make_interval(secs => $4::float8), false) AS stale,
                EXISTS (SELECT 1 FROM merchant_programs WHERE merchant_id = $1 AND program_id = $3) AS approved
         FROM (SELECT 1) AS one
         LEFT JOIN idempotency_keys k ON k.merchant_id = $1 AND k.idem_key = $2",
    )
    .bind(merchant_id)
    .bind(key)
    .bind(program_id.unwrap_or(-1))
    .bind(i32::try_from(stale_secs).unwrap_or(i32::MAX))
    .fetch_one(&mut *con)
    .await?;
    let approved: bool = row.try_get("approved")?;
    let claim = |begin| Ok(IdempotencyClaim { begin, approved });
    let got: bool = row.try_get("got")?;
    if !got {
        return claim(IdempotencyBegin::InFlight);
    }
    let Some(hash) = row.try_get::<Option<String>, _>("request_sha256")? else {
        return claim(IdempotencyBegin::Started);
    };
    if hash != request_sha256 {
        return claim(IdempotencyBegin::Mismatch);
    }
    let state: String = row.try_get("state")?;
    if state == "done" {
        let status: Option<i32> = row.try_get("response_status")?;
        let body: Option<serde_json::Value> = row.try_get("response_body")?;
        return claim(IdempotencyBegin::Done(
            status.unwrap_or(200),
            body.unwrap_or_default(),
        ));
    }
    // An `in_flight` row (written by an earlier version of the service): taken over when stale.
    if row.try_get("stale")? {
        claim(IdempotencyBegin::Started)
    } else {
        claim(IdempotencyBegin::InFlight)
    }
}

/// Writes what a decision leaves behind in ONE statement (one round trip): the redemption
/// row, its event (when given) and the stored response of its idempotency key.
///
/// # Errors
/// [`StoreError::Conflict`]`("order_ref")` when the merchant already used the order
/// reference; [`StoreError::Corrupt`] for an event that does not decode; database failure.
pub async fn record_decision(
    con: &mut PgConnection,
    r: &RedemptionRecord,
    event: Option<&EventEnvelope>,
    idem_key: &str,
    request_sha256: &str,
    response: &serde_json::Value,
) -> Result<(), StoreError> {
    let event = event
        .map(|e| {
            let bytes = e.encode_to_vec();
            events::decode(&bytes).map(|d| (bytes, d))
        })
        .transpose()?;
    let event_cte = if event.is_some() {
        ", event AS (INSERT INTO events (event_id, campaign_id, kind, occurred_at, payload, payload_json)
                     VALUES ($22, $5, $23, $24, $25, $26))"
    } else {
        ""
    };
    let sql = format!(
        "WITH redemption AS (
             INSERT INTO redemptions ({REDEMPTION_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)){event_cte}
         INSERT INTO idempotency_keys (merchant_id, idem_key, request_sha256, state, response_status, response_body)
         VALUES ($2, $19, $20, 'done', 200, $21)
         ON CONFLICT (merchant_id, idem_key) DO UPDATE
         SET request_sha256 = EXCLUDED.request_sha256, state = 'done', response_status = 200,
             response_body = EXCLUDED.response_body, created_at = now()"
    );
    let mut q = sqlx::query(&sql)
        .bind_redemption(r)
        .bind(idem_key)
        .bind(request_sha256)
        .bind(response);
    if let Some((bytes, decoded)) = &event {
        q = q
            .bind(decoded.event_id)
            .bind(decoded.kind)
            .bind(decoded.occurred_at)
            .bind(bytes)
            .bind(&decoded.json);
    }
    q.execute(&mut *con).await.map_err(|e| {
        if is_violation(&e, "23505") {
            StoreError::Conflict("order_ref")
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// How [`redeem_single_use`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingleUse {
    /// Spent, discount taken, redemption, event and stored response written.
    Recorded,
    /// The voucher exists and is not `issued` (spent, held or expired): nothing written.
    NotIssued,
    /// Spent, but no single bucket could take the discount without waiting: the caller
    /// continues in the same transaction with [`take_budget`] and [`record_decision`].
    BudgetBusy,
}

/// A threshold (single-use) voucher's whole decision in ONE statement: spend it
/// ([`spend_voucher_from_token`]), take `r.discount_fen` from one free budget bucket
/// (`FOR UPDATE SKIP LOCKED`, starting at `hint`: [`take_budget`]'s fast path), and write
/// the redemption, its event (when given) and the stored response ([`record_decision`]) —
/// each step only if the previous one happened. One round trip instead of three; same
/// conditional updates, so the same guarantees.
///
/// # Errors
/// [`StoreError::NotFound`] when the token's campaign does not exist;
/// [`StoreError::Conflict`]`("order_ref")`; [`StoreError::Corrupt`] for an event that does
/// not decode; database failure.
#[allow(clippy::too_many_arguments)]
pub async fn redeem_single_use(
    con: &mut PgConnection,
    claims: &VoucherClaims,
    r: &RedemptionRecord,
    event: Option<&EventEnvelope>,
    idem_key: &str,
    request_sha256: &str,
    response: &serde_json::Value,
    hint: i32,
) -> Result<SingleUse, StoreError> {
    let event = event
        .map(|e| {
            let bytes = e.encode_to_vec();
            events::decode(&bytes).map(|d| (bytes, d))
        })
        .transpose()?;
    let event_cte = if event.is_some() {
        ", event AS (INSERT INTO events (event_id, campaign_id, kind, occurred_at, payload, payload_json)
                     SELECT $26, $5, $27, $28, $29, $30 WHERE EXISTS (SELECT 1 FROM redemption))"
    } else {
        ""
    };
    let sql = format!(
        "WITH spent AS (
             INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                                   claimed_at, valid_from, valid_until)
             VALUES ($4, $5, $7, $22, 0, 'token', 'redeemed', $23, $23, $24)
             ON CONFLICT (voucher_id) DO UPDATE SET status = 'redeemed' WHERE vouchers.status = 'issued'
             RETURNING 1),
         pick AS (
             SELECT bucket FROM campaign_budget_buckets
             WHERE campaign_id = $5 AND remaining_fen >= $12 AND EXISTS (SELECT 1 FROM spent)
             ORDER BY (bucket - $25 + 1024) % 1024 LIMIT 1 FOR UPDATE SKIP LOCKED),
         taken AS (
             UPDATE campaign_budget_buckets b SET remaining_fen = b.remaining_fen - $12
             FROM pick WHERE b.campaign_id = $5 AND b.bucket = pick.bucket RETURNING b.bucket),
         redemption AS (
             INSERT INTO redemptions ({REDEMPTION_COLUMNS})
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18
             WHERE EXISTS (SELECT 1 FROM taken)
             RETURNING 1){event_cte},
         idem AS (
             INSERT INTO idempotency_keys (merchant_id, idem_key, request_sha256, state, response_status, response_body)
             SELECT $2, $19, $20, 'done', 200, $21 WHERE EXISTS (SELECT 1 FROM redemption)
             ON CONFLICT (merchant_id, idem_key) DO UPDATE
             SET request_sha256 = EXCLUDED.request_sha256, state = 'done', response_status = 200,
                 response_body = EXCLUDED.response_body, created_at = now())
         SELECT EXISTS (SELECT 1 FROM spent) AS spent, EXISTS (SELECT 1 FROM redemption) AS recorded"
    );
    let mut q = sqlx::query(&sql)
        .bind_redemption(r)
        .bind(idem_key)
        .bind(request_sha256)
        .bind(response)
        .bind(token_claim_id(claims.voucher_id.0))
        .bind(claims.valid_from)
        .bind(claims.valid_until)
        .bind(hint);
    if let Some((bytes, decoded)) = &event {
        q = q
            .bind(decoded.event_id)
            .bind(decoded.kind)
            .bind(decoded.occurred_at)
            .bind(bytes)
            .bind(&decoded.json);
    }
    let row = q.fetch_one(&mut *con).await.map_err(|e| {
        if is_violation(&e, "23505") {
            StoreError::Conflict("order_ref")
        } else if is_violation(&e, "23503") {
            StoreError::NotFound
        } else {
            e.into()
        }
    })?;
    let (spent, recorded): (bool, bool) = (row.try_get("spent")?, row.try_get("recorded")?);
    Ok(match (spent, recorded) {
        (_, true) => SingleUse::Recorded,
        (false, false) => SingleUse::NotIssued,
        (true, false) => SingleUse::BudgetBusy,
    })
}

/// Deletes stored responses older than `hours` (the retention, at least 24).
///
/// # Errors
/// Database failure.
pub async fn idempotency_purge(pool: &PgPool, hours: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE state = 'done' AND created_at < now() - make_interval(hours => $1::int4)",
    )
    .bind(i32::try_from(hours.max(24)).unwrap_or(i32::MAX))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

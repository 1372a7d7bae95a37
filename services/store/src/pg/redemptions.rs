//! Redemptions: the `redemptions` table — one-step sales, and holds (authorisations) that
//! are captured, voided or expire — with the checkout's one-statement decision writes.
//!
//! Writes that belong to one checkout decision take a `&mut PgConnection` (a transaction's
//! connection, `&mut *tx`) so the caller commits the voucher update, the entitlement and
//! budget changes, the redemption row, the event and the stored response together.
//! Conditional updates (`… WHERE status = 'issued'`, `… WHERE used_fen + $d <= cap_fen`,
//! `… WHERE remaining_fen >= $d`, `… WHERE status = 'held'`) are what make double spends,
//! overdrafts and a hold resolved twice impossible; this module never decides business
//! rules.
//!
//! Round trips matter on the checkout path: [`record_decision`] writes the redemption, its
//! event and the stored response in ONE statement, and [`redeem_single_use`] does a whole
//! threshold-voucher decision (spend, budget, record) in one statement when a budget bucket
//! is free. When it is not, the checkout rolls back to the [`savepoint`] it set before the
//! attempt — which also releases a bucket lock the attempt may keep — and gathers the budget
//! with [`super::budget::take_budget`] (see there for why that cannot deadlock).

use crate::events;
use crate::pg::constraints::{self, Expected};
use crate::pg::text_enum::text_enum;
use crate::pg::token_vouchers::{token_claim_id, UNKNOWN_CAMPAIGN};
use crate::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;
use voucher_core::token::VoucherClaims;
use voucher_core::{
    CampaignId, MerchantId, PersonId, ProgramId, RedemptionId, TerminalId, VoucherId,
};
use voucher_proto::events::EventEnvelope;
use voucher_proto::Message as _;

/// Where a redemption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedemptionStatus {
    /// A one-step sale, decided.
    Approved,
    /// A hold (authorisation): the voucher or entitlement and the budget are reserved until
    /// it is captured, voided or expires.
    Held,
    /// A hold captured: now a sale.
    Captured,
    /// A hold voided by the terminal: its reservation given back.
    Voided,
    /// A hold past its timeout: its reservation given back.
    Expired,
}

text_enum!(RedemptionStatus, "redemption status" {
    Approved => "approved",
    Held => "held",
    Captured => "captured",
    Voided => "voided",
    Expired => "expired",
});

/// The conflict a redemption insert expects: the merchant already used the order reference.
const ORDER_REF: Expected = Expected::Unique(Conflict::OrderRef);

/// A redemption as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RedemptionRecord {
    /// Id.
    #[sqlx(try_from = "Uuid")]
    pub id: RedemptionId,
    /// Merchant.
    #[sqlx(try_from = "String")]
    pub merchant_id: MerchantId,
    /// Terminal.
    #[sqlx(try_from = "Uuid")]
    pub terminal_id: TerminalId,
    /// Voucher.
    #[sqlx(try_from = "Uuid")]
    pub voucher_id: VoucherId,
    /// Campaign.
    #[sqlx(try_from = "i64")]
    pub campaign_id: CampaignId,
    /// Program.
    #[sqlx(try_from = "i64")]
    pub program_id: ProgramId,
    /// Holder.
    #[sqlx(try_from = "String")]
    pub person_id: PersonId,
    /// A threshold voucher (spent whole) rather than a percentage entitlement.
    pub single_use: bool,
    /// Where it stands.
    pub status: RedemptionStatus,
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
        self.bind(r.id.0)
            .bind(r.merchant_id.as_str())
            .bind(r.terminal_id.0)
            .bind(r.voucher_id.0)
            .bind(r.campaign_id.0)
            .bind(r.program_id.0)
            .bind(r.person_id.as_str())
            .bind(r.single_use)
            .bind(r.status)
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
/// [`StoreError::Conflict`] with [`Conflict::OrderRef`] when the merchant already used the
/// order reference; database failure.
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
    .map_err(|e| constraints::expected(e, &[ORDER_REF]))?;
    Ok(())
}

/// One redemption of a merchant by id, locked for update when `lock`.
///
/// # Errors
/// Database failure.
pub async fn redemption_by_id(
    con: &mut PgConnection,
    merchant_id: &MerchantId,
    id: RedemptionId,
    lock: bool,
) -> Result<Option<RedemptionRecord>, StoreError> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    Ok(sqlx::query_as(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = $1 AND merchant_id = $2{suffix}"
    ))
    .bind(id.0)
    .bind(merchant_id.as_str())
    .fetch_optional(&mut *con)
    .await?)
}

/// One redemption of a merchant by its order reference.
///
/// # Errors
/// Database failure.
pub async fn redemption_by_order_ref(
    pool: &PgPool,
    merchant_id: &MerchantId,
    order_ref: &str,
) -> Result<Option<RedemptionRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE merchant_id = $1 AND order_ref = $2"
    ))
    .bind(merchant_id.as_str())
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
    merchant_id: &MerchantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<RedemptionRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions
         WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3 ORDER BY created_at, id"
    ))
    .bind(merchant_id.as_str())
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
    id: RedemptionId,
    from: RedemptionStatus,
    to: RedemptionStatus,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE redemptions SET status = $3, resolved_at = $4 WHERE id = $1 AND status = $2",
    )
    .bind(id.0)
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
) -> Result<Vec<(RedemptionId, MerchantId)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, merchant_id FROM redemptions WHERE status = 'held' AND hold_expires_at <= $1
         ORDER BY hold_expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let merchant: String = r.try_get("merchant_id")?;
            let merchant = MerchantId::parse(&merchant)
                .map_err(|_| StoreError::Corrupt(format!("merchant id {merchant:?}")))?;
            Ok((RedemptionId(r.try_get("id")?), merchant))
        })
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

/// Writes what a decision leaves behind in ONE statement (one round trip): the redemption
/// row, its event (when given) and the stored response of its idempotency key.
///
/// # Errors
/// [`StoreError::Conflict`] with [`Conflict::OrderRef`] when the merchant already used the
/// order reference; [`StoreError::Corrupt`] for an event that does not decode; database failure.
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
    q.execute(&mut *con)
        .await
        .map_err(|e| constraints::expected(e, &[ORDER_REF]))?;
    Ok(())
}

/// How [`redeem_single_use`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingleUse {
    /// Spent, discount taken, redemption, event and stored response written. `from_token`:
    /// the record did not hold the voucher, it was inserted from its token (the caller checks
    /// the person's limit: [`super::token_vouchers::person_vouchers`]).
    Recorded {
        /// Inserted from its token by this statement.
        from_token: bool,
    },
    /// The voucher exists and is not `issued` (spent, held or expired): nothing written.
    NotIssued,
    /// Spent, but no single bucket could take the discount without waiting: the caller
    /// continues in the same transaction with [`super::budget::take_budget`] and
    /// [`record_decision`].
    BudgetBusy,
}

/// A threshold (single-use) voucher's whole decision in ONE statement: spend it
/// ([`super::token_vouchers::spend_voucher_from_token`]), take `r.discount_fen` from one
/// free budget bucket (`FOR UPDATE SKIP LOCKED`, starting at `hint`:
/// [`super::budget::take_budget`]'s fast path), and write the redemption, its event (when
/// given) and the stored response ([`record_decision`]) — each step only if the previous one
/// happened. One round trip instead of three; same conditional updates, so the same
/// guarantees. The voucher is spent only when its code key epoch is `code_epoch` (the
/// epoch of the code presented): a code made with a revoked key spends nothing. Like
/// `spend_voucher_from_token`, the spend first takes a transaction-scoped advisory lock on
/// the voucher id, so a second spender of a voucher the record does not hold yet waits and
/// finds it spent instead of failing on `vouchers_claim_id_key` (a 500).
///
/// # Errors
/// [`StoreError::NotFound`] when the token's campaign does not exist;
/// [`StoreError::Conflict`] with [`Conflict::OrderRef`]; [`StoreError::Corrupt`] for an
/// event that does not decode; database failure.
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
    code_epoch: u32,
) -> Result<SingleUse, StoreError> {
    let event = event
        .map(|e| {
            let bytes = e.encode_to_vec();
            events::decode(&bytes).map(|d| (bytes, d))
        })
        .transpose()?;
    let event_cte = if event.is_some() {
        ", event AS (INSERT INTO events (event_id, campaign_id, kind, occurred_at, payload, payload_json)
                     SELECT $27, $5, $28, $29, $30, $31 WHERE EXISTS (SELECT 1 FROM redemption))"
    } else {
        ""
    };
    let sql = format!(
        "WITH spent AS (
             INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                                   claimed_at, valid_from, valid_until)
             SELECT $4, $5, $7, $22, 0, 'token', 'redeemed', $23, $23, $24
               FROM (SELECT pg_advisory_xact_lock(hashtextextended($4::text, 0))) AS one_spender
             ON CONFLICT (voucher_id) DO UPDATE SET status = 'redeemed'
             WHERE vouchers.status = 'issued' AND vouchers.code_epoch = $26
             RETURNING xmax = 0 AS inserted),
         pick AS MATERIALIZED (
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
         SELECT EXISTS (SELECT 1 FROM spent) AS spent, EXISTS (SELECT 1 FROM redemption) AS recorded,
                coalesce((SELECT inserted FROM spent), false) AS from_token"
    );
    let mut q = sqlx::query(&sql)
        .bind_redemption(r)
        .bind(idem_key)
        .bind(request_sha256)
        .bind(response)
        .bind(token_claim_id(claims.voucher_id).0)
        .bind(claims.valid_from)
        .bind(claims.valid_until)
        .bind(hint)
        .bind(i64::from(code_epoch));
    if let Some((bytes, decoded)) = &event {
        q = q
            .bind(decoded.event_id)
            .bind(decoded.kind)
            .bind(decoded.occurred_at)
            .bind(bytes)
            .bind(&decoded.json);
    }
    let row = q
        .fetch_one(&mut *con)
        .await
        .map_err(|e| constraints::expected(e, &[ORDER_REF, UNKNOWN_CAMPAIGN]))?;
    let (spent, recorded): (bool, bool) = (row.try_get("spent")?, row.try_get("recorded")?);
    Ok(match (spent, recorded) {
        (_, true) => SingleUse::Recorded {
            from_token: row.try_get("from_token")?,
        },
        (false, false) => SingleUse::NotIssued,
        (true, false) => SingleUse::BudgetBusy,
    })
}

#[cfg(test)]
mod tests {
    use super::RedemptionStatus;

    #[test]
    fn redemption_statuses_serialise_as_stored() {
        crate::pg::text_enum::assert_names_agree(RedemptionStatus::ALL, |s| s.as_str());
    }
}

//! A campaign's budget, split into bucket rows (`campaign_budget_buckets`, created from
//! `campaigns.budget_fen` on first use) so that concurrent checkouts lock different rows
//! instead of queueing on one. Σ remaining + Σ granted − Σ reversed = budget.
//!
//! A discount is taken with the conditional update `… WHERE remaining_fen >= $d` (or under
//! row locks when gathering), so the budget cannot be overdrawn; [`take_budget`] documents
//! the fast path, the gathering path and why the savepoint between them keeps the two from
//! deadlocking. The one-statement checkout ([`super::redemptions::redeem_single_use`]) runs
//! the same fast path inside its statement.

use crate::StoreError;
use sqlx::{PgConnection, PgPool, Row};
use voucher_core::CampaignId;

/// Creates the campaign's budget buckets from `campaigns.budget_fen` on first use (the
/// remainder of the division goes to bucket 0). Idempotent; outside any checkout.
///
/// # Errors
/// [`StoreError::NotFound`] when the campaign does not exist; database failure.
pub async fn ensure_budget(
    pool: &PgPool,
    campaign_id: CampaignId,
    buckets: i32,
) -> Result<(), StoreError> {
    let exists: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM campaign_budget_buckets WHERE campaign_id = $1 AND bucket = 0",
    )
    .bind(campaign_id.0)
    .fetch_optional(pool)
    .await?;
    if exists.is_some() {
        return Ok(());
    }
    let budget: Option<i64> = sqlx::query_scalar("SELECT budget_fen FROM campaigns WHERE id = $1")
        .bind(campaign_id.0)
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
    .bind(campaign_id.0)
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
    campaign_id: CampaignId,
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
    // The pick is a MATERIALIZED CTE, evaluated exactly once whatever the plan. As a subquery
    // in FROM (or an inlined CTE) it can be re-run for each row of the update's scan (a
    // nested loop with it inside), and each re-run skips the bucket the statement already
    // updated and locks the next one: the discount was taken from EVERY bucket that could
    // pay it, for one redemption (the checkout smoke's "buckets + discounts ≠ budget").
    let fast: Vec<i32> = sqlx::query_scalar(
        "WITH pick AS MATERIALIZED (
             SELECT bucket FROM campaign_budget_buckets
             WHERE campaign_id = $1 AND remaining_fen >= $3
             ORDER BY (bucket - $2 + 1024) % 1024 LIMIT 1 FOR UPDATE SKIP LOCKED)
         UPDATE campaign_budget_buckets b SET remaining_fen = b.remaining_fen - $3
         FROM pick WHERE b.campaign_id = $1 AND b.bucket = pick.bucket RETURNING b.bucket",
    )
    .bind(campaign_id.0)
    .bind(hint)
    .bind(want)
    .fetch_all(&mut *con)
    .await?;
    match fast.len() {
        0 => {}
        1 => return Ok(want),
        n => {
            return Err(StoreError::Corrupt(format!(
                "one budget take updated {n} buckets of campaign {}",
                campaign_id.0
            )))
        }
    }
    sqlx::query("ROLLBACK TO SAVEPOINT take_budget")
        .execute(&mut *con)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(campaign_id.0)
        .execute(&mut *con)
        .await?;
    let rows = sqlx::query(
        "SELECT bucket, remaining_fen FROM campaign_budget_buckets
         WHERE campaign_id = $1 AND remaining_fen > 0 ORDER BY bucket FOR UPDATE",
    )
    .bind(campaign_id.0)
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
        .bind(campaign_id.0)
        .bind(bucket)
        .bind(take)
        .execute(&mut *con)
        .await?;
    }
    Ok(available)
}

/// Gives `amount` back to the campaign's budget: into bucket `hint`, or, when the campaign
/// has fewer buckets (they were made under another `budget.buckets` setting), into bucket
/// `hint` modulo their number — never into nothing.
///
/// # Errors
/// [`StoreError::Corrupt`] when the campaign has no bucket to take it (money would vanish);
/// database failure.
pub async fn return_budget(
    con: &mut PgConnection,
    campaign_id: CampaignId,
    amount: i64,
    hint: i32,
) -> Result<(), StoreError> {
    if amount <= 0 {
        return Ok(());
    }
    let done = sqlx::query(
        "UPDATE campaign_budget_buckets SET remaining_fen = remaining_fen + $3
         WHERE campaign_id = $1 AND bucket = (
             SELECT CASE WHEN bool_or(bucket = $2) THEN $2 ELSE $2 % greatest(count(*), 1)::int4 END
             FROM campaign_budget_buckets WHERE campaign_id = $1)",
    )
    .bind(campaign_id.0)
    .bind(hint.max(0))
    .bind(amount)
    .execute(&mut *con)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt(format!(
            "no budget bucket of campaign {} to give {amount} fen back to",
            campaign_id.0
        )));
    }
    Ok(())
}

/// What remains of a campaign's budget (Σ of its buckets), `None` before first use.
///
/// # Errors
/// Database failure.
pub async fn budget_remaining(
    pool: &PgPool,
    campaign_id: CampaignId,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT sum(remaining_fen)::int8 FROM campaign_budget_buckets WHERE campaign_id = $1",
    )
    .bind(campaign_id.0)
    .fetch_one(pool)
    .await?)
}

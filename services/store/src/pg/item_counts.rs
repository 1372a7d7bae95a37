//! 以旧换新 per-item counts (`item_category_counts`, migration 0009): how many items of each
//! product category one person has had subsidised under a per-item campaign, and the lines
//! each redemption subsidised (`redemption_items`).
//!
//! A checkout charges the counts with the conditional update
//! `… WHERE used_items + q <= limit_items`, category by category in name order (so that two
//! checkouts of one person lock the rows alike; they already queue on the person's
//! entitlement row, which the checkout locks first). A full refund (policy `restore`) or a
//! released hold gives the redemption's items back with
//! `… WHERE used_items >= q`. All of it takes the checkout transaction's connection.

use crate::StoreError;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::BTreeMap;
use uuid::Uuid;
use voucher_core::{CampaignId, PersonId, RedemptionId};

/// Items of one category a checkout charges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryCharge {
    /// The product category.
    pub product_category: String,
    /// Items one person may have (the rule's limit), when the row is made.
    pub limit_items: i32,
    /// Items this checkout charges.
    pub quantity: i32,
}

/// Charges `charges` (in the given order: pass them sorted by category) to the person's
/// counts. Returns the first category whose limit would be passed (`Some`, with nothing of it
/// charged: the caller rolls the transaction back), or `None` when every charge fitted.
///
/// # Errors
/// Database failure.
pub async fn charge_items(
    con: &mut PgConnection,
    campaign_id: CampaignId,
    person_id: &PersonId,
    charges: &[CategoryCharge],
) -> Result<Option<String>, StoreError> {
    for c in charges {
        let charged: Option<i32> = sqlx::query_scalar(
            "INSERT INTO item_category_counts AS c (campaign_id, person_id, product_category, limit_items, used_items)
             SELECT $1, $2, $3, $4, $5 WHERE $5 <= $4
             ON CONFLICT (campaign_id, person_id, product_category) DO UPDATE
             SET used_items = c.used_items + EXCLUDED.used_items
             WHERE c.used_items + EXCLUDED.used_items <= c.limit_items
             RETURNING used_items",
        )
        .bind(campaign_id.0)
        .bind(person_id.as_str())
        .bind(&c.product_category)
        .bind(c.limit_items)
        .bind(c.quantity)
        .fetch_optional(&mut *con)
        .await?;
        if charged.is_none() {
            return Ok(Some(c.product_category.clone()));
        }
    }
    Ok(None)
}

/// Gives `quantity` items of each category back to the person's counts (never below zero).
///
/// # Errors
/// Database failure.
pub async fn return_items(
    con: &mut PgConnection,
    campaign_id: CampaignId,
    person_id: &PersonId,
    items: &BTreeMap<String, i32>,
) -> Result<(), StoreError> {
    for (category, quantity) in items {
        sqlx::query(
            "UPDATE item_category_counts SET used_items = used_items - $4
             WHERE campaign_id = $1 AND person_id = $2 AND product_category = $3 AND used_items >= $4",
        )
        .bind(campaign_id.0)
        .bind(person_id.as_str())
        .bind(category)
        .bind(quantity)
        .execute(&mut *con)
        .await?;
    }
    Ok(())
}

/// The person's used items per category (read without a lock: for a quote).
///
/// # Errors
/// Database failure.
pub async fn items_used(
    pool: &PgPool,
    campaign_id: CampaignId,
    person_id: &PersonId,
) -> Result<BTreeMap<String, i32>, StoreError> {
    let rows = sqlx::query(
        "SELECT product_category, used_items FROM item_category_counts
         WHERE campaign_id = $1 AND person_id = $2",
    )
    .bind(campaign_id.0)
    .bind(person_id.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("product_category")?, r.try_get("used_items")?)))
        .collect()
}

/// One subsidised line of a per-item redemption.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RedemptionItem {
    /// Position on the order, from 0.
    pub line_no: i32,
    /// Its product category.
    pub product_category: String,
    /// Price of one unit, fen.
    pub unit_price_fen: i64,
    /// Units.
    pub quantity: i32,
    /// What one unit got, fen.
    pub per_item_fen: i64,
    /// What the line got, fen.
    pub discount_fen: i64,
}

/// Records a redemption's subsidised lines (after its row: the same transaction).
///
/// # Errors
/// Database failure.
pub async fn insert_items(
    con: &mut PgConnection,
    redemption_id: RedemptionId,
    items: &[RedemptionItem],
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let line_no: Vec<i32> = items.iter().map(|i| i.line_no).collect();
    let category: Vec<&str> = items.iter().map(|i| i.product_category.as_str()).collect();
    let price: Vec<i64> = items.iter().map(|i| i.unit_price_fen).collect();
    let quantity: Vec<i32> = items.iter().map(|i| i.quantity).collect();
    let per_item: Vec<i64> = items.iter().map(|i| i.per_item_fen).collect();
    let discount: Vec<i64> = items.iter().map(|i| i.discount_fen).collect();
    sqlx::query(
        "INSERT INTO redemption_items (redemption_id, line_no, product_category, unit_price_fen, quantity,
                                       per_item_fen, discount_fen)
         SELECT $1, * FROM UNNEST($2::int4[], $3::text[], $4::int8[], $5::int4[], $6::int8[], $7::int8[])",
    )
    .bind(redemption_id.0)
    .bind(&line_no)
    .bind(&category)
    .bind(&price)
    .bind(&quantity)
    .bind(&per_item)
    .bind(&discount)
    .execute(&mut *con)
    .await?;
    Ok(())
}

/// The subsidised lines of several redemptions, by redemption, in line order.
///
/// # Errors
/// Database failure.
pub async fn items_of(
    con: &mut PgConnection,
    redemptions: &[RedemptionId],
) -> Result<BTreeMap<Uuid, Vec<RedemptionItem>>, StoreError> {
    let mut out: BTreeMap<Uuid, Vec<RedemptionItem>> = BTreeMap::new();
    if redemptions.is_empty() {
        return Ok(out);
    }
    let ids: Vec<Uuid> = redemptions.iter().map(|r| r.0).collect();
    let rows = sqlx::query(
        "SELECT redemption_id, line_no, product_category, unit_price_fen, quantity, per_item_fen, discount_fen
         FROM redemption_items WHERE redemption_id = ANY($1) ORDER BY redemption_id, line_no",
    )
    .bind(&ids)
    .fetch_all(&mut *con)
    .await?;
    for r in &rows {
        let id: Uuid = r.try_get("redemption_id")?;
        out.entry(id).or_default().push(RedemptionItem {
            line_no: r.try_get("line_no")?,
            product_category: r.try_get("product_category")?,
            unit_price_fen: r.try_get("unit_price_fen")?,
            quantity: r.try_get("quantity")?,
            per_item_fen: r.try_get("per_item_fen")?,
            discount_fen: r.try_get("discount_fen")?,
        });
    }
    Ok(out)
}

/// The items of a redemption per category (what giving them back returns).
pub fn per_category(items: &[RedemptionItem]) -> BTreeMap<String, i32> {
    let mut out: BTreeMap<String, i32> = BTreeMap::new();
    for i in items {
        let q = out.entry(i.product_category.clone()).or_default();
        *q = q.saturating_add(i.quantity);
    }
    out
}

//! Extra rules on certified attributes (migration 0009): a program's rules
//! (`program_extra_rules`, each with its own budget), what each person was granted
//! (`extra_person_usage`), what each redemption was granted (`redemption_extras`), and the
//! merchant's settlement line of each grant and give-back (`subsidy_lines`).
//!
//! A checkout locks the rule's row and the person's usage row ([`lock_extra`]), computes the
//! extra within what is left, and charges both ([`charge_extra`]) with conditional updates
//! (`… WHERE used_fen + $d <= budget_fen`), so the budget and the person's cap cannot be
//! overdrawn. Lock order, the same everywhere: the checkout takes these after the campaign
//! budget, rules in attribute order, each rule's person row after its rule row. One row per
//! rule is a hot spot only for certified sales of one program (appliance shops, not a
//! voucher rush); split it into buckets like the campaign budget if that ever shows.

use crate::StoreError;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::BTreeMap;
use uuid::Uuid;
use voucher_core::extra::{Attribute, ExtraRule};
use voucher_core::{BasisPoints, Fen, PersonId, ProgramId, RedemptionId};

/// A program's extra rule as stored, with what its budget granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraRuleRecord {
    /// The program.
    pub program_id: ProgramId,
    /// The rule.
    pub rule: ExtraRule,
    /// Granted net of give-backs, fen.
    pub used_fen: i64,
    /// Who set it last.
    pub updated_by: String,
    /// When.
    pub updated_at: DateTime<Utc>,
}

const RULE_COLUMNS: &str =
    "program_id, attribute, rate_bp, cap_per_order_fen, per_person_cap_fen, \
     budget_fen, used_fen, active, updated_by, updated_at";

fn corrupt(what: &str, v: impl std::fmt::Debug) -> StoreError {
    StoreError::Corrupt(format!("{what} {v:?}"))
}

fn fen(v: i64, what: &str) -> Result<Fen, StoreError> {
    Fen::try_from(v).map_err(|_| corrupt(what, v))
}

fn rule_of(row: &sqlx::postgres::PgRow) -> Result<ExtraRuleRecord, StoreError> {
    let attribute: String = row.try_get("attribute")?;
    let rate: i32 = row.try_get("rate_bp")?;
    let per_person: Option<i64> = row.try_get("per_person_cap_fen")?;
    Ok(ExtraRuleRecord {
        program_id: ProgramId(row.try_get("program_id")?),
        rule: ExtraRule {
            attribute: Attribute::parse(&attribute)
                .map_err(|_| corrupt("attribute", &attribute))?,
            rate_bp: u32::try_from(rate)
                .ok()
                .and_then(|r| BasisPoints::try_from(r).ok())
                .ok_or_else(|| corrupt("rate_bp", rate))?,
            cap_per_order: fen(row.try_get("cap_per_order_fen")?, "cap_per_order_fen")?,
            per_person_cap: per_person
                .map(|v| fen(v, "per_person_cap_fen"))
                .transpose()?,
            budget: fen(row.try_get("budget_fen")?, "budget_fen")?,
            active: row.try_get("active")?,
        },
        used_fen: row.try_get("used_fen")?,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// How [`set_rule`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetRule {
    /// Created or replaced.
    Set(ExtraRuleRecord),
    /// The new budget is below what the rule already granted: nothing changed.
    BudgetBelowUsed {
        /// Granted so far, fen.
        used_fen: i64,
    },
}

/// Creates or replaces the program's rule for `rule.attribute` (what it granted stays).
///
/// # Errors
/// [`StoreError::NotFound`] when the program does not exist; database failure.
pub async fn set_rule(
    pool: &PgPool,
    program_id: ProgramId,
    rule: &ExtraRule,
    by: &str,
    at: DateTime<Utc>,
) -> Result<SetRule, StoreError> {
    let mut tx = pool.begin().await?;
    let program: Option<i64> = sqlx::query_scalar("SELECT id FROM programs WHERE id = $1")
        .bind(program_id.0)
        .fetch_optional(&mut *tx)
        .await?;
    if program.is_none() {
        return Err(StoreError::NotFound);
    }
    let row = sqlx::query(&format!(
        "INSERT INTO program_extra_rules AS r ({RULE_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)
         ON CONFLICT (program_id, attribute) DO UPDATE
         SET rate_bp = EXCLUDED.rate_bp, cap_per_order_fen = EXCLUDED.cap_per_order_fen,
             per_person_cap_fen = EXCLUDED.per_person_cap_fen, budget_fen = EXCLUDED.budget_fen,
             active = EXCLUDED.active, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
         WHERE r.used_fen <= EXCLUDED.budget_fen
         RETURNING {RULE_COLUMNS}"
    ))
    .bind(program_id.0)
    .bind(rule.attribute.as_str())
    .bind(i32::from(rule.rate_bp.get()))
    .bind(rule.cap_per_order.as_i64())
    .bind(rule.per_person_cap.map(Fen::as_i64))
    .bind(rule.budget.as_i64())
    .bind(rule.active)
    .bind(by)
    .bind(at)
    .fetch_optional(&mut *tx)
    .await?;
    let answer = match row {
        Some(row) => SetRule::Set(rule_of(&row)?),
        None => {
            let used: i64 = sqlx::query_scalar(
                "SELECT used_fen FROM program_extra_rules WHERE program_id = $1 AND attribute = $2",
            )
            .bind(program_id.0)
            .bind(rule.attribute.as_str())
            .fetch_one(&mut *tx)
            .await?;
            SetRule::BudgetBelowUsed { used_fen: used }
        }
    };
    tx.commit().await?;
    Ok(answer)
}

/// The program's rules, by attribute.
///
/// # Errors
/// Database failure.
pub async fn rules(
    con: &mut PgConnection,
    program_id: ProgramId,
) -> Result<Vec<ExtraRuleRecord>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {RULE_COLUMNS} FROM program_extra_rules WHERE program_id = $1 ORDER BY attribute"
    ))
    .bind(program_id.0)
    .fetch_all(&mut *con)
    .await?;
    rows.iter().map(rule_of).collect()
}

/// A rule and the person's use of it, locked for the checkout's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedExtra {
    /// The rule as it is now.
    pub rule: ExtraRule,
    /// What is left of its budget, fen.
    pub budget_left: Fen,
    /// What the person has been granted of it, fen.
    pub person_used: Fen,
}

/// Locks the program's rule for `attribute` and the person's usage row (made on first use).
/// `None` when the rule does not exist or is switched off.
///
/// # Errors
/// Database failure; stored figures out of range.
pub async fn lock_extra(
    con: &mut PgConnection,
    program_id: ProgramId,
    attribute: &Attribute,
    person_id: &PersonId,
) -> Result<Option<LockedExtra>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {RULE_COLUMNS} FROM program_extra_rules WHERE program_id = $1 AND attribute = $2 FOR UPDATE"
    ))
    .bind(program_id.0)
    .bind(attribute.as_str())
    .fetch_optional(&mut *con)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let record = rule_of(&row)?;
    if !record.rule.active {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO extra_person_usage (program_id, attribute, person_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(program_id.0)
    .bind(attribute.as_str())
    .bind(person_id.as_str())
    .execute(&mut *con)
    .await?;
    let person_used: i64 = sqlx::query_scalar(
        "SELECT used_fen FROM extra_person_usage
         WHERE program_id = $1 AND attribute = $2 AND person_id = $3 FOR UPDATE",
    )
    .bind(program_id.0)
    .bind(attribute.as_str())
    .bind(person_id.as_str())
    .fetch_one(&mut *con)
    .await?;
    let left = record.rule.budget.as_i64() - record.used_fen;
    Ok(Some(LockedExtra {
        budget_left: fen(left.max(0), "budget left")?,
        person_used: fen(person_used, "person used")?,
        rule: record.rule,
    }))
}

/// The person's use of a rule and what is left of its budget, without locks (for a quote).
///
/// # Errors
/// Database failure.
pub async fn peek_extra(
    pool: &PgPool,
    program_id: ProgramId,
    attribute: &Attribute,
    person_id: &PersonId,
) -> Result<Option<LockedExtra>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {RULE_COLUMNS} FROM program_extra_rules WHERE program_id = $1 AND attribute = $2"
    ))
    .bind(program_id.0)
    .bind(attribute.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let record = rule_of(&row)?;
    if !record.rule.active {
        return Ok(None);
    }
    let person_used: Option<i64> = sqlx::query_scalar(
        "SELECT used_fen FROM extra_person_usage WHERE program_id = $1 AND attribute = $2 AND person_id = $3",
    )
    .bind(program_id.0)
    .bind(attribute.as_str())
    .bind(person_id.as_str())
    .fetch_optional(pool)
    .await?;
    let left = record.rule.budget.as_i64() - record.used_fen;
    Ok(Some(LockedExtra {
        budget_left: fen(left.max(0), "budget left")?,
        person_used: fen(person_used.unwrap_or(0), "person used")?,
        rule: record.rule,
    }))
}

/// Adds `amount` (negative to give back) to the rule's budget use and, when `person`, to the
/// person's use, only within `0..=budget` and `≥ 0`. `false` (nothing changed on the budget)
/// otherwise.
///
/// # Errors
/// Database failure.
pub async fn charge_extra(
    con: &mut PgConnection,
    program_id: ProgramId,
    attribute: &str,
    person_id: &PersonId,
    amount: i64,
    person: bool,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE program_extra_rules SET used_fen = used_fen + $3
         WHERE program_id = $1 AND attribute = $2 AND used_fen + $3 BETWEEN 0 AND budget_fen",
    )
    .bind(program_id.0)
    .bind(attribute)
    .bind(amount)
    .execute(&mut *con)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    if person {
        sqlx::query(
            "UPDATE extra_person_usage SET used_fen = greatest(used_fen + $4, 0)
             WHERE program_id = $1 AND attribute = $2 AND person_id = $3",
        )
        .bind(program_id.0)
        .bind(attribute)
        .bind(person_id.as_str())
        .bind(amount)
        .execute(&mut *con)
        .await?;
    }
    Ok(true)
}

/// What a redemption was granted by one extra rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionExtra {
    /// The redemption.
    pub redemption_id: RedemptionId,
    /// The certified attribute.
    pub attribute: String,
    /// The program whose rule granted it.
    pub program_id: ProgramId,
    /// The holder of the voucher.
    pub person_id: String,
    /// Σ of the certified lines' amounts, fen.
    pub base_fen: i64,
    /// Granted, fen (> 0).
    pub amount_fen: i64,
    /// Given back by reversals, fen.
    pub reversed_fen: i64,
    /// Settlement city.
    pub city: i32,
    /// Co-funding county, if any.
    pub county: Option<i32>,
    /// The certificate numbers of the certified lines.
    pub certificates: serde_json::Value,
}

/// Records a redemption's extra (after its row: the same transaction).
///
/// # Errors
/// Database failure.
pub async fn insert_redemption_extra(
    con: &mut PgConnection,
    e: &RedemptionExtra,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO redemption_extras (redemption_id, attribute, program_id, person_id, base_fen, amount_fen,
                                        reversed_fen, city, county, certificates)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.redemption_id.0)
    .bind(&e.attribute)
    .bind(e.program_id.0)
    .bind(&e.person_id)
    .bind(e.base_fen)
    .bind(e.amount_fen)
    .bind(e.reversed_fen)
    .bind(e.city)
    .bind(e.county)
    .bind(&e.certificates)
    .execute(&mut *con)
    .await?;
    Ok(())
}

/// The extras of several redemptions, by redemption, in attribute order.
///
/// # Errors
/// Database failure.
pub async fn extras_of(
    con: &mut PgConnection,
    redemptions: &[RedemptionId],
) -> Result<BTreeMap<Uuid, Vec<RedemptionExtra>>, StoreError> {
    let mut out: BTreeMap<Uuid, Vec<RedemptionExtra>> = BTreeMap::new();
    if redemptions.is_empty() {
        return Ok(out);
    }
    let ids: Vec<Uuid> = redemptions.iter().map(|r| r.0).collect();
    let rows = sqlx::query(
        "SELECT redemption_id, attribute, program_id, person_id, base_fen, amount_fen, reversed_fen, city,
                county, certificates
         FROM redemption_extras WHERE redemption_id = ANY($1) ORDER BY redemption_id, attribute",
    )
    .bind(&ids)
    .fetch_all(&mut *con)
    .await?;
    for r in &rows {
        let id: Uuid = r.try_get("redemption_id")?;
        out.entry(id).or_default().push(RedemptionExtra {
            redemption_id: RedemptionId(id),
            attribute: r.try_get("attribute")?,
            program_id: ProgramId(r.try_get("program_id")?),
            person_id: r.try_get("person_id")?,
            base_fen: r.try_get("base_fen")?,
            amount_fen: r.try_get("amount_fen")?,
            reversed_fen: r.try_get("reversed_fen")?,
            city: r.try_get("city")?,
            county: r.try_get("county")?,
            certificates: r.try_get("certificates")?,
        });
    }
    Ok(out)
}

/// Adds `back` to what reversals gave back of a redemption's extra (only within its amount).
/// `false` otherwise.
///
/// # Errors
/// Database failure.
pub async fn add_reversed(
    con: &mut PgConnection,
    redemption_id: RedemptionId,
    attribute: &str,
    back: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE redemption_extras SET reversed_fen = reversed_fen + $3
         WHERE redemption_id = $1 AND attribute = $2 AND reversed_fen + $3 <= amount_fen",
    )
    .bind(redemption_id.0)
    .bind(attribute)
    .bind(back)
    .execute(&mut *con)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A merchant's settlement line of an extra: granted (> 0) at a sale or a capture, given
/// back (< 0) by a reversal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantSubsidyLine {
    /// What created it (unique: writing it twice is a no-op).
    pub source: String,
    /// E.g. `extra:green_product`.
    pub kind: String,
    /// The program.
    pub program_id: ProgramId,
    /// The voucher's campaign.
    pub campaign_id: i64,
    /// Settlement city.
    pub city: i32,
    /// Co-funding county.
    pub county: Option<i32>,
    /// The merchant paid.
    pub merchant_id: String,
    /// Fen, ≠ 0.
    pub amount_fen: i64,
    /// The instant that puts it in a settlement period.
    pub counted_at: DateTime<Utc>,
    /// Facts for the reports.
    pub detail: serde_json::Value,
}

/// Writes a merchant's subsidy line (idempotent on its source).
///
/// # Errors
/// Database failure.
pub async fn insert_merchant_line(
    con: &mut PgConnection,
    l: &MerchantSubsidyLine,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO subsidy_lines (id, source, kind, program_id, campaign_id, city, county, payee_kind,
                                    merchant_id, person_id, amount_fen, counted_at, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'merchant', $8, NULL, $9, $10, $11)
         ON CONFLICT (source) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(&l.source)
    .bind(&l.kind)
    .bind(l.program_id.0)
    .bind(l.campaign_id)
    .bind(l.city)
    .bind(l.county)
    .bind(&l.merchant_id)
    .bind(l.amount_fen)
    .bind(l.counted_at)
    .bind(&l.detail)
    .execute(&mut *con)
    .await?;
    Ok(())
}

/// What one reversal gave back of a redemption's extras, fen (Σ of its negative lines).
///
/// # Errors
/// Database failure.
pub async fn reversed_by(
    con: &mut PgConnection,
    redemption_id: RedemptionId,
    reversal_id: Uuid,
) -> Result<i64, StoreError> {
    let prefix = format!("extra:{}:", redemption_id.0);
    let suffix = format!(":reversal:{reversal_id}");
    Ok(sqlx::query_scalar(
        "SELECT coalesce(-sum(amount_fen), 0)::int8 FROM subsidy_lines
         WHERE left(source, length($1)) = $1 AND right(source, length($2)) = $2",
    )
    .bind(prefix)
    .bind(suffix)
    .fetch_one(&mut *con)
    .await?)
}

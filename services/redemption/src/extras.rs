//! Extra rules on certified attributes (green and new-energy products: 000 item 63, 003
//! §(十八), 在政府消费券发放过程中对绿色产品、新能源产品给予资金扶持), configured on a program
//! and granted at the till on top of a voucher's discount.
//!
//! - **Configuration** ([`set_rule`], [`list_rules`]): a province administrator managing the
//!   program's funding place sets a rule per attribute (rate, cap per order, optional cap per
//!   person, its own budget, on/off); any administrator of a place the program funds reads
//!   them. A budget below what the rule already granted is refused
//!   (`EXTRA_BUDGET_BELOW_GRANTED`).
//! - **Checkout** ([`applicable`], [`grant`], [`record`]): when a voucher of the program is
//!   approved on an order whose lines carry certifications for attributes the program has an
//!   active rule for, each such rule (in attribute order, after the campaign budget: the
//!   store's lock order) is locked with the person's use of it, the extras are computed by
//!   `voucher_core::extra::plan` within what the customer still pays, and charged. What each
//!   redemption got is a `redemption_extras` row; a sale writes its settlement line in
//!   `subsidy_lines` (kind `extra:<attribute>`, paid to the merchant) in the same
//!   transaction. An exhausted budget or person cap means no extra; the sale is approved all
//!   the same.
//! - **Holds**: the extra is reserved at authorisation, its settlement line written at capture
//!   ([`capture`]), its reservation given back at void or expiry ([`release`]).
//! - **Reversals** ([`reverse`]): each extra is given back in proportion to the order amount
//!   refunded, on cumulative totals (`voucher_core::extra::proportional`), so partial
//!   reversals add up exactly to the extra; each writes a negative settlement line of its
//!   own. The budget always gets it back; the person's cap only under refund policy
//!   `restore` (like the voucher's entitlement).

use crate::checkout::lines::OrderLines;
use crate::error::{ApiError, Code};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;
use voucher_core::extra::{self, Attribute, ExtraInput, ExtraRule};
use voucher_core::place::PlaceLevel;
use voucher_core::{AdminRole, Fen, PersonId, PlaceCode, ProgramId, RedemptionId};
use voucher_platform::admin::Admin;
use voucher_platform::error::Common;
use voucher_store::pg::extras::{
    self as db, ExtraRuleRecord, MerchantSubsidyLine, RedemptionExtra, SetRule,
};
use voucher_store::pg::programs;
use voucher_store::pg::redemptions::RedemptionRecord;
use voucher_store::StoreError;

/// The settlement line kind of an attribute's extra: `extra:<attribute>`.
pub fn kind(attribute: &str) -> String {
    format!("extra:{attribute}")
}

/// An extra rule as an administrator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExtraRuleView {
    /// The program.
    pub program_id: i64,
    /// The certified attribute, e.g. `green_product`.
    pub attribute: String,
    /// Its settlement line kind, `extra:<attribute>`.
    pub kind: String,
    /// Of the certified lines' amount, basis points (500 = 5%).
    pub rate_bp: u32,
    /// Most one order gets, fen.
    pub cap_per_order: i64,
    /// Most one person gets across orders, fen, when limited.
    pub per_person_cap: Option<i64>,
    /// The rule's own budget, fen.
    pub budget: i64,
    /// Granted net of give-backs, fen.
    pub granted: i64,
    /// budget − granted, fen.
    pub remaining: i64,
    /// Whether new redemptions get it.
    pub active: bool,
    /// Who set it last.
    pub updated_by: String,
    /// When.
    #[schema(value_type = String)]
    pub updated_at: DateTime<Utc>,
}

impl ExtraRuleView {
    fn of(r: &ExtraRuleRecord) -> ExtraRuleView {
        ExtraRuleView {
            program_id: r.program_id.0,
            attribute: r.rule.attribute.as_str().to_owned(),
            kind: kind(r.rule.attribute.as_str()),
            rate_bp: u32::from(r.rule.rate_bp),
            cap_per_order: r.rule.cap_per_order.as_i64(),
            per_person_cap: r.rule.per_person_cap.map(Fen::as_i64),
            budget: r.rule.budget.as_i64(),
            granted: r.used_fen,
            remaining: r.rule.budget.as_i64() - r.used_fen,
            active: r.rule.active,
            updated_by: r.updated_by.clone(),
            updated_at: r.updated_at,
        }
    }
}

/// `POST /v1/admin/programs/{id}/extra-rules` body (`voucher_core::extra::ExtraRule`): a rule
/// for `attribute` is created, or replaced (what it granted stays). Amounts in fen.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"attribute": "green_product", "rate_bp": 500, "cap_per_order": 50000,
    "per_person_cap": 100000, "budget": 1000000000i64, "active": true}))]
pub struct ExtraRuleBody {
    /// The certified attribute: 1–32 characters of `a-z 0-9 _`, starting with a letter.
    pub attribute: String,
    /// Of the certified lines' amount, basis points, 1–10000.
    pub rate_bp: u32,
    /// Most one order gets, fen (> 0).
    pub cap_per_order: i64,
    /// Most one person gets across orders, fen (> 0), if limited.
    pub per_person_cap: Option<i64>,
    /// The rule's own budget, fen (> 0; not below what it already granted).
    pub budget: i64,
    /// Whether new redemptions get it (default true).
    pub active: Option<bool>,
}

/// What a redemption got from one extra rule, as the terminal sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExtraView {
    /// The certified attribute.
    pub attribute: String,
    /// Its settlement line kind, `extra:<attribute>`.
    pub kind: String,
    /// Σ of the certified lines' amounts, fen.
    pub base_fen: i64,
    /// The extra, fen: paid to the merchant on its own settlement line.
    pub amount_fen: i64,
    /// Given back by reversals so far, fen.
    pub reversed_fen: i64,
}

impl ExtraView {
    /// The view of a stored extra.
    pub fn of(e: &RedemptionExtra) -> ExtraView {
        ExtraView {
            attribute: e.attribute.clone(),
            kind: kind(&e.attribute),
            base_fen: e.base_fen,
            amount_fen: e.amount_fen,
            reversed_fen: e.reversed_fen,
        }
    }
}

async fn program_place(state: &AppState, program_id: ProgramId) -> Result<PlaceCode, ApiError> {
    programs::get(&state.pg, program_id)
        .await?
        .map(|p| p.spec.funder_place)
        .ok_or_else(|| {
            ApiError::new(Code::ProgramNotFound)
                .with_message(format!("program {} does not exist", program_id.0))
        })
}

/// Sets (creates or replaces) a program's extra rule.
///
/// # Errors
/// `PROGRAM_NOT_FOUND`, `FORBIDDEN_ROLE` (not a province administrator), `FORBIDDEN_PLACE`,
/// `INVALID_FIELD`, `EXTRA_BUDGET_BELOW_GRANTED`.
#[tracing::instrument(name = "redemption.extras.set_rule", skip_all, fields(admin = %who.name))]
pub async fn set_rule(
    state: &AppState,
    who: &Admin,
    program_id: ProgramId,
    rule: ExtraRule,
) -> Result<ExtraRuleView, ApiError> {
    rule.validate()
        .map_err(|e| ApiError::invalid_field(e.field(), e))?;
    let funder = program_place(state, program_id).await?;
    who.require_role(AdminRole::Province)?;
    who.require_place(funder)?;
    match db::set_rule(&state.pg, program_id, &rule, &who.name, state.clock.now()).await {
        Ok(SetRule::Set(record)) => Ok(ExtraRuleView::of(&record)),
        Ok(SetRule::BudgetBelowUsed { used_fen }) => {
            Err(ApiError::new(Code::ExtraBudgetBelowGranted)
                .with_message(format!(
                    "the rule has granted {used_fen} fen: the budget cannot be set below that"
                ))
                .with_details(serde_json::json!({ "granted": used_fen })))
        }
        Err(StoreError::NotFound) => Err(ApiError::new(Code::ProgramNotFound)),
        Err(e) => Err(e.into()),
    }
}

/// A program's extra rules, for an administrator of a place the program funds (or of the
/// funding place itself).
///
/// # Errors
/// `PROGRAM_NOT_FOUND`, `FORBIDDEN_PLACE`.
pub async fn list_rules(
    state: &AppState,
    who: &Admin,
    program_id: ProgramId,
) -> Result<Vec<ExtraRuleView>, ApiError> {
    let funder = program_place(state, program_id).await?;
    if !(who.can_manage(funder) || funder.covers(who.place)) {
        return Err(ApiError::new(Common::ForbiddenPlace).with_message(format!(
            "program {} funds {funder}, not your place",
            program_id.0
        )));
    }
    let mut con = state.pg.acquire().await.map_err(StoreError::from)?;
    Ok(db::rules(&mut con, program_id)
        .await?
        .iter()
        .map(ExtraRuleView::of)
        .collect())
}

/// The program's active rules for attributes certified on the order's lines (read without
/// locks: whether a checkout must take the path that can grant extras).
///
/// # Errors
/// Database failure.
pub async fn applicable(
    con: &mut PgConnection,
    program_id: ProgramId,
    lines: Option<&OrderLines>,
) -> Result<Vec<ExtraRule>, StoreError> {
    let attributes = lines.map(OrderLines::attributes).unwrap_or_default();
    if attributes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(db::rules(con, program_id)
        .await?
        .into_iter()
        .filter(|r| r.rule.active && attributes.contains(&r.rule.attribute))
        .map(|r| r.rule)
        .collect())
}

/// An extra granted in a decision, not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The attribute.
    pub attribute: Attribute,
    /// Σ of the certified lines' amounts.
    pub base: Fen,
    /// The extra (> 0).
    pub amount: Fen,
    /// The certificate numbers of the certified lines.
    pub certificates: Vec<String>,
}

/// Locks each applicable rule (attribute order) and the person's use of it, computes the
/// extras within `room` (what the customer still pays after the discount) and charges them.
/// Only extras above zero are returned.
///
/// # Errors
/// Database failure; a charge refused under its own row lock (a bug).
pub async fn grant(
    con: &mut PgConnection,
    program_id: ProgramId,
    person: &PersonId,
    lines: &OrderLines,
    rules: &[ExtraRule],
    room: Fen,
) -> Result<Vec<Granted>, ApiError> {
    let certified = lines.certified();
    let mut locked = Vec::with_capacity(rules.len());
    let mut sorted: Vec<&ExtraRule> = rules.iter().collect();
    sorted.sort_by(|a, b| a.attribute.cmp(&b.attribute));
    for rule in sorted {
        if let Some(l) = db::lock_extra(con, program_id, &rule.attribute, person).await? {
            let base = extra::certified_base(&certified, &l.rule.attribute);
            locked.push((l, base));
        }
    }
    let inputs: Vec<ExtraInput<'_>> = locked
        .iter()
        .map(|(l, base)| ExtraInput {
            rule: &l.rule,
            base: *base,
            budget_left: l.budget_left,
            person_used: l.person_used,
        })
        .collect();
    let amounts = extra::plan(&inputs, room);
    let mut out = Vec::new();
    for ((l, base), amount) in locked.iter().zip(amounts) {
        if amount == Fen::ZERO {
            continue;
        }
        let attribute = l.rule.attribute.as_str();
        if !db::charge_extra(con, program_id, attribute, person, amount.as_i64(), true).await? {
            return Err(ApiError::internal(anyhow::anyhow!(
                "extra rule {attribute} changed under its row lock"
            )));
        }
        out.push(Granted {
            attribute: l.rule.attribute.clone(),
            base: *base,
            amount,
            certificates: lines.certificates(&l.rule.attribute),
        });
    }
    Ok(out)
}

/// The settlement city and co-funding county of a redemption (as the settlement places its
/// redemptions): the campaign owner's city, or the merchant's for a campaign the province
/// owns; the owner when it is a county.
pub fn settlement_place(owner: PlaceCode, merchant: PlaceCode) -> (i32, Option<i32>) {
    let city = match owner.level() {
        PlaceLevel::Province => merchant.city(),
        _ => owner.city(),
    };
    let county = (owner.level() == PlaceLevel::County).then_some(owner);
    let code = |p: PlaceCode| i32::try_from(p.get()).unwrap_or(0);
    (code(city), county.map(code))
}

fn line_of(r: &RedemptionRecord, e: &RedemptionExtra, now: DateTime<Utc>) -> MerchantSubsidyLine {
    MerchantSubsidyLine {
        source: format!("extra:{}:{}", r.id.0, e.attribute),
        kind: kind(&e.attribute),
        program_id: e.program_id,
        campaign_id: r.campaign_id.0,
        city: e.city,
        county: e.county,
        merchant_id: r.merchant_id.as_str().to_owned(),
        amount_fen: e.amount_fen,
        counted_at: now,
        detail: serde_json::json!({
            "redemption_id": r.id.0,
            "order_ref": r.order_ref,
            "attribute": e.attribute,
            "base_fen": e.base_fen,
            "certificates": e.certificates,
        }),
    }
}

/// Records a decision's extras after its redemption row: one `redemption_extras` row each
/// and, for a sale (`counted_at` given), its settlement line.
///
/// # Errors
/// Database failure.
pub async fn record(
    con: &mut PgConnection,
    r: &RedemptionRecord,
    granted: &[Granted],
    place: (i32, Option<i32>),
    counted_at: Option<DateTime<Utc>>,
) -> Result<Vec<RedemptionExtra>, StoreError> {
    let mut out = Vec::with_capacity(granted.len());
    for g in granted {
        let e = RedemptionExtra {
            redemption_id: r.id,
            attribute: g.attribute.as_str().to_owned(),
            program_id: r.program_id,
            person_id: r.person_id.as_str().to_owned(),
            base_fen: g.base.as_i64(),
            amount_fen: g.amount.as_i64(),
            reversed_fen: 0,
            city: place.0,
            county: place.1,
            certificates: serde_json::json!(g.certificates),
        };
        db::insert_redemption_extra(con, &e).await?;
        if let Some(at) = counted_at {
            db::insert_merchant_line(con, &line_of(r, &e, at)).await?;
        }
        out.push(e);
    }
    Ok(out)
}

/// The extras of one redemption.
///
/// # Errors
/// Database failure.
pub async fn of(
    con: &mut PgConnection,
    id: RedemptionId,
) -> Result<Vec<RedemptionExtra>, StoreError> {
    Ok(db::extras_of(con, &[id])
        .await?
        .remove(&id.0)
        .unwrap_or_default())
}

/// Writes the settlement lines of a captured hold's extras (counted at the capture).
///
/// # Errors
/// Database failure.
pub async fn capture(
    con: &mut PgConnection,
    r: &RedemptionRecord,
    now: DateTime<Utc>,
) -> Result<Vec<RedemptionExtra>, StoreError> {
    let extras = of(con, r.id).await?;
    for e in &extras {
        db::insert_merchant_line(con, &line_of(r, e, now)).await?;
    }
    Ok(extras)
}

/// Gives a released hold's extras back to their budgets and the person's use.
///
/// # Errors
/// Database failure; a give-back refused (a bug).
pub async fn release(con: &mut PgConnection, r: &RedemptionRecord) -> Result<(), StoreError> {
    for e in of(con, r.id).await? {
        let person = &r.person_id;
        if !db::charge_extra(con, e.program_id, &e.attribute, person, -e.amount_fen, true).await? {
            return Err(StoreError::Corrupt(format!(
                "extra {} of redemption {} exceeds its rule's use",
                e.attribute, r.id.0
            )));
        }
    }
    Ok(())
}

/// Gives back the extras of a redemption in proportion to `refund` (the redemption as locked
/// before this reversal: its `refunded_amount_fen` is what was refunded before). Returns
/// what was given back, by attribute.
///
/// # Errors
/// Database failure; a give-back refused (a bug: the redemption row is locked).
pub async fn reverse(
    con: &mut PgConnection,
    r: &RedemptionRecord,
    refund: i64,
    reversal_id: Uuid,
    restore_person: bool,
    now: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut out = Vec::new();
    let order = Fen::try_from(r.order_amount_fen).unwrap_or(Fen::ZERO);
    let before = Fen::try_from(r.refunded_amount_fen).unwrap_or(Fen::ZERO);
    let refund = Fen::try_from(refund).unwrap_or(Fen::ZERO);
    for e in of(con, r.id).await? {
        let amount = Fen::try_from(e.amount_fen).unwrap_or(Fen::ZERO);
        let back = extra::proportional(amount, order, before, refund).as_i64();
        if back == 0 {
            continue;
        }
        let fits = db::add_reversed(con, r.id, &e.attribute, back).await?
            && db::charge_extra(
                con,
                e.program_id,
                &e.attribute,
                &r.person_id,
                -back,
                restore_person,
            )
            .await?;
        if !fits {
            return Err(StoreError::Corrupt(format!(
                "extra {} of redemption {} cannot give back {back} fen",
                e.attribute, r.id.0
            )));
        }
        db::insert_merchant_line(
            con,
            &MerchantSubsidyLine {
                source: format!("extra:{}:{}:reversal:{reversal_id}", r.id.0, e.attribute),
                kind: kind(&e.attribute),
                program_id: e.program_id,
                campaign_id: r.campaign_id.0,
                city: e.city,
                county: e.county,
                merchant_id: r.merchant_id.as_str().to_owned(),
                amount_fen: -back,
                counted_at: now,
                detail: serde_json::json!({
                    "redemption_id": r.id.0,
                    "reversal_id": reversal_id,
                    "attribute": e.attribute,
                    "refund_amount_fen": refund.as_i64(),
                }),
            },
        )
        .await?;
        out.push((e.attribute, back));
    }
    Ok(out)
}

/// What the order's extras would be now, read without locks (for a quote).
///
/// # Errors
/// Database failure.
pub async fn peek(
    state: &AppState,
    program_id: ProgramId,
    person: &PersonId,
    lines: Option<&OrderLines>,
    room: Fen,
) -> Result<Vec<ExtraView>, ApiError> {
    let Some(lines) = lines else {
        return Ok(Vec::new());
    };
    let mut con = state.pg.acquire().await.map_err(StoreError::from)?;
    let rules = applicable(&mut con, program_id, Some(lines)).await?;
    drop(con);
    let certified = lines.certified();
    let mut locked = Vec::new();
    for rule in &rules {
        if let Some(l) = db::peek_extra(&state.pg, program_id, &rule.attribute, person).await? {
            let base = extra::certified_base(&certified, &l.rule.attribute);
            locked.push((l, base));
        }
    }
    let inputs: Vec<ExtraInput<'_>> = locked
        .iter()
        .map(|(l, base)| ExtraInput {
            rule: &l.rule,
            base: *base,
            budget_left: l.budget_left,
            person_used: l.person_used,
        })
        .collect();
    Ok(locked
        .iter()
        .zip(extra::plan(&inputs, room))
        .filter(|(_, amount)| *amount > Fen::ZERO)
        .map(|((l, base), amount)| ExtraView {
            attribute: l.rule.attribute.as_str().to_owned(),
            kind: kind(l.rule.attribute.as_str()),
            base_fen: base.as_i64(),
            amount_fen: amount.as_i64(),
            reversed_fen: 0,
        })
        .collect())
}

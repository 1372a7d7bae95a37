//! The decisions of the two entitlement vouchers that are not a plain percentage, inside the
//! transaction that holds the idempotency key (the caller has inserted the voucher from its
//! token and checked it is spendable):
//!
//! - **以旧换新 per-item** ([`item_percent`], 002 §(十五)): the lines are priced by the rule
//!   (`voucher_core::item_rule::ItemRule::price`: refusals for missing lines, categories the
//!   rule does not cover, items above the highest price, more items of a category than a
//!   person may have at all); the person's entitlement row is locked (every checkout of the
//!   person in this campaign queues there); a cap already used up is `CAP_EXHAUSTED`; the
//!   items are charged to the person's per-category counts with a conditional update (a
//!   category over its limit is `CATEGORY_LIMIT_REACHED`, the whole order declined); the
//!   lines' discounts are cut, in line order, to what is left of the person's cap and then of
//!   the campaign budget (nothing left of the budget is `BUDGET_EXHAUSTED`: no category
//!   allowance is spent on a purchase the budget cannot subsidise), and the entitlement is
//!   charged with what was granted.
//! - **旅游惠民年卡** ([`annual_card`], 001 item 13): the person's entitlement row (cap = the
//!   subsidy) is locked; while nothing was granted on it, the entry gets `min(subsidy, order)`
//!   from the budget (all or nothing: an exhausted budget approves the entry without subsidy,
//!   notice `BUDGET_EXHAUSTED`, and a later entry may still get it); once granted, every
//!   entry is approved with 0. Two gates at once queue on the row lock: one subsidy.

use crate::error::ApiError;
use voucher_core::checkout::Decline;
use voucher_core::discount;
use voucher_core::item_rule::{self, ItemRule, PricedLine};
use voucher_core::token::VoucherClaims;
use voucher_core::Fen;
use voucher_store::pg::item_counts::{self, CategoryCharge};
use voucher_store::pg::{budget, entitlements};

use super::lines::OrderLines;

/// What an entitlement decision grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The discount, fen.
    pub discount: i64,
    /// What cut it: `CAP_EXHAUSTED` or `BUDGET_EXHAUSTED`.
    pub notice: Option<&'static str>,
    /// Whether the person's cap (the annual card's subsidy) is used up now.
    pub cap_exhausted: bool,
    /// A per-item voucher's lines as subsidised.
    pub items: Vec<PricedLine>,
}

fn at_most(v: i64) -> Fen {
    Fen::try_from(v.max(0)).unwrap_or(Fen::ZERO)
}

/// The per-item decision.
///
/// # Errors
/// Database failure; the entitlement changed under its row lock (a bug).
pub async fn item_percent(
    tx: &mut sqlx::PgConnection,
    rule: &ItemRule,
    claims: &VoucherClaims,
    lines: Option<&OrderLines>,
    bucket: i32,
) -> Result<Result<Decided, Decline>, ApiError> {
    let campaign_id = claims.campaign_id;
    let person = &claims.person_id;
    let items = lines.map(OrderLines::items).unwrap_or_default();
    let mut priced = match rule.price(&items) {
        Ok(p) => p,
        Err(refusal) => return Ok(Err(refusal.decline())),
    };
    let cap = claims.rule.entitlement_cap().map_or(i64::MAX, Fen::as_i64);
    let (used, cap) = entitlements::lock_entitlement(tx, campaign_id, person, cap).await?;
    let room = at_most(cap - used);
    if room == Fen::ZERO {
        return Ok(Err(Decline::CapExhausted));
    }
    let charges: Vec<CategoryCharge> = item_rule::quantities(&priced)
        .into_iter()
        .map(|(category, quantity)| CategoryCharge {
            limit_items: rule
                .terms(&category)
                .map_or(0, |t| i32::try_from(t.per_person_items).unwrap_or(i32::MAX)),
            product_category: category.as_str().to_owned(),
            quantity: i32::try_from(quantity).unwrap_or(i32::MAX),
        })
        .collect();
    if item_counts::charge_items(tx, campaign_id, person, &charges)
        .await?
        .is_some()
    {
        return Ok(Err(Decline::CategoryLimitReached));
    }
    let wanted = item_rule::total(&priced);
    let after_cap = item_rule::cut_to(&mut priced, room);
    let taken = budget::take_budget(tx, campaign_id, after_cap.as_i64(), true, bucket).await?;
    if taken == 0 && after_cap > Fen::ZERO {
        return Ok(Err(Decline::BudgetExhausted));
    }
    let granted = item_rule::cut_to(&mut priced, at_most(taken));
    if granted.as_i64() != taken {
        return Err(ApiError::internal(anyhow::anyhow!(
            "per-item lines cut to {granted} but {taken} fen taken"
        )));
    }
    if taken > 0 && !entitlements::use_entitlement(tx, campaign_id, person, taken).await? {
        return Err(ApiError::internal(anyhow::anyhow!(
            "entitlement changed under its row lock"
        )));
    }
    let notice = if taken < after_cap.as_i64() {
        Some("BUDGET_EXHAUSTED")
    } else if after_cap < wanted {
        Some("CAP_EXHAUSTED")
    } else {
        None
    };
    Ok(Ok(Decided {
        discount: taken,
        notice,
        cap_exhausted: rule.per_person_cap.is_some() && used + taken >= cap,
        items: priced,
    }))
}

/// The annual card's decision.
///
/// # Errors
/// Database failure; the entitlement changed under its row lock (a bug).
pub async fn annual_card(
    tx: &mut sqlx::PgConnection,
    subsidy: Fen,
    claims: &VoucherClaims,
    order: Fen,
    bucket: i32,
) -> Result<Decided, ApiError> {
    let campaign_id = claims.campaign_id;
    let person = &claims.person_id;
    let (used, _cap) =
        entitlements::lock_entitlement(tx, campaign_id, person, subsidy.as_i64()).await?;
    let granted_before = used > 0;
    let want = discount::annual_card(subsidy, order, granted_before).as_i64();
    let taken = budget::take_budget(tx, campaign_id, want, false, bucket).await?;
    if taken > 0 && !entitlements::use_entitlement(tx, campaign_id, person, taken).await? {
        return Err(ApiError::internal(anyhow::anyhow!(
            "entitlement changed under its row lock"
        )));
    }
    Ok(Decided {
        discount: taken,
        notice: (want > 0 && taken == 0).then_some("BUDGET_EXHAUSTED"),
        cap_exhausted: granted_before || taken > 0,
        items: Vec::new(),
    })
}

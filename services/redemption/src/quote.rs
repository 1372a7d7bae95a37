//! A quote: what a voucher would take off an order at this till, asked before the cashier
//! confirms, so the till shows the discount and what the customer pays. It runs the same
//! checks as a checkout (the decline rules, the campaign and the merchant's approval, the
//! voucher's state and code key epoch) and reads, without locking or writing anything, what
//! is left of the person's cap and the campaign's budget — for a per-item voucher also the
//! person's category counts, for an annual card whether its subsidy was granted, and the
//! extras the program's rules would add on certified lines. It binds nothing: the checkout
//! decides again, in its transaction, and may answer otherwise if something changed between.

use crate::checkout::lines::{self, OrderLineBody, OrderLines};
use crate::checkout::views::{DeclineView, ItemView};
use crate::checkout::{validate_order, MAX_ORDER_FEN};
use crate::error::ApiError;
use crate::extras::{self, ExtraView};
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voucher_core::checkout::{precheck, Decline, Till};
use voucher_core::discount::{self, Limit};
use voucher_core::item_rule::{self, PricedLine};
use voucher_core::{Fen, Rule};
use voucher_store::pg::vouchers::VoucherStatus;
use voucher_store::pg::{budget, entitlements, item_counts, merchants, token_vouchers};
use voucher_store::StoreError;

/// `POST /v1/quotes` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// The scanned dynamic code.
    pub code: String,
    /// The order amount, fen.
    pub order_amount_fen: i64,
    /// The order's lines, as for a checkout (see `CheckoutRequest.lines`).
    #[serde(default)]
    pub lines: Option<Vec<OrderLineBody>>,
}

/// The voucher a quote is for.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuotedVoucher {
    /// Voucher id.
    pub voucher_id: Uuid,
    /// Campaign id.
    pub campaign_id: i64,
    /// The discount rule (amounts in fen).
    #[schema(value_type = Object)]
    pub rule: Rule,
    /// End of validity.
    pub valid_until: DateTime<Utc>,
}

/// What the voucher would take off (`outcome: "quote"`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Quote {
    /// `quote`.
    pub outcome: String,
    /// The discount, fen.
    pub discount_fen: i64,
    /// Σ of the extras the program's rules would add on certified lines, fen.
    pub extras_fen: i64,
    /// What the customer would pay, fen: order − discount − extras.
    pub to_pay_fen: i64,
    /// What cut the discount: `CAP_EXHAUSTED` or `BUDGET_EXHAUSTED`.
    pub notice: Option<String>,
    /// A per-item voucher's lines as they would be subsidised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemView>,
    /// The extras on certified lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<ExtraView>,
    /// The voucher.
    pub voucher: QuotedVoucher,
}

/// A quote or the decline a checkout would meet now.
pub enum QuoteAnswer {
    /// The discount.
    Quote(Quote),
    /// The decline.
    Declined(DeclineView),
}

/// Quotes an order.
///
/// # Errors
/// `INVALID_FIELD` for a bad amount or code; store failures.
#[tracing::instrument(name = "redemption.quote", skip_all)]
pub async fn quote(
    state: &AppState,
    terminal: &Terminal,
    req: &QuoteRequest,
) -> Result<QuoteAnswer, ApiError> {
    let order = validate_order(&req.code, req.order_amount_fen)?;
    let lines = lines::parse(req.lines.as_deref(), order)?;
    Ok(
        match decide(state, terminal, &req.code, order, lines.as_ref()).await? {
            Ok(q) => QuoteAnswer::Quote(q),
            Err(d) => QuoteAnswer::Declined(DeclineView::of(d)),
        },
    )
}

async fn decide(
    state: &AppState,
    terminal: &Terminal,
    code: &str,
    order: Fen,
    lines: Option<&OrderLines>,
) -> Result<Result<Quote, Decline>, ApiError> {
    let till = Till {
        category: terminal.category,
        place: terminal.place,
    };
    let verified = match precheck(
        &state.dynamic_codes,
        &state.verifier,
        code,
        state.clock.now(),
        till,
        order,
    ) {
        Ok(v) => v,
        Err(d) => return Ok(Err(d)),
    };
    let claims = &verified.claims;
    let program = match state.caches.policy_of(&state.pg, claims.campaign_id).await {
        Ok((program, _)) => program,
        Err(StoreError::NotFound) => return Ok(Err(Decline::VoucherNotFound)),
        Err(e) => return Err(e.into()),
    };
    if program != claims.program_id {
        return Ok(Err(Decline::TokenInvalid));
    }
    let approved = merchants::get_merchant(&state.pg, &terminal.merchant_id)
        .await?
        .is_some_and(|m| m.approved_programs.contains(&program.0));
    if !approved {
        return Ok(Err(Decline::MerchantNotApproved));
    }
    let mut con = state.pg.acquire().await.map_err(StoreError::from)?;
    if let Some(v) = token_vouchers::voucher_state(&mut con, claims.voucher_id).await? {
        match v.status {
            VoucherStatus::Expired => return Ok(Err(Decline::VoucherExpired)),
            VoucherStatus::Redeemed => return Ok(Err(Decline::VoucherAlreadyRedeemed)),
            VoucherStatus::Issued if v.code_epoch != verified.epoch => {
                return Ok(Err(Decline::CodeRevoked))
            }
            VoucherStatus::Issued => {}
        }
    }
    drop(con);
    state
        .caches
        .ensure_budget(&state.pg, claims.campaign_id, state.settings.budget.buckets)
        .await?;
    let budget_left = budget::budget_remaining(&state.pg, claims.campaign_id)
        .await?
        .unwrap_or(0)
        .max(0);
    let mut priced: Vec<PricedLine> = Vec::new();
    let (discount, notice) = match claims.rule.clone() {
        Rule::Threshold { min_spend, off } => {
            let Ok(amount) = discount::threshold(min_spend, off, order) else {
                return Ok(Err(Decline::BelowThreshold));
            };
            if amount.as_i64() > budget_left {
                return Ok(Err(Decline::BudgetExhausted));
            }
            (amount.as_i64(), None)
        }
        Rule::Percent {
            rate_bp,
            per_person_cap,
        } => {
            let (used, cap) =
                entitlements::entitlement(&state.pg, claims.campaign_id, &claims.person_id)
                    .await?
                    .unwrap_or((0, per_person_cap.as_i64()));
            let d = discount::percent(
                rate_bp,
                order,
                Fen::try_from(cap - used).unwrap_or(Fen::ZERO),
                Fen::try_from(budget_left.min(MAX_ORDER_FEN)).unwrap_or(Fen::ZERO),
            );
            let notice = match d.limited_by {
                Some(Limit::PersonCap) => Some("CAP_EXHAUSTED"),
                Some(_) => Some("BUDGET_EXHAUSTED"),
                None => None,
            };
            (d.amount.as_i64(), notice)
        }
        Rule::ItemPercent(rule) => {
            priced = match rule.price(&lines.map(OrderLines::items).unwrap_or_default()) {
                Ok(p) => p,
                Err(refusal) => return Ok(Err(refusal.decline())),
            };
            let cap = claims.rule.entitlement_cap().map_or(i64::MAX, Fen::as_i64);
            let (used, cap) =
                entitlements::entitlement(&state.pg, claims.campaign_id, &claims.person_id)
                    .await?
                    .unwrap_or((0, cap));
            let room = Fen::try_from(cap - used).unwrap_or(Fen::ZERO);
            if room == Fen::ZERO {
                return Ok(Err(Decline::CapExhausted));
            }
            let counts =
                item_counts::items_used(&state.pg, claims.campaign_id, &claims.person_id).await?;
            for (category, quantity) in item_rule::quantities(&priced) {
                let limit = rule.terms(&category).map_or(0, |t| t.per_person_items);
                let used = counts
                    .get(category.as_str())
                    .map_or(0, |u| u32::try_from(*u).unwrap_or(u32::MAX));
                if used.saturating_add(quantity) > limit {
                    return Ok(Err(Decline::CategoryLimitReached));
                }
            }
            let wanted = item_rule::total(&priced);
            let after_cap = item_rule::cut_to(&mut priced, room);
            let budget = Fen::try_from(budget_left.min(MAX_ORDER_FEN)).unwrap_or(Fen::ZERO);
            if budget == Fen::ZERO && after_cap > Fen::ZERO {
                return Ok(Err(Decline::BudgetExhausted));
            }
            let granted = item_rule::cut_to(&mut priced, budget);
            let notice = if granted < after_cap {
                Some("BUDGET_EXHAUSTED")
            } else if after_cap < wanted {
                Some("CAP_EXHAUSTED")
            } else {
                None
            };
            (granted.as_i64(), notice)
        }
        Rule::AnnualCard { subsidy } => {
            let used = entitlements::entitlement(&state.pg, claims.campaign_id, &claims.person_id)
                .await?
                .map_or(0, |(used, _)| used);
            let want = discount::annual_card(subsidy, order, used > 0).as_i64();
            if want > budget_left {
                (0, Some("BUDGET_EXHAUSTED"))
            } else {
                (want, None)
            }
        }
    };
    let room = Fen::try_from(order.as_i64() - discount).unwrap_or(Fen::ZERO);
    let extras = extras::peek(state, program, &claims.person_id, lines, room).await?;
    let extras_fen: i64 = extras.iter().map(|e| e.amount_fen).sum();
    let items = priced
        .iter()
        .enumerate()
        .map(|(i, l)| ItemView {
            line_no: i32::try_from(i).unwrap_or(i32::MAX),
            product_category: l.product_category.as_str().to_owned(),
            unit_price_fen: l.unit_price.as_i64(),
            quantity: i32::try_from(l.quantity).unwrap_or(i32::MAX),
            per_item_fen: l.per_item.as_i64(),
            discount_fen: l.discount.as_i64(),
        })
        .collect();
    Ok(Ok(Quote {
        outcome: "quote".to_owned(),
        discount_fen: discount,
        extras_fen,
        to_pay_fen: order.as_i64() - discount - extras_fen,
        notice: notice.map(str::to_owned),
        items,
        extras,
        voucher: QuotedVoucher {
            voucher_id: claims.voucher_id.0,
            campaign_id: claims.campaign_id.0,
            rule: claims.rule.clone(),
            valid_until: claims.valid_until,
        },
    }))
}

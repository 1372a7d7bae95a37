//! A quote: what a voucher would take off an order at this till, asked before the cashier
//! confirms, so the till shows the discount and what the customer pays. It runs the same
//! checks as a checkout (the decline rules, the campaign and the merchant's approval, the
//! voucher's state and code key epoch) and reads, without locking or writing anything, what
//! is left of the person's cap and the campaign's budget. It binds nothing: the checkout
//! decides again, in its transaction, and may answer otherwise if something changed between.

use crate::checkout::views::DeclineView;
use crate::checkout::{validate_order, MAX_ORDER_FEN};
use crate::error::ApiError;
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voucher_core::checkout::{precheck, Decline, Till};
use voucher_core::discount::{self, Limit};
use voucher_core::{Fen, Rule};
use voucher_store::pg::vouchers::VoucherStatus;
use voucher_store::pg::{budget, entitlements, merchants, token_vouchers};
use voucher_store::StoreError;

/// `POST /v1/quotes` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// The scanned dynamic code.
    pub code: String,
    /// The order amount, fen.
    pub order_amount_fen: i64,
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
    /// What the customer would pay, fen.
    pub to_pay_fen: i64,
    /// What cut the discount: `CAP_EXHAUSTED` or `BUDGET_EXHAUSTED`.
    pub notice: Option<String>,
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
    Ok(match decide(state, terminal, &req.code, order).await? {
        Ok(q) => QuoteAnswer::Quote(q),
        Err(d) => QuoteAnswer::Declined(DeclineView::of(d)),
    })
}

async fn decide(
    state: &AppState,
    terminal: &Terminal,
    code: &str,
    order: Fen,
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
        // TODO(issue 12, checkout helper): per-item and annual-card quotes.
        Rule::ItemPercent(_) | Rule::AnnualCard { .. } => {
            return Ok(Err(Decline::ItemsRequired))
        }
    };
    Ok(Ok(Quote {
        outcome: "quote".to_owned(),
        discount_fen: discount,
        to_pay_fen: order.as_i64() - discount,
        notice: notice.map(str::to_owned),
        voucher: QuotedVoucher {
            voucher_id: claims.voucher_id.0,
            campaign_id: claims.campaign_id.0,
            rule: claims.rule.clone(),
            valid_until: claims.valid_until,
        },
    }))
}

//! The checkout decline rules: what a scanned voucher must satisfy before the record is
//! consulted, and the stable codes of every decline.
//!
//! [`precheck`] runs, in order: the dynamic code and the token inside it (`CODE_STALE`,
//! `TOKEN_INVALID`), the validity window (`VOUCHER_NOT_YET_VALID`, `VOUCHER_EXPIRED`), the
//! merchant's category (`MERCHANT_CATEGORY_MISMATCH`), the merchant's place
//! (`OUTSIDE_ISSUING_PLACE`) and a threshold rule's minimum spend (`BELOW_THRESHOLD`). The
//! rest of the declines (already redeemed, budget exhausted, not approved, unknown, a voucher
//! known only by its token beyond the person's limit; for a per-item voucher the lines'
//! categories and prices, the person's category limits and cap)
//! are found by the decision; their codes live here too so that the API has one list. Declines are answers, not errors: a terminal shows them to the cashier.

use crate::category::Category;
use crate::dynamic_code::{CodeError, DynamicCodes, VerifiedCode};
use crate::keys::Verifier;
use crate::money::Fen;
use crate::place::PlaceCode;
use crate::rule::Rule;
use crate::token::VoucherClaims;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why a checkout was declined: the stable reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decline {
    /// A single-use voucher already spent (or held by another checkout).
    VoucherAlreadyRedeemed,
    /// Past its validity, or expired by the expiry job.
    VoucherExpired,
    /// Before its validity.
    VoucherNotYetValid,
    /// The voucher's category is not the merchant's.
    MerchantCategoryMismatch,
    /// The merchant is outside the voucher's issuing city/county.
    OutsideIssuingPlace,
    /// The merchant is not approved for the voucher's program.
    MerchantNotApproved,
    /// 满减 threshold not reached.
    BelowThreshold,
    /// The campaign's budget cannot cover a threshold voucher's discount.
    BudgetExhausted,
    /// The dynamic code's time step is not current: a screenshot or an old code.
    CodeStale,
    /// Forged, malformed or signed by an unknown or retired key.
    TokenInvalid,
    /// The voucher's campaign is unknown to the record.
    VoucherNotFound,
    /// The code was made with a code key the owner has since revoked (a new key was issued).
    CodeRevoked,
    /// A per-item (以旧换新) voucher without the order's lines.
    ItemsRequired,
    /// A line's product category is missing or not covered by the voucher.
    ProductCategoryNotCovered,
    /// An item is priced above the highest price the voucher subsidises.
    ItemPriceAboveLimit,
    /// The person has had as many items of a product category subsidised as allowed.
    CategoryLimitReached,
    /// A per-item voucher's cumulative cap is used up.
    CapExhausted,
    /// A voucher the record does not hold yet (presented by its token only) would take its
    /// person beyond the campaign's per-person limit: the record already holds as many of
    /// their vouchers of the campaign as allowed. Seen when a claim was acknowledged but lost
    /// before reaching the record (issue 13): a suspicious event, logged at WARN.
    PersonLimitExceeded,
}

impl Decline {
    /// Every decline, in the documented order.
    pub const ALL: [Decline; 18] = [
        Decline::VoucherAlreadyRedeemed,
        Decline::VoucherExpired,
        Decline::VoucherNotYetValid,
        Decline::MerchantCategoryMismatch,
        Decline::OutsideIssuingPlace,
        Decline::MerchantNotApproved,
        Decline::BelowThreshold,
        Decline::BudgetExhausted,
        Decline::CodeStale,
        Decline::TokenInvalid,
        Decline::VoucherNotFound,
        Decline::CodeRevoked,
        Decline::ItemsRequired,
        Decline::ProductCategoryNotCovered,
        Decline::ItemPriceAboveLimit,
        Decline::CategoryLimitReached,
        Decline::CapExhausted,
        Decline::PersonLimitExceeded,
    ];

    /// The stable code and the message for people, from one table.
    const fn info(self) -> (&'static str, &'static str) {
        match self {
            Decline::VoucherAlreadyRedeemed => (
                "VOUCHER_ALREADY_REDEEMED",
                "the voucher has already been redeemed",
            ),
            Decline::VoucherExpired => ("VOUCHER_EXPIRED", "the voucher has expired"),
            Decline::VoucherNotYetValid => {
                ("VOUCHER_NOT_YET_VALID", "the voucher is not valid yet")
            }
            Decline::MerchantCategoryMismatch => (
                "MERCHANT_CATEGORY_MISMATCH",
                "the voucher is not accepted by merchants of this category",
            ),
            Decline::OutsideIssuingPlace => (
                "OUTSIDE_ISSUING_PLACE",
                "the voucher is only valid in its issuing city or county",
            ),
            Decline::MerchantNotApproved => (
                "MERCHANT_NOT_APPROVED",
                "this merchant is not approved for the voucher's program",
            ),
            Decline::BelowThreshold => (
                "BELOW_THRESHOLD",
                "the order amount is below the voucher's threshold",
            ),
            Decline::BudgetExhausted => ("BUDGET_EXHAUSTED", "the campaign's budget is exhausted"),
            Decline::CodeStale => (
                "CODE_STALE",
                "the code is out of date: ask the customer to refresh it",
            ),
            Decline::TokenInvalid => ("TOKEN_INVALID", "the code is not a valid voucher"),
            Decline::VoucherNotFound => ("VOUCHER_NOT_FOUND", "the voucher is unknown"),
            Decline::CodeRevoked => (
                "CODE_REVOKED",
                "the code's key was revoked: ask the customer to refresh the code",
            ),
            Decline::ItemsRequired => (
                "ITEMS_REQUIRED",
                "this voucher subsidises items: send the order's lines with their product category",
            ),
            Decline::ProductCategoryNotCovered => (
                "PRODUCT_CATEGORY_NOT_COVERED",
                "a line's product category is not covered by this voucher",
            ),
            Decline::ItemPriceAboveLimit => (
                "ITEM_PRICE_ABOVE_LIMIT",
                "an item is priced above the highest price this voucher subsidises",
            ),
            Decline::CategoryLimitReached => (
                "CATEGORY_LIMIT_REACHED",
                "the customer has had as many items of this product category subsidised as allowed",
            ),
            Decline::CapExhausted => (
                "CAP_EXHAUSTED",
                "the customer's cap on this voucher is used up",
            ),
            Decline::PersonLimitExceeded => (
                "PERSON_LIMIT_EXCEEDED",
                "the customer already holds as many vouchers of this campaign as allowed",
            ),
        }
    }

    /// The stable code, e.g. `VOUCHER_ALREADY_REDEEMED`.
    pub const fn as_str(self) -> &'static str {
        self.info().0
    }

    /// What the cashier reads.
    pub const fn message(self) -> &'static str {
        self.info().1
    }
}

/// What the checkout knows of the merchant behind the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Till {
    /// The merchant's category.
    pub category: Category,
    /// The merchant's place (its county when registered in one, else its city).
    pub place: PlaceCode,
}

/// The checks that need no database: code, token, validity, category, place, threshold.
/// Returns the voucher's verified claims and the code key epoch the code was made with
/// (which the decision checks against the voucher's current epoch: `CODE_REVOKED`).
///
/// # Errors
/// The first [`Decline`] that applies, in the order of the module documentation.
pub fn precheck(
    codes: &DynamicCodes,
    verifier: &Verifier,
    code: &str,
    now: DateTime<Utc>,
    till: Till,
    order: Fen,
) -> Result<VerifiedCode, Decline> {
    let verified = codes
        .verify_epoch(code, verifier, now)
        .map_err(|e| match e {
            CodeError::Stale => Decline::CodeStale,
            CodeError::Malformed | CodeError::Token(_) => Decline::TokenInvalid,
        })?;
    check_claims(&verified.claims, now, till, order)?;
    Ok(verified)
}

/// The checks of [`precheck`] after the code: validity window, category, place, threshold.
///
/// # Errors
/// The first [`Decline`] that applies.
pub fn check_claims(
    claims: &VoucherClaims,
    now: DateTime<Utc>,
    till: Till,
    order: Fen,
) -> Result<(), Decline> {
    if now < claims.valid_from {
        return Err(Decline::VoucherNotYetValid);
    }
    if now > claims.valid_until {
        return Err(Decline::VoucherExpired);
    }
    if !claims.category.accepted_by(till.category) {
        return Err(Decline::MerchantCategoryMismatch);
    }
    if !claims.place.covers(till.place) {
        return Err(Decline::OutsideIssuingPlace);
    }
    if let Rule::Threshold { min_spend, .. } = claims.rule {
        if order < min_spend {
            return Err(Decline::BelowThreshold);
        }
    }
    Ok(())
}

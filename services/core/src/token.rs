//! The voucher token: the voucher's facts, encoded with protobuf (`proto/voucher.proto`,
//! message `VoucherPayload`) and signed with Ed25519. Text form: base64url (no padding) of a
//! `SignedVoucher { payload, signature }` message. The key id is inside the signed payload.
//! The token is compact enough for a QR code (its length is measured in the tests and the
//! README). It is itself proof of issuance: the redemption service can insert a voucher the
//! persister has not yet written from a verified token.

use crate::category::Category;
use crate::ids::{CampaignId, PersonId, ProgramId, VoucherId};
use crate::item_rule::{CategoryRule, ItemRule, ProductCategory};
use crate::keys::{KeyId, SigningKey, Verifier, VerifyError};
use crate::money::{BasisPoints, Fen};
use crate::place::PlaceCode;
use crate::rule::Rule;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voucher_proto::voucher as pb;

/// The payload version this code writes and reads.
pub const TOKEN_VERSION: u32 = 1;

/// The facts a voucher token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherClaims {
    /// The voucher.
    pub voucher_id: VoucherId,
    /// Its campaign.
    pub campaign_id: CampaignId,
    /// The campaign's program.
    pub program_id: ProgramId,
    /// Bound to this person.
    pub person_id: PersonId,
    /// The issuing city or county: spendable only there.
    pub place: PlaceCode,
    /// Spendable only at merchants of this category.
    pub category: Category,
    /// Its discount rule.
    pub rule: Rule,
    /// Start of validity (second precision).
    pub valid_from: DateTime<Utc>,
    /// End of validity (second precision).
    pub valid_until: DateTime<Utc>,
}

/// A signed token's text. Obtain one from [`sign`] or [`VoucherToken::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VoucherToken(String);

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, not the expected protobuf, or a field out of range.
    #[error("malformed voucher token")]
    Malformed,
    /// Unknown version.
    #[error("unsupported voucher token version {0}")]
    Version(u32),
    /// Signature refused.
    #[error(transparent)]
    Signature(#[from] VerifyError),
}

impl VoucherToken {
    /// Wraps text without checking it (verification happens in [`verify`]).
    pub fn from_text(text: String) -> VoucherToken {
        VoucherToken(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key id inside, without verifying (for diagnostics).
    pub fn key_id(&self) -> Option<KeyId> {
        let (payload, _) = decode_signed(&self.0).ok()?;
        Some(payload.key_id)
    }
}

/// Signs `claims` with `key`. Deterministic: the same claims and key give the same token.
pub fn sign(key: &SigningKey, claims: &VoucherClaims) -> VoucherToken {
    let rule = match &claims.rule {
        Rule::Threshold { min_spend, off } => {
            pb::voucher_payload::Rule::Threshold(pb::ThresholdRule {
                min_spend: min_spend.as_i64(),
                off: off.as_i64(),
            })
        }
        Rule::Percent {
            rate_bp,
            per_person_cap,
        } => pb::voucher_payload::Rule::Percent(pb::PercentRule {
            rate_bp: u32::from(*rate_bp),
            per_person_cap: per_person_cap.as_i64(),
        }),
        Rule::ItemPercent(item) => pb::voucher_payload::Rule::ItemPercent(item_rule_to_pb(item)),
        Rule::AnnualCard { subsidy } => pb::voucher_payload::Rule::AnnualCard(pb::AnnualCardRule {
            subsidy: subsidy.as_i64(),
        }),
    };
    let payload = pb::VoucherPayload {
        version: TOKEN_VERSION,
        key_id: key.kid(),
        voucher_id: claims.voucher_id.0.as_bytes().to_vec(),
        campaign_id: claims.campaign_id.0,
        program_id: claims.program_id.0,
        person_id: claims.person_id.as_str().to_owned(),
        place: claims.place.get(),
        category: category_to_pb(claims.category) as i32,
        rule: Some(rule),
        valid_from: claims.valid_from.timestamp(),
        valid_until: claims.valid_until.timestamp(),
    };
    let payload = payload.encode_to_vec();
    let signature = key.sign(&payload).to_vec();
    let signed = pb::SignedVoucher { payload, signature };
    VoucherToken(URL_SAFE_NO_PAD.encode(signed.encode_to_vec()))
}

/// Verifies a token's text and returns its claims. Does not check the validity window
/// (the caller decides what "now" is and what an expired voucher means).
///
/// # Errors
/// [`TokenError`].
pub fn verify(
    verifier: &Verifier,
    text: &str,
    now: DateTime<Utc>,
) -> Result<VoucherClaims, TokenError> {
    let (payload, signed) = decode_signed(text)?;
    if payload.version != TOKEN_VERSION {
        return Err(TokenError::Version(payload.version));
    }
    verifier.verify(payload.key_id, &signed.payload, &signed.signature, now)?;
    claims_from_pb(payload).ok_or(TokenError::Malformed)
}

/// Longest token text accepted (a real one is at most 256 characters; one with a per-item
/// rule of 12 product categories, the most a rule may list, stays below 1,024).
const MAX_TOKEN_LEN: usize = 1024;

fn decode_signed(text: &str) -> Result<(pb::VoucherPayload, pb::SignedVoucher), TokenError> {
    if text.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| TokenError::Malformed)?;
    let signed = pb::SignedVoucher::decode(bytes.as_slice()).map_err(|_| TokenError::Malformed)?;
    if signed.signature.len() != 64 {
        return Err(TokenError::Malformed);
    }
    let payload =
        pb::VoucherPayload::decode(signed.payload.as_slice()).map_err(|_| TokenError::Malformed)?;
    Ok((payload, signed))
}

fn claims_from_pb(p: pb::VoucherPayload) -> Option<VoucherClaims> {
    let rule = match p.rule? {
        pb::voucher_payload::Rule::Threshold(t) => Rule::Threshold {
            min_spend: Fen::try_from(t.min_spend).ok()?,
            off: Fen::try_from(t.off).ok()?,
        },
        pb::voucher_payload::Rule::Percent(r) => Rule::Percent {
            rate_bp: BasisPoints::try_from(r.rate_bp).ok()?,
            per_person_cap: Fen::try_from(r.per_person_cap).ok()?,
        },
        pb::voucher_payload::Rule::ItemPercent(r) => Rule::ItemPercent(item_rule_from_pb(r)?),
        pb::voucher_payload::Rule::AnnualCard(r) => Rule::AnnualCard {
            subsidy: Fen::try_from(r.subsidy).ok()?,
        },
    };
    Some(VoucherClaims {
        voucher_id: VoucherId(Uuid::from_slice(&p.voucher_id).ok()?),
        campaign_id: CampaignId(p.campaign_id),
        program_id: ProgramId(p.program_id),
        person_id: PersonId::parse(&p.person_id).ok()?,
        place: PlaceCode::try_from(p.place).ok()?,
        category: category_from_pb(pb::Category::try_from(p.category).ok()?)?,
        rule,
        valid_from: DateTime::from_timestamp(p.valid_from, 0)?,
        valid_until: DateTime::from_timestamp(p.valid_until, 0)?,
    })
}

fn item_rule_to_pb(item: &ItemRule) -> pb::ItemPercentRule {
    pb::ItemPercentRule {
        rate_bp: u32::from(item.rate_bp),
        item_cap: item.item_cap.as_i64(),
        per_person_cap: item.per_person_cap.map(Fen::as_i64),
        max_item_price: item.max_item_price.map(Fen::as_i64),
        categories: item
            .categories
            .iter()
            .map(|c| pb::ItemCategoryRule {
                product_category: c.product_category.as_str().to_owned(),
                per_person_items: c.per_person_items,
                rate_bp: c.rate_bp.map(u32::from),
                item_cap: c.item_cap.map(Fen::as_i64),
                max_item_price: c.max_item_price.map(Fen::as_i64),
            })
            .collect(),
    }
}

fn item_rule_from_pb(r: pb::ItemPercentRule) -> Option<ItemRule> {
    // An optional amount: absent stays absent, present must be a valid amount.
    let optional = |v: Option<i64>| v.map(Fen::try_from).transpose().ok();
    let categories = r
        .categories
        .into_iter()
        .map(|c| {
            Some(CategoryRule {
                product_category: ProductCategory::parse(&c.product_category).ok()?,
                per_person_items: c.per_person_items,
                rate_bp: c.rate_bp.map(BasisPoints::try_from).transpose().ok()?,
                item_cap: optional(c.item_cap)?,
                max_item_price: optional(c.max_item_price)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(ItemRule {
        rate_bp: BasisPoints::try_from(r.rate_bp).ok()?,
        item_cap: Fen::try_from(r.item_cap).ok()?,
        per_person_cap: optional(r.per_person_cap)?,
        max_item_price: optional(r.max_item_price)?,
        categories,
    })
}

fn category_to_pb(c: Category) -> pb::Category {
    match c {
        Category::Catering => pb::Category::Catering,
        Category::Lodging => pb::Category::Lodging,
        Category::CultureTourism => pb::Category::CultureTourism,
        Category::HomeFurnishing => pb::Category::HomeFurnishing,
        Category::General => pb::Category::General,
    }
}

fn category_from_pb(c: pb::Category) -> Option<Category> {
    Some(match c {
        pb::Category::Unspecified => return None,
        pb::Category::Catering => Category::Catering,
        pb::Category::Lodging => Category::Lodging,
        pb::Category::CultureTourism => Category::CultureTourism,
        pb::Category::HomeFurnishing => Category::HomeFurnishing,
        pb::Category::General => Category::General,
    })
}

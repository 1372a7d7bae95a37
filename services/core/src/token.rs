//! The voucher token: the voucher's facts, encoded with protobuf (`proto/voucher.proto`,
//! message `VoucherPayload`) and signed with Ed25519. Text form: base64url (no padding) of a
//! `SignedVoucher { payload, signature }` message. The key id is inside the signed payload.
//! The token is compact enough for a QR code (its length is measured in the tests and the
//! README). It is itself proof of issuance: the redemption service can insert a voucher the
//! persister has not yet written from a verified token.

use crate::category::Category;
use crate::ids::{CampaignId, PersonId, ProgramId, VoucherId};
use crate::keys::{KeyId, SigningKey, Verifier, VerifyError};
use crate::place::PlaceCode;
use crate::rule::Rule;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
        todo!("core: token kid")
    }
}

/// Signs `claims` with `key`. Deterministic: the same claims and key give the same token.
pub fn sign(key: &SigningKey, claims: &VoucherClaims) -> VoucherToken {
    todo!("core: token sign")
}

/// Verifies a token's text and returns its claims. Does not check the validity window
/// (the caller decides what "now" is and what an expired voucher means).
///
/// # Errors
/// [`TokenError`].
pub fn verify(verifier: &Verifier, text: &str, now: DateTime<Utc>) -> Result<VoucherClaims, TokenError> {
    todo!("core: token verify")
}

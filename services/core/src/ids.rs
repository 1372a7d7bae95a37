//! Identifiers. Programs and campaigns have small integer ids (compact in a QR code);
//! vouchers and claims have UUIDs made by the service (v7 for vouchers, so they sort by time),
//! as do terminals, redemptions and reversals. Merchants and people have text ids chosen
//! elsewhere (the administrator, the identity provider), parsed once into their types.
//!
//! The types are plain newtypes: the store binds them with `.0` / `as_str()` (this crate
//! knows nothing of databases), and they serialise as the bare value, so the JSON APIs see
//! plain numbers, strings and UUIDs.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A program (funding rule) id, assigned by PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProgramId(pub i64);

/// A campaign id, assigned by PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CampaignId(pub i64);

/// A voucher id (UUID v7, made by the issuance service before the claim script runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VoucherId(pub Uuid);

/// A claim id: the client's idempotency key for one claim. A retried claim with the same
/// id returns the first result. Bulk issuance derives it (UUID v5) from campaign and person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClaimId(pub Uuid);

/// A terminal id (UUID v7, made by the redemption service when the terminal is registered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TerminalId(pub Uuid);

/// A redemption id (UUID v7, made by the redemption service when it decides a checkout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedemptionId(pub Uuid);

/// A reversal (退货) id (UUID v7, made by the redemption service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReversalId(pub Uuid);

/// Whether `s` is 1–64 characters of `[A-Za-z0-9_-]` (the shape of person and merchant ids).
fn is_plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A resident's id as the identity provider knows it: 1–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonId(String);

/// A person id was empty, too long or had characters outside `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("person id must be 1-64 characters of A-Z a-z 0-9 _ -")]
pub struct InvalidPersonId;

impl PersonId {
    /// Parses a person id.
    ///
    /// # Errors
    /// [`InvalidPersonId`] when the text is not a valid id.
    pub fn parse(s: &str) -> Result<PersonId, InvalidPersonId> {
        if is_plain_id(s) {
            Ok(PersonId(s.to_owned()))
        } else {
            Err(InvalidPersonId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PersonId {
    type Error = InvalidPersonId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PersonId::parse(&s)
    }
}

impl From<PersonId> for String {
    fn from(p: PersonId) -> String {
        p.0
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A merchant id, chosen by the administrator who registers the merchant (e.g.
/// `m-jc-0001`): 1–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MerchantId(String);

/// A merchant id was empty, too long or had characters outside `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("merchant id must be 1-64 characters of A-Z a-z 0-9 _ -")]
pub struct InvalidMerchantId;

impl MerchantId {
    /// Parses a merchant id.
    ///
    /// # Errors
    /// [`InvalidMerchantId`] when the text is not a valid id.
    pub fn parse(s: &str) -> Result<MerchantId, InvalidMerchantId> {
        if is_plain_id(s) {
            Ok(MerchantId(s.to_owned()))
        } else {
            Err(InvalidMerchantId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MerchantId {
    type Error = InvalidMerchantId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MerchantId::parse(&s)
    }
}

impl From<MerchantId> for String {
    fn from(m: MerchantId) -> String {
        m.0
    }
}

impl fmt::Display for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a terminal's current HMAC key, sent as `X-Terminal-Key`: `tk_` and 32 lowercase
/// hex digits. A rotation gives the terminal a new one; the secret itself is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TerminalKeyId(String);

/// A terminal key id was not `tk_` followed by 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("terminal key id must be tk_ followed by 32 lowercase hex digits")]
pub struct InvalidTerminalKeyId;

impl TerminalKeyId {
    const PREFIX: &'static str = "tk_";

    /// Parses a terminal key id.
    ///
    /// # Errors
    /// [`InvalidTerminalKeyId`] when the text is not a valid key id.
    pub fn parse(s: &str) -> Result<TerminalKeyId, InvalidTerminalKeyId> {
        let ok = s.strip_prefix(Self::PREFIX).is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(TerminalKeyId(s.to_owned()))
        } else {
            Err(InvalidTerminalKeyId)
        }
    }

    /// The key id made from `random` (the caller draws it, e.g. a UUID v4): `tk_` and its
    /// 32 hex digits.
    pub fn from_random(random: Uuid) -> TerminalKeyId {
        TerminalKeyId(format!("{}{}", Self::PREFIX, random.simple()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TerminalKeyId {
    type Error = InvalidTerminalKeyId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TerminalKeyId::parse(&s)
    }
}

impl From<TerminalKeyId> for String {
    fn from(k: TerminalKeyId) -> String {
        k.0
    }
}

impl fmt::Display for TerminalKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `From` the wrapped value, so a row decoder (the store's `#[sqlx(try_from = …)]`) can
/// build the id from its column.
macro_rules! from_inner {
    ($($t:ident($inner:ty)),*) => {$(
        impl From<$inner> for $t {
            fn from(v: $inner) -> $t {
                $t(v)
            }
        }
    )*};
}
from_inner!(
    ProgramId(i64),
    CampaignId(i64),
    VoucherId(Uuid),
    ClaimId(Uuid),
    TerminalId(Uuid),
    RedemptionId(Uuid),
    ReversalId(Uuid)
);

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(
    ProgramId,
    CampaignId,
    VoucherId,
    ClaimId,
    TerminalId,
    RedemptionId,
    ReversalId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchant_ids_are_plain_text_of_at_most_64_characters() {
        assert_eq!(
            MerchantId::parse("m-jc_0001").map(|m| m.to_string()),
            Ok("m-jc_0001".to_owned())
        );
        for bad in ["", "m 1", "商户", "m/1", &"m".repeat(65)] {
            assert_eq!(MerchantId::parse(bad), Err(InvalidMerchantId), "{bad:?}");
        }
        assert!(MerchantId::parse(&"m".repeat(64)).is_ok());
    }

    #[test]
    fn terminal_key_ids_are_tk_and_32_lowercase_hex_digits() {
        let made = TerminalKeyId::from_random(Uuid::from_u128(0xABCD));
        assert_eq!(TerminalKeyId::parse(made.as_str()), Ok(made.clone()));
        assert_eq!(made.as_str(), "tk_0000000000000000000000000000abcd");
        for bad in [
            "",
            "tk_",
            "k-m1",
            "tk_0000000000000000000000000000ABCD",
            "tk_0000000000000000000000000000abc",
            "xx_0000000000000000000000000000abcd",
        ] {
            assert_eq!(
                TerminalKeyId::parse(bad),
                Err(InvalidTerminalKeyId),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids_serialise_as_the_bare_value() -> Result<(), serde_json::Error> {
        let u = Uuid::from_u128(7);
        assert_eq!(
            serde_json::to_value(RedemptionId(u))?,
            serde_json::to_value(u)?
        );
        assert_eq!(
            serde_json::to_value(TerminalId(u))?,
            serde_json::to_value(u)?
        );
        assert_eq!(
            serde_json::to_value(ReversalId(u))?,
            serde_json::to_value(u)?
        );
        let m = MerchantId::parse("m-1").map_err(serde::de::Error::custom)?;
        assert_eq!(serde_json::to_string(&m)?, "\"m-1\"");
        assert_eq!(serde_json::from_str::<MerchantId>("\"m-1\"")?, m);
        assert!(serde_json::from_str::<MerchantId>("\"m 1\"").is_err());
        Ok(())
    }
}

//! Identifiers. Programs and campaigns have small integer ids (compact in a QR code);
//! vouchers and claims have UUIDs made by the service (v7 for vouchers, so they sort by time).

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
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
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

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(ProgramId, CampaignId, VoucherId, ClaimId);

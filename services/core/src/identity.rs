//! Residents' identity tokens from the identity provider: a JWS compact token
//! (`header.payload.signature`, base64url) with `alg = EdDSA` and a `kid` header, whose
//! payload carries the person id (`sub`), home place (`home`), real-name level (`rnl`),
//! issue and expiry times (`iat`, `exp`, Unix seconds). In production the province's
//! identity platform issues them; the `dev-idp` command mints them for the demo and tests.

use crate::ids::PersonId;
use crate::keys::{SigningKey, Verifier, VerifyError};
use crate::place::PlaceCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A verified resident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Person id.
    pub person_id: PersonId,
    /// Registered home place (city or county).
    pub home: PlaceCode,
    /// Real-name verification level, 0–3.
    pub real_name_level: u8,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

/// Why an identity token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not a JWS compact token of the expected shape, or bad claims.
    #[error("malformed identity token")]
    Malformed,
    /// `alg` is not EdDSA.
    #[error("unsupported identity token algorithm")]
    Algorithm,
    /// Signature refused.
    #[error(transparent)]
    Signature(#[from] VerifyError),
    /// Past `exp`.
    #[error("identity token expired")]
    Expired,
    /// `iat` in the future beyond 60 s of skew.
    #[error("identity token not yet valid")]
    NotYetValid,
}

/// Mints a token for `who`, issued at `issued_at`, signed by `key` (the dev identity provider).
pub fn mint(key: &SigningKey, who: &Identity, issued_at: DateTime<Utc>) -> String {
    todo!("core: identity mint")
}

/// Verifies a token at `now`.
///
/// # Errors
/// [`IdentityError`].
pub fn verify(verifier: &Verifier, token: &str, now: DateTime<Utc>) -> Result<Identity, IdentityError> {
    todo!("core: identity verify")
}

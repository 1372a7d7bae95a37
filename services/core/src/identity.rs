//! Residents' identity tokens from the identity provider: a JWS compact token
//! (`header.payload.signature`, base64url) with `alg = EdDSA` and a `kid` header, whose
//! payload carries the person id (`sub`), home place (`home`), real-name level (`rnl`),
//! issue and expiry times (`iat`, `exp`, Unix seconds). In production the province's
//! identity platform issues them; the `dev-idp` command mints them for the demo and tests.

use crate::ids::PersonId;
use crate::keys::{SigningKey, Verifier, VerifyError};
use crate::place::PlaceCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
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
    let header = Header {
        alg: "EdDSA".to_owned(),
        kid: key.kid().to_string(),
        typ: Some("JWT".to_owned()),
    };
    let payload = Payload {
        sub: who.person_id.as_str().to_owned(),
        home: who.home.get(),
        rnl: who.real_name_level,
        iat: issued_at.timestamp(),
        exp: who.expires_at.timestamp(),
    };
    // Serialising these plain structs cannot fail.
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
    let signing_input = format!("{h}.{p}");
    let sig = URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    sub: String,
    home: u32,
    rnl: u8,
    iat: i64,
    exp: i64,
}

/// Clock skew tolerated on `iat`.
const SKEW_SECS: i64 = 60;
/// Longest token accepted.
const MAX_LEN: usize = 4096;

/// Verifies a token at `now`.
///
/// # Errors
/// [`IdentityError`].
pub fn verify(
    verifier: &Verifier,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Identity, IdentityError> {
    if token.len() > MAX_LEN {
        return Err(IdentityError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdentityError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(IdentityError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(IdentityError::Algorithm);
    }
    let kid = header.kid.parse().map_err(|_| IdentityError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| IdentityError::Malformed)?;
    let signing_input_len = h.len() + 1 + p.len();
    verifier.verify(kid, &token.as_bytes()[..signing_input_len], &sig, now)?;
    let payload: Payload = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(IdentityError::Malformed)?;
    let person_id = PersonId::parse(&payload.sub).map_err(|_| IdentityError::Malformed)?;
    let home = PlaceCode::try_from(payload.home).map_err(|_| IdentityError::Malformed)?;
    if payload.rnl > 3 {
        return Err(IdentityError::Malformed);
    }
    let expires_at = DateTime::from_timestamp(payload.exp, 0).ok_or(IdentityError::Malformed)?;
    if now.timestamp() >= payload.exp {
        return Err(IdentityError::Expired);
    }
    if payload.iat > now.timestamp() + SKEW_SECS {
        return Err(IdentityError::NotYetValid);
    }
    Ok(Identity {
        person_id,
        home,
        real_name_level: payload.rnl,
        expires_at,
    })
}

//! The offline pre-check a terminal vendor can run without a network: verify the voucher
//! token inside a scanned dynamic code against the published public keys
//! (`GET /.well-known/voucher-keys`) and its validity window. It rejects forged, tampered
//! and retired-key tokens. It CANNOT check the dynamic code's time-step MAC (that needs the
//! server's secret), so a screenshot passes offline and is refused online (`CODE_STALE`),
//! and it cannot know whether the voucher was already spent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use voucher_core::keys::{KeyError, PublicKey, Verifier};
use voucher_core::token::{self, TokenError, VoucherClaims};

/// The well-known keys document: `{"keys": [{"kid", "public_key", "not_after"}]}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeysDocument {
    /// Every active voucher key.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<PublicKey>,
}

/// Why a code was rejected offline.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The keys do not load.
    #[error("the public keys are not usable: {0}")]
    Keys(#[from] KeyError),
    /// Not `token.mac`.
    #[error("not a dynamic code (token.mac)")]
    Malformed,
    /// The token is forged, malformed or signed by an unknown or retired key.
    #[error("forged or invalid voucher token: {0}")]
    Token(#[from] TokenError),
    /// Outside the validity window.
    #[error("the voucher is not valid at this time (valid {from} to {until})")]
    NotValidNow {
        /// Start.
        from: DateTime<Utc>,
        /// End.
        until: DateTime<Utc>,
    },
}

/// Checks a scanned code offline.
///
/// # Errors
/// [`OfflineError`].
pub fn offline_check(
    code: &str,
    keys: &[PublicKey],
    now: DateTime<Utc>,
) -> Result<VoucherClaims, OfflineError> {
    let verifier = Verifier::new(keys.iter().cloned())?;
    let (token_text, mac) = code
        .trim()
        .rsplit_once('.')
        .ok_or(OfflineError::Malformed)?;
    if token_text.is_empty() || mac.is_empty() {
        return Err(OfflineError::Malformed);
    }
    let claims = token::verify(&verifier, token_text, now)?;
    if now < claims.valid_from || now > claims.valid_until {
        return Err(OfflineError::NotValidNow {
            from: claims.valid_from,
            until: claims.valid_until,
        });
    }
    Ok(claims)
}

/// Reads a keys file: the well-known document, or a bare array of keys.
///
/// # Errors
/// Not JSON of either shape.
pub fn parse_keys(text: &str) -> Result<Vec<PublicKey>, serde_json::Error> {
    serde_json::from_str::<KeysDocument>(text)
        .map(|d| d.keys)
        .or_else(|_| serde_json::from_str::<Vec<PublicKey>>(text))
}

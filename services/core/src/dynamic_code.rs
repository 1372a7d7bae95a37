//! The dynamic code a phone shows at checkout: the voucher token plus a MAC over the
//! current time step, `"<token>.<mac>"`, so that a screenshot or a resold code stops
//! working after a step (30–60 s). The MAC key is derived per voucher from a server
//! secret: `k_v = HMAC-SHA256(secret, voucher_id)`, `mac = HMAC-SHA256(k_v, step)[..10]`,
//! base64url. One step of clock skew either way is accepted.

use crate::keys::Verifier;
use crate::token::{TokenError, VoucherClaims, VoucherToken};
use crate::ids::VoucherId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The server-side generator and checker of dynamic codes.
pub struct DynamicCodes {
    key: ring::hmac::Key,
    step_secs: u32,
}

/// A code to show, with the moment it stops being current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicCode {
    /// `"<token>.<mac>"`: what the QR code encodes.
    pub code: String,
    /// When the next step begins (the phone refreshes then).
    pub refresh_at: DateTime<Utc>,
}

/// Why a dynamic code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not `token.mac`.
    #[error("malformed dynamic code")]
    Malformed,
    /// The token inside is refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The MAC matches no step within one of now: a screenshot, or a clock far off.
    #[error("the dynamic code is stale")]
    Stale,
}

/// Bad settings for dynamic codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynamicCodeConfigError {
    /// The secret must have at least 32 bytes.
    #[error("dynamic code secret must be at least 32 bytes")]
    ShortSecret,
    /// The step must be 30–60 s.
    #[error("dynamic code step must be 30-60 seconds")]
    Step,
}

impl DynamicCodes {
    /// # Errors
    /// [`DynamicCodeConfigError`].
    pub fn new(secret: &[u8], step_secs: u32) -> Result<DynamicCodes, DynamicCodeConfigError> {
        todo!("core: dynamic codes new")
    }

    /// The code for `token` (of voucher `voucher_id`) at `now`.
    pub fn code(&self, token: &VoucherToken, voucher_id: VoucherId, now: DateTime<Utc>) -> DynamicCode {
        todo!("core: dynamic code")
    }

    /// Verifies the token inside `code` and its MAC at `now` (± one step).
    ///
    /// # Errors
    /// [`CodeError`].
    pub fn verify(&self, code: &str, verifier: &Verifier, now: DateTime<Utc>) -> Result<VoucherClaims, CodeError> {
        todo!("core: dynamic code verify")
    }
}

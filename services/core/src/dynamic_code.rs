//! The dynamic code a phone shows at checkout: the voucher token plus a MAC over the
//! current time step, `"<token>.<mac>"`, so that a screenshot or a resold code stops
//! working after a step (30–60 s). The MAC key is derived per voucher from a server
//! secret: `k_v = HMAC-SHA256(secret, voucher_id)`, `mac = HMAC-SHA256(k_v, step)[..10]`,
//! base64url. One step of clock skew either way is accepted.

use crate::ids::VoucherId;
use crate::keys::Verifier;
use crate::token::{TokenError, VoucherClaims, VoucherToken};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::hmac;
use serde::{Deserialize, Serialize};

/// Bytes of the truncated MAC (80 bits: far beyond guessing within a minute).
const MAC_BYTES: usize = 10;
/// Its base64url length.
const MAC_TEXT_LEN: usize = 14;

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
        if secret.len() < 32 {
            return Err(DynamicCodeConfigError::ShortSecret);
        }
        if !(30..=60).contains(&step_secs) {
            return Err(DynamicCodeConfigError::Step);
        }
        Ok(DynamicCodes {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            step_secs,
        })
    }

    /// The code for `token` (of voucher `voucher_id`) at `now`.
    pub fn code(
        &self,
        token: &VoucherToken,
        voucher_id: VoucherId,
        now: DateTime<Utc>,
    ) -> DynamicCode {
        let step = self.step_of(now);
        let mac = self.mac(voucher_id, step);
        let next = (step + 1).saturating_mul(i64::from(self.step_secs));
        DynamicCode {
            code: format!("{}.{}", token.as_str(), mac),
            refresh_at: DateTime::from_timestamp(next, 0).unwrap_or(now),
        }
    }

    /// Verifies the token inside `code` and its MAC at `now` (± one step).
    ///
    /// # Errors
    /// [`CodeError`].
    pub fn verify(
        &self,
        code: &str,
        verifier: &Verifier,
        now: DateTime<Utc>,
    ) -> Result<VoucherClaims, CodeError> {
        let (token, mac) = code.rsplit_once('.').ok_or(CodeError::Malformed)?;
        if token.is_empty() || mac.len() != MAC_TEXT_LEN {
            return Err(CodeError::Malformed);
        }
        let claims = crate::token::verify(verifier, token, now)?;
        let step = self.step_of(now);
        let ok = [step - 1, step, step + 1].into_iter().any(|s| {
            let expected = self.mac(claims.voucher_id, s);
            constant_time_eq(expected.as_bytes(), mac.as_bytes())
        });
        if ok {
            Ok(claims)
        } else {
            Err(CodeError::Stale)
        }
    }

    /// The step length in seconds.
    pub fn step_secs(&self) -> u32 {
        self.step_secs
    }

    fn step_of(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(i64::from(self.step_secs))
    }

    fn mac(&self, voucher_id: VoucherId, step: i64) -> String {
        let per_voucher = hmac::sign(&self.key, voucher_id.0.as_bytes());
        let k_v = hmac::Key::new(hmac::HMAC_SHA256, per_voucher.as_ref());
        let tag = hmac::sign(&k_v, &step.to_be_bytes());
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..MAC_BYTES])
    }
}

/// Compares two equal-length byte strings without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

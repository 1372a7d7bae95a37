//! The dynamic code a phone shows at checkout: the voucher token plus a MAC over the
//! current time step, `"<token>.<mac>"`, so that a screenshot or a resold code stops
//! working after a step (30–60 s). The MAC key is derived per voucher from a server
//! secret: `k_v = HMAC-SHA256(secret, voucher_id)`, `mac = HMAC-SHA256(k_v, step)[..10]`,
//! base64url. One step of clock skew either way is accepted.
//!
//! **Offline codes.** The owner's phone may be given `k_v` (the per-voucher code key, never
//! the server secret) and compute the MAC itself with no network, the way an authenticator
//! app computes a one-time password. A key can be revoked (a lost phone, a leaked
//! screenshot of the key): the voucher's key *epoch* is raised and the key becomes
//! `k_v(e) = HMAC-SHA256(secret, voucher_id ‖ e as 4 bytes big-endian)` for `e ≥ 1`; the
//! code then carries its epoch, `"<token>.<e>.<mac>"`, and the till refuses a code whose
//! epoch is not the voucher's current one (`CODE_REVOKED`). Epoch 0 is the original key
//! and the original two-part format.

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

/// A per-voucher code key: 32 bytes, what a phone computes offline codes with.
pub type CodeKey = [u8; 32];

/// A code that verified: the voucher's claims and the key epoch the code was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCode {
    /// The voucher.
    pub claims: VoucherClaims,
    /// The key epoch inside the code (0 for the two-part format).
    pub epoch: u32,
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

    /// The code for `token` (of voucher `voucher_id`) at `now`, with the original key.
    pub fn code(
        &self,
        token: &VoucherToken,
        voucher_id: VoucherId,
        now: DateTime<Utc>,
    ) -> DynamicCode {
        self.code_at_epoch(token, voucher_id, 0, now)
    }

    /// The code for `token` at `now` with the key of `epoch`.
    pub fn code_at_epoch(
        &self,
        token: &VoucherToken,
        voucher_id: VoucherId,
        epoch: u32,
        now: DateTime<Utc>,
    ) -> DynamicCode {
        let step = self.step_of(now);
        let mac = mac_with_key(&self.code_key(voucher_id, epoch), step);
        let next = (step + 1).saturating_mul(i64::from(self.step_secs));
        let code = if epoch == 0 {
            format!("{}.{}", token.as_str(), mac)
        } else {
            format!("{}.{epoch}.{}", token.as_str(), mac)
        };
        DynamicCode {
            code,
            refresh_at: DateTime::from_timestamp(next, 0).unwrap_or(now),
        }
    }

    /// The per-voucher code key of `epoch` (see the module doc), to hand to the voucher's
    /// owner for offline codes.
    pub fn code_key(&self, voucher_id: VoucherId, epoch: u32) -> CodeKey {
        let tag = if epoch == 0 {
            hmac::sign(&self.key, voucher_id.0.as_bytes())
        } else {
            let mut msg = [0u8; 20];
            msg[..16].copy_from_slice(voucher_id.0.as_bytes());
            msg[16..].copy_from_slice(&epoch.to_be_bytes());
            hmac::sign(&self.key, &msg)
        };
        let mut key = [0u8; 32];
        key.copy_from_slice(tag.as_ref());
        key
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
        self.verify_epoch(code, verifier, now).map(|v| v.claims)
    }

    /// As [`DynamicCodes::verify`], also answering the key epoch the code was made with
    /// (the caller checks it against the voucher's current epoch).
    ///
    /// # Errors
    /// [`CodeError`].
    pub fn verify_epoch(
        &self,
        code: &str,
        verifier: &Verifier,
        now: DateTime<Utc>,
    ) -> Result<VerifiedCode, CodeError> {
        let (token, epoch, mac) = split_code(code)?;
        let claims = crate::token::verify(verifier, token, now)?;
        let key = self.code_key(claims.voucher_id, epoch);
        let step = self.step_of(now);
        let ok = [step - 1, step, step + 1].into_iter().any(|s| {
            let expected = mac_with_key(&key, s);
            constant_time_eq(expected.as_bytes(), mac.as_bytes())
        });
        if ok {
            Ok(VerifiedCode { claims, epoch })
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
}

/// The MAC of time step `step` with a per-voucher code key: the first 10 bytes of
/// HMAC-SHA256(key, step as 8 bytes big-endian), base64url without padding (14 characters).
/// What a phone computes offline.
pub fn mac_with_key(key: &CodeKey, step: i64) -> String {
    let k_v = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&k_v, &step.to_be_bytes());
    URL_SAFE_NO_PAD.encode(&tag.as_ref()[..MAC_BYTES])
}

/// `token.mac` (epoch 0) or `token.epoch.mac` (epoch ≥ 1, written without leading zeros).
fn split_code(code: &str) -> Result<(&str, u32, &str), CodeError> {
    let mut parts = code.split('.');
    let (token, second, third) = (parts.next(), parts.next(), parts.next());
    if parts.next().is_some() {
        return Err(CodeError::Malformed);
    }
    let (token, epoch, mac) = match (token, second, third) {
        (Some(token), Some(mac), None) => (token, 0, mac),
        (Some(token), Some(epoch), Some(mac)) => {
            let canonical = !epoch.is_empty()
                && epoch.len() <= 10
                && epoch.bytes().all(|b| b.is_ascii_digit())
                && !epoch.starts_with('0');
            let epoch: u32 = epoch
                .parse()
                .ok()
                .filter(|_| canonical)
                .ok_or(CodeError::Malformed)?;
            (token, epoch, mac)
        }
        _ => return Err(CodeError::Malformed),
    };
    if token.is_empty() || mac.len() != MAC_TEXT_LEN {
        return Err(CodeError::Malformed);
    }
    Ok((token, epoch, mac))
}

/// Compares two equal-length byte strings without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

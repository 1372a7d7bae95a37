//! Pairing a web checkout terminal (a browser at the till) with a terminal key, without the
//! secret ever passing through an administrator's hands: an administrator creates a terminal
//! and gets a one-time pairing code (valid `pairing.ttl_secs`, default 10 minutes), shows it
//! to the till (typed, or scanned from `/till/#pair=<code>`), and the till's browser
//! exchanges it, once, for the terminal's key id and HMAC secret, which it imports as a
//! non-extractable WebCrypto key. Only the code's SHA-256 is stored; the exchange is a
//! conditional update, so a code pairs at most one browser. A paired browser can unpair
//! itself: that revokes its terminal's key.

use crate::error::{ApiError, Code};
use crate::merchants;
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use chrono::{DateTime, Utc};
use ring::rand::SecureRandom as _;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use voucher_core::TerminalId;
use voucher_platform::admin::{sha256_hex, Admin};
use voucher_store::pg::{merchants as merchant_rows, pairings, terminals};

/// The pairing code alphabet: no 0/O, 1/I/L, so it can be read aloud and typed.
const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters in a code (31^12 ≈ 2^59: unguessable within its lifetime and the rate limits).
const CODE_LEN: usize = 12;

/// A new pairing, for the administrator to show to the till.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairingCode {
    /// The terminal created for the till.
    #[schema(value_type = uuid::Uuid)]
    pub terminal_id: TerminalId,
    /// The one-time code, `XXXX-XXXX-XXXX`.
    pub pairing_code: String,
    /// The code is refused after this.
    pub expires_at: DateTime<Utc>,
    /// Open this on the till (or encode it in a QR code) to pair without typing.
    pub pairing_path: String,
}

/// `POST /v1/terminal-pairings` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    /// The code the administrator gave (dashes and case do not matter).
    pub pairing_code: String,
}

/// The merchant a terminal belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MerchantFacts {
    /// Merchant id.
    pub id: String,
    /// Business name.
    pub name: String,
    /// Category.
    pub category: String,
    /// City code.
    pub city: i32,
    /// County code, when registered in one.
    pub county: Option<i32>,
}

/// What the till's browser gets, once.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairedTerminal {
    /// The terminal.
    #[schema(value_type = uuid::Uuid)]
    pub terminal_id: TerminalId,
    /// Send as `X-Terminal-Key`.
    pub key_id: String,
    /// The HMAC secret (64 hex digits): import it as a non-extractable key and forget it.
    pub secret: String,
    /// Its merchant.
    pub merchant: MerchantFacts,
}

impl std::fmt::Debug for PairedTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairedTerminal")
            .field("terminal_id", &self.terminal_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The terminal behind a signed request, with its merchant.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TerminalInfo {
    /// The terminal.
    #[schema(value_type = uuid::Uuid)]
    pub terminal_id: TerminalId,
    /// Its key id.
    pub key_id: String,
    /// Its merchant.
    pub merchant: MerchantFacts,
}

/// The code in its canonical form (upper case, no separators), or `None` when it cannot be
/// a code.
fn canonical(code: &str) -> Option<String> {
    let c: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (c.len() == CODE_LEN && c.bytes().all(|b| ALPHABET.contains(&b))).then_some(c)
}

fn new_code() -> Result<String, ApiError> {
    let mut raw = [0u8; CODE_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| ApiError::internal(anyhow::anyhow!("the system random source failed")))?;
    // 256 is not a multiple of 31: a byte above the last whole multiple is drawn again
    // (rejection sampling), so every character is equally likely.
    let mut out = String::with_capacity(CODE_LEN + 2);
    let rng = ring::rand::SystemRandom::new();
    for (i, mut b) in raw.into_iter().enumerate() {
        while b >= 248 {
            let mut one = [0u8; 1];
            rng.fill(&mut one).map_err(|_| {
                ApiError::internal(anyhow::anyhow!("the system random source failed"))
            })?;
            b = one[0];
        }
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b % 31)]));
    }
    Ok(out)
}

/// Creates a terminal for `merchant` and a pairing code for it.
///
/// # Errors
/// `MERCHANT_NOT_FOUND` (also outside the caller's place), store failures.
#[tracing::instrument(name = "redemption.pairing.create", skip_all)]
pub async fn create(
    state: &AppState,
    who: &Admin,
    merchant: &str,
) -> Result<PairingCode, ApiError> {
    let credentials = merchants::create_terminal(state, who, merchant).await?;
    let code = new_code()?;
    let now = state.clock.now();
    let expires_at = now + chrono::Duration::seconds(state.settings.pairing.ttl_secs);
    let stored = canonical(&code).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("a generated pairing code does not parse"))
    })?;
    pairings::create(
        &state.pg,
        &sha256_hex(&stored),
        credentials.terminal_id,
        &who.name,
        now,
        expires_at,
    )
    .await?;
    Ok(PairingCode {
        terminal_id: credentials.terminal_id,
        pairing_path: format!("/till/#pair={code}"),
        pairing_code: code,
        expires_at,
    })
}

/// Exchanges a pairing code for its terminal's key, once.
///
/// # Errors
/// `PAIRING_CODE_INVALID` for a code that is malformed, unknown, used or expired (the same
/// answer for each, so it tells a guesser nothing), store failures.
#[tracing::instrument(name = "redemption.pairing.pair", skip_all)]
pub async fn pair(state: &AppState, req: &PairRequest) -> Result<PairedTerminal, ApiError> {
    let invalid = || ApiError::new(Code::PairingCodeInvalid);
    let code = canonical(&req.pairing_code).ok_or_else(invalid)?;
    let paired = pairings::consume(&state.pg, &sha256_hex(&code), state.clock.now())
        .await?
        .ok_or_else(invalid)?;
    let secret = state
        .keyring
        .open(paired.terminal_id, &paired.key_id, &paired.secret)
        .map_err(ApiError::internal)?;
    Ok(PairedTerminal {
        terminal_id: paired.terminal_id,
        key_id: paired.key_id.as_str().to_owned(),
        secret: secret.expose_secret().to_owned(),
        merchant: MerchantFacts {
            id: paired.merchant_id.as_str().to_owned(),
            name: paired.merchant_name,
            category: paired.category,
            city: paired.city,
            county: paired.county,
        },
    })
}

/// The terminal behind a signed request.
///
/// # Errors
/// Store failures.
pub async fn me(state: &AppState, terminal: &Terminal) -> Result<TerminalInfo, ApiError> {
    let m = merchant_rows::get_merchant(&state.pg, &terminal.merchant_id)
        .await?
        .ok_or_else(|| ApiError::new(Code::MerchantNotFound))?;
    Ok(TerminalInfo {
        terminal_id: terminal.terminal_id,
        key_id: terminal.key_id.as_str().to_owned(),
        merchant: MerchantFacts {
            id: m.id.as_str().to_owned(),
            name: m.name,
            category: m.category,
            city: m.city,
            county: m.county,
        },
    })
}

/// Unpairs the terminal behind a signed request: its key is revoked (idempotent).
///
/// # Errors
/// Store failures.
#[tracing::instrument(name = "redemption.pairing.unpair", skip_all)]
pub async fn unpair(state: &AppState, terminal: &Terminal) -> Result<(), ApiError> {
    terminals::revoke_terminal(
        &state.pg,
        terminal.terminal_id,
        &terminal.merchant_id,
        state.clock.now(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_unambiguous_and_parse_back() {
        for _ in 0..200 {
            let code = new_code().unwrap();
            assert_eq!(code.len(), 14, "{code}");
            let plain = canonical(&code).unwrap();
            assert!(!plain.contains(['0', 'O', '1', 'I', 'L']), "{code}");
            assert_eq!(
                canonical(&code.to_lowercase().replace('-', " ")),
                Some(plain)
            );
        }
        assert_eq!(canonical("short"), None);
        assert_eq!(canonical("OOOO-OOOO-OOOO"), None);
    }
}

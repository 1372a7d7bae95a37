//! Terminal request signing (both sides). Every terminal request carries
//!
//! - `X-Terminal-Key`: the terminal's key id,
//! - `X-Timestamp`: Unix seconds,
//! - `X-Nonce`: 8–64 characters of `[A-Za-z0-9_-]`, never reused,
//! - `X-Signature`: lowercase hex HMAC-SHA256, keyed with the terminal's secret (the hex
//!   string shown once at creation, decoded to 32 bytes), over the canonical string
//!   `METHOD\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nhex(sha256(body))`.
//!
//! The body digest is over the body as sent before any `Content-Encoding`: a terminal that
//! gzips its request signs the JSON, and the service verifies the decompressed bytes.
//!
//! [`sign_request`] is the client side (used by the tests, the load test and terminal
//! vendors); [`verify_signature`] the server side (constant-time comparison by `ring`).
//! Pure: `ring` only, no I/O.

use ring::{digest, hmac};

/// The key id header.
pub const KEY_HEADER: &str = "x-terminal-key";
/// The timestamp header (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-timestamp";
/// The nonce header.
pub const NONCE_HEADER: &str = "x-nonce";
/// The signature header (hex).
pub const SIGNATURE_HEADER: &str = "x-signature";

/// The string that is signed.
pub fn canonical_string(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    let body_hash = hex::encode(digest::digest(&digest::SHA256, body));
    format!(
        "{}\n{path_and_query}\n{timestamp}\n{nonce}\n{body_hash}",
        method.to_ascii_uppercase()
    )
}

/// A terminal secret that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a terminal secret is 64 hex digits")]
pub struct BadSecret;

fn key(secret_hex: &str) -> Result<hmac::Key, BadSecret> {
    let raw = hex::decode(secret_hex.trim()).map_err(|_| BadSecret)?;
    if raw.len() != 32 {
        return Err(BadSecret);
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &raw))
}

/// The hex signature of a request.
///
/// # Errors
/// [`BadSecret`].
pub fn sign(
    secret_hex: &str,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Result<String, BadSecret> {
    let tag = hmac::sign(
        &key(secret_hex)?,
        canonical_string(method, path_and_query, timestamp, nonce, body).as_bytes(),
    );
    Ok(hex::encode(tag.as_ref()))
}

/// The four headers of a signed request, with a fresh random nonce.
///
/// # Errors
/// [`BadSecret`].
pub fn sign_request(
    key_id: &str,
    secret_hex: &str,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<Vec<(&'static str, String)>, BadSecret> {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let signature = sign(secret_hex, method, path_and_query, timestamp, &nonce, body)?;
    Ok(vec![
        (KEY_HEADER, key_id.to_owned()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (NONCE_HEADER, nonce),
        (SIGNATURE_HEADER, signature),
    ])
}

/// Whether `signature_hex` is the request's signature (constant time).
pub fn verify_signature(
    secret_hex: &str,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
    signature_hex: &str,
) -> bool {
    let (Ok(key), Ok(tag)) = (key(secret_hex), hex::decode(signature_hex.trim())) else {
        return false;
    };
    hmac::verify(
        &key,
        canonical_string(method, path_and_query, timestamp, nonce, body).as_bytes(),
        &tag,
    )
    .is_ok()
}

/// Whether a nonce has the allowed shape.
pub fn valid_nonce(nonce: &str) -> bool {
    (8..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh terminal secret: 32 random bytes, hex.
///
/// # Errors
/// The system random source failed.
pub fn new_secret() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom as _;
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut raw)?;
    Ok(hex::encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let sig = sign(
            SECRET,
            "post",
            "/v1/redemptions",
            1_777_600_000,
            "nonce-123",
            b"{\"a\":1}",
        )
        .unwrap();
        assert!(verify_signature(
            SECRET,
            "POST",
            "/v1/redemptions",
            1_777_600_000,
            "nonce-123",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            SECRET,
            "POST",
            "/v1/redemptions",
            1_777_600_000,
            "nonce-123",
            b"{\"a\":2}",
            &sig
        ));
        assert!(!verify_signature(
            SECRET,
            "POST",
            "/v1/redemptions",
            1_777_600_001,
            "nonce-123",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            SECRET,
            "POST",
            "/v1/other",
            1_777_600_000,
            "nonce-123",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            SECRET,
            "POST",
            "/v1/redemptions",
            1_777_600_000,
            "nonce-124",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            SECRET,
            "POST",
            "/v1/redemptions",
            1_777_600_000,
            "nonce-123",
            b"{\"a\":1}",
            "zz"
        ));
    }

    #[test]
    fn nonces_and_secrets_have_a_shape() {
        assert!(valid_nonce("abcdefgh"));
        assert!(!valid_nonce("short"));
        assert!(!valid_nonce("has space in it"));
        assert_eq!(new_secret().unwrap().len(), 64);
        assert!(sign("nothex", "GET", "/", 0, "abcdefgh", b"").is_err());
    }
}

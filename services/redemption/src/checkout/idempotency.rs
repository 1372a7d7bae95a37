//! Idempotency of checkout requests. A terminal sends an `Idempotency-Key` per attempt; a
//! repeat with the same key and the same request gets the first answer, with another body
//! `IDEMPOTENCY_KEY_REUSED`, while the first is still deciding `IN_FLIGHT`. The key is
//! taken inside the transaction that decides
//! (`voucher_store::pg::idempotency::idempotency_claim`): an approval commits the decision
//! and the stored answer together; a decline or a failure rolls back and leaves the key
//! free, so a retry is decided afresh.

use crate::error::{ApiError, Code};

/// A terminal's `Idempotency-Key`: 1–128 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The header's value, checked.
    ///
    /// # Errors
    /// `MISSING_IDEMPOTENCY_KEY` when absent, `INVALID_FIELD` when malformed.
    pub fn parse(header: Option<&str>) -> Result<IdempotencyKey, ApiError> {
        let key = header.ok_or_else(|| ApiError::new(Code::MissingIdempotencyKey))?;
        if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::invalid_field(
                "Idempotency-Key",
                "must be 1-128 printable ASCII characters",
            ));
        }
        Ok(IdempotencyKey(key.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hex SHA-256 of what identifies a request for idempotency: method, path and body.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(method.as_bytes());
    ctx.update(b"\n");
    ctx.update(path.as_bytes());
    ctx.update(b"\n");
    ctx.update(body);
    hex::encode(ctx.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_128_printable_ascii_characters() {
        assert_eq!(
            IdempotencyKey::parse(Some("POS-1-try1"))
                .map(|k| k.as_str().to_owned())
                .ok(),
            Some("POS-1-try1".to_owned())
        );
        assert!(IdempotencyKey::parse(None).is_err_and(|e| e.code() == "MISSING_IDEMPOTENCY_KEY"));
        for bad in ["", "has space", "é", &"x".repeat(129)] {
            assert!(
                IdempotencyKey::parse(Some(bad)).is_err_and(|e| e.code() == "INVALID_FIELD"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_hash_covers_method_path_and_body() {
        let h = request_hash("POST", "/v1/redemptions", b"{}");
        assert_eq!(h.len(), 64);
        assert_ne!(h, request_hash("POST", "/v1/authorizations", b"{}"));
        assert_ne!(h, request_hash("POST", "/v1/redemptions", b"{ }"));
    }
}

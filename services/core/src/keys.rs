//! Ed25519 keys (ring) with key ids, shared by voucher tokens and identity tokens.
//! Several public keys are active at once so that keys rotate without breaking what was
//! already signed: sign with the current key, verify with any key in the set.
//!
//! Key files are JSON so that operators can read them: a signing key is
//! `{"kid": 2, "pkcs8": "<base64>"}`, a published public key `{"kid": 2, "public_key":
//! "<base64url>", "not_after": null}`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A key id, carried inside every signed token.
pub type KeyId = u32;

/// A private Ed25519 key with its id. Its `Debug` never prints the key.
pub struct SigningKey {
    kid: KeyId,
    // ring's key pair plus the PKCS#8 document it came from (to write it to a file).
    pair: ring::signature::Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

/// The on-disk (or environment) form of a signing key.
#[derive(Clone, Serialize, Deserialize)]
pub struct SigningKeyFile {
    /// Key id.
    pub kid: KeyId,
    /// PKCS#8 v2 document, standard base64.
    pub pkcs8: String,
}

/// A public key as published for verifiers (and terminals, offline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// Key id.
    pub kid: KeyId,
    /// The 32-byte Ed25519 public key, base64url without padding.
    pub public_key: String,
    /// After this instant tokens signed by this key are no longer accepted (None = no end).
    #[serde(default)]
    pub not_after: Option<DateTime<Utc>>,
}

/// Key material that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a valid PKCS#8 Ed25519 document, or bad base64.
    #[error("invalid signing key")]
    InvalidSigningKey,
    /// Not a 32-byte base64url public key.
    #[error("invalid public key for kid {0}")]
    InvalidPublicKey(KeyId),
    /// Two keys with one id.
    #[error("duplicate key id {0}")]
    DuplicateKid(KeyId),
    /// The random source failed.
    #[error("could not generate a key")]
    Generate,
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No key with that id in the set.
    #[error("unknown key id {0}")]
    UnknownKey(KeyId),
    /// The key exists but is past its `not_after`.
    #[error("key {0} is retired")]
    RetiredKey(KeyId),
    /// Signature does not match.
    #[error("bad signature")]
    BadSignature,
}

impl SigningKey {
    /// A fresh random key.
    ///
    /// # Errors
    /// [`KeyError::Generate`] if the system random source fails.
    pub fn generate(kid: KeyId) -> Result<SigningKey, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
        let pkcs8 = doc.as_ref().to_vec();
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::Generate)?;
        Ok(SigningKey { kid, pair, pkcs8 })
    }

    /// Loads a key from its file form.
    ///
    /// # Errors
    /// [`KeyError::InvalidSigningKey`].
    pub fn from_file(file: &SigningKeyFile) -> Result<SigningKey, KeyError> {
        let pkcs8 = STANDARD
            .decode(file.pkcs8.trim())
            .map_err(|_| KeyError::InvalidSigningKey)?;
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8))
            .map_err(|_| KeyError::InvalidSigningKey)?;
        Ok(SigningKey {
            kid: file.kid,
            pair,
            pkcs8,
        })
    }

    /// The file form (contains the secret: write it with care).
    pub fn to_file(&self) -> SigningKeyFile {
        SigningKeyFile {
            kid: self.kid,
            pkcs8: STANDARD.encode(&self.pkcs8),
        }
    }

    /// Key id.
    pub fn kid(&self) -> KeyId {
        self.kid
    }

    /// The public half, with no end date.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            kid: self.kid,
            public_key: URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref()),
            not_after: None,
        }
    }

    /// Ed25519 signature of `msg` (deterministic).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let sig = self.pair.sign(msg);
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        out
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A set of public keys by id: verifies signatures made by any of them.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    keys: BTreeMap<KeyId, (PublicKey, [u8; 32])>,
}

impl Verifier {
    /// A verifier for these keys.
    ///
    /// # Errors
    /// A key that does not decode, or a duplicate id.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Result<Verifier, KeyError> {
        let mut map = BTreeMap::new();
        for key in keys {
            let raw = URL_SAFE_NO_PAD
                .decode(key.public_key.trim_end_matches('='))
                .map_err(|_| KeyError::InvalidPublicKey(key.kid))?;
            let raw: [u8; 32] = raw
                .try_into()
                .map_err(|_| KeyError::InvalidPublicKey(key.kid))?;
            if map.contains_key(&key.kid) {
                return Err(KeyError::DuplicateKid(key.kid));
            }
            map.insert(key.kid, (key, raw));
        }
        Ok(Verifier { keys: map })
    }

    /// The published keys, by id.
    pub fn public_keys(&self) -> Vec<PublicKey> {
        self.keys.values().map(|(k, _)| k.clone()).collect()
    }

    /// Checks `sig` over `msg` with key `kid`, as of `now` (for `not_after`).
    ///
    /// # Errors
    /// [`VerifyError`].
    pub fn verify(
        &self,
        kid: KeyId,
        msg: &[u8],
        sig: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        let (key, raw) = self.keys.get(&kid).ok_or(VerifyError::UnknownKey(kid))?;
        if key.not_after.is_some_and(|end| now > end) {
            return Err(VerifyError::RetiredKey(kid));
        }
        UnparsedPublicKey::new(&ED25519, raw)
            .verify(msg, sig)
            .map_err(|_| VerifyError::BadSignature)
    }
}

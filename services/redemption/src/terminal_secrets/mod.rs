//! Terminal HMAC secrets at rest: envelope encryption under key-encryption keys (KEKs).
//!
//! The service must read a terminal's secret to check its signatures (HMAC is symmetric),
//! so the secret cannot be stored as a hash. It is stored sealed instead: AES-256-GCM
//! (ring's AEAD) under a KEK from the secrets directory (`terminal-kek.json`, loaded by
//! [`voucher_platform::secrets::SecretsDir::terminal_keks`]), with
//! - a fresh random 96-bit nonce for every seal (a terminal is sealed once per creation,
//!   rotation or re-wrap, far below the 2^32 seals a random-nonce GCM key allows);
//! - the KEK's id stored beside the ciphertext, so several KEKs can be loaded at once: the
//!   current one seals, any loaded one opens what it sealed;
//! - associated data binding the ciphertext to its terminal id, key id and KEK id, so a
//!   ciphertext copied into another row (another terminal's, or another key's) does not
//!   open.
//!
//! The database therefore holds nothing that signs a request: a dump alone cannot forge
//! one. The plaintext exists only in memory, for the moment a request is checked (or a
//! secret is shown once to its terminal), in a [`SecretString`] that is wiped when dropped.
//! There is no cache of opened secrets: opening costs about a microsecond, and a rotation
//! or revocation then takes effect with the row.
//!
//! [`rewrap`] seals rows still stored as is (at start) and re-seals rows under the current
//! KEK (`redemption rewrap-secrets`); [`kek_file`] adds, switches and retires KEKs.

pub mod kek_file;
pub mod rewrap;

pub use rewrap::{rewrap, RewrapReport};
/// What [`Keyring::open`] answers, and how to read it.
pub use secrecy::{ExposeSecret, SecretString};

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use ring::rand::SecureRandom as _;
use secrecy::zeroize::Zeroize as _;
use std::collections::BTreeMap;
use voucher_core::{TerminalId, TerminalKeyId};
use voucher_platform::secrets::TerminalKeks;
use voucher_store::pg::terminals::{SealedSecret, StoredSecret};

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The row names a KEK this process did not load (a configuration fault: the KEK file
    /// of this process lags behind the one that sealed the row).
    #[error("terminal {terminal}'s secret is sealed under key-encryption key {kek_id}, which is not loaded")]
    UnknownKek {
        /// The terminal.
        terminal: TerminalId,
        /// The KEK the row names.
        kek_id: i32,
    },
    /// Authentication failed: the row was altered or moved, or the KEK with that id is not
    /// the one that sealed it.
    #[error("terminal {0}'s sealed secret does not open (altered or moved row, or a different key-encryption key with the same id)")]
    DoesNotOpen(TerminalId),
    /// The row still holds the secret as is (written before migration 0012).
    #[error("terminal {0}'s secret is not sealed yet (run `redemption rewrap-secrets`)")]
    NotSealed(TerminalId),
    /// A KEK could not be made into an AEAD key.
    #[error("key-encryption key {0} is not an AES-256 key")]
    BadKek(u32),
    /// The random source failed.
    #[error("the system random source failed")]
    Random,
}

/// The loaded KEKs: seals with the current one, opens with any. Cheap to share (`Arc`).
pub struct Keyring {
    current: i32,
    keys: BTreeMap<i32, LessSafeKey>,
    random: ring::rand::SystemRandom,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The associated data of a sealed secret: what the ciphertext is bound to. The key id is
/// the only part of variable length, between fixed-length ones, so the encoding is
/// unambiguous.
fn associated_data(terminal: TerminalId, key_id: &TerminalKeyId, kek_id: i32) -> Vec<u8> {
    const DOMAIN: &[u8] = b"voucher-platform/terminal-secret/v1\0";
    let mut aad = Vec::with_capacity(DOMAIN.len() + 16 + key_id.as_str().len() + 5);
    aad.extend_from_slice(DOMAIN);
    aad.extend_from_slice(terminal.0.as_bytes());
    aad.extend_from_slice(key_id.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(&kek_id.to_be_bytes());
    aad
}

impl Keyring {
    /// The keyring of checked KEKs (ids fit PostgreSQL's `integer`, as
    /// [`voucher_platform::secrets::KekFile::check`] ensures).
    ///
    /// # Errors
    /// [`SecretError::BadKek`] for a key ring refuses (a wrong length).
    pub fn new(keks: &TerminalKeks) -> Result<Keyring, SecretError> {
        let mut keys = BTreeMap::new();
        for kek in &keks.keys {
            let id = i32::try_from(kek.id).map_err(|_| SecretError::BadKek(kek.id))?;
            let unbound = UnboundKey::new(&aead::AES_256_GCM, kek.key.expose_secret())
                .map_err(|_| SecretError::BadKek(kek.id))?;
            keys.insert(id, LessSafeKey::new(unbound));
        }
        let current = i32::try_from(keks.current).map_err(|_| SecretError::BadKek(keks.current))?;
        if !keys.contains_key(&current) {
            return Err(SecretError::BadKek(keks.current));
        }
        Ok(Keyring {
            current,
            keys,
            random: ring::rand::SystemRandom::new(),
        })
    }

    /// The id of the KEK that seals.
    pub fn current(&self) -> i32 {
        self.current
    }

    /// Whether KEK `id` is loaded.
    pub fn has(&self, id: i32) -> bool {
        self.keys.contains_key(&id)
    }

    /// Seals `secret` of terminal `terminal`'s key `key_id` under the current KEK.
    ///
    /// # Errors
    /// The random source failed.
    pub fn seal(
        &self,
        terminal: TerminalId,
        key_id: &TerminalKeyId,
        secret: &str,
    ) -> Result<SealedSecret, SecretError> {
        let key = self.keys.get(&self.current).ok_or(SecretError::BadKek(
            u32::try_from(self.current).unwrap_or(0),
        ))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut in_out = secret.as_bytes().to_vec();
        let sealed = key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(terminal, key_id, self.current)),
            &mut in_out,
        );
        if sealed.is_err() {
            in_out.zeroize();
            return Err(SecretError::Random);
        }
        Ok(SealedSecret {
            kek_id: self.current,
            nonce: nonce.to_vec(),
            ciphertext: in_out,
        })
    }

    /// Opens terminal `terminal`'s stored secret of key `key_id`.
    ///
    /// # Errors
    /// [`SecretError::NotSealed`] for a secret stored as is, [`SecretError::UnknownKek`],
    /// [`SecretError::DoesNotOpen`].
    pub fn open(
        &self,
        terminal: TerminalId,
        key_id: &TerminalKeyId,
        stored: &StoredSecret,
    ) -> Result<SecretString, SecretError> {
        match stored {
            StoredSecret::Sealed(sealed) => self.open_sealed(terminal, key_id, sealed),
            StoredSecret::Plain(_) => Err(SecretError::NotSealed(terminal)),
        }
    }

    /// Opens a sealed secret.
    ///
    /// # Errors
    /// [`SecretError::UnknownKek`], [`SecretError::DoesNotOpen`].
    pub fn open_sealed(
        &self,
        terminal: TerminalId,
        key_id: &TerminalKeyId,
        sealed: &SealedSecret,
    ) -> Result<SecretString, SecretError> {
        let key = self
            .keys
            .get(&sealed.kek_id)
            .ok_or(SecretError::UnknownKek {
                terminal,
                kek_id: sealed.kek_id,
            })?;
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce)
            .map_err(|_| SecretError::DoesNotOpen(terminal))?;
        let mut in_out = sealed.ciphertext.clone();
        let opened = key
            .open_in_place(
                nonce,
                Aad::from(associated_data(terminal, key_id, sealed.kek_id)),
                &mut in_out,
            )
            .ok()
            .and_then(|plain| std::str::from_utf8(plain).ok())
            .map(|text| SecretString::from(text.to_owned()));
        in_out.zeroize();
        opened.ok_or(SecretError::DoesNotOpen(terminal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretSlice;
    use uuid::Uuid;
    use voucher_platform::secrets::Kek;

    fn keks(current: u32, ids: &[(u32, u8)]) -> TerminalKeks {
        TerminalKeks {
            current,
            keys: ids
                .iter()
                .map(|&(id, byte)| Kek {
                    id,
                    key: SecretSlice::from(vec![byte; 32]),
                })
                .collect(),
        }
    }

    fn terminal() -> (TerminalId, TerminalKeyId) {
        (
            TerminalId(Uuid::now_v7()),
            TerminalKeyId::from_random(Uuid::new_v4()),
        )
    }

    const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_sealed_secret_opens_only_for_its_own_terminal_and_key() {
        let ring = Keyring::new(&keks(1, &[(1, 7)])).unwrap();
        let (t, k) = terminal();
        let sealed = ring.seal(t, &k, SECRET).unwrap();
        assert_eq!(sealed.kek_id, 1);
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert!(!sealed
            .ciphertext
            .windows(SECRET.len())
            .any(|w| w == SECRET.as_bytes()));
        assert_eq!(
            ring.open_sealed(t, &k, &sealed).unwrap().expose_secret(),
            SECRET
        );

        // The same secret sealed twice gives different ciphertexts (fresh nonces).
        assert_ne!(
            ring.seal(t, &k, SECRET).unwrap().ciphertext,
            sealed.ciphertext
        );

        // Moved to another terminal or key id: does not open.
        let (other_t, other_k) = terminal();
        assert!(matches!(
            ring.open_sealed(other_t, &k, &sealed),
            Err(SecretError::DoesNotOpen(_))
        ));
        assert!(matches!(
            ring.open_sealed(t, &other_k, &sealed),
            Err(SecretError::DoesNotOpen(_))
        ));
        // Altered: does not open.
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(ring.open_sealed(t, &k, &altered).is_err());
        let mut renamed = sealed.clone();
        renamed.nonce.pop();
        assert!(ring.open_sealed(t, &k, &renamed).is_err());
        // A plain row is refused.
        assert!(matches!(
            ring.open(t, &k, &StoredSecret::Plain(SECRET.into())),
            Err(SecretError::NotSealed(_))
        ));
    }

    #[test]
    fn the_current_kek_seals_and_every_loaded_kek_opens_by_id() {
        let old = Keyring::new(&keks(1, &[(1, 7)])).unwrap();
        let both = Keyring::new(&keks(2, &[(1, 7), (2, 9)])).unwrap();
        let new_only = Keyring::new(&keks(2, &[(2, 9)])).unwrap();
        let (t, k) = terminal();
        let under_1 = old.seal(t, &k, SECRET).unwrap();
        let under_2 = both.seal(t, &k, SECRET).unwrap();
        assert_eq!((under_1.kek_id, under_2.kek_id), (1, 2));
        for (ring, sealed) in [(&both, &under_1), (&both, &under_2), (&new_only, &under_2)] {
            assert_eq!(
                ring.open_sealed(t, &k, sealed).unwrap().expose_secret(),
                SECRET
            );
        }
        assert!(matches!(
            new_only.open_sealed(t, &k, &under_1),
            Err(SecretError::UnknownKek { kek_id: 1, .. })
        ));
        // A relabelled KEK id (sealed under 2, row says 1) does not open under key 1.
        let mut relabelled = under_2.clone();
        relabelled.kek_id = 1;
        assert!(matches!(
            both.open_sealed(t, &k, &relabelled),
            Err(SecretError::DoesNotOpen(_))
        ));
        // A different key under the same id does not open either.
        let impostor = Keyring::new(&keks(1, &[(1, 8)])).unwrap();
        assert!(impostor.open_sealed(t, &k, &under_1).is_err());
    }

    #[test]
    fn a_keyring_needs_its_current_key() {
        assert!(Keyring::new(&keks(3, &[(1, 7)])).is_err());
        assert!(Keyring::new(&keks(1, &[(1, 7)])).unwrap().has(1));
    }
}

//! Everything secret comes from files in one directory (`secrets_dir`): production mounts
//! them (a Kubernetes secret), the demo and the tests generate them (`issuance keygen`).
//! Keeping them out of the settings means they never end up in a config file, an
//! environment dump or a log line.
//!
//! Each process loads only the files it needs, one function per file: the issuance service
//! the voucher signing key, the public keys, the identity provider's keys, the dynamic-code
//! secret and the administrators' keys; the redemption service only the voucher PUBLIC
//! keys, the dynamic-code secret, the administrators' keys and the terminal KEKs, so the key
//! that mints vouchers never sits in a process that only has to verify them; reconciliation
//! only the administrators' keys.
//!
//! | file | content | mode |
//! |---|---|---|
//! | `voucher-signing.json` | the current voucher signing key (`SigningKeyFile`) | 0600 |
//! | `voucher-public.json` | every active voucher verification key (`[PublicKey]`), published | 0644 |
//! | `idp-public.json` | the identity provider's keys (`[PublicKey]`) | 0644 |
//! | `dynamic-code.secret` | ≥ 32 random bytes, standard base64 | 0600 |
//! | `admin-keys.json` | `[{name, key_sha256, role, place}]`: administrators' API keys, hashed | 0600 |
//! | `idp-signing.json` | dev only: the dev identity provider's private key | 0600 |
//! | `admin-keys.plain.json` | dev only: the administrators' API keys in clear | 0600 |
//! | `terminal-kek.json` | `{current, keys: [{id, key}]}`: the key-encryption keys that seal terminal HMAC secrets at rest (`KekFile`) | 0600 |

use crate::admin::{AdminKeyEntry, PlainAdminKey};
use base64::Engine;
use secrecy::SecretSlice;
use serde::{de::DeserializeOwned, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use voucher_core::keys::{KeyError, PublicKey, SigningKey, SigningKeyFile};

/// File name of the current voucher signing key.
pub const VOUCHER_SIGNING: &str = "voucher-signing.json";
/// File name of the published voucher verification keys.
pub const VOUCHER_PUBLIC: &str = "voucher-public.json";
/// File name of the identity provider's public keys.
pub const IDP_PUBLIC: &str = "idp-public.json";
/// File name of the dynamic-code secret.
pub const DYNAMIC_CODE_SECRET: &str = "dynamic-code.secret";
/// File name of the hashed administrator keys.
pub const ADMIN_KEYS: &str = "admin-keys.json";
/// File name of the dev identity provider's private key (dev only).
pub const IDP_SIGNING: &str = "idp-signing.json";
/// File name of the administrator keys in clear (dev only).
pub const ADMIN_KEYS_PLAIN: &str = "admin-keys.plain.json";

/// File name of the key-encryption keys (KEKs) that seal terminal HMAC secrets at rest.
pub const TERMINAL_KEK: &str = "terminal-kek.json";

/// Every file of a complete (dev) secrets directory.
pub const ALL_FILES: [&str; 8] = [
    VOUCHER_SIGNING,
    VOUCHER_PUBLIC,
    IDP_PUBLIC,
    DYNAMIC_CODE_SECRET,
    ADMIN_KEYS,
    IDP_SIGNING,
    ADMIN_KEYS_PLAIN,
    TERMINAL_KEK,
];

/// A secret file could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not the expected JSON.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A key did not load or could not be generated.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: KeyError,
    },
    /// Bad content (base64, length, hex).
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The random source failed.
    #[error("the system random source failed")]
    Random,
}

/// The secrets directory of a process.
#[derive(Debug, Clone)]
pub struct SecretsDir {
    dir: PathBuf,
}

impl SecretsDir {
    /// The directory at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> SecretsDir {
        SecretsDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of one of its files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The current voucher signing key, checked to be among the published keys (so no
    /// voucher is ever signed with a key the terminals cannot verify). Only the issuance
    /// service loads it.
    ///
    /// # Errors
    /// A missing or malformed file, an unpublished key.
    pub fn voucher_signing(&self) -> Result<SigningKey, SecretsError> {
        let path = self.file(VOUCHER_SIGNING);
        let file: SigningKeyFile = read_json(&path)?;
        let key =
            SigningKey::from_file(&file).map_err(|source| SecretsError::Key { path, source })?;
        if !self.voucher_public()?.iter().any(|k| k.kid == key.kid()) {
            return Err(SecretsError::Invalid {
                path: self.file(VOUCHER_PUBLIC),
                reason: format!("the current signing key {} is not published", key.kid()),
            });
        }
        Ok(key)
    }

    /// Every active voucher verification key.
    ///
    /// # Errors
    /// A missing or malformed file.
    pub fn voucher_public(&self) -> Result<Vec<PublicKey>, SecretsError> {
        read_json(&self.file(VOUCHER_PUBLIC))
    }

    /// The identity provider's public keys.
    ///
    /// # Errors
    /// A missing or malformed file.
    pub fn idp_public(&self) -> Result<Vec<PublicKey>, SecretsError> {
        read_json(&self.file(IDP_PUBLIC))
    }

    /// The dynamic-code MAC secret (at least 32 bytes).
    ///
    /// # Errors
    /// A missing file, not base64, too short.
    pub fn dynamic_code_secret(&self) -> Result<SecretSlice<u8>, SecretsError> {
        let path = self.file(DYNAMIC_CODE_SECRET);
        let text = read_text(&path)?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| SecretsError::Invalid {
                path: path.clone(),
                reason: format!("not base64: {e}"),
            })?;
        if secret.len() < 32 {
            return Err(SecretsError::Invalid {
                path,
                reason: "needs at least 32 bytes".into(),
            });
        }
        Ok(SecretSlice::from(secret))
    }

    /// The administrators' hashed keys.
    ///
    /// # Errors
    /// A missing or malformed file, a hash that is not 64 hex digits.
    pub fn admin_keys(&self) -> Result<Vec<AdminKeyEntry>, SecretsError> {
        let path = self.file(ADMIN_KEYS);
        let entries: Vec<AdminKeyEntry> = read_json(&path)?;
        if let Some(bad) = entries
            .iter()
            .find(|e| e.key_sha256.len() != 64 || hex::decode(&e.key_sha256).is_err())
        {
            return Err(SecretsError::Invalid {
                path,
                reason: format!("key_sha256 of {} is not 64 hex digits", bad.name),
            });
        }
        Ok(entries)
    }

    /// The dev identity provider's private key (demo and tests only).
    ///
    /// # Errors
    /// A missing or malformed file.
    pub fn idp_signing(&self) -> Result<SigningKey, SecretsError> {
        let path = self.file(IDP_SIGNING);
        let file: SigningKeyFile = read_json(&path)?;
        SigningKey::from_file(&file).map_err(|source| SecretsError::Key { path, source })
    }

    /// The administrators' keys in clear (demo and tests only).
    ///
    /// # Errors
    /// A missing or malformed file.
    pub fn plain_admin_keys(&self) -> Result<Vec<PlainAdminKey>, SecretsError> {
        read_json(&self.file(ADMIN_KEYS_PLAIN))
    }

    /// The key-encryption keys of terminal secrets, checked ([`KekFile::check`]). Only the
    /// redemption service loads them.
    ///
    /// # Errors
    /// A missing or malformed file.
    pub fn terminal_keks(&self) -> Result<TerminalKeks, SecretsError> {
        let path = self.file(TERMINAL_KEK);
        let file: KekFile = read_json(&path)?;
        file.check(&path)
    }

    /// The files of [`ALL_FILES`] that exist.
    pub fn existing_files(&self) -> Vec<PathBuf> {
        ALL_FILES
            .iter()
            .map(|f| self.file(f))
            .filter(|p| p.exists())
            .collect()
    }
}

/// Bytes in a key-encryption key (AES-256).
pub const KEK_LEN: usize = 32;

/// `terminal-kek.json`: the key-encryption keys (KEKs) that seal the terminals' HMAC secrets
/// in PostgreSQL (envelope encryption). `current` seals every new or re-wrapped secret; every
/// key listed opens what it sealed (the stored row names its key id). A rotation therefore
/// adds a key, makes it current, re-wraps the stored secrets and retires the old key, and
/// no step stops the service (README, "Terminal secrets at rest").
#[derive(Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KekFile {
    /// The id of the key that seals.
    pub current: u32,
    /// Every key that may open a stored secret.
    pub keys: Vec<KekFileEntry>,
}

/// One key of [`KekFile`].
#[derive(Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KekFileEntry {
    /// Key id, 1 to 2^31 − 1 (stored beside each secret it seals).
    pub id: u32,
    /// [`KEK_LEN`] random bytes, standard base64.
    pub key: String,
}

impl std::fmt::Debug for KekFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|k| k.id).collect();
        f.debug_struct("KekFile")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish_non_exhaustive()
    }
}

/// One loaded key-encryption key.
pub struct Kek {
    /// Its id.
    pub id: u32,
    /// Its [`KEK_LEN`] bytes.
    pub key: SecretSlice<u8>,
}

/// The loaded key-encryption keys: `current` is among `keys`, ids are distinct.
pub struct TerminalKeks {
    /// The id of the key that seals.
    pub current: u32,
    /// Every key that opens.
    pub keys: Vec<Kek>,
}

impl std::fmt::Debug for TerminalKeks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|k| k.id).collect();
        f.debug_struct("TerminalKeks")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish_non_exhaustive()
    }
}

impl KekFile {
    /// A fresh file with one random key, id 1, current.
    ///
    /// # Errors
    /// The random source failed.
    pub fn generate() -> Result<KekFile, SecretsError> {
        Ok(KekFile {
            current: 1,
            keys: vec![new_kek_entry(1)?],
        })
    }

    /// Adds a random key with the next id and returns the id. It does not become current:
    /// every process must be able to open with it before any seals with it.
    ///
    /// # Errors
    /// The random source failed; the ids are exhausted.
    pub fn add_key(&mut self) -> Result<u32, SecretsError> {
        let next = self
            .keys
            .iter()
            .map(|k| k.id)
            .chain(std::iter::once(self.current))
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .filter(|id| i32::try_from(*id).is_ok())
            .ok_or_else(|| SecretsError::Invalid {
                path: PathBuf::from(TERMINAL_KEK),
                reason: "key id overflow".into(),
            })?;
        self.keys.push(new_kek_entry(next)?);
        Ok(next)
    }

    /// The keys, decoded and checked: ids 1 to 2^31 − 1 and distinct, each key [`KEK_LEN`]
    /// bytes of base64, the current key among them.
    ///
    /// # Errors
    /// [`SecretsError::Invalid`] naming `path` and what is wrong.
    pub fn check(&self, path: &Path) -> Result<TerminalKeks, SecretsError> {
        let invalid = |reason: String| SecretsError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let mut keys: Vec<Kek> = Vec::with_capacity(self.keys.len());
        for entry in &self.keys {
            if entry.id == 0 || i32::try_from(entry.id).is_err() {
                return Err(invalid(format!("key id {} is not 1 to 2^31 - 1", entry.id)));
            }
            if keys.iter().any(|k| k.id == entry.id) {
                return Err(invalid(format!("key id {} appears twice", entry.id)));
            }
            let key = base64::engine::general_purpose::STANDARD
                .decode(entry.key.trim())
                .map_err(|e| invalid(format!("key {} is not base64: {e}", entry.id)))?;
            if key.len() != KEK_LEN {
                return Err(invalid(format!(
                    "key {} has {} bytes, needs {KEK_LEN}",
                    entry.id,
                    key.len()
                )));
            }
            keys.push(Kek {
                id: entry.id,
                key: SecretSlice::from(key),
            });
        }
        if !keys.iter().any(|k| k.id == self.current) {
            return Err(invalid(format!(
                "the current key {} is not among the keys",
                self.current
            )));
        }
        Ok(TerminalKeks {
            current: self.current,
            keys,
        })
    }
}

fn new_kek_entry(id: u32) -> Result<KekFileEntry, SecretsError> {
    use ring::rand::SecureRandom as _;
    let mut raw = [0u8; KEK_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| SecretsError::Random)?;
    Ok(KekFileEntry {
        id,
        key: base64::engine::general_purpose::STANDARD.encode(raw),
    })
}

fn read_text(path: &Path) -> Result<String, SecretsError> {
    std::fs::read_to_string(path).map_err(|source| SecretsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads a JSON file.
///
/// # Errors
/// A missing file, not the expected JSON.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, SecretsError> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|source| SecretsError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Writes `value` as pretty JSON (see [`write_file`]).
///
/// # Errors
/// The write failed.
pub fn write_json<T: Serialize>(path: &Path, value: &T, secret: bool) -> Result<(), SecretsError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|source| SecretsError::Json {
        path: path.to_owned(),
        source,
    })?;
    text.push(b'\n');
    write_file(path, &text, secret)
}

/// Writes through a temporary file and a rename, so a reader never sees half a key file;
/// secret files are created with mode 0600, public ones 0644.
///
/// # Errors
/// The write failed.
pub fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), SecretsError> {
    let io = |source| SecretsError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let err = SecretsDir::new(dir.path())
            .voucher_public()
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains(VOUCHER_PUBLIC), "{err}");
    }

    #[test]
    fn secret_files_are_written_0600_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("x.secret");
        write_file(&path, b"s3cret", true).unwrap_or_else(|e| panic!("{e}"));
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        write_file(&path, b"again", true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&path).unwrap_or_default(), b"again");
    }

    #[test]
    fn kek_files_load_rotate_and_refuse_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(TERMINAL_KEK);
        let mut file = KekFile::generate().unwrap_or_else(|e| panic!("{e}"));
        write_json(&path, &file, true).unwrap_or_else(|e| panic!("{e}"));
        let keks = SecretsDir::new(dir.path())
            .terminal_keks()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((keks.current, keks.keys.len()), (1, 1));
        assert!(!format!("{file:?} {keks:?}").contains(&file.keys[0].key));

        // A new key is not current until told.
        assert_eq!(file.add_key().ok(), Some(2));
        let keks = file.check(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keks.current, 1);
        assert_ne!(file.keys[0].key, file.keys[1].key);

        let refused = |f: &KekFile| f.check(&path).map(|_| ()).unwrap_err().to_string();
        let mut bad = file.clone();
        bad.current = 3;
        assert!(refused(&bad).contains("current key 3"));
        let mut bad = file.clone();
        bad.keys[1].id = 1;
        assert!(refused(&bad).contains("twice"));
        let mut bad = file.clone();
        bad.keys[1].key = "c2hvcnQ=".into();
        assert!(refused(&bad).contains("needs 32"));
        let mut bad = file.clone();
        bad.keys[1].id = 0;
        assert!(refused(&bad).contains("key id 0"));
    }

    #[test]
    fn a_short_dynamic_code_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write_file(&dir.path().join(DYNAMIC_CODE_SECRET), b"c2hvcnQ=\n", true)
            .unwrap_or_else(|e| panic!("{e}"));
        let err = SecretsDir::new(dir.path())
            .dynamic_code_secret()
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }
}

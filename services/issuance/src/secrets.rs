//! Everything secret comes from files in one directory (`settings.secrets_dir`): production
//! mounts them (a Kubernetes secret), the demo and the tests generate them with
//! [`generate_dev_secrets`]. Keeping them out of the settings means they never end up in a
//! config file, an environment dump or a log line.
//!
//! | file | content | mode |
//! |---|---|---|
//! | `voucher-signing.json` | the current voucher signing key ([`SigningKeyFile`]) | 0600 |
//! | `voucher-public.json` | every active voucher verification key (`[PublicKey]`), published | 0644 |
//! | `idp-public.json` | the identity provider's keys (`[PublicKey]`) | 0644 |
//! | `dynamic-code.secret` | ≥ 32 random bytes, standard base64 | 0600 |
//! | `admin-keys.json` | `[{name, key_sha256, role, place}]`: administrators' API keys, hashed | 0600 |
//! | `idp-signing.json` | dev only: the dev identity provider's private key | 0600 |
//! | `admin-keys.plain.json` | dev only: the administrators' API keys in clear | 0600 |

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ring::rand::SecureRandom;
use secrecy::SecretSlice;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use voucher_core::identity::{self, Identity};
use voucher_core::keys::{KeyError, KeyId, PublicKey, SigningKey, SigningKeyFile};
use voucher_core::{PersonId, PlaceCode};

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

/// Every file [`generate_dev_secrets`] writes.
pub const ALL_FILES: [&str; 7] = [
    VOUCHER_SIGNING,
    VOUCHER_PUBLIC,
    IDP_PUBLIC,
    DYNAMIC_CODE_SECRET,
    ADMIN_KEYS,
    IDP_SIGNING,
    ADMIN_KEYS_PLAIN,
];

/// An administrator's scope: the province sees and manages everything in it; a city officer
/// only that city (and its counties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    /// 省: programs and every campaign of the province.
    Province,
    /// 市: campaigns of one city and its counties.
    City,
}

impl AdminRole {
    /// `province` or `city`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Province => "province",
            AdminRole::City => "city",
        }
    }
}

/// One line of `admin-keys.json`: the key is stored only as its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminKeyEntry {
    /// Who holds it (shown in logs and events).
    pub name: String,
    /// Lowercase hex SHA-256 of the key text.
    pub key_sha256: String,
    /// Province or city.
    pub role: AdminRole,
    /// The place the role applies to.
    pub place: PlaceCode,
}

/// An administrator key in clear (dev only: `admin-keys.plain.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainAdminKey {
    /// Who holds it.
    pub name: String,
    /// The key to send in `X-Api-Key`.
    pub key: String,
    /// Province or city.
    pub role: AdminRole,
    /// The place the role applies to.
    pub place: PlaceCode,
}

/// The secrets a running service needs.
pub struct Secrets {
    /// Signs voucher tokens.
    pub voucher_signing: SigningKey,
    /// Every active voucher key (published at `/v1/keys`).
    pub voucher_public: Vec<PublicKey>,
    /// The identity provider's keys.
    pub idp_public: Vec<PublicKey>,
    /// The dynamic-code MAC secret.
    pub dynamic_code_secret: SecretSlice<u8>,
    /// Administrators.
    pub admin_keys: Vec<AdminKeyEntry>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("voucher_signing", &self.voucher_signing)
            .field("voucher_public", &self.voucher_public)
            .field("admin_keys", &self.admin_keys.len())
            .finish_non_exhaustive()
    }
}

/// What [`generate_dev_secrets`] made, for the demo and the tests. Holds private keys: never
/// use it in production.
pub struct DevSecrets {
    /// The directory written.
    pub dir: PathBuf,
    /// The voucher signing key (kid 1).
    pub voucher_signing: SigningKey,
    /// The dev identity provider's signing key (mint resident tokens with [`DevSecrets::mint`]).
    pub idp_signing: SigningKey,
    /// The dynamic-code secret.
    pub dynamic_code_secret: Vec<u8>,
    /// Province administrator of Shanxi (140000).
    pub province_admin: PlainAdminKey,
    /// City administrator of Jincheng (140500).
    pub jincheng_admin: PlainAdminKey,
    /// City administrator of Taiyuan (140100).
    pub taiyuan_admin: PlainAdminKey,
}

impl DevSecrets {
    /// A resident identity token for `person` living in `home` with real-name level
    /// `level`, issued at `issued_at`, valid for `ttl`.
    pub fn mint(
        &self,
        person: &PersonId,
        home: PlaceCode,
        level: u8,
        issued_at: DateTime<Utc>,
        ttl: Duration,
    ) -> String {
        mint_identity(&self.idp_signing, person, home, level, issued_at, ttl)
    }
}

/// Mints a resident identity token with the given (dev) identity provider key.
pub fn mint_identity(
    idp: &SigningKey,
    person: &PersonId,
    home: PlaceCode,
    level: u8,
    issued_at: DateTime<Utc>,
    ttl: Duration,
) -> String {
    let who = Identity {
        person_id: person.clone(),
        home,
        real_name_level: level,
        expires_at: issued_at + ttl,
    };
    identity::mint(idp, &who, issued_at)
}

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

/// Loads the service's secrets from `dir`.
///
/// # Errors
/// A missing or malformed file.
pub fn load(dir: &Path) -> Result<Secrets, SecretsError> {
    let signing_path = dir.join(VOUCHER_SIGNING);
    let signing_file: SigningKeyFile = read_json(&signing_path)?;
    let voucher_signing =
        SigningKey::from_file(&signing_file).map_err(|source| SecretsError::Key {
            path: signing_path.clone(),
            source,
        })?;
    let voucher_public: Vec<PublicKey> = read_json(&dir.join(VOUCHER_PUBLIC))?;
    if !voucher_public
        .iter()
        .any(|k| k.kid == voucher_signing.kid())
    {
        return Err(SecretsError::Invalid {
            path: dir.join(VOUCHER_PUBLIC),
            reason: format!(
                "the current signing key {} is not published",
                voucher_signing.kid()
            ),
        });
    }
    let idp_public: Vec<PublicKey> = read_json(&dir.join(IDP_PUBLIC))?;
    let secret_path = dir.join(DYNAMIC_CODE_SECRET);
    let text = read_text(&secret_path)?;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| SecretsError::Invalid {
            path: secret_path.clone(),
            reason: format!("not base64: {e}"),
        })?;
    if secret.len() < 32 {
        return Err(SecretsError::Invalid {
            path: secret_path,
            reason: "needs at least 32 bytes".into(),
        });
    }
    let admin_path = dir.join(ADMIN_KEYS);
    let admin_keys: Vec<AdminKeyEntry> = read_json(&admin_path)?;
    for entry in &admin_keys {
        let ok = entry.key_sha256.len() == 64 && hex::decode(&entry.key_sha256).is_ok();
        if !ok {
            return Err(SecretsError::Invalid {
                path: admin_path,
                reason: format!("key_sha256 of {} is not 64 hex digits", entry.name),
            });
        }
    }
    Ok(Secrets {
        voucher_signing,
        voucher_public,
        idp_public,
        dynamic_code_secret: SecretSlice::from(secret),
        admin_keys,
    })
}

/// Loads the dev identity provider's private key (`idp-signing.json`).
///
/// # Errors
/// A missing or malformed file.
pub fn load_idp_signing(dir: &Path) -> Result<SigningKey, SecretsError> {
    let path = dir.join(IDP_SIGNING);
    let file: SigningKeyFile = read_json(&path)?;
    SigningKey::from_file(&file).map_err(|source| SecretsError::Key { path, source })
}

/// The files of [`ALL_FILES`] that already exist in `dir`.
pub fn existing_files(dir: &Path) -> Vec<PathBuf> {
    ALL_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect()
}

/// Writes a complete fresh set of secrets into `dir` (created if missing), overwriting what
/// is there: voucher key kid 1, a dev identity provider, a dynamic-code secret and three
/// administrators (Shanxi province 140000, Jincheng 140500, Taiyuan 140100).
///
/// # Errors
/// The random source or a write failed.
pub fn generate_dev_secrets(dir: &Path) -> Result<DevSecrets, SecretsError> {
    std::fs::create_dir_all(dir).map_err(|source| SecretsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let voucher_signing = generate_key(1, &dir.join(VOUCHER_SIGNING))?;
    let idp_signing = generate_key(1, &dir.join(IDP_SIGNING))?;
    let mut dynamic_code_secret = vec![0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut dynamic_code_secret)
        .map_err(|_| SecretsError::Random)?;

    let province_admin = new_admin_key("shanxi-province", AdminRole::Province, place(140_000)?)?;
    let jincheng_admin = new_admin_key("jincheng-city", AdminRole::City, place(140_500)?)?;
    let taiyuan_admin = new_admin_key("taiyuan-city", AdminRole::City, place(140_100)?)?;
    let plain = vec![
        province_admin.clone(),
        jincheng_admin.clone(),
        taiyuan_admin.clone(),
    ];
    let hashed: Vec<AdminKeyEntry> = plain
        .iter()
        .map(|k| AdminKeyEntry {
            name: k.name.clone(),
            key_sha256: sha256_hex(&k.key),
            role: k.role,
            place: k.place,
        })
        .collect();

    write_json(&dir.join(VOUCHER_SIGNING), &voucher_signing.to_file(), true)?;
    write_json(
        &dir.join(VOUCHER_PUBLIC),
        &vec![voucher_signing.public_key()],
        false,
    )?;
    write_json(&dir.join(IDP_SIGNING), &idp_signing.to_file(), true)?;
    write_json(
        &dir.join(IDP_PUBLIC),
        &vec![idp_signing.public_key()],
        false,
    )?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&dynamic_code_secret);
    write_file(
        &dir.join(DYNAMIC_CODE_SECRET),
        format!("{encoded}\n").as_bytes(),
        true,
    )?;
    write_json(&dir.join(ADMIN_KEYS), &hashed, true)?;
    write_json(&dir.join(ADMIN_KEYS_PLAIN), &plain, true)?;

    Ok(DevSecrets {
        dir: dir.to_owned(),
        voucher_signing,
        idp_signing,
        dynamic_code_secret,
        province_admin,
        jincheng_admin,
        taiyuan_admin,
    })
}

/// Key rotation: a new voucher signing key with the next key id becomes current; the old
/// public key stays in `voucher-public.json`, so vouchers it signed keep verifying. The
/// public file is written first, so a crash in between never leaves an unpublished current
/// key. Returns the new key id. Running services pick it up at their next start.
///
/// # Errors
/// A missing or malformed file, the random source, a write.
pub fn rotate(dir: &Path) -> Result<KeyId, SecretsError> {
    let signing_path = dir.join(VOUCHER_SIGNING);
    let current: SigningKeyFile = read_json(&signing_path)?;
    let public_path = dir.join(VOUCHER_PUBLIC);
    let mut public: Vec<PublicKey> = read_json(&public_path)?;
    let next_kid = public
        .iter()
        .map(|k| k.kid)
        .chain(std::iter::once(current.kid))
        .max()
        .unwrap_or(current.kid)
        .checked_add(1)
        .ok_or_else(|| SecretsError::Invalid {
            path: signing_path.clone(),
            reason: "key id overflow".into(),
        })?;
    let key = generate_key(next_kid, &signing_path)?;
    public.push(key.public_key());
    write_json(&public_path, &public, false)?;
    write_json(&signing_path, &key.to_file(), true)?;
    Ok(next_kid)
}

/// Lowercase hex SHA-256 of `text` (how administrator keys are stored).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

fn place(code: u32) -> Result<PlaceCode, SecretsError> {
    PlaceCode::try_from(code).map_err(|e| SecretsError::Invalid {
        path: PathBuf::from(ADMIN_KEYS),
        reason: e.to_string(),
    })
}

fn new_admin_key(
    name: &str,
    role: AdminRole,
    place: PlaceCode,
) -> Result<PlainAdminKey, SecretsError> {
    let mut raw = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| SecretsError::Random)?;
    let key = format!(
        "vpk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    Ok(PlainAdminKey {
        name: name.to_owned(),
        key,
        role,
        place,
    })
}

fn generate_key(kid: KeyId, path: &Path) -> Result<SigningKey, SecretsError> {
    SigningKey::generate(kid).map_err(|source| SecretsError::Key {
        path: path.to_owned(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, SecretsError> {
    std::fs::read_to_string(path).map_err(|source| SecretsError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, SecretsError> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|source| SecretsError::Json {
        path: path.to_owned(),
        source,
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T, secret: bool) -> Result<(), SecretsError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|source| SecretsError::Json {
        path: path.to_owned(),
        source,
    })?;
    text.push(b'\n');
    write_file(path, &text, secret)
}

/// Writes through a temporary file and a rename, so a reader never sees half a key file;
/// secret files are created with mode 0600.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), SecretsError> {
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
    fn sha256_hex_is_lowercase_hex_of_the_key() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn dev_places_are_the_documented_ones() {
        assert_eq!(place(140_500).unwrap().get(), 140_500);
        assert!(place(7).is_err());
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(err.to_string().contains(VOUCHER_SIGNING), "{err}");
    }

    #[test]
    fn secret_files_are_written_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.secret");
        write_file(&path, b"s3cret", true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_file(&path, b"again", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"again");
    }
}

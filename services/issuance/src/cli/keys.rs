//! Key generation and rotation, for `issuance keygen` and `issuance rotate-key`, and the
//! dev secrets the demo and the tests run with. Loading the files is the platform's
//! ([`voucher_platform::secrets`]); only this command line writes them.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ring::rand::SecureRandom;
use std::path::{Path, PathBuf};
use voucher_core::identity::{self, Identity};
use voucher_core::keys::{KeyId, PublicKey, SigningKey, SigningKeyFile};
use voucher_core::{AdminRole, PersonId, PlaceCode};
use voucher_platform::admin::{sha256_hex, AdminKeyEntry, PlainAdminKey};
use voucher_platform::secrets::{
    read_json, write_file, write_json, SecretsError, ADMIN_KEYS, ADMIN_KEYS_PLAIN,
    DYNAMIC_CODE_SECRET, IDP_PUBLIC, IDP_SIGNING, VOUCHER_PUBLIC, VOUCHER_SIGNING,
};
use voucher_platform::secrets::{KekFile, TERMINAL_KEK};

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
    /// County administrator of Yangcheng (140522, in Jincheng): role `city` at a county's code.
    pub yangcheng_admin: PlainAdminKey,
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

/// Writes a complete fresh set of secrets into `dir` (created if missing), overwriting what
/// is there: voucher key kid 1, a dev identity provider, a dynamic-code secret, four
/// administrators (Shanxi province 140000, Jincheng 140500, Taiyuan 140100, and Yangcheng
/// county 140522) and the
/// key-encryption key (id 1) that seals terminal secrets at rest.
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
    let yangcheng_admin = new_admin_key("yangcheng-county", AdminRole::City, place(140_522)?)?;
    let plain = vec![
        province_admin.clone(),
        jincheng_admin.clone(),
        taiyuan_admin.clone(),
        yangcheng_admin.clone(),
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
    write_json(&dir.join(TERMINAL_KEK), &KekFile::generate()?, true)?;

    Ok(DevSecrets {
        dir: dir.to_owned(),
        voucher_signing,
        idp_signing,
        dynamic_code_secret,
        province_admin,
        jincheng_admin,
        taiyuan_admin,
        yangcheng_admin,
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

#[cfg(test)]
mod tests {
    use super::*;
    use voucher_platform::secrets::SecretsDir;

    #[test]
    fn dev_places_are_the_documented_ones() {
        assert_eq!(place(140_500).unwrap().get(), 140_500);
        assert!(place(7).is_err());
    }

    #[test]
    fn generated_secrets_load_and_rotation_keeps_old_vouchers_verifiable() {
        let dir = tempfile::tempdir().unwrap();
        let dev = generate_dev_secrets(dir.path()).unwrap();
        let secrets = SecretsDir::new(dir.path());
        assert_eq!(secrets.voucher_signing().unwrap().kid(), 1);
        assert_eq!(secrets.admin_keys().unwrap().len(), 4);
        assert!(secrets.dynamic_code_secret().is_ok());
        assert_eq!(secrets.terminal_keks().unwrap().current, 1);
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TERMINAL_KEK))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(dev.province_admin.role, AdminRole::Province);
        let kid = rotate(dir.path()).unwrap();
        assert_eq!(kid, 2);
        let public: Vec<_> = secrets
            .voucher_public()
            .unwrap()
            .iter()
            .map(|k| k.kid)
            .collect();
        assert_eq!(public, vec![1, 2]);
        assert_eq!(secrets.voucher_signing().unwrap().kid(), 2);
    }
}

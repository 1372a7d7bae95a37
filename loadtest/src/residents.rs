//! Simulated residents: person ids and identity tokens minted with the dev identity
//! provider's key (the one `issuance keygen` writes as `idp-signing.json`).

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use std::path::Path;
use voucher_core::identity::{self, Identity};
use voucher_core::keys::SigningKey;
use voucher_core::{PersonId, PlaceCode};

/// A resident with a valid identity token.
#[derive(Debug, Clone)]
pub struct Resident {
    /// Person id.
    pub person_id: String,
    /// Bearer token.
    pub token: String,
}

/// Loads the dev identity provider's signing key from a secrets directory.
///
/// # Errors
/// Missing or invalid key file.
pub fn load_idp_key(secrets_dir: &Path) -> Result<SigningKey> {
    Ok(voucher_platform::secrets::SecretsDir::new(secrets_dir).idp_signing()?)
}

/// Mints `count` residents of `home` named `{prefix}{n:06}` with real-name level `level`.
///
/// # Errors
/// An id or place that does not parse.
pub fn mint(
    key: &SigningKey,
    prefix: &str,
    count: usize,
    home: PlaceCode,
    level: u8,
    now: DateTime<Utc>,
) -> Result<Vec<Resident>> {
    (1..=count)
        .map(|n| {
            let person_id = format!("{prefix}{n:06}");
            let who = Identity {
                person_id: PersonId::parse(&person_id).context("person id")?,
                home,
                real_name_level: level,
                expires_at: now + Duration::hours(12),
            };
            Ok(Resident {
                token: identity::mint(key, &who, now),
                person_id,
            })
        })
        .collect()
}

/// The benchmark's person id number `n`: 18 characters, the length of a resident identity
/// number, so that Redis memory per voucher is measured with realistic keys.
pub fn bench_person_id(n: usize) -> String {
    format!("1405{n:014}")
}

/// Mints `count` residents of `home` with ids [`bench_person_id`]`(1..=count)`, real-name
/// level 3, tokens valid 12 hours from `now`.
///
/// # Errors
/// An id or place that does not parse.
pub fn mint_bench(
    key: &SigningKey,
    count: usize,
    home: PlaceCode,
    now: DateTime<Utc>,
) -> Result<Vec<Resident>> {
    (1..=count)
        .map(|n| {
            let person_id = bench_person_id(n);
            let who = Identity {
                person_id: PersonId::parse(&person_id).context("person id")?,
                home,
                real_name_level: 3,
                expires_at: now + Duration::hours(12),
            };
            Ok(Resident {
                token: identity::mint(key, &who, now),
                person_id,
            })
        })
        .collect()
}

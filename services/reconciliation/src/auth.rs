//! Who runs a workflow step or reads a batch: an administrator identified by an API key, as
//! in the issuance service. The hashed key file (`admin-keys.json`: `[{name, key_sha256,
//! role, place}]`, written by `issuance keygen`) is the same; the key itself is read from a
//! file (`--api-key-file`, mode 0600) so that it never appears in a process list or shell
//! history. A province officer covers every city of the province; a city officer only its
//! city (and counties).

use crate::error::ReconError;
use serde::Deserialize;
use std::path::Path;
use voucher_core::PlaceCode;

/// An administrator's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 省: every city of the province.
    Province,
    /// 市: one city and its counties.
    City,
}

impl Role {
    /// `province` or `city`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Province => "province",
            Role::City => "city",
        }
    }
}

/// A verified administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// The key holder's name (recorded in each workflow step).
    pub name: String,
    /// Province or city.
    pub role: Role,
    /// The place the role applies to.
    pub place: PlaceCode,
}

impl Admin {
    /// Whether this administrator may act on and read the settlement of `city`.
    pub fn covers(&self, city: PlaceCode) -> bool {
        self.place.covers(city)
    }
}

#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    key_sha256: String,
    role: Role,
    place: PlaceCode,
}

/// The administrator holding the key in `key_file`, looked up in the hashed `admin_keys`
/// file. Every entry is compared in constant time.
///
/// # Errors
/// A file cannot be read or parsed; [`ReconError::UnknownApiKey`].
pub fn admin_from_files(admin_keys: &Path, key_file: &Path) -> Result<Admin, ReconError> {
    let key = read(key_file)?;
    let entries = read(admin_keys)?;
    let entries: Vec<Entry> = serde_json::from_str(&entries).map_err(|e| {
        ReconError::Usage(format!(
            "{}: not an admin key file: {e}",
            admin_keys.display()
        ))
    })?;
    find(&entries, key.trim())
}

fn read(path: &Path) -> Result<String, ReconError> {
    std::fs::read_to_string(path).map_err(|source| ReconError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn find(entries: &[Entry], key: &str) -> Result<Admin, ReconError> {
    if key.is_empty() {
        return Err(ReconError::UnknownApiKey);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut found = None;
    for e in entries {
        let Ok(stored) = hex::decode(&e.key_sha256) else {
            continue;
        };
        if stored.len() != digest.as_ref().len() {
            continue;
        }
        let diff = stored
            .iter()
            .zip(digest.as_ref())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 && found.is_none() {
            found = Some(Admin {
                name: e.name.clone(),
                role: e.role,
                place: e.place,
            });
        }
    }
    found.ok_or(ReconError::UnknownApiKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_by_its_hash_only() {
        let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, b"city-key"));
        let entries = vec![Entry {
            name: "jincheng".into(),
            key_sha256: digest,
            role: Role::City,
            place: PlaceCode::try_from(140_500).unwrap_or_else(|e| panic!("{e}")),
        }];
        assert_eq!(
            find(&entries, "city-key").map(|a| a.name).ok(),
            Some("jincheng".into())
        );
        assert!(find(&entries, "other").is_err());
        assert!(find(&entries, "").is_err());
    }
}

//! Administrators' API keys: who holds one, for which role and place. Keys are stored only
//! as SHA-256 hashes (`admin-keys.json`); a request sends the key in `X-Api-Key`, a command
//! reads it from a file. Every service checks keys the same way, here, and scopes what an
//! administrator sees and does to their place: a province officer covers the province's
//! cities and counties, a city officer the city and its counties. Neither the key nor its
//! hash is ever logged.

use crate::error::{ApiError, Common};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::{ready, Ready};
use serde::{Deserialize, Serialize};
use std::path::Path;
use voucher_core::{AdminRole, PlaceCode};

/// The header administrators send their key in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// One line of `admin-keys.json`: the key is stored only as its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminKeyEntry {
    /// Who holds it (shown in audit records).
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

/// A verified administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// The key holder's name.
    pub name: String,
    /// Province or city.
    pub role: AdminRole,
    /// The place the role applies to.
    pub place: PlaceCode,
}

impl Admin {
    /// Whether this administrator manages (and may see) `place`.
    pub fn can_manage(&self, place: PlaceCode) -> bool {
        self.place.covers(place)
    }

    /// [`Admin::can_manage`] as a result.
    ///
    /// # Errors
    /// `FORBIDDEN_PLACE`.
    pub fn require_place(&self, place: PlaceCode) -> Result<(), ApiError> {
        if self.can_manage(place) {
            Ok(())
        } else {
            Err(ApiError::new(Common::ForbiddenPlace)
                .with_message(format!("you do not manage place {place}"))
                .with_details(serde_json::json!({ "place": place })))
        }
    }

    /// The role must be `role`.
    ///
    /// # Errors
    /// `FORBIDDEN_ROLE`.
    pub fn require_role(&self, role: AdminRole) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::new(Common::ForbiddenRole)
                .with_message(format!("this needs the {} role", role.as_str()))
                .with_details(serde_json::json!({ "role": role.as_str() })))
        }
    }
}

/// The administrators' keys, by SHA-256 digest.
#[derive(Debug, Clone, Default)]
pub struct AdminKeys {
    entries: Vec<([u8; 32], Admin)>,
}

impl AdminKeys {
    /// From the entries of `admin-keys.json` (checked when loading; an entry whose hash does
    /// not decode is skipped).
    pub fn new(entries: &[AdminKeyEntry]) -> AdminKeys {
        let entries = entries
            .iter()
            .filter_map(|e| {
                let digest: [u8; 32] = hex::decode(&e.key_sha256).ok()?.try_into().ok()?;
                let admin = Admin {
                    name: e.name.clone(),
                    role: e.role,
                    place: e.place,
                };
                Some((digest, admin))
            })
            .collect();
        AdminKeys { entries }
    }

    /// The administrator holding `key`. Every entry is compared, in constant time, so the
    /// response time does not tell which entry (or how much of a digest) matched.
    pub fn find(&self, key: &str) -> Option<Admin> {
        let key = key.trim();
        if key.is_empty() {
            return None;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        let mut found = None;
        for (stored, admin) in &self.entries {
            let diff = stored
                .iter()
                .zip(digest.as_ref())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(admin.clone());
            }
        }
        found
    }

    /// The administrator whose key is in `key_file` (commands read keys from a file so that
    /// they never appear in a process list or a shell history).
    ///
    /// # Errors
    /// `None` inside `Ok` for an unknown key; `Err` when the file cannot be read.
    pub fn find_in_file(&self, key_file: &Path) -> std::io::Result<Option<Admin>> {
        Ok(self.find(&std::fs::read_to_string(key_file)?))
    }
}

/// Lowercase hex SHA-256 of `text` (how administrator keys are stored).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(admin(req))
    }
}

fn admin(req: &HttpRequest) -> Result<Admin, ApiError> {
    let keys = req
        .app_data::<web::Data<AdminKeys>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AdminKeys are not registered")))?;
    let key = req
        .headers()
        .get(API_KEY_HEADER)
        .ok_or_else(|| ApiError::new(Common::MissingApiKey))?;
    let key = key
        .to_str()
        .map_err(|_| ApiError::new(Common::ApiKeyInvalid))?
        .trim();
    if key.is_empty() {
        return Err(ApiError::new(Common::MissingApiKey));
    }
    keys.find(key)
        .ok_or_else(|| ApiError::new(Common::ApiKeyInvalid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(code: u32) -> PlaceCode {
        PlaceCode::try_from(code).unwrap_or_else(|e| panic!("{e}"))
    }

    fn keys() -> AdminKeys {
        AdminKeys::new(&[
            AdminKeyEntry {
                name: "p".into(),
                key_sha256: sha256_hex("prov-key"),
                role: AdminRole::Province,
                place: place(140_000),
            },
            AdminKeyEntry {
                name: "c".into(),
                key_sha256: sha256_hex("city-key"),
                role: AdminRole::City,
                place: place(140_500),
            },
        ])
    }

    #[test]
    fn keys_are_found_by_their_hash() {
        let k = keys();
        assert_eq!(k.find("city-key").map(|a| a.name), Some("c".into()));
        assert_eq!(
            k.find("prov-key").map(|a| a.role),
            Some(AdminRole::Province)
        );
        assert!(k.find("city-keyx").is_none());
        assert!(k.find("").is_none());
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_province_manages_its_cities_and_a_city_only_itself() {
        let k = keys();
        let province = k.find("prov-key").unwrap_or_else(|| panic!("province"));
        let jincheng = k.find("city-key").unwrap_or_else(|| panic!("city"));
        assert!(province.can_manage(place(140_522)));
        assert!(province.can_manage(place(140_100)));
        assert!(!province.can_manage(place(130_100)), "another province");
        assert!(jincheng.can_manage(place(140_522)), "a county of Jincheng");
        assert!(!jincheng.can_manage(place(140_100)), "Taiyuan");
        assert!(!jincheng.can_manage(place(140_000)), "the province itself");
        let refused = jincheng.require_role(AdminRole::Province).unwrap_err();
        assert_eq!(refused.code(), "FORBIDDEN_ROLE");
        let refused = jincheng.require_place(place(140_100)).unwrap_err();
        assert_eq!(refused.code(), "FORBIDDEN_PLACE");
    }
}

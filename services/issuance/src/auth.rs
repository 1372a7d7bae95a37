//! Who is calling. Residents send `Authorization: Bearer <identity token>` signed by the
//! identity provider ([`Resident`]); administrators send `X-Api-Key: <key>` ([`Admin`]),
//! checked against the SHA-256 hashes in `admin-keys.json`. Neither token nor key is ever
//! logged.

use crate::error::ApiError;
use crate::secrets::{AdminKeyEntry, AdminRole};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::{DateTime, Duration, Utc};
use futures::future::{ready, Ready};
use voucher_core::identity::{self, Identity, IdentityError};
use voucher_core::keys::Verifier;
use voucher_core::PlaceCode;

/// The header administrators send their key in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// A verified resident (from the bearer identity token, at the service clock's now).
#[derive(Debug, Clone)]
pub struct Resident(pub Identity);

impl FromRequest for Resident {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(resident(req))
    }
}

fn app_state(req: &HttpRequest) -> Result<&AppState, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .map(|d| d.get_ref())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState is not registered")))
}

fn resident(req: &HttpRequest) -> Result<Resident, ApiError> {
    let state = app_state(req)?;
    let token = bearer_token(req)?;
    let now = state.clock.now();
    state
        .identities
        .verify(&state.keys.idp_verifier, token, now)
        .map(Resident)
        .map_err(|e| match e {
            IdentityError::Expired => ApiError::IdentityExpired,
            _ => ApiError::IdentityInvalid,
        })
}

/// Identity tokens whose signature was verified recently. A token's bytes decide its
/// verification, so a token seen again within [`IdentityCache::REMEMBER`] is not verified
/// again; its expiry is still checked on every use. Only successes are remembered: a forged
/// token costs a full verification each time (and the per-IP rate limit).
pub struct IdentityCache {
    cache: Option<VerifiedTokens>,
}

/// SHA-256 of a token → the identity it carries and when its signature was verified.
type VerifiedTokens = quick_cache::sync::Cache<[u8; 32], (Identity, DateTime<Utc>)>;

impl IdentityCache {
    /// How long a verified token is remembered at most.
    pub const REMEMBER: Duration = Duration::minutes(5);

    /// A cache of `entries` tokens (0: no cache, every token is verified).
    pub fn new(entries: usize) -> IdentityCache {
        IdentityCache {
            cache: (entries > 0).then(|| quick_cache::sync::Cache::new(entries)),
        }
    }

    /// [`identity::verify`], remembering successes.
    ///
    /// # Errors
    /// [`IdentityError`].
    pub fn verify(
        &self,
        verifier: &Verifier,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, IdentityError> {
        let Some(cache) = &self.cache else {
            return identity::verify(verifier, token, now);
        };
        let mut key = [0u8; 32];
        key.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
        if let Some((who, verified_at)) = cache.get(&key) {
            if now >= who.expires_at {
                return Err(IdentityError::Expired);
            }
            if now >= verified_at && now < verified_at + Self::REMEMBER {
                return Ok(who);
            }
        }
        let who = identity::verify(verifier, token, now)?;
        cache.insert(key, (who.clone(), now));
        Ok(who)
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::MissingIdentity)?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::IdentityInvalid)?
        .trim();
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::MissingIdentity)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::MissingIdentity);
    }
    Ok(token)
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
    /// Whether this administrator manages `place`: the province covers its cities and
    /// counties, a city itself and its counties.
    pub fn can_manage(&self, place: PlaceCode) -> bool {
        self.place.covers(place)
    }

    /// [`Admin::can_manage`] as a result.
    ///
    /// # Errors
    /// [`ApiError::ForbiddenPlace`].
    pub fn require_place(&self, place: PlaceCode) -> Result<(), ApiError> {
        if self.can_manage(place) {
            Ok(())
        } else {
            Err(ApiError::ForbiddenPlace { place })
        }
    }

    /// The role must be `role`.
    ///
    /// # Errors
    /// [`ApiError::ForbiddenRole`].
    pub fn require_role(&self, role: AdminRole) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::ForbiddenRole { needed: role })
        }
    }
}

/// The administrators' keys, by SHA-256 digest.
#[derive(Debug, Clone, Default)]
pub struct AdminKeys {
    entries: Vec<([u8; 32], Admin)>,
}

impl AdminKeys {
    /// From the entries of `admin-keys.json` (whose hashes were checked when loading;
    /// an entry that does not decode is skipped).
    pub fn new(entries: &[AdminKeyEntry]) -> AdminKeys {
        let entries = entries
            .iter()
            .filter_map(|e| {
                let digest: [u8; 32] = hex::decode(&e.key_sha256).ok()?.try_into().ok()?;
                Some((
                    digest,
                    Admin {
                        name: e.name.clone(),
                        role: e.role,
                        place: e.place,
                    },
                ))
            })
            .collect();
        AdminKeys { entries }
    }

    /// The administrator holding `key`. Every entry is compared, in constant time, so the
    /// response time does not tell which entry (or how much of a digest) matched.
    pub fn find(&self, key: &str) -> Option<Admin> {
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
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(admin(req))
    }
}

fn admin(req: &HttpRequest) -> Result<Admin, ApiError> {
    let state = app_state(req)?;
    let key = req
        .headers()
        .get(API_KEY_HEADER)
        .ok_or(ApiError::MissingApiKey)?;
    let key = key.to_str().map_err(|_| ApiError::ApiKeyInvalid)?.trim();
    if key.is_empty() {
        return Err(ApiError::MissingApiKey);
    }
    state.admins.find(key).ok_or(ApiError::ApiKeyInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::sha256_hex;

    fn place(code: u32) -> PlaceCode {
        PlaceCode::try_from(code).unwrap()
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

    fn resident_token(
        idp: &voucher_core::keys::SigningKey,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> String {
        let who = Identity {
            person_id: voucher_core::PersonId::parse("p1").unwrap(),
            home: place(140_500),
            real_name_level: 2,
            expires_at: now + ttl,
        };
        identity::mint(idp, &who, now)
    }

    #[test]
    fn the_identity_cache_remembers_successes_and_still_checks_expiry() {
        let idp = voucher_core::keys::SigningKey::generate(1).unwrap();
        let verifier = Verifier::new([idp.public_key()]).unwrap();
        let t0 = Utc::now();
        let token = resident_token(&idp, t0, Duration::minutes(10));
        for cache in [IdentityCache::new(10), IdentityCache::new(0)] {
            let who = cache.verify(&verifier, &token, t0).unwrap();
            assert_eq!(
                cache
                    .verify(&verifier, &token, t0 + Duration::seconds(1))
                    .unwrap(),
                who
            );
            // Past its expiry the token is refused, remembered or not.
            assert_eq!(
                cache.verify(&verifier, &token, t0 + Duration::minutes(10)),
                Err(IdentityError::Expired)
            );
        }
        // A remembered token is verified again after REMEMBER: a verifier that no longer
        // knows the key then refuses it.
        let cache = IdentityCache::new(10);
        cache.verify(&verifier, &token, t0).unwrap();
        let rotated = Verifier::new([voucher_core::keys::SigningKey::generate(2)
            .unwrap()
            .public_key()])
        .unwrap();
        assert!(
            cache
                .verify(&rotated, &token, t0 + Duration::seconds(30))
                .is_ok(),
            "remembered"
        );
        assert!(
            cache
                .verify(&rotated, &token, t0 + IdentityCache::REMEMBER)
                .is_err(),
            "verified again"
        );
        // A forged token is never remembered as valid.
        let forged = resident_token(
            &voucher_core::keys::SigningKey::generate(1).unwrap(),
            t0,
            Duration::minutes(10),
        );
        assert!(cache.verify(&verifier, &forged, t0).is_err());
        assert!(cache.verify(&verifier, &forged, t0).is_err());
    }

    #[test]
    fn keys_are_found_by_their_hash() {
        let k = keys();
        assert_eq!(k.find("city-key").unwrap().name, "c");
        assert_eq!(k.find("prov-key").unwrap().role, AdminRole::Province);
        assert!(k.find("city-key ").is_none());
        assert!(k.find("").is_none());
    }

    #[test]
    fn the_province_manages_its_cities_and_a_city_only_itself() {
        let k = keys();
        let province = k.find("prov-key").unwrap();
        let jincheng = k.find("city-key").unwrap();
        assert!(province.can_manage(place(140_522)));
        assert!(province.can_manage(place(140_100)));
        assert!(!province.can_manage(place(130_100)), "another province");
        assert!(jincheng.can_manage(place(140_500)));
        assert!(jincheng.can_manage(place(140_522)), "a county of Jincheng");
        assert!(!jincheng.can_manage(place(140_100)), "Taiyuan");
        assert!(!jincheng.can_manage(place(140_000)), "the province itself");
        assert!(jincheng.require_role(AdminRole::Province).is_err());
    }
}

//! Residents' identities: the identity provider's keys, the clock, and the identity tokens
//! verified recently. The [`crate::auth::Resident`] extractor asks this (registered as app
//! data on its own) for every request with a bearer token.

use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use voucher_core::identity::{self, Identity, IdentityError};
use voucher_core::keys::Verifier;
use voucher_core::Clock;

/// What verifying a resident takes.
pub struct Identities {
    /// The identity provider's keys.
    pub verifier: Verifier,
    /// Tokens verified recently.
    pub cache: IdentityCache,
    /// Now (injectable for tests).
    pub clock: Arc<dyn Clock>,
}

impl Identities {
    /// The resident behind `token` at the clock's now.
    ///
    /// # Errors
    /// [`IdentityError`].
    pub fn verify(&self, token: &str) -> Result<Identity, IdentityError> {
        self.cache.verify(&self.verifier, token, self.clock.now())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use voucher_core::PlaceCode;

    fn place(code: u32) -> PlaceCode {
        PlaceCode::try_from(code).unwrap()
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
}

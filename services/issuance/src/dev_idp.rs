//! The dev identity provider's sign-in, for the demo: `POST /v1/dev/sign-in` mints a
//! resident identity token with the dev key, as the province's identity platform would. It
//! exists only when `dev_idp.enabled` is set (the demo), and only then is the dev key loaded;
//! in production the route answers 404 and residents arrive with a token handed over by the
//! province's app.

use crate::error::ApiError;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use voucher_core::identity::{self, Identity};
use voucher_core::keys::SigningKey;
use voucher_core::{Clock, PersonId, PlaceCode};

/// The dev identity provider (registered as app data only when enabled).
pub struct DevIdp {
    /// The dev key (`idp-signing.json`).
    pub key: SigningKey,
    /// Token lifetime.
    pub ttl: Duration,
    /// Now.
    pub clock: std::sync::Arc<dyn Clock>,
}

/// `POST /v1/dev/sign-in` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevSignIn {
    /// The resident's id (1–64 characters).
    pub person_id: String,
    /// Home place code (e.g. 140500).
    pub home: u32,
    /// Real-name verification level, 0–3.
    pub real_name_level: u8,
}

/// A dev identity token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DevToken {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Always `true`: a development sign-in.
    pub dev: bool,
}

impl DevIdp {
    /// Mints a token for the body's resident.
    ///
    /// # Errors
    /// `INVALID_FIELD` for a bad person id, place or level.
    pub fn sign_in(&self, body: &DevSignIn) -> Result<DevToken, ApiError> {
        let person_id = PersonId::parse(&body.person_id)
            .map_err(|e| ApiError::invalid_field("person_id", e))?;
        let home =
            PlaceCode::try_from(body.home).map_err(|e| ApiError::invalid_field("home", e))?;
        if body.real_name_level > 3 {
            return Err(ApiError::invalid_field("real_name_level", "must be 0-3"));
        }
        let now = self.clock.now();
        let who = Identity {
            person_id,
            home,
            real_name_level: body.real_name_level,
            expires_at: now + self.ttl,
        };
        Ok(DevToken {
            token: identity::mint(&self.key, &who, now),
            expires_at: who.expires_at,
            dev: true,
        })
    }
}

//! Who is calling. Residents send `Authorization: Bearer <identity token>` signed by the
//! identity provider ([`Resident`], verified by [`crate::identities::Identities`]);
//! administrators send `X-Api-Key` (the platform's [`voucher_platform::admin::Admin`]).
//! Neither token nor key is ever logged.

use crate::error::{ApiError, Code};
use crate::identities::Identities;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::{ready, Ready};
use voucher_core::identity::{Identity, IdentityError};
pub use voucher_platform::admin::Admin;

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

fn resident(req: &HttpRequest) -> Result<Resident, ApiError> {
    let identities = req
        .app_data::<web::Data<Identities>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("Identities are not registered")))?;
    let token = bearer_token(req)?;
    identities.verify(token).map(Resident).map_err(|e| {
        ApiError::new(match e {
            IdentityError::Expired => Code::IdentityExpired,
            _ => Code::IdentityInvalid,
        })
    })
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let missing = || ApiError::new(Code::MissingIdentity);
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::new(Code::IdentityInvalid))?
        .trim();
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

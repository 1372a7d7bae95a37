//! Residents' routes (bearer identity token) and the public key list.

use crate::auth::Resident;
use crate::catalog::{self, ResidentCampaign};
use crate::claims::{self, ClaimBody, ClaimResponse};
use crate::dev_idp::{DevIdp, DevSignIn, DevToken};
use crate::error::{ApiError, ErrorBody};
use crate::history::{self, History};
use crate::state::AppState;
use crate::vouchers::{self, CodeKeyResponse, CodeResponse, MyVoucher};
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use voucher_core::{CampaignId, ClaimId};
use voucher_platform::extract::ApiJson;

/// Registers the residents' routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/campaigns", web::get().to(list_campaigns))
        .route("/v1/campaigns/{id}/claims", web::post().to(claim))
        .route("/v1/me/vouchers", web::get().to(my_vouchers))
        .route(
            "/v1/me/vouchers/{voucher_id}/code",
            web::get().to(voucher_code),
        )
        .route(
            "/v1/me/vouchers/{voucher_id}/code-key",
            web::get().to(voucher_code_key),
        )
        .route(
            "/v1/me/vouchers/{voucher_id}/code-key/revoke",
            web::post().to(revoke_voucher_code_key),
        )
        .route("/v1/me/history", web::get().to(history))
        .route("/v1/keys", web::get().to(keys))
        .route("/v1/time", web::get().to(time))
        .route("/v1/dev/sign-in", web::post().to(dev_sign_in));
}

/// The code key of my voucher, for computing its dynamic codes offline (see
/// [`crate::vouchers`]).
#[utoipa::path(get, path = "/v1/me/vouchers/{voucher_id}/code-key", tag = "residents", security(("bearer" = [])),
    params(("voucher_id" = uuid::Uuid, Path, description = "Voucher id")),
    responses(
        (status = 200, body = CodeKeyResponse),
        (status = 401, description = "MISSING_IDENTITY, IDENTITY_EXPIRED, IDENTITY_INVALID", body = ErrorBody),
        (status = 404, description = "VOUCHER_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "VOUCHER_NOT_USABLE", body = ErrorBody),
    ))]
pub async fn voucher_code_key(
    state: web::Data<AppState>,
    who: Resident,
    voucher_id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(vouchers::code_key(&state, &who.0, voucher_id.into_inner()).await?))
}

/// Revokes my voucher's code key (a lost phone) and answers the new one; tills refuse codes
/// of the old key from now on.
#[utoipa::path(post, path = "/v1/me/vouchers/{voucher_id}/code-key/revoke", tag = "residents", security(("bearer" = [])),
    params(("voucher_id" = uuid::Uuid, Path, description = "Voucher id")),
    responses(
        (status = 200, body = CodeKeyResponse),
        (status = 404, description = "VOUCHER_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "VOUCHER_NOT_USABLE", body = ErrorBody),
    ))]
pub async fn revoke_voucher_code_key(
    state: web::Data<AppState>,
    who: Resident,
    voucher_id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(vouchers::revoke_code_key(&state, &who.0, voucher_id.into_inner()).await?))
}

/// What I spent with vouchers, where, and how much I saved.
#[utoipa::path(get, path = "/v1/me/history", tag = "residents", security(("bearer" = [])),
    responses((status = 200, body = History), (status = 401, body = ErrorBody)))]
pub async fn history(state: web::Data<AppState>, who: Resident) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(history::mine(&state, &who.0).await?))
}

/// The service's clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct Now {
    /// Now, RFC 3339 with milliseconds.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The service's clock: rounds open by it, so the phone's countdown is driven by it.
#[utoipa::path(get, path = "/v1/time", tag = "residents", responses((status = 200, body = Now)))]
pub async fn time(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(Now {
            now: crate::claims::to_millis(state.clock.now()),
        })
}

/// Dev sign-in (demo only): a resident identity token from the dev identity provider.
#[utoipa::path(post, path = "/v1/dev/sign-in", tag = "residents", request_body = DevSignIn,
    responses(
        (status = 200, body = DevToken),
        (status = 400, description = "INVALID_FIELD", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: the dev identity provider is off (production)", body = ErrorBody),
    ))]
pub async fn dev_sign_in(
    req: actix_web::HttpRequest,
    idp: Option<web::Data<DevIdp>>,
    body: ApiJson<DevSignIn>,
) -> Result<HttpResponse, ApiError> {
    let idp = idp.ok_or_else(|| ApiError::route_not_found(req.method().as_str(), req.path()))?;
    Ok(HttpResponse::Ok().json(idp.sign_in(&body.0)?))
}

/// The campaigns I may claim now or in a coming round.
#[utoipa::path(get, path = "/v1/campaigns", tag = "residents", security(("bearer" = [])),
    responses(
        (status = 200, description = "Active claim campaigns the caller is eligible for", body = [ResidentCampaign]),
        (status = 401, description = "MISSING_IDENTITY, IDENTITY_EXPIRED, IDENTITY_INVALID", body = ErrorBody),
    ))]
pub async fn list_campaigns(
    state: web::Data<AppState>,
    who: Resident,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(catalog::campaigns_for(&state, &who.0).await?))
}

/// Claims a voucher. Idempotent on `claim_id`: a retry returns the first voucher (200).
#[utoipa::path(post, path = "/v1/campaigns/{id}/claims", tag = "residents", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Campaign id")),
    request_body = ClaimBody,
    responses(
        (status = 201, description = "A new voucher", body = ClaimResponse),
        (status = 200, description = "A retried claim: the first voucher, `replayed: true`", body = ClaimResponse),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD", body = ErrorBody),
        (status = 401, description = "MISSING_IDENTITY, IDENTITY_EXPIRED, IDENTITY_INVALID", body = ErrorBody),
        (status = 403, description = "NOT_ELIGIBLE (details.reason: place | real_name_level)", body = ErrorBody),
        (status = 404, description = "CAMPAIGN_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "ROUND_NOT_OPEN, SOLD_OUT, PER_PERSON_LIMIT, CAMPAIGN_PAUSED, CLAIM_ID_CONFLICT, CAMPAIGN_NOT_CLAIMABLE", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED (Retry-After)", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE, DEADLINE_EXCEEDED, HOT_STATE_LOST (Redis lost the campaign's claim state; claims resume after `reconciliation rebuild`; details.campaign_id) — all with Retry-After: retry with the same claim_id", body = ErrorBody),
    ))]
pub async fn claim(
    state: web::Data<AppState>,
    who: Resident,
    id: web::Path<i64>,
    body: ApiJson<ClaimBody>,
) -> Result<HttpResponse, ApiError> {
    let result = claims::claim(
        &state,
        &who.0,
        CampaignId(id.into_inner()),
        ClaimId(body.0.claim_id),
    )
    .await?;
    let mut response = if result.replayed {
        HttpResponse::Ok()
    } else {
        HttpResponse::Created()
    };
    Ok(response.json(result))
}

/// My vouchers, newest first (from the record: a voucher claimed a moment ago may take
/// a fraction of a second to appear).
#[utoipa::path(get, path = "/v1/me/vouchers", tag = "residents", security(("bearer" = [])),
    responses(
        (status = 200, body = [MyVoucher]),
        (status = 401, description = "MISSING_IDENTITY, IDENTITY_EXPIRED, IDENTITY_INVALID", body = ErrorBody),
    ))]
pub async fn my_vouchers(
    state: web::Data<AppState>,
    who: Resident,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(vouchers::list_mine(&state, &who.0).await?))
}

/// The dynamic code of my voucher, to show as a QR code at checkout.
#[utoipa::path(get, path = "/v1/me/vouchers/{voucher_id}/code", tag = "residents", security(("bearer" = [])),
    params(("voucher_id" = uuid::Uuid, Path, description = "Voucher id")),
    responses(
        (status = 200, body = CodeResponse),
        (status = 401, description = "MISSING_IDENTITY, IDENTITY_EXPIRED, IDENTITY_INVALID", body = ErrorBody),
        (status = 404, description = "VOUCHER_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "VOUCHER_NOT_USABLE", body = ErrorBody),
    ))]
pub async fn voucher_code(
    state: web::Data<AppState>,
    who: Resident,
    voucher_id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(vouchers::dynamic_code(&state, &who.0, voucher_id.into_inner()).await?))
}

/// A published voucher verification key.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedKey {
    /// Key id (inside every token).
    pub kid: u32,
    /// Ed25519 public key, base64url without padding.
    pub public_key: String,
    /// Tokens of this key are refused after this instant (`null`: no end).
    pub not_after: Option<chrono::DateTime<chrono::Utc>>,
}

/// The voucher public keys, for verifying tokens offline (no authentication).
#[utoipa::path(get, path = "/v1/keys", tag = "residents", responses((status = 200, body = [PublishedKey])))]
pub async fn keys(state: web::Data<AppState>) -> HttpResponse {
    let keys: Vec<PublishedKey> = state
        .keys
        .voucher_verifier
        .public_keys()
        .into_iter()
        .map(|k| PublishedKey {
            kid: k.kid,
            public_key: k.public_key,
            not_after: k.not_after,
        })
        .collect();
    HttpResponse::Ok().json(keys)
}

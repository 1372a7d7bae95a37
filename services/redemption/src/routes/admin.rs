//! Administrators' routes (`X-Api-Key`, scoped to the merchant's place): merchants,
//! program approvals, terminals.

use crate::error::{ApiError, ErrorBody};
use crate::merchants::{self, Approval, NewMerchant, TerminalCredentials};
use crate::pairing::{self, PairingCode};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use uuid::Uuid;
use voucher_platform::admin::Admin;
use voucher_platform::extract::ApiJson;

/// Registers the administrators' routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/merchants", web::post().to(create))
        .route("/v1/admin/merchants/{id}", web::get().to(get))
        .route(
            "/v1/admin/merchants/{id}/approvals",
            web::post().to(approve),
        )
        .route(
            "/v1/admin/merchants/{id}/terminals",
            web::post().to(create_terminal),
        )
        .route(
            "/v1/admin/merchants/{id}/terminals/{terminal}/rotate",
            web::post().to(rotate),
        )
        .route(
            "/v1/admin/merchants/{id}/terminals/{terminal}/revoke",
            web::post().to(revoke),
        )
        .route(
            "/v1/admin/merchants/{id}/pairings",
            web::post().to(create_pairing),
        );
}

/// Creates a terminal for a web till and a one-time pairing code for it (the till's browser
/// exchanges the code for the key; the secret never passes through the administrator).
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/pairings", tag = "admin", security(("api_key" = [])),
    params(("id" = String, Path, description = "Merchant id")),
    responses((status = 201, body = PairingCode), (status = 401, body = ErrorBody),
        (status = 404, description = "MERCHANT_NOT_FOUND", body = ErrorBody)))]
pub async fn create_pairing(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(pairing::create(&state, &who, &id).await?))
}

/// Creates a merchant in a place the caller manages.
#[utoipa::path(post, path = "/v1/admin/merchants", tag = "admin", security(("api_key" = [])), request_body = NewMerchant,
    responses((status = 201, description = "the merchant"), (status = 400, description = "MALFORMED_JSON, INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 409, description = "MERCHANT_EXISTS", body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    who: Admin,
    body: ApiJson<NewMerchant>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(merchants::create(&state, &who, body.0).await?))
}

/// One merchant with its approvals.
#[utoipa::path(get, path = "/v1/admin/merchants/{id}", tag = "admin", security(("api_key" = [])),
    params(("id" = String, Path, description = "Merchant id")),
    responses((status = 200, description = "the merchant"), (status = 404, description = "MERCHANT_NOT_FOUND", body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(merchants::get(&state, &who, &id).await?))
}

/// Approves a merchant for a program.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/approvals", tag = "admin", security(("api_key" = [])), request_body = Approval,
    params(("id" = String, Path, description = "Merchant id")),
    responses((status = 200, description = "the merchant"), (status = 404, description = "MERCHANT_NOT_FOUND, PROGRAM_NOT_FOUND", body = ErrorBody)))]
pub async fn approve(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<String>,
    body: ApiJson<Approval>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(merchants::approve(&state, &who, &id, body.0.program_id).await?))
}

/// Creates a terminal; the answer holds its HMAC secret, shown only this once.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/terminals", tag = "admin", security(("api_key" = [])),
    params(("id" = String, Path, description = "Merchant id")),
    responses((status = 201, body = TerminalCredentials), (status = 404, body = ErrorBody)))]
pub async fn create_terminal(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(merchants::create_terminal(&state, &who, &id).await?))
}

/// Rotates a terminal's key (new key id and secret, shown once; the old key stops at once).
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/terminals/{terminal}/rotate", tag = "admin", security(("api_key" = [])),
    params(("id" = String, Path, description = "Merchant id"), ("terminal" = Uuid, Path, description = "Terminal id")),
    responses((status = 200, body = TerminalCredentials), (status = 404, description = "TERMINAL_NOT_FOUND", body = ErrorBody)))]
pub async fn rotate(
    state: web::Data<AppState>,
    who: Admin,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, terminal) = path.into_inner();
    Ok(HttpResponse::Ok().json(merchants::rotate_terminal(&state, &who, &id, terminal).await?))
}

/// Revokes a terminal.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/terminals/{terminal}/revoke", tag = "admin", security(("api_key" = [])),
    params(("id" = String, Path, description = "Merchant id"), ("terminal" = Uuid, Path, description = "Terminal id")),
    responses((status = 204), (status = 404, description = "TERMINAL_NOT_FOUND", body = ErrorBody)))]
pub async fn revoke(
    state: web::Data<AppState>,
    who: Admin,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, terminal) = path.into_inner();
    merchants::revoke_terminal(&state, &who, &id, terminal).await?;
    Ok(HttpResponse::NoContent().finish())
}

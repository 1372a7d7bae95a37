//! Administrators' routes (`X-Api-Key`): programs, campaigns, rounds, pause/resume, counters
//! and bulk issuance.

use crate::admin::{self, CampaignWithCounters, CountersResponse, NewRoundBody};
use crate::auth::Admin;
use crate::bulk::{self, BulkReport};
use crate::error::{ApiError, ErrorBody};
use crate::schemas::{CampaignSchema, NewCampaignSchema, NewProgramSchema, ProgramSchema};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use voucher_core::{CampaignId, CampaignStatus, NewCampaign, NewProgram, ProgramId};
use voucher_platform::extract::{ApiJson, CsvBody};

/// Registers the administrators' routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/programs", web::post().to(create_program))
        .route("/v1/admin/programs", web::get().to(list_programs))
        .route("/v1/admin/programs/{id}", web::get().to(get_program))
        .route("/v1/admin/campaigns", web::post().to(create_campaign))
        .route("/v1/admin/campaigns", web::get().to(list_campaigns))
        .route("/v1/admin/campaigns/{id}", web::get().to(get_campaign))
        .route("/v1/admin/campaigns/{id}/rounds", web::post().to(add_round))
        .route("/v1/admin/campaigns/{id}/pause", web::post().to(pause))
        .route("/v1/admin/campaigns/{id}/resume", web::post().to(resume))
        .route("/v1/admin/campaigns/{id}/counters", web::get().to(counters))
        .route(
            "/v1/admin/campaigns/{id}/bulk-issuances",
            web::post().to(bulk_issue),
        );
}

/// Creates a program (province administrators only).
#[utoipa::path(post, path = "/v1/admin/programs", tag = "admin", security(("api_key" = [])),
    request_body = NewProgramSchema,
    responses(
        (status = 201, body = ProgramSchema),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD", body = ErrorBody),
        (status = 401, description = "MISSING_API_KEY, API_KEY_INVALID", body = ErrorBody),
        (status = 403, description = "FORBIDDEN_ROLE, FORBIDDEN_PLACE", body = ErrorBody),
    ))]
pub async fn create_program(
    state: web::Data<AppState>,
    who: Admin,
    body: ApiJson<NewProgram>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(admin::create_program(&state, &who, body.0).await?))
}

/// Every program.
#[utoipa::path(get, path = "/v1/admin/programs", tag = "admin", security(("api_key" = [])),
    responses((status = 200, body = [ProgramSchema]), (status = 401, body = ErrorBody)))]
pub async fn list_programs(
    state: web::Data<AppState>,
    _who: Admin,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::list_programs(&state).await?))
}

/// One program.
#[utoipa::path(get, path = "/v1/admin/programs/{id}", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Program id")),
    responses((status = 200, body = ProgramSchema), (status = 401, body = ErrorBody), (status = 404, description = "PROGRAM_NOT_FOUND", body = ErrorBody)))]
pub async fn get_program(
    state: web::Data<AppState>,
    _who: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::get_program(&state, ProgramId(id.into_inner())).await?))
}

/// Creates a campaign in a place the caller manages.
#[utoipa::path(post, path = "/v1/admin/campaigns", tag = "admin", security(("api_key" = [])),
    request_body = NewCampaignSchema,
    responses(
        (status = 201, body = CampaignSchema),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD", body = ErrorBody),
        (status = 401, description = "MISSING_API_KEY, API_KEY_INVALID", body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "PROGRAM_NOT_FOUND", body = ErrorBody),
    ))]
pub async fn create_campaign(
    state: web::Data<AppState>,
    who: Admin,
    body: ApiJson<NewCampaign>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(admin::create_campaign(&state, &who, body.0).await?))
}

/// The campaigns within the caller's place.
#[utoipa::path(get, path = "/v1/admin/campaigns", tag = "admin", security(("api_key" = [])),
    responses((status = 200, body = [CampaignSchema]), (status = 401, body = ErrorBody)))]
pub async fn list_campaigns(
    state: web::Data<AppState>,
    who: Admin,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::list_campaigns(&state, &who).await?))
}

/// One campaign with its live counters.
#[utoipa::path(get, path = "/v1/admin/campaigns/{id}", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, body = CampaignWithCounters),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "CAMPAIGN_NOT_FOUND", body = ErrorBody),
    ))]
pub async fn get_campaign(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(admin::get_campaign(&state, &who, CampaignId(id.into_inner())).await?))
}

/// Appends a release round.
#[utoipa::path(post, path = "/v1/admin/campaigns/{id}/rounds", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Campaign id")),
    request_body = NewRoundBody,
    responses(
        (status = 201, body = CampaignSchema),
        (status = 400, description = "INVALID_FIELD (rounds)", body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "CAMPAIGN_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "ROUND_CONFLICT", body = ErrorBody),
    ))]
pub async fn add_round(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<i64>,
    body: ApiJson<NewRoundBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created()
        .json(admin::add_round(&state, &who, CampaignId(id.into_inner()), body.0).await?))
}

/// Pauses claims.
#[utoipa::path(post, path = "/v1/admin/campaigns/{id}/pause", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Campaign id")),
    responses((status = 200, body = CampaignSchema), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn pause(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = CampaignId(id.into_inner());
    Ok(HttpResponse::Ok().json(admin::set_status(&state, &who, id, CampaignStatus::Paused).await?))
}

/// Resumes claims.
#[utoipa::path(post, path = "/v1/admin/campaigns/{id}/resume", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Campaign id")),
    responses((status = 200, body = CampaignSchema), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn resume(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = CampaignId(id.into_inner());
    Ok(HttpResponse::Ok().json(admin::set_status(&state, &who, id, CampaignStatus::Active).await?))
}

/// Live counters (Redis) and persisted counts (PostgreSQL).
#[utoipa::path(get, path = "/v1/admin/campaigns/{id}/counters", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Campaign id")),
    responses((status = 200, body = CountersResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn counters(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::counters(&state, &who, CampaignId(id.into_inner())).await?))
}

/// Issues a list campaign's vouchers to the persons of a CSV (`person_id` column).
/// Re-uploading the same file is safe: persons already issued are skipped.
#[utoipa::path(post, path = "/v1/admin/campaigns/{id}/bulk-issuances", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Campaign id")),
    request_body(content = String, content_type = "text/csv", description = "person_id\\nR000001\\nR000002\\n"),
    responses(
        (status = 200, body = BulkReport),
        (status = 400, description = "INVALID_FIELD (header)", body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "CAMPAIGN_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "CAMPAIGN_NOT_LIST, CAMPAIGN_PAUSED", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE (bytes or rows)", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE (needs text/csv)", body = ErrorBody),
    ))]
pub async fn bulk_issue(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<i64>,
    body: CsvBody,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(bulk::issue(&state, &who, CampaignId(id.into_inner()), &body.0).await?))
}

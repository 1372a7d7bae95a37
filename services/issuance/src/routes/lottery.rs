//! Lottery rounds (报名摇号): residents register (bearer identity token) and read their
//! entry; anyone reads a round's public state and, after the draw, the published draw;
//! administrators (`X-Api-Key`, place-scoped) draw.

use crate::auth::{Admin, Resident};
use crate::error::{ApiError, ErrorBody};
use crate::lottery::draw::{self, DrawReport};
use crate::lottery::registration::{self, MyLottery, RegistrationView};
use crate::lottery::{self, LotteryState};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use voucher_core::CampaignId;

/// Registers the lottery routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/campaigns/{id}/rounds/{round_no}/registrations",
        web::post().to(register),
    )
    .route(
        "/v1/campaigns/{id}/rounds/{round_no}/registrations/me",
        web::get().to(my_registration),
    )
    .route(
        "/v1/campaigns/{id}/rounds/{round_no}/lottery",
        web::get().to(lottery_state),
    )
    .route(
        "/v1/campaigns/{id}/rounds/{round_no}/draw",
        web::get().to(published_draw),
    )
    .route(
        "/v1/admin/campaigns/{id}/rounds/{round_no}/draw",
        web::post().to(draw_round),
    );
}

fn ids(path: web::Path<(i64, u32)>) -> (CampaignId, u32) {
    let (id, round_no) = path.into_inner();
    (CampaignId(id), round_no)
}

/// Registers for a lottery round (one entry per person). Repeating it, from any device,
/// answers the same entry with 200.
#[utoipa::path(post, path = "/v1/campaigns/{id}/rounds/{round_no}/registrations", tag = "residents", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Campaign id"), ("round_no" = u32, Path, description = "Round number")),
    responses(
        (status = 201, description = "A new entry", body = RegistrationView),
        (status = 200, description = "Already registered: the same entry, `replayed: true`", body = RegistrationView),
        (status = 401, description = "MISSING_IDENTITY, IDENTITY_EXPIRED, IDENTITY_INVALID", body = ErrorBody),
        (status = 403, description = "NOT_ELIGIBLE (details.reason: place | real_name_level)", body = ErrorBody),
        (status = 404, description = "CAMPAIGN_NOT_FOUND, ROUND_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "ROUND_NOT_LOTTERY, CAMPAIGN_PAUSED, PER_PERSON_LIMIT (already holds the most vouchers one person may), REGISTRATION_NOT_OPEN (details.registration_opens_at), REGISTRATION_CLOSED (details.registration_closes_at)", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED (Retry-After)", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE: retry (idempotent)", body = ErrorBody),
    ))]
pub async fn register(
    state: web::Data<AppState>,
    who: Resident,
    path: web::Path<(i64, u32)>,
) -> Result<HttpResponse, ApiError> {
    let (id, round_no) = ids(path);
    let entry = registration::register(&state, &who.0, id, round_no).await?;
    let mut response = if entry.replayed {
        HttpResponse::Ok()
    } else {
        HttpResponse::Created()
    };
    Ok(response.json(entry))
}

/// My entry in a lottery round and, after the draw, my result, with the round's state.
#[utoipa::path(get, path = "/v1/campaigns/{id}/rounds/{round_no}/registrations/me", tag = "residents", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Campaign id"), ("round_no" = u32, Path, description = "Round number")),
    responses(
        (status = 200, body = MyLottery),
        (status = 401, description = "MISSING_IDENTITY, IDENTITY_EXPIRED, IDENTITY_INVALID", body = ErrorBody),
        (status = 404, description = "CAMPAIGN_NOT_FOUND, ROUND_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "ROUND_NOT_LOTTERY", body = ErrorBody),
    ))]
pub async fn my_registration(
    state: web::Data<AppState>,
    who: Resident,
    path: web::Path<(i64, u32)>,
) -> Result<HttpResponse, ApiError> {
    let (id, round_no) = ids(path);
    Ok(HttpResponse::Ok().json(registration::mine(&state, &who.0, id, round_no).await?))
}

/// A lottery round's public state: window, commitment, entries so far; after the draw the
/// seed and the number of winners. No authentication.
#[utoipa::path(get, path = "/v1/campaigns/{id}/rounds/{round_no}/lottery", tag = "residents",
    params(("id" = i64, Path, description = "Campaign id"), ("round_no" = u32, Path, description = "Round number")),
    responses(
        (status = 200, body = LotteryState),
        (status = 404, description = "CAMPAIGN_NOT_FOUND, ROUND_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "ROUND_NOT_LOTTERY", body = ErrorBody),
    ))]
pub async fn lottery_state(
    state: web::Data<AppState>,
    path: web::Path<(i64, u32)>,
) -> Result<HttpResponse, ApiError> {
    let (id, round_no) = ids(path);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(lottery::public_state(&state, id, round_no).await?))
}

/// The published draw: commitment, seed, every entry's hash (ascending), quantity and the
/// winners in draw order. No authentication. Check it with `issuance verify-draw --file`.
#[utoipa::path(get, path = "/v1/campaigns/{id}/rounds/{round_no}/draw", tag = "residents",
    params(("id" = i64, Path, description = "Campaign id"), ("round_no" = u32, Path, description = "Round number")),
    responses(
        (status = 200, description = "`{algorithm, campaign_id, round_no, quantity, commitment, seed, drawn_at, registration_hashes, winners}`", body = Object),
        (status = 404, description = "CAMPAIGN_NOT_FOUND, ROUND_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "ROUND_NOT_LOTTERY, NOT_YET_DRAWN (details.draw_from)", body = ErrorBody),
    ))]
pub async fn published_draw(
    state: web::Data<AppState>,
    path: web::Path<(i64, u32)>,
) -> Result<HttpResponse, ApiError> {
    let (id, round_no) = ids(path);
    Ok(HttpResponse::Ok().json(lottery::published_draw(&state, id, round_no).await?))
}

/// Draws a lottery round (once: calling again answers the same draw) and issues the
/// winners' vouchers; winners still pending after a store failure are issued by the next call.
#[utoipa::path(post, path = "/v1/admin/campaigns/{id}/rounds/{round_no}/draw", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Campaign id"), ("round_no" = u32, Path, description = "Round number")),
    responses(
        (status = 200, body = DrawReport),
        (status = 401, description = "MISSING_API_KEY, API_KEY_INVALID", body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "CAMPAIGN_NOT_FOUND, ROUND_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "ROUND_NOT_LOTTERY, CAMPAIGN_PAUSED, DRAW_TOO_EARLY (details.draw_from)", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE: call again (idempotent)", body = ErrorBody),
    ))]
pub async fn draw_round(
    state: web::Data<AppState>,
    who: Admin,
    path: web::Path<(i64, u32)>,
) -> Result<HttpResponse, ApiError> {
    let (id, round_no) = ids(path);
    Ok(HttpResponse::Ok().json(draw::draw(&state, &who, id, round_no).await?))
}

/// The lottery routes' part of the OpenAPI document (merged by [`crate::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(register, my_registration, lottery_state, published_draw, draw_round))]
pub struct LotteryApi;

//! Administrators' routes for a program's extra rules on certified attributes (`X-Api-Key`):
//! set one (province role, over the program's funding place), list them (an administrator of
//! a place the program funds). See [`crate::extras`].

use crate::error::{ApiError, ErrorBody};
use crate::extras::{self, ExtraRuleBody, ExtraRuleView};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use voucher_core::extra::ExtraRule;
use voucher_core::ProgramId;
use voucher_platform::admin::Admin;
use voucher_platform::extract::ApiJson;

/// Registers the extra rules' routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/admin/programs/{id}/extra-rules",
        web::post().to(set_rule),
    )
    .route(
        "/v1/admin/programs/{id}/extra-rules",
        web::get().to(list_rules),
    );
}

/// Sets (creates, or replaces by attribute) an extra rule of a program: a voucher of the
/// program redeemed on order lines certified for the attribute gets the extra on top of its
/// discount, paid to the merchant as its own settlement line.
#[utoipa::path(post, path = "/v1/admin/programs/{id}/extra-rules", tag = "admin", security(("api_key" = [])),
    request_body = ExtraRuleBody,
    params(("id" = i64, Path, description = "Program id")),
    responses((status = 200, body = ExtraRuleView),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN_ROLE, FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "PROGRAM_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "EXTRA_BUDGET_BELOW_GRANTED", body = ErrorBody)))]
pub async fn set_rule(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<i64>,
    body: ApiJson<ExtraRule>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(extras::set_rule(&state, &who, ProgramId(id.into_inner()), body.0).await?))
}

/// A program's extra rules with what each granted.
#[utoipa::path(get, path = "/v1/admin/programs/{id}/extra-rules", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Program id")),
    responses((status = 200, body = Vec<ExtraRuleView>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "PROGRAM_NOT_FOUND", body = ErrorBody)))]
pub async fn list_rules(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(
        HttpResponse::Ok()
            .json(extras::list_rules(&state, &who, ProgramId(id.into_inner())).await?),
    )
}

//! Scenic-spot ticket subsidy routes (see [`crate::tickets`]): the spot's signed terminal
//! reports sales and refunds; administrators (`X-Api-Key`, scoped to their place) create
//! and list schemes.

use crate::checkout::idempotency::{request_hash, IdempotencyKey};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::terminal_auth::SignedRequest;
use crate::tickets::{
    self, NewTicketSchemeBody, TicketRefundRequest, TicketRefundView, TicketSaleRequest,
    TicketSaleView, TicketSchemeView,
};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use uuid::Uuid;
use voucher_platform::admin::Admin;
use voucher_platform::extract::ApiJson;

/// Registers the ticket routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/ticket-sales", web::post().to(report_sale))
        .route("/v1/ticket-sales/{id}/refunds", web::post().to(refund))
        .route("/v1/admin/ticket-schemes", web::post().to(create_scheme))
        .route("/v1/admin/ticket-schemes", web::get().to(list_schemes));
}

/// Reports a ticket sale of the terminal's scenic spot: recorded with its per-ticket
/// subsidy (eligible or not), idempotent by `Idempotency-Key` and by `sale_ref`.
#[utoipa::path(post, path = "/v1/ticket-sales", tag = "tickets", security(("terminal" = [])), request_body = TicketSaleRequest,
    params(("Idempotency-Key" = String, Header, description = "The terminal's key for this attempt: 1-128 printable ASCII characters", min_length = 1, max_length = 128, pattern = "^[!-~]{1,128}$")),
    responses(
        (status = 200, description = "recorded, eligible or not (eligible, per_ticket, total)", body = TicketSaleView),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD, MISSING_IDEMPOTENCY_KEY", body = ErrorBody),
        (status = 401, description = "MISSING_SIGNATURE, STALE_TIMESTAMP, NONCE_REUSED, BAD_SIGNATURE, TERMINAL_KEY_INVALID", body = ErrorBody),
        (status = 403, description = "MERCHANT_NOT_ACTIVE, TICKET_MERCHANT_NOT_IN_SCHEME", body = ErrorBody),
        (status = 404, description = "TICKET_SCHEME_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "IN_FLIGHT, TICKET_SALE_REF_USED, TICKET_SCHEME_CLOSED (details: starts_at, ends_at)", body = ErrorBody),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = ErrorBody),
    ))]
pub async fn report_sale(
    state: web::Data<AppState>,
    signed: SignedRequest,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::parse(signed.idempotency_key.as_deref())?;
    let body: TicketSaleRequest = signed.json()?;
    let hash = request_hash(req.method().as_str(), req.path(), &signed.body);
    let (status, answer) =
        tickets::record_sale(&state, &signed.terminal, &key, &hash, &body).await?;
    Ok(HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK)).json(answer))
}

/// Refunds some tickets of a sale: gives back exactly quantity × the per-ticket amounts
/// (idempotent by `refund_ref`).
#[utoipa::path(post, path = "/v1/ticket-sales/{id}/refunds", tag = "tickets", security(("terminal" = [])), request_body = TicketRefundRequest,
    params(("id" = Uuid, Path, description = "Ticket sale id")),
    responses((status = 200, body = TicketRefundView),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "TICKET_SALE_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "TICKET_REFUND_REF_USED, TICKET_REFUND_TOO_MANY (details: left)", body = ErrorBody)))]
pub async fn refund(
    state: web::Data<AppState>,
    signed: SignedRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let body: TicketRefundRequest = signed.json()?;
    Ok(HttpResponse::Ok()
        .json(tickets::refund(&state, &signed.terminal, id.into_inner(), &body).await?))
}

/// Creates a ticket scheme of a place the caller manages (a city officer: the city or one
/// of its counties).
#[utoipa::path(post, path = "/v1/admin/ticket-schemes", tag = "admin", security(("api_key" = [])),
    request_body = NewTicketSchemeBody,
    responses((status = 201, body = TicketSchemeView),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "PROGRAM_NOT_FOUND", body = ErrorBody),
        (status = 422, description = "TICKET_PROGRAM_MISMATCH", body = ErrorBody)))]
pub async fn create_scheme(
    state: web::Data<AppState>,
    who: Admin,
    body: ApiJson<NewTicketSchemeBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(tickets::create_scheme(&state, &who, body.0).await?))
}

/// The ticket schemes of the places the caller manages.
#[utoipa::path(get, path = "/v1/admin/ticket-schemes", tag = "admin", security(("api_key" = [])),
    responses((status = 200, body = [TicketSchemeView]), (status = 401, body = ErrorBody)))]
pub async fn list_schemes(
    state: web::Data<AppState>,
    who: Admin,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(tickets::list_schemes(&state, &who).await?))
}

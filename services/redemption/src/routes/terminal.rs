//! Terminal routes: every request is signed (see [`voucher_core::signing`] and
//! [`crate::terminal_auth`]); checkout answers are `200` approved or `200` declined (see
//! [`crate::checkout`]).

use crate::checkout::idempotency::{request_hash, IdempotencyKey};
use crate::checkout::views::{Answer, CheckoutAnswer, QuoteAnswerSchema, RedemptionView};
use crate::checkout::{self, CheckoutRequest, Mode};
use crate::error::{ApiError, ErrorBody};
use crate::pairing::{self, PairRequest, PairedTerminal, TerminalInfo};
use crate::queries::{self, DayQuery, DayReport};
use crate::quote::{self, QuoteAnswer, QuoteRequest};
use crate::reversals::{self, ReversalRequest, ReversalView};
use crate::state::AppState;
use crate::terminal_auth::SignedRequest;
use crate::{holds, offline::KeysDocument};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use uuid::Uuid;
use voucher_platform::extract::ApiJson;

/// Registers the terminal routes and the well-known keys.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/redemptions", web::post().to(redeem))
        .route("/v1/redemptions", web::get().to(day))
        .route(
            "/v1/redemptions/by-order-ref/{order_ref}",
            web::get().to(by_order_ref),
        )
        .route("/v1/redemptions/{id}", web::get().to(by_id))
        .route("/v1/redemptions/{id}/reversals", web::post().to(reverse))
        .route("/v1/authorizations", web::post().to(authorize))
        .route("/v1/authorizations/{id}/capture", web::post().to(capture))
        .route("/v1/authorizations/{id}/void", web::post().to(void))
        .route("/v1/quotes", web::post().to(quote))
        .route("/v1/terminal/me", web::get().to(me))
        .route("/v1/terminal/unpair", web::post().to(unpair))
        .route("/v1/terminal-pairings", web::post().to(pair))
        .route("/.well-known/voucher-keys", web::get().to(keys));
}

/// What a voucher would take off an order (binds nothing: the checkout decides again).
#[utoipa::path(post, path = "/v1/quotes", tag = "checkout", security(("terminal" = [])), request_body = QuoteRequest,
    responses(
        (status = 200, description = "a quote (Quote) or the decline a checkout would meet (DeclineView)", body = QuoteAnswerSchema),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn quote(
    state: web::Data<AppState>,
    signed: SignedRequest,
) -> Result<HttpResponse, ApiError> {
    let body: QuoteRequest = signed.json()?;
    Ok(match quote::quote(&state, &signed.terminal, &body).await? {
        QuoteAnswer::Quote(q) => HttpResponse::Ok().json(q),
        QuoteAnswer::Declined(d) => HttpResponse::Ok().json(d),
    })
}

/// The terminal behind this request, with its merchant (a web till shows the merchant).
#[utoipa::path(get, path = "/v1/terminal/me", tag = "checkout", security(("terminal" = [])),
    responses((status = 200, body = TerminalInfo), (status = 401, body = ErrorBody)))]
pub async fn me(
    state: web::Data<AppState>,
    signed: SignedRequest,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(pairing::me(&state, &signed.terminal).await?))
}

/// Unpairs this terminal: its key is revoked.
#[utoipa::path(post, path = "/v1/terminal/unpair", tag = "checkout", security(("terminal" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn unpair(
    state: web::Data<AppState>,
    signed: SignedRequest,
) -> Result<HttpResponse, ApiError> {
    pairing::unpair(&state, &signed.terminal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Exchanges a one-time pairing code for the terminal's key (not signed: the till has no key
/// yet; the code is the credential, once).
#[utoipa::path(post, path = "/v1/terminal-pairings", tag = "checkout", request_body = PairRequest,
    responses((status = 200, body = PairedTerminal),
        (status = 404, description = "PAIRING_CODE_INVALID", body = ErrorBody)))]
pub async fn pair(
    state: web::Data<AppState>,
    body: ApiJson<PairRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(pairing::pair(&state, &body.0).await?))
}

fn respond(answer: Answer) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK))
        .json(answer.body)
}

async fn run_checkout(
    state: &AppState,
    req: &HttpRequest,
    signed: SignedRequest,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::parse(signed.idempotency_key.as_deref())?;
    let body: CheckoutRequest = signed.json()?;
    let hash = request_hash(req.method().as_str(), req.path(), &signed.body);
    Ok(respond(
        checkout::checkout(state, &signed.terminal, &key, &hash, body, mode).await?,
    ))
}

/// Redeems a voucher in one step.
#[utoipa::path(post, path = "/v1/redemptions", tag = "checkout", security(("terminal" = [])), request_body = CheckoutRequest,
    params(("Idempotency-Key" = String, Header, description = "The terminal's key for this attempt: 1-128 printable ASCII characters", min_length = 1, max_length = 128, pattern = "^[!-~]{1,128}$")),
    responses(
        (status = 200, description = "approved (RedemptionView) or declined (DeclineView)", body = CheckoutAnswer),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD, MISSING_IDEMPOTENCY_KEY", body = ErrorBody),
        (status = 401, description = "MISSING_SIGNATURE, STALE_TIMESTAMP, NONCE_REUSED, BAD_SIGNATURE, TERMINAL_KEY_INVALID", body = ErrorBody),
        (status = 403, description = "MERCHANT_NOT_ACTIVE", body = ErrorBody),
        (status = 409, description = "IN_FLIGHT, ORDER_REF_USED", body = ErrorBody),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = ErrorBody),
    ))]
pub async fn redeem(
    state: web::Data<AppState>,
    signed: SignedRequest,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    run_checkout(&state, &req, signed, Mode::Sale).await
}

/// Authorises a hold on a voucher (captured or voided later; releases itself after the timeout).
#[utoipa::path(post, path = "/v1/authorizations", tag = "checkout", security(("terminal" = [])), request_body = CheckoutRequest,
    params(("Idempotency-Key" = String, Header, description = "The terminal's key for this attempt: 1-128 printable ASCII characters", min_length = 1, max_length = 128, pattern = "^[!-~]{1,128}$")),
    responses((status = 200, description = "held (RedemptionView) or declined (DeclineView)", body = CheckoutAnswer),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD, MISSING_IDEMPOTENCY_KEY", body = ErrorBody),
        (status = 403, description = "MERCHANT_NOT_ACTIVE", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn authorize(
    state: web::Data<AppState>,
    signed: SignedRequest,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    run_checkout(&state, &req, signed, Mode::Hold).await
}

/// Captures a hold.
#[utoipa::path(post, path = "/v1/authorizations/{id}/capture", tag = "checkout", security(("terminal" = [])),
    params(("id" = Uuid, Path, description = "Redemption id of the hold")),
    responses((status = 200, body = RedemptionView),
        (status = 404, description = "REDEMPTION_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "HOLD_RESOLVED, HOLD_EXPIRED", body = ErrorBody)))]
pub async fn capture(
    state: web::Data<AppState>,
    signed: SignedRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(holds::capture(&state, &signed.terminal, id.into_inner()).await?))
}

/// Voids a hold.
#[utoipa::path(post, path = "/v1/authorizations/{id}/void", tag = "checkout", security(("terminal" = [])),
    params(("id" = Uuid, Path, description = "Redemption id of the hold")),
    responses((status = 200, body = RedemptionView),
        (status = 404, description = "REDEMPTION_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "HOLD_RESOLVED", body = ErrorBody)))]
pub async fn void(
    state: web::Data<AppState>,
    signed: SignedRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(holds::void(&state, &signed.terminal, id.into_inner()).await?))
}

/// Reverses (part of) a redemption.
#[utoipa::path(post, path = "/v1/redemptions/{id}/reversals", tag = "checkout", security(("terminal" = [])), request_body = ReversalRequest,
    params(("id" = Uuid, Path, description = "Redemption id")),
    responses((status = 200, body = ReversalView),
        (status = 404, description = "REDEMPTION_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "NOT_REVERSIBLE, REFUND_WINDOW_CLOSED, REFUND_NOT_ALLOWED", body = ErrorBody)))]
pub async fn reverse(
    state: web::Data<AppState>,
    signed: SignedRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let body: ReversalRequest = signed.json()?;
    Ok(HttpResponse::Ok()
        .json(reversals::reverse(&state, &signed.terminal, id.into_inner(), body).await?))
}

/// The merchant's redemptions of a day with totals.
#[utoipa::path(get, path = "/v1/redemptions", tag = "queries", security(("terminal" = [])), params(DayQuery),
    responses((status = 200, body = DayReport), (status = 400, body = ErrorBody)))]
pub async fn day(
    state: web::Data<AppState>,
    signed: SignedRequest,
    query: web::Query<DayQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(queries::day(&state, &signed.terminal, &query.date).await?))
}

/// One redemption of the merchant by id.
#[utoipa::path(get, path = "/v1/redemptions/{id}", tag = "queries", security(("terminal" = [])), params(("id" = Uuid, Path, description = "Redemption id")),
    responses((status = 200, body = RedemptionView), (status = 404, body = ErrorBody)))]
pub async fn by_id(
    state: web::Data<AppState>,
    signed: SignedRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(queries::by_id(&state, &signed.terminal, id.into_inner()).await?))
}

/// One redemption of the merchant by its order reference.
#[utoipa::path(get, path = "/v1/redemptions/by-order-ref/{order_ref}", tag = "queries", security(("terminal" = [])),
    params(("order_ref" = String, Path, description = "The merchant's order reference")),
    responses((status = 200, body = RedemptionView), (status = 404, body = ErrorBody)))]
pub async fn by_order_ref(
    state: web::Data<AppState>,
    signed: SignedRequest,
    order_ref: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(queries::by_order_ref(&state, &signed.terminal, &order_ref).await?))
}

/// The voucher public keys, for offline pre-checks (no authentication).
#[utoipa::path(get, path = "/.well-known/voucher-keys", tag = "offline", responses((status = 200, body = KeysDocument)))]
pub async fn keys(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(KeysDocument {
        keys: state.verifier.public_keys(),
    })
}

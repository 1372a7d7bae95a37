//! Car trade-in routes (汽车以旧换新): residents upload papers, apply, amend and follow
//! their applications (bearer identity token); administrators create schemes, review and
//! decide (`X-Api-Key`, place-scoped). Thin: the rules are in [`crate::trade_in`].

use crate::auth::{Admin, Resident};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::trade_in::{
    self, AmendBody, ApplicationView, Decision, DocumentType, DocumentView, NewApplicationBody,
    NewSchemeBody, RejectBody, RequestMoreBody, ReviewQuery, ReviewView, SchemeView,
};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures::future::LocalBoxFuture;
use utoipa::OpenApi;
use uuid::Uuid;
use voucher_platform::extract::{read_body, ApiJson};

/// Registers the trade-in routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/trade-in/schemes", web::get().to(schemes))
        .route("/v1/trade-in/documents", web::post().to(upload))
        .route("/v1/trade-in/applications", web::post().to(submit))
        .route("/v1/trade-in/applications/{id}", web::put().to(amend))
        .route("/v1/me/trade-in/applications", web::get().to(mine))
        .route(
            "/v1/me/trade-in/applications/{id}",
            web::get().to(one_of_mine),
        )
        .route("/v1/admin/trade-in/schemes", web::post().to(create_scheme))
        .route("/v1/admin/trade-in/schemes", web::get().to(admin_schemes))
        .route("/v1/admin/trade-in/applications", web::get().to(queue))
        .route(
            "/v1/admin/trade-in/applications/{id}",
            web::get().to(review),
        )
        .route(
            "/v1/admin/trade-in/applications/{id}/approve",
            web::post().to(approve),
        )
        .route(
            "/v1/admin/trade-in/applications/{id}/reject",
            web::post().to(reject),
        )
        .route(
            "/v1/admin/trade-in/applications/{id}/request-more",
            web::post().to(request_more),
        )
        .route(
            "/v1/admin/trade-in/documents/{sha256}",
            web::get().to(document),
        );
}

/// The OpenAPI description of these routes (merged into the service's document).
#[derive(OpenApi)]
#[openapi(
    paths(
        schemes, upload, submit, amend, mine, one_of_mine, create_scheme, admin_schemes, queue,
        review, approve, reject, request_more, document
    ),
    tags((name = "trade-in", description = "Car trade-in subsidy (汽车以旧换新): applications with a review"))
)]
pub struct TradeInApi;

/// A document upload: the raw body of an accepted type, at most `documents.max_bytes`.
pub struct DocumentUpload {
    /// The format, from `Content-Type`.
    pub kind: DocumentType,
    /// The bytes.
    pub bytes: Bytes,
}

impl FromRequest for DocumentUpload {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(10 * 1024 * 1024, |s| s.settings.documents.max_bytes);
        let kind = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(DocumentType::from_content_type);
        let body = read_body(req, payload.take(), limit);
        Box::pin(async move {
            // The type is refused before a byte of the body is read.
            let kind = kind.ok_or_else(trade_in::unsupported_document_type)?;
            Ok(DocumentUpload {
                kind,
                bytes: body.await?,
            })
        })
    }
}

/// The trade-in schemes (programs, windows, caps), for residents.
#[utoipa::path(get, path = "/v1/trade-in/schemes", tag = "trade-in", security(("bearer" = [])),
    responses((status = 200, body = [SchemeView]), (status = 401, body = ErrorBody)))]
pub async fn schemes(state: web::Data<AppState>, _who: Resident) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(trade_in::list_schemes(&state).await?))
}

/// Uploads a paper (raw body): answers its SHA-256, to cite in an application. The same
/// bytes again answer the same hash (200) and are stored once.
#[utoipa::path(post, path = "/v1/trade-in/documents", tag = "trade-in", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/pdf", description = "The document's bytes: application/pdf, image/jpeg or image/png"),
    responses(
        (status = 201, body = DocumentView),
        (status = 200, description = "You had uploaded these bytes before: `created: false`", body = DocumentView),
        (status = 400, description = "INVALID_FIELD (empty)", body = ErrorBody),
        (status = 401, description = "MISSING_IDENTITY, IDENTITY_EXPIRED, IDENTITY_INVALID", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE (documents.max_bytes)", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE (details.allowed), DOCUMENT_CONTENT_MISMATCH", body = ErrorBody),
    ))]
pub async fn upload(
    state: web::Data<AppState>,
    who: Resident,
    body: DocumentUpload,
) -> Result<HttpResponse, ApiError> {
    let view = trade_in::upload_document(&state, &who.0, body.kind, body.bytes).await?;
    let mut response = if view.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(view))
}

/// Applies for the subsidy. Idempotent on `application_id`: a retry answers the first
/// application (200).
#[utoipa::path(post, path = "/v1/trade-in/applications", tag = "trade-in", security(("bearer" = [])),
    request_body = NewApplicationBody,
    responses(
        (status = 201, body = ApplicationView),
        (status = 200, description = "A retry of an application already made", body = ApplicationView),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD (details.field)", body = ErrorBody),
        (status = 401, description = "MISSING_IDENTITY, IDENTITY_EXPIRED, IDENTITY_INVALID", body = ErrorBody),
        (status = 403, description = "NOT_ELIGIBLE (home outside the scheme's province)", body = ErrorBody),
        (status = 404, description = "TRADE_IN_SCHEME_NOT_FOUND, DOCUMENT_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "OUTSIDE_SCHEME_WINDOW (details: opens_on, closes_on, date), OLD_CAR_ALREADY_CLAIMED, NEW_CAR_ALREADY_CLAIMED, INVOICE_ALREADY_CLAIMED, APPLICATION_ID_CONFLICT", body = ErrorBody),
        (status = 422, description = "OUTSIDE_PROVINCE (a dealer registered elsewhere)", body = ErrorBody),
    ))]
pub async fn submit(
    state: web::Data<AppState>,
    who: Resident,
    body: ApiJson<NewApplicationBody>,
) -> Result<HttpResponse, ApiError> {
    let (view, created) = trade_in::submit(&state, &who.0, body.0).await?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(view))
}

/// Amends my application that waits for more (all papers again); it is submitted again.
#[utoipa::path(put, path = "/v1/trade-in/applications/{id}", tag = "trade-in", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = AmendBody,
    responses(
        (status = 200, body = ApplicationView),
        (status = 400, description = "INVALID_FIELD", body = ErrorBody),
        (status = 404, description = "APPLICATION_NOT_FOUND, DOCUMENT_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "APPLICATION_STATUS_CONFLICT, OUTSIDE_SCHEME_WINDOW, *_ALREADY_CLAIMED", body = ErrorBody),
        (status = 422, description = "OUTSIDE_PROVINCE", body = ErrorBody),
    ))]
pub async fn amend(
    state: web::Data<AppState>,
    who: Resident,
    id: web::Path<Uuid>,
    body: ApiJson<AmendBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(trade_in::amend(&state, &who.0, id.into_inner(), body.0).await?))
}

/// My applications, newest first: status, amount, the reviewer's reason or request.
#[utoipa::path(get, path = "/v1/me/trade-in/applications", tag = "trade-in", security(("bearer" = [])),
    responses((status = 200, body = [ApplicationView]), (status = 401, body = ErrorBody)))]
pub async fn mine(state: web::Data<AppState>, who: Resident) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(trade_in::mine(&state, &who.0).await?))
}

/// One of my applications with its history.
#[utoipa::path(get, path = "/v1/me/trade-in/applications/{id}", tag = "trade-in", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Application id")),
    responses((status = 200, body = ApplicationView), (status = 404, description = "APPLICATION_NOT_FOUND", body = ErrorBody)))]
pub async fn one_of_mine(
    state: web::Data<AppState>,
    who: Resident,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(trade_in::one_of_mine(&state, &who.0, id.into_inner()).await?))
}

/// Gives a program its trade-in scheme (province administrators).
#[utoipa::path(post, path = "/v1/admin/trade-in/schemes", tag = "trade-in", security(("api_key" = [])),
    request_body = NewSchemeBody,
    responses(
        (status = 201, body = SchemeView),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD", body = ErrorBody),
        (status = 401, description = "MISSING_API_KEY, API_KEY_INVALID", body = ErrorBody),
        (status = 403, description = "FORBIDDEN_ROLE, FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "PROGRAM_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "TRADE_IN_SCHEME_EXISTS", body = ErrorBody),
    ))]
pub async fn create_scheme(
    state: web::Data<AppState>,
    who: Admin,
    body: ApiJson<NewSchemeBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(trade_in::create_scheme(&state, &who, body.0).await?))
}

/// Every trade-in scheme.
#[utoipa::path(get, path = "/v1/admin/trade-in/schemes", tag = "trade-in", security(("api_key" = [])),
    responses((status = 200, body = [SchemeView]), (status = 401, body = ErrorBody)))]
pub async fn admin_schemes(
    state: web::Data<AppState>,
    _who: Admin,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(trade_in::list_schemes(&state).await?))
}

/// The applications of my place (a city officer: the city and its counties), oldest first.
#[utoipa::path(get, path = "/v1/admin/trade-in/applications", tag = "trade-in", security(("api_key" = [])),
    params(ReviewQuery),
    responses((status = 200, body = [ApplicationView]), (status = 400, description = "INVALID_FIELD", body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn queue(
    state: web::Data<AppState>,
    who: Admin,
    query: web::Query<ReviewQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(trade_in::review_queue(&state, &who, query.into_inner()).await?))
}

/// One application with its documents and history.
#[utoipa::path(get, path = "/v1/admin/trade-in/applications/{id}", tag = "trade-in", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Application id")),
    responses(
        (status = 200, body = ReviewView),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "APPLICATION_NOT_FOUND", body = ErrorBody),
    ))]
pub async fn review(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(trade_in::review_one(&state, &who, id.into_inner()).await?))
}

fn decided(result: (ApplicationView, bool)) -> HttpResponse {
    HttpResponse::Ok().json(result.0)
}

/// Approves a submitted application: writes its payable (one subsidy line). Repeating it
/// answers the approved application and writes nothing.
#[utoipa::path(post, path = "/v1/admin/trade-in/applications/{id}/approve", tag = "trade-in", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Application id")),
    responses(
        (status = 200, body = ApplicationView),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "APPLICATION_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "APPLICATION_STATUS_CONFLICT (not submitted)", body = ErrorBody),
    ))]
pub async fn approve(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(decided(
        trade_in::decide(&state, &who, id.into_inner(), Decision::Approve).await?,
    ))
}

/// Rejects an application (submitted or waiting for more) with a reason; its cars and
/// invoice are free for a new application.
#[utoipa::path(post, path = "/v1/admin/trade-in/applications/{id}/reject", tag = "trade-in", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = RejectBody,
    responses(
        (status = 200, body = ApplicationView),
        (status = 400, description = "INVALID_FIELD (reason)", body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "APPLICATION_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "APPLICATION_STATUS_CONFLICT (approved)", body = ErrorBody),
    ))]
pub async fn reject(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<Uuid>,
    body: ApiJson<RejectBody>,
) -> Result<HttpResponse, ApiError> {
    let decision = Decision::with_note("reason", &body.0.reason, Decision::Reject)?;
    Ok(decided(
        trade_in::decide(&state, &who, id.into_inner(), decision).await?,
    ))
}

/// Asks the applicant for more (what is missing); they amend and submit again.
#[utoipa::path(post, path = "/v1/admin/trade-in/applications/{id}/request-more", tag = "trade-in", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = RequestMoreBody,
    responses(
        (status = 200, body = ApplicationView),
        (status = 400, description = "INVALID_FIELD (what)", body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "APPLICATION_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "APPLICATION_STATUS_CONFLICT (not submitted)", body = ErrorBody),
    ))]
pub async fn request_more(
    state: web::Data<AppState>,
    who: Admin,
    id: web::Path<Uuid>,
    body: ApiJson<RequestMoreBody>,
) -> Result<HttpResponse, ApiError> {
    let decision = Decision::with_note("what", &body.0.what, Decision::RequestMore)?;
    Ok(decided(
        trade_in::decide(&state, &who, id.into_inner(), decision).await?,
    ))
}

/// A document's bytes, for a reviewer of an application that cites it.
#[utoipa::path(get, path = "/v1/admin/trade-in/documents/{sha256}", tag = "trade-in", security(("api_key" = [])),
    params(("sha256" = String, Path, description = "The document's SHA-256 (hex)")),
    responses(
        (status = 200, description = "The bytes, with their Content-Type", content_type = "application/octet-stream"),
        (status = 400, description = "INVALID_FIELD", body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody),
        (status = 404, description = "DOCUMENT_NOT_FOUND", body = ErrorBody),
    ))]
pub async fn document(
    state: web::Data<AppState>,
    who: Admin,
    sha256: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sha256 = sha256.into_inner();
    let (content_type, bytes) = trade_in::document_for_admin(&state, &who, &sha256).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600, immutable"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}\"", sha256.to_ascii_lowercase()),
        ))
        .body(bytes))
}

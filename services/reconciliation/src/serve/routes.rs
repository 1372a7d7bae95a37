//! The console API's routes. Every handler takes an [`Officer`] (a live session; on a
//! write, the CSRF token checked) and calls the library the command line calls, so the two
//! never disagree. Writes and downloads go to the audit trail.

use super::error::ApiError;
use super::overview::{self, Overview};
use super::session::{Officer, OfficerView, SessionView, Sessions};
use super::signin::{self, ApiKeyProof, ApiKeySignIn, DevIdp, DevProof};
use super::state::State;
use super::views::{
    self, BatchDetail, BatchMerchants, CheckView, Periods, RedemptionDetail, ReviewView, RunDetail,
};
use crate::check::{self, CheckOptions};
use crate::period::{beijing, Period};
use crate::settle::{settle, SettleRequest};
use crate::workflow::{advance, Status};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use voucher_core::{AdminRole, MerchantId};
use voucher_platform::error::ErrorBody;
use voucher_platform::extract::ApiJson;

/// How long the operations glance waits for Redis.
const OUTBOX_TIMEOUT: Duration = Duration::from_secs(2);
/// The cross-check's route: it has its own deadline (`check.request_timeout_secs`).
pub const CHECKS: &str = "/v1/checks";

/// Registers the routes; the dev identity provider's only when it is on.
///
/// One `route` per method and path, never a `web::resource` with several: a resource answers
/// a method it lacks with its own bare 405, while a path whose routes all refuse the method
/// falls through to the platform's default service, which answers `405 METHOD_NOT_ALLOWED`
/// with the error envelope and `Allow` (from the OpenAPI document, like every service).
pub fn configure(cfg: &mut web::ServiceConfig, dev_idp: bool) {
    cfg.route("/v1/session", web::post().to(sign_in))
        .route("/v1/session", web::get().to(current))
        .route("/v1/session", web::delete().to(sign_out));
    if dev_idp {
        cfg.route("/v1/session/dev", web::get().to(dev_officers))
            .route("/v1/session/dev", web::post().to(dev_sign_in));
    }
    cfg.route("/v1/overview", web::get().to(get_overview))
        .route("/v1/periods", web::get().to(periods))
        .route("/v1/periods/{period}/files/{name}", web::get().to(file))
        .route("/v1/runs/{run_id}", web::get().to(run))
        .route("/v1/batches/{batch_id}", web::get().to(batch))
        .route("/v1/batches/{batch_id}/merchants", web::get().to(merchants))
        .route("/v1/batches/{batch_id}/confirm", web::post().to(confirm))
        .route("/v1/settlements", web::post().to(run_settlement))
        .route("/v1/review", web::get().to(review))
        .route("/v1/redemptions/{id}", web::get().to(redemption))
        .route("/v1/ops", web::get().to(ops))
        .route(CHECKS, web::post().to(run_check))
        .route("/v1/audit", web::get().to(audit))
        .route("/v1/advances", web::get().to(list_advances))
        .route("/v1/advances", web::post().to(make_advance));
}

fn no_store() -> (header::HeaderName, &'static str) {
    (header::CACHE_CONTROL, "no-store")
}

fn json<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().insert_header(no_store()).json(body)
}

/// Signs in with an administrator's API key: sets the session cookie.
#[utoipa::path(post, path = "/v1/session", tag = "session", request_body = ApiKeyProof,
    responses((status = 200, body = SessionView, description = "signed in; Set-Cookie: vp_console (HttpOnly, Secure, SameSite=Strict)"),
        (status = 400, description = "MALFORMED_JSON, INVALID_FIELD", body = ErrorBody),
        (status = 401, description = "API_KEY_INVALID", body = ErrorBody)))]
pub async fn sign_in(
    keys: web::Data<ApiKeySignIn>,
    sessions: web::Data<Sessions>,
    state: web::Data<State>,
    proof: ApiJson<ApiKeyProof>,
) -> Result<HttpResponse, ApiError> {
    signin::sign_in(keys.get_ref(), &sessions, &state.audit, proof.0).await
}

/// The officers the dev identity provider signs in as (the demo only; 404 otherwise).
#[utoipa::path(get, path = "/v1/session/dev", tag = "session",
    responses((status = 200, body = DevOfficers), (status = 404, body = ErrorBody)))]
pub async fn dev_officers(dev: web::Data<DevIdp>) -> HttpResponse {
    json(&DevOfficers {
        officers: dev.officers().iter().map(OfficerView::from).collect(),
        dev: true,
    })
}

/// `GET /v1/session/dev`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DevOfficers {
    /// Who one may sign in as.
    pub officers: Vec<OfficerView>,
    /// Always true: a development sign-in.
    pub dev: bool,
}

/// Signs in through the dev identity provider (the demo only; 404 otherwise).
#[utoipa::path(post, path = "/v1/session/dev", tag = "session", request_body = DevProof,
    responses((status = 200, body = SessionView), (status = 401, description = "OFFICER_UNKNOWN", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn dev_sign_in(
    dev: web::Data<DevIdp>,
    sessions: web::Data<Sessions>,
    state: web::Data<State>,
    proof: ApiJson<DevProof>,
) -> Result<HttpResponse, ApiError> {
    signin::sign_in(dev.get_ref(), &sessions, &state.audit, proof.0).await
}

/// The current session (and its CSRF token).
#[utoipa::path(get, path = "/v1/session", tag = "session", security(("session" = [])),
    responses((status = 200, body = SessionView), (status = 401, description = "SESSION_REQUIRED, SESSION_EXPIRED", body = ErrorBody)))]
pub async fn current(officer: Officer) -> HttpResponse {
    json(&SessionView::from(&officer.session))
}

/// Signs out: the session ends and the cookie is cleared.
#[utoipa::path(delete, path = "/v1/session", tag = "session", security(("session" = [], "csrf" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, description = "CSRF_TOKEN_INVALID", body = ErrorBody)))]
pub async fn sign_out(
    officer: Officer,
    sessions: web::Data<Sessions>,
    state: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    sessions.end(&officer.session).await?;
    state
        .audit
        .record(Ok(&officer.admin), "session.sign_out", None, "ok", None)
        .await;
    Ok(HttpResponse::NoContent()
        .cookie(Sessions::removal_cookie())
        .finish())
}

/// `GET /v1/overview` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OverviewQuery {
    /// Days in the window, 1–366 (default 30).
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<u32>,
}

/// Burn-down per program with the forecast, spending by day and category, cities against
/// their allocations.
#[utoipa::path(get, path = "/v1/overview", tag = "console", security(("session" = [])), params(OverviewQuery),
    responses((status = 200, body = Overview), (status = 400, description = "INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn get_overview(
    officer: Officer,
    state: web::Data<State>,
    query: web::Query<OverviewQuery>,
) -> Result<HttpResponse, ApiError> {
    let days = query.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid_field("days", "must be 1-366"));
    }
    let today = state.clock.now().with_timezone(&beijing()).date_naive();
    Ok(json(
        &overview::overview(&state.pg, &officer.admin, today, days).await?,
    ))
}

/// Settled periods and their runs, newest first.
#[utoipa::path(get, path = "/v1/periods", tag = "console", security(("session" = [])),
    responses((status = 200, body = Periods), (status = 401, body = ErrorBody)))]
pub async fn periods(officer: Officer, state: web::Data<State>) -> Result<HttpResponse, ApiError> {
    Ok(json(&views::periods(&state.pg, &officer.admin).await?))
}

/// A run and its batches per city.
#[utoipa::path(get, path = "/v1/runs/{run_id}", tag = "console", security(("session" = [])),
    params(("run_id" = i64, Path, description = "The run")),
    responses((status = 200, body = RunDetail), (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody), (status = 404, description = "RUN_NOT_FOUND", body = ErrorBody)))]
pub async fn run(
    officer: Officer,
    state: web::Data<State>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        &views::run(&state.pg, path.into_inner(), &officer.admin).await?,
    ))
}

/// A batch, its status history and its next step.
#[utoipa::path(get, path = "/v1/batches/{batch_id}", tag = "console", security(("session" = [])),
    params(("batch_id" = i64, Path, description = "The batch")),
    responses((status = 200, body = BatchDetail), (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody), (status = 404, description = "BATCH_NOT_FOUND", body = ErrorBody)))]
pub async fn batch(
    officer: Officer,
    state: web::Data<State>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        &views::batch(&state.pg, path.into_inner(), &officer.admin).await?,
    ))
}

/// A batch's merchant lines.
#[utoipa::path(get, path = "/v1/batches/{batch_id}/merchants", tag = "console", security(("session" = [])),
    params(("batch_id" = i64, Path, description = "The batch")),
    responses((status = 200, body = BatchMerchants), (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody), (status = 404, description = "BATCH_NOT_FOUND", body = ErrorBody)))]
pub async fn merchants(
    officer: Officer,
    state: web::Data<State>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        &views::merchants(&state.pg, path.into_inner(), &officer.admin).await?,
    ))
}

/// `POST /v1/batches/{batch_id}/confirm` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// `city_confirmed` (a city officer), `province_confirmed` or `paid` (a province officer).
    pub to: Status,
}

/// Moves a batch one step, by the command line's rules and place scope.
#[utoipa::path(post, path = "/v1/batches/{batch_id}/confirm", tag = "console", security(("session" = [], "csrf" = [])),
    params(("batch_id" = i64, Path, description = "The batch")), request_body = ConfirmRequest,
    responses((status = 200, body = BatchDetail, description = "the batch after the step"),
        (status = 400, description = "INVALID_FIELD", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "CSRF_TOKEN_INVALID, FORBIDDEN_PLACE, FORBIDDEN_ROLE", body = ErrorBody),
        (status = 404, description = "BATCH_NOT_FOUND", body = ErrorBody), (status = 409, description = "INVALID_TRANSITION", body = ErrorBody)))]
pub async fn confirm(
    officer: Officer,
    state: web::Data<State>,
    path: web::Path<i64>,
    body: ApiJson<ConfirmRequest>,
) -> Result<HttpResponse, ApiError> {
    let batch_id = path.into_inner();
    let to = body.0.to;
    let done = advance(&state.pg, batch_id, to, &officer.admin, state.clock.now())
        .await
        .map_err(ApiError::from);
    state
        .audit
        .outcome(
            &officer.admin,
            "batch.confirm",
            format!("batch {batch_id} → {}", to.as_str()),
            done,
        )
        .await?;
    Ok(json(
        &views::batch(&state.pg, batch_id, &officer.admin).await?,
    ))
}

/// `POST /v1/settlements` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    /// First day (Beijing).
    pub from: NaiveDate,
    /// Last day, included (default: `from`).
    pub to: Option<NaiveDate>,
}

/// A program's run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramRunRef {
    /// The program.
    pub program_id: i64,
    /// Its run for the period.
    pub run_id: i64,
}

/// `POST /v1/settlements` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Settled {
    /// The period.
    pub period: String,
    /// Runs written now.
    pub created: Vec<ProgramRunRef>,
    /// Programs already settled for the period: nothing written.
    pub existing: Vec<ProgramRunRef>,
}

/// Settles a period (province officers only); idempotent like the command line.
#[utoipa::path(post, path = "/v1/settlements", tag = "console", security(("session" = [], "csrf" = [])), request_body = SettleBody,
    responses((status = 200, body = Settled), (status = 400, description = "INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, description = "CSRF_TOKEN_INVALID, FORBIDDEN_ROLE", body = ErrorBody),
        (status = 409, description = "PERIOD_OVERLAP", body = ErrorBody)))]
pub async fn run_settlement(
    officer: Officer,
    state: web::Data<State>,
    body: ApiJson<SettleBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let period = Period::new(body.from, body.to.unwrap_or(body.from))
        .map_err(|e| ApiError::invalid_field("to", e))?;
    // A day is settled once it is over: redemptions of a day settled early would never be
    // settled (the day's run exists). The command line leaves this to its operator.
    let today = state.clock.now().with_timezone(&beijing()).date_naive();
    if period.end() >= today {
        return Err(ApiError::invalid_field(
            "to",
            format!(
                "a day can be settled once it is over (Beijing time); the last is {}",
                today.pred_opt().unwrap_or(today)
            ),
        ));
    }
    let done = async {
        officer.admin.require_role(AdminRole::Province)?;
        let outcome = settle(
            &state.pg,
            &SettleRequest {
                period,
                actor: officer.admin.name.clone(),
                now: state.clock.now(),
            },
        )
        .await?;
        let refs = |v: Vec<(i64, i64)>| {
            v.into_iter()
                .map(|(program_id, run_id)| ProgramRunRef { program_id, run_id })
                .collect()
        };
        Ok::<_, ApiError>(Settled {
            period: period.to_string(),
            created: refs(outcome.created),
            existing: refs(outcome.existing),
        })
    }
    .await;
    let settled = state
        .audit
        .outcome(
            &officer.admin,
            "settlement.run",
            format!("period {period}"),
            done,
        )
        .await?;
    Ok(json(&settled))
}

/// `GET /v1/periods/{period}/files/{name}` path.
#[derive(Debug, Deserialize)]
pub struct FilePath {
    period: String,
    name: String,
}

/// A report file of a period: the bytes the command line writes for this officer.
#[utoipa::path(get, path = "/v1/periods/{period}/files/{name}", tag = "console", security(("session" = [])),
    params(("period" = String, Path, description = "`2026-11-30` or `2026-11-01..2026-11-30`"),
        ("name" = String, Path, description = "cities.csv, merchants.csv, programs.csv, report.json or summary.txt")),
    responses((status = 200, description = "the file (CSV with a UTF-8 BOM)"), (status = 400, description = "INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, description = "FILE_NOT_FOUND", body = ErrorBody)))]
pub async fn file(
    officer: Officer,
    state: web::Data<State>,
    path: web::Path<FilePath>,
) -> Result<HttpResponse, ApiError> {
    let FilePath { period, name } = path.into_inner();
    let period = Period::parse(&period).map_err(|e| ApiError::invalid_field("period", e))?;
    let done = views::file(&state.pg, &period, &name, &officer.admin).await;
    let (content_type, text) = state
        .audit
        .outcome(
            &officer.admin,
            "report.download",
            format!("{period}/{name}"),
            done,
        )
        .await?;
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name.as_str(), ""));
    let filename = format!("{stem}-{}.{ext}", period.to_string().replace("..", "_"));
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(text))
}

/// `GET /v1/review` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// `2026-11-30` or `2026-11-01..2026-11-30` (default: yesterday in Beijing).
    pub period: Option<String>,
    /// At most this many findings, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The ranked list of suspected cash-out patterns, with evidence and sample redemptions.
#[utoipa::path(get, path = "/v1/review", tag = "console", security(("session" = [])), params(ReviewQuery),
    responses((status = 200, body = ReviewView), (status = 400, description = "INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn review(
    officer: Officer,
    state: web::Data<State>,
    query: web::Query<ReviewQuery>,
) -> Result<HttpResponse, ApiError> {
    let period = match &query.period {
        Some(p) => Period::parse(p).map_err(|e| ApiError::invalid_field("period", e))?,
        None => Period::yesterday(state.clock.now()),
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be 1-1000"));
    }
    Ok(json(
        &views::review(
            &state.pg,
            &period,
            &officer.admin,
            usize::try_from(limit).unwrap_or(100),
        )
        .await?,
    ))
}

/// One redemption, with its reversals.
#[utoipa::path(get, path = "/v1/redemptions/{id}", tag = "console", security(("session" = [])),
    params(("id" = Uuid, Path, description = "The redemption")),
    responses((status = 200, body = RedemptionDetail), (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN_PLACE", body = ErrorBody), (status = 404, description = "REDEMPTION_NOT_FOUND", body = ErrorBody)))]
pub async fn redemption(
    officer: Officer,
    state: web::Data<State>,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        &views::redemption(&state.pg, path.into_inner(), &officer.admin).await?,
    ))
}

/// The outbox right now.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxLag {
    /// Whether Redis answered.
    pub available: bool,
    /// Events waiting in the outbox streams (not yet persisted or acknowledged).
    pub len: Option<u64>,
}

/// `GET /v1/ops`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ops {
    /// The last recorded check (the cron's or an officer's).
    pub last_check: Option<CheckView>,
    /// The outbox lag, read live.
    pub outbox: OutboxLag,
}

/// The operations glance: the last check and the outbox lag.
#[utoipa::path(get, path = "/v1/ops", tag = "console", security(("session" = [])),
    responses((status = 200, body = Ops), (status = 401, body = ErrorBody)))]
pub async fn ops(officer: Officer, state: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let last_check = match check::latest(&state.pg).await? {
        Some(record) => Some(views::check_view(&state.pg, record, &officer.admin).await?),
        None => None,
    };
    let len = match tokio::time::timeout(OUTBOX_TIMEOUT, state.hot.outbox_len()).await {
        Ok(Ok(len)) => Some(len),
        Ok(Err(e)) => {
            tracing::warn!("outbox lag not read: {e}");
            None
        }
        Err(_) => {
            tracing::warn!("outbox lag not read: Redis did not answer in time");
            None
        }
    };
    Ok(json(&Ops {
        last_check,
        outbox: OutboxLag {
            available: len.is_some(),
            len,
        },
    }))
}

/// Runs the cross-check of Redis against PostgreSQL now and records it (province officers).
#[utoipa::path(post, path = "/v1/checks", tag = "console", security(("session" = [], "csrf" = [])),
    responses((status = 200, body = CheckView), (status = 401, body = ErrorBody),
        (status = 403, description = "CSRF_TOKEN_INVALID, FORBIDDEN_ROLE", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE (Redis or PostgreSQL)", body = ErrorBody)))]
pub async fn run_check(
    officer: Officer,
    state: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let done = async {
        officer.admin.require_role(AdminRole::Province)?;
        let report = check::check(
            &state.pg,
            &state.hot,
            CheckOptions {
                max_outbox_lag: state.max_outbox_lag,
            },
        )
        .await?;
        let id = check::record(&state.pg, &officer.admin.name, &report, state.clock.now()).await?;
        Ok::<_, ApiError>((id, report))
    }
    .await;
    let (id, _) = state
        .audit
        .outcome(
            &officer.admin,
            "check.run",
            "redis ↔ postgres".to_owned(),
            done,
        )
        .await?;
    let record = check::latest(&state.pg)
        .await?
        .filter(|r| r.id == id)
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("check {id} not found after recording"))
        })?;
    Ok(json(
        &views::check_view(&state.pg, record, &officer.admin).await?,
    ))
}

/// `GET /v1/audit` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many entries, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// `GET /v1/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    /// Newest first.
    pub entries: Vec<super::audit::AuditEntry>,
}

/// The audit trail, newest first (a city officer: the entries of their city's officers).
#[utoipa::path(get, path = "/v1/audit", tag = "console", security(("session" = [])), params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 400, description = "INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn audit(
    officer: Officer,
    state: web::Data<State>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be 1-1000"));
    }
    Ok(json(&AuditList {
        entries: state.audit.list(&officer.admin, limit).await?,
    }))
}

/// `POST /v1/advances` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceBody {
    /// The program paying it.
    pub program_id: i64,
    /// The merchant receiving it (approved for the program).
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub merchant_id: MerchantId,
    /// How much, fen, 1 to 10¹⁰ (`advances::MAX_ADVANCE_FEN`).
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount_fen: i64,
    /// The payment's reference, 1–64 characters, none a control character (a repeat returns
    /// the first advance).
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,64}$")]
    pub reference: Reference,
}

/// A payment's reference: 1–64 characters, none a control character (a NUL could not even
/// be stored: PostgreSQL's text refuses it).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Reference(String);

impl TryFrom<String> for Reference {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Reference, &'static str> {
        let n = text.chars().count();
        if (1..=64).contains(&n) && !text.chars().any(char::is_control) {
            Ok(Reference(text))
        } else {
            Err("must be 1-64 characters, none a control character")
        }
    }
}

/// `GET /v1/advances`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdvanceList {
    /// Per program and merchant.
    pub advances: Vec<crate::advances::AdvanceBalance>,
}

/// Advances a program's money to a merchant before its sales (province officers; idempotent
/// on the reference).
#[utoipa::path(post, path = "/v1/advances", tag = "console", security(("session" = [], "csrf" = [])), request_body = AdvanceBody,
    responses((status = 201, body = crate::advances::Advance, description = "advanced"),
        (status = 200, body = crate::advances::Advance, description = "the reference was used: the first advance, nothing written"),
        (status = 400, description = "INVALID_FIELD", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "CSRF_TOKEN_INVALID, FORBIDDEN_ROLE, FORBIDDEN_PLACE", body = ErrorBody)))]
pub async fn make_advance(
    officer: Officer,
    state: web::Data<State>,
    body: ApiJson<AdvanceBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let (merchant_id, reference) = (b.merchant_id.as_str().to_owned(), b.reference.0);
    let target = format!(
        "program {} → merchant {merchant_id}: {} fen ({reference})",
        b.program_id, b.amount_fen
    );
    let done = crate::advances::advance(
        &state.pg,
        &officer.admin,
        &crate::advances::AdvanceRequest {
            program_id: b.program_id,
            merchant_id,
            amount_fen: b.amount_fen,
            reference,
        },
        state.clock.now(),
    )
    .await
    .map_err(ApiError::from);
    let advance = state
        .audit
        .outcome(&officer.admin, "advance.create", target, done)
        .await?;
    let mut resp = if advance.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(resp.insert_header(no_store()).json(advance))
}

/// Every merchant's advance balance (advanced, drawn down by settlements, outstanding).
#[utoipa::path(get, path = "/v1/advances", tag = "console", security(("session" = [])),
    responses((status = 200, body = AdvanceList), (status = 401, body = ErrorBody)))]
pub async fn list_advances(
    officer: Officer,
    state: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    Ok(json(&AdvanceList {
        advances: crate::advances::balances(&state.pg, &officer.admin).await?,
    }))
}

//! Operations: liveness, readiness, metrics and the OpenAPI document.

use crate::openapi::ApiDoc;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use std::time::Duration;
use utoipa::OpenApi as _;

/// How long a readiness check waits for each store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Registers the operations routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/openapi.json", web::get().to(openapi));
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// PostgreSQL answers `SELECT 1` and Redis `PING` (503 otherwise).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200), (status = 503)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pg = matches!(
        tokio::time::timeout(READY_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pg)).await,
        Ok(Ok(_))
    );
    let ping = state.nonces.ping();
    let redis = matches!(tokio::time::timeout(READY_TIMEOUT, ping).await, Ok(Ok(_)));
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = serde_json::json!({
        "status": if pg && redis { "ready" } else { "unavailable" },
        "postgres": word(pg),
        "redis": word(redis),
    });
    if pg && redis {
        HttpResponse::Ok().json(body)
    } else {
        tracing::warn!(postgres = pg, redis, "not ready");
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition (the holds gauge is refreshed from PostgreSQL on each scrape).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match voucher_store::pg::redemptions::holds_outstanding(&state.pg).await {
        Ok(n) => state.metrics.holds_outstanding.set(n),
        Err(e) => tracing::warn!("holds gauge not refreshed: {e}"),
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// This API's OpenAPI document.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

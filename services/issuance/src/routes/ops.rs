//! Operations: liveness, readiness, metrics and the OpenAPI document.

use crate::openapi::ApiDoc;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use std::time::Duration;
use utoipa::{OpenApi, ToSchema};

/// How long a readiness check waits for each store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Registers the operations routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/openapi.json", web::get().to(openapi));
}

/// Liveness/readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `unavailable`.
    pub status: &'static str,
    /// PostgreSQL check (`ok` or the failure), readiness only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<String>,
    /// Redis check (`ok` or the failure), readiness only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        postgres: None,
        redis: None,
    })
}

/// PostgreSQL answers `SELECT 1` and Redis answers `PING` (503 otherwise).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pg = tokio::time::timeout(READY_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pg)).await;
    let postgres = match pg {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("timed out".to_owned()),
    };
    let redis = match tokio::time::timeout(READY_TIMEOUT, state.hot.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("timed out".to_owned()),
    };
    let ready = postgres.is_none() && redis.is_none();
    if !ready {
        tracing::warn!(postgres = ?postgres, redis = ?redis, "not ready");
    }
    let body = Health {
        status: if ready { "ready" } else { "unavailable" },
        postgres: Some(postgres.unwrap_or_else(|| "ok".to_owned())),
        redis: Some(redis.unwrap_or_else(|| "ok".to_owned())),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// This API's OpenAPI 3.1 document.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

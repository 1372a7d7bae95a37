//! The operations routes every service serves: `/healthz` (the process is alive),
//! `/readyz` (the dependencies its critical path needs answer), `/metrics` (Prometheus) and
//! `/openapi.json` (the service's document, given to the app builder).
//!
//! Readiness reports what the service's critical path needs, not everything it touches:
//! claims need Redis but not PostgreSQL (the persister catches up later), so an issuance
//! replica stays in service through a PostgreSQL outage, reporting it as degraded; checkout
//! needs both. Each dependency's state is in the body and in `<service>_dependency_up`.

use crate::metrics::PlatformMetrics;
use actix_web::{web, HttpResponse};
use futures::future::BoxFuture;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use utoipa::{OpenApi, ToSchema};

/// A dependency that can be asked whether it answers.
pub trait Probe: Send + Sync {
    /// Answers `Ok` when the dependency works, else why not.
    fn ping(&self) -> BoxFuture<'_, Result<(), String>>;
}

impl Probe for sqlx::PgPool {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            sqlx::query("SELECT 1")
                .execute(self)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

impl Probe for voucher_store::HotStore {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            voucher_store::HotStore::ping(self)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

impl Probe for voucher_store::nonces::Nonces {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            voucher_store::nonces::Nonces::ping(self)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// How much a dependency matters to readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// The critical path needs it: not ready without it.
    Critical,
    /// Some requests need it; without it the service is degraded but ready.
    Degraded,
}

/// The dependencies a service checks for `/readyz`.
#[derive(Clone)]
pub struct Readiness {
    checks: Vec<(&'static str, Need, Arc<dyn Probe>)>,
    timeout: Duration,
    metrics: PlatformMetrics,
}

/// A dependency's state in the readiness body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DependencyState {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// `critical` or `degraded`.
    pub need: Need,
    /// Why not, when unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `/readyz` body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadyBody {
    /// `ready`, `degraded` (a non-critical dependency is down: still 200) or `unavailable`
    /// (a critical one is down: 503).
    pub status: &'static str,
    /// Every dependency by name.
    pub dependencies: BTreeMap<&'static str, DependencyState>,
}

impl Readiness {
    /// No checks yet; each waits at most `timeout`; results go to `metrics`.
    pub fn new(timeout: Duration, metrics: PlatformMetrics) -> Readiness {
        Readiness {
            checks: Vec::new(),
            timeout,
            metrics,
        }
    }

    /// Adds a dependency.
    #[must_use]
    pub fn check(mut self, name: &'static str, need: Need, probe: Arc<dyn Probe>) -> Readiness {
        self.metrics.dependency_up.with_label_values(&[name]).set(1);
        self.checks.push((name, need, probe));
        self
    }

    /// Asks every dependency, concurrently.
    pub async fn report(&self) -> ReadyBody {
        let answers = futures::future::join_all(self.checks.iter().map(|(name, need, probe)| {
            let timeout = self.timeout;
            async move {
                let answer = match tokio::time::timeout(timeout, probe.ping()).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(format!("no answer within {timeout:?}")),
                };
                (*name, *need, answer)
            }
        }))
        .await;
        let mut ready = true;
        let mut degraded = false;
        let mut dependencies = BTreeMap::new();
        for (name, need, error) in answers {
            let up = error.is_none();
            self.metrics
                .dependency_up
                .with_label_values(&[name])
                .set(i64::from(up));
            if !up {
                match need {
                    Need::Critical => ready = false,
                    Need::Degraded => degraded = true,
                }
            }
            dependencies.insert(
                name,
                DependencyState {
                    status: if up { "ok" } else { "unavailable" },
                    need,
                    error,
                },
            );
        }
        let status = match (ready, degraded) {
            (false, _) => "unavailable",
            (true, true) => "degraded",
            (true, false) => "ready",
        };
        ReadyBody {
            status,
            dependencies,
        }
    }
}

/// A hook run before `/metrics` renders (to refresh gauges read from a store).
pub type ScrapeHook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// The service's OpenAPI document, as app data.
#[derive(Clone)]
pub struct ApiDocument(pub Arc<utoipa::openapi::OpenApi>);

/// Registers the operations routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/openapi.json", web::get().to(openapi));
}

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alive {
    /// `ok`.
    pub status: &'static str,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Alive)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Alive { status: "ok" })
}

/// The dependencies of the critical path answer (200, `ready` or `degraded`) or not (503).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = ReadyBody), (status = 503, body = ReadyBody)))]
pub async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let body = readiness.report().await;
    match body.status {
        "unavailable" => {
            tracing::warn!(?body.dependencies, "not ready");
            HttpResponse::ServiceUnavailable().json(body)
        }
        "degraded" => {
            tracing::info!(?body.dependencies, "ready, degraded");
            HttpResponse::Ok().json(body)
        }
        _ => HttpResponse::Ok().json(body),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(
    metrics: web::Data<PlatformMetrics>,
    hook: Option<web::Data<ScrapeHook>>,
) -> HttpResponse {
    if let Some(hook) = hook {
        (hook.get_ref())().await;
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}

/// The service's OpenAPI document.
pub async fn openapi(doc: Option<web::Data<ApiDocument>>) -> HttpResponse {
    match doc {
        Some(doc) => HttpResponse::Ok().json(doc.0.as_ref()),
        None => HttpResponse::NotFound().finish(),
    }
}

/// A service's OpenAPI document completed with the operations routes, the shared error
/// body and, on every operation, the statuses the shared plumbing answers
/// ([`crate::openapi::add_common_responses`]).
pub fn with_operations(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    doc.merge(OpsApi::openapi());
    crate::openapi::add_common_responses(&mut doc);
    doc
}

/// The operations routes' part of every service's OpenAPI document, with the shared
/// error body.
#[derive(OpenApi)]
#[openapi(
    paths(healthz, readyz, metrics),
    components(schemas(
        crate::error::ErrorBody,
        crate::error::ErrorType,
        Alive,
        ReadyBody,
        DependencyState,
        Need
    )),
    tags((name = "operations", description = "Health, readiness, metrics"))
)]
pub struct OpsApi;

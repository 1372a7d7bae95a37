//! The ONE builder of every service's actix `App`: body limits, the JSON, path and query
//! error handlers, the JSON `NOT_FOUND` for unknown routes, request ids and tracing, HTTP
//! metrics, the per-IP rate limit, the request deadline and the operations routes apply to
//! every route of every service. A service adds its own routes and app data through
//! `configure`.
//!
//! Middleware, outermost first: tracing (a span and a request id per request) → the
//! `x-request-id` response header → metrics and the access log → the per-IP limit → the
//! deadline → the route.

use crate::admin::AdminKeys;
use crate::error::{ApiError, Common};
use crate::extract::{self, BodyLimits};
use crate::limit::{self, IpLimit};
use crate::metrics::{self, PlatformMetrics};
use crate::ops::{self, ApiDocument, Readiness, ScrapeHook};
use crate::telemetry;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing_actix_web::TracingLogger;

/// How long a request may take: one deadline for every route, and longer ones for the
/// routes (by pattern, e.g. `/v1/admin/campaigns/{id}/bulk-issuances`) that do long work.
#[derive(Debug, Clone)]
pub struct Deadlines {
    default: Duration,
    routes: Arc<HashMap<String, Duration>>,
}

impl Deadlines {
    /// Every route gets `default`.
    pub fn new(default: Duration) -> Deadlines {
        Deadlines {
            default,
            routes: Arc::default(),
        }
    }

    /// The route `pattern` gets `limit` instead.
    #[must_use]
    pub fn route(mut self, pattern: &str, limit: Duration) -> Deadlines {
        Arc::make_mut(&mut self.routes).insert(pattern.to_owned(), limit);
        self
    }

    /// The deadline of a request matched to `pattern`.
    pub fn for_pattern(&self, pattern: Option<&str>) -> Duration {
        pattern
            .and_then(|p| self.routes.get(p))
            .copied()
            .unwrap_or(self.default)
    }
}

/// What the builder puts around a service's routes. Cheap to clone (one per worker).
#[derive(Clone)]
pub struct Plumbing {
    /// The service's registry and shared metrics.
    pub metrics: PlatformMetrics,
    /// Body size limits.
    pub limits: BodyLimits,
    /// The per-IP rate limit.
    pub ip_limit: Arc<IpLimit>,
    /// The readiness checks.
    pub readiness: Readiness,
    /// Administrators' keys (for the `Admin` extractor).
    pub admins: Arc<AdminKeys>,
    /// The OpenAPI document served at `/openapi.json`.
    pub document: ApiDocument,
    /// Request deadlines.
    pub deadlines: Deadlines,
    /// Run before `/metrics` renders, if set.
    pub scrape_hook: Option<ScrapeHook>,
}

/// The application: the service's routes (`configure`) inside the shared plumbing.
pub fn build(
    plumbing: &Plumbing,
    configure: impl FnOnce(&mut web::ServiceConfig),
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limits = plumbing.limits;
    let mut app = App::new()
        .app_data(limits)
        .app_data(
            web::JsonConfig::default()
                .limit(limits.json)
                .error_handler(extract::json_error_handler),
        )
        .app_data(web::PathConfig::default().error_handler(extract::path_error_handler))
        .app_data(web::QueryConfig::default().error_handler(extract::query_error_handler))
        .app_data(web::Data::from(plumbing.ip_limit.clone()))
        .app_data(web::Data::new(plumbing.metrics.clone()))
        .app_data(web::Data::new(plumbing.readiness.clone()))
        .app_data(web::Data::from(plumbing.admins.clone()))
        .app_data(web::Data::new(plumbing.document.clone()))
        .app_data(web::Data::new(plumbing.deadlines.clone()));
    if let Some(hook) = &plumbing.scrape_hook {
        app = app.app_data(web::Data::new(hook.clone()));
    }
    app.configure(ops::configure)
        .configure(configure)
        .default_service(web::to(extract::not_found))
        .wrap(from_fn(deadline))
        .wrap(from_fn(limit::per_ip))
        .wrap(from_fn(metrics::track))
        .wrap(from_fn(telemetry::request_id_header))
        .wrap(TracingLogger::default())
}

/// Middleware: a request still running at its deadline is answered `503
/// DEADLINE_EXCEEDED` with `Retry-After`, and its work is dropped (a transaction in flight
/// rolls back; what was committed stays, and idempotency keys make the retry safe).
pub async fn deadline(
    deadlines: web::Data<Deadlines>,
    metrics: web::Data<PlatformMetrics>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = deadlines.for_pattern(req.match_pattern().as_deref());
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(result) => result,
        Err(_) => {
            metrics.deadline_exceeded.inc();
            // An error, not a response: the request itself moved into the dropped future
            // (and a clone of it would stop the router from filling in its path), so the
            // dispatcher renders the error's response.
            Err(ApiError::new(Common::DeadlineExceeded)
                .with_message(format!(
                    "the request did not finish within {} ms; retry shortly",
                    limit.as_millis()
                ))
                .into())
        }
    }
}

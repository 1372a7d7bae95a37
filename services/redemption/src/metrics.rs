//! Every Prometheus metric of the redemption service, registered in ONE place, plus the
//! middleware that counts and times HTTP requests. Names follow `redemption_<noun>_<unit>`;
//! histograms have explicit buckets.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::time::Instant;

/// Latency buckets, 0.5 ms … 2.5 s.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The service's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `redemption_http_requests_total{route,status}`.
    pub http_requests: IntCounterVec,
    /// `redemption_http_request_duration_seconds{route}`.
    pub http_duration: HistogramVec,
    /// `redemption_decisions_total{kind,outcome,reason}`: checkout decisions.
    pub decisions: IntCounterVec,
    /// `redemption_decision_duration_seconds{kind}`: a checkout decision, request to answer.
    pub decision_duration: HistogramVec,
    /// `redemption_holds_outstanding`: holds neither captured, voided nor expired.
    pub holds_outstanding: IntGauge,
}

impl Metrics {
    /// Creates every metric in a fresh registry.
    ///
    /// # Errors
    /// A name registered twice (a bug).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "redemption_http_requests_total",
                "HTTP requests by route pattern and status",
            ),
            &["route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "redemption_http_request_duration_seconds",
                "HTTP request duration by route pattern",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        let decisions = IntCounterVec::new(
            Opts::new(
                "redemption_decisions_total",
                "Checkout decisions by kind (sale, hold), outcome and reason",
            ),
            &["kind", "outcome", "reason"],
        )?;
        let decision_duration = HistogramVec::new(
            HistogramOpts::new(
                "redemption_decision_duration_seconds",
                "Duration of a checkout decision",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["kind"],
        )?;
        let holds_outstanding = IntGauge::new(
            "redemption_holds_outstanding",
            "Holds not yet captured, voided or expired",
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(decision_duration.clone()))?;
        registry.register(Box::new(holds_outstanding.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            decisions,
            decision_duration,
            holds_outstanding,
        })
    }

    /// Counts one decision and its duration.
    pub fn decision(&self, kind: &str, outcome: &str, reason: &str, started: Instant) {
        self.decisions
            .with_label_values(&[kind, outcome, reason])
            .inc();
        self.decision_duration
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("metrics encoding failed: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Middleware: counts and times every request under its route pattern.
pub async fn track(
    metrics: web::Data<Metrics>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    metrics
        .http_requests
        .with_label_values(&[route.as_str(), &status.to_string()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    if status >= 400 {
        tracing::info!(route = %route, status, "request refused or failed");
    }
    result
}

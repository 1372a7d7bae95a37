//! Every Prometheus metric of the redemption service, registered in ONE place. Names follow
//! `redemption_<noun>_<unit>`; histograms have explicit buckets. HTTP requests are counted
//! and timed by the middleware the services share ([`issuance::metrics::track`]).

use issuance::metrics::HttpMetrics;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
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
    /// `redemption_http_requests_total{route,status}`, `redemption_http_request_duration_seconds{route}`.
    pub http: HttpMetrics,
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
        let http = HttpMetrics::register(&registry, "redemption")?;
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
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(decision_duration.clone()))?;
        registry.register(Box::new(holds_outstanding.clone()))?;
        Ok(Metrics {
            registry,
            http,
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
        issuance::metrics::render(&self.registry)
    }
}

impl AsRef<HttpMetrics> for Metrics {
    fn as_ref(&self) -> &HttpMetrics {
        &self.http
    }
}

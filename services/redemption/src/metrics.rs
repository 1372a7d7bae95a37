//! Every Prometheus metric of the redemption service, registered in ONE place, into the
//! service's registry (whose HTTP, deadline and dependency metrics are the platform's:
//! [`voucher_platform::metrics`]). Names follow `redemption_<noun>_<unit>`; histograms
//! have explicit buckets.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use std::time::Instant;
use voucher_platform::metrics::LATENCY_BUCKETS;

/// The service's own metrics.
#[derive(Clone)]
pub struct Metrics {
    /// `redemption_decisions_total{kind,outcome,reason}`: checkout decisions.
    pub decisions: IntCounterVec,
    /// `redemption_decision_duration_seconds{kind}`: a checkout decision, request to answer.
    pub decision_duration: HistogramVec,
    /// `redemption_holds_outstanding`: holds neither captured, voided nor expired
    /// (refreshed from PostgreSQL on each scrape).
    pub holds_outstanding: IntGauge,
}

impl Metrics {
    /// Creates every metric in `registry`.
    ///
    /// # Errors
    /// A name registered twice (a bug).
    pub fn register(registry: &Registry) -> Result<Metrics, prometheus::Error> {
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
}

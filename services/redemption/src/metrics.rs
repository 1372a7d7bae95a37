//! Every Prometheus metric of the redemption service, registered in ONE place, into the
//! service's registry (whose HTTP, deadline and dependency metrics are the platform's:
//! [`voucher_platform::metrics`]). Names follow `redemption_<noun>_<unit>`; histograms
//! have explicit buckets.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
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
    /// `redemption_group_commit_batch_size`: checkout decisions per group commit.
    pub batch_size: Histogram,
    /// `redemption_group_commit_alone_total`: decisions a batch could not take (a lock
    /// another transaction held, a failure) and that were decided alone after it.
    pub batch_retried_alone: IntCounter,
    /// `redemption_spent_filter_hits_total`: checkouts of a voucher the spent filter knows
    /// spent for good, answered without a transaction (refused, or a retry's stored answer
    /// replayed).
    pub spent_filter_hits: IntCounter,
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
        let batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "redemption_group_commit_batch_size",
                "Checkout decisions committed in one transaction by a decider",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 30.0]),
        )?;
        let batch_retried_alone = IntCounter::new(
            "redemption_group_commit_alone_total",
            "Checkout decisions a group commit left to be decided alone",
        )?;
        let spent_filter_hits = IntCounter::new(
            "redemption_spent_filter_hits_total",
            "Checkouts of a voucher known spent for good, answered without a transaction",
        )?;
        registry.register(Box::new(spent_filter_hits.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(batch_retried_alone.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(decision_duration.clone()))?;
        registry.register(Box::new(holds_outstanding.clone()))?;
        Ok(Metrics {
            decisions,
            decision_duration,
            holds_outstanding,
            batch_size,
            batch_retried_alone,
            spent_filter_hits,
        })
    }

    /// Counts one group commit of `size` decisions.
    pub fn batch(&self, size: usize) {
        self.batch_size
            .observe(f64::from(u32::try_from(size).unwrap_or(u32::MAX)));
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

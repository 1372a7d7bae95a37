//! Metrics of the storage layer, registered into the service's registry.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Opts, Registry};

/// The store's metrics.
#[derive(Clone)]
pub struct StoreMetrics {
    /// Entries waiting in the outbox streams.
    pub outbox_lag: IntGauge,
    /// Events persisted.
    pub persisted_events: IntCounter,
    /// Batch duration.
    pub persist_batch_seconds: Histogram,
}

impl StoreMetrics {
    /// Creates and registers the metrics.
    ///
    /// # Errors
    /// A metric of the same name is already registered.
    pub fn register(registry: &Registry, service: &str) -> Result<StoreMetrics, prometheus::Error> {
        let outbox_lag = IntGauge::with_opts(Opts::new(
            format!("{service}_outbox_lag_events"),
            "Events in the outbox streams not yet persisted",
        ))?;
        let persisted_events = IntCounter::with_opts(Opts::new(
            format!("{service}_persisted_events_total"),
            "Events written to PostgreSQL by the persister",
        ))?;
        let persist_batch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                format!("{service}_persist_batch_duration_seconds"),
                "Duration of one persister batch",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )?;
        registry.register(Box::new(outbox_lag.clone()))?;
        registry.register(Box::new(persisted_events.clone()))?;
        registry.register(Box::new(persist_batch_seconds.clone()))?;
        Ok(StoreMetrics {
            outbox_lag,
            persisted_events,
            persist_batch_seconds,
        })
    }
}

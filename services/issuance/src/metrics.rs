//! Every Prometheus metric of the issuance service, registered in ONE place, into the
//! service's registry (whose HTTP, deadline and dependency metrics are the platform's:
//! [`voucher_platform::metrics`]). Names follow `issuance_<noun>_<unit>`; histograms have
//! explicit buckets.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use voucher_platform::metrics::LATENCY_BUCKETS;
use voucher_store::metrics::StoreMetrics;

/// Claim outcomes, the values of the `outcome` label.
pub mod outcome {
    /// A new voucher.
    pub const CLAIMED: &str = "claimed";
    /// A retried claim that returned the first result.
    pub const REPLAYED: &str = "replayed";
    /// No stock.
    pub const SOLD_OUT: &str = "sold_out";
    /// Per-person limit.
    pub const LIMIT_REACHED: &str = "limit_reached";
    /// No round open.
    pub const NOT_OPEN: &str = "not_open";
    /// Campaign paused.
    pub const PAUSED: &str = "paused";
    /// Place or real-name level.
    pub const INELIGIBLE: &str = "ineligible";
    /// Per-person rate limit.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// Redis lost the campaign's hot state (`HOT_STATE_LOST`): waits for a rebuild.
    pub const HOT_STATE_LOST: &str = "hot_state_lost";
    /// Anything else (store down, unknown campaign, claim id conflict…).
    pub const ERROR: &str = "error";
    /// All of them, so every series exists from the start.
    pub const ALL: [&str; 10] = [
        CLAIMED,
        REPLAYED,
        SOLD_OUT,
        LIMIT_REACHED,
        NOT_OPEN,
        PAUSED,
        INELIGIBLE,
        RATE_LIMITED,
        HOT_STATE_LOST,
        ERROR,
    ];
}

/// The service's own metrics.
#[derive(Clone)]
pub struct Metrics {
    /// `issuance_claims_total{outcome}`.
    pub claims: IntCounterVec,
    /// `issuance_claim_duration_seconds`: the whole claim, request to signed token.
    pub claim_duration: Histogram,
    /// `issuance_redis_duration_seconds{op}`: one Redis call.
    pub redis_duration: HistogramVec,
    /// `issuance_campaign_live_stock{campaign}`: released and unclaimed vouchers.
    pub campaign_live_stock: IntGaugeVec,
    /// `issuance_campaign_claimed{campaign}`: claimed vouchers, ever.
    pub campaign_claimed: IntGaugeVec,
    /// `issuance_hot_state_lost{campaign}`: 1 while Redis has lost the campaign's hot state
    /// (claims answer `HOT_STATE_LOST` until `reconciliation rebuild`), else 0. Alert on
    /// `max(issuance_hot_state_lost) > 0`: it pages an operator.
    pub hot_state_lost: IntGaugeVec,
    /// The store's metrics (outbox lag, persisted events, batch duration).
    pub store: StoreMetrics,
}

impl Metrics {
    /// Creates every metric in `registry`.
    ///
    /// # Errors
    /// A name is registered twice (a bug).
    pub fn register(registry: &Registry) -> Result<Metrics, prometheus::Error> {
        let claims = IntCounterVec::new(
            Opts::new("issuance_claims_total", "Claims by outcome"),
            &["outcome"],
        )?;
        let claim_duration = Histogram::with_opts(
            HistogramOpts::new(
                "issuance_claim_duration_seconds",
                "Duration of a claim, request to signed token",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let redis_duration = HistogramVec::new(
            HistogramOpts::new(
                "issuance_redis_duration_seconds",
                "Duration of one Redis call by operation",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["op"],
        )?;
        let campaign_live_stock = IntGaugeVec::new(
            Opts::new(
                "issuance_campaign_live_stock",
                "Released and unclaimed vouchers per campaign",
            ),
            &["campaign"],
        )?;
        let campaign_claimed = IntGaugeVec::new(
            Opts::new(
                "issuance_campaign_claimed",
                "Vouchers claimed per campaign, ever",
            ),
            &["campaign"],
        )?;
        let hot_state_lost = IntGaugeVec::new(
            Opts::new(
                "issuance_hot_state_lost",
                "1 while Redis has lost the campaign's hot state (claims wait for a rebuild)",
            ),
            &["campaign"],
        )?;
        registry.register(Box::new(claims.clone()))?;
        registry.register(Box::new(claim_duration.clone()))?;
        registry.register(Box::new(redis_duration.clone()))?;
        registry.register(Box::new(campaign_live_stock.clone()))?;
        registry.register(Box::new(campaign_claimed.clone()))?;
        registry.register(Box::new(hot_state_lost.clone()))?;
        let store = StoreMetrics::register(registry, "issuance")?;
        for o in outcome::ALL {
            claims.with_label_values(&[o]);
        }
        Ok(Metrics {
            claims,
            claim_duration,
            redis_duration,
            campaign_live_stock,
            campaign_claimed,
            hot_state_lost,
            store,
        })
    }

    /// Counts one claim outcome.
    pub fn claim_outcome(&self, outcome: &str) {
        self.claims.with_label_values(&[outcome]).inc();
    }

    /// Times a Redis call.
    pub fn redis_timer(&self, op: &str) -> prometheus::HistogramTimer {
        self.redis_duration.with_label_values(&[op]).start_timer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_rendered() {
        let platform = voucher_platform::metrics::PlatformMetrics::new("issuance").unwrap();
        let m = Metrics::register(&platform.registry).unwrap();
        m.claim_outcome(outcome::CLAIMED);
        m.campaign_live_stock.with_label_values(&["7"]).set(42);
        m.hot_state_lost.with_label_values(&["7"]).set(1);
        m.redis_duration
            .with_label_values(&["claim"])
            .observe(0.001);
        m.claim_duration.observe(0.002);
        let text = platform.render();
        for name in [
            "issuance_claims_total{outcome=\"claimed\"} 1",
            "issuance_claims_total{outcome=\"sold_out\"} 0",
            "issuance_claim_duration_seconds",
            "issuance_redis_duration_seconds",
            "issuance_campaign_live_stock{campaign=\"7\"} 42",
            "issuance_outbox_lag_events",
            "issuance_hot_state_lost{campaign=\"7\"} 1",
            "issuance_claims_total{outcome=\"hot_state_lost\"} 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}

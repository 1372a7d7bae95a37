//! Every Prometheus metric of the issuance service, registered in ONE place, plus the
//! middleware that counts and times HTTP requests and the `/metrics` renderer.
//! Names follow `issuance_<noun>_<unit>`; histograms have explicit buckets.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::time::Instant;
use voucher_store::metrics::StoreMetrics;

/// Latency buckets, 0.5 ms … 2.5 s.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

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
    /// Anything else (store down, unknown campaign, claim id conflict…).
    pub const ERROR: &str = "error";
    /// All of them, so every series exists from the start.
    pub const ALL: [&str; 9] = [
        CLAIMED,
        REPLAYED,
        SOLD_OUT,
        LIMIT_REACHED,
        NOT_OPEN,
        PAUSED,
        INELIGIBLE,
        RATE_LIMITED,
        ERROR,
    ];
}

/// The service's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `issuance_http_requests_total{route,status}`, `issuance_http_request_duration_seconds{route}`.
    pub http: HttpMetrics,
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
    /// The store's metrics (outbox lag, persisted events, batch duration).
    pub store: StoreMetrics,
}

impl Metrics {
    /// Creates every metric in a fresh registry.
    ///
    /// # Errors
    /// A name is registered twice (a bug).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let http = HttpMetrics::register(&registry, "issuance")?;
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
        registry.register(Box::new(claims.clone()))?;
        registry.register(Box::new(claim_duration.clone()))?;
        registry.register(Box::new(redis_duration.clone()))?;
        registry.register(Box::new(campaign_live_stock.clone()))?;
        registry.register(Box::new(campaign_claimed.clone()))?;
        let store = StoreMetrics::register(&registry, "issuance")?;
        for o in outcome::ALL {
            claims.with_label_values(&[o]);
        }
        Ok(Metrics {
            registry,
            http,
            claims,
            claim_duration,
            redis_duration,
            campaign_live_stock,
            campaign_claimed,
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

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

/// The text exposition of every metric in `registry` (shared by the services).
pub fn render(registry: &Registry) -> String {
    let mut out = Vec::new();
    // Encoding into a Vec fails only on a malformed metric family, i.e. never for ours.
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut out) {
        tracing::error!("metrics encoding failed: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Requests counted and timed by route pattern (`/v1/campaigns/{id}/claims`, not the
/// concrete path, so the label set stays small; unmatched paths are `unmatched`) and status:
/// `<service>_http_requests_total{route,status}` and
/// `<service>_http_request_duration_seconds{route}`, the same in every service.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Creates both metrics for `service` in `registry`.
    ///
    /// # Errors
    /// A name registered twice (a bug).
    pub fn register(registry: &Registry, service: &str) -> Result<HttpMetrics, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                format!("{service}_http_requests_total"),
                "HTTP requests by route pattern and status",
            ),
            &["route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{service}_http_request_duration_seconds"),
                "HTTP request duration by route pattern",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(HttpMetrics { requests, duration })
    }

    /// Counts one request.
    pub fn observe(&self, route: &str, status: u16, elapsed: std::time::Duration) {
        self.requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }
}

impl AsRef<HttpMetrics> for Metrics {
    fn as_ref(&self) -> &HttpMetrics {
        &self.http
    }
}

/// Middleware: counts, times and logs every request, for any service whose metrics (the
/// app data `M`) include [`HttpMetrics`].
pub async fn track<M: AsRef<HttpMetrics> + 'static>(
    metrics: web::Data<M>,
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
    let elapsed = started.elapsed();
    metrics.get_ref().as_ref().observe(&route, status, elapsed);
    // The access log line, inside the request's span (so it carries the request id).
    // Failures (5xx) at warn; refusals (4xx: sold out, over the limit, …, counted in the
    // metrics) and successes at debug, so a rush does not flood the log.
    let elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    if status >= 500 {
        tracing::warn!(route = %route, status, elapsed_us, "request failed");
    } else if status >= 400 {
        tracing::debug!(route = %route, status, elapsed_us, "request refused");
    } else {
        tracing::debug!(route = %route, status, elapsed_us, "request served");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_rendered() {
        let m = Metrics::new().unwrap();
        m.claim_outcome(outcome::CLAIMED);
        m.campaign_live_stock.with_label_values(&["7"]).set(42);
        m.http
            .observe("/healthz", 200, std::time::Duration::from_millis(1));
        m.redis_duration
            .with_label_values(&["claim"])
            .observe(0.001);
        m.claim_duration.observe(0.002);
        let text = m.render();
        for name in [
            "issuance_http_requests_total{route=\"/healthz\",status=\"200\"} 1",
            "issuance_http_request_duration_seconds_bucket",
            "issuance_claims_total{outcome=\"claimed\"} 1",
            "issuance_claims_total{outcome=\"sold_out\"} 0",
            "issuance_claim_duration_seconds",
            "issuance_redis_duration_seconds",
            "issuance_campaign_live_stock{campaign=\"7\"} 42",
            "issuance_outbox_lag_events",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}

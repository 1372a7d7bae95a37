//! The metrics every service has, in the service's one registry: HTTP requests by route
//! pattern and status, their duration, requests cut by the deadline, and whether each
//! dependency answers. A service registers its own metrics into the same registry
//! ([`PlatformMetrics::registry`]); `/metrics` renders it. Names follow
//! `<service>_<noun>_<unit>`; histograms have explicit buckets.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::time::Instant;

/// Latency buckets, 0.5 ms … 2.5 s.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The shared metrics of one service.
#[derive(Clone)]
pub struct PlatformMetrics {
    /// The service's registry (its own metrics go here too).
    pub registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    /// `<service>_requests_deadline_exceeded_total`.
    pub deadline_exceeded: IntCounter,
    /// `<service>_dependency_up{dependency}`: 1 when the last check answered, else 0.
    pub dependency_up: IntGaugeVec,
}

impl PlatformMetrics {
    /// A fresh registry with the shared metrics of `service` (`issuance`, `redemption`…):
    /// `<service>_http_requests_total{route,status}`,
    /// `<service>_http_request_duration_seconds{route}`,
    /// `<service>_requests_deadline_exceeded_total` and `<service>_dependency_up{dependency}`.
    ///
    /// # Errors
    /// A name registered twice (a bug).
    pub fn new(service: &str) -> Result<PlatformMetrics, prometheus::Error> {
        let registry = Registry::new();
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
        let deadline_exceeded = IntCounter::new(
            format!("{service}_requests_deadline_exceeded_total"),
            "Requests answered 503 DEADLINE_EXCEEDED because they ran past the deadline",
        )?;
        let dependency_up = IntGaugeVec::new(
            Opts::new(
                format!("{service}_dependency_up"),
                "Whether a dependency answered its last readiness check (1) or not (0)",
            ),
            &["dependency"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(deadline_exceeded.clone()))?;
        registry.register(Box::new(dependency_up.clone()))?;
        Ok(PlatformMetrics {
            registry,
            requests,
            duration,
            deadline_exceeded,
            dependency_up,
        })
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

    /// The text exposition of every metric in the registry.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec fails only on a malformed metric family, i.e. never for ours.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("metrics encoding failed: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Middleware: counts, times and logs every request. Requests are labelled by route
/// pattern (`/v1/campaigns/{id}/claims`, not the concrete path, so the label set stays
/// small; unmatched paths are `unmatched`).
pub async fn track(
    metrics: web::Data<PlatformMetrics>,
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
    metrics.observe(&route, status, elapsed);
    // The access log line, inside the request's span (so it carries the request id).
    // Failures (5xx) at warn; refusals (4xx, counted in the metrics) and successes at debug,
    // so a rush does not flood the log.
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
    fn the_shared_metrics_are_rendered_under_the_service_name() {
        let m = PlatformMetrics::new("demo").unwrap_or_else(|e| panic!("{e}"));
        m.observe("/healthz", 200, std::time::Duration::from_millis(1));
        m.dependency_up.with_label_values(&["redis"]).set(1);
        m.deadline_exceeded.inc();
        let text = m.render();
        for name in [
            "demo_http_requests_total{route=\"/healthz\",status=\"200\"} 1",
            "demo_http_request_duration_seconds_bucket",
            "demo_dependency_up{dependency=\"redis\"} 1",
            "demo_requests_deadline_exceeded_total 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}

//! Rate limits (governor, GCRA), keyed: per person on claims, per terminal key on signed
//! requests, and per client IP on every request of every service, as a first line against
//! floods. Over a limit the answer is 429 `RATE_LIMITED` with `Retry-After`.
//!
//! The client IP is the connection's peer address; `X-Forwarded-For` (its first entry) is
//! believed only when the service's settings say a trusted proxy sets it.

use crate::error::ApiError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;

/// A keyed GCRA limit: `per_second` sustained, `burst` at once, per key.
pub struct Limiter<K: Hash + Eq + Clone>(DefaultKeyedRateLimiter<K>);

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limit of `per_second` with bursts of `burst` (zeros are treated as 1; settings
    /// validation refuses them).
    pub fn new(per_second: u32, burst: u32) -> Limiter<K> {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Limiter(RateLimiter::keyed(
            Quota::per_second(rate).allow_burst(burst),
        ))
    }

    /// One request for `key`.
    ///
    /// # Errors
    /// `RATE_LIMITED` with the whole seconds to wait (at least 1: "retry after 0 s" would
    /// invite an immediate retry that fails again).
    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        self.0.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::rate_limited((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
        })
    }

    /// Forgets keys whose limits are back to full (bounded memory under many keys).
    pub fn housekeeping(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }

    /// How many keys the limiter remembers (what [`Limiter::housekeeping`] bounds); an
    /// estimate while requests are being checked.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the limiter remembers no key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The per-IP limit of a service.
pub struct IpLimit {
    limiter: Limiter<IpAddr>,
    trust_forwarded_for: bool,
}

impl IpLimit {
    /// `per_second` sustained and `burst` at once per client IP; `trust_forwarded_for`:
    /// take the IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub fn new(per_second: u32, burst: u32, trust_forwarded_for: bool) -> IpLimit {
        IpLimit {
            limiter: Limiter::new(per_second, burst),
            trust_forwarded_for,
        }
    }

    /// One request from `ip`.
    ///
    /// # Errors
    /// `RATE_LIMITED`.
    pub fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.limiter.check(&ip)
    }

    /// Forgets addresses whose limits are back to full.
    pub fn housekeeping(&self) {
        self.limiter.housekeeping();
    }
}

/// The client IP of a request: the first `X-Forwarded-For` entry when a trusted proxy sets
/// it, else the connection's peer address.
pub fn client_ip(req: &ServiceRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.peer_addr().map(|a| a.ip())
}

/// Middleware: the per-IP limit on every request. Requests without a peer address (unit
/// tests) pass.
pub async fn per_ip(
    limit: web::Data<IpLimit>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(ip) = client_ip(&req, limit.trust_forwarded_for) {
        if let Err(e) = limit.check(ip) {
            let response = e.error_response();
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits_and_others_have_their_own() {
        let limiter: Limiter<&str> = Limiter::new(1, 3);
        for _ in 0..3 {
            assert!(limiter.check(&"alice").is_ok());
        }
        let refused = limiter.check(&"alice").map(|_| ()).unwrap_err();
        assert_eq!(refused.code(), "RATE_LIMITED");
        assert_eq!(
            refused.details().map(|d| d["retry_after_secs"].clone()),
            Some(serde_json::json!(1))
        );
        assert!(limiter.check(&"bob").is_ok());
        limiter.housekeeping();
    }

    #[test]
    fn ips_are_limited_separately() {
        let limit = IpLimit::new(1, 1, false);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(limit.check(a).is_ok());
        assert!(limit.check(a).is_err());
        assert!(limit.check(b).is_ok());
    }
}

//! Rate limits (governor, GCRA): per person on claims, so that one resident scripting the
//! rush gains nothing over a phone, and per client IP on every request, as a first line
//! against floods. Over a limit the answer is 429 `RATE_LIMITED` with `Retry-After`.
//!
//! The client IP is the connection's peer address; `X-Forwarded-For` (its first entry) is
//! believed only when `rate_limits.trust_forwarded_for` says a trusted proxy sets it.
//! [`Limiter`] and [`client_ip`] are shared with the redemption service (per terminal key).

use crate::error::ApiError;
use crate::settings::RateLimitSettings;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use voucher_core::PersonId;

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
    /// The whole seconds to wait before the next request passes (at least 1: "retry after
    /// 0 s" would invite an immediate retry that fails again).
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.0.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }

    /// Forgets keys whose limits are back to full (bounded memory under many keys).
    pub fn housekeeping(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
}

/// The client IP of a request: the first `X-Forwarded-For` entry when a trusted proxy sets
/// it (`trust_forwarded_for`), else the connection's peer address.
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

/// The service's limiters.
pub struct RateLimiters {
    person: Limiter<PersonId>,
    ip: Limiter<IpAddr>,
    trust_forwarded_for: bool,
}

impl RateLimiters {
    /// Limiters from the settings.
    pub fn new(settings: &RateLimitSettings) -> RateLimiters {
        RateLimiters {
            person: Limiter::new(settings.person_per_second, settings.person_burst),
            ip: Limiter::new(settings.ip_per_second, settings.ip_burst),
            trust_forwarded_for: settings.trust_forwarded_for,
        }
    }

    /// One claim attempt by `person`.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`].
    pub fn check_person(&self, person: &PersonId) -> Result<(), ApiError> {
        self.person.check(person).map_err(limited)
    }

    /// One request from `ip`.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`].
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.ip.check(&ip).map_err(limited)
    }

    /// Forgets keys whose limits are back to full.
    pub fn housekeeping(&self) {
        self.person.housekeeping();
        self.ip.housekeeping();
    }
}

fn limited(retry_after_secs: u64) -> ApiError {
    ApiError::RateLimited { retry_after_secs }
}

/// Middleware: the per-IP limit on every request. Requests without a peer address (unit
/// tests) pass.
pub async fn per_ip(
    limiters: web::Data<RateLimiters>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(ip) = client_ip(&req, limiters.trust_forwarded_for) {
        if let Err(e) = limiters.check_ip(ip) {
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
    fn a_person_gets_the_burst_then_waits() {
        let settings = RateLimitSettings {
            person_per_second: 1,
            person_burst: 3,
            ..RateLimitSettings::default()
        };
        let limiters = RateLimiters::new(&settings);
        let alice = PersonId::parse("alice").unwrap();
        let bob = PersonId::parse("bob").unwrap();
        for _ in 0..3 {
            limiters.check_person(&alice).unwrap();
        }
        match limiters.check_person(&alice) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected RateLimited, got {other:?}"),
        }
        limiters
            .check_person(&bob)
            .expect("another person has their own budget");
    }

    #[test]
    fn ips_are_limited_separately() {
        let settings = RateLimitSettings {
            ip_per_second: 1,
            ip_burst: 1,
            ..RateLimitSettings::default()
        };
        let limiters = RateLimiters::new(&settings);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        limiters.check_ip(a).unwrap();
        assert!(limiters.check_ip(a).is_err());
        limiters.check_ip(b).unwrap();
        limiters.housekeeping();
    }
}

//! Rate limits (governor): per terminal key on every signed request, per client IP on every
//! request. Limits come from the settings.

use crate::error::ApiError;
use crate::settings::RateLimitSettings;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError as _};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// The limiters.
pub struct RateLimiters {
    terminal: DefaultKeyedRateLimiter<String>,
    ip: DefaultKeyedRateLimiter<IpAddr>,
    trust_forwarded_for: bool,
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

fn limited(wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::rate_limited(secs.max(1))
}

impl RateLimiters {
    /// From the settings.
    pub fn new(s: &RateLimitSettings) -> RateLimiters {
        RateLimiters {
            terminal: RateLimiter::keyed(quota(s.terminal_per_second, s.terminal_burst)),
            ip: RateLimiter::keyed(quota(s.ip_per_second, s.ip_burst)),
            trust_forwarded_for: s.trust_forwarded_for,
        }
    }

    /// One request from terminal key `key_id`.
    ///
    /// # Errors
    /// `RATE_LIMITED`.
    pub fn check_terminal(&self, key_id: &str) -> Result<(), ApiError> {
        self.terminal
            .check_key(&key_id.to_owned())
            .map_err(|n| limited(n.wait_time_from(DefaultClock::default().now())))
    }

    /// Forgets keys whose limits are back to full.
    pub fn housekeeping(&self) {
        self.terminal.retain_recent();
        self.ip.retain_recent();
    }

    fn client_ip(&self, req: &ServiceRequest) -> Option<IpAddr> {
        if self.trust_forwarded_for {
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
}

/// Middleware: the per-IP limit on every request.
pub async fn per_ip(
    limiters: web::Data<RateLimiters>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(ip) = limiters.client_ip(&req) {
        if let Err(not_until) = limiters.ip.check_key(&ip) {
            let e = limited(not_until.wait_time_from(DefaultClock::default().now()));
            return Ok(req.into_response(e.error_response()).map_into_right_body());
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

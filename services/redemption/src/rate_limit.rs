//! Rate limits (governor): per terminal key on every signed request, per client IP on every
//! request. Limits come from the settings; the limiter and the client-IP rule are the
//! issuance service's ([`issuance::rate_limit`]).

use crate::error::ApiError;
use crate::settings::RateLimitSettings;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError as _};
use issuance::rate_limit::{client_ip, Limiter};
use std::net::IpAddr;

/// The limiters.
pub struct RateLimiters {
    terminal: Limiter<String>,
    ip: Limiter<IpAddr>,
    trust_forwarded_for: bool,
}

impl RateLimiters {
    /// From the settings.
    pub fn new(s: &RateLimitSettings) -> RateLimiters {
        RateLimiters {
            terminal: Limiter::new(s.terminal_per_second, s.terminal_burst),
            ip: Limiter::new(s.ip_per_second, s.ip_burst),
            trust_forwarded_for: s.trust_forwarded_for,
        }
    }

    /// One request from terminal key `key_id`.
    ///
    /// # Errors
    /// `RATE_LIMITED`.
    pub fn check_terminal(&self, key_id: &str) -> Result<(), ApiError> {
        self.terminal
            .check(&key_id.to_owned())
            .map_err(ApiError::rate_limited)
    }

    /// Forgets keys whose limits are back to full.
    pub fn housekeeping(&self) {
        self.terminal.housekeeping();
        self.ip.housekeeping();
    }
}

/// Middleware: the per-IP limit on every request.
pub async fn per_ip(
    limiters: web::Data<RateLimiters>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(ip) = client_ip(&req, limiters.trust_forwarded_for) {
        if let Err(secs) = limiters.ip.check(&ip) {
            let e = ApiError::rate_limited(secs);
            return Ok(req.into_response(e.error_response()).map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

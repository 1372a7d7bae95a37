//! The redemption API's one error type. Every refusal that is not a checkout decline is an
//! [`ApiError`] with a stable [`Code`]; each code's HTTP status comes from ONE table
//! ([`Code::info`]). The body is issuance's [`ErrorBody`]: `{code, message, type, details?}`;
//! a 5xx body is opaque and its cause chain goes to the log.
//!
//! Checkout *declines* (a voucher that cannot pay for this order: already redeemed, expired,
//! wrong category…) are not errors: they are answered `200` with
//! `{"outcome": "declined", "reason": …}` (see [`crate::checkout::Decline`]), like a card
//! network's decline, so a terminal branches on `outcome` and never on HTTP status for them.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
pub use issuance::error::{ErrorBody, ErrorType};
use serde_json::json;
use voucher_store::StoreError;

/// The stable error codes of the redemption API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The body is not JSON or a field does not deserialize.
    MalformedJson,
    /// A field or header is refused by validation.
    InvalidField,
    /// The body is over the limit.
    PayloadTooLarge,
    /// Wrong `Content-Type`.
    UnsupportedMediaType,
    /// A terminal request without the signature headers.
    MissingSignature,
    /// `X-Timestamp` more than the allowed skew away from the service clock.
    StaleTimestamp,
    /// `X-Nonce` seen before within the window (a replayed request).
    NonceReused,
    /// The HMAC does not match.
    BadSignature,
    /// Unknown or revoked terminal key.
    TerminalKeyInvalid,
    /// The terminal's merchant is not active.
    MerchantNotActive,
    /// No `X-Api-Key`.
    MissingApiKey,
    /// Unknown API key.
    ApiKeyInvalid,
    /// The administrator does not manage the merchant's place.
    ForbiddenPlace,
    /// No `Idempotency-Key` header.
    MissingIdempotencyKey,
    /// The key was used with another body.
    IdempotencyKeyReused,
    /// The first request with this key is still being processed.
    InFlight,
    /// No such merchant (for you).
    MerchantNotFound,
    /// A merchant with that id or credit code exists.
    MerchantExists,
    /// No such terminal.
    TerminalNotFound,
    /// No such program.
    ProgramNotFound,
    /// No such redemption of yours.
    RedemptionNotFound,
    /// No such route.
    NotFound,
    /// This order reference was already used by the merchant.
    OrderRefUsed,
    /// The hold was already captured, voided or expired.
    HoldResolved,
    /// The hold's timeout passed; it was released.
    HoldExpired,
    /// The redemption cannot be reversed (a hold, voided or expired).
    NotReversible,
    /// The refund window has closed.
    RefundWindowClosed,
    /// More refunded than the order, or a partial refund of a single-use voucher.
    RefundNotAllowed,
    /// Too many requests.
    RateLimited,
    /// PostgreSQL or Redis is unavailable.
    ServiceUnavailable,
    /// A bug.
    Internal,
}

impl Code {
    /// Every code, in the documented order.
    pub const ALL: [Code; 31] = [
        Code::MalformedJson,
        Code::InvalidField,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::MissingSignature,
        Code::StaleTimestamp,
        Code::NonceReused,
        Code::BadSignature,
        Code::TerminalKeyInvalid,
        Code::MerchantNotActive,
        Code::MissingApiKey,
        Code::ApiKeyInvalid,
        Code::ForbiddenPlace,
        Code::MissingIdempotencyKey,
        Code::IdempotencyKeyReused,
        Code::InFlight,
        Code::MerchantNotFound,
        Code::MerchantExists,
        Code::TerminalNotFound,
        Code::ProgramNotFound,
        Code::RedemptionNotFound,
        Code::NotFound,
        Code::OrderRefUsed,
        Code::HoldResolved,
        Code::HoldExpired,
        Code::NotReversible,
        Code::RefundWindowClosed,
        Code::RefundNotAllowed,
        Code::RateLimited,
        Code::ServiceUnavailable,
        Code::Internal,
    ];

    /// THE table: the code's name, its HTTP status and its type.
    pub const fn info(self) -> (&'static str, StatusCode, ErrorType) {
        use ErrorType::*;
        use StatusCode as S;
        match self {
            Code::MalformedJson => ("MALFORMED_JSON", S::BAD_REQUEST, InvalidRequest),
            Code::InvalidField => ("INVALID_FIELD", S::BAD_REQUEST, InvalidRequest),
            Code::PayloadTooLarge => ("PAYLOAD_TOO_LARGE", S::PAYLOAD_TOO_LARGE, InvalidRequest),
            Code::UnsupportedMediaType => (
                "UNSUPPORTED_MEDIA_TYPE",
                S::UNSUPPORTED_MEDIA_TYPE,
                InvalidRequest,
            ),
            Code::MissingSignature => ("MISSING_SIGNATURE", S::UNAUTHORIZED, Auth),
            Code::StaleTimestamp => ("STALE_TIMESTAMP", S::UNAUTHORIZED, Auth),
            Code::NonceReused => ("NONCE_REUSED", S::UNAUTHORIZED, Auth),
            Code::BadSignature => ("BAD_SIGNATURE", S::UNAUTHORIZED, Auth),
            Code::TerminalKeyInvalid => ("TERMINAL_KEY_INVALID", S::UNAUTHORIZED, Auth),
            Code::MerchantNotActive => ("MERCHANT_NOT_ACTIVE", S::FORBIDDEN, Auth),
            Code::MissingApiKey => ("MISSING_API_KEY", S::UNAUTHORIZED, Auth),
            Code::ApiKeyInvalid => ("API_KEY_INVALID", S::UNAUTHORIZED, Auth),
            Code::ForbiddenPlace => ("FORBIDDEN_PLACE", S::FORBIDDEN, Auth),
            Code::MissingIdempotencyKey => {
                ("MISSING_IDEMPOTENCY_KEY", S::BAD_REQUEST, InvalidRequest)
            }
            Code::IdempotencyKeyReused => (
                "IDEMPOTENCY_KEY_REUSED",
                S::UNPROCESSABLE_ENTITY,
                InvalidRequest,
            ),
            Code::InFlight => ("IN_FLIGHT", S::CONFLICT, Conflict),
            Code::MerchantNotFound => ("MERCHANT_NOT_FOUND", S::NOT_FOUND, NotFound),
            Code::MerchantExists => ("MERCHANT_EXISTS", S::CONFLICT, Conflict),
            Code::TerminalNotFound => ("TERMINAL_NOT_FOUND", S::NOT_FOUND, NotFound),
            Code::ProgramNotFound => ("PROGRAM_NOT_FOUND", S::NOT_FOUND, NotFound),
            Code::RedemptionNotFound => ("REDEMPTION_NOT_FOUND", S::NOT_FOUND, NotFound),
            Code::NotFound => ("NOT_FOUND", S::NOT_FOUND, NotFound),
            Code::OrderRefUsed => ("ORDER_REF_USED", S::CONFLICT, Conflict),
            Code::HoldResolved => ("HOLD_RESOLVED", S::CONFLICT, Conflict),
            Code::HoldExpired => ("HOLD_EXPIRED", S::CONFLICT, Conflict),
            Code::NotReversible => ("NOT_REVERSIBLE", S::CONFLICT, Conflict),
            Code::RefundWindowClosed => ("REFUND_WINDOW_CLOSED", S::CONFLICT, Conflict),
            Code::RefundNotAllowed => ("REFUND_NOT_ALLOWED", S::CONFLICT, Conflict),
            Code::RateLimited => ("RATE_LIMITED", S::TOO_MANY_REQUESTS, RateLimit),
            Code::ServiceUnavailable => ("SERVICE_UNAVAILABLE", S::SERVICE_UNAVAILABLE, Internal),
            Code::Internal => ("INTERNAL", S::INTERNAL_SERVER_ERROR, Internal),
        }
    }

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        self.info().0
    }
}

/// Every error the API returns: a code, a message for people, optional details, and for
/// 5xx the cause (logged, never sent).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The stable code.
    pub code: Code,
    /// Human-readable explanation.
    pub message: String,
    /// Machine-readable facts.
    pub details: Option<serde_json::Value>,
    /// For 5xx: what went wrong.
    #[source]
    pub cause: Option<anyhow::Error>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: None,
            cause: None,
        }
    }

    /// Adds details.
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// A bad field or header.
    pub fn invalid_field(field: &str, reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            Code::InvalidField,
            format!("invalid field `{field}`: {reason}"),
        )
        .with_details(json!({ "field": field, "reason": reason.to_string() }))
    }

    /// A bug, with its cause (logged, not sent).
    pub fn internal(cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError {
            cause: Some(cause.into()),
            ..ApiError::new(
                Code::Internal,
                "an internal error occurred; it has been logged",
            )
        }
    }

    /// A store that does not answer.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError {
            cause: Some(cause.into()),
            ..ApiError::new(
                Code::ServiceUnavailable,
                "the service is temporarily unavailable; retry shortly",
            )
        }
    }

    /// Over a rate limit.
    pub fn rate_limited(retry_after_secs: u64) -> ApiError {
        ApiError::new(
            Code::RateLimited,
            format!("too many requests: retry after {retry_after_secs} s"),
        )
        .with_details(json!({ "retry_after_secs": retry_after_secs }))
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        let error_type = serde_json::to_value(self.code.info().2)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        ErrorBody {
            code: self.code.as_str().to_owned(),
            message: self.message.clone(),
            error_type,
            details: self.details.clone(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.info().1
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            if self.code == Code::Internal {
                tracing::error!(error.cause_chain = ?cause, "internal error: {cause:#}");
            } else {
                tracing::warn!("service unavailable: {cause:#}");
            }
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self
            .details
            .as_ref()
            .and_then(|d| d.get("retry_after_secs"))
            .and_then(|v| v.as_u64())
        {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        } else if self.code == Code::ServiceUnavailable {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        response.json(self.body())
    }
}

impl From<StoreError> for ApiError {
    /// Connection-level failures are 503 (retryable); anything else is a bug (500).
    fn from(e: StoreError) -> ApiError {
        let unavailable = match &e {
            StoreError::Redis(_) => true,
            StoreError::Pg(inner) => {
                matches!(
                    inner,
                    sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
                )
            }
            _ => false,
        };
        if unavailable {
            ApiError::unavailable(e)
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<issuance::ApiError> for ApiError {
    /// Body-parsing errors of the shared extractors keep their code and message.
    fn from(e: issuance::ApiError) -> ApiError {
        let body = e.body();
        let code = Code::ALL
            .into_iter()
            .find(|c| c.as_str() == body.code)
            .unwrap_or(Code::InvalidField);
        ApiError {
            code,
            message: body.message,
            details: body.details,
            cause: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_clients_get_4xx_for_their_mistakes() {
        let names: HashSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len());
        for c in Code::ALL {
            let status = c.info().1.as_u16();
            let server = matches!(c, Code::Internal | Code::ServiceUnavailable);
            assert_eq!(status >= 500, server, "{}", c.as_str());
        }
    }
}

//! The error envelope every service answers with, and the tables of stable codes behind it.
//!
//! Each service declares its codes ONCE, in one table, with [`error_codes!`]: a row gives
//! the variant, the stable name, the HTTP status, the [`ErrorType`] and the default message.
//! The codes the shared plumbing itself produces (bad JSON, a body too large, a missing API
//! key, a rate limit, a dependency down…) are this crate's own table, [`Common`]; a service
//! documents `Common::ALL` followed by its own.
//!
//! Every failure a client sees is an [`ApiError`]: a code, a message for people, optional
//! machine-readable details, and for a 5xx the cause, which goes to the log and never to
//! the client. The body is `{"code", "message", "type", "details"?}`; 429 and 503 carry
//! `Retry-After`.
//!
//! Log levels follow what happened: a client's mistake (4xx) is `debug`, a dependency that
//! is down (503) is `warn`, a bug (500) is `error` with the cause chain (never a backtrace).

use actix_web::http::header;
pub use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::json;
use std::borrow::Cow;
use voucher_store::StoreError;

/// The family of an error, for clients that branch on kinds rather than codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The request itself is wrong (fix it before retrying).
    InvalidRequest,
    /// Who you are, or what you may do.
    Auth,
    /// The thing does not exist (for you).
    NotFound,
    /// The request is fine but the state of things refuses it.
    Conflict,
    /// Too many requests: retry after `Retry-After` seconds.
    RateLimit,
    /// Our side: retry later (`Retry-After` on 503).
    Internal,
}

impl ErrorType {
    /// The name in the body's `type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request",
            ErrorType::Auth => "auth",
            ErrorType::NotFound => "not_found",
            ErrorType::Conflict => "conflict",
            ErrorType::RateLimit => "rate_limit",
            ErrorType::Internal => "internal",
        }
    }
}

/// One row of a code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// The stable name, e.g. `SOLD_OUT`.
    pub name: &'static str,
    /// The HTTP status.
    pub status: StatusCode,
    /// The family.
    pub error_type: ErrorType,
    /// The message when the error carries no more specific one.
    pub message: &'static str,
}

/// A table of stable error codes (implemented by [`error_codes!`]).
pub trait ErrorCode: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// Every code of the table, in its documented order.
    const ALL: &'static [Self];

    /// The code's row.
    fn info(self) -> CodeInfo;

    /// The stable name.
    fn name(self) -> &'static str {
        self.info().name
    }

    /// The HTTP status.
    fn status(self) -> StatusCode {
        self.info().status
    }
}

/// Declares a table of error codes: an enum with one variant per row and its
/// [`ErrorCode`] implementation.
///
/// ```
/// voucher_platform::error_codes! {
///     /// The codes of a service.
///     pub enum Code {
///         /// Nothing left.
///         SoldOut => ("SOLD_OUT", CONFLICT, Conflict, "the released vouchers are all claimed"),
///     }
/// }
/// use voucher_platform::error::ErrorCode as _;
/// assert_eq!(Code::SoldOut.name(), "SOLD_OUT");
/// assert_eq!(Code::ALL.len(), 1);
/// ```
#[macro_export]
macro_rules! error_codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $Name:ident {
            $(
                $(#[$vmeta:meta])*
                $Variant:ident => ($code:literal, $status:ident, $kind:ident, $message:literal),
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $Name {
            $( $(#[$vmeta])* $Variant, )+
        }

        impl $crate::error::ErrorCode for $Name {
            const ALL: &'static [Self] = &[$( $Name::$Variant, )+];

            fn info(self) -> $crate::error::CodeInfo {
                match self {
                    $( $Name::$Variant => $crate::error::CodeInfo {
                        name: $code,
                        status: $crate::error::StatusCode::$status,
                        error_type: $crate::error::ErrorType::$kind,
                        message: $message,
                    }, )+
                }
            }
        }
    };
}

error_codes! {
    /// The codes the shared plumbing produces, in every service.
    pub enum Common {
        /// The body is not JSON (a syntax error, or cut short).
        MalformedJson => ("MALFORMED_JSON", BAD_REQUEST, InvalidRequest, "the request body is not valid JSON"),
        /// A well-formed body, path, query or header with a field that is missing, of the
        /// wrong type, out of range, unknown, or refused by validation; `details.field` names it.
        InvalidField => ("INVALID_FIELD", BAD_REQUEST, InvalidRequest, "a field of the request is not valid"),
        /// The body is over the limit (after decompression).
        PayloadTooLarge => ("PAYLOAD_TOO_LARGE", PAYLOAD_TOO_LARGE, InvalidRequest, "the request body is too large"),
        /// Wrong `Content-Type`.
        UnsupportedMediaType => ("UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED_MEDIA_TYPE, InvalidRequest, "the request body has the wrong Content-Type"),
        /// No `X-Api-Key`.
        MissingApiKey => ("MISSING_API_KEY", UNAUTHORIZED, Auth, "an administrator API key is required: send X-Api-Key"),
        /// The API key is unknown.
        ApiKeyInvalid => ("API_KEY_INVALID", UNAUTHORIZED, Auth, "the API key is not valid"),
        /// The administrator does not manage that place.
        ForbiddenPlace => ("FORBIDDEN_PLACE", FORBIDDEN, Auth, "you do not manage this place"),
        /// The administrator's role may not do this.
        ForbiddenRole => ("FORBIDDEN_ROLE", FORBIDDEN, Auth, "your role may not do this"),
        /// No such route.
        NotFound => ("NOT_FOUND", NOT_FOUND, NotFound, "no such route"),
        /// The route exists but not with this method: `Allow` lists the methods it has.
        MethodNotAllowed => ("METHOD_NOT_ALLOWED", METHOD_NOT_ALLOWED, InvalidRequest, "the route does not answer this method"),
        /// Too many requests: `Retry-After` says when to try again.
        RateLimited => ("RATE_LIMITED", TOO_MANY_REQUESTS, RateLimit, "too many requests"),
        /// Redis or PostgreSQL is unavailable: retry after `Retry-After`.
        ServiceUnavailable => ("SERVICE_UNAVAILABLE", SERVICE_UNAVAILABLE, Internal, "the service is temporarily unavailable; retry shortly"),
        /// The request did not finish within the service's deadline: retry after `Retry-After`.
        DeadlineExceeded => ("DEADLINE_EXCEEDED", SERVICE_UNAVAILABLE, Internal, "the request took too long; retry shortly"),
        /// A bug.
        Internal => ("INTERNAL", INTERNAL_SERVER_ERROR, Internal, "an internal error occurred; it has been logged"),
    }
}

/// Every code a service answers with: the platform's [`Common`] codes first, then the
/// service's table `C`, in documented order.
pub fn documented_codes<C: ErrorCode>() -> Vec<CodeInfo> {
    Common::ALL
        .iter()
        .map(|c| c.info())
        .chain(C::ALL.iter().map(|c| c.info()))
        .collect()
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable code, e.g. `SOLD_OUT`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// `invalid_request`, `auth`, `not_found`, `conflict`, `rate_limit` or `internal`.
    #[serde(rename = "type")]
    pub error_type: String,
    /// Machine-readable facts for some codes (e.g. `field`, `reason`, `next_round_starts_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// Seconds a client is asked to wait after a 503.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// Every error a service answers with.
pub struct ApiError {
    info: CodeInfo,
    message: Cow<'static, str>,
    details: Option<serde_json::Value>,
    retry_after_secs: Option<u64>,
    cause: Option<anyhow::Error>,
}

/// Code, message and the cause chain as text: never a backtrace.
impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ApiError");
        d.field("code", &self.info.name)
            .field("message", &self.message);
        if let Some(cause) = &self.cause {
            d.field("cause", &format_args!("{cause:#}"));
        }
        d.finish()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause:#}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|c| c.as_ref() as _)
    }
}

impl ApiError {
    /// An error with `code` and its table's message.
    pub fn new(code: impl ErrorCode) -> ApiError {
        let info = code.info();
        let retry_after_secs = (info.status == StatusCode::SERVICE_UNAVAILABLE)
            .then_some(UNAVAILABLE_RETRY_AFTER_SECS);
        ApiError {
            info,
            message: Cow::Borrowed(info.message),
            details: None,
            retry_after_secs,
            cause: None,
        }
    }

    /// Replaces the message.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> ApiError {
        self.message = message.into();
        self
    }

    /// Adds machine-readable details.
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// Adds the cause (logged for a 5xx, never sent).
    #[must_use]
    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> ApiError {
        self.cause = Some(cause.into());
        self
    }

    /// Sets `Retry-After`.
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The body is not JSON.
    pub fn malformed(reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(Common::MalformedJson)
            .with_message(format!("the request body is not valid JSON: {reason}"))
    }

    /// A bad field: `field` names it (`claim_id`, `rule.off`, `path`, `X-Nonce`).
    pub fn invalid_field(field: impl Into<String>, reason: impl std::fmt::Display) -> ApiError {
        let field = field.into();
        let reason = reason.to_string();
        ApiError::new(Common::InvalidField)
            .with_message(format!("invalid field `{field}`: {reason}"))
            .with_details(json!({ "field": field, "reason": reason }))
    }

    /// A body over `limit` bytes.
    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(Common::PayloadTooLarge).with_message(format!(
            "the request body is larger than the limit of {limit} bytes"
        ))
    }

    /// A body of the wrong media type.
    pub fn unsupported_media_type(expected: &str) -> ApiError {
        ApiError::new(Common::UnsupportedMediaType).with_message(format!(
            "the request body must have Content-Type {expected}"
        ))
    }

    /// No route.
    pub fn route_not_found(method: &str, path: &str) -> ApiError {
        ApiError::new(Common::NotFound).with_message(format!("no route {method} {path}"))
    }

    /// A route that exists but does not answer `method`; `allowed` goes to `Allow` and to
    /// `details.allow`.
    pub fn method_not_allowed(method: &str, path: &str, allowed: &[&str]) -> ApiError {
        ApiError::new(Common::MethodNotAllowed)
            .with_message(format!(
                "{path} does not answer {method}; it answers {}",
                allowed.join(", ")
            ))
            .with_details(json!({ "allow": allowed }))
    }

    /// Over a rate limit.
    pub fn rate_limited(retry_after_secs: u64) -> ApiError {
        ApiError::new(Common::RateLimited)
            .with_message(format!(
                "too many requests: retry after {retry_after_secs} s"
            ))
            .with_details(json!({ "retry_after_secs": retry_after_secs }))
            .with_retry_after(retry_after_secs)
    }

    /// A dependency that does not answer (503 with `Retry-After`).
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError::new(Common::ServiceUnavailable).with_cause(cause)
    }

    /// A bug (500; the cause is logged).
    pub fn internal(cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError::new(Common::Internal).with_cause(cause)
    }

    /// The stable code's name.
    pub fn code(&self) -> &'static str {
        self.info.name
    }

    /// Whether the error has `code`.
    pub fn is(&self, code: impl ErrorCode) -> bool {
        self.info.name == code.name()
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details, if any.
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.details.as_ref()
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.info.status
    }

    /// The body sent to the client (the message of a 5xx never carries its cause).
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.info.name.to_owned(),
            message: self.message.clone().into_owned(),
            error_type: self.info.error_type.as_str().to_owned(),
            details: self.details.clone(),
        }
    }

    /// `Allow` of a `METHOD_NOT_ALLOWED`, from its details.
    fn allow_header(&self) -> Option<String> {
        if self.info.status != StatusCode::METHOD_NOT_ALLOWED {
            return None;
        }
        let methods = self.details.as_ref()?.get("allow")?.as_array()?;
        let names: Vec<&str> = methods.iter().filter_map(|m| m.as_str()).collect();
        Some(names.join(", "))
    }

    fn log(&self) {
        let status = self.info.status;
        let code = self.info.name;
        let cause = self
            .cause
            .as_ref()
            .map_or_else(String::new, |c| format!("{c:#}"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(code, cause = %cause, "dependency unavailable");
        } else if status.is_server_error() {
            tracing::error!(code, cause = %cause, "internal error");
        } else {
            tracing::debug!(code, message = %self.message, "request refused");
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.info.status
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let mut response = HttpResponse::build(self.info.status);
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(allow) = self.allow_header() {
            response.insert_header((header::ALLOW, allow));
        }
        response.json(self.body())
    }
}

impl From<StoreError> for ApiError {
    /// A dependency that is down, unreachable or failing over is a 503 with `Retry-After`;
    /// anything else is a bug (500).
    fn from(e: StoreError) -> ApiError {
        if e.is_unavailable() {
            ApiError::unavailable(e)
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        StoreError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn common_codes_are_unique_screaming_snake_case_and_5xx_only_for_internal() {
        let names: HashSet<_> = Common::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Common::ALL.len());
        for code in Common::ALL {
            let info = code.info();
            assert!(info
                .name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_'));
            assert_eq!(
                info.status.is_server_error(),
                info.error_type == ErrorType::Internal,
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_5xx_body_is_opaque_and_a_503_asks_to_retry() {
        let e = ApiError::internal(anyhow::anyhow!("password=hunter2 in the DSN"));
        let body = serde_json::to_string(&e.body()).unwrap_or_default();
        assert!(!body.contains("hunter2"), "{body}");
        assert!(body.contains("\"code\":\"INTERNAL\""));
        let response = ApiError::unavailable(anyhow::anyhow!("redis down")).error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }

    #[test]
    fn rate_limited_sets_retry_after_and_invalid_field_names_the_field() {
        let response = ApiError::rate_limited(3).error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("3")
        );
        let body = ApiError::invalid_field("claim_id", "must be a UUID").body();
        assert_eq!(body.code, "INVALID_FIELD");
        assert!(body.message.contains("claim_id") && body.message.contains("UUID"));
        assert_eq!(
            body.details.map(|d| d["field"].clone()),
            Some(json!("claim_id"))
        );
    }

    #[test]
    fn debug_output_has_the_cause_chain_but_no_backtrace() {
        std::env::set_var("RUST_LIB_BACKTRACE", "1");
        let e = ApiError::unavailable(anyhow::anyhow!("connection refused").context("redis"));
        let text = format!("{e:?}");
        assert!(text.contains("redis: connection refused"), "{text}");
        assert!(
            !text.contains("Stack backtrace") && !text.contains("backtrace"),
            "{text}"
        );
    }

    #[test]
    fn dependency_failures_are_503_and_bugs_500() {
        let down: ApiError = StoreError::Pg(sqlx::Error::PoolTimedOut).into();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bug: ApiError = StoreError::Corrupt("x".into()).into();
        assert_eq!(bug.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}

//! The API's one error type. Every failure a client can see is an [`ApiError`]; each maps to
//! a stable [`Code`] whose HTTP status and error type come from ONE table ([`Code::info`]),
//! so the codes documented in the README and the OpenAPI document are exactly those sent.
//!
//! Body: `{"code": "SOLD_OUT", "message": "...", "type": "conflict", "details": {...}?}`.
//! A 5xx body is opaque: the cause chain goes to the log, never to the client.

use crate::secrets::AdminRole;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use voucher_core::campaign::Ineligible;
use voucher_core::{CampaignId, PlaceCode, ProgramId};
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
    /// Our fault: retry later.
    Internal,
}

/// The stable error codes of the issuance API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The body is not JSON.
    MalformedJson,
    /// A field is well formed but refused by the domain's validation (or a bad path or
    /// query parameter); the message says which and why.
    InvalidField,
    /// The body (or a CSV's row count) is over the limit.
    PayloadTooLarge,
    /// Wrong `Content-Type`.
    UnsupportedMediaType,
    /// No `Authorization: Bearer` identity token.
    MissingIdentity,
    /// The identity token has expired.
    IdentityExpired,
    /// The identity token is forged, malformed or signed by an unknown key.
    IdentityInvalid,
    /// No `X-Api-Key`.
    MissingApiKey,
    /// The API key is unknown.
    ApiKeyInvalid,
    /// The administrator does not manage that place.
    ForbiddenPlace,
    /// The administrator's role may not do this.
    ForbiddenRole,
    /// The resident may not claim this campaign (place or real-name level).
    NotEligible,
    /// No such campaign (or not visible to you).
    CampaignNotFound,
    /// No such program.
    ProgramNotFound,
    /// No such voucher of yours.
    VoucherNotFound,
    /// No such route.
    NotFound,
    /// No round is open now.
    RoundNotOpen,
    /// Nothing left in the released rounds.
    SoldOut,
    /// The per-person limit is reached.
    PerPersonLimit,
    /// The campaign is paused.
    CampaignPaused,
    /// This claim id was used by another person.
    ClaimIdConflict,
    /// The campaign is issued to a list, not claimed.
    CampaignNotClaimable,
    /// Bulk issuance needs a list campaign.
    CampaignNotList,
    /// A round with that number was added concurrently.
    RoundConflict,
    /// The voucher is spent, expired or outside its validity.
    VoucherNotUsable,
    /// Too many requests.
    RateLimited,
    /// Redis or PostgreSQL is unavailable.
    ServiceUnavailable,
    /// A bug.
    Internal,
}

impl Code {
    /// Every code, in the documented order.
    pub const ALL: [Code; 28] = [
        Code::MalformedJson,
        Code::InvalidField,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::MissingIdentity,
        Code::IdentityExpired,
        Code::IdentityInvalid,
        Code::MissingApiKey,
        Code::ApiKeyInvalid,
        Code::ForbiddenPlace,
        Code::ForbiddenRole,
        Code::NotEligible,
        Code::CampaignNotFound,
        Code::ProgramNotFound,
        Code::VoucherNotFound,
        Code::NotFound,
        Code::RoundNotOpen,
        Code::SoldOut,
        Code::PerPersonLimit,
        Code::CampaignPaused,
        Code::ClaimIdConflict,
        Code::CampaignNotClaimable,
        Code::CampaignNotList,
        Code::RoundConflict,
        Code::VoucherNotUsable,
        Code::RateLimited,
        Code::ServiceUnavailable,
        Code::Internal,
    ];

    /// THE table: the code's name, its HTTP status and its type.
    pub const fn info(self) -> (&'static str, StatusCode, ErrorType) {
        use ErrorType::*;
        match self {
            Code::MalformedJson => ("MALFORMED_JSON", StatusCode::BAD_REQUEST, InvalidRequest),
            Code::InvalidField => ("INVALID_FIELD", StatusCode::BAD_REQUEST, InvalidRequest),
            Code::PayloadTooLarge => (
                "PAYLOAD_TOO_LARGE",
                StatusCode::PAYLOAD_TOO_LARGE,
                InvalidRequest,
            ),
            Code::UnsupportedMediaType => (
                "UNSUPPORTED_MEDIA_TYPE",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                InvalidRequest,
            ),
            Code::MissingIdentity => ("MISSING_IDENTITY", StatusCode::UNAUTHORIZED, Auth),
            Code::IdentityExpired => ("IDENTITY_EXPIRED", StatusCode::UNAUTHORIZED, Auth),
            Code::IdentityInvalid => ("IDENTITY_INVALID", StatusCode::UNAUTHORIZED, Auth),
            Code::MissingApiKey => ("MISSING_API_KEY", StatusCode::UNAUTHORIZED, Auth),
            Code::ApiKeyInvalid => ("API_KEY_INVALID", StatusCode::UNAUTHORIZED, Auth),
            Code::ForbiddenPlace => ("FORBIDDEN_PLACE", StatusCode::FORBIDDEN, Auth),
            Code::ForbiddenRole => ("FORBIDDEN_ROLE", StatusCode::FORBIDDEN, Auth),
            Code::NotEligible => ("NOT_ELIGIBLE", StatusCode::FORBIDDEN, Auth),
            Code::CampaignNotFound => ("CAMPAIGN_NOT_FOUND", StatusCode::NOT_FOUND, NotFound),
            Code::ProgramNotFound => ("PROGRAM_NOT_FOUND", StatusCode::NOT_FOUND, NotFound),
            Code::VoucherNotFound => ("VOUCHER_NOT_FOUND", StatusCode::NOT_FOUND, NotFound),
            Code::NotFound => ("NOT_FOUND", StatusCode::NOT_FOUND, NotFound),
            Code::RoundNotOpen => ("ROUND_NOT_OPEN", StatusCode::CONFLICT, Conflict),
            Code::SoldOut => ("SOLD_OUT", StatusCode::CONFLICT, Conflict),
            Code::PerPersonLimit => ("PER_PERSON_LIMIT", StatusCode::CONFLICT, Conflict),
            Code::CampaignPaused => ("CAMPAIGN_PAUSED", StatusCode::CONFLICT, Conflict),
            Code::ClaimIdConflict => ("CLAIM_ID_CONFLICT", StatusCode::CONFLICT, Conflict),
            Code::CampaignNotClaimable => {
                ("CAMPAIGN_NOT_CLAIMABLE", StatusCode::CONFLICT, Conflict)
            }
            Code::CampaignNotList => ("CAMPAIGN_NOT_LIST", StatusCode::CONFLICT, Conflict),
            Code::RoundConflict => ("ROUND_CONFLICT", StatusCode::CONFLICT, Conflict),
            Code::VoucherNotUsable => ("VOUCHER_NOT_USABLE", StatusCode::CONFLICT, Conflict),
            Code::RateLimited => ("RATE_LIMITED", StatusCode::TOO_MANY_REQUESTS, RateLimit),
            Code::ServiceUnavailable => (
                "SERVICE_UNAVAILABLE",
                StatusCode::SERVICE_UNAVAILABLE,
                Internal,
            ),
            Code::Internal => ("INTERNAL", StatusCode::INTERNAL_SERVER_ERROR, Internal),
        }
    }

    /// The stable name, e.g. `SOLD_OUT`.
    pub const fn as_str(self) -> &'static str {
        self.info().0
    }

    /// The HTTP status.
    pub const fn status(self) -> StatusCode {
        self.info().1
    }

    /// The type.
    pub const fn error_type(self) -> ErrorType {
        self.info().2
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
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

/// Every error the API returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or a field does not deserialize (wrong type, missing, out of
    /// range); `field` names it when known.
    #[error("{}", malformed_message(.field, .reason))]
    MalformedJson {
        /// The field's path (`claim_id`, `rule.off`), when the JSON itself was well formed.
        field: Option<String>,
        /// Why.
        reason: String,
    },
    /// A bad field.
    #[error("{}", invalid_field_message(.field, .reason))]
    InvalidField {
        /// The field's path (`claim_id`, `rule.off`, `body`, `path`).
        field: String,
        /// Why.
        reason: String,
    },
    /// Over a size limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Wrong content type.
    #[error("the request body must have Content-Type {expected}")]
    UnsupportedMediaType {
        /// The expected type.
        expected: &'static str,
    },
    /// No bearer token.
    #[error("an identity token is required: send Authorization: Bearer <token>")]
    MissingIdentity,
    /// Expired bearer token.
    #[error("the identity token has expired: sign in again")]
    IdentityExpired,
    /// Refused bearer token.
    #[error("the identity token is not valid")]
    IdentityInvalid,
    /// No API key.
    #[error("an administrator API key is required: send X-Api-Key")]
    MissingApiKey,
    /// Unknown API key.
    #[error("the API key is not valid")]
    ApiKeyInvalid,
    /// Outside the administrator's place.
    #[error("you do not manage place {place}")]
    ForbiddenPlace {
        /// The place asked for.
        place: PlaceCode,
    },
    /// Role may not.
    #[error("this needs the {} role", .needed.as_str())]
    ForbiddenRole {
        /// The role needed.
        needed: AdminRole,
    },
    /// May not claim.
    #[error("{0}")]
    NotEligible(Ineligible),
    /// No such campaign.
    #[error("campaign {0} does not exist")]
    CampaignNotFound(CampaignId),
    /// No such program.
    #[error("program {0} does not exist")]
    ProgramNotFound(ProgramId),
    /// No such voucher of yours.
    #[error("no such voucher")]
    VoucherNotFound,
    /// No such route.
    #[error("no route {method} {path}")]
    NotFound {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// No round open.
    #[error("{}", round_not_open_message(.next_round_starts_at))]
    RoundNotOpen {
        /// The next round's start, when one is scheduled.
        next_round_starts_at: Option<DateTime<Utc>>,
    },
    /// Sold out.
    #[error("the released vouchers are all claimed")]
    SoldOut,
    /// Limit reached.
    #[error("you already hold the most vouchers of this campaign one person may claim ({limit})")]
    PerPersonLimit {
        /// The campaign's per-person limit.
        limit: u32,
    },
    /// Paused.
    #[error("the campaign is paused")]
    CampaignPaused,
    /// Claim id reused by someone else.
    #[error("this claim_id was already used by another person: make a new one")]
    ClaimIdConflict,
    /// A list campaign cannot be claimed.
    #[error("campaign {0} is issued to a list and cannot be claimed")]
    CampaignNotClaimable(CampaignId),
    /// Bulk issuance to a claim campaign.
    #[error("campaign {0} is claimed in rounds; bulk issuance needs a list campaign")]
    CampaignNotList(CampaignId),
    /// Concurrent round append.
    #[error("{0}")]
    RoundConflict(String),
    /// Voucher not usable now.
    #[error("{0}")]
    VoucherNotUsable(String),
    /// Over a rate limit.
    #[error("too many requests: retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// A backing store is down.
    #[error("service unavailable: {0}")]
    ServiceUnavailable(#[source] anyhow::Error),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

fn malformed_message(field: &Option<String>, reason: &str) -> String {
    match field {
        Some(field) => format!("invalid field `{field}`: {reason}"),
        None => format!("the request body is not valid JSON: {reason}"),
    }
}

fn invalid_field_message(field: &str, reason: &str) -> String {
    format!("invalid field `{field}`: {reason}")
}

fn round_not_open_message(next: &Option<DateTime<Utc>>) -> String {
    match next {
        Some(at) => format!(
            "no round is open now; the next round starts at {}",
            rfc3339(*at)
        ),
        None => "no round is open now and no further round is scheduled".to_owned(),
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl ApiError {
    /// A body that is not JSON.
    pub fn malformed(reason: impl ToString) -> ApiError {
        ApiError::MalformedJson {
            field: None,
            reason: reason.to_string(),
        }
    }

    /// A bad field.
    pub fn invalid_field(field: impl Into<String>, reason: impl ToString) -> ApiError {
        ApiError::InvalidField {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    /// A bug, with its cause (logged, not sent).
    pub fn internal(cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Internal(cause.into())
    }

    /// The code.
    pub fn code(&self) -> Code {
        match self {
            ApiError::MalformedJson { .. } => Code::MalformedJson,
            ApiError::InvalidField { .. } => Code::InvalidField,
            ApiError::PayloadTooLarge(_) => Code::PayloadTooLarge,
            ApiError::UnsupportedMediaType { .. } => Code::UnsupportedMediaType,
            ApiError::MissingIdentity => Code::MissingIdentity,
            ApiError::IdentityExpired => Code::IdentityExpired,
            ApiError::IdentityInvalid => Code::IdentityInvalid,
            ApiError::MissingApiKey => Code::MissingApiKey,
            ApiError::ApiKeyInvalid => Code::ApiKeyInvalid,
            ApiError::ForbiddenPlace { .. } => Code::ForbiddenPlace,
            ApiError::ForbiddenRole { .. } => Code::ForbiddenRole,
            ApiError::NotEligible(_) => Code::NotEligible,
            ApiError::CampaignNotFound(_) => Code::CampaignNotFound,
            ApiError::ProgramNotFound(_) => Code::ProgramNotFound,
            ApiError::VoucherNotFound => Code::VoucherNotFound,
            ApiError::NotFound { .. } => Code::NotFound,
            ApiError::RoundNotOpen { .. } => Code::RoundNotOpen,
            ApiError::SoldOut => Code::SoldOut,
            ApiError::PerPersonLimit { .. } => Code::PerPersonLimit,
            ApiError::CampaignPaused => Code::CampaignPaused,
            ApiError::ClaimIdConflict => Code::ClaimIdConflict,
            ApiError::CampaignNotClaimable(_) => Code::CampaignNotClaimable,
            ApiError::CampaignNotList(_) => Code::CampaignNotList,
            ApiError::RoundConflict(_) => Code::RoundConflict,
            ApiError::VoucherNotUsable(_) => Code::VoucherNotUsable,
            ApiError::RateLimited { .. } => Code::RateLimited,
            ApiError::ServiceUnavailable(_) => Code::ServiceUnavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        use serde_json::json;
        match self {
            ApiError::InvalidField { field, reason } => {
                Some(json!({ "field": field, "reason": reason }))
            }
            ApiError::MalformedJson {
                field: Some(field),
                reason,
            } => Some(json!({ "field": field, "reason": reason })),
            ApiError::NotEligible(why) => Some(json!({ "reason": match why {
                Ineligible::Place => "place",
                Ineligible::RealNameLevel => "real_name_level",
            }})),
            ApiError::RoundNotOpen {
                next_round_starts_at,
            } => Some(json!({ "next_round_starts_at": next_round_starts_at.map(rfc3339) })),
            ApiError::PerPersonLimit { limit } => Some(json!({ "per_person_limit": limit })),
            ApiError::ForbiddenPlace { place } => Some(json!({ "place": place })),
            ApiError::ForbiddenRole { needed } => Some(json!({ "role": needed.as_str() })),
            ApiError::RateLimited { retry_after_secs } => {
                Some(json!({ "retry_after_secs": retry_after_secs }))
            }
            _ => None,
        }
    }

    /// The body sent to the client (opaque for 5xx).
    pub fn body(&self) -> ErrorBody {
        let code = self.code();
        let message = match self {
            ApiError::Internal(_) => "an internal error occurred; it has been logged".to_owned(),
            ApiError::ServiceUnavailable(_) => {
                "the service is temporarily unavailable; retry shortly".to_owned()
            }
            other => other.to_string(),
        };
        let error_type = serde_json::to_value(code.error_type())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        ErrorBody {
            code: code.as_str().to_owned(),
            message,
            error_type,
            details: self.details(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            // The cause chain is logged here, once, with the request's span around it.
            ApiError::Internal(cause) => {
                tracing::error!(error.cause_chain = ?cause, "internal error: {cause:#}")
            }
            ApiError::ServiceUnavailable(cause) => tracing::warn!("service unavailable: {cause:#}"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::ServiceUnavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        response.json(self.body())
    }
}

impl From<StoreError> for ApiError {
    /// Connection-level failures are 503 (retryable); anything else is a bug (500).
    fn from(e: StoreError) -> ApiError {
        let unavailable = match &e {
            StoreError::Redis(_) => true,
            StoreError::Pg(inner) => matches!(
                inner,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
            ),
            _ => false,
        };
        if unavailable {
            ApiError::ServiceUnavailable(e.into())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_screaming_snake_case() {
        let names: HashSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len());
        for name in names {
            assert!(
                name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{name}"
            );
        }
    }

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(Code::SoldOut.status(), StatusCode::CONFLICT);
        assert_eq!(Code::RateLimited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(Code::NotEligible.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            Code::PayloadTooLarge.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(Code::IdentityExpired.status(), StatusCode::UNAUTHORIZED);
        for code in Code::ALL {
            let s = code.status().as_u16();
            assert!((400..600).contains(&s), "{code:?}");
            assert_eq!(
                s >= 500,
                code.error_type() == ErrorType::Internal,
                "{code:?}"
            );
        }
    }

    #[test]
    fn internal_errors_are_opaque() {
        let e = ApiError::internal(anyhow::anyhow!("password=hunter2 in the DSN"));
        let body = serde_json::to_string(&e.body()).unwrap();
        assert!(!body.contains("hunter2"), "{body}");
        assert!(body.contains("\"code\":\"INTERNAL\""));
        assert!(body.contains("\"type\":\"internal\""));
    }

    #[test]
    fn round_not_open_names_the_next_start() {
        let at = DateTime::parse_from_rfc3339("2025-03-01T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = ApiError::RoundNotOpen {
            next_round_starts_at: Some(at),
        };
        let body = e.body();
        assert!(
            body.message.contains("2025-03-01T02:00:00Z"),
            "{}",
            body.message
        );
        assert_eq!(
            body.details.unwrap()["next_round_starts_at"],
            "2025-03-01T02:00:00Z"
        );
    }

    #[test]
    fn rate_limited_sets_retry_after() {
        let response = ApiError::RateLimited {
            retry_after_secs: 3,
        }
        .error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "3");
    }

    #[test]
    fn invalid_field_says_which_and_why() {
        let body = ApiError::invalid_field("claim_id", "must be a UUID").body();
        assert_eq!(body.code, "INVALID_FIELD");
        assert!(body.message.contains("claim_id") && body.message.contains("UUID"));
        assert_eq!(body.details.unwrap()["field"], "claim_id");
    }
}

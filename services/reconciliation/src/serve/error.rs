//! The console API's error codes: ONE table ([`Code`]), after the platform's [`Common`]
//! ones, and how the library's [`ReconError`] reads over HTTP: the same refusals the command
//! line prints (another city's batch, the wrong role, a step out of order), as 4xx codes.

use crate::error::ReconError;
use voucher_platform::error::CodeInfo;
pub use voucher_platform::error::{ApiError, Common};
use voucher_store::StoreError;

voucher_platform::error_codes! {
    /// The console API's own codes.
    pub enum Code {
        /// No session cookie, or one the service does not know.
        SessionRequired => ("SESSION_REQUIRED", UNAUTHORIZED, Auth, "sign in first"),
        /// The session was signed out, idle too long, or reached its maximum age.
        SessionExpired => ("SESSION_EXPIRED", UNAUTHORIZED, Auth, "the session has ended: sign in again"),
        /// A write without the session's `X-CSRF-Token`, or with another.
        CsrfTokenInvalid => ("CSRF_TOKEN_INVALID", FORBIDDEN, Auth, "a write needs the session's X-CSRF-Token header"),
        /// The dev identity provider knows no such officer.
        OfficerUnknown => ("OFFICER_UNKNOWN", UNAUTHORIZED, Auth, "no such officer"),
        /// No such settlement run.
        RunNotFound => ("RUN_NOT_FOUND", NOT_FOUND, NotFound, "no such settlement run"),
        /// No such settlement batch.
        BatchNotFound => ("BATCH_NOT_FOUND", NOT_FOUND, NotFound, "no such settlement batch"),
        /// No such redemption.
        RedemptionNotFound => ("REDEMPTION_NOT_FOUND", NOT_FOUND, NotFound, "no such redemption"),
        /// Not one of the report files.
        FileNotFound => ("FILE_NOT_FOUND", NOT_FOUND, NotFound, "no such report file: cities.csv, merchants.csv, programs.csv, report.json or summary.txt"),
        /// The batch is not in the status the step starts from.
        InvalidTransition => ("INVALID_TRANSITION", CONFLICT, Conflict, "the batch cannot take this step from its current status"),
        /// The period overlaps a period already settled for a program.
        PeriodOverlap => ("PERIOD_OVERLAP", CONFLICT, Conflict, "the period overlaps a period already settled"),
    }
}

/// Every code this API answers with, the platform's first, in documented order.
pub fn documented_codes() -> Vec<CodeInfo> {
    voucher_platform::error::documented_codes::<Code>()
}

impl From<ReconError> for ApiError {
    fn from(e: ReconError) -> ApiError {
        let message = e.to_string();
        match e {
            ReconError::Db(e) => e.into(),
            ReconError::Store(e) => e.into(),
            ReconError::Redis(e) => StoreError::from(e).into(),
            ReconError::ForbiddenPlace { place, .. } => ApiError::new(Common::ForbiddenPlace)
                .with_message(message)
                .with_details(serde_json::json!({ "place": place })),
            ReconError::ForbiddenRole { needed, .. } => ApiError::new(Common::ForbiddenRole)
                .with_message(message)
                .with_details(serde_json::json!({ "role": needed })),
            ReconError::InvalidTransition { status, to, .. } => {
                ApiError::new(Code::InvalidTransition)
                    .with_message(message)
                    .with_details(serde_json::json!({ "status": status, "to": to }))
            }
            ReconError::NoSuchBatch(batch) => ApiError::new(Code::BatchNotFound)
                .with_message(message)
                .with_details(serde_json::json!({ "batch_id": batch })),
            ReconError::PeriodOverlap {
                program, settled, ..
            } => ApiError::new(Code::PeriodOverlap)
                .with_message(message)
                .with_details(serde_json::json!({ "program_id": program, "settled": settled })),
            ReconError::UnknownApiKey => ApiError::new(Common::ApiKeyInvalid),
            ReconError::Usage(reason) => ApiError::new(Common::InvalidField).with_message(reason),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use voucher_core::{AdminRole, PlaceCode};

    #[test]
    fn codes_are_unique_and_the_workflow_refusals_are_4xx() {
        let all = documented_codes();
        let names: HashSet<_> = all.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), all.len());
        let place = PlaceCode::try_from(140_100).unwrap_or_else(|e| panic!("{e}"));
        let refusals = [
            ReconError::ForbiddenPlace {
                who: "x".into(),
                place,
            },
            ReconError::ForbiddenRole {
                who: "x".into(),
                to: "paid".into(),
                needed: AdminRole::Province.as_str(),
            },
            ReconError::InvalidTransition {
                batch: 1,
                status: "draft".into(),
                to: "paid".into(),
            },
            ReconError::NoSuchBatch(1),
        ];
        let codes: Vec<_> = refusals
            .into_iter()
            .map(|e| {
                let api = ApiError::from(e);
                assert!(api.status().is_client_error());
                api.code()
            })
            .collect();
        assert_eq!(
            codes,
            [
                "FORBIDDEN_PLACE",
                "FORBIDDEN_ROLE",
                "INVALID_TRANSITION",
                "BATCH_NOT_FOUND"
            ]
        );
    }
}

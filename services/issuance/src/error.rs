//! The issuance API's error codes: ONE table ([`Code`]); each row gives the stable name,
//! the HTTP status, the type and the default message. The envelope, the codes every
//! service shares (`MALFORMED_JSON`, `INVALID_FIELD`, `RATE_LIMITED`,
//! `SERVICE_UNAVAILABLE`…) and the error type itself are the platform's
//! ([`voucher_platform::error`]). The functions below build the errors that carry more
//! than their code (an id, the next round's start, a reason).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use voucher_core::campaign::Ineligible;
use voucher_core::{CampaignId, ProgramId};
use voucher_platform::error::CodeInfo;
pub use voucher_platform::error::{ApiError, Common, ErrorBody, ErrorType};

voucher_platform::error_codes! {
    /// The issuance API's own codes (after the platform's [`Common`] ones).
    pub enum Code {
        /// No `Authorization: Bearer` identity token.
        MissingIdentity => ("MISSING_IDENTITY", UNAUTHORIZED, Auth, "an identity token is required: send Authorization: Bearer <token>"),
        /// The identity token has expired.
        IdentityExpired => ("IDENTITY_EXPIRED", UNAUTHORIZED, Auth, "the identity token has expired: sign in again"),
        /// The identity token is forged, malformed or signed by an unknown key.
        IdentityInvalid => ("IDENTITY_INVALID", UNAUTHORIZED, Auth, "the identity token is not valid"),
        /// The resident may not claim this campaign (`details.reason`: place or real-name level).
        NotEligible => ("NOT_ELIGIBLE", FORBIDDEN, Auth, "you may not claim this campaign"),
        /// No such campaign (or not visible to you).
        CampaignNotFound => ("CAMPAIGN_NOT_FOUND", NOT_FOUND, NotFound, "no such campaign"),
        /// No such program.
        ProgramNotFound => ("PROGRAM_NOT_FOUND", NOT_FOUND, NotFound, "no such program"),
        /// No such voucher of yours.
        VoucherNotFound => ("VOUCHER_NOT_FOUND", NOT_FOUND, NotFound, "no such voucher"),
        /// No round is open now (`details.next_round_starts_at`).
        RoundNotOpen => ("ROUND_NOT_OPEN", CONFLICT, Conflict, "no round is open now"),
        /// Nothing left in the released rounds.
        SoldOut => ("SOLD_OUT", CONFLICT, Conflict, "the released vouchers are all claimed"),
        /// The per-person limit is reached.
        PerPersonLimit => ("PER_PERSON_LIMIT", CONFLICT, Conflict, "you already hold the most vouchers of this campaign one person may claim"),
        /// The campaign is paused.
        CampaignPaused => ("CAMPAIGN_PAUSED", CONFLICT, Conflict, "the campaign is paused"),
        /// This claim id was used by another person.
        ClaimIdConflict => ("CLAIM_ID_CONFLICT", CONFLICT, Conflict, "this claim_id was already used by another person: make a new one"),
        /// The campaign is issued to a list, not claimed.
        CampaignNotClaimable => ("CAMPAIGN_NOT_CLAIMABLE", CONFLICT, Conflict, "the campaign is issued to a list and cannot be claimed"),
        /// Bulk issuance needs a list campaign.
        CampaignNotList => ("CAMPAIGN_NOT_LIST", CONFLICT, Conflict, "the campaign is claimed in rounds; bulk issuance needs a list campaign"),
        /// A round with that number was added concurrently.
        RoundConflict => ("ROUND_CONFLICT", CONFLICT, Conflict, "the round could not be added"),
        /// The voucher is spent, expired or outside its validity.
        VoucherNotUsable => ("VOUCHER_NOT_USABLE", CONFLICT, Conflict, "the voucher cannot be used now"),
        /// No round of that number in the campaign.
        RoundNotFound => ("ROUND_NOT_FOUND", NOT_FOUND, NotFound, "no such round"),
        /// Registration and draws are for lottery rounds only.
        RoundNotLottery => ("ROUND_NOT_LOTTERY", CONFLICT, Conflict, "the round is a rush round, not a lottery"),
        /// The open round is a lottery (报名摇号): register during its window instead of claiming (`details`: round, window, next round).
        RoundIsLottery => ("ROUND_IS_LOTTERY", CONFLICT, Conflict, "the open round is a lottery: vouchers go to the winners of its draw, not to claims"),
        /// The registration window has not opened (`details.registration_opens_at`).
        RegistrationNotOpen => ("REGISTRATION_NOT_OPEN", CONFLICT, Conflict, "registration for this round has not opened yet"),
        /// The registration window has closed, or the round was drawn (`details.registration_closes_at`).
        RegistrationClosed => ("REGISTRATION_CLOSED", CONFLICT, Conflict, "registration for this round has closed"),
        /// A draw before the round's start (`details.draw_from`).
        DrawTooEarly => ("DRAW_TOO_EARLY", CONFLICT, Conflict, "the round cannot be drawn before its registration has closed and it has started"),
        /// The round has not been drawn yet (`details.draw_from`).
        NotYetDrawn => ("NOT_YET_DRAWN", CONFLICT, Conflict, "the round has not been drawn yet"),
        /// The program has no car trade-in scheme (`details.program_id`).
        TradeInSchemeNotFound => ("TRADE_IN_SCHEME_NOT_FOUND", NOT_FOUND, NotFound, "the program has no trade-in scheme"),
        /// The program has a trade-in scheme already (schemes are not changed once created).
        TradeInSchemeExists => ("TRADE_IN_SCHEME_EXISTS", CONFLICT, Conflict, "the program has a trade-in scheme already"),
        /// A day outside the trade-in scheme's window (`details`: opens_on, closes_on, date, field).
        OutsideSchemeWindow => ("OUTSIDE_SCHEME_WINDOW", CONFLICT, Conflict, "the trade-in scheme does not accept this date"),
        /// A business on the papers is not registered in the scheme's province (`details.field`).
        OutsideProvince => ("OUTSIDE_PROVINCE", UNPROCESSABLE_ENTITY, InvalidRequest, "the business is not registered in the scheme's province"),
        /// No such document of yours (an application cites a hash you did not upload), or no application cites it.
        DocumentNotFound => ("DOCUMENT_NOT_FOUND", NOT_FOUND, NotFound, "no such document"),
        /// The uploaded bytes are not of the `Content-Type` they were sent with.
        DocumentContentMismatch => ("DOCUMENT_CONTENT_MISMATCH", UNSUPPORTED_MEDIA_TYPE, InvalidRequest, "the document's bytes are not of its Content-Type"),
        /// No such trade-in application (of yours).
        ApplicationNotFound => ("APPLICATION_NOT_FOUND", NOT_FOUND, NotFound, "no such trade-in application"),
        /// This application id was used by another person or for other papers.
        ApplicationIdConflict => ("APPLICATION_ID_CONFLICT", CONFLICT, Conflict, "this application_id was already used for other papers: make a new one"),
        /// The application's status does not allow this (`details.status`).
        ApplicationStatusConflict => ("APPLICATION_STATUS_CONFLICT", CONFLICT, Conflict, "the application's status does not allow this"),
        /// The old car (VIN) is in another live trade-in application: one subsidy per old car.
        OldCarAlreadyClaimed => ("OLD_CAR_ALREADY_CLAIMED", CONFLICT, Conflict, "the old car is already in another trade-in application"),
        /// The new car (VIN) is in another live trade-in application: one subsidy per new car.
        NewCarAlreadyClaimed => ("NEW_CAR_ALREADY_CLAIMED", CONFLICT, Conflict, "the new car is already in another trade-in application"),
        /// The invoice is in another live trade-in application: one subsidy per invoice.
        InvoiceAlreadyClaimed => ("INVOICE_ALREADY_CLAIMED", CONFLICT, Conflict, "the invoice is already in another trade-in application"),
        /// Redis lost this campaign's claim state (restarted empty). It is never recreated from scratch, which would sell the stock a second time: claims wait for `reconciliation rebuild` (`details.campaign_id`; 503 with `Retry-After`: retry with the same claim_id).
        HotStateLost => ("HOT_STATE_LOST", SERVICE_UNAVAILABLE, Internal, "claims of this campaign are paused while its state is restored; retry shortly with the same claim_id"),
    }
}

/// Every code this API answers with, the platform's first, in documented order.
pub fn documented_codes() -> Vec<CodeInfo> {
    voucher_platform::error::documented_codes::<Code>()
}

/// `CAMPAIGN_NOT_FOUND` naming the id.
pub fn campaign_not_found(id: CampaignId) -> ApiError {
    ApiError::new(Code::CampaignNotFound).with_message(format!("campaign {id} does not exist"))
}

/// `PROGRAM_NOT_FOUND` naming the id.
pub fn program_not_found(id: ProgramId) -> ApiError {
    ApiError::new(Code::ProgramNotFound).with_message(format!("program {id} does not exist"))
}

/// `NOT_ELIGIBLE` with `details.reason` (`place` or `real_name_level`).
pub fn not_eligible(why: Ineligible) -> ApiError {
    let reason = match why {
        Ineligible::Place => "place",
        Ineligible::RealNameLevel => "real_name_level",
    };
    ApiError::new(Code::NotEligible)
        .with_message(why.to_string())
        .with_details(json!({ "reason": reason }))
}

/// `ROUND_NOT_OPEN` with the next round's start, when one is scheduled.
pub fn round_not_open(next: Option<DateTime<Utc>>) -> ApiError {
    let at = next.map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true));
    let message = match &at {
        Some(at) => format!("no round is open now; the next round starts at {at}"),
        None => "no round is open now and no further round is scheduled".to_owned(),
    };
    ApiError::new(Code::RoundNotOpen)
        .with_message(message)
        .with_details(json!({ "next_round_starts_at": at }))
}

/// `PER_PERSON_LIMIT` naming the limit.
pub fn per_person_limit(limit: u32) -> ApiError {
    ApiError::new(Code::PerPersonLimit)
        .with_message(format!(
            "you already hold the most vouchers of this campaign one person may claim ({limit})"
        ))
        .with_details(json!({ "per_person_limit": limit }))
}

/// `CAMPAIGN_NOT_CLAIMABLE` naming the campaign.
pub fn campaign_not_claimable(id: CampaignId) -> ApiError {
    ApiError::new(Code::CampaignNotClaimable).with_message(format!(
        "campaign {id} is issued to a list and cannot be claimed"
    ))
}

/// `CAMPAIGN_NOT_LIST` naming the campaign.
pub fn campaign_not_list(id: CampaignId) -> ApiError {
    ApiError::new(Code::CampaignNotList).with_message(format!(
        "campaign {id} is claimed in rounds; bulk issuance needs a list campaign"
    ))
}

/// `ROUND_CONFLICT` saying why.
pub fn round_conflict(message: String) -> ApiError {
    ApiError::new(Code::RoundConflict).with_message(message)
}

/// How long a client should wait before retrying a claim of a campaign whose hot state is
/// lost: a rebuild takes longer than a dependency's hiccup.
pub const HOT_STATE_LOST_RETRY_AFTER_SECS: u64 = 5;

/// `HOT_STATE_LOST` naming the campaign (503, `Retry-After`). Each refusal is logged at WARN
/// and counted; the ERROR that pages comes from the campaign reload, once per campaign.
pub fn hot_state_lost(id: CampaignId) -> ApiError {
    ApiError::new(Code::HotStateLost)
        .with_message(format!(
            "claims of campaign {id} are paused while its state is restored; retry shortly with the same claim_id"
        ))
        .with_details(json!({ "campaign_id": id.0 }))
        .with_retry_after(HOT_STATE_LOST_RETRY_AFTER_SECS)
        .with_cause(anyhow::anyhow!(
            "redis lost the hot state of campaign {id}: waiting for `reconciliation rebuild`"
        ))
}

/// `VOUCHER_NOT_USABLE` saying why.
pub fn voucher_not_usable(message: String) -> ApiError {
    ApiError::new(Code::VoucherNotUsable).with_message(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_across_the_platform_and_this_service() {
        let all = documented_codes();
        let names: HashSet<_> = all.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), all.len());
        for info in &all {
            assert!(info
                .name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_'));
            assert_eq!(
                info.status.is_server_error(),
                info.error_type == ErrorType::Internal,
                "{}",
                info.name
            );
        }
    }

    #[test]
    fn round_not_open_names_the_next_start() {
        let at = DateTime::parse_from_rfc3339("2025-03-01T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let body = round_not_open(Some(at)).body();
        assert!(
            body.message.contains("2025-03-01T02:00:00Z"),
            "{}",
            body.message
        );
        assert_eq!(
            body.details.unwrap()["next_round_starts_at"],
            "2025-03-01T02:00:00Z"
        );
        assert_eq!(body.code, "ROUND_NOT_OPEN");
    }
}

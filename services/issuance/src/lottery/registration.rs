//! Registering for a lottery round, and a resident's view of their entry and result.
//!
//! Order of checks (as a claim's): per-person rate limit → campaign exists → the round
//! exists and is a lottery → campaign active → eligible (place, real-name level, from the
//! identity token) → the per-person limit is not already reached (the vouchers the person
//! holds of the campaign, from Redis, as the claim script counts them) → the window is open
//! at now → the record (one entry per person: the
//! first request makes it, answered 201; every repeat, from any device, answers the same
//! entry with 200). Nothing is written when a check refuses.

use super::{cached_campaign, lottery_round, public_state, LotteryState};
use crate::error::{self, ApiError, Code};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use voucher_core::identity::Identity;
use voucher_core::{CampaignId, CampaignStatus, Distribution};
use voucher_store::pg::lottery::{self as store, Registered, WinnerStatus};
use voucher_store::StoreError;

/// A resident's entry in a lottery round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RegistrationView {
    /// The campaign.
    pub campaign_id: i64,
    /// The round.
    pub round_no: u32,
    /// The entry as published in the draw (hex SHA-256 of campaign id ‖ round ‖ person id).
    pub registration_hash: String,
    /// When the entry was made (the first request).
    pub registered_at: DateTime<Utc>,
    /// `true` when the person had registered already (HTTP 200 instead of 201).
    pub replayed: bool,
}

impl RegistrationView {
    fn new(
        campaign_id: CampaignId,
        round_no: u32,
        r: &store::Registration,
        replayed: bool,
    ) -> Self {
        RegistrationView {
            campaign_id: campaign_id.0,
            round_no,
            registration_hash: r.registration_hash.to_hex(),
            registered_at: r.registered_at,
            replayed,
        }
    }
}

/// Registers `who` for round `round_no` of `campaign_id`.
///
/// # Errors
/// `RATE_LIMITED`, `CAMPAIGN_NOT_FOUND`, `ROUND_NOT_FOUND`, `ROUND_NOT_LOTTERY`,
/// `CAMPAIGN_PAUSED`, `NOT_ELIGIBLE`, `PER_PERSON_LIMIT`, `REGISTRATION_NOT_OPEN`,
/// `REGISTRATION_CLOSED`; store failures (503: retry, the registration is idempotent).
#[tracing::instrument(name = "issuance.lottery.register", skip_all, fields(campaign_id = campaign_id.0, round_no))]
pub async fn register(
    state: &AppState,
    who: &Identity,
    campaign_id: CampaignId,
    round_no: u32,
) -> Result<RegistrationView, ApiError> {
    state.person_limit.check(&who.person_id)?;
    let campaign = cached_campaign(state, campaign_id)?;
    if campaign.spec.distribution != Distribution::Claim {
        return Err(error::campaign_not_claimable(campaign_id));
    }
    let (_, window) = lottery_round(&campaign, round_no)?;
    if campaign.status == CampaignStatus::Paused {
        return Err(ApiError::new(Code::CampaignPaused));
    }
    campaign
        .check_eligibility(who)
        .map_err(error::not_eligible)?;
    let held = {
        let _timer = state.metrics.redis_timer("person_claims");
        state.hot.person_claims(campaign_id, &who.person_id).await?
    };
    if held >= campaign.spec.per_person_limit {
        // A repeat of an entry made before the limit was reached still answers that entry.
        if let Some(r) =
            store::registration(&state.pg, campaign_id, round_no, &who.person_id).await?
        {
            return Ok(RegistrationView::new(campaign_id, round_no, &r, true));
        }
        return Err(error::per_person_limit(campaign.spec.per_person_limit));
    }
    let now = crate::claims::to_millis(state.clock.now());
    if now < window.registration_opens_at {
        return Err(super::registration_not_open(&window));
    }
    if now >= window.registration_closes_at {
        return Err(super::registration_closed(&window));
    }
    let registered = store::register(&state.pg, campaign_id, round_no, &who.person_id, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => super::round_not_found(campaign_id, round_no),
            other => other.into(),
        })?;
    match registered {
        Registered::Created(r) => Ok(RegistrationView::new(campaign_id, round_no, &r, false)),
        Registered::Existing(r) => Ok(RegistrationView::new(campaign_id, round_no, &r, true)),
        Registered::Drawn => Err(super::registration_closed(&window)),
    }
}

/// A winner's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MyResult {
    /// Whether the person was drawn.
    pub won: bool,
    /// Their rank among the winners (1 first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
    /// What issuing their voucher gave: `pending`, `issued` or `refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub issue_status: Option<WinnerStatus>,
    /// The voucher, when issued (it appears in `/v1/me/vouchers` once persisted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voucher_id: Option<uuid::Uuid>,
    /// Why a winner got no voucher (e.g. the per-person limit was already reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /v1/campaigns/{id}/rounds/{round_no}/registrations/me`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MyLottery {
    /// The round's public state.
    pub lottery: LotteryState,
    /// My entry, if I registered.
    pub registration: Option<RegistrationView>,
    /// My result, once drawn (and if I registered).
    pub result: Option<MyResult>,
}

/// `who`'s entry and result in a lottery round, with the round's public state.
///
/// # Errors
/// `CAMPAIGN_NOT_FOUND`, `ROUND_NOT_FOUND`, `ROUND_NOT_LOTTERY`; store failures.
pub async fn mine(
    state: &AppState,
    who: &Identity,
    campaign_id: CampaignId,
    round_no: u32,
) -> Result<MyLottery, ApiError> {
    let lottery = public_state(state, campaign_id, round_no).await?;
    let entry = store::registration(&state.pg, campaign_id, round_no, &who.person_id).await?;
    let result = match (&entry, lottery.drawn_at) {
        (Some(_), Some(_)) => {
            let line = store::winner(&state.pg, campaign_id, round_no, &who.person_id).await?;
            Some(match line {
                Some(w) => MyResult {
                    won: true,
                    rank: Some(w.rank),
                    issue_status: Some(w.status),
                    voucher_id: w.voucher_id.map(|v| v.0),
                    reason: w.reason,
                },
                None => MyResult {
                    won: false,
                    rank: None,
                    issue_status: None,
                    voucher_id: None,
                    reason: None,
                },
            })
        }
        _ => None,
    };
    Ok(MyLottery {
        lottery,
        registration: entry
            .as_ref()
            .map(|r| RegistrationView::new(campaign_id, round_no, r, false)),
        result,
    })
}

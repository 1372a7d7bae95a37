//! The rush path: a resident claims a voucher. No PostgreSQL here — the campaign comes from
//! the cache, the decision from one Redis script, and the token is signed only after the
//! script said yes.
//!
//! Order of checks: per-person rate limit → campaign exists → claimable (not a list
//! campaign) → eligible (place, real-name level) → a round is open at now, and it is a
//! rush round (a lottery round's vouchers go to its draw's winners) → the script
//! (round released? stock? per-person limit? claim id new?). A retried claim (same
//! `claim_id`) returns the first voucher with a token re-signed from the recorded claim
//! time, byte-identical while the signing key is unchanged.
//!
//! When the script does not know the campaign, it is re-synced from the record, but never
//! recreated once it was created: if Redis lost its hot state, the claim answers 503
//! `HOT_STATE_LOST` (see [`crate::state`]) until `reconciliation rebuild`, and the script
//! itself is what notices, on the next claim, that the state is back.

use crate::error::{self, ApiError, Code};
use crate::metrics::outcome;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use voucher_core::identity::Identity;
use voucher_core::token::{self, VoucherClaims, VoucherToken};
use voucher_core::{Campaign, CampaignId, ClaimId, Distribution, PersonId, VoucherId};
use voucher_store::{ClaimMode, ClaimOutcome, ClaimRequest, ClaimedVoucher, StoreError};

/// `POST /v1/campaigns/{id}/claims` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    /// The client's idempotency key for this claim (a UUID it made). Retrying with the same
    /// id returns the first result instead of a second voucher.
    pub claim_id: Uuid,
}

/// A claimed voucher with its signed token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClaimResponse {
    /// The voucher.
    pub voucher_id: Uuid,
    /// Its campaign.
    pub campaign_id: i64,
    /// The Ed25519-signed voucher token (base64url): proof of issuance, verifiable offline.
    pub token: String,
    /// Start of validity.
    pub valid_from: DateTime<Utc>,
    /// End of validity.
    pub valid_until: DateTime<Utc>,
    /// The release round it was claimed in.
    pub round_no: u32,
    /// `true` when this is the answer to a retried claim (HTTP 200 instead of 201).
    pub replayed: bool,
}

/// Claims a voucher of `campaign_id` for `who`, idempotently on `claim_id`.
///
/// # Errors
/// Every refusal as its [`ApiError`]; store failures as 503.
#[tracing::instrument(name = "issuance.claims.claim", skip_all, fields(campaign_id = campaign_id.0))]
pub async fn claim(
    state: &AppState,
    who: &Identity,
    campaign_id: CampaignId,
    claim_id: ClaimId,
) -> Result<ClaimResponse, ApiError> {
    let timer = state.metrics.claim_duration.start_timer();
    let result = claim_inner(state, who, campaign_id, claim_id).await;
    let label = match &result {
        Ok(r) if r.replayed => outcome::REPLAYED,
        Ok(_) => outcome::CLAIMED,
        Err(e) => outcome_label(e),
    };
    state.metrics.claim_outcome(label);
    timer.observe_duration();
    result
}

fn outcome_label(e: &ApiError) -> &'static str {
    match e.code() {
        "SOLD_OUT" => outcome::SOLD_OUT,
        "PER_PERSON_LIMIT" => outcome::LIMIT_REACHED,
        "ROUND_NOT_OPEN" | "ROUND_IS_LOTTERY" => outcome::NOT_OPEN,
        "CAMPAIGN_PAUSED" => outcome::PAUSED,
        "NOT_ELIGIBLE" => outcome::INELIGIBLE,
        "RATE_LIMITED" => outcome::RATE_LIMITED,
        "HOT_STATE_LOST" => outcome::HOT_STATE_LOST,
        _ => outcome::ERROR,
    }
}

async fn claim_inner(
    state: &AppState,
    who: &Identity,
    campaign_id: CampaignId,
    claim_id: ClaimId,
) -> Result<ClaimResponse, ApiError> {
    state.person_limit.check(&who.person_id)?;
    let campaign = state
        .campaigns
        .get(campaign_id)
        .ok_or_else(|| error::campaign_not_found(campaign_id))?;
    if campaign.spec.distribution != Distribution::Claim {
        return Err(error::campaign_not_claimable(campaign_id));
    }
    campaign
        .check_eligibility(who)
        .map_err(error::not_eligible)?;
    let now = to_millis(state.clock.now());
    let not_open = || error::round_not_open(campaign.next_round(now).map(|r| r.starts_at));
    let round = campaign.current_round(now).ok_or_else(not_open)?;
    if round.is_lottery() {
        return Err(crate::lottery::round_is_lottery(&campaign, round, now));
    }
    let round_no = round.round_no;
    let (valid_from, valid_until) = window(&campaign, now);
    let request = ClaimRequest {
        campaign_id,
        person_id: who.person_id.clone(),
        claim_id,
        voucher_id: VoucherId(Uuid::now_v7()),
        round_no,
        now,
        valid_from,
        valid_until,
        mode: ClaimMode::Rush,
    };
    match run_claim(state, &campaign, &request).await? {
        ClaimOutcome::Claimed(v) => Ok(response(
            state,
            &campaign,
            &who.person_id,
            &v,
            round_no,
            false,
        )),
        ClaimOutcome::Replayed(v) => {
            let first_round = campaign
                .current_round(v.claimed_at)
                .map_or(round_no, |r| r.round_no);
            Ok(response(
                state,
                &campaign,
                &who.person_id,
                &v,
                first_round,
                true,
            ))
        }
        ClaimOutcome::ClaimIdConflict => Err(ApiError::new(Code::ClaimIdConflict)),
        ClaimOutcome::NotOpen => Err(not_open()),
        ClaimOutcome::SoldOut => Err(ApiError::new(Code::SoldOut)),
        ClaimOutcome::LimitReached => Err(error::per_person_limit(campaign.spec.per_person_limit)),
        ClaimOutcome::Paused => Err(ApiError::new(Code::CampaignPaused)),
        ClaimOutcome::UnknownCampaign => Err(unknown_in_redis(campaign_id)),
    }
}

/// Runs the claim script; if Redis does not know the campaign (a new campaign whose sync
/// failed), syncs it from PostgreSQL and tries once more. A campaign whose hot state Redis
/// lost is never recreated here: `HOT_STATE_LOST` (503) until a rebuild, answered without
/// a PostgreSQL read once the campaign is known to be lost. A voucher (new or replayed) is
/// answered only after the replication barrier (`redis.ack_replicas`): the rush, lottery
/// draws and bulk issuance all come through here.
///
/// # Errors
/// `HOT_STATE_LOST`; Redis or PostgreSQL failed, or the replicas did not acknowledge in time
/// (503: retry with the same claim id).
pub async fn run_claim(
    state: &AppState,
    campaign: &Campaign,
    request: &ClaimRequest,
) -> Result<ClaimOutcome, ApiError> {
    let first = {
        let _timer = state.metrics.redis_timer("claim");
        state.hot.claim(request).await?
    };
    let outcome = if first == ClaimOutcome::UnknownCampaign {
        if state.hot_lost.contains(campaign.id) {
            return Err(error::hot_state_lost(campaign.id));
        }
        tracing::warn!(
            campaign_id = campaign.id.0,
            "redis does not know the campaign; re-syncing it"
        );
        state.resync(campaign).await.map_err(|e| match e {
            StoreError::HotStateLost { campaign } => error::hot_state_lost(campaign),
            other => ApiError::from(other),
        })?;
        let _timer = state.metrics.redis_timer("claim");
        state.hot.claim(request).await?
    } else {
        first
    };
    if matches!(
        outcome,
        ClaimOutcome::Claimed(_) | ClaimOutcome::Replayed(_)
    ) {
        // Acknowledged only once the replicas hold it (a replay too: its first answer may
        // have been this 503). See `voucher_store::ReplicaBarrier`.
        let _timer = state.metrics.redis_timer("replica_barrier");
        state.barrier.wait().await?;
    }
    Ok(outcome)
}

/// The error for a campaign Redis still does not know after a re-sync.
pub fn unknown_in_redis(campaign_id: CampaignId) -> ApiError {
    ApiError::unavailable(anyhow::anyhow!(
        "redis does not know campaign {campaign_id} even after a re-sync"
    ))
}

fn response(
    state: &AppState,
    campaign: &Campaign,
    person: &PersonId,
    voucher: &ClaimedVoucher,
    round_no: u32,
    replayed: bool,
) -> ClaimResponse {
    let (valid_from, valid_until) = window(campaign, voucher.claimed_at);
    let token = sign_voucher(
        state,
        campaign,
        voucher.voucher_id,
        person,
        valid_from,
        valid_until,
    );
    ClaimResponse {
        voucher_id: voucher.voucher_id.0,
        campaign_id: campaign.id.0,
        token: token.as_str().to_owned(),
        valid_from,
        valid_until,
        round_no,
        replayed,
    }
}

/// The validity window of a voucher of `campaign` claimed at `claimed_at`, in whole seconds
/// (the token's precision), so the response, the token, the event and the record agree.
pub fn window(campaign: &Campaign, claimed_at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let (from, until) = campaign.spec.validity.window(claimed_at);
    (to_seconds(from), to_seconds(until))
}

/// Signs the token of a voucher of `campaign` held by `person` with the current key.
pub fn sign_voucher(
    state: &AppState,
    campaign: &Campaign,
    voucher_id: VoucherId,
    person: &PersonId,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
) -> VoucherToken {
    let claims = VoucherClaims {
        voucher_id,
        campaign_id: campaign.id,
        program_id: campaign.spec.program_id,
        person_id: person.clone(),
        place: campaign.spec.owner_place,
        category: campaign.spec.category,
        rule: campaign.spec.rule.clone(),
        valid_from,
        valid_until,
    };
    token::sign(&state.keys.voucher_signing, &claims)
}

/// `t` truncated to whole milliseconds (what Redis records of a claim time).
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// `t` truncated to whole seconds.
pub fn to_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_drops_sub_units() {
        let t = DateTime::parse_from_rfc3339("2025-03-01T02:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(to_millis(t).timestamp_subsec_nanos(), 123_000_000);
        assert_eq!(to_seconds(t).timestamp_subsec_nanos(), 0);
        assert_eq!(to_seconds(t).timestamp(), t.timestamp());
    }

    #[test]
    fn claim_body_requires_a_uuid_claim_id() {
        assert!(voucher_platform::extract::parse_json::<ClaimBody>(
            br#"{"claim_id":"0191d3a0-0000-7000-8000-000000000000"}"#
        )
        .is_ok());
        assert!(
            voucher_platform::extract::parse_json::<ClaimBody>(br#"{"claim_id":"x"}"#).is_err()
        );
        assert!(voucher_platform::extract::parse_json::<ClaimBody>(br#"{}"#).is_err());
        assert!(voucher_platform::extract::parse_json::<ClaimBody>(
            br#"{"claim_id":"0191d3a0-0000-7000-8000-000000000000","x":1}"#
        )
        .is_err());
    }
}

//! The draw of a lottery round, by an administrator of its place, and the issuing of the
//! winners' vouchers.
//!
//! Steps:
//! 1. The campaign is one the administrator manages; the round is a lottery; the campaign
//!    is active; now is at or after the round's start (so its registration has closed).
//! 2. The record draws once ([`voucher_store::pg::lottery::draw`]): the seed, the entries
//!    and `quantity` = the round's quantity give the winners
//!    ([`voucher_core::lottery::draw`]); a later or concurrent call gets the same draw.
//! 3. Every winner still `pending`, in rank order, is issued through the claim script in
//!    rush mode for this round, with the claim id [`voucher_core::lottery::winner_claim_id`]:
//!    the script enforces stock and the per-person limit and XADDs `VoucherClaimed` to the
//!    outbox like any claim, and a claim id it has seen answers the first voucher, so running
//!    this again never issues twice. A refusal (limit reached, stock short) is final: the
//!    winner gets nothing and the stock stays live for the next round. A store failure
//!    leaves the winner pending for the next call.
//!
//! Issuing runs in its own task, so a request cut short by its deadline does not stop it
//! half-way; outcomes are recorded in PostgreSQL in batches.
//!
//! Draw before the next round starts: from then on that round's rush claims take from the
//! same live stock, and winners issued later may find it short (refused, "no stock left").

use super::{draw_too_early, lottery_round, publish};
use crate::auth::Admin;
use crate::claims::{run_claim, to_millis, window};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use voucher_core::lottery::PublishedDraw;
use voucher_core::{Campaign, CampaignId, CampaignStatus, VoucherId};
use voucher_store::pg::lottery::{self as store, Outcome, Winner, WinnerStatus};
use voucher_store::{ClaimMode, ClaimOutcome, ClaimRequest, StoreError};

/// Outcomes are written to PostgreSQL this many at a time.
const RECORD_BATCH: usize = 256;

/// One winner as the administrator sees it (no person id: the registration hash names them,
/// the voucher is in the record).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WinnerLine {
    /// 1 for the first drawn.
    pub rank: u32,
    /// The winner's published entry.
    pub registration_hash: String,
    /// `pending`, `issued` or `refused`.
    #[schema(value_type = String)]
    pub status: WinnerStatus,
    /// The voucher, when issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voucher_id: Option<Uuid>,
    /// Why refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /v1/admin/campaigns/{id}/rounds/{round_no}/draw`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DrawReport {
    /// The published draw (the same as `GET /v1/campaigns/{id}/rounds/{round_no}/draw`).
    #[schema(value_type = Object)]
    pub draw: PublishedDraw,
    /// Winners issued a voucher.
    pub issued: usize,
    /// Winners the claim script refused (their stock stays for the next round).
    pub refused: usize,
    /// Winners not yet issued (a store failure): call the draw again.
    pub pending: usize,
    /// Every winner, rank 1 first.
    pub winners: Vec<WinnerLine>,
}

/// Draws round `round_no` of `campaign_id` (once) and issues the winners' vouchers.
///
/// # Errors
/// `CAMPAIGN_NOT_FOUND`, `FORBIDDEN_PLACE`, `ROUND_NOT_FOUND`, `ROUND_NOT_LOTTERY`,
/// `CAMPAIGN_PAUSED`, `DRAW_TOO_EARLY`; store failures (503: call again, the draw is
/// idempotent).
#[tracing::instrument(name = "issuance.lottery.draw", skip_all, fields(admin = %admin.name, campaign_id = campaign_id.0, round_no))]
pub async fn draw(
    state: &AppState,
    admin: &Admin,
    campaign_id: CampaignId,
    round_no: u32,
) -> Result<DrawReport, ApiError> {
    let campaign = crate::admin::managed_campaign(state, admin, campaign_id).await?;
    let (round, _) = lottery_round(&campaign, round_no)?;
    if campaign.status == CampaignStatus::Paused {
        return Err(ApiError::new(Code::CampaignPaused)
            .with_message("the campaign is paused: resume it before drawing"));
    }
    let now = to_millis(state.clock.now());
    if now < round.starts_at {
        return Err(draw_too_early(round.starts_at));
    }
    let record = store::draw(&state.pg, campaign_id, round_no, round.quantity, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => super::round_not_found(campaign_id, round_no),
            other => other.into(),
        })?;
    let pending: Vec<Winner> = record
        .winners
        .iter()
        .filter(|w| w.status == WinnerStatus::Pending)
        .cloned()
        .collect();
    if !pending.is_empty() {
        let task_state = state.clone();
        let issuing =
            tokio::spawn(async move { issue(&task_state, &campaign, round_no, &pending).await });
        issuing
            .await
            .map_err(|e| ApiError::internal(anyhow::anyhow!("issuing the winners: {e}")))??;
    }
    let record = store::load_draw(&state.pg, campaign_id, round_no)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a recorded draw disappeared")))?;
    Ok(report(campaign_id, round_no, record))
}

fn report(campaign_id: CampaignId, round_no: u32, record: store::DrawRecord) -> DrawReport {
    let count = |s: WinnerStatus| record.winners.iter().filter(|w| w.status == s).count();
    let (issued, refused, pending) = (
        count(WinnerStatus::Issued),
        count(WinnerStatus::Refused),
        count(WinnerStatus::Pending),
    );
    let winners = record
        .winners
        .iter()
        .map(|w| WinnerLine {
            rank: w.rank,
            registration_hash: w.registration_hash.to_hex(),
            status: w.status,
            voucher_id: w.voucher_id.map(|v| v.0),
            reason: w.reason.clone(),
        })
        .collect();
    DrawReport {
        draw: publish(campaign_id, round_no, record),
        issued,
        refused,
        pending,
        winners,
    }
}

/// Issues the pending winners' vouchers in rank order and records what each got.
///
/// # Errors
/// Recording the outcomes failed (the vouchers issued so far stay issued; a new call
/// replays them by claim id and records them).
async fn issue(
    state: &AppState,
    campaign: &Campaign,
    round_no: u32,
    pending: &[Winner],
) -> Result<(), ApiError> {
    let mut outcomes = Vec::with_capacity(RECORD_BATCH);
    for winner in pending {
        if let Some(outcome) = issue_one(state, campaign, round_no, winner).await {
            outcomes.push((winner.rank, outcome));
        }
        if outcomes.len() >= RECORD_BATCH {
            let now = state.clock.now();
            store::record_outcomes(&state.pg, campaign.id, round_no, &outcomes, now).await?;
            outcomes.clear();
        }
    }
    let now = state.clock.now();
    store::record_outcomes(&state.pg, campaign.id, round_no, &outcomes, now).await?;
    Ok(())
}

/// Runs the claim script for one winner: `None` leaves them pending (try again later).
async fn issue_one(
    state: &AppState,
    campaign: &Campaign,
    round_no: u32,
    winner: &Winner,
) -> Option<Outcome> {
    let now = to_millis(state.clock.now());
    let (valid_from, valid_until) = window(campaign, now);
    let request = ClaimRequest {
        campaign_id: campaign.id,
        person_id: winner.person_id.clone(),
        claim_id: winner.claim_id,
        voucher_id: VoucherId(Uuid::now_v7()),
        round_no,
        now,
        valid_from,
        valid_until,
        mode: ClaimMode::Rush,
    };
    let refused = |why: &str| Some(Outcome::Refused(why.to_owned()));
    match run_claim(state, campaign, &request).await {
        Ok(ClaimOutcome::Claimed(v) | ClaimOutcome::Replayed(v)) => {
            Some(Outcome::Issued(v.voucher_id))
        }
        Ok(ClaimOutcome::LimitReached) => refused("per-person limit reached"),
        Ok(ClaimOutcome::SoldOut) => refused("no stock left"),
        Ok(ClaimOutcome::ClaimIdConflict) => refused("claim id used by another person"),
        Ok(
            other @ (ClaimOutcome::Paused | ClaimOutcome::NotOpen | ClaimOutcome::UnknownCampaign),
        ) => {
            tracing::warn!(
                rank = winner.rank,
                "winner left pending: the claim script answered {other:?}"
            );
            None
        }
        Err(e) => {
            tracing::warn!(rank = winner.rank, "winner left pending: {e}");
            None
        }
    }
}

//! Lottery rounds (报名摇号): residents register during a window; after it an administrator
//! draws, the seed committed to at the round's creation is revealed, and the winners get
//! their vouchers through the same claim script and outbox as the rush. The arithmetic is
//! [`voucher_core::lottery`]; the record is [`voucher_store::pg::lottery`].
//!
//! - [`registration`]: register (one entry per person, idempotent) and "my registration".
//! - [`draw`]: the administrators' draw and the issuing of the winners' vouchers.
//! - here: the round's public state and its published draw, and the errors with details
//!   that the flows share.
//!
//! Times: a lottery round takes registrations in `[registration_opens_at,
//! registration_closes_at)`; it may be drawn from its `starts_at` (at or after the close),
//! which is also when its stock is released. While it is the current round, rush claims
//! are refused with `ROUND_IS_LOTTERY`.

pub mod draw;
pub mod registration;

use crate::error::{self, ApiError, Code};
use crate::state::AppState;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use voucher_core::campaign::LotteryWindow;
use voucher_core::lottery::{PublishedDraw, ALGORITHM};
use voucher_core::{Campaign, CampaignId, Round};
use voucher_store::pg::lottery as store;

/// Where a lottery round stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Registration has not opened.
    Upcoming,
    /// Registration is open.
    RegistrationOpen,
    /// Registration has closed; not drawn yet.
    RegistrationClosed,
    /// Drawn: seed and winners are published.
    Drawn,
}

/// A lottery round's public state (`GET /v1/campaigns/{id}/rounds/{round_no}/lottery`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LotteryState {
    /// The campaign.
    pub campaign_id: i64,
    /// The round.
    pub round_no: u32,
    /// Winners it offers (the round's quantity).
    pub quantity: u32,
    /// Registration opens.
    pub registration_opens_at: DateTime<Utc>,
    /// Registration closes (excluded).
    pub registration_closes_at: DateTime<Utc>,
    /// The draw may take place from (the round's start).
    pub draw_from: DateTime<Utc>,
    /// SHA-256 of the secret seed (hex), published since the round was created.
    pub commitment: String,
    /// Where it stands.
    pub phase: Phase,
    /// Entries so far (after the draw: the entries drawn from).
    pub registered: u32,
    /// When it was drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drawn_at: Option<DateTime<Utc>>,
    /// The revealed seed (hex), after the draw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// How many won, after the draw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winners: Option<u32>,
}

/// The round `round_no` of `campaign` and its lottery window.
///
/// # Errors
/// `ROUND_NOT_FOUND`, `ROUND_NOT_LOTTERY`.
pub fn lottery_round(
    campaign: &Campaign,
    round_no: u32,
) -> Result<(Round, LotteryWindow), ApiError> {
    let round = campaign
        .round(round_no)
        .ok_or_else(|| round_not_found(campaign.id, round_no))?;
    let window = round.mode.lottery().copied().ok_or_else(|| {
        ApiError::new(Code::RoundNotLottery).with_message(format!(
            "round {round_no} of campaign {} is a rush round: claim in it instead",
            campaign.id
        ))
    })?;
    Ok((*round, window))
}

/// A campaign from the cache (residents' and public reads).
///
/// # Errors
/// `CAMPAIGN_NOT_FOUND`.
pub fn cached_campaign(state: &AppState, id: CampaignId) -> Result<Campaign, ApiError> {
    state
        .campaigns
        .get(id)
        .ok_or_else(|| error::campaign_not_found(id))
}

/// The public state of a lottery round.
///
/// # Errors
/// `CAMPAIGN_NOT_FOUND`, `ROUND_NOT_FOUND`, `ROUND_NOT_LOTTERY`; store failures.
pub async fn public_state(
    state: &AppState,
    campaign_id: CampaignId,
    round_no: u32,
) -> Result<LotteryState, ApiError> {
    let campaign = cached_campaign(state, campaign_id)?;
    let (round, window) = lottery_round(&campaign, round_no)?;
    let recorded = store::state(&state.pg, campaign_id, round_no)
        .await?
        .ok_or_else(|| round_not_found(campaign_id, round_no))?;
    let now = state.clock.now();
    let phase = if recorded.drawn_at.is_some() {
        Phase::Drawn
    } else if now < window.registration_opens_at {
        Phase::Upcoming
    } else if now < window.registration_closes_at {
        Phase::RegistrationOpen
    } else {
        Phase::RegistrationClosed
    };
    Ok(LotteryState {
        campaign_id: campaign_id.0,
        round_no,
        quantity: round.quantity,
        registration_opens_at: window.registration_opens_at,
        registration_closes_at: window.registration_closes_at,
        draw_from: round.starts_at,
        commitment: recorded.commitment.to_hex(),
        phase,
        registered: recorded.registrations,
        drawn_at: recorded.drawn_at,
        seed: recorded.seed.map(|s| s.to_hex()),
        winners: recorded.winners,
    })
}

/// The published draw of a round (what `issuance verify-draw` checks).
///
/// # Errors
/// `CAMPAIGN_NOT_FOUND`, `ROUND_NOT_FOUND`, `ROUND_NOT_LOTTERY`, `NOT_YET_DRAWN`; store
/// failures.
pub async fn published_draw(
    state: &AppState,
    campaign_id: CampaignId,
    round_no: u32,
) -> Result<PublishedDraw, ApiError> {
    let campaign = cached_campaign(state, campaign_id)?;
    let (round, _) = lottery_round(&campaign, round_no)?;
    let record = store::load_draw(&state.pg, campaign_id, round_no)
        .await?
        .ok_or_else(|| not_yet_drawn(round.starts_at))?;
    Ok(publish(campaign_id, round_no, record))
}

/// The public form of a recorded draw.
pub fn publish(campaign_id: CampaignId, round_no: u32, record: store::DrawRecord) -> PublishedDraw {
    PublishedDraw {
        algorithm: ALGORITHM.to_owned(),
        campaign_id,
        round_no,
        quantity: record.quantity,
        commitment: record.commitment,
        seed: record.seed,
        drawn_at: record.drawn_at,
        registration_hashes: record.registration_hashes,
        winners: record.winners.iter().map(|w| w.registration_hash).collect(),
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `ROUND_NOT_FOUND` naming the round.
pub fn round_not_found(campaign_id: CampaignId, round_no: u32) -> ApiError {
    ApiError::new(Code::RoundNotFound)
        .with_message(format!("campaign {campaign_id} has no round {round_no}"))
}

/// `REGISTRATION_NOT_OPEN` with the opening time.
pub fn registration_not_open(window: &LotteryWindow) -> ApiError {
    let opens = rfc3339(window.registration_opens_at);
    ApiError::new(Code::RegistrationNotOpen)
        .with_message(format!("registration opens at {opens}"))
        .with_details(json!({
            "registration_opens_at": opens,
            "registration_closes_at": rfc3339(window.registration_closes_at),
        }))
}

/// `REGISTRATION_CLOSED` with the closing time.
pub fn registration_closed(window: &LotteryWindow) -> ApiError {
    let closes = rfc3339(window.registration_closes_at);
    ApiError::new(Code::RegistrationClosed)
        .with_message(format!("registration closed at {closes}"))
        .with_details(json!({
            "registration_opens_at": rfc3339(window.registration_opens_at),
            "registration_closes_at": closes,
        }))
}

/// `DRAW_TOO_EARLY` with the earliest draw time.
pub fn draw_too_early(draw_from: DateTime<Utc>) -> ApiError {
    let from = rfc3339(draw_from);
    ApiError::new(Code::DrawTooEarly)
        .with_message(format!("the round may be drawn from {from}"))
        .with_details(json!({ "draw_from": from }))
}

/// `NOT_YET_DRAWN` with the earliest draw time.
pub fn not_yet_drawn(draw_from: DateTime<Utc>) -> ApiError {
    let from = rfc3339(draw_from);
    ApiError::new(Code::NotYetDrawn)
        .with_message(format!(
            "the round has not been drawn yet; it may be drawn from {from}"
        ))
        .with_details(json!({ "draw_from": from }))
}

/// `ROUND_IS_LOTTERY`: a rush claim while `round` (a lottery) is the current round.
pub fn round_is_lottery(campaign: &Campaign, round: &Round, now: DateTime<Utc>) -> ApiError {
    let next = campaign.next_round(now).map(|r| rfc3339(r.starts_at));
    let message = match &next {
        Some(at) => format!(
            "round {} is a lottery: its vouchers go to the winners of its draw; the next round starts at {at}",
            round.round_no
        ),
        None => format!(
            "round {} is a lottery: its vouchers go to the winners of its draw; no further round is scheduled",
            round.round_no
        ),
    };
    let window = round.mode.lottery();
    ApiError::new(Code::RoundIsLottery)
        .with_message(message)
        .with_details(json!({
            "round_no": round.round_no,
            "registration_opens_at": window.map(|w| rfc3339(w.registration_opens_at)),
            "registration_closes_at": window.map(|w| rfc3339(w.registration_closes_at)),
            "next_round_starts_at": next,
        }))
}

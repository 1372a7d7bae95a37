//! What a resident sees before claiming: the active claim campaigns they are eligible for,
//! with their rule, validity, live stock from Redis, their own claimed count and the
//! round schedule.

use crate::error::ApiError;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use voucher_core::identity::Identity;
use voucher_core::{Campaign, CampaignStatus, Distribution, Round, Rule, Validity};

/// A release round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoundView {
    /// 1, 2, 3 …
    pub round_no: u32,
    /// When it opens.
    pub starts_at: DateTime<Utc>,
    /// Vouchers it releases (recycled stock comes on top).
    pub quantity: u32,
    /// `rush` (claim from `starts_at`) or `lottery` (register in the window, drawn from
    /// `starts_at`: see `/v1/campaigns/{id}/rounds/{round_no}/lottery`).
    pub mode: String,
    /// A lottery's registration window opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_opens_at: Option<DateTime<Utc>>,
    /// A lottery's registration window closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_closes_at: Option<DateTime<Utc>>,
    /// A lottery's commitment: hex SHA-256 of the seed revealed at the draw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
}

impl From<&Round> for RoundView {
    fn from(r: &Round) -> Self {
        let window = r.mode.lottery();
        RoundView {
            round_no: r.round_no,
            starts_at: r.starts_at,
            quantity: r.quantity,
            mode: if window.is_some() { "lottery" } else { "rush" }.to_owned(),
            registration_opens_at: window.map(|w| w.registration_opens_at),
            registration_closes_at: window.map(|w| w.registration_closes_at),
            commitment: window.and_then(|w| w.commitment).map(|c| c.to_hex()),
        }
    }
}

/// A campaign as a resident sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResidentCampaign {
    /// Campaign id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The issuing city or county.
    pub owner_place: u32,
    /// Its name (晋城市): where the voucher can be used.
    pub owner_place_name: String,
    /// Merchant category (`catering`, `lodging`, `culture_tourism`, `home_furnishing`, `general`).
    pub category: String,
    /// The discount rule (`{"type":"threshold","min_spend":10000,"off":2000}` or
    /// `{"type":"percent","rate_bp":1000,"per_person_cap":200000}`), amounts in fen.
    #[schema(value_type = Object)]
    pub rule: Rule,
    /// Validity after claiming.
    #[schema(value_type = Object)]
    pub validity: Validity,
    /// How many one person may claim.
    pub per_person_limit: u32,
    /// How many the caller has claimed.
    pub my_claimed: u32,
    /// Released and unclaimed right now (0 before the first round is released).
    pub live_stock: i64,
    /// Not yet claimed, released or not.
    pub remaining_stock: i64,
    /// The round open now, if any.
    pub current_round: Option<RoundView>,
    /// Rounds still to come.
    pub upcoming_rounds: Vec<RoundView>,
}

/// The campaigns `who` may claim, by id.
///
/// # Errors
/// Redis failed.
#[tracing::instrument(name = "issuance.catalog.list", skip_all)]
pub async fn campaigns_for(
    state: &AppState,
    who: &Identity,
) -> Result<Vec<ResidentCampaign>, ApiError> {
    let now = state.clock.now();
    let mut out = Vec::new();
    for campaign in state.campaigns.all() {
        let offered = campaign.spec.distribution == Distribution::Claim
            && campaign.status == CampaignStatus::Active
            && campaign.check_eligibility(who).is_ok();
        if offered {
            out.push(view(state, &campaign, who, now).await?);
        }
    }
    Ok(out)
}

async fn view(
    state: &AppState,
    c: &Campaign,
    who: &Identity,
    now: DateTime<Utc>,
) -> Result<ResidentCampaign, ApiError> {
    let counters = {
        let _timer = state.metrics.redis_timer("counters");
        state.hot.counters(c.id).await?
    };
    let my_claimed = {
        let _timer = state.metrics.redis_timer("person_claims");
        state.hot.person_claims(c.id, &who.person_id).await?
    };
    let (live_stock, remaining_stock) = counters.map_or((0, 0), |k| (k.live, k.pool + k.live));
    Ok(ResidentCampaign {
        id: c.id.0,
        name: c.spec.name.clone(),
        owner_place: c.spec.owner_place.get(),
        owner_place_name: c.spec.owner_place.name_zh(),
        category: c.spec.category.as_str().to_owned(),
        rule: c.spec.rule.clone(),
        validity: c.spec.validity,
        per_person_limit: c.spec.per_person_limit,
        my_claimed,
        live_stock,
        remaining_stock,
        current_round: c.current_round(now).map(RoundView::from),
        upcoming_rounds: c
            .spec
            .rounds
            .iter()
            .filter(|r| r.starts_at > now)
            .map(RoundView::from)
            .collect(),
    })
}

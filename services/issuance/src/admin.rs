//! Administrators' operations on programs and campaigns. Each write goes to PostgreSQL (the
//! record) first, then to Redis (`sync_campaign` / `set_status`), then into the campaign
//! cache, under the cache's write lock (see [`crate::state`]). A city officer sees and
//! manages only campaigns of their city and its counties; only the province creates programs.

use crate::auth::Admin;
use crate::error::{self, ApiError};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use voucher_core::campaign::{bounds, InvalidCampaign, InvalidRoundMode, RoundKind};
use voucher_core::program::InvalidProgram;
use voucher_core::{
    AdminRole, Campaign, CampaignId, CampaignStatus, Distribution, NewCampaign, NewProgram,
    Program, ProgramId, Round, RoundMode,
};
use voucher_store::pg::{campaigns, programs};
use voucher_store::{CampaignCounters, StoreError};

/// `POST /v1/admin/campaigns/{id}/rounds` body. `round_no` defaults to the next number.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoundBody {
    /// The next round number (default: last + 1).
    #[serde(default, deserialize_with = "bounds::optional_round_no")]
    #[schema(minimum = 1, maximum = 10000)]
    pub round_no: Option<u32>,
    /// When the round opens (after the last round's start).
    pub starts_at: DateTime<Utc>,
    /// Vouchers it releases.
    #[serde(deserialize_with = "bounds::stock")]
    #[schema(minimum = 1, maximum = 100000000)]
    pub quantity: u32,
    /// `rush` (default) or `lottery` (报名摇号: registration, then a draw from `starts_at`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub mode: RoundKind,
    /// A lottery's registration window opens (required for a lottery).
    #[serde(default)]
    pub registration_opens_at: Option<DateTime<Utc>>,
    /// A lottery's registration window closes, at or before `starts_at` (required for a lottery).
    #[serde(default)]
    pub registration_closes_at: Option<DateTime<Utc>>,
}

/// Live counters from Redis (`null` when Redis does not know the campaign yet).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveCounters {
    /// Total stock.
    pub total: i64,
    /// Not yet released (recycled stock included).
    pub pool: i64,
    /// Released and unclaimed.
    pub live: i64,
    /// Claimed, ever.
    pub claimed: i64,
    /// Recycled into the pool, ever.
    pub recycled: i64,
    /// Last round released.
    pub released_round: u32,
    /// Outbox events not yet persisted.
    pub outbox_len: u64,
}

impl From<CampaignCounters> for LiveCounters {
    fn from(c: CampaignCounters) -> Self {
        LiveCounters {
            total: c.total,
            pool: c.pool,
            live: c.live,
            claimed: c.claimed,
            recycled: c.recycled,
            released_round: c.released_round,
            outbox_len: c.outbox_len,
        }
    }
}

/// A campaign with its live counters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignWithCounters {
    /// The campaign (`id`, `status` and every field of its spec).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub campaign: Campaign,
    /// Live counters.
    pub counters: Option<LiveCounters>,
}

/// `GET /v1/admin/campaigns/{id}/counters`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CountersResponse {
    /// The campaign.
    pub campaign_id: i64,
    /// Live counters from Redis.
    pub live: Option<LiveCounters>,
    /// Vouchers of the campaign persisted in PostgreSQL, by status.
    pub persisted: crate::persisted::PersistedCounts,
}

fn invalid_program(e: InvalidProgram) -> ApiError {
    let field = match e {
        InvalidProgram::Name => "name",
        InvalidProgram::FunderNotProvince => "funder_place",
        InvalidProgram::AllocationPlace(_) | InvalidProgram::AllocationsExceedPool => {
            "city_allocations"
        }
    };
    ApiError::invalid_field(field, e)
}

fn invalid_campaign(e: InvalidCampaign) -> ApiError {
    let field = match e {
        InvalidCampaign::Name => "name",
        InvalidCampaign::OwnerLevel => "owner_place",
        InvalidCampaign::Rule(_) | InvalidCampaign::RuleCategory { .. } => "rule",
        InvalidCampaign::ZeroStock => "stock",
        InvalidCampaign::ZeroLimit => "per_person_limit",
        InvalidCampaign::Rounds | InvalidCampaign::RoundsForDistribution => "rounds",
        InvalidCampaign::Validity => "validity",
        InvalidCampaign::ZeroBudget => "budget",
        InvalidCampaign::EligiblePlace(_) => "eligibility.places",
        InvalidCampaign::RealNameLevel => "eligibility.min_real_name_level",
        InvalidCampaign::Commitment => "rounds",
    };
    ApiError::invalid_field(field, e)
}

/// Creates a program (province role, within its own province).
///
/// # Errors
/// `FORBIDDEN_ROLE`, `FORBIDDEN_PLACE`, `INVALID_FIELD`, store failures.
#[tracing::instrument(name = "issuance.admin.create_program", skip_all, fields(admin = %admin.name))]
pub async fn create_program(
    state: &AppState,
    admin: &Admin,
    spec: NewProgram,
) -> Result<Program, ApiError> {
    admin.require_role(AdminRole::Province)?;
    spec.validate().map_err(invalid_program)?;
    admin.require_place(spec.funder_place)?;
    Ok(programs::create(&state.pg, &spec).await?)
}

/// All programs (any administrator may read them: campaigns refer to them).
///
/// # Errors
/// Store failures.
pub async fn list_programs(state: &AppState) -> Result<Vec<Program>, ApiError> {
    Ok(programs::list(&state.pg).await?)
}

/// One program.
///
/// # Errors
/// `PROGRAM_NOT_FOUND`, store failures.
pub async fn get_program(state: &AppState, id: ProgramId) -> Result<Program, ApiError> {
    programs::get(&state.pg, id)
        .await?
        .ok_or_else(|| error::program_not_found(id))
}

/// Creates a campaign in a place the administrator manages, under an existing program of
/// the same province; then makes Redis and the cache know it.
///
/// # Errors
/// `INVALID_FIELD`, `FORBIDDEN_PLACE`, `PROGRAM_NOT_FOUND`, store failures.
#[tracing::instrument(name = "issuance.admin.create_campaign", skip_all, fields(admin = %admin.name))]
pub async fn create_campaign(
    state: &AppState,
    admin: &Admin,
    spec: NewCampaign,
) -> Result<Campaign, ApiError> {
    spec.validate().map_err(invalid_campaign)?;
    for round in &spec.rounds {
        lottery_round_fits(&spec, round, state.clock.now()).map_err(|e| {
            ApiError::invalid_field("rounds", format!("round {}: {e}", round.round_no))
        })?;
    }
    admin.require_place(spec.owner_place)?;
    let program = programs::get(&state.pg, spec.program_id)
        .await?
        .ok_or_else(|| error::program_not_found(spec.program_id))?;
    if !program.spec.funder_place.covers(spec.owner_place) {
        return Err(ApiError::invalid_field(
            "program_id",
            format!(
                "program {} funds {}, which does not cover {}",
                program.id, program.spec.funder_place, spec.owner_place
            ),
        ));
    }
    let _guard = state.campaigns.lock_writes().await;
    let campaign = campaigns::create(&state.pg, &spec)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => error::program_not_found(spec.program_id),
            other => other.into(),
        })?;
    publish(state, &campaign).await;
    Ok(campaign)
}

/// Why a lottery round cannot be created as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum LotteryMisfit {
    /// The commitment is published when the round is created, which must be before its
    /// registration window opens.
    #[error("registration_opens_at must not be in the past: the round's commitment is published when it is created, before registration opens")]
    OpensInPast,
    /// A list campaign is issued to its list, not drawn.
    #[error("a list campaign is issued to its list; lottery rounds are for claim campaigns")]
    ListCampaign,
}

impl LotteryMisfit {
    fn field(self) -> &'static str {
        match self {
            LotteryMisfit::OpensInPast => "registration_opens_at",
            LotteryMisfit::ListCampaign => "mode",
        }
    }
}

/// Checks a lottery round against its campaign and the time of its creation (a rush round
/// always fits).
fn lottery_round_fits(
    spec: &NewCampaign,
    round: &Round,
    now: DateTime<Utc>,
) -> Result<(), LotteryMisfit> {
    let Some(window) = round.mode.lottery() else {
        return Ok(());
    };
    if spec.distribution != Distribution::Claim {
        return Err(LotteryMisfit::ListCampaign);
    }
    if window.registration_opens_at < crate::claims::to_millis(now) {
        return Err(LotteryMisfit::OpensInPast);
    }
    Ok(())
}

/// Writes a campaign that PostgreSQL now holds into Redis and the cache (creating its hot
/// state only if it was never created: [`AppState::sync_hot`]). A Redis failure is logged,
/// not returned: the write is recorded, and the next cache reload syncs it.
async fn publish(state: &AppState, campaign: &Campaign) {
    let synced = {
        let _timer = state.metrics.redis_timer("sync_campaign");
        state.sync_hot(campaign).await
    };
    if let Err(e) = synced {
        tracing::warn!(
            campaign_id = campaign.id.0,
            "campaign recorded but not yet synced into redis: {e}"
        );
    }
    state.campaigns.upsert(campaign.clone());
}

/// The campaigns within the administrator's place.
///
/// # Errors
/// Store failures.
pub async fn list_campaigns(state: &AppState, admin: &Admin) -> Result<Vec<Campaign>, ApiError> {
    Ok(campaigns::list(&state.pg, Some(admin.place)).await?)
}

/// One campaign the administrator manages, from the record.
///
/// # Errors
/// `CAMPAIGN_NOT_FOUND`, `FORBIDDEN_PLACE`, store failures.
pub async fn managed_campaign(
    state: &AppState,
    admin: &Admin,
    id: CampaignId,
) -> Result<Campaign, ApiError> {
    let campaign = campaigns::get(&state.pg, id)
        .await?
        .ok_or_else(|| error::campaign_not_found(id))?;
    admin.require_place(campaign.spec.owner_place)?;
    Ok(campaign)
}

/// Live counters of a campaign.
///
/// # Errors
/// Redis failed.
pub async fn live_counters(
    state: &AppState,
    id: CampaignId,
) -> Result<Option<LiveCounters>, ApiError> {
    let _timer = state.metrics.redis_timer("counters");
    Ok(state.hot.counters(id).await?.map(LiveCounters::from))
}

/// One campaign with its live counters.
///
/// # Errors
/// As [`managed_campaign`].
pub async fn get_campaign(
    state: &AppState,
    admin: &Admin,
    id: CampaignId,
) -> Result<CampaignWithCounters, ApiError> {
    let campaign = managed_campaign(state, admin, id).await?;
    let counters = live_counters(state, id).await?;
    Ok(CampaignWithCounters { campaign, counters })
}

/// Appends a release round.
///
/// # Errors
/// `CAMPAIGN_NOT_FOUND`, `FORBIDDEN_PLACE`, `INVALID_FIELD`, `ROUND_CONFLICT`, store failures.
#[tracing::instrument(name = "issuance.admin.add_round", skip_all, fields(admin = %admin.name, campaign_id = id.0))]
pub async fn add_round(
    state: &AppState,
    admin: &Admin,
    id: CampaignId,
    body: NewRoundBody,
) -> Result<Campaign, ApiError> {
    let campaign = managed_campaign(state, admin, id).await?;
    let next = campaign
        .spec
        .rounds
        .last()
        .map_or(1, |r| r.round_no.saturating_add(1));
    let mode = RoundMode::from_parts(
        body.mode,
        body.registration_opens_at,
        body.registration_closes_at,
        None,
        body.starts_at,
    )
    .map_err(|e| {
        let field = match e {
            InvalidRoundMode::MissingWindow => "registration_opens_at",
            InvalidRoundMode::WindowOnRush => "mode",
            InvalidRoundMode::WindowOrder => "registration_closes_at",
        };
        ApiError::invalid_field(field, e)
    })?;
    let round = Round {
        round_no: body.round_no.unwrap_or(next),
        starts_at: body.starts_at,
        quantity: body.quantity,
        mode,
    };
    campaign
        .spec
        .validate_new_round(&round)
        .map_err(invalid_campaign)?;
    lottery_round_fits(&campaign.spec, &round, state.clock.now())
        .map_err(|e| ApiError::invalid_field(e.field(), e))?;
    let _guard = state.campaigns.lock_writes().await;
    let updated = campaigns::add_round(&state.pg, id, &round)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(why) => error::round_conflict(format!(
                "round {} could not be added: {why}",
                round.round_no
            )),
            StoreError::NotFound => error::campaign_not_found(id),
            other => other.into(),
        })?;
    publish(state, &updated).await;
    Ok(updated)
}

/// Pauses or resumes claims.
///
/// # Errors
/// `CAMPAIGN_NOT_FOUND`, `FORBIDDEN_PLACE`, store failures (a Redis failure is 503: retry;
/// the record already holds the new status and the next reload applies it).
#[tracing::instrument(name = "issuance.admin.set_status", skip_all, fields(admin = %admin.name, campaign_id = id.0))]
pub async fn set_status(
    state: &AppState,
    admin: &Admin,
    id: CampaignId,
    status: CampaignStatus,
) -> Result<Campaign, ApiError> {
    managed_campaign(state, admin, id).await?;
    let _guard = state.campaigns.lock_writes().await;
    let updated = campaigns::set_status(&state.pg, id, status)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => error::campaign_not_found(id),
            other => other.into(),
        })?;
    state.campaigns.upsert(updated.clone());
    let _timer = state.metrics.redis_timer("set_status");
    state.hot.set_status(id, status).await?;
    Ok(updated)
}

/// Live counters and persisted counts.
///
/// # Errors
/// As [`managed_campaign`].
pub async fn counters(
    state: &AppState,
    admin: &Admin,
    id: CampaignId,
) -> Result<CountersResponse, ApiError> {
    managed_campaign(state, admin, id).await?;
    let live = live_counters(state, id).await?;
    let persisted = crate::persisted::counts(&state.pg, id).await?;
    Ok(CountersResponse {
        campaign_id: id.0,
        live,
        persisted,
    })
}

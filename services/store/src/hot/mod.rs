//! Hot state in Redis. Every key of a campaign carries the hash tag `{c<id>}` so that a
//! campaign's keys live in one cluster slot and its scripts stay single-slot.
//!
//! Keys (with the configured prefix, default `vp`):
//! - `vp:campaigns` — set of campaign ids known to Redis (the persister's list of outboxes).
//! - `vp:{c<id>}:c` — hash: config (`status`, `limit`, `mode`) and counters (`total`, `pool`,
//!   `live`, `claimed`, `recycled`, `recyc_pend`, `released_round`).
//! - `vp:{c<id>}:r` — sorted set of rounds: member = round number, score = start (Unix ms);
//!   `vp:{c<id>}:rq` hash round number → quantity.
//! - `vp:{c<id>}:p` — hash person id → vouchers claimed.
//! - `vp:{c<id>}:v` — hash claim id → `voucher_id|claimed_at_ms|person|state` (state `L` live,
//!   `R` recycled): the claim record that makes a retried claim return the first result.
//! - `vp:{c<id>}:ob` — the outbox stream (field `e` = an encoded `EventEnvelope`); the
//!   persister's consumer group is `persister`.

use crate::StoreError;
use chrono::{DateTime, Utc};
use voucher_core::{Campaign, CampaignId, CampaignStatus, ClaimId, PersonId, VoucherId};

/// Rush claim (needs an open round) or list issuance (no rounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimMode {
    /// A resident's claim in a release round.
    Rush,
    /// Bulk issuance to a list.
    List,
}

/// One claim attempt. The caller makes `voucher_id` (UUID v7) and the validity window.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// Who claims.
    pub person_id: PersonId,
    /// The idempotency key of this claim.
    pub claim_id: ClaimId,
    /// The id the voucher gets if the claim succeeds.
    pub voucher_id: VoucherId,
    /// The round the caller computed from the schedule at `now` (0 for list issuance).
    pub round_no: u32,
    /// The instant of the claim (from the service's clock).
    pub now: DateTime<Utc>,
    /// Validity window of the voucher if the claim succeeds.
    pub valid_from: DateTime<Utc>,
    /// Validity window of the voucher if the claim succeeds.
    pub valid_until: DateTime<Utc>,
    /// Rush or list.
    pub mode: ClaimMode,
}

/// A voucher that a claim produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedVoucher {
    /// Its id.
    pub voucher_id: VoucherId,
    /// When it was claimed (the first attempt's `now`, for a replay).
    pub claimed_at: DateTime<Utc>,
}

/// What the claim script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// A new voucher.
    Claimed(ClaimedVoucher),
    /// The claim id was seen before for this person: the first result.
    Replayed(ClaimedVoucher),
    /// The claim id was used before by another person.
    ClaimIdConflict,
    /// No round has started yet (rush).
    NotOpen,
    /// No stock left in the released rounds.
    SoldOut,
    /// The person holds the per-person limit already.
    LimitReached,
    /// The campaign is paused.
    Paused,
    /// Redis does not know the campaign.
    UnknownCampaign,
}

/// Live counters of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CampaignCounters {
    /// Total stock.
    pub total: i64,
    /// Not yet released (recycled stock included).
    pub pool: i64,
    /// Released and unclaimed.
    pub live: i64,
    /// Claimed, ever.
    pub claimed: i64,
    /// Recycled back into the pool, ever.
    pub recycled: i64,
    /// The last round released.
    pub released_round: u32,
    /// Events in the outbox not yet persisted.
    pub outbox_len: u64,
}

/// The Redis side of the store. Cheap to clone (a multiplexed, reconnecting connection).
#[derive(Clone)]
pub struct HotStore {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

impl HotStore {
    /// Connects (`redis://host:port` or `redis+unix:///path`).
    ///
    /// # Errors
    /// The connection failed.
    pub async fn connect(url: &str, prefix: &str) -> Result<HotStore, StoreError> {
        todo!("store: connect")
    }

    /// Makes Redis know `campaign`: config fields are overwritten, counters are created only
    /// if missing (so re-syncing never resets stock), rounds are upserted. Idempotent.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn sync_campaign(&self, campaign: &Campaign) -> Result<(), StoreError> {
        todo!("store: sync campaign")
    }

    /// Runs the claim script: round open? stock left? person below limit? claim id new?
    /// → decrement stock, count the person, record the claim, XADD `VoucherClaimed`.
    ///
    /// # Errors
    /// Redis failed (the claim may or may not have happened: retry with the same claim id).
    pub async fn claim(&self, req: &ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        todo!("store: claim")
    }

    /// Pauses or resumes claims.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn set_status(&self, campaign_id: CampaignId, status: CampaignStatus) -> Result<(), StoreError> {
        todo!("store: set status")
    }

    /// The campaign's counters, or `None` if Redis does not know it.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn counters(&self, campaign_id: CampaignId) -> Result<Option<CampaignCounters>, StoreError> {
        todo!("store: counters")
    }

    /// How many vouchers `person` has claimed in the campaign.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn person_claims(&self, campaign_id: CampaignId, person: &PersonId) -> Result<u32, StoreError> {
        todo!("store: person claims")
    }

    /// Returns an expired voucher's stock to the campaign's pool (released by the next round)
    /// and XADDs `StockRecycled`. Idempotent: `false` if it was already recycled.
    ///
    /// # Errors
    /// Redis failed, or no such claim.
    pub async fn recycle(&self, campaign_id: CampaignId, claim_id: ClaimId, voucher_id: VoucherId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        todo!("store: recycle")
    }

    /// Total entries waiting in all outbox streams (unpersisted or unacknowledged).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn outbox_len(&self) -> Result<u64, StoreError> {
        todo!("store: outbox len")
    }

    /// `PING`, for readiness.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn ping(&self) -> Result<(), StoreError> {
        todo!("store: ping")
    }
}

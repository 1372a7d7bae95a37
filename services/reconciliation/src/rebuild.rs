//! Rebuilding Redis hot state from PostgreSQL after Redis was lost (invariant I7), and the
//! PostgreSQL side of the cross-check ([`pg_state`]): what Redis should hold for a campaign,
//! derived from the `vouchers` table, the record.
//!
//! Per campaign: the config and rounds are written by the store's own sync path
//! ([`voucher_store::HotStore::sync_campaign`]), then the counters, the person counts and
//! the claim records are overwritten:
//! - `total` = stock, `claimed` = vouchers, `recycled` = vouchers whose stock went back;
//! - `live + pool` = stock − claimed + recycled. The split between them is derived from the
//!   rounds started by now (`released_round`): live = released quantity + recycled − claimed,
//!   clamped to 0..=available, the rest stays in the pool, `recyc_pend` = 0 (recycled stock
//!   is treated as released; the cross-check compares `live + pool`, which is exact);
//! - `:p:<b>` person → vouchers claimed (a recycled voucher still counts, as in the claim
//!   script);
//! - `:v:<b>` claim id → `voucher|claimed_at_ms|person|L` (or `R` once recycled), in this
//!   text form here; the store encodes it in binary and puts each entry in its bucket.
//!
//! The outbox is not rebuilt: PostgreSQL already holds every persisted event. Run the rebuild
//! with the claiming services stopped (`deploy/…`: stop issuance, rebuild, check, start).

use crate::error::ReconError;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;
use uuid::Uuid;
use voucher_core::{Campaign, Distribution};
use voucher_store::hot::HotRestore;
use voucher_store::HotStore;

/// What PostgreSQL says a campaign's hot state is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgCampaignState {
    /// Stock.
    pub stock: i64,
    /// Vouchers claimed, ever.
    pub claimed: i64,
    /// Vouchers whose stock was recycled.
    pub recycled: i64,
    /// Person → vouchers claimed.
    pub persons: BTreeMap<String, i64>,
    /// Claim id (32 hex) → claim record.
    pub claims: BTreeMap<String, String>,
}

impl PgCampaignState {
    /// Stock not claimed (released or not): `stock − claimed + recycled`.
    pub fn available(&self) -> i64 {
        self.stock - self.claimed + self.recycled
    }
}

/// Reads a campaign's vouchers (streamed) into the hot state they imply.
///
/// # Errors
/// Database failure.
pub async fn pg_state(pool: &PgPool, campaign: &Campaign) -> Result<PgCampaignState, ReconError> {
    let mut state = PgCampaignState {
        stock: i64::from(campaign.spec.stock),
        claimed: 0,
        recycled: 0,
        persons: BTreeMap::new(),
        claims: BTreeMap::new(),
    };
    let mut rows = sqlx::query(
        "SELECT voucher_id, claim_id, person_id, claimed_at, recycled_at IS NOT NULL AS recycled
           FROM vouchers WHERE campaign_id = $1",
    )
    .bind(campaign.id.0)
    .fetch(pool);
    while let Some(r) = rows.try_next().await? {
        let voucher: Uuid = r.try_get("voucher_id")?;
        let claim: Uuid = r.try_get("claim_id")?;
        let person: String = r.try_get("person_id")?;
        let at: DateTime<Utc> = r.try_get("claimed_at")?;
        let recycled: bool = r.try_get("recycled")?;
        state.claimed += 1;
        if recycled {
            state.recycled += 1;
        }
        let record = format!(
            "{}|{}|{}|{}",
            voucher.simple(),
            at.timestamp_millis(),
            person,
            if recycled { 'R' } else { 'L' }
        );
        *state.persons.entry(person).or_default() += 1;
        state.claims.insert(claim.simple().to_string(), record);
    }
    Ok(state)
}

/// The counters and records to write for `campaign` at `now`.
pub fn restore_of(campaign: &Campaign, state: &PgCampaignState, now: DateTime<Utc>) -> HotRestore {
    let available = state.available().max(0);
    let (live, released_round) = match campaign.spec.distribution {
        Distribution::List => (available, 0),
        Distribution::Claim => {
            let started: Vec<_> = campaign
                .spec
                .rounds
                .iter()
                .filter(|r| r.starts_at <= now)
                .collect();
            let released_round = started.iter().map(|r| r.round_no).max().unwrap_or(0);
            let released: i64 = started.iter().map(|r| i64::from(r.quantity)).sum();
            let live = (released + state.recycled - state.claimed).clamp(0, available);
            (live, i64::from(released_round))
        }
    };
    HotRestore {
        counters: vec![
            ("total", state.stock),
            ("pool", available - live),
            ("live", live),
            ("claimed", state.claimed),
            ("recycled", state.recycled),
            ("recyc_pend", 0),
            ("released_round", released_round),
        ],
        persons: state.persons.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        claims: state
            .claims
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// What a rebuild wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Campaigns restored.
    pub campaigns: usize,
    /// Claim records written.
    pub claims: usize,
    /// Person counts written.
    pub persons: usize,
}

/// Rebuilds every campaign's hot state from PostgreSQL.
///
/// # Errors
/// Database or Redis failure.
#[tracing::instrument(name = "reconciliation.rebuild", skip_all, err)]
pub async fn rebuild(
    pool: &PgPool,
    hot: &HotStore,
    now: DateTime<Utc>,
) -> Result<RebuildReport, ReconError> {
    let mut report = RebuildReport::default();
    for campaign in voucher_store::pg::campaigns::list(pool, None).await? {
        let state = pg_state(pool, &campaign).await?;
        let restore = restore_of(&campaign, &state, now);
        hot.restore_campaign(&campaign, &restore).await?;
        report.campaigns += 1;
        report.claims += restore.claims.len();
        report.persons += restore.persons.len();
    }
    Ok(report)
}

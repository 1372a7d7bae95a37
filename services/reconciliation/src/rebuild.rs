//! Rebuilding Redis hot state from PostgreSQL after Redis was lost (invariant I7), and the
//! PostgreSQL side of the cross-check ([`pg_state`]): what Redis should hold for a campaign,
//! derived from the `vouchers` table, the record.
//!
//! Per campaign: the record's marker `hot_created_at` is set (kept if set: the campaign's hot
//! state now exists, so the services only ever update it, never create it again), then
//! [`voucher_store::HotStore::restore_campaign`] writes config, rounds, counters, person
//! counts and claim records, the campaign hash last and whole, so a claim never sees
//! counters without the person counts that go with them:
//! - `total` = stock, `claimed` = vouchers, `recycled` = vouchers whose stock went back;
//! - `live + pool` = stock − claimed + recycled. The split between them is derived from the
//!   rounds started by now (`released_round`): stock recycled before the latest started round
//!   opened was released by it; stock recycled since waits for the next round (`recyc_pend`),
//!   as the claim script would have it. live = released quantity + recycled and released −
//!   claimed, clamped to 0..=available; the rest stays in the pool (the cross-check compares
//!   `live + pool`, which is exact);
//! - `:p:<b>` person → vouchers claimed (a recycled voucher still counts, as in the claim
//!   script);
//! - `:v:<b>` claim id → `voucher|claimed_at_ms|person|L` (or `R` once recycled), in this
//!   text form here; the store encodes it in binary and puts each entry in its bucket.
//!
//! The outbox is not rebuilt: PostgreSQL already holds every persisted event.
//!
//! When Redis LOST its data (restarted empty), the rebuild may run while issuance serves:
//! issuance never recreates a campaign's counters by itself (it answers `HOT_STATE_LOST`
//! and reports not ready), and each campaign's claims resume as soon as its restore has
//! written the campaign hash, without a restart. On a Redis that still holds data, stop
//! issuance and let the outbox drain first: events not yet persisted are not in the record,
//! and the rebuild would forget them.

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
    /// When each recycled voucher's stock went back to the pool.
    pub recycled_at: Vec<DateTime<Utc>>,
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
        recycled_at: Vec::new(),
        persons: BTreeMap::new(),
        claims: BTreeMap::new(),
    };
    let mut rows = sqlx::query(
        "SELECT voucher_id, claim_id, person_id, claimed_at, recycled_at
           FROM vouchers WHERE campaign_id = $1",
    )
    .bind(campaign.id.0)
    .fetch(pool);
    while let Some(r) = rows.try_next().await? {
        let voucher: Uuid = r.try_get("voucher_id")?;
        let claim: Uuid = r.try_get("claim_id")?;
        let person: String = r.try_get("person_id")?;
        let at: DateTime<Utc> = r.try_get("claimed_at")?;
        let recycled_at: Option<DateTime<Utc>> = r.try_get("recycled_at")?;
        let recycled = recycled_at.is_some();
        state.claimed += 1;
        if let Some(when) = recycled_at {
            state.recycled += 1;
            state.recycled_at.push(when);
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
    let (live, released_round, pending) = match campaign.spec.distribution {
        Distribution::List => (available, 0, 0),
        Distribution::Claim => {
            let started: Vec<_> = campaign
                .spec
                .rounds
                .iter()
                .filter(|r| r.starts_at <= now)
                .collect();
            let current = started.iter().max_by_key(|r| r.round_no);
            let released_round = current.map_or(0, |r| r.round_no);
            let released: i64 = started.iter().map(|r| i64::from(r.quantity)).sum();
            // Recycled after the current round opened: waits for the next round.
            let pending = current.map_or(state.recycled, |r| {
                let since = state
                    .recycled_at
                    .iter()
                    .filter(|at| **at > r.starts_at)
                    .count();
                i64::try_from(since).unwrap_or(i64::MAX)
            });
            let live = (released + state.recycled - pending - state.claimed).clamp(0, available);
            (
                live,
                i64::from(released_round),
                pending.min(available - live),
            )
        }
    };
    HotRestore {
        counters: vec![
            ("total", state.stock),
            ("pool", available - live),
            ("live", live),
            ("claimed", state.claimed),
            ("recycled", state.recycled),
            ("recyc_pend", pending),
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
#[tracing::instrument(name = "reconciliation.rebuild", skip_all, err(level = "debug"))]
pub async fn rebuild(
    pool: &PgPool,
    hot: &HotStore,
    now: DateTime<Utc>,
) -> Result<RebuildReport, ReconError> {
    let mut report = RebuildReport::default();
    for campaign in voucher_store::pg::campaigns::list(pool, None).await? {
        let state = pg_state(pool, &campaign).await?;
        let restore = restore_of(&campaign, &state, now);
        // Marked first: if the restore fails halfway, the campaign stays "lost" (never
        // recreated at full stock by a service) until the rebuild is run again.
        voucher_store::pg::campaigns::mark_hot_created(pool, campaign.id).await?;
        hot.restore_campaign(&campaign, &restore).await?;
        report.campaigns += 1;
        report.claims += restore.claims.len();
        report.persons += restore.persons.len();
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use voucher_core::{
        CampaignId, CampaignStatus, Category, Eligibility, Fen, NewCampaign, PlaceCode, ProgramId,
        Round, Rule, Validity,
    };

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0)
            .single()
            .expect("date")
    }

    fn campaign() -> Campaign {
        let round = |round_no, days, quantity| Round {
            round_no,
            starts_at: t0() + Duration::days(days),
            quantity,
            mode: voucher_core::RoundMode::Rush,
        };
        Campaign {
            id: CampaignId(1),
            status: CampaignStatus::Active,
            spec: NewCampaign {
                program_id: ProgramId(1),
                name: "c".into(),
                owner_place: PlaceCode::try_from(140_500).expect("place"),
                category: Category::Catering,
                rule: Rule::Threshold {
                    min_spend: Fen::ZERO,
                    off: Fen::try_from(100).expect("fen"),
                },
                stock: 100,
                per_person_limit: 1,
                rounds: vec![round(1, 0, 60), round(2, 10, 40)],
                validity: Validity {
                    days_after_claim: Some(7),
                    ends_at: None,
                },
                budget: Fen::try_from(10_000).expect("fen"),
                eligibility: Eligibility {
                    places: vec![],
                    min_real_name_level: 0,
                },
                distribution: Distribution::Claim,
            },
        }
    }

    fn counter(r: &HotRestore, name: &str) -> i64 {
        r.counters
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(-1, |(_, v)| *v)
    }

    #[test]
    fn stock_recycled_after_the_current_round_waits_for_the_next() {
        // 60 claimed in round 1; 5 expired and recycled on day 8 (before round 2 opened on
        // day 10) and 3 on day 12 (after): round 2 released 40 + 5; the 3 wait.
        let mut recycled_at = vec![t0() + Duration::days(8); 5];
        recycled_at.extend(vec![t0() + Duration::days(12); 3]);
        let state = PgCampaignState {
            stock: 100,
            claimed: 60,
            recycled: 8,
            recycled_at,
            persons: BTreeMap::new(),
            claims: BTreeMap::new(),
        };
        let r = restore_of(&campaign(), &state, t0() + Duration::days(13));
        assert_eq!(counter(&r, "released_round"), 2);
        assert_eq!(counter(&r, "recyc_pend"), 3);
        assert_eq!(counter(&r, "live"), 60 + 40 + 5 - 60);
        assert_eq!(counter(&r, "pool"), 3);
        assert_eq!(counter(&r, "live") + counter(&r, "pool"), state.available());
        // On day 9, before round 2: the 5 recycled so far wait for it.
        let day9 = PgCampaignState {
            recycled: 5,
            recycled_at: vec![t0() + Duration::days(8); 5],
            ..state
        };
        let r = restore_of(&campaign(), &day9, t0() + Duration::days(9));
        assert_eq!(
            (counter(&r, "released_round"), counter(&r, "recyc_pend")),
            (1, 5)
        );
        assert_eq!((counter(&r, "live"), counter(&r, "pool")), (0, 45));
    }
}

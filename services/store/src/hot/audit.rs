//! Reading and restoring a campaign's whole hot state, for the reconciliation job: the
//! cross-check compares it with PostgreSQL, and the rebuild writes it back from PostgreSQL
//! after Redis was lost (invariant I7). The claim path never uses this module.
//!
//! A restore overwrites counters, person counts and claim records of a campaign in chunks,
//! not atomically: run it while the services that claim are stopped (the rebuild's
//! documented procedure).

use super::{HotStore, PERSISTER_GROUP};
use crate::StoreError;
use redis::AsyncCommands;
use std::collections::BTreeMap;
use voucher_core::Campaign;
use voucher_core::CampaignId;

/// The pipelined reply of a snapshot: `:c`, `:p`, `:v`, `XLEN :ob`.
type SnapshotReply = (
    BTreeMap<String, String>,
    BTreeMap<String, i64>,
    BTreeMap<String, String>,
    u64,
);

/// How many hash fields one `HSET` of a restore writes.
const CHUNK: usize = 1_000;

/// Everything Redis holds for one campaign, as read by [`HotStore::campaign_snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotSnapshot {
    /// The fields of `:c` (config and counters) as stored.
    pub fields: BTreeMap<String, String>,
    /// Person id → vouchers claimed (`:p`).
    pub persons: BTreeMap<String, i64>,
    /// Claim id (32 hex) → claim record (`:v`).
    pub claims: BTreeMap<String, String>,
    /// Entries in the outbox stream (`XLEN :ob`): events not yet persisted.
    pub outbox_len: u64,
    /// Entries delivered to the persister but not acknowledged (`XPENDING`).
    pub outbox_pending: u64,
}

impl HotSnapshot {
    /// A counter of `:c` as a number (`None` when missing or not a number).
    pub fn counter(&self, name: &str) -> Option<i64> {
        self.fields.get(name).and_then(|v| v.parse().ok())
    }
}

/// The hot state a rebuild writes for one campaign (computed from PostgreSQL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotRestore {
    /// Counters of `:c`: `total`, `pool`, `live`, `claimed`, `recycled`, `recyc_pend`,
    /// `released_round`.
    pub counters: Vec<(&'static str, i64)>,
    /// Person id → vouchers claimed.
    pub persons: Vec<(String, i64)>,
    /// Claim id (32 hex) → `voucher_hex|claimed_at_ms|person|L` or `…|R` (recycled).
    pub claims: Vec<(String, String)>,
}

impl HotStore {
    /// Reads a campaign's whole hot state (`None` when Redis does not know the campaign).
    /// Person counts and claim records are read with `HGETALL`: fine for the cross-check of
    /// a campaign of a few million claims, which is run off-peak.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn campaign_snapshot(
        &self,
        campaign_id: CampaignId,
    ) -> Result<Option<HotSnapshot>, StoreError> {
        let keys = self.keys(campaign_id);
        let keys = &keys;
        let (fields, persons, claims, outbox_len): SnapshotReply = self
            .retrying(|mut c| async move {
                redis::pipe()
                    .hgetall(&keys.campaign)
                    .hgetall(&keys.persons)
                    .hgetall(&keys.claims)
                    .xlen(&keys.outbox)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        // XPENDING fails when the stream or the group is missing: then nothing is pending.
        let pending: Result<redis::streams::StreamPendingReply, _> = self
            .retrying(|mut c| async move { c.xpending(&keys.outbox, PERSISTER_GROUP).await })
            .await;
        let outbox_pending = match pending {
            Ok(p) => u64::try_from(p.count()).unwrap_or(u64::MAX),
            Err(_) => 0,
        };
        Ok(Some(HotSnapshot {
            fields,
            persons,
            claims,
            outbox_len,
            outbox_pending,
        }))
    }

    /// Makes Redis know `campaign` again (config, rounds, the outbox group, the campaign set:
    /// [`HotStore::sync_campaign`]) and overwrites its counters, person counts and claim
    /// records with `state`. Idempotent.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn restore_campaign(
        &self,
        campaign: &Campaign,
        state: &HotRestore,
    ) -> Result<(), StoreError> {
        self.sync_campaign(campaign).await?;
        let keys = self.keys(campaign.id);
        let keys = &keys;
        let counters = &state.counters;
        let _: () = self
            .retrying(|mut c| async move {
                redis::pipe()
                    .hset_multiple(&keys.campaign, counters)
                    .ignore()
                    .del(&keys.persons)
                    .ignore()
                    .del(&keys.claims)
                    .ignore()
                    .query_async(&mut c)
                    .await
            })
            .await?;
        for chunk in state.persons.chunks(CHUNK) {
            let _: () = self
                .retrying(|mut c| async move { c.hset_multiple(&keys.persons, chunk).await })
                .await?;
        }
        for chunk in state.claims.chunks(CHUNK) {
            let _: () = self
                .retrying(|mut c| async move { c.hset_multiple(&keys.claims, chunk).await })
                .await?;
        }
        Ok(())
    }
}

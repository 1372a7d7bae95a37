//! The application state shared by every flow and background task: settings, stores,
//! clock, keys, the per-person limit, metrics and the campaign cache. (Extractors do not
//! read it: they have their own app data, [`crate::identities::Identities`] and the
//! platform's administrators' keys.)
//!
//! The campaign cache keeps the claim path off PostgreSQL: it is reloaded every
//! `campaigns_refresh_ms` and, on each reload, every campaign is `sync_campaign`ed into
//! Redis, so Redis heals itself after a flush or a failover within one period. Admin writes
//! update PostgreSQL, then Redis, then the cache, under the same lock as the reload, so a
//! reload that read PostgreSQL before a write can never push the old state into Redis after it.

use crate::metrics::Metrics;
use crate::settings::Settings;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::keys::{SigningKey, Verifier};
use voucher_core::{Campaign, CampaignId, Clock, PersonId};
use voucher_platform::limit::Limiter;
use voucher_store::{HotStore, ReplicaBarrier, StoreError};

/// Keys for voucher tokens.
pub struct Keys {
    /// Signs new voucher tokens (the current key).
    pub voucher_signing: SigningKey,
    /// Every active voucher key (published at `/v1/keys`).
    pub voucher_verifier: Verifier,
}

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The settings the app was built with.
    pub settings: Arc<Settings>,
    /// PostgreSQL, the record.
    pub pg: PgPool,
    /// Redis, the hot state.
    pub hot: HotStore,
    /// Acknowledges a claim only once `redis.ack_replicas` replicas hold it.
    pub barrier: ReplicaBarrier,
    /// Now (injectable for tests).
    pub clock: Arc<dyn Clock>,
    /// Signing and verification keys.
    pub keys: Arc<Keys>,
    /// Dynamic codes for checkout.
    pub dynamic_codes: Arc<DynamicCodes>,
    /// Metrics.
    pub metrics: Metrics,
    /// Campaigns, from PostgreSQL.
    pub campaigns: CampaignCache,
    /// Claims per person (the per-IP limit is the platform's, on every request).
    pub person_limit: Arc<Limiter<PersonId>>,
}

/// Campaigns by id, reloaded from PostgreSQL and updated at once by admin writes.
#[derive(Clone, Default)]
pub struct CampaignCache {
    map: Arc<RwLock<HashMap<CampaignId, Campaign>>>,
    /// Serialises "read PostgreSQL → write Redis → update cache" sequences (reload and
    /// admin writes) within this process.
    writes: Arc<tokio::sync::Mutex<()>>,
}

impl CampaignCache {
    /// One campaign.
    pub fn get(&self, id: CampaignId) -> Option<Campaign> {
        self.read().get(&id).cloned()
    }

    /// All campaigns, by id.
    pub fn all(&self) -> Vec<Campaign> {
        let mut all: Vec<Campaign> = self.read().values().cloned().collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Inserts or replaces one campaign.
    pub fn upsert(&self, campaign: Campaign) {
        self.write().insert(campaign.id, campaign);
    }

    /// Replaces everything.
    pub fn replace_all(&self, campaigns: Vec<Campaign>) {
        let fresh: HashMap<_, _> = campaigns.into_iter().map(|c| (c.id, c)).collect();
        *self.write() = fresh;
    }

    /// Takes the write lock (hold it across PostgreSQL write → Redis write → [`upsert`](Self::upsert)).
    pub async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
    }

    // A panic while holding the lock cannot leave the map half-written (every write is one
    // insert or one assignment), so a poisoned lock is safe to keep using.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<CampaignId, Campaign>> {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<CampaignId, Campaign>> {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl AppState {
    /// Reloads every campaign from PostgreSQL, syncs each into Redis and replaces the cache;
    /// then updates the stock gauges and the outbox lag. Returns how many campaigns.
    ///
    /// # Errors
    /// PostgreSQL or Redis failed (the cache keeps its previous content).
    #[tracing::instrument(
        name = "issuance.campaigns.refresh",
        level = "debug",
        skip_all,
        err(level = "warn")
    )]
    pub async fn refresh_campaigns(&self) -> Result<usize, StoreError> {
        let campaigns = {
            let _guard = self.campaigns.lock_writes().await;
            let campaigns = voucher_store::pg::campaigns::list(&self.pg, None).await?;
            for campaign in &campaigns {
                let _timer = self.metrics.redis_timer("sync_campaign");
                self.hot.sync_campaign(campaign).await?;
            }
            self.campaigns.replace_all(campaigns.clone());
            campaigns
        };
        for campaign in &campaigns {
            let _timer = self.metrics.redis_timer("counters");
            if let Some(counters) = self.hot.counters(campaign.id).await? {
                let label = campaign.id.to_string();
                self.metrics
                    .campaign_live_stock
                    .with_label_values(&[&label])
                    .set(counters.live);
                self.metrics
                    .campaign_claimed
                    .with_label_values(&[&label])
                    .set(counters.claimed);
            }
        }
        let lag = self.hot.outbox_len().await?;
        self.metrics
            .store
            .outbox_lag
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
        Ok(campaigns.len())
    }

    /// Makes Redis know a campaign the cache has but Redis does not (after a Redis flush,
    /// before the next reload).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn resync(&self, campaign: &Campaign) -> Result<(), StoreError> {
        let _guard = self.campaigns.lock_writes().await;
        // After a flush every in-flight claim lands here: the first one re-syncs, the
        // others find the campaign known and go straight back to the script.
        if self.hot.counters(campaign.id).await?.is_some() {
            return Ok(());
        }
        let fresh = voucher_store::pg::campaigns::get(&self.pg, campaign.id).await?;
        let campaign = fresh.as_ref().unwrap_or(campaign);
        self.hot.sync_campaign(campaign).await?;
        self.campaigns.upsert(campaign.clone());
        Ok(())
    }
}

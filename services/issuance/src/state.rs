//! The application state shared by every flow and background task: settings, stores,
//! clock, keys, the per-person limit, metrics and the campaign cache. (Extractors do not
//! read it: they have their own app data, [`crate::identities::Identities`] and the
//! platform's administrators' keys.)
//!
//! The campaign cache keeps the claim path off PostgreSQL: it is reloaded every
//! `campaigns_refresh_ms` and, on each reload, every campaign is synced into Redis (config,
//! status, rounds). Admin writes update PostgreSQL, then Redis, then the cache, under the
//! same lock as the reload, so a reload that read PostgreSQL before a write can never push
//! the old state into Redis after it.
//!
//! A sync never recreates a campaign's counters (see "Creation" in `voucher_store::hot`):
//! only the one caller that takes the record's marker (`campaigns.hot_created_at`) creates
//! them, for a new campaign. When Redis has lost a created campaign's hot state (it restarted
//! empty), recreating it would sell the whole stock again to people who already hold a
//! voucher; instead the campaign goes into [`LostHotState`]: its claims answer 503
//! `HOT_STATE_LOST`, each reload logs it at ERROR (this pages an operator) and sets
//! `issuance_hot_state_lost{campaign}`, and `/readyz` reports the replica not ready, until
//! `reconciliation rebuild` has written the hot state back from PostgreSQL. The next claim
//! or reload then finds it, and claims resume without a restart.

use crate::metrics::Metrics;
use crate::settings::Settings;
use futures::future::BoxFuture;
use sqlx::PgPool;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::keys::{SigningKey, Verifier};
use voucher_core::{Campaign, CampaignId, Clock, PersonId};
use voucher_platform::limit::Limiter;
use voucher_platform::ops::Probe;
use voucher_store::pg::campaigns;
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
    /// Campaigns whose hot state Redis lost, waiting for a rebuild.
    pub hot_lost: LostHotState,
}

/// The campaigns whose hot state Redis lost (their counters are missing although the record
/// says they were created): their claims answer `HOT_STATE_LOST` until a rebuild. Also the
/// `hot_state` check of `/readyz`: not ready while any campaign is lost, so that the load
/// balancer takes the replica out and the operator sees why (`dependencies.hot_state.error`
/// names the campaigns and the remedy).
#[derive(Clone, Default)]
pub struct LostHotState {
    ids: Arc<RwLock<BTreeSet<CampaignId>>>,
}

impl LostHotState {
    /// Whether Redis lost this campaign's hot state (as last seen).
    pub fn contains(&self, id: CampaignId) -> bool {
        self.read().contains(&id)
    }

    /// Every lost campaign, by id.
    pub fn all(&self) -> Vec<CampaignId> {
        self.read().iter().copied().collect()
    }

    /// Records `id` as lost (`true`) or present (`false`); answers whether that changed.
    fn set(&self, id: CampaignId, lost: bool) -> bool {
        let mut ids = self
            .ids
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lost {
            ids.insert(id)
        } else {
            ids.remove(&id)
        }
    }

    // A panic while holding the lock cannot leave the set half-written (one insert or one
    // remove), so a poisoned lock is safe to keep using.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeSet<CampaignId>> {
        self.ids
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Probe for LostHotState {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        let lost = self.all();
        Box::pin(async move {
            if lost.is_empty() {
                return Ok(());
            }
            let ids: Vec<String> = lost.iter().map(ToString::to_string).collect();
            Err(format!(
                "redis lost the hot state of campaign(s) {}: their claims answer HOT_STATE_LOST \
                 until `reconciliation rebuild`",
                ids.join(", ")
            ))
        })
    }
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
    /// Reloads every campaign from PostgreSQL, syncs each into Redis (never recreating a
    /// lost one) and replaces the cache; then updates the stock gauges and the outbox lag.
    /// Returns how many campaigns.
    ///
    /// A campaign whose hot state Redis lost is logged at ERROR (once per campaign per
    /// reload) and marked lost; the other campaigns are synced as usual.
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
            let campaigns = campaigns::list(&self.pg, None).await?;
            let created = campaigns::hot_created(&self.pg).await?;
            for campaign in &campaigns {
                let synced = {
                    let _timer = self.metrics.redis_timer("sync_campaign");
                    self.sync_hot_with(campaign, created.contains(&campaign.id))
                        .await
                };
                match synced {
                    Ok(()) => {}
                    Err(StoreError::HotStateLost { campaign: id }) => {
                        tracing::error!(
                            campaign_id = id.0,
                            "redis lost the hot state of campaign {id}; it is not recreated \
                             (that would sell its stock again): its claims answer 503 \
                             HOT_STATE_LOST and /readyz is not ready until `reconciliation \
                             rebuild` restores it from PostgreSQL"
                        );
                    }
                    Err(e) => return Err(e),
                }
            }
            self.campaigns.replace_all(campaigns.clone());
            campaigns
        };
        for campaign in &campaigns {
            let label = campaign.id.to_string();
            self.metrics
                .hot_state_lost
                .with_label_values(&[&label])
                .set(i64::from(self.hot_lost.contains(campaign.id)));
            let _timer = self.metrics.redis_timer("counters");
            if let Some(counters) = self.hot.counters(campaign.id).await? {
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

    /// Makes Redis know a campaign the cache has but Redis does not (a new campaign whose
    /// sync failed, or Redis lost its data). Creates its hot state only if it was never
    /// created; otherwise this is [`StoreError::HotStateLost`] until a rebuild.
    ///
    /// # Errors
    /// [`StoreError::HotStateLost`]; Redis or PostgreSQL failed.
    pub async fn resync(&self, campaign: &Campaign) -> Result<(), StoreError> {
        let _guard = self.campaigns.lock_writes().await;
        // After a flush every in-flight claim lands here: the first one re-syncs, the
        // others find the campaign known and go straight back to the script.
        if self.hot.counters(campaign.id).await?.is_some() {
            self.seen_hot_state(campaign.id, false);
            return Ok(());
        }
        let fresh = campaigns::get(&self.pg, campaign.id).await?;
        let campaign = fresh.as_ref().unwrap_or(campaign);
        self.sync_hot(campaign).await?;
        self.campaigns.upsert(campaign.clone());
        Ok(())
    }

    /// Syncs a campaign the record holds into Redis: creates its hot state if it was never
    /// created (taking the record's marker), else only updates it. Call it under
    /// [`CampaignCache::lock_writes`].
    ///
    /// # Errors
    /// [`StoreError::HotStateLost`] when Redis lost the campaign's hot state (it is marked
    /// lost); Redis or PostgreSQL failed.
    pub async fn sync_hot(&self, campaign: &Campaign) -> Result<(), StoreError> {
        let created = campaigns::is_hot_created(&self.pg, campaign.id).await?;
        self.sync_hot_with(campaign, created).await
    }

    /// [`AppState::sync_hot`] with the record's marker already read (`created`). The marker
    /// read may be stale: creation is decided by taking it, atomically, never by the read.
    async fn sync_hot_with(&self, campaign: &Campaign, created: bool) -> Result<(), StoreError> {
        let synced = if !created && self.take_hot_creation(campaign.id).await? {
            tracing::info!(
                campaign_id = campaign.id.0,
                "creating the campaign's hot state in redis"
            );
            self.hot.sync_campaign(campaign).await
        } else {
            self.hot.sync_created_campaign(campaign).await
        };
        match &synced {
            Ok(()) => self.seen_hot_state(campaign.id, false),
            Err(StoreError::HotStateLost { .. }) => self.seen_hot_state(campaign.id, true),
            Err(_) => {}
        }
        synced
    }

    /// Takes the right to create a campaign's hot state (see
    /// [`campaigns::take_hot_creation`]). Redis must answer first: a marker taken while
    /// Redis is down would leave a new campaign "lost" until a rebuild.
    async fn take_hot_creation(&self, id: CampaignId) -> Result<bool, StoreError> {
        self.hot.ping().await?;
        campaigns::take_hot_creation(&self.pg, id).await
    }

    /// Records whether Redis has the campaign's hot state, and says so when that changed.
    fn seen_hot_state(&self, id: CampaignId, lost: bool) {
        if !self.hot_lost.set(id, lost) {
            return;
        }
        self.metrics
            .hot_state_lost
            .with_label_values(&[&id.to_string()])
            .set(i64::from(lost));
        if !lost {
            tracing::info!(
                campaign_id = id.0,
                "redis holds the campaign's hot state again (rebuilt): claims resume"
            );
        }
    }
}

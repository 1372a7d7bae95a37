//! Hot state in Redis: the fast gatekeeper of the rush. PostgreSQL is the record; this
//! is what decides a claim in one atomic step. Every key of a campaign carries the hash tag
//! `{c<id>}` so that a campaign's keys live in one cluster slot and its scripts stay
//! single-slot.
//!
//! Keys (with the configured prefix, default `vp`):
//! - `vp:campaigns` — set of campaign ids known to Redis (the persister's list of outboxes).
//! - `vp:{c<id>}:c` — hash: config (`status`, `limit`, `mode`), the bucket count `nb`, and
//!   counters (`total`, `pool`, `live`, `claimed`, `recycled`, `recyc_pend`,
//!   `released_round`).
//! - `vp:{c<id>}:r` — sorted set of rounds: member = round number, score = start (Unix ms);
//!   `vp:{c<id>}:rq` hash round number → quantity.
//! - `vp:{c<id>}:p:<b>` for `b` in `0..nb` — hashes person id → vouchers claimed; a person's
//!   count lives in bucket `FNV-1a-64(person id bytes) mod nb`.
//! - `vp:{c<id>}:v:<b>` for `b` in `0..nb` — hashes claim id (16 raw bytes) → claim record:
//!   voucher id (16 raw bytes), claimed-at (Unix ms, 8 bytes big-endian), state (`L` live,
//!   `R` recycled), person id (the rest, whole, so a claim id reused by another person is
//!   told apart exactly). A claim's record lives in bucket `FNV-1a-64(claim id bytes) mod
//!   nb`. The record makes a retried claim return the first result. No other key exists per
//!   voucher.
//! - `vp:{c<id>}:ob` — the outbox stream (field `e` = an encoded `EventEnvelope`); the
//!   persister's consumer group is `persister`. Entries are deleted once persisted, so its
//!   length is the persister's lag.
//! - `vp:{barrier}` — a counter the replication barrier ([`ReplicaBarrier`]) increments
//!   before each `WAIT`, so that its connection's replication offset covers every earlier
//!   write of the master.
//!
//! Buckets keep the per-voucher hashes small enough for Redis' compact listpack encoding
//! (`hash-max-listpack-entries` 128, `hash-max-listpack-value` 64, the defaults) instead of a
//! hashtable. `nb` = ⌈stock / 48⌉ is written once when Redis first learns the campaign
//! (`HSETNX`) and never changes with it; this store caches it per campaign, and the scripts
//! refuse keys computed with another `nb` (the store then re-reads it and retries). The
//! bucket keys are computed here and passed as declared `KEYS`. The byte layout is in
//! `layout.rs`; a Redis written with an older layout must be rebuilt from PostgreSQL
//! (`reconciliation rebuild`).
//!
//! Creation: [`HotStore::sync_campaign`] creates a campaign's counters (`total` = `pool` =
//! stock, `claimed` 0, no person counts) when they are missing. That is right once, for a
//! new campaign; after Redis restarted EMPTY it would sell the whole stock again (I1) to
//! people who already hold a voucher (I2). So the record keeps a marker per campaign
//! (`campaigns.hot_created_at`), taken atomically by the one caller that creates
//! ([`crate::pg::campaigns::take_hot_creation`]); every other sync is
//! [`HotStore::sync_created_campaign`], which never creates: a missing hash is
//! [`StoreError::HotStateLost`] and nothing is written. Only `reconciliation rebuild`
//! writes a lost campaign back, from PostgreSQL ([`HotStore::restore_campaign`]). The
//! check is per campaign, inside the campaign's own slot, so it holds on a Redis Cluster
//! that loses one shard too.
//!
//! Counters obey `total = pool + live + claimed − recycled` (see `voucher_core::campaign`).
//! Rounds are released lazily: the first claim after a round's start moves its quantity (plus
//! recycled stock) from `pool` to `live`.
//!
//! The scripts (`claim.lua`, `recycle.lua`, `sync.lua`, `set_status.lua`) sit beside this file
//! and run with `EVALSHA`, reloaded on `NOSCRIPT`. Every operation here is idempotent (claims
//! by claim id, recycling by claim state), so a call whose connection failed is retried a few
//! times while the connection manager reconnects.
//!
//! Memory: about 86 bytes per live voucher, claim record and person count together
//! (18-character person ids, 200,000 vouchers, Redis 7.0, measured after the outbox is
//! persisted: `cargo run --release -p voucher-store --example hot_memory -- <redis url>
//! 200000`, or `bench baseline-redis --stock 200000 --residents 200000 --devices 1`); it was
//! 253 with one hashtable-encoded hash each for `:v` and `:p`. A person id longer than 39
//! bytes makes its claim record exceed 64 bytes and turns that one bucket into a hashtable:
//! correct, only larger.

mod audit;
mod barrier;
mod layout;

pub use audit::{HotRestore, HotSnapshot};
pub use barrier::ReplicaBarrier;

use crate::redis_conn::{self, RedisOptions};
use crate::{events, StoreError};
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisError, RetryMethod, Script};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use voucher_core::{
    Campaign, CampaignId, CampaignStatus, ClaimId, Distribution, PersonId, VoucherId,
};
use voucher_proto::events::ClaimSource;

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

/// The Lua scripts, loaded once per process. `redis::Script` runs `EVALSHA` and, when
/// Redis answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`), loads the script and
/// retries: this is how the scripts survive a Redis restart.
struct Scripts {
    claim: Script,
    recycle: Script,
    sync: Script,
    set_status: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            claim: Script::new(include_str!("claim.lua")),
            recycle: Script::new(include_str!("recycle.lua")),
            sync: Script::new(include_str!("sync.lua")),
            set_status: Script::new(include_str!("set_status.lua")),
        }
    }
}

/// The keys of one campaign (all in the slot of the hash tag `{c<id>}`).
#[derive(Debug, Clone)]
pub(crate) struct CampaignKeys {
    pub(crate) campaign: String,
    pub(crate) rounds: String,
    pub(crate) round_quantities: String,
    /// `…:p`, the prefix of the person-count buckets `…:p:<b>`.
    pub(crate) persons: String,
    /// `…:v`, the prefix of the claim-record buckets `…:v:<b>`.
    pub(crate) claims: String,
    pub(crate) outbox: String,
}

impl CampaignKeys {
    /// Bucket `b` of the person counts.
    pub(crate) fn persons_bucket(&self, b: u32) -> String {
        format!("{}:{b}", self.persons)
    }

    /// Bucket `b` of the claim records.
    pub(crate) fn claims_bucket(&self, b: u32) -> String {
        format!("{}:{b}", self.claims)
    }
}

/// What the claim script answered, before it is turned into a [`ClaimOutcome`].
enum ClaimReply {
    Outcome(ClaimOutcome),
    /// The campaign's bucket count is not the one the keys were computed with.
    Buckets(Option<u32>),
}

/// The consumer group of the persister on every outbox stream.
pub(crate) const PERSISTER_GROUP: &str = "persister";

/// Idempotent operations are retried this many times when the connection failed (the
/// connection manager reconnects in the background, e.g. after a Redis restart).
const RETRIES: u32 = 5;

/// The Redis side of the store. Cheap to clone (a multiplexed, reconnecting connection).
#[derive(Clone)]
pub struct HotStore {
    conn: ConnectionManager,
    client: redis::Client,
    options: RedisOptions,
    prefix: String,
    scripts: Arc<Scripts>,
    /// Campaign id → its bucket count `nb` (never changes for a campaign; the scripts check
    /// it anyway).
    buckets: Arc<RwLock<HashMap<i64, u32>>>,
}

/// Whether an error is about the connection (worth a retry once the manager reconnected)
/// rather than an answer of Redis.
fn transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.retry_method(),
            RetryMethod::Reconnect | RetryMethod::WaitAndRetry
        )
}

fn millis(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("claim time {ms} out of range")))
}

impl HotStore {
    /// Connects (`redis://host:port` or `redis+unix:///path`) with the default timeouts.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn connect(url: &str, prefix: &str) -> Result<HotStore, StoreError> {
        HotStore::connect_with(url, prefix, RedisOptions::default()).await
    }

    /// Connects with `options` (see [`crate::redis_conn`]).
    ///
    /// # Errors
    /// The connection failed.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        options: RedisOptions,
    ) -> Result<HotStore, StoreError> {
        let client = redis_conn::client(url)?;
        let conn = redis_conn::connect(&client, options).await?;
        Ok(HotStore {
            conn,
            client,
            options,
            prefix: prefix.to_owned(),
            scripts: Arc::new(Scripts::new()),
            buckets: Arc::new(RwLock::new(HashMap::new())),
        })
    }

    /// The key prefix (default `vp`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of a campaign's outbox stream, `<prefix>:{c<id>}:ob` (for operations tools
    /// and tests).
    pub fn outbox_key(&self, campaign_id: CampaignId) -> String {
        format!("{}:{{c{}}}:ob", self.prefix, campaign_id.0)
    }

    pub(crate) fn campaigns_key(&self) -> String {
        format!("{}:campaigns", self.prefix)
    }

    pub(crate) fn keys(&self, campaign_id: CampaignId) -> CampaignKeys {
        let base = format!("{}:{{c{}}}", self.prefix, campaign_id.0);
        CampaignKeys {
            campaign: format!("{base}:c"),
            rounds: format!("{base}:r"),
            round_quantities: format!("{base}:rq"),
            persons: format!("{base}:p"),
            claims: format!("{base}:v"),
            outbox: format!("{base}:ob"),
        }
    }

    /// A connection of its own (for the persister's blocking reads, which would otherwise
    /// hold up every command multiplexed on the shared connection); its commands may block
    /// on the server for `block`.
    pub(crate) async fn dedicated_connection(
        &self,
        block: Duration,
    ) -> Result<ConnectionManager, StoreError> {
        redis_conn::connect(&self.client, self.options.blocking_for(block)).await
    }

    /// Starts the replication barrier ([`ReplicaBarrier`]) on a connection of its own:
    /// waits succeed once `replicas` replicas have every earlier write of the master, and
    /// fail after `timeout`. `replicas` = 0 answers at once (no barrier).
    ///
    /// # Errors
    /// The connection failed.
    pub async fn replica_barrier(
        &self,
        replicas: u32,
        timeout: Duration,
    ) -> Result<ReplicaBarrier, StoreError> {
        let key = format!("{}:{{barrier}}", self.prefix);
        ReplicaBarrier::start(&self.client, self.options, key, replicas, timeout).await
    }

    /// Runs an idempotent operation, retrying connection failures with a short backoff.
    async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T, RedisError>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let mut attempt = 0;
        loop {
            match op(self.conn.clone()).await {
                Err(e) if attempt < RETRIES && transient(&e) => {
                    tracing::debug!(attempt, "redis connection failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn cached_buckets(&self, campaign_id: CampaignId) -> Option<u32> {
        self.buckets
            .read()
            .ok()
            .and_then(|m| m.get(&campaign_id.0).copied())
    }

    fn remember_buckets(&self, campaign_id: CampaignId, nb: Option<u32>) {
        if let Ok(mut m) = self.buckets.write() {
            match nb {
                Some(nb) => m.insert(campaign_id.0, nb),
                None => m.remove(&campaign_id.0),
            };
        }
    }

    /// The campaign's bucket count as Redis holds it (`None` when Redis does not know the
    /// campaign), bypassing the cache.
    async fn read_buckets(&self, campaign_id: CampaignId) -> Result<Option<u32>, StoreError> {
        let key = self.keys(campaign_id).campaign;
        let key = &key;
        let nb: Option<u32> = self
            .retrying(|mut c| async move { c.hget(key, "nb").await })
            .await?;
        let nb = nb.filter(|&n| n > 0);
        self.remember_buckets(campaign_id, nb);
        Ok(nb)
    }

    /// The campaign's bucket count: cached, or read once from `:c`.
    pub(crate) async fn bucket_count(
        &self,
        campaign_id: CampaignId,
    ) -> Result<Option<u32>, StoreError> {
        match self.cached_buckets(campaign_id) {
            Some(nb) => Ok(Some(nb)),
            None => self.read_buckets(campaign_id).await,
        }
    }

    /// The campaigns Redis knows (the set `<prefix>:campaigns`), by id.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn campaign_ids(&self) -> Result<Vec<CampaignId>, StoreError> {
        let key = self.campaigns_key();
        let mut ids: Vec<i64> = self
            .retrying(|mut c| {
                let key = key.clone();
                async move { c.smembers(key).await }
            })
            .await?;
        ids.sort_unstable();
        Ok(ids.into_iter().map(CampaignId).collect())
    }

    /// Makes Redis know `campaign`, CREATING its counters at full stock if they are missing;
    /// config fields are overwritten, existing counters kept, rounds upserted. Idempotent.
    ///
    /// Only for a campaign whose hot state was never created: the caller that took the
    /// record's marker ([`crate::pg::campaigns::take_hot_creation`]), or a test or tool on a
    /// Redis of its own. Everything else syncs with [`HotStore::sync_created_campaign`] (see
    /// "Creation" in the module doc).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn sync_campaign(&self, campaign: &Campaign) -> Result<(), StoreError> {
        self.sync_campaign_buckets(campaign, true).await.map(|_| ())
    }

    /// Updates a campaign whose hot state was created before: config fields are overwritten,
    /// rounds upserted, counters never created. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::HotStateLost`] when Redis has no counters for the campaign (it lost its
    /// data): nothing was written, and only `reconciliation rebuild` brings it back; Redis
    /// failed.
    pub async fn sync_created_campaign(&self, campaign: &Campaign) -> Result<(), StoreError> {
        self.sync_campaign_buckets(campaign, false)
            .await
            .map(|_| ())
    }

    /// The sync, answering the campaign's bucket count; `create` allows creating missing
    /// counters.
    pub(crate) async fn sync_campaign_buckets(
        &self,
        campaign: &Campaign,
        create: bool,
    ) -> Result<u32, StoreError> {
        let keys = self.keys(campaign.id);
        let mut invocation = self.scripts.sync.prepare_invoke();
        invocation
            .key(&keys.campaign)
            .key(&keys.rounds)
            .key(&keys.round_quantities)
            .arg(status_name(campaign.status))
            .arg(campaign.spec.per_person_limit)
            .arg(mode_name(distribution_mode(campaign.spec.distribution)))
            .arg(campaign.spec.stock)
            .arg(layout::bucket_count(campaign.spec.stock))
            .arg(if create { "1" } else { "0" });
        for round in &campaign.spec.rounds {
            invocation
                .arg(round.round_no)
                .arg(round.starts_at.timestamp_millis())
                .arg(round.quantity);
        }
        let invocation = &invocation;
        let (created, nb): (i64, u32) = self
            .retrying(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        if created < 0 {
            return Err(StoreError::HotStateLost {
                campaign: campaign.id,
            });
        }
        if nb == 0 {
            return Err(StoreError::Corrupt(format!(
                "bucket count 0 of campaign {}",
                campaign.id
            )));
        }
        self.remember_buckets(campaign.id, Some(nb));
        self.register_campaign(campaign.id, &keys.outbox).await?;
        Ok(nb)
    }

    /// Adds a campaign to the set of campaigns and makes sure its outbox has the persister's
    /// group. Outside the campaign's scripts: the set lives in another cluster slot.
    pub(crate) async fn register_campaign(
        &self,
        id: CampaignId,
        outbox: &str,
    ) -> Result<(), StoreError> {
        let set = self.campaigns_key();
        let _: i64 = self
            .retrying(|mut c| {
                let set = set.clone();
                async move { c.sadd(set, id.0).await }
            })
            .await?;
        self.ensure_group(outbox).await
    }

    /// Creates the persister's consumer group on an outbox (and the stream), if missing.
    /// The group starts at `0`, so entries written before it existed are delivered too.
    pub(crate) async fn ensure_group(&self, outbox: &str) -> Result<(), StoreError> {
        let created: Result<(), RedisError> = self
            .retrying(|mut c| async move {
                c.xgroup_create_mkstream(outbox, PERSISTER_GROUP, "0").await
            })
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// Runs the claim script: round open? stock left? person below limit? claim id new?
    /// → decrement stock, count the person, record the claim, XADD `VoucherClaimed`.
    ///
    /// A reply lost on the wire is retried with the same claim id; the script then answers
    /// with the recorded claim, which is reported as [`ClaimOutcome::Claimed`] because it
    /// carries this request's voucher id.
    ///
    /// # Errors
    /// Redis failed (the claim may or may not have happened: retry with the same claim id).
    pub async fn claim(&self, req: &ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        let keys = self.keys(req.campaign_id);
        let now_ms = req.now.timestamp_millis();
        let claimed_at = millis(now_ms)?;
        let source = match req.mode {
            ClaimMode::Rush => ClaimSource::Rush,
            ClaimMode::List => ClaimSource::List,
        };
        let event = events::voucher_claimed(
            req.campaign_id,
            req.voucher_id,
            req.claim_id,
            &req.person_id,
            req.round_no,
            claimed_at,
            req.valid_from,
            req.valid_until,
            source,
        );
        let record = layout::encode_record(
            req.voucher_id.0,
            now_ms,
            layout::LIVE,
            req.person_id.as_str(),
        );
        let Some(mut nb) = self.bucket_count(req.campaign_id).await? else {
            return Ok(ClaimOutcome::UnknownCampaign);
        };
        // At most one retry: the script names the campaign's bucket count when it differs.
        for _ in 0..2 {
            match self
                .claim_in(req, &keys, nb, now_ms, &record, &event)
                .await?
            {
                ClaimReply::Outcome(outcome) => return Ok(outcome),
                ClaimReply::Buckets(actual) => {
                    self.remember_buckets(req.campaign_id, actual);
                    match actual {
                        Some(actual) => nb = actual,
                        // Redis knows the campaign but not its bucket count: a re-sync
                        // writes it.
                        None => return Ok(ClaimOutcome::UnknownCampaign),
                    }
                }
            }
        }
        Err(StoreError::Corrupt(format!(
            "bucket count of campaign {} keeps changing",
            req.campaign_id
        )))
    }

    /// One run of the claim script with the bucket keys of `nb` buckets.
    async fn claim_in(
        &self,
        req: &ClaimRequest,
        keys: &CampaignKeys,
        nb: u32,
        now_ms: i64,
        record: &[u8],
        event: &[u8],
    ) -> Result<ClaimReply, StoreError> {
        let claimed_at = millis(now_ms)?;
        let person = req.person_id.as_str();
        let mut invocation = self.scripts.claim.prepare_invoke();
        invocation
            .key(&keys.campaign)
            .key(&keys.rounds)
            .key(&keys.round_quantities)
            .key(keys.persons_bucket(layout::person_bucket(person, nb)))
            .key(keys.claims_bucket(layout::claim_bucket(req.claim_id.0, nb)))
            .key(&keys.outbox)
            .arg(now_ms)
            .arg(mode_name(req.mode))
            .arg(person)
            .arg(&req.claim_id.0.as_bytes()[..])
            .arg(record)
            .arg(event)
            .arg(nb);
        let invocation = &invocation;
        let reply: Vec<Vec<u8>> = self
            .retrying(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        let outcome = match reply.first().map(Vec::as_slice) {
            Some(b"claimed") => ClaimOutcome::Claimed(ClaimedVoucher {
                voucher_id: req.voucher_id,
                claimed_at,
            }),
            Some(b"replayed") => {
                let Some((voucher, at)) = reply.get(1).and_then(|h| layout::decode_head(h)) else {
                    return Err(StoreError::Corrupt(format!("claim record reply {reply:?}")));
                };
                let first = ClaimedVoucher {
                    voucher_id: VoucherId(voucher),
                    claimed_at: millis(at)?,
                };
                if first.voucher_id == req.voucher_id {
                    ClaimOutcome::Claimed(first)
                } else {
                    ClaimOutcome::Replayed(first)
                }
            }
            Some(b"buckets") => {
                let actual = reply
                    .get(1)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|&n| n > 0);
                return Ok(ClaimReply::Buckets(actual));
            }
            Some(b"claim_id_conflict") => ClaimOutcome::ClaimIdConflict,
            Some(b"not_open") => ClaimOutcome::NotOpen,
            Some(b"sold_out") => ClaimOutcome::SoldOut,
            Some(b"limit_reached") => ClaimOutcome::LimitReached,
            Some(b"paused") => ClaimOutcome::Paused,
            Some(b"unknown") => ClaimOutcome::UnknownCampaign,
            _ => return Err(StoreError::Corrupt(format!("claim script reply {reply:?}"))),
        };
        Ok(ClaimReply::Outcome(outcome))
    }

    /// Pauses or resumes claims. A campaign Redis does not know is left alone: the next
    /// [`HotStore::sync_campaign`] writes the status from the record.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn set_status(
        &self,
        campaign_id: CampaignId,
        status: CampaignStatus,
    ) -> Result<(), StoreError> {
        let keys = self.keys(campaign_id);
        let mut invocation = self.scripts.set_status.prepare_invoke();
        invocation.key(&keys.campaign).arg(status_name(status));
        let invocation = &invocation;
        let _set: i64 = self
            .retrying(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        Ok(())
    }

    /// The campaign's counters, or `None` if Redis does not know it.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn counters(
        &self,
        campaign_id: CampaignId,
    ) -> Result<Option<CampaignCounters>, StoreError> {
        let keys = self.keys(campaign_id);
        let keys = &keys;
        let (fields, outbox_len): (Vec<Option<i64>>, u64) = self
            .retrying(|mut c| async move {
                redis::pipe()
                    .cmd("HMGET")
                    .arg(&keys.campaign)
                    .arg(&[
                        "total",
                        "pool",
                        "live",
                        "claimed",
                        "recycled",
                        "released_round",
                    ])
                    .xlen(&keys.outbox)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let [total, pool, live, claimed, recycled, released_round] = fields[..] else {
            return Err(StoreError::Corrupt(format!(
                "counters of campaign {campaign_id}"
            )));
        };
        let Some(total) = total else { return Ok(None) };
        Ok(Some(CampaignCounters {
            total,
            pool: pool.unwrap_or(0),
            live: live.unwrap_or(0),
            claimed: claimed.unwrap_or(0),
            recycled: recycled.unwrap_or(0),
            released_round: u32::try_from(released_round.unwrap_or(0)).unwrap_or(0),
            outbox_len,
        }))
    }

    /// How many vouchers `person` has claimed in the campaign.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn person_claims(
        &self,
        campaign_id: CampaignId,
        person: &PersonId,
    ) -> Result<u32, StoreError> {
        let keys = self.keys(campaign_id);
        let keys = &keys;
        let Some(mut nb) = self.bucket_count(campaign_id).await? else {
            return Ok(0);
        };
        // The bucket count is read along, and the read repeated if it was not the cached one.
        for _ in 0..2 {
            let bucket = keys.persons_bucket(layout::person_bucket(person.as_str(), nb));
            let bucket = &bucket;
            let (actual, n): (Option<u32>, Option<u32>) = self
                .retrying(|mut c| async move {
                    redis::pipe()
                        .hget(&keys.campaign, "nb")
                        .hget(bucket, person.as_str())
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let actual = actual.filter(|&n| n > 0);
            if actual == Some(nb) {
                return Ok(n.unwrap_or(0));
            }
            self.remember_buckets(campaign_id, actual);
            match actual {
                Some(actual) => nb = actual,
                None => return Ok(0),
            }
        }
        Err(StoreError::Corrupt(format!(
            "bucket count of campaign {campaign_id} keeps changing"
        )))
    }

    /// Returns an expired voucher's stock to the campaign's pool (released by the next round)
    /// and XADDs `StockRecycled`. Idempotent: `false` if it was already recycled.
    ///
    /// # Errors
    /// Redis failed; [`StoreError::NotFound`] when Redis has no such claim (or no such
    /// campaign); [`StoreError::Corrupt`] when the claim made another voucher.
    pub async fn recycle(
        &self,
        campaign_id: CampaignId,
        claim_id: ClaimId,
        voucher_id: VoucherId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let keys = self.keys(campaign_id);
        let event = events::stock_recycled(campaign_id, voucher_id, now);
        let Some(mut nb) = self.bucket_count(campaign_id).await? else {
            return Err(StoreError::NotFound);
        };
        let mut reply = -4;
        // At most one retry, with the bucket count re-read, when the cached one was stale.
        for attempt in 0..2 {
            if attempt > 0 {
                let Some(actual) = self.read_buckets(campaign_id).await? else {
                    return Err(StoreError::NotFound);
                };
                nb = actual;
            }
            let mut invocation = self.scripts.recycle.prepare_invoke();
            invocation
                .key(&keys.campaign)
                .key(keys.claims_bucket(layout::claim_bucket(claim_id.0, nb)))
                .key(&keys.outbox)
                .arg(&claim_id.0.as_bytes()[..])
                .arg(&voucher_id.0.as_bytes()[..])
                .arg(&event)
                .arg(nb);
            let invocation = &invocation;
            reply = self
                .retrying(|mut c| async move { invocation.invoke_async(&mut c).await })
                .await?;
            if reply != -4 {
                break;
            }
        }
        match reply {
            1 => Ok(true),
            0 => Ok(false),
            -2 => Err(StoreError::Corrupt(format!(
                "claim {claim_id} made another voucher than {voucher_id}"
            ))),
            -4 => Err(StoreError::Corrupt(format!(
                "bucket count of campaign {campaign_id} keeps changing"
            ))),
            _ => Err(StoreError::NotFound),
        }
    }

    /// Total entries waiting in all outbox streams (unpersisted or unacknowledged).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn outbox_len(&self) -> Result<u64, StoreError> {
        let streams: Vec<String> = self
            .campaign_ids()
            .await?
            .into_iter()
            .map(|id| self.outbox_key(id))
            .collect();
        if streams.is_empty() {
            return Ok(0);
        }
        let streams = &streams;
        let lens: Vec<u64> = self
            .retrying(|mut c| async move {
                let mut pipe = redis::pipe();
                for s in streams {
                    pipe.xlen(s);
                }
                pipe.query_async(&mut c).await
            })
            .await?;
        Ok(lens.iter().sum())
    }

    /// `PING`, for readiness.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

fn status_name(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Active => "active",
        CampaignStatus::Paused => "paused",
    }
}

fn mode_name(mode: ClaimMode) -> &'static str {
    match mode {
        ClaimMode::Rush => "rush",
        ClaimMode::List => "list",
    }
}

fn distribution_mode(distribution: Distribution) -> ClaimMode {
    match distribution {
        Distribution::Claim => ClaimMode::Rush,
        Distribution::List => ClaimMode::List,
    }
}

//! Reading and restoring a campaign's whole hot state, for the reconciliation job: the
//! cross-check compares it with PostgreSQL, and the rebuild writes it back from PostgreSQL
//! after Redis was lost (invariant I7). The claim path never uses this module.
//!
//! A restore overwrites counters, person counts and claim records of a campaign in chunks,
//! not atomically: run it while the services that claim are stopped (the rebuild's
//! documented procedure).

use super::{layout, CampaignKeys, HotStore, PERSISTER_GROUP};
use crate::StoreError;
use redis::AsyncCommands;
use std::collections::BTreeMap;
use uuid::Uuid;
use voucher_core::Campaign;
use voucher_core::CampaignId;

/// The pipelined reply of a snapshot's first read: `:c`, `XLEN :ob`.
type SnapshotReply = (BTreeMap<String, String>, u64);

/// One bucket's raw entries (`HGETALL`).
type RawBucket = Vec<(Vec<u8>, Vec<u8>)>;

/// How many hash fields one `HSET` of a restore writes, and how many bucket keys one
/// pipeline (or one `DEL`) of a snapshot or restore names.
const CHUNK: usize = 1_000;

/// Everything Redis holds for one campaign, as read by [`HotStore::campaign_snapshot`].
///
/// Person counts and claim records are gathered from all buckets (`:p:<b>`, `:v:<b>`). An
/// entry found in another bucket than the layout puts it in (where the claim path would not
/// find it) is listed under a key with the suffix ` (in bucket <b>)`; a claim record that
/// does not decode is listed as `? <hex bytes>`: either way the cross-check reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotSnapshot {
    /// The fields of `:c` (config, bucket count `nb` and counters) as stored.
    pub fields: BTreeMap<String, String>,
    /// Person id → vouchers claimed (`:p:<b>`).
    pub persons: BTreeMap<String, i64>,
    /// Claim id (32 hex) → claim record rendered as `voucher_hex|claimed_at_ms|person|L`
    /// (or `R`) (`:v:<b>`, stored in binary).
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
    /// Claim id (32 hex) → `voucher_hex|claimed_at_ms|person|L` or `…|R` (recycled), the
    /// text form of [`HotSnapshot::claims`]; stored in binary, in its bucket.
    pub claims: Vec<(String, String)>,
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds one claim-record bucket's entries to `claims`, rendered.
fn add_claims(claims: &mut BTreeMap<String, String>, bucket: u32, nb: u32, raw: RawBucket) {
    for (field, record) in raw {
        let Ok(claim) = Uuid::from_slice(&field) else {
            claims.insert(format!("? {}", hex_bytes(&field)), hex_bytes(&record));
            continue;
        };
        let mut key = claim.simple().to_string();
        if layout::claim_bucket(claim, nb) != bucket {
            key = format!("{key} (in bucket {bucket})");
        }
        let value = match layout::decode_record(&record) {
            Some(r) => r.render(),
            None => format!("? {}", hex_bytes(&record)),
        };
        claims.insert(key, value);
    }
}

/// Adds one person-count bucket's entries to `persons`.
fn add_persons(persons: &mut BTreeMap<String, i64>, bucket: u32, nb: u32, raw: RawBucket) {
    for (field, count) in raw {
        let person = String::from_utf8_lossy(&field).into_owned();
        let count = std::str::from_utf8(&count)
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(i64::MIN);
        let key = if layout::person_bucket(&person, nb) == bucket {
            person
        } else {
            format!("{person} (in bucket {bucket})")
        };
        persons.insert(key, count);
    }
}

impl HotStore {
    /// Reads a campaign's whole hot state (`None` when Redis does not know the campaign).
    /// Person counts and claim records are read with `HGETALL` of every bucket, pipelined:
    /// fine for the cross-check of a campaign of a few million claims, which is run off-peak.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn campaign_snapshot(
        &self,
        campaign_id: CampaignId,
    ) -> Result<Option<HotSnapshot>, StoreError> {
        let keys = self.keys(campaign_id);
        let keys = &keys;
        let (fields, outbox_len): SnapshotReply = self
            .retrying(|mut c| async move {
                redis::pipe()
                    .hgetall(&keys.campaign)
                    .xlen(&keys.outbox)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        // Without a bucket count no bucket is read: every claim then shows as missing.
        let nb: u32 = fields.get("nb").and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut persons = BTreeMap::new();
        let mut claims = BTreeMap::new();
        let buckets: Vec<u32> = (0..nb).collect();
        for chunk in buckets.chunks(CHUNK / 2) {
            let replies: Vec<RawBucket> = self
                .retrying(|mut c| async move {
                    let mut pipe = redis::pipe();
                    for &b in chunk {
                        pipe.hgetall(keys.persons_bucket(b));
                        pipe.hgetall(keys.claims_bucket(b));
                    }
                    pipe.query_async(&mut c).await
                })
                .await?;
            let mut replies = replies.into_iter();
            for &b in chunk {
                add_persons(&mut persons, b, nb, replies.next().unwrap_or_default());
                add_claims(&mut claims, b, nb, replies.next().unwrap_or_default());
            }
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

    /// Deletes every person-count and claim-record key of a campaign of `nb` buckets (and
    /// the single `:p` and `:v` hashes of the layout before buckets).
    async fn delete_buckets(&self, keys: &CampaignKeys, nb: u32) -> Result<(), StoreError> {
        let mut names = vec![keys.persons.clone(), keys.claims.clone()];
        for b in 0..nb {
            names.push(keys.persons_bucket(b));
            names.push(keys.claims_bucket(b));
        }
        for chunk in names.chunks(CHUNK) {
            let _: i64 = self
                .retrying(|mut c| async move { c.del(chunk).await })
                .await?;
        }
        Ok(())
    }

    /// Writes bucket → entries with `HSET`, about [`CHUNK`] fields per pipeline.
    async fn write_buckets<F, V>(
        &self,
        buckets: &BTreeMap<u32, Vec<(F, V)>>,
        key: impl Fn(u32) -> String,
    ) -> Result<(), StoreError>
    where
        F: redis::ToRedisArgs + Send + Sync,
        V: redis::ToRedisArgs + Send + Sync,
    {
        let mut pipe = redis::pipe();
        let mut fields = 0usize;
        let mut pending = buckets.iter().peekable();
        while let Some((b, entries)) = pending.next() {
            for chunk in entries.chunks(CHUNK) {
                pipe.hset_multiple(key(*b), chunk).ignore();
                fields += chunk.len();
            }
            if fields >= CHUNK || pending.peek().is_none() {
                let batch = &pipe;
                let _: () = self
                    .retrying(|mut c| async move { batch.query_async(&mut c).await })
                    .await?;
                pipe = redis::pipe();
                fields = 0;
            }
        }
        Ok(())
    }

    /// Writes `campaign`'s hot state from `state` (computed from PostgreSQL), creating it if
    /// Redis lost it: config, bucket count, counters, rounds, person counts and claim
    /// records, then the campaign set and the outbox group. Idempotent.
    ///
    /// Safe while claims run: the campaign hash `:c` is the gate of the claim script (no
    /// hash, no claim: "unknown"), so it is deleted first, the buckets are rewritten, and
    /// the hash is written last, whole, in one `MULTI`: no claim ever sees the new counters
    /// without the person counts and claim records that go with them. Claims of the campaign
    /// answer "unknown" (issuance: `HOT_STATE_LOST`) for the duration. On a Redis that did not
    /// lose its data, the outbox must be drained first (what it holds is not in `state`).
    ///
    /// # Errors
    /// Redis failed; [`StoreError::Corrupt`] when a claim of `state` is not a 32-hex claim
    /// id with a record in the text form of [`HotRestore::claims`].
    pub async fn restore_campaign(
        &self,
        campaign: &Campaign,
        state: &HotRestore,
    ) -> Result<(), StoreError> {
        let keys = self.keys(campaign.id);
        let keys = &keys;
        // The bucket count a campaign got when Redis first learned it stays (entries are where
        // it puts them); a campaign Redis lost gets the one of its stock again.
        let existing: Option<u32> = self
            .retrying(|mut c| async move { c.hget(&keys.campaign, "nb").await })
            .await?;
        let nb = existing
            .filter(|&n| n > 0)
            .unwrap_or_else(|| layout::bucket_count(campaign.spec.stock));
        // Everything is encoded before anything is written.
        let mut claim_buckets: BTreeMap<u32, RawBucket> = BTreeMap::new();
        let mut person_buckets: BTreeMap<u32, Vec<(&str, i64)>> = BTreeMap::new();
        for (claim, record) in &state.claims {
            let id = Uuid::parse_str(claim)
                .map_err(|_| StoreError::Corrupt(format!("claim id {claim:?} to restore")))?;
            let bytes = layout::parse_rendered(record).ok_or_else(|| {
                StoreError::Corrupt(format!("claim record {record:?} to restore"))
            })?;
            claim_buckets
                .entry(layout::claim_bucket(id, nb))
                .or_default()
                .push((id.as_bytes().to_vec(), bytes));
        }
        for (person, count) in &state.persons {
            person_buckets
                .entry(layout::person_bucket(person, nb))
                .or_default()
                .push((person.as_str(), *count));
        }
        let mut fields: Vec<(&str, String)> = vec![
            ("status", super::status_name(campaign.status).to_owned()),
            ("limit", campaign.spec.per_person_limit.to_string()),
            (
                "mode",
                super::mode_name(super::distribution_mode(campaign.spec.distribution)).to_owned(),
            ),
            ("nb", nb.to_string()),
        ];
        fields.extend(state.counters.iter().map(|(k, v)| (*k, v.to_string())));
        let rounds: Vec<(i64, u32)> = campaign
            .spec
            .rounds
            .iter()
            .map(|r| (r.starts_at.timestamp_millis(), r.round_no))
            .collect();
        let quantities: Vec<(u32, u32)> = campaign
            .spec
            .rounds
            .iter()
            .map(|r| (r.round_no, r.quantity))
            .collect();

        // (1) Close the gate.
        let _: i64 = self
            .retrying(|mut c| async move { c.del(&keys.campaign).await })
            .await?;
        self.remember_buckets(campaign.id, None);
        // (2) The entries.
        self.delete_buckets(keys, nb).await?;
        self.write_buckets(&person_buckets, |b| keys.persons_bucket(b))
            .await?;
        self.write_buckets(&claim_buckets, |b| keys.claims_bucket(b))
            .await?;
        // (3) The hash and the rounds, in one step: the gate opens on a whole state.
        let (fields, rounds, quantities) = (&fields, &rounds, &quantities);
        let _: () = self
            .retrying(|mut c| async move {
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .del(&keys.rounds)
                    .ignore()
                    .del(&keys.round_quantities)
                    .ignore();
                if !rounds.is_empty() {
                    pipe.zadd_multiple(&keys.rounds, rounds)
                        .ignore()
                        .hset_multiple(&keys.round_quantities, quantities)
                        .ignore();
                }
                pipe.hset_multiple(&keys.campaign, fields)
                    .ignore()
                    .query_async(&mut c)
                    .await
            })
            .await?;
        self.remember_buckets(campaign.id, Some(nb));
        // (4) Outside the slot: the campaign set; then the persister's group.
        self.register_campaign(campaign.id, &keys.outbox).await
    }
}

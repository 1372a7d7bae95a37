//! The persister: drains every campaign's outbox stream into PostgreSQL through the consumer
//! group `persister`. Each batch is written in one transaction, idempotent on event id
//! (`ON CONFLICT DO NOTHING`), and acknowledged (then deleted from the stream) only after the
//! commit. Entries pending with a consumer that died are taken over with `XAUTOCLAIM` once
//! idle longer than `claim_idle`. Delivery is at least once; the writes make it exactly once.
//!
//! One step, over the outboxes of the campaigns in `<prefix>:campaigns` (re-read each step):
//! 1. `XAUTOCLAIM` stale entries of other (dead) consumers, and re-read this consumer's own
//!    pending entries (a batch whose commit failed is retried by the next step);
//! 2. `XREADGROUP … >` new entries, blocking up to `block` only when step 1 found nothing;
//! 3. decode each entry; an entry that does not decode (no `e` field, not an
//!    `EventEnvelope`, bad ids) can never succeed, so it is written to `dead_letters` with the
//!    reason, in the same transaction, and acknowledged like the others — it does not block
//!    the stream, and nothing is lost silently;
//! 4. one transaction: events (multi-row `UNNEST` insert), the voucher rows of
//!    `VoucherClaimed` events, dead letters; commit;
//! 5. `XACK` + `XDEL` the entries, so that `XLEN` is the number not yet persisted.
//!
//! A batch that PostgreSQL refuses for a reason that is not the entries' encoding (say, a
//! voucher of a campaign the record does not have) is retried, never skipped: it stays in
//! the outbox, the step fails loudly, and the lag metric grows until someone looks.
//!
//! The persister reads on a Redis connection of its own: a blocking `XREADGROUP` on the
//! shared multiplexed connection would hold up every claim behind it.

use crate::events::{self, DecodedEvent};
use crate::hot::PERSISTER_GROUP;
use crate::metrics::StoreMetrics;
use crate::{HotStore, StoreError};
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use redis::Value;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OnceCell};
use uuid::Uuid;

/// The shutdown signal [`Persister::run`] takes (re-exported so callers need no
/// `tokio-util` of their own).
pub use tokio_util::sync::CancellationToken;

/// Persister settings.
#[derive(Debug, Clone)]
pub struct PersisterConfig {
    /// This consumer's name in the group (unique per process).
    pub consumer: String,
    /// Most entries read per batch from each outbox stream (default 500).
    pub batch: usize,
    /// How long one read blocks waiting for entries.
    pub block: Duration,
    /// Pending entries idle longer than this are taken over from other consumers.
    pub claim_idle: Duration,
}

impl PersisterConfig {
    /// The defaults for a consumer named `consumer`: batches of 500, reads blocking 1 s,
    /// entries of dead consumers taken over after 30 s.
    pub fn new(consumer: impl Into<String>) -> PersisterConfig {
        PersisterConfig {
            consumer: consumer.into(),
            batch: 500,
            block: Duration::from_secs(1),
            claim_idle: Duration::from_secs(30),
        }
    }
}

/// The persister.
pub struct Persister {
    pg: PgPool,
    hot: HotStore,
    config: PersisterConfig,
    metrics: Option<StoreMetrics>,
    fail_before_commit: bool,
    reader: OnceCell<ConnectionManager>,
    /// Outboxes whose consumer group this persister has made sure of.
    grouped: Mutex<HashSet<String>>,
}

/// One outbox entry as read.
struct Entry {
    stream: String,
    id: String,
    payload: Payload,
}

/// The content of an entry.
enum Payload {
    /// The `e` field.
    Event(Vec<u8>),
    /// An entry without an `e` field.
    Missing,
    /// Pending but already deleted: only the persister deletes, after the commit, so it was
    /// persisted and only its acknowledgement was lost. Acknowledged again, nothing written.
    Deleted,
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default)]
struct StepReport {
    /// Entries read (and acknowledged).
    read: usize,
    /// Entries written to the event log (including ones it already had).
    persisted: usize,
}

impl Persister {
    /// A persister over these stores.
    pub fn new(pg: PgPool, hot: HotStore, config: PersisterConfig) -> Persister {
        Persister {
            pg,
            hot,
            config,
            metrics: None,
            fail_before_commit: false,
            reader: OnceCell::new(),
            grouped: Mutex::new(HashSet::new()),
        }
    }

    /// Updates these metrics (outbox lag, events persisted, batch duration).
    pub fn with_metrics(mut self, metrics: StoreMetrics) -> Persister {
        self.metrics = Some(metrics);
        self
    }

    /// Failpoint for crash tests: every step reads its entries, writes them inside a
    /// transaction, then fails instead of committing, so the entries stay pending with this
    /// consumer as if the process had died before the commit.
    #[doc(hidden)]
    pub fn fail_before_commit(mut self, fail: bool) -> Persister {
        self.fail_before_commit = fail;
        self
    }

    /// One batch: take over stale pending entries, read new ones, write, commit, ack.
    /// Returns how many entries were persisted.
    ///
    /// # Errors
    /// Redis or PostgreSQL failed; nothing was acknowledged.
    pub async fn step(&self) -> Result<usize, StoreError> {
        Ok(self.step_blocking(self.config.block).await?.persisted)
    }

    /// Steps until the outboxes are empty. For tests, tools and shutdown.
    ///
    /// # Errors
    /// As [`Persister::step`].
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let block = self.config.block.min(Duration::from_millis(50));
        let mut total = 0;
        loop {
            let report = self.step_blocking(block).await?;
            total += report.persisted;
            if report.read == 0 && self.hot.outbox_len().await? == 0 {
                return Ok(total);
            }
        }
    }

    /// Steps until `shutdown` is cancelled, backing off on errors. A step in progress is
    /// finished (it blocks at most `block`), so nothing is left half-done.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match self.step_blocking(self.config.block).await {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(consumer = %self.config.consumer, "persister step failed, backing off {backoff:?}: {e}");
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    #[tracing::instrument(name = "store.persister.step", skip_all, fields(consumer = %self.config.consumer), err(level = "warn"))]
    async fn step_blocking(&self, block: Duration) -> Result<StepReport, StoreError> {
        let started = Instant::now();
        let streams: Vec<String> = self
            .hot
            .campaign_ids()
            .await?
            .into_iter()
            .map(|id| self.hot.outbox_key(id))
            .collect();
        if streams.is_empty() {
            tokio::time::sleep(block).await;
            return Ok(StepReport::default());
        }
        self.ensure_groups(&streams).await?;
        let mut conn = self
            .reader
            .get_or_try_init(|| self.hot.dedicated_connection(self.config.block))
            .await?
            .clone();
        let entries = match self.read(&mut conn, &streams, block).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                // The stream or its group vanished (e.g. Redis lost its data): recreate next step.
                self.grouped.lock().await.clear();
                return Err(e.into());
            }
            other => other?,
        };
        if entries.is_empty() {
            self.update_lag().await;
            return Ok(StepReport::default());
        }
        let persisted = self.write(&entries).await?;
        self.acknowledge(&mut conn, &entries).await?;
        if let Some(m) = &self.metrics {
            m.persisted_events
                .inc_by(u64::try_from(persisted).unwrap_or(u64::MAX));
            m.persist_batch_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        self.update_lag().await;
        tracing::debug!(read = entries.len(), persisted, "persisted a batch");
        Ok(StepReport {
            read: entries.len(),
            persisted,
        })
    }

    async fn ensure_groups(&self, streams: &[String]) -> Result<(), StoreError> {
        let mut grouped = self.grouped.lock().await;
        for stream in streams {
            if !grouped.contains(stream) {
                self.hot.ensure_group(stream).await?;
                grouped.insert(stream.clone());
            }
        }
        Ok(())
    }

    /// Stale entries of others, own pending entries, then new entries.
    async fn read(
        &self,
        conn: &mut ConnectionManager,
        streams: &[String],
        block: Duration,
    ) -> Result<Vec<Entry>, redis::RedisError> {
        let me = &self.config.consumer;
        let batch = self.config.batch.max(1);
        let idle_ms = u64::try_from(self.config.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        for stream in streams {
            pipe.cmd("XAUTOCLAIM")
                .arg(stream)
                .arg(PERSISTER_GROUP)
                .arg(me)
                .arg(idle_ms)
                .arg("0-0")
                .arg("COUNT")
                .arg(batch);
        }
        pipe.cmd("XREADGROUP")
            .arg("GROUP")
            .arg(PERSISTER_GROUP)
            .arg(me)
            .arg("COUNT")
            .arg(batch)
            .arg("STREAMS")
            .arg(streams)
            .arg(vec!["0"; streams.len()]);
        let replies: Vec<Value> = pipe.query_async(conn).await?;
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        let (own, claimed) = replies
            .split_last()
            .map_or((None, &[][..]), |(own, claimed)| (Some(own), claimed));
        for (stream, reply) in streams.iter().zip(claimed) {
            if let Value::Array(parts) = reply {
                if let Some(list) = parts.get(1) {
                    parse_entries(stream, list, &mut entries);
                }
            }
        }
        if let Some(own) = own {
            parse_read_reply(own, &mut entries);
        }
        entries.retain(|e| seen.insert((e.stream.clone(), e.id.clone())));
        if !entries.is_empty() {
            return Ok(entries);
        }
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(PERSISTER_GROUP)
            .arg(me)
            .arg("COUNT")
            .arg(batch);
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX);
        if block_ms > 0 {
            read.arg("BLOCK").arg(block_ms);
        }
        read.arg("STREAMS")
            .arg(streams)
            .arg(vec![">"; streams.len()]);
        let reply: Value = read.query_async(conn).await?;
        parse_read_reply(&reply, &mut entries);
        Ok(entries)
    }

    /// Writes a batch in one transaction. Returns how many events it held.
    async fn write(&self, entries: &[Entry]) -> Result<usize, StoreError> {
        let mut decoded: Vec<(DecodedEvent, &[u8])> = Vec::with_capacity(entries.len());
        let mut dead: Vec<(&Entry, String)> = Vec::new();
        for entry in entries {
            match &entry.payload {
                Payload::Deleted => {}
                Payload::Missing => dead.push((entry, "entry has no field `e`".to_owned())),
                Payload::Event(bytes) => match events::decode(bytes) {
                    Ok(event) => decoded.push((event, bytes)),
                    Err(e) => dead.push((entry, e.to_string())),
                },
            }
        }
        for (entry, reason) in &dead {
            tracing::error!(stream = %entry.stream, entry_id = %entry.id, "outbox entry dead-lettered: {reason}");
        }
        let mut tx = self.pg.begin().await?;
        insert_events(&mut tx, &decoded).await?;
        insert_vouchers(&mut tx, &decoded).await?;
        if !dead.is_empty() {
            let streams: Vec<&str> = dead.iter().map(|(e, _)| e.stream.as_str()).collect();
            let ids: Vec<&str> = dead.iter().map(|(e, _)| e.id.as_str()).collect();
            let payloads: Vec<Option<&[u8]>> = dead
                .iter()
                .map(|(e, _)| match &e.payload {
                    Payload::Event(b) => Some(b.as_slice()),
                    Payload::Missing | Payload::Deleted => None,
                })
                .collect();
            let reasons: Vec<&str> = dead.iter().map(|(_, r)| r.as_str()).collect();
            sqlx::query(
                "INSERT INTO dead_letters (stream, entry_id, payload, reason)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::text[])
                 ON CONFLICT (stream, entry_id) DO NOTHING",
            )
            .bind(&streams)
            .bind(&ids)
            .bind(&payloads)
            .bind(&reasons)
            .execute(&mut *tx)
            .await?;
        }
        if self.fail_before_commit {
            tx.rollback().await?;
            return Err(StoreError::Pg(sqlx::Error::Protocol(
                "failpoint: fail_before_commit".to_owned(),
            )));
        }
        tx.commit().await?;
        Ok(decoded.len())
    }

    /// `XDEL` then `XACK` per stream, in one round trip. In this order a lost connection
    /// between the two leaves a deleted entry pending, which the next step acknowledges
    /// (see [`Payload::Deleted`]); the other order could leave an acknowledged entry in the
    /// stream that no read would ever return again.
    async fn acknowledge(
        &self,
        conn: &mut ConnectionManager,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        let mut by_stream: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for e in entries {
            by_stream
                .entry(e.stream.as_str())
                .or_default()
                .push(e.id.as_str());
        }
        let mut pipe = redis::pipe();
        for (stream, ids) in &by_stream {
            pipe.cmd("XDEL").arg(*stream).arg(ids).ignore();
            pipe.cmd("XACK")
                .arg(*stream)
                .arg(PERSISTER_GROUP)
                .arg(ids)
                .ignore();
        }
        let () = pipe.query_async(conn).await?;
        Ok(())
    }

    async fn update_lag(&self) {
        if let Some(m) = &self.metrics {
            match self.hot.outbox_len().await {
                Ok(lag) => m.outbox_lag.set(i64::try_from(lag).unwrap_or(i64::MAX)),
                Err(e) => tracing::debug!("outbox lag not measured: {e}"),
            }
        }
    }
}

async fn insert_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    decoded: &[(DecodedEvent, &[u8])],
) -> Result<(), StoreError> {
    if decoded.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = decoded.iter().map(|(e, _)| e.event_id).collect();
    let campaigns: Vec<i64> = decoded.iter().map(|(e, _)| e.campaign_id).collect();
    let kinds: Vec<&str> = decoded.iter().map(|(e, _)| e.kind).collect();
    let times: Vec<DateTime<Utc>> = decoded.iter().map(|(e, _)| e.occurred_at).collect();
    let payloads: Vec<&[u8]> = decoded.iter().map(|(_, b)| *b).collect();
    let json: Vec<&serde_json::Value> = decoded.iter().map(|(e, _)| &e.json).collect();
    sqlx::query(
        "INSERT INTO events (event_id, campaign_id, kind, occurred_at, payload, payload_json)
         SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::text[], $4::timestamptz[], $5::bytea[], $6::jsonb[])
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&campaigns)
    .bind(&kinds)
    .bind(&times)
    .bind(&payloads)
    .bind(&json)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_vouchers(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    decoded: &[(DecodedEvent, &[u8])],
) -> Result<(), StoreError> {
    let claims: Vec<(i64, &events::ClaimedFacts)> = decoded
        .iter()
        .filter_map(|(e, _)| e.claimed.as_ref().map(|c| (e.campaign_id, c)))
        .collect();
    if claims.is_empty() {
        return Ok(());
    }
    let vouchers: Vec<Uuid> = claims.iter().map(|(_, c)| c.voucher_id).collect();
    let campaigns: Vec<i64> = claims.iter().map(|(id, _)| *id).collect();
    let persons: Vec<&str> = claims.iter().map(|(_, c)| c.person_id.as_str()).collect();
    let claim_ids: Vec<Uuid> = claims.iter().map(|(_, c)| c.claim_id).collect();
    let rounds: Vec<i64> = claims.iter().map(|(_, c)| i64::from(c.round_no)).collect();
    let sources: Vec<&str> = claims.iter().map(|(_, c)| c.source).collect();
    let claimed_at: Vec<DateTime<Utc>> = claims.iter().map(|(_, c)| c.claimed_at).collect();
    let from: Vec<DateTime<Utc>> = claims.iter().map(|(_, c)| c.valid_from).collect();
    let until: Vec<DateTime<Utc>> = claims.iter().map(|(_, c)| c.valid_until).collect();
    // A row already there (a redelivered entry, or a voucher the redemption service inserted
    // from its token) is left as it is.
    sqlx::query(
        "INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                               claimed_at, valid_from, valid_until)
         SELECT v, c, p, cl, r::int4, s, 'issued', ca, vf, vu
         FROM UNNEST($1::uuid[], $2::int8[], $3::text[], $4::uuid[], $5::int8[], $6::text[],
                     $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
              AS t (v, c, p, cl, r, s, ca, vf, vu)
         ON CONFLICT DO NOTHING",
    )
    .bind(&vouchers)
    .bind(&campaigns)
    .bind(&persons)
    .bind(&claim_ids)
    .bind(&rounds)
    .bind(&sources)
    .bind(&claimed_at)
    .bind(&from)
    .bind(&until)
    .execute(&mut **tx)
    .await?;
    // A voucher the redemption service inserted from its token first (source 'token') gets
    // its real claim id, round and source, so that expiry can later recycle it by claim.
    sqlx::query(
        "UPDATE vouchers SET claim_id = t.cl, round_no = t.r::int4, source = t.s, claimed_at = t.ca
         FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::timestamptz[])
              AS t (v, cl, r, s, ca)
         WHERE vouchers.voucher_id = t.v AND vouchers.source = 'token'",
    )
    .bind(&vouchers)
    .bind(&claim_ids)
    .bind(&rounds)
    .bind(&sources)
    .bind(&claimed_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `XREADGROUP` reply: `[[stream, [[id, fields], …]], …]` (RESP2) or a map (RESP3); nil when
/// nothing was read.
fn parse_read_reply(reply: &Value, out: &mut Vec<Entry>) {
    match reply {
        Value::Array(streams) => {
            for s in streams {
                if let Value::Array(pair) = s {
                    if let (Some(name), Some(list)) = (pair.first(), pair.get(1)) {
                        if let Some(name) = text(name) {
                            parse_entries(&name, list, out);
                        }
                    }
                }
            }
        }
        Value::Map(streams) => {
            for (name, list) in streams {
                if let Some(name) = text(name) {
                    parse_entries(&name, list, out);
                }
            }
        }
        _ => {}
    }
}

/// A list of `[id, [field, value, …] | nil]` entries of one stream.
fn parse_entries(stream: &str, list: &Value, out: &mut Vec<Entry>) {
    let Value::Array(items) = list else { return };
    for item in items {
        let Value::Array(pair) = item else { continue };
        let Some(id) = pair.first().and_then(text) else {
            continue;
        };
        let field = match pair.get(1) {
            None | Some(Value::Nil) => {
                out.push(Entry {
                    stream: stream.to_owned(),
                    id,
                    payload: Payload::Deleted,
                });
                continue;
            }
            Some(Value::Array(fields)) => fields
                .chunks(2)
                .find(|kv| kv.first().and_then(text).as_deref() == Some("e"))
                .and_then(|kv| kv.get(1))
                .and_then(bytes),
            Some(Value::Map(fields)) => fields
                .iter()
                .find(|(k, _)| text(k).as_deref() == Some("e"))
                .and_then(|(_, v)| bytes(v)),
            Some(_) => None,
        };
        let payload = field.map_or(Payload::Missing, Payload::Event);
        out.push(Entry {
            stream: stream.to_owned(),
            id,
            payload,
        });
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

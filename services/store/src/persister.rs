//! The persister: drains every campaign's outbox stream into PostgreSQL through the consumer
//! group `persister`. Each batch is written in one transaction, idempotent on event id
//! (`ON CONFLICT DO NOTHING`), and acknowledged (then deleted from the stream) only after the
//! commit. Entries pending with a consumer that died are taken over with `XAUTOCLAIM` once
//! idle longer than `claim_idle`. Delivery is at least once; the writes make it exactly once.

use crate::{HotStore, StoreError};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Persister settings.
#[derive(Debug, Clone)]
pub struct PersisterConfig {
    /// This consumer's name in the group (unique per process).
    pub consumer: String,
    /// Most entries read per batch.
    pub batch: usize,
    /// How long one read blocks waiting for entries.
    pub block: Duration,
    /// Pending entries idle longer than this are taken over from other consumers.
    pub claim_idle: Duration,
}

/// The persister.
pub struct Persister {
    pg: PgPool,
    hot: HotStore,
    config: PersisterConfig,
}

impl Persister {
    /// A persister over these stores.
    pub fn new(pg: PgPool, hot: HotStore, config: PersisterConfig) -> Persister {
        Persister { pg, hot, config }
    }

    /// One batch: take over stale pending entries, read new ones, write, commit, ack.
    /// Returns how many entries were persisted.
    ///
    /// # Errors
    /// Redis or PostgreSQL failed; nothing was acknowledged.
    pub async fn step(&self) -> Result<usize, StoreError> {
        todo!("store: persister step")
    }

    /// Steps until the outboxes are empty. For tests, tools and shutdown.
    ///
    /// # Errors
    /// As [`Persister::step`].
    pub async fn drain(&self) -> Result<usize, StoreError> {
        todo!("store: persister drain")
    }

    /// Steps until `shutdown` is cancelled, backing off on errors.
    pub async fn run(self, shutdown: CancellationToken) {
        todo!("store: persister run")
    }
}

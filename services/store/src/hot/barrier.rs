//! The replication barrier: a claim is acknowledged only after its write has reached
//! `replicas` Redis replicas (each with an append-only file of its own), so that losing the
//! master's data directory loses no acknowledged claim (promote a replica instead).
//!
//! `WAIT n timeout` blocks the connection it is sent on, and it waits for the replication
//! offset of that connection's own last write (Redis remembers per client the master's
//! replication offset right after each of its commands that propagated). Sent on the
//! multiplexed connection that carries every claim, it would hold up all of them. So a
//! dedicated connection runs a group-commit loop: callers register a waiter after their
//! claim script returned; the loop takes every waiter registered so far, sends
//! `INCR <prefix>:{barrier}` (a write, so the connection's offset is the master's offset
//! at that moment, which covers every earlier write of every connection, the claims
//! included) pipelined with `WAIT n timeout`, and answers all those waiters at once: released
//! when at least `n` replicas acknowledged, failed otherwise. Waiters that arrive during a
//! `WAIT` form the next batch, so one round trip to the replica serves many claims.
//!
//! `WAITAOF` (Redis 7.2) would also prove the replica's fsync; Redis 7.0, the Debian one,
//! has only `WAIT`, which proves the replica received and applied the write. The replica
//! runs with `appendfsync always`.

use crate::redis_conn::{self, RedisOptions};
use crate::StoreError;
use redis::aio::ConnectionManager;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Waiters queued beyond this are refused at once (the barrier cannot keep up: the
/// replica is far behind); bounds the memory of a stalled barrier.
const QUEUE: usize = 65_536;

type Waiter = oneshot::Sender<Result<(), String>>;

/// A handle on the barrier task. Cheap to clone; the task stops when every handle is gone.
#[derive(Clone, Debug)]
pub struct ReplicaBarrier {
    queue: Option<mpsc::Sender<Waiter>>,
    replicas: u32,
    timeout: Duration,
}

impl ReplicaBarrier {
    /// No barrier: every wait returns at once (`redis.ack_replicas` = 0).
    pub fn disabled() -> ReplicaBarrier {
        ReplicaBarrier {
            queue: None,
            replicas: 0,
            timeout: Duration::ZERO,
        }
    }

    /// Starts the barrier task on a connection of its own to `client`: waits succeed once
    /// `replicas` replicas acknowledged, or fail after `timeout`. `replicas` = 0 is
    /// [`ReplicaBarrier::disabled`].
    ///
    /// # Errors
    /// The first connection failed.
    pub(crate) async fn start(
        client: &redis::Client,
        options: RedisOptions,
        key: String,
        replicas: u32,
        timeout: Duration,
    ) -> Result<ReplicaBarrier, StoreError> {
        if replicas == 0 {
            return Ok(ReplicaBarrier::disabled());
        }
        // The connection's commands may block on the server for the WAIT's timeout.
        let conn = redis_conn::connect(client, options.blocking_for(timeout)).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(conn, rx, key, replicas, timeout));
        Ok(ReplicaBarrier {
            queue: Some(tx),
            replicas,
            timeout,
        })
    }

    /// How many replicas must acknowledge (0: no barrier).
    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// Returns once every write made before this call (on any connection of this
    /// process to the master) has reached the replicas.
    ///
    /// # Errors
    /// [`StoreError::NotReplicated`]: fewer replicas acknowledged within the timeout, Redis
    /// failed, or the queue is full. The write may still be on the master alone: the caller
    /// answers 503 and the client retries (claims are idempotent on their claim id, and the
    /// retry waits on the barrier again).
    pub async fn wait(&self) -> Result<(), StoreError> {
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        queue.try_send(tx).map_err(|_| {
            StoreError::NotReplicated("the replication barrier is saturated".into())
        })?;
        // The task answers within the WAIT's timeout plus one round trip; this bound only
        // guards against a connection that hangs.
        let limit = self.timeout * 2 + Duration::from_secs(1);
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(why))) => Err(StoreError::NotReplicated(why)),
            Ok(Err(_)) => Err(StoreError::NotReplicated(
                "the replication barrier stopped".into(),
            )),
            Err(_) => Err(StoreError::NotReplicated(
                "no answer from the replication barrier".into(),
            )),
        }
    }
}

/// The group-commit loop: one `INCR` + `WAIT` per batch of waiters.
async fn run(
    mut conn: ConnectionManager,
    mut rx: mpsc::Receiver<Waiter>,
    key: String,
    replicas: u32,
    timeout: Duration,
) {
    let timeout_ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let reply: Result<(i64, u32), redis::RedisError> = redis::pipe()
            .incr(&key, 1)
            .cmd("WAIT")
            .arg(replicas)
            .arg(timeout_ms)
            .query_async(&mut conn)
            .await;
        let answer = match reply {
            Ok((_, acked)) if acked >= replicas => Ok(()),
            Ok((_, acked)) => Err(format!(
                "{acked} of {replicas} redis replicas acknowledged within {timeout_ms} ms"
            )),
            Err(e) => Err(format!("replication barrier: {e}")),
        };
        if let Err(why) = &answer {
            tracing::warn!(waiters = batch.len(), "claims not acknowledged: {why}");
        }
        for waiter in batch.drain(..) {
            // A waiter that gave up has dropped its receiver: nothing to tell.
            let _ = waiter.send(answer.clone());
        }
    }
}

//! Group commit of checkout decisions: concurrent checkouts queue to a few deciders, each of
//! which takes what is queued (up to `checkout.batch_max`, waiting at most
//! `checkout.batch_wait_us` for more), decides them one after the other in ONE transaction —
//! each in a savepoint of its own, released when it approves and rolled back when it does not
//! — commits once, and only then answers every terminal of the batch. One commit (one WAL
//! flush, one `BEGIN`/`COMMIT` pair) serves the whole batch, the way the persister batches
//! claims, and a decision takes three round trips instead of six: its idempotency key, its
//! decision (a threshold sale relies on the batch's savepoint instead of one of its own), and
//! its end sent with the next decision's savepoint in one simple query. On two shared cores
//! the round trips, not the flush, were what paid (README, "Where the time goes").
//!
//! What a decision sees and does is what it would alone, in the order of the batch: a voucher
//! spent by an earlier decision of the batch is found spent (`VOUCHER_ALREADY_REDEEMED`),
//! an idempotency key taken by an earlier one is answered with the stored response, and a
//! declined decision leaves nothing (its savepoint is rolled back, locks included). "Approved"
//! is still never said before the commit: if the commit fails, every decision of the batch —
//! declines included, which may rest on an earlier decision of the batch — is answered 503
//! with `Retry-After`, and the terminal's retry with the same idempotency key is answered from
//! the record whether or not the commit happened.
//!
//! A batch never waits long for another's locks: its transaction runs with a short
//! `lock_timeout` (`checkout.batch_lock_wait_ms`), so that two batches holding what the other
//! wants (the two purchases of one entitlement, a voucher presented at two terminals at once)
//! cannot deadlock, and one batch does not stall behind another. A decision that fails inside
//! the batch — such a lock wait cut short, or any other failure — is rolled back to its
//! savepoint and decided again alone, in a transaction of its own that waits as long as it
//! must, after the batch; the rest of the batch is not disturbed. Each decider prefers a budget bucket of
//! its own, so that the decisions of a batch share the bucket row it already holds instead of
//! holding several and making the other deciders skip them.
//!
//! The queue is bounded (`checkout.queue`): when it is full the checkout is answered 503 with
//! `Retry-After`, before anything is written. `checkout.deciders = 0` turns grouping off (each
//! decision in its own transaction).

use super::{decide_step, Ready, Step};
use crate::error::ApiError;
use crate::state::AppState;
use sqlx::Executor as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use voucher_platform::settings::{invalid, SettingsError};

/// Group commit settings (section `checkout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupSettings {
    /// Deciders, each with a transaction open at a time (0: no grouping).
    pub deciders: usize,
    /// Most decisions in one transaction (at most 30: each takes up to two subtransactions,
    /// and PostgreSQL tracks 64 per transaction before its snapshots get slower).
    pub batch_max: usize,
    /// A decider with fewer than `batch_max` decisions waits this long for more (0: takes
    /// what is queued and goes).
    pub batch_wait_us: u64,
    /// Checkouts waiting for a decider, at most; beyond, 503 with `Retry-After`.
    pub queue: usize,
    /// A decision in a batch waits at most this long for a lock another transaction holds;
    /// then it is decided alone after the batch.
    pub batch_lock_wait_ms: u32,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            deciders: 4,
            batch_max: 16,
            batch_wait_us: 0,
            queue: 1024,
            batch_lock_wait_ms: 2,
        }
    }
}

impl GroupSettings {
    /// Checks the bounds.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.deciders > 64 {
            return invalid("checkout.deciders must be 0-64");
        }
        if self.batch_max == 0 || self.batch_max > 30 {
            return invalid("checkout.batch_max must be 1-30");
        }
        if self.batch_wait_us > 50_000 {
            return invalid("checkout.batch_wait_us must be at most 50000 (50 ms)");
        }
        if self.queue == 0 {
            return invalid("checkout.queue must be positive");
        }
        if self.batch_lock_wait_ms == 0 || self.batch_lock_wait_ms > 1_000 {
            return invalid("checkout.batch_lock_wait_ms must be 1-1000");
        }
        Ok(())
    }
}

/// What the group made of a checkout.
#[derive(Debug)]
pub enum Grouped {
    /// Decided in a batch whose transaction committed (or, for a step that writes nothing,
    /// ended).
    Decided(Box<Ready>, Step),
    /// Its decision failed inside the batch and was rolled back: decide it alone.
    Alone(Box<Ready>),
}

struct Job {
    ready: Box<Ready>,
    reply: oneshot::Sender<Result<Grouped, ApiError>>,
}

/// The checkouts' way to the deciders.
#[derive(Clone)]
pub struct Group {
    queue: mpsc::Sender<Job>,
}

/// The deciders' end of the queue, handed to [`run`].
pub struct Deciders {
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    settings: GroupSettings,
}

/// The group and its deciders' end (`None` when grouping is off).
pub fn group(settings: GroupSettings) -> Option<(Group, Deciders)> {
    if settings.deciders == 0 {
        return None;
    }
    let (tx, rx) = mpsc::channel(settings.queue);
    Some((
        Group { queue: tx },
        Deciders {
            queue: Arc::new(Mutex::new(rx)),
            settings,
        },
    ))
}

impl Group {
    /// Queues a checkout for the next batch and waits for its transaction.
    ///
    /// # Errors
    /// 503 with `Retry-After` when the queue is full, the deciders are stopping, or the
    /// batch's transaction failed.
    pub async fn decide(&self, ready: Ready) -> Result<Grouped, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Job {
                ready: Box::new(ready),
                reply,
            })
            .map_err(|e| {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the checkout queue is full",
                    mpsc::error::TrySendError::Closed(_) => "the checkout deciders are stopping",
                };
                ApiError::unavailable(anyhow::anyhow!(why)).with_retry_after(1)
            })?;
        answer.await.map_err(|_| {
            ApiError::unavailable(anyhow::anyhow!("the checkout decider stopped"))
                .with_retry_after(1)
        })?
    }
}

/// Runs the deciders until `shutdown`; then decides what is still queued and returns.
pub async fn run(state: AppState, deciders: Deciders, shutdown: CancellationToken) {
    let buckets = state.settings.budget.buckets.max(1);
    let n = deciders.settings.deciders;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            // Decider i starts at bucket i × buckets / n: the deciders' buckets are apart.
            let bucket = i32::try_from(i * usize::try_from(buckets).unwrap_or(1) / n).unwrap_or(0);
            tokio::spawn(decider(
                state.clone(),
                deciders.queue.clone(),
                deciders.settings,
                bucket,
                shutdown.clone(),
            ))
        })
        .collect();
    for t in tasks {
        if let Err(e) = t.await {
            tracing::error!("a checkout decider ended abnormally: {e}");
        }
    }
}

async fn decider(
    state: AppState,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    settings: GroupSettings,
    bucket: i32,
    shutdown: CancellationToken,
) {
    loop {
        let batch = {
            let mut rx = queue.lock().await;
            let first = if shutdown.is_cancelled() {
                // Stopping: what is queued is still decided; then no more.
                match rx.try_recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            } else {
                tokio::select! {
                    () = shutdown.cancelled() => continue,
                    job = rx.recv() => match job {
                        Some(job) => job,
                        None => return,
                    },
                }
            };
            collect(&mut rx, first, &settings).await
        };
        decide_batch(&state, batch, bucket, settings.batch_lock_wait_ms).await;
    }
}

/// The first job and what else is queued, waiting up to the batch wait for more.
async fn collect(rx: &mut mpsc::Receiver<Job>, first: Job, settings: &GroupSettings) -> Vec<Job> {
    let mut batch = Vec::with_capacity(settings.batch_max);
    batch.push(first);
    while batch.len() < settings.batch_max {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    if settings.batch_wait_us > 0 {
        let until = Instant::now() + Duration::from_micros(settings.batch_wait_us);
        while batch.len() < settings.batch_max {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(job)) => batch.push(job),
                _ => break,
            }
        }
    }
    batch
}

const SAVEPOINT: &str = "SAVEPOINT grouped_decision";

/// One batch in one transaction; every job answered after it ends.
async fn decide_batch(state: &AppState, batch: Vec<Job>, bucket: i32, lock_wait_ms: u32) {
    let size = batch.len();
    state.metrics.batch(size);
    let mut done: Vec<(Job, Result<Step, ApiError>)> = Vec::with_capacity(size);
    let ended = async {
        let mut tx = state.pg.begin().await?;
        // Round trips: the lock timeout with the first savepoint, and each decision's end
        // with the next one's savepoint, in one simple query each.
        let mut next = format!("SET LOCAL lock_timeout = '{lock_wait_ms}ms'; {SAVEPOINT}");
        let mut jobs = batch.into_iter().peekable();
        while let Some(job) = jobs.next() {
            (&mut *tx).execute(next.as_str()).await?;
            let step = decide_step(state, &mut tx, &job.ready, Some(bucket)).await;
            let end = if step.as_ref().is_ok_and(Step::writes) {
                "RELEASE SAVEPOINT grouped_decision"
            } else {
                "ROLLBACK TO SAVEPOINT grouped_decision"
            };
            done.push((job, step));
            if jobs.peek().is_some() {
                next = format!("{end}; {SAVEPOINT}");
            } else {
                (&mut *tx).execute(end).await?;
            }
        }
        tx.commit().await
    }
    .await;
    match ended {
        Ok(()) => {
            for (job, step) in done {
                let answer = match step {
                    Ok(step) => Ok(Grouped::Decided(job.ready, step)),
                    Err(e) => {
                        tracing::debug!("a grouped checkout decision is decided alone: {e}");
                        state.metrics.batch_retried_alone.inc();
                        Ok(Grouped::Alone(job.ready))
                    }
                };
                // A terminal that went away meanwhile: its retry is answered from the record.
                let _ = job.reply.send(answer);
            }
        }
        Err(e) => {
            tracing::warn!(
                batch = size,
                "a group commit of checkout decisions failed: {e}"
            );
            let message = e.to_string();
            for (job, _) in done {
                let _ = job.reply.send(Err(batch_failed(&message)));
            }
        }
    }
}

fn batch_failed(message: &str) -> ApiError {
    ApiError::unavailable(anyhow::anyhow!(
        "the checkout's transaction failed: {message}"
    ))
    .with_retry_after(1)
}

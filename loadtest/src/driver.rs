//! The load engine every scenario runs on: a list of attempts, an operation that performs one
//! and says how it ended, and a pace.
//!
//! - **Closed loop** (`Pace::Closed`): `concurrency` workers, each sending its next attempt as
//!   soon as the previous one answered — the classic "N connections hammering" rush. Latency
//!   runs from the send to the answer.
//! - **Open loop** (`Pace::Open`): attempt `i` is due at `start + i / rate`, whatever the
//!   server does; latency runs from that *intended* time, so a stalled server shows up as
//!   latency instead of silently lowering the offered load (no coordinated omission). At most
//!   `max_in_flight` requests are outstanding; an attempt waiting for a slot keeps its clock
//!   running.
//!
//! Both stop issuing new attempts at the deadline, if one is given (baselines that would
//! otherwise run for minutes are time-boxed this way), and wait for those in flight.

use crate::stats::{Outcome, Recorder, Summary};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How attempts are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Pace {
    /// `concurrency` requests always in flight.
    Closed {
        /// Requests in flight.
        concurrency: usize,
    },
    /// A fixed arrival rate.
    Open {
        /// Attempts per second.
        rate_per_sec: u64,
        /// Most requests in flight (connections).
        max_in_flight: usize,
    },
}

impl Pace {
    /// The most requests in flight at once.
    pub fn concurrency(&self) -> usize {
        match *self {
            Pace::Closed { concurrency } => concurrency,
            Pace::Open { max_in_flight, .. } => max_in_flight,
        }
    }
}

/// Runs `op` over every attempt at `pace`, recording into a fresh recorder; stops issuing at
/// `deadline` (measured from the start), if given.
pub async fn drive<T, F, Fut>(
    attempts: Vec<T>,
    pace: Pace,
    deadline: Option<Duration>,
    op: F,
) -> Summary
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let attempts = Arc::new(attempts);
    let op = Arc::new(op);
    let recorder = Arc::new(Recorder::new());
    let start = recorder.start();
    let stop_at = deadline.map(|d| start + d);
    match pace {
        Pace::Closed { concurrency } => {
            let next = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..concurrency.max(1))
                .map(|worker| {
                    let (attempts, op, recorder, next) =
                        (attempts.clone(), op.clone(), recorder.clone(), next.clone());
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(attempt) = attempts.get(i) else {
                                break;
                            };
                            if stop_at.is_some_and(|t| Instant::now() >= t) {
                                break;
                            }
                            let sent = Instant::now();
                            let outcome = op(attempt).await;
                            recorder.record(worker, sent.elapsed(), &outcome);
                        }
                    })
                })
                .collect();
            for w in workers {
                if let Err(e) = w.await {
                    recorder.record(
                        0,
                        Duration::ZERO,
                        &Outcome::Error(format!("WORKER_PANIC {e}")),
                    );
                }
            }
        }
        Pace::Open {
            rate_per_sec,
            max_in_flight,
        } => {
            let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
            let period_ns = 1_000_000_000 / u128::from(rate_per_sec.max(1));
            let mut tasks = Vec::with_capacity(attempts.len());
            for i in 0..attempts.len() {
                let offset = u64::try_from(period_ns * i as u128).unwrap_or(u64::MAX);
                let intended = start + Duration::from_nanos(offset);
                if stop_at.is_some_and(|t| intended >= t) {
                    break;
                }
                tokio::time::sleep_until(intended.into()).await;
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (attempts, op, recorder) = (attempts.clone(), op.clone(), recorder.clone());
                tasks.push(tokio::spawn(async move {
                    let _slot = slot;
                    if let Some(attempt) = attempts.get(i) {
                        let outcome = op(attempt).await;
                        recorder.record(i, intended.elapsed(), &outcome);
                    }
                }));
            }
            for t in tasks {
                if let Err(e) = t.await {
                    recorder.record(
                        0,
                        Duration::ZERO,
                        &Outcome::Error(format!("WORKER_PANIC {e}")),
                    );
                }
            }
        }
    }
    recorder.summary(start.elapsed())
}

//! What a run measured: every request's latency in one HDR histogram, completions and p99
//! bucketed per second of the run (the chart's two lines), and outcomes counted by code.
//!
//! Recording is sharded (a handful of mutex-protected shards, picked by the caller's worker
//! index) so that hundreds of workers on two cores do not queue on one lock; the shards are
//! merged once, at the end, into a [`Summary`].

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Highest latency recorded, µs (one minute; anything slower is clamped to it).
const MAX_LATENCY_US: u64 = 60_000_000;

/// Shards of the recorder.
const SHARDS: usize = 16;

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did what the scenario is about (`claimed`, later `redeemed`).
    Success(&'static str),
    /// An expected refusal with its stable code (`SOLD_OUT`, `PER_PERSON_LIMIT`).
    Refused(String),
    /// Anything else: an unexpected code, a 5xx, a transport error. Breaks the run.
    Error(String),
}

impl Outcome {
    /// The label it is counted under.
    pub fn label(&self) -> &str {
        match self {
            Outcome::Success(s) => s,
            Outcome::Refused(c) | Outcome::Error(c) => c,
        }
    }
}

/// One second of a run.
struct Second {
    completions: u64,
    successes: u64,
    latency: Histogram<u64>,
}

struct Shard {
    latency: Histogram<u64>,
    seconds: Vec<Second>,
    outcomes: BTreeMap<String, u64>,
    errors: u64,
    successes: u64,
    last_success_us: u64,
}

fn histogram(sigfig: u8) -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts (1 ≤ low, high ≥ 2·low, sigfig ≤ 5).
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_LATENCY_US, sigfig).expect("constant histogram bounds")
}

impl Shard {
    fn new() -> Shard {
        Shard {
            latency: histogram(3),
            seconds: Vec::new(),
            outcomes: BTreeMap::new(),
            errors: 0,
            successes: 0,
            last_success_us: 0,
        }
    }
}

/// Collects the measurements of one run. Cheap to share (`&Recorder` across tasks).
pub struct Recorder {
    start: Instant,
    shards: Vec<Mutex<Shard>>,
}

impl Recorder {
    /// A recorder whose second 0 starts now.
    pub fn new() -> Recorder {
        Recorder::starting_at(Instant::now())
    }

    /// A recorder whose second 0 starts at `start`.
    pub fn starting_at(start: Instant) -> Recorder {
        Recorder {
            start,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
        }
    }

    /// When the run started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Records one request that completed now after `latency`, from worker `worker`.
    pub fn record(&self, worker: usize, latency: Duration, outcome: &Outcome) {
        let done_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_LATENCY_US);
        let second = usize::try_from(done_us / 1_000_000).unwrap_or(usize::MAX);
        let Some(shard) = self.shards.get(worker % SHARDS) else {
            return;
        };
        // A poisoned shard only means another worker panicked mid-record: keep counting.
        let mut shard = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shard.latency.saturating_record(us);
        while shard.seconds.len() <= second {
            shard.seconds.push(Second {
                completions: 0,
                successes: 0,
                latency: histogram(2),
            });
        }
        let success = matches!(outcome, Outcome::Success(_));
        if let Some(s) = shard.seconds.get_mut(second) {
            s.completions += 1;
            s.successes += u64::from(success);
            s.latency.saturating_record(us);
        }
        if success {
            shard.successes += 1;
            shard.last_success_us = shard.last_success_us.max(done_us);
        }
        if matches!(outcome, Outcome::Error(_)) {
            shard.errors += 1;
        }
        *shard
            .outcomes
            .entry(outcome.label().to_owned())
            .or_insert(0) += 1;
    }

    /// Merges the shards. `elapsed` is the wall time of the run.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let mut latency = histogram(3);
        let mut seconds: Vec<Second> = Vec::new();
        let mut outcomes = BTreeMap::new();
        let (mut errors, mut successes, mut last_success_us) = (0, 0, 0);
        for shard in &self.shards {
            let shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Same bounds on both sides: add cannot fail; a failure would only lose samples.
            let _ = latency.add(&shard.latency);
            for (i, s) in shard.seconds.iter().enumerate() {
                while seconds.len() <= i {
                    seconds.push(Second {
                        completions: 0,
                        successes: 0,
                        latency: histogram(2),
                    });
                }
                if let Some(m) = seconds.get_mut(i) {
                    m.completions += s.completions;
                    m.successes += s.successes;
                    let _ = m.latency.add(&s.latency);
                }
            }
            for (k, v) in &shard.outcomes {
                *outcomes.entry(k.clone()).or_insert(0) += v;
            }
            errors += shard.errors;
            successes += shard.successes;
            last_success_us = last_success_us.max(shard.last_success_us);
        }
        let requests: u64 = outcomes.values().sum();
        let elapsed_us = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let timeline = seconds
            .iter()
            .enumerate()
            .map(|(i, s)| SecondSummary {
                second: u64::try_from(i).unwrap_or(u64::MAX),
                completions: s.completions,
                successes: s.successes,
                p99_us: s.latency.value_at_quantile(0.99),
            })
            .collect();
        Summary {
            requests,
            successes,
            errors,
            elapsed_ms: elapsed_us / 1000,
            requests_per_sec: per_sec(requests, elapsed_us),
            successes_per_sec: per_sec(successes, last_success_us.max(1)),
            success_window_ms: last_success_us / 1000,
            latency_us: LatencySummary::of(&latency),
            outcomes,
            timeline,
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

fn per_sec(count: u64, micros: u64) -> u64 {
    u64::try_from(u128::from(count) * 1_000_000 / u128::from(micros.max(1))).unwrap_or(u64::MAX)
}

/// Latency percentiles, µs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest.
    pub max: u64,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> LatencySummary {
        LatencySummary {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One second of the timeline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SecondSummary {
    /// Seconds since the start.
    pub second: u64,
    /// Requests completed in this second.
    pub completions: u64,
    /// Of which successes.
    pub successes: u64,
    /// p99 latency of the requests completed in this second, µs.
    pub p99_us: u64,
}

/// The measurements of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Requests completed.
    pub requests: u64,
    /// Of which successes.
    pub successes: u64,
    /// Of which errors (anything but a success or an expected refusal).
    pub errors: u64,
    /// Wall time, ms.
    pub elapsed_ms: u64,
    /// Requests per second over the whole run.
    pub requests_per_sec: u64,
    /// Successes per second, over the window from the start to the last success (for a
    /// rush: claims per second while stock lasted).
    pub successes_per_sec: u64,
    /// That window, ms.
    pub success_window_ms: u64,
    /// Latency of every request, µs.
    pub latency_us: LatencySummary,
    /// Requests by outcome label.
    pub outcomes: BTreeMap<String, u64>,
    /// Per second of the run.
    pub timeline: Vec<SecondSummary>,
}

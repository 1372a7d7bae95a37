//! The demo's closed-loop claim rush (the benchmark runs [`crate::scenario::rush`]): every resident claims from one campaign from `devices` phones at
//! once (each device its own claim id, as separate phones would), with at most `concurrency`
//! requests in flight. Latency goes into an HDR histogram in microseconds.

use crate::client::IssuanceClient;
use crate::residents::Resident;
use futures::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One answer: outcome, latency (µs), and `(person_id, voucher_id)` when a voucher came back.
type Answer = (String, u64, Option<(String, String)>);

/// What a rush did.
#[derive(Debug)]
pub struct RushResult {
    /// Responses by outcome: `claimed`, `replayed` or the error code (`SOLD_OUT`, …).
    pub outcomes: BTreeMap<String, u64>,
    /// Latency of every request, µs.
    pub latency_us: Histogram<u64>,
    /// Wall time of the whole rush.
    pub elapsed: Duration,
    /// `(person_id, voucher_id)` of every voucher handed out.
    pub vouchers: Vec<(String, String)>,
}

impl RushResult {
    /// Requests per second over the whole rush.
    pub fn throughput(&self) -> u64 {
        let total: u64 = self.outcomes.values().sum();
        let micros = self.elapsed.as_micros().max(1);
        u64::try_from(u128::from(total) * 1_000_000 / micros).unwrap_or(u64::MAX)
    }
}

/// Runs the rush.
///
/// # Errors
/// The histogram could not be created.
pub async fn run(
    client: &IssuanceClient,
    campaign: i64,
    residents: &[Resident],
    devices: usize,
    concurrency: usize,
) -> anyhow::Result<RushResult> {
    let attempts: Vec<&Resident> = residents
        .iter()
        .flat_map(|r| std::iter::repeat_n(r, devices))
        .collect();
    let started = Instant::now();
    let results: Vec<Answer> = stream::iter(attempts)
        .map(|r| async move {
            let t = Instant::now();
            let reply = client.claim(&r.token, campaign, uuid::Uuid::new_v4()).await;
            let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
            match reply {
                Ok(reply) if reply.status.is_success() => {
                    let vid = reply
                        .body
                        .get("voucher_id")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_owned();
                    let outcome = if reply.status.as_u16() == 201 {
                        "claimed"
                    } else {
                        "replayed"
                    };
                    (outcome.to_owned(), us, Some((r.person_id.clone(), vid)))
                }
                Ok(reply) => (reply.code().unwrap_or("UNKNOWN").to_owned(), us, None),
                Err(_) => ("TRANSPORT_ERROR".to_owned(), us, None),
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut outcomes = BTreeMap::new();
    let mut vouchers = Vec::new();
    for (outcome, us, voucher) in results {
        latency_us.saturating_record(us.max(1));
        *outcomes.entry(outcome).or_insert(0) += 1;
        vouchers.extend(voucher);
    }
    Ok(RushResult {
        outcomes,
        latency_us,
        elapsed,
        vouchers,
    })
}

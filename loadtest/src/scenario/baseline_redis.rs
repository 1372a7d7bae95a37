//! The raw limit: the service's own claim script (`claim.lua`, through
//! [`voucher_store::HotStore::claim`], so keys, arguments and the encoded `VoucherClaimed`
//! event are exactly the service's) driven straight at Redis, with no HTTP, no identity
//! check and no signing. Several multiplexed connections, each pipelining every request in
//! flight on it (`EVALSHA`), so Redis — not the round trip — is the limit.
//!
//! The campaign lives under a key prefix of its own (`bench` by default), so it never
//! disturbs the service's keys in the same Redis. With no persister behind it, its outbox is
//! trimmed after the run, as the persister would have, before memory is read: the figure is
//! Redis bytes per *live* voucher (claim record plus per-person count), as in production.

use super::{
    check_common, RedisMemory, Scenario, ScenarioReport, Workload, CLAIMED, PER_PERSON_LIMIT,
    SOLD_OUT,
};
use crate::driver::drive;
use crate::invariants::Invariants;
use crate::probe;
use crate::residents::bench_person_id;
use crate::stats::Outcome;
use anyhow::{Context, Result};
use chrono::{Duration as ChronoDuration, Utc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use uuid::Uuid;
use voucher_core::{Campaign, CampaignId, ClaimId, PersonId, VoucherId};
use voucher_store::{ClaimMode, ClaimOutcome, ClaimRequest, HotStore};

/// Where the baseline runs.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    /// The Redis (the service's, or any).
    pub url: String,
    /// A key prefix of the baseline's own.
    pub prefix: String,
    /// Multiplexed connections.
    pub connections: usize,
}

/// The campaign the baseline claims from: one round open since a second ago.
///
/// # Errors
/// The spec does not parse (a bug).
pub fn campaign(id: i64, w: &Workload) -> Result<Campaign> {
    let opens = Utc::now() - ChronoDuration::seconds(1);
    let spec = serde_json::json!({
        "id": id, "status": "active",
        "program_id": 1, "name": "baseline", "owner_place": super::rush::CITY, "category": "catering",
        "rule": {"type": "threshold", "min_spend": 10_000, "off": 2_000},
        "stock": w.stock, "per_person_limit": w.per_person_limit,
        "rounds": [{"round_no": 1, "starts_at": opens, "quantity": w.stock}],
        "validity": {"days_after_claim": 7}, "budget": i64::from(w.stock) * 2_000,
        "eligibility": {"places": [super::rush::CITY], "min_real_name_level": 2},
        "distribution": "claim"
    });
    serde_json::from_value(spec).context("the baseline campaign spec")
}

/// The key pattern of a campaign under `prefix` (the layout of `voucher_store::hot`: every
/// key of a campaign carries the hash tag `{c<id>}`).
fn campaign_pattern(prefix: &str, id: i64) -> String {
    format!("{prefix}:{{c{id}}}:*")
}

/// Runs the baseline and checks its invariants. Uses campaign `id` under the target's prefix
/// (its keys are deleted before and after).
///
/// # Errors
/// Redis is unreachable.
pub async fn run(target: &RedisTarget, w: &Workload, id: i64) -> Result<ScenarioReport> {
    let mut stores = Vec::with_capacity(target.connections.max(1));
    for _ in 0..target.connections.max(1) {
        stores.push(
            HotStore::connect(&target.url, &target.prefix)
                .await
                .context("connecting to redis")?,
        );
    }
    delete_campaign(&target.url, &target.prefix, id).await?;
    let campaign = campaign(id, w)?;
    let (valid_from, valid_until) = campaign.spec.validity.window(Utc::now());
    stores[0].sync_campaign(&campaign).await?;
    let memory_before = probe::redis_used_memory(&target.url).await?;

    let attempts: Vec<Arc<PersonId>> = (1..=w.residents)
        .map(|n| PersonId::parse(&bench_person_id(n)).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .context("person id")?
        .into_iter()
        .flat_map(|p| std::iter::repeat_n(p, w.devices))
        .collect();
    let stores = Arc::new(stores);
    let next = Arc::new(AtomicUsize::new(0));
    let s = stores.clone();
    let summary = drive(
        attempts,
        w.pace,
        w.deadline(),
        move |person: &Arc<PersonId>| {
            let store = s[next.fetch_add(1, Ordering::Relaxed) % s.len()].clone();
            let req = ClaimRequest {
                campaign_id: CampaignId(id),
                person_id: PersonId::clone(person),
                claim_id: ClaimId(Uuid::new_v4()),
                voucher_id: VoucherId(Uuid::now_v7()),
                round_no: 1,
                now: Utc::now(),
                valid_from,
                valid_until,
                mode: ClaimMode::Rush,
            };
            async move {
                match store.claim(&req).await {
                    Ok(ClaimOutcome::Claimed(_)) => Outcome::Success(CLAIMED),
                    Ok(ClaimOutcome::SoldOut) => Outcome::Refused(SOLD_OUT.to_owned()),
                    Ok(ClaimOutcome::LimitReached) => Outcome::Refused(PER_PERSON_LIMIT.to_owned()),
                    Ok(other) => Outcome::Error(format!("{other:?}")),
                    Err(_) => Outcome::Error("REDIS_ERROR".to_owned()),
                }
            }
        },
    )
    .await;
    let completed = summary.requests == u64::try_from(w.attempts()).unwrap_or(u64::MAX);
    let hot = &stores[0];
    let cid = CampaignId(id);
    let counters = hot
        .counters(cid)
        .await?
        .context("redis forgot the baseline campaign")?;
    let claimed = u64::try_from(counters.claimed).unwrap_or(0);
    let holdings = person_holdings(hot, cid).await?;
    let over_limit = holdings
        .iter()
        .filter(|&&n| n > u64::from(w.per_person_limit))
        .count();
    let held: u64 = holdings.iter().sum();

    // What the persister does in the service: the outbox entries go once persisted.
    let mut con = redis_connection(&target.url).await?;
    let _: i64 = redis::cmd("XTRIM")
        .arg(hot.outbox_key(cid))
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut con)
        .await?;
    let memory_after = probe::redis_used_memory(&target.url).await?;
    delete_campaign(&target.url, &target.prefix, id).await?;

    let mut inv = Invariants::default();
    if completed {
        inv.equal(
            "redis claimed = min(stock, demand)",
            w.expected_claims(),
            claimed,
        );
    }
    inv.equal("outbox entries = claimed", claimed, counters.outbox_len);
    inv.equal("per-person counts add up to claimed", claimed, held);
    inv.equal(
        "persons over the per-person limit",
        0,
        u64::try_from(over_limit).unwrap_or(u64::MAX),
    );
    check_common(&mut inv, &summary, claimed);
    Ok(ScenarioReport {
        scenario: Scenario::BaselineRedis,
        workload: *w,
        completed,
        summary,
        invariants: inv,
        redis_memory: Some(RedisMemory::new(memory_before, memory_after, claimed)),
        rss: None,
    })
}

async fn redis_connection(url: &str) -> Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).context("redis url")?;
    client
        .get_multiplexed_async_connection()
        .await
        .context("connecting to redis")
}

/// Every person's count in the campaign (the buckets `:p:<b>`, read by the store's audit).
async fn person_holdings(hot: &HotStore, id: CampaignId) -> Result<Vec<u64>> {
    let snapshot = hot
        .campaign_snapshot(id)
        .await?
        .context("redis forgot the baseline campaign")?;
    Ok(snapshot
        .persons
        .values()
        .map(|&n| u64::try_from(n).unwrap_or(u64::MAX))
        .collect())
}

/// Deletes every key of campaign `id` under `prefix` (and its entry in the campaign set).
async fn delete_campaign(url: &str, prefix: &str, id: i64) -> Result<()> {
    let mut con = redis_connection(url).await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(campaign_pattern(prefix, id))
        .query_async(&mut con)
        .await?;
    for key in keys {
        let _: i64 = redis::cmd("UNLINK").arg(key).query_async(&mut con).await?;
    }
    let _: i64 = redis::cmd("SREM")
        .arg(format!("{prefix}:campaigns"))
        .arg(id)
        .query_async(&mut con)
        .await?;
    Ok(())
}

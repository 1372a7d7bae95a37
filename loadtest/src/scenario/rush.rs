//! The rush through the front door: residents with identity tokens claim from one campaign
//! over HTTP, as phones do; every success is a signed voucher whose `VoucherClaimed` event is
//! in the outbox. After the run the outbox must drain, and Redis and PostgreSQL must agree
//! with the workload: `claimed = min(stock, demand)`, nobody over the limit.

use super::{check_common, refusal, RedisMemory, Scenario, ScenarioReport, Workload, CLAIMED};
use crate::client::{Auth, IssuanceClient, Reply};
use crate::driver::drive;
use crate::invariants::Invariants;
use crate::probe::{self, RssSampler};
use crate::residents::{self, Resident};
use crate::stats::Outcome;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::time::Duration;
use voucher_core::keys::SigningKey;
use voucher_core::{CampaignId, PlaceCode};
use voucher_store::HotStore;

/// Jincheng (晋城), the city whose campaign the benchmark runs.
pub const CITY: u32 = 140_500;
/// Shanxi (山西省), the province that funds the program.
pub const PROVINCE: u32 = 140_000;

/// Where the service and its stores are.
pub struct RushTarget {
    /// The issuance service, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// The province administrator's API key (creates the program).
    pub province_key: String,
    /// Jincheng's administrator's API key (creates the campaign).
    pub city_key: String,
    /// The identity provider's signing key (mints the residents' tokens).
    pub idp_key: SigningKey,
    /// The service's Redis.
    pub redis_url: String,
    /// The service's Redis key prefix (`vp`).
    pub redis_prefix: String,
    /// The service's database.
    pub pg_url: String,
    /// The service's process id, to read its memory (`None` when it is not a process of its
    /// own, e.g. in tests).
    pub pid: Option<u32>,
    /// The service's clock now: tokens are minted and the round opens at this instant.
    pub now: DateTime<Utc>,
    /// How long to wait for the outbox to drain after the run.
    pub drain_timeout: Duration,
}

/// A reply turned into an outcome: 201 is a claim; the two expected 409s are refusals;
/// anything else (a replay, another code, a 5xx) is an error.
fn outcome(reply: Result<Reply>) -> Outcome {
    match reply {
        Ok(r) if r.status.as_u16() == 201 => Outcome::Success(CLAIMED),
        Ok(r) => match r.code() {
            Some(code) => refusal(code),
            None => Outcome::Error(format!("HTTP_{}", r.status.as_u16())),
        },
        Err(_) => Outcome::Error("TRANSPORT_ERROR".to_owned()),
    }
}

fn expect_created(reply: Reply, what: &str) -> Result<i64> {
    if !reply.status.is_success() {
        bail!("{what} failed: {} {}", reply.status, reply.body);
    }
    reply
        .body
        .get("id")
        .and_then(Value::as_i64)
        .with_context(|| format!("{what}: no id"))
}

/// Creates the benchmark's program and claim campaign (one round opening at `opens`) and
/// returns the campaign id.
///
/// # Errors
/// The service refused or failed.
pub async fn create_campaign(
    api: &IssuanceClient,
    target: &RushTarget,
    w: &Workload,
    opens: DateTime<Utc>,
) -> Result<i64> {
    let off: i64 = 2_000;
    let budget = i64::from(w.stock) * off;
    let program = api
        .post_json(
            "/v1/admin/programs",
            Auth::ApiKey(&target.province_key),
            &json!({
                "name": "benchmark program", "funder_place": PROVINCE, "province_ratio_bp": 5000,
                "pool": budget * 2, "refund_policy": "restore"
            }),
        )
        .await?;
    let program = expect_created(program, "creating the benchmark program")?;
    let campaign = api
        .post_json("/v1/admin/campaigns", Auth::ApiKey(&target.city_key), &json!({
            "program_id": program, "name": "benchmark rush 满100减20", "owner_place": CITY,
            "category": "catering", "rule": {"type": "threshold", "min_spend": 10_000, "off": off},
            "stock": w.stock, "per_person_limit": w.per_person_limit,
            "rounds": [{"round_no": 1, "starts_at": opens, "quantity": w.stock}],
            "validity": {"days_after_claim": 7}, "budget": budget,
            "eligibility": {"places": [CITY], "min_real_name_level": 2}, "distribution": "claim"
        }))
        .await?;
    expect_created(campaign, "creating the benchmark campaign")
}

/// Waits until the campaign's outbox is empty (everything claimed is in PostgreSQL).
///
/// # Errors
/// Redis failed, or the outbox did not drain within `timeout`.
pub async fn wait_drained(hot: &HotStore, campaign: CampaignId, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let counters = hot
            .counters(campaign)
            .await
            .context("reading the counters")?;
        if counters.is_some_and(|c| c.outbox_len == 0) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the outbox of campaign {campaign} did not drain within {timeout:?}: {counters:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the rush and checks the invariants.
///
/// # Errors
/// Setting up failed (the service refused the campaign, a store is unreachable), or the
/// outbox did not drain. A broken invariant is not an error here: it is in the report.
pub async fn run(target: &RushTarget, w: &Workload) -> Result<ScenarioReport> {
    let api = IssuanceClient::new(&target.base_url, w.pace.concurrency())?;
    api.wait_ready(Duration::from_secs(60)).await?;
    let campaign = create_campaign(&api, target, w, target.now).await?;
    let home = PlaceCode::try_from(CITY).context("place")?;
    let people = residents::mint_bench(&target.idp_key, w.residents, home, target.now)?;
    let attempts: Vec<Resident> = people
        .iter()
        .flat_map(|r| std::iter::repeat_n(r.clone(), w.devices))
        .collect();
    drop(people);
    let hot = HotStore::connect(&target.redis_url, &target.redis_prefix)
        .await
        .context("connecting to redis")?;
    let memory_before = probe::redis_used_memory(&target.redis_url).await?;
    let sampler = target.pid.map(RssSampler::start);

    let client = api.clone();
    let summary = drive(attempts, w.pace, w.deadline(), move |r: &Resident| {
        let client = client.clone();
        let token = r.token.clone();
        async move { outcome(client.claim(&token, campaign, uuid::Uuid::new_v4()).await) }
    })
    .await;
    let rss = match sampler {
        Some(s) => Some(s.finish().await?),
        None => None,
    };

    let id = CampaignId(campaign);
    wait_drained(&hot, id, target.drain_timeout).await?;
    let memory_after = probe::redis_used_memory(&target.redis_url).await?;
    let completed = summary.requests == u64::try_from(w.attempts()).unwrap_or(u64::MAX);
    let counters = hot
        .counters(id)
        .await?
        .context("redis forgot the campaign")?;
    let claimed = u64::try_from(counters.claimed).unwrap_or(0);

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&target.pg_url)
        .await
        .context("connecting to the service's database")?;
    let (in_pg, over_limit) = crate::scenario::baseline_pg::voucher_counts(
        &pool,
        "vouchers",
        campaign,
        w.per_person_limit,
    )
    .await?;
    pool.close().await;

    let mut inv = Invariants::default();
    if completed {
        inv.equal(
            "redis claimed = min(stock, demand)",
            w.expected_claims(),
            claimed,
        );
    } else {
        inv.holds(
            "redis claimed ≤ stock",
            claimed <= u64::from(w.stock),
            "≤ stock",
            claimed.to_string(),
        );
    }
    inv.equal("postgres vouchers = redis claimed", claimed, in_pg);
    inv.equal(
        "persons over the per-person limit (postgres)",
        0,
        over_limit,
    );
    check_common(&mut inv, &summary, claimed);
    Ok(ScenarioReport {
        scenario: Scenario::Rush,
        workload: *w,
        completed,
        summary,
        invariants: inv,
        redis_memory: Some(RedisMemory::new(memory_before, memory_after, claimed)),
        rss,
    })
}

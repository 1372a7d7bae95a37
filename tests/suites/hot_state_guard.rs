//! The hot-state guard (issue 13, "Redis lost its data"): a running issuance service never
//! recreates a campaign's counters from scratch after its Redis restarted EMPTY, which would
//! sell the stock again to people who already hold a voucher. Real processes: the issuance
//! app on port 0, a real `redis-server` killed -9 with its data directory deleted and
//! started again empty on the same port, a fresh PostgreSQL database, and the rebuild run
//! in-process as an operator would run `reconciliation rebuild`, with issuance still up.

use crate::store_support::{env, Shape};
use crate::support::{release_day, spawn, Options, TestApp};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};
use uuid::Uuid;
use voucher_core::CampaignId;
use voucher_store::pg::campaigns;
use voucher_store::StoreError;

/// A claim's status, code, `Retry-After` and body.
struct Answer {
    status: u16,
    code: String,
    retry_after: Option<String>,
    body: Value,
}

async fn claim(app: &TestApp, person: &str, campaign: i64, claim_id: Uuid) -> Answer {
    let r = app
        .at(Method::POST, &format!("/v1/campaigns/{campaign}/claims"))
        .bearer_auth(app.resident(person, 140500, 2))
        .json(&serde_json::json!({ "claim_id": claim_id }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = r.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        code: body["code"].as_str().unwrap_or("").to_owned(),
        retry_after,
        body,
    }
}

/// `/readyz`: status and body.
async fn readyz(app: &TestApp) -> (u16, Value) {
    let r = app.send(app.at(Method::GET, "/readyz")).await;
    (r.status, r.body)
}

/// Polls `/readyz` until it answers `status` (the reload runs every 500 ms), for at most
/// 30 s.
async fn wait_readyz(app: &TestApp, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (now, body) = readyz(app).await;
        if now == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {now}, not {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metrics(app: &TestApp) -> String {
    app.at(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Whether Redis holds the campaign hash at all.
async fn hash_exists(app: &TestApp, campaign: i64) -> bool {
    let mut raw = redis::Client::open(app.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let n: i64 = redis::cmd("EXISTS")
        .arg(format!("vp:{{c{campaign}}}:c"))
        .query_async(&mut raw)
        .await
        .unwrap();
    n == 1
}

/// Redis loses everything: `kill -9`, its data directory deleted, started again empty on
/// the same port (the service's connection reconnects by itself).
fn lose_redis(app: &mut TestApp) {
    app.redis.kill9_and_wipe();
    app.redis.restart();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_empty_claims_wait_for_the_rebuild_then_resume_with_the_right_stock_and_limits(
) {
    // Arrange: stock 10, two per person. A holds two vouchers, B and C one each: 4 claimed,
    // all persisted.
    let mut app = spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app.catering_campaign(10, 2, &[(opens, 10)], 7).await;
    app.clock.set(opens);
    let a_first = Uuid::new_v4();
    let mut first_voucher = String::new();
    for (person, claim_id) in [
        ("A0001", a_first),
        ("A0001", Uuid::new_v4()),
        ("B0001", Uuid::new_v4()),
        ("C0001", Uuid::new_v4()),
    ] {
        let r = claim(&app, person, campaign, claim_id).await;
        assert_eq!(r.status, 201, "{person}: {}", r.body);
        if claim_id == a_first {
            first_voucher = r.body["voucher_id"].as_str().unwrap().to_owned();
        }
    }
    app.wait_persisted().await;
    assert_eq!(app.count("SELECT count(*) FROM vouchers").await, 4);
    assert_eq!(wait_readyz(&app, 200).await["status"], "ready");

    // Act: Redis loses its data while issuance runs.
    lose_redis(&mut app);

    // Assert: every claim is refused with HOT_STATE_LOST and Retry-After — a person at the
    // limit, a newcomer, and a retry of an acknowledged claim — and nothing is recreated.
    for (person, claim_id) in [
        ("A0001", Uuid::new_v4()),
        ("D0001", Uuid::new_v4()),
        ("A0001", a_first),
    ] {
        let r = claim(&app, person, campaign, claim_id).await;
        assert_eq!(
            (r.status, r.code.as_str()),
            (503, "HOT_STATE_LOST"),
            "{person}: {}",
            r.body
        );
        assert_eq!(r.body["details"]["campaign_id"], campaign);
        let wait: u64 = r.retry_after.expect("Retry-After").parse().unwrap();
        assert!(wait >= 1);
    }
    // The periodic reload does not recreate it either (run here once more, in-process).
    app.state.refresh_campaigns().await.unwrap();
    assert!(
        !hash_exists(&app, campaign).await,
        "the campaign's counters were recreated"
    );
    assert_eq!(
        app.state.hot.counters(CampaignId(campaign)).await.unwrap(),
        None
    );
    // The replica leaves the load balancer and says why; the gauge pages.
    let body = wait_readyz(&app, 503).await;
    assert_eq!(body["dependencies"]["hot_state"]["status"], "unavailable");
    let why = body["dependencies"]["hot_state"]["error"].as_str().unwrap();
    assert!(
        why.contains(&campaign.to_string()) && why.contains("reconciliation rebuild"),
        "{why}"
    );
    assert_eq!(body["dependencies"]["redis"]["status"], "ok");
    let text = metrics(&app).await;
    assert!(
        text.contains(&format!(
            "issuance_hot_state_lost{{campaign=\"{campaign}\"}} 1"
        )),
        "{text}"
    );
    // Nobody got a second voucher: PostgreSQL still holds exactly the 4.
    assert_eq!(app.count("SELECT count(*) FROM vouchers").await, 4);

    // Act: the operator rebuilds from PostgreSQL, issuance still running.
    let report = reconciliation::rebuild::rebuild(&app.db.pool, &app.state.hot, app.clock_now())
        .await
        .unwrap();
    assert_eq!((report.campaigns, report.claims, report.persons), (1, 4, 3));

    // Assert: claims resume without a restart, with the record's counts. A's retry gets the
    // first voucher back; A is at the limit; B may claim one more; 5 are left for others.
    let r = claim(&app, "A0001", campaign, a_first).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["voucher_id"], first_voucher.as_str());
    assert_eq!(r.body["replayed"], true);
    let r = claim(&app, "A0001", campaign, Uuid::new_v4()).await;
    assert_eq!((r.status, r.code.as_str()), (409, "PER_PERSON_LIMIT"));
    let r = claim(&app, "B0001", campaign, Uuid::new_v4()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut sold = 0;
    for i in 0..8 {
        let r = claim(&app, &format!("N{i:04}"), campaign, Uuid::new_v4()).await;
        match (r.status, r.code.as_str()) {
            (201, _) => sold += 1,
            (409, "SOLD_OUT") => {}
            other => panic!("unexpected answer {other:?}: {}", r.body),
        }
    }
    assert_eq!(sold, 5, "the campaign sells out exactly at its stock");
    assert_eq!(wait_readyz(&app, 200).await["status"], "ready");
    assert!(metrics(&app).await.contains(&format!(
        "issuance_hot_state_lost{{campaign=\"{campaign}\"}} 0"
    )));

    // The record agrees: exactly the stock, nobody over the limit.
    app.wait_persisted().await;
    assert_eq!(app.count("SELECT count(*) FROM vouchers").await, 10);
    assert_eq!(
        app.count(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM vouchers GROUP BY person_id) t"
        )
        .await,
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM vouchers WHERE person_id = 'B0001'")
            .await,
        2
    );
    let counters = app
        .state
        .hot
        .counters(CampaignId(campaign))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((counters.claimed, counters.live, counters.pool), (10, 0, 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brand_new_campaign_is_created_once_and_claims_normally_even_while_another_is_lost() {
    // Arrange: campaign X with one persisted voucher; then Redis loses its data.
    let mut app = spawn(Options::default()).await;
    let opens = release_day();
    let x = app.catering_campaign(5, 1, &[(opens, 5)], 7).await;
    app.clock.set(opens);
    assert_eq!(claim(&app, "X0001", x, Uuid::new_v4()).await.status, 201);
    app.wait_persisted().await;
    lose_redis(&mut app);

    // Act: a campaign created by an administrator after the loss, and one that reaches
    // issuance only through the record (the periodic reload).
    let y = app.catering_campaign(3, 1, &[(opens, 3)], 7).await;
    let spec = campaigns::get(&app.db.pool, CampaignId(y))
        .await
        .unwrap()
        .unwrap()
        .spec;
    let z = campaigns::create(&app.db.pool, &spec).await.unwrap().id.0;
    app.state.refresh_campaigns().await.unwrap();

    // Assert: the new ones are created at their stock and claim normally; X stays lost.
    for campaign in [y, z] {
        assert_eq!(
            claim(&app, "Y0001", campaign, Uuid::new_v4()).await.status,
            201,
            "campaign {campaign}"
        );
        let c = app
            .state
            .hot
            .counters(CampaignId(campaign))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.total, c.claimed), (3, 1), "campaign {campaign}");
        assert!(
            campaigns::is_hot_created(&app.db.pool, CampaignId(campaign))
                .await
                .unwrap(),
            "campaign {campaign} is marked created"
        );
    }
    let r = claim(&app, "X0002", x, Uuid::new_v4()).await;
    assert_eq!((r.status, r.code.as_str()), (503, "HOT_STATE_LOST"));
    assert!(!hash_exists(&app, x).await);
    app.stop().await;
}

#[tokio::test]
async fn the_store_creates_a_campaigns_counters_only_for_the_one_caller_that_takes_the_marker() {
    // Arrange: a campaign synced into Redis (the store's test environment creates it).
    let e = env(Shape::rush(10, 1)).await;
    let id = e.campaign.id;
    let pool = &e.db.pool;

    // The marker is taken exactly once.
    assert!(!campaigns::is_hot_created(pool, id).await.unwrap());
    assert!(campaigns::take_hot_creation(pool, id).await.unwrap());
    assert!(!campaigns::take_hot_creation(pool, id).await.unwrap());
    assert!(campaigns::is_hot_created(pool, id).await.unwrap());
    assert!(campaigns::hot_created(pool).await.unwrap().contains(&id));

    // An existing campaign syncs without creation.
    e.hot.sync_created_campaign(&e.campaign).await.unwrap();

    // After a flush, a sync that may not create answers HotStateLost and writes nothing.
    let mut raw = e.raw_redis().await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
    let lost = e.hot.sync_created_campaign(&e.campaign).await;
    assert!(
        matches!(lost, Err(StoreError::HotStateLost { campaign }) if campaign == id),
        "{lost:?}"
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

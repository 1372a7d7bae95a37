//! The shared plumbing under everyday faults: a Redis killed and restarted under the
//! redemption service, PostgreSQL stopped under both services, a dependency down at
//! shutdown, and what the logs say meanwhile. Each test drives the real services over real
//! connections to a Redis and a PostgreSQL it stops itself.

use crate::redemption_support::{self as rdm, spawn_in as spawn_redemption_in};
use crate::support::{release_day, spawn_in as spawn_issuance_in, Options};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use system_tests::TestPostgres;
use uuid::Uuid;
use voucher_core::{Category, Fen, RefundPolicy};

fn big() -> Fen {
    Fen::from_yuan(100_000_000).unwrap()
}

/// `Retry-After` of a response, if any.
fn retry_after(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A signed terminal request: status, `Retry-After` and body, and how long it took.
async fn timed_call(
    app: &rdm::TestApp,
    term: &rdm::Term,
    path: &str,
    body: Option<Value>,
) -> (u16, Option<u64>, Value, Duration) {
    let bytes = body
        .as_ref()
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let method = if body.is_some() { "POST" } else { "GET" };
    let mut req = app.signed(term, method, path, &bytes);
    if body.is_some() {
        req = req.header("idempotency-key", Uuid::new_v4().to_string());
    }
    let started = Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(30), req.send())
        .await
        .expect("an answer within 30 s, not a hang")
        .unwrap();
    let status = resp.status().as_u16();
    let retry = retry_after(&resp);
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, retry, body, started.elapsed())
}

/// `GET /readyz`: status and body.
async fn readyz(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let resp = http.get(format!("{base}/readyz")).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Redis killed with SIGKILL under the redemption service, a terminal request while it is
/// down (a prompt 503 with `Retry-After`), Redis restarted on its append-only file: the
/// terminals are served again within seconds and readiness comes back, with no restart of
/// the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_till_is_served_again_within_seconds_after_redemption_s_redis_is_killed_and_restarted() {
    let mut app = rdm::spawn().await;
    let campaign = app.catering(RefundPolicy::Restore, big()).await;
    let term = app
        .merchant(
            "m-heal",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let day = "/v1/redemptions?date=2026-05-01";
    let (status, _, body, _) = timed_call(&app, &term, day, None).await;
    assert_eq!(status, 200, "{body}");

    app.redis.kill9();
    let (status, retry, body, took) = timed_call(&app, &term, day, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE", "{body}");
    assert!(retry.is_some(), "a 503 says when to retry");
    assert!(
        took < Duration::from_secs(5),
        "failed fast, not after {took:?}"
    );
    let (status, body) = readyz(&app.http, &app.base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["dependencies"]["redis"]["status"], "unavailable",
        "{body}"
    );

    app.redis.restart();
    let restarted = Instant::now();
    let healed = loop {
        let (status, _, _, _) = timed_call(&app, &term, day, None).await;
        if status == 200 {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "no terminal request served within 10 s of Redis coming back (last {status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("redemption served a terminal {healed:?} after Redis came back");
    let (status, body) = readyz(&app.http, &app.base).await;
    assert_eq!(status, 200, "{body}");
    let voucher = app.voucher(&campaign, "alice");
    let (status, body) = app.redeem(&term, &app.code(&voucher), 150_00).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    app.stop().await;
}

/// PostgreSQL stopped (fast shutdown: its sessions terminated) under the redemption service:
/// every checkout gets a prompt 503 with `Retry-After` — never a 500, never a hang — and
/// readiness says PostgreSQL is down; once it is back, checkouts are approved again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkouts_during_a_postgres_outage_are_503s_with_retry_after_and_heal_after_it() {
    let pg = TestPostgres::launch();
    let app = spawn_redemption_in(pg.fresh_db().await, |s| {
        s.server.request_timeout_ms = 3_000;
        s.postgres.acquire_timeout_ms = 1_000;
    })
    .await;
    let campaign = app.catering(RefundPolicy::Restore, big()).await;
    let term = app
        .merchant(
            "m-pg",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let first = app.voucher(&campaign, "p0");
    let (status, body) = app.redeem(&term, &app.code(&first), 150_00).await;
    assert_eq!(body["outcome"], "approved", "{status} {body}");

    pg.stop();
    let answers = futures::future::join_all((1..=8).map(|i| {
        let voucher = app.voucher(&campaign, &format!("p{i}"));
        let body = json!({
            "code": app.code(&voucher), "order_amount_fen": 150_00,
            "order_ref": format!("o-{}", Uuid::new_v4().simple()),
        });
        let term = term.clone();
        let app = &app;
        async move { timed_call(app, &term, "/v1/redemptions", Some(body)).await }
    }))
    .await;
    for (status, retry, body, took) in &answers {
        assert_eq!(*status, 503, "{body}");
        assert!(retry.is_some(), "{body}");
        assert!(took < &Duration::from_secs(5), "answered in {took:?}");
    }
    let (status, body) = readyz(&app.http, &app.base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["dependencies"]["postgres"]["status"], "unavailable",
        "{body}"
    );

    pg.start();
    let back = Instant::now();
    let voucher = app.voucher(&campaign, "after");
    loop {
        let (status, body) = app.redeem(&term, &app.code(&voucher), 150_00).await;
        if body["outcome"] == "approved" {
            break;
        }
        assert_eq!(status, 503, "only 503s while reconnecting: {body}");
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "no approval after PostgreSQL returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = readyz(&app.http, &app.base).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.count("redemptions").await, 2);
    app.stop().await;
}

/// PostgreSQL stopped under the issuance service: claims go on (they need only Redis), the
/// service stays ready and says it is degraded, what needs PostgreSQL answers 503 with
/// `Retry-After`, and the persister writes every claim once PostgreSQL is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issuance_stays_ready_and_claims_through_a_postgres_outage() {
    let pg = TestPostgres::launch();
    let app = spawn_issuance_in(
        Options {
            request_timeout_ms: Some(3_000),
            ..Options::default()
        },
        pg.fresh_db().await,
    )
    .await;
    let opens = release_day();
    let campaign = app.catering_campaign(100, 1, &[(opens, 100)], 7).await;
    app.clock.set(opens);
    // The campaign cache is loaded before the outage.
    tokio::time::sleep(Duration::from_millis(700)).await;

    pg.stop();
    let mut claimed = 0;
    for i in 0..20 {
        let token = app.resident(&format!("Q{i:04}"), 140500, 2);
        let r = app.claim(&token, campaign, Uuid::new_v4()).await;
        assert_eq!(r.status, 201, "a claim during the outage: {:?}", r.body);
        claimed += 1;
    }
    let resp = app.at(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "ready: claims still work");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(
        body["dependencies"]["postgres"]["status"], "unavailable",
        "{body}"
    );
    assert_eq!(body["dependencies"]["redis"]["status"], "ok", "{body}");
    let started = Instant::now();
    let resp = app
        .at(Method::GET, "/v1/admin/programs")
        .header("x-api-key", &app.secrets.province_admin.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(retry_after(&resp).is_some());
    assert!(started.elapsed() < Duration::from_secs(5));
    let metrics = app
        .at(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("issuance_dependency_up{dependency=\"postgres\"} 0"),
        "the degraded dependency is in the metrics"
    );

    pg.start();
    app.wait_persisted().await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM vouchers WHERE campaign_id = {campaign}"
        ))
        .await,
        claimed
    );
    app.stop().await;
}

/// Redis down under the issuance service: a claim is refused at once with a 503 and
/// `Retry-After` (retry with the same claim id), not held for as long as Redis is away.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_while_redis_is_down_fails_fast_with_retry_after() {
    let mut app = crate::support::spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app.catering_campaign(10, 1, &[(opens, 10)], 7).await;
    app.clock.set(opens);
    app.redis.kill9();
    let token = app.resident("R000001", 140500, 2);
    let claim_id = Uuid::new_v4();
    let started = Instant::now();
    let resp = tokio::time::timeout(
        Duration::from_secs(30),
        app.at(Method::POST, &format!("/v1/campaigns/{campaign}/claims"))
            .bearer_auth(&token)
            .json(&json!({ "claim_id": claim_id }))
            .send(),
    )
    .await
    .expect("no hang")
    .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(retry_after(&resp).is_some());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed fast, not after {:?}",
        started.elapsed()
    );
    app.redis.restart();
    let back = Instant::now();
    loop {
        let r = app.claim(&token, campaign, claim_id).await;
        if r.status == 201 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(10), "{:?}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

//! The services as the operator runs them — binaries, JSON logs at the default level,
//! SIGTERM — under client mistakes and a dependency that goes away: a client's mistake is
//! never an ERROR line, no line carries a backtrace, and the stop finishes within the
//! configured timeout even with Redis down.

use crate::redemption_support::{self as rdm};
use serde_json::{json, Value};
use std::time::Duration;
use system_tests::{fresh_db, ServiceProcess, TestRedis};
use uuid::Uuid;
use voucher_core::{Category, Fen, RefundPolicy};

/// The bound the tests give the stop (`server.shutdown_timeout_secs`).
const SHUTDOWN_SECS: u64 = 4;

/// What the tests ask of every log: no ERROR line, no backtrace.
fn assert_quiet_log(log: &str) {
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(errors.is_empty(), "ERROR lines:\n{}", errors.join("\n"));
    assert!(
        !log.to_ascii_lowercase().contains("backtrace"),
        "a backtrace in the log:\n{log}"
    );
}

/// Environment that makes every error capture a backtrace, if anything would print one.
fn with_backtraces(mut env: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    env.push(("RUST_BACKTRACE", "1".into()));
    env.push(("RUST_LIB_BACKTRACE", "1".into()));
    env.push((
        "APP__SERVER__SHUTDOWN_TIMEOUT_SECS",
        SHUTDOWN_SECS.to_string(),
    ));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redemption_logs_no_error_for_client_mistakes_and_stops_in_time_with_redis_down() {
    let mut app = rdm::spawn_process(&with_backtraces(vec![])).await;
    let key = app.secrets.jincheng_admin.key.clone();
    // Client mistakes: a bad field, an unknown merchant, no key, an unknown route.
    let (status, body) = app
        .admin_post(&key, "/v1/admin/merchants", json!({"id": "m1", "name": 5}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_FIELD")),
        "{body}"
    );
    let resp = app
        .http
        .get(app.url("/v1/admin/merchants/nobody"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = app
        .http
        .get(app.url("/v1/admin/merchants/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // An approved checkout, then its idempotency key reused with another body.
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::from_yuan(1_000_000).unwrap())
        .await;
    let term = app
        .merchant(
            "m-log",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let voucher = app.voucher(&campaign, "alice");
    let code = app.code(&voucher);
    let body = |order: &str| json!({"code": code, "order_amount_fen": 15000, "order_ref": order});
    let (status, first) = app
        .call(
            &term,
            "POST",
            "/v1/redemptions",
            Some(body("o-1")),
            Some("k-1"),
        )
        .await;
    assert_eq!(
        (status, first["outcome"].as_str()),
        (200, Some("approved")),
        "{first}"
    );
    let (status, reused) = app
        .call(
            &term,
            "POST",
            "/v1/redemptions",
            Some(body("o-2")),
            Some("k-1"),
        )
        .await;
    assert_eq!(
        (status, reused["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED")),
        "{reused}"
    );
    // An unknown redemption, read and reversed: 404s.
    let unknown = Uuid::now_v7();
    let (status, _) = app
        .call(
            &term,
            "GET",
            &format!("/v1/redemptions/{unknown}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .reverse(
            &term,
            &format!("/v1/redemptions/{unknown}/reversals"),
            json!({"reversal_ref": "r-1"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("REDEMPTION_NOT_FOUND")),
        "{body}"
    );
    // A reversal replayed under the real clock (nanoseconds; PostgreSQL keeps microseconds):
    // the first answer again, byte for byte.
    let path = format!(
        "/v1/redemptions/{}/reversals",
        first["redemption_id"].as_str().unwrap()
    );
    let reversal = serde_json::to_vec(&json!({"reversal_ref": "r-1"})).unwrap();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let resp = app
            .signed(&term, "POST", &path, &reversal)
            .send()
            .await
            .unwrap();
        answers.push((resp.status().as_u16(), resp.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert_eq!(answers[1], answers[0], "the replay is the first answer");
    // Redis goes away: a 503, logged as a warning with its cause, without a backtrace.
    app.redis.kill9();
    let (status, down) = app
        .call(&term, "GET", "/v1/redemptions?date=2026-05-01", None, None)
        .await;
    assert_eq!(status, 503, "{down}");
    // SIGTERM with Redis still down: the stop is bounded.
    app.stop().await;
    let exited = app
        .process()
        .wait_exit(Duration::from_secs(SHUTDOWN_SECS + 3));
    let log = app.process().log_text();
    assert!(exited.is_some(), "still running after SIGTERM:\n{log}");
    assert!(
        log.contains("dependency unavailable"),
        "the 503 is logged:\n{log}"
    );
    assert_quiet_log(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issuance_logs_no_error_for_client_mistakes_and_stops_in_time_with_redis_down() {
    let mut redis = TestRedis::start();
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = issuance::generate_dev_secrets(dir.path()).unwrap();
    let env = with_backtraces(vec![
        ("APP__REDIS__URL", redis.url()),
        ("APP__POSTGRES__URL", db.url.clone()),
        ("APP__SECRETS_DIR", dir.path().display().to_string()),
        ("APP__PERSISTER__BLOCK_MS", "50".into()),
        ("APP__REDIS__ACK_REPLICAS", "0".into()),
    ]);
    let mut service = ServiceProcess::serve("issuance", &env);
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", service.base);
    let token = secrets.mint(
        &voucher_core::PersonId::parse("R1").unwrap(),
        voucher_core::PlaceCode::try_from(140_500).unwrap(),
        2,
        chrono::Utc::now(),
        chrono::Duration::hours(1),
    );
    let claim = |campaign: i64, body: Value| {
        http.post(url(&format!("/v1/campaigns/{campaign}/claims")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    // Client mistakes: a bad field, an unknown campaign, no identity, a stock too large.
    let r = claim(1, json!({"claim_id": 7})).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = claim(424_242, json!({"claim_id": Uuid::new_v4()}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http.get(url("/v1/me/vouchers")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(url("/v1/admin/campaigns"))
        .header("x-api-key", &secrets.jincheng_admin.key)
        .json(&json!({"stock": 2_147_483_648_i64}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // A campaign open now, then Redis goes away: a claim is a 503 without a backtrace.
    let post = |path: &str, key: &str, body: Value| {
        http.post(url(path))
            .header("x-api-key", key)
            .json(&body)
            .send()
    };
    let program: Value = post(
        "/v1/admin/programs",
        &secrets.province_admin.key,
        json!({
        "name": "p", "funder_place": 140000, "province_ratio_bp": 5000,
        "pool": 1_000_000_000_i64, "refund_policy": "restore"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let campaign: Value = post("/v1/admin/campaigns", &secrets.jincheng_admin.key, json!({
        "program_id": program["id"], "name": "c", "owner_place": 140500, "category": "catering",
        "rule": {"type": "threshold", "min_spend": 10000, "off": 2000}, "stock": 10,
        "per_person_limit": 1, "validity": {"days_after_claim": 7}, "budget": 100000,
        "rounds": [{"round_no": 1, "starts_at": chrono::Utc::now() - chrono::Duration::minutes(1), "quantity": 10}],
        "eligibility": {"places": [], "min_real_name_level": 1}, "distribution": "claim"}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = campaign["id"].as_i64().unwrap();
    let r = claim(id, json!({"claim_id": Uuid::new_v4()}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    redis.kill9();
    let r = claim(id, json!({"claim_id": Uuid::new_v4()}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    // SIGTERM with Redis down: HTTP drain and background tasks within the bound.
    service.terminate();
    let exited = service.wait_exit(Duration::from_secs(SHUTDOWN_SECS + 3));
    let log = service.log_text();
    assert!(exited.is_some(), "still running after SIGTERM:\n{log}");
    assert_quiet_log(&log);
}

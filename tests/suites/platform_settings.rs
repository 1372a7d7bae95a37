//! One setting, one key, for both services: `dynamic_code.step_secs` changed once (one
//! environment for both) makes the issuance service draw codes and the redemption service
//! accept them with the same step; and the redemption service runs and redeems with a
//! secrets directory that holds no private key at all.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use system_tests::{fresh_db, TestRedis};
use uuid::Uuid;
use voucher_core::{Clock, ManualClock, PersonId, PlaceCode};
use voucher_platform::secrets::{ADMIN_KEYS, DYNAMIC_CODE_SECRET, TERMINAL_KEK, VOUCHER_PUBLIC};
use voucher_platform::settings::ServiceSettings as _;

/// 2026-05-01 02:00:00 UTC, a whole minute: codes are drawn at the start of a step.
fn opens() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0).single().unwrap()
}

async fn post(http: &reqwest::Client, url: String, key: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_setting_sets_the_dynamic_code_step_of_both_services_and_redemption_holds_no_private_key(
) {
    // Arrange: both services from ONE environment that changes the step to 60 s.
    let env = vec![("APP__DYNAMIC_CODE__STEP_SECS".to_owned(), "60".to_owned())];
    let mut iss = issuance::Settings::load_from(None, Some(env.clone())).unwrap();
    let mut rdm = redemption::Settings::load_from(None, Some(env)).unwrap();
    assert_eq!(
        (iss.dynamic_code.step_secs, rdm.dynamic_code.step_secs),
        (60, 60)
    );
    let redis = TestRedis::start();
    let db = fresh_db().await;
    let issuance_dir = tempfile::tempdir().unwrap();
    let secrets = issuance::generate_dev_secrets(issuance_dir.path()).unwrap();
    // The redemption service's directory: only the public keys, the dynamic-code secret,
    // the hashed administrators' keys and the key-encryption key of terminal secrets.
    let redemption_dir = tempfile::tempdir().unwrap();
    for file in [
        VOUCHER_PUBLIC,
        DYNAMIC_CODE_SECRET,
        ADMIN_KEYS,
        TERMINAL_KEK,
    ] {
        std::fs::copy(
            issuance_dir.path().join(file),
            redemption_dir.path().join(file),
        )
        .unwrap();
    }
    let files: Vec<String> = std::fs::read_dir(redemption_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files
            .iter()
            .all(|f| !f.contains("signing") && !f.contains("plain")),
        "{files:?}"
    );
    for s in [&mut iss.server, &mut rdm.server] {
        s.port = 0;
        s.workers = Some(2);
    }
    iss.redis.url = redis.url().into();
    iss.redis.ack_replicas = 0; // a lone test Redis: no replica to wait for
    rdm.redis.url = redis.url().into();
    iss.postgres.url = db.url.clone().into();
    rdm.postgres.url = db.url.clone().into();
    iss.secrets_dir = issuance_dir.path().to_path_buf();
    rdm.secrets_dir = redemption_dir.path().to_path_buf();
    iss.persister.block_ms = 50;
    iss.expiry.enabled = false;
    rdm.holds.sweep_interval_secs = 0;
    let clock = ManualClock::new(opens() - Duration::minutes(5));
    let issuance_app = issuance::Application::build(iss, Arc::new(clock.clone()))
        .await
        .unwrap();
    let redemption_app = redemption::Application::build(rdm, Arc::new(clock.clone()))
        .await
        .unwrap();
    let iss_url = format!("http://127.0.0.1:{}", issuance_app.port());
    let rdm_url = format!("http://127.0.0.1:{}", redemption_app.port());
    let (iss_stop, rdm_stop) = (
        issuance_app.shutdown_handle(),
        redemption_app.shutdown_handle(),
    );
    tokio::spawn(issuance_app.run_until_stopped());
    tokio::spawn(redemption_app.run_until_stopped());
    let http = reqwest::Client::new();
    let province = secrets.province_admin.key.clone();
    let jincheng = secrets.jincheng_admin.key.clone();
    let (status, program) = post(
        &http,
        format!("{iss_url}/v1/admin/programs"),
        &province,
        json!({
        "name": "p", "funder_place": 140000, "province_ratio_bp": 5000, "pool": 10_000_000_000_i64,
        "refund_policy": "restore"}),
    )
    .await;
    assert_eq!(status, 201, "{program}");
    let (status, campaign) = post(&http, format!("{iss_url}/v1/admin/campaigns"), &jincheng, json!({
        "program_id": program["id"], "name": "晋城餐饮券", "owner_place": 140500, "category": "catering",
        "rule": {"type": "threshold", "min_spend": 10000, "off": 2000}, "stock": 10, "per_person_limit": 1,
        "rounds": [{"round_no": 1, "starts_at": opens(), "quantity": 10}], "validity": {"days_after_claim": 7},
        "budget": 1_000_000, "eligibility": {"places": [], "min_real_name_level": 1}, "distribution": "claim"})).await;
    assert_eq!(status, 201, "{campaign}");
    let credit = {
        let head = "91140500MA0K12345";
        format!(
            "{head}{}",
            voucher_core::CreditCode::check_char(head).unwrap()
        )
    };
    let (status, merchant) = post(&http, format!("{rdm_url}/v1/admin/merchants"), &jincheng, json!({
        "id": "m-step", "name": "饭店", "credit_code": credit, "category": "catering", "city": 140500,
        "settlement_account": "ICBC-1"})).await;
    assert_eq!(status, 201, "{merchant}");
    let (status, _) = post(
        &http,
        format!("{rdm_url}/v1/admin/merchants/m-step/approvals"),
        &jincheng,
        json!({"program_id": program["id"]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, term) = post(
        &http,
        format!("{rdm_url}/v1/admin/merchants/m-step/terminals"),
        &jincheng,
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{term}");

    // Act: claim at the issuance service and draw the code at the start of a step…
    clock.set(opens());
    let token = secrets.mint(
        &PersonId::parse("alice").unwrap(),
        PlaceCode::try_from(140_500).unwrap(),
        2,
        clock.now(),
        Duration::hours(2),
    );
    let claimed: Value = http
        .post(format!("{iss_url}/v1/campaigns/{}/claims", campaign["id"]))
        .bearer_auth(&token)
        .json(&json!({"claim_id": Uuid::new_v4()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let voucher = claimed["voucher_id"].as_str().unwrap().to_owned();
    let code = loop {
        let r = http
            .get(format!("{iss_url}/v1/me/vouchers/{voucher}/code"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 200 {
            break r.json::<Value>().await.unwrap();
        }
        // The voucher list is the record: wait for the persister.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(code["step_secs"], 60);
    // …and present it 70 s later: one 60-s step on (accepted), but two 30-s steps on
    // (refused as stale by a service still on the old step).
    clock.advance(Duration::seconds(70));
    let body = serde_json::to_vec(&json!({
        "code": code["code"], "order_amount_fen": 15000, "order_ref": "o-1"
    }))
    .unwrap();
    let headers = voucher_core::signing::sign_request(
        term["key_id"].as_str().unwrap(),
        term["secret"].as_str().unwrap(),
        "POST",
        "/v1/redemptions",
        clock.now().timestamp(),
        &body,
    )
    .unwrap();
    let mut req = http
        .post(format!("{rdm_url}/v1/redemptions"))
        .header("content-type", "application/json")
        .header("idempotency-key", "k-1")
        .body(body);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let answer: Value = req.send().await.unwrap().json().await.unwrap();

    // Assert: approved by a redemption service that holds no private key.
    assert_eq!(answer["outcome"], "approved", "{answer}");
    assert_eq!(answer["discount_fen"], 2000, "{answer}");
    iss_stop.stop().await;
    rdm_stop.stop().await;
}

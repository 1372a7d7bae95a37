//! Black-box tests of the issuance service's HTTP edge: error bodies, authentication,
//! rate limits and the operations endpoints, over real HTTP against the real app (private
//! Redis, fresh database). The claim flows are covered by the workspace's system tests.
use crate::issuance_http_support::{json_of, spawn_with};
use chrono::Duration;
use issuance::settings::Settings;
use serde_json::json;
use voucher_core::keys::SigningKey;
use voucher_core::{Clock, PersonId, PlaceCode};
use voucher_platform::settings::ServiceSettings as _;

fn assert_error(status: u16, body: &serde_json::Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["type"].is_string(), "{body}");
}

#[tokio::test]
async fn malformed_oversize_and_misrouted_requests_get_json_errors_with_a_request_id() {
    let app = spawn_with(|s| s.server.json_limit_bytes = 1024).await;
    let token = app.resident("R000001");
    let claims = app.url("/v1/campaigns/1/claims");

    let resp = app
        .http
        .post(&claims)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"claim_id\": ")
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    let (status, body) = json_of(resp).await;
    assert_error(status, &body, 400, "MALFORMED_JSON");
    assert_eq!(body["type"], "invalid_request");

    let (status, body) = json_of(
        app.http
            .post(&claims)
            .bearer_auth(&token)
            .json(&json!({"claim_id": 42}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 400, "INVALID_FIELD");
    assert_eq!(
        body["details"]["field"], "claim_id",
        "the message names the field: {body}"
    );

    let big = json!({"claim_id": uuid::Uuid::new_v4(), "pad": "x".repeat(4096)});
    let (status, body) = json_of(
        app.http
            .post(&claims)
            .bearer_auth(&token)
            .json(&big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 413, "PAYLOAD_TOO_LARGE");

    let (status, body) = json_of(
        app.http
            .post(&claims)
            .bearer_auth(&token)
            .header("content-type", "text/plain")
            .body("hi")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 415, "UNSUPPORTED_MEDIA_TYPE");

    let (status, body) = json_of(app.http.get(app.url("/v1/nowhere")).send().await.unwrap()).await;
    assert_error(status, &body, 404, "NOT_FOUND");

    let (status, body) = json_of(
        app.http
            .get(app.url("/v1/admin/campaigns/abc"))
            .header("x-api-key", &app.secrets.province_admin.key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 400, "INVALID_FIELD");
    app.stop().await;
}

#[tokio::test]
async fn residents_without_a_valid_identity_are_refused() {
    let app = spawn_with(|_| {}).await;
    let list = app.url("/v1/campaigns");
    let now = app.clock.now();
    let person = PersonId::parse("R000002").unwrap();
    let home = PlaceCode::try_from(140_500).unwrap();

    let (status, body) = json_of(app.http.get(&list).send().await.unwrap()).await;
    assert_error(status, &body, 401, "MISSING_IDENTITY");
    let (status, body) = json_of(
        app.http
            .get(&list)
            .header("authorization", "Basic abc")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 401, "MISSING_IDENTITY");

    let expired = app.secrets.mint(
        &person,
        home,
        2,
        now - Duration::hours(2),
        Duration::hours(1),
    );
    let (status, body) = json_of(
        app.http
            .get(&list)
            .bearer_auth(&expired)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 401, "IDENTITY_EXPIRED");

    let stranger = SigningKey::generate(app.secrets.idp_signing.kid()).unwrap();
    let forged =
        issuance::cli::keys::mint_identity(&stranger, &person, home, 2, now, Duration::hours(1));
    let (status, body) = json_of(
        app.http
            .get(&list)
            .bearer_auth(&forged)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 401, "IDENTITY_INVALID");

    let (status, body) = json_of(
        app.http
            .get(&list)
            .bearer_auth("garbage")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 401, "IDENTITY_INVALID");

    let good = app.resident("R000002");
    let (status, body) =
        json_of(app.http.get(&list).bearer_auth(&good).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!([]), "no campaigns yet");
    app.stop().await;
}

#[tokio::test]
async fn administrators_need_a_known_key_and_the_right_role() {
    let app = spawn_with(|_| {}).await;
    let programs = app.url("/v1/admin/programs");
    let (status, body) = json_of(app.http.get(&programs).send().await.unwrap()).await;
    assert_error(status, &body, 401, "MISSING_API_KEY");
    let (status, body) = json_of(
        app.http
            .get(&programs)
            .header("x-api-key", "vpk_wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 401, "API_KEY_INVALID");
    let bearer_is_not_a_key = app.resident("R000003");
    let (status, body) = json_of(
        app.http
            .get(&programs)
            .bearer_auth(bearer_is_not_a_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 401, "MISSING_API_KEY");

    let spec = json!({"name": "p", "funder_place": 140000, "province_ratio_bp": 5000, "pool": 100, "refund_policy": "restore"});
    let city = &app.secrets.jincheng_admin.key;
    let (status, body) = json_of(
        app.http
            .post(&programs)
            .header("x-api-key", city)
            .json(&spec)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 403, "FORBIDDEN_ROLE");

    let province = &app.secrets.province_admin.key;
    let (status, body) = json_of(
        app.http
            .get(&programs)
            .header("x-api-key", province)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!([])));
    app.stop().await;
}

#[tokio::test]
async fn one_address_over_its_limit_gets_429_with_retry_after() {
    let app = spawn_with(|s| {
        s.rate_limits.ip_per_second = 1;
        s.rate_limits.ip_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
        if resp.status() == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let (_, body) = json_of(resp).await;
            assert_eq!(body["code"], "RATE_LIMITED");
            statuses.push(429);
        } else {
            statuses.push(resp.status().as_u16());
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    assert_eq!(retry_after.as_deref(), Some("1"));
    app.stop().await;
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_with(|_| {}).await;
    let (status, body) = json_of(app.http.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = json_of(app.http.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );

    let (status, body) = json_of(app.http.get(app.url("/v1/keys")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["kid"], 1);
    assert_eq!(
        body[0]["public_key"],
        app.secrets.voucher_signing.public_key().public_key
    );

    let (status, doc) = json_of(app.http.get(app.url("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/v1/campaigns/{id}/claims"]["post"].is_object());

    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("issuance_http_requests_total{route=\"/healthz\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("issuance_claims_total"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn settings_from_the_environment_reach_the_running_app() {
    let env = vec![
        ("APP__SERVER__JSON_LIMIT_BYTES".to_owned(), "100".to_owned()),
        ("APP__SERVER__PORT".to_owned(), "0".to_owned()),
    ];
    let loaded = Settings::load_from(None, Some(env)).unwrap();
    assert_eq!(loaded.server.port, 0);
    let app = spawn_with(|s| s.server.json_limit_bytes = loaded.server.json_limit_bytes).await;
    let body = json!({"claim_id": uuid::Uuid::new_v4(), "pad": "x".repeat(100)});
    let resp = app
        .http
        .post(app.url("/v1/campaigns/1/claims"))
        .bearer_auth(app.resident("R000004"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE")),
        "{body}"
    );
    app.stop().await;
}

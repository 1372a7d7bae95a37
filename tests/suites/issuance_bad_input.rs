//! Every bad input gets its 4xx with a stable code and a message, and writes nothing:
//! the campaign's Redis counters, the outbox, and the PostgreSQL tables are unchanged.

use crate::support::{release_day, spawn, Options, Reply, TestApp};
use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;
use voucher_core::identity::{self, Identity};
use voucher_core::keys::SigningKey;
use voucher_core::{CampaignId, PersonId, PlaceCode};

/// Everything a bad request could have written.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    counters: Option<(i64, i64, i64, i64)>,
    outbox: u64,
    rows: (i64, i64, i64, i64, i64),
}

async fn snapshot(app: &TestApp, campaign: i64) -> Snapshot {
    app.wait_persisted().await;
    let counters = app
        .state
        .hot
        .counters(CampaignId(campaign))
        .await
        .unwrap()
        .map(|c| (c.pool, c.live, c.claimed, c.recycled));
    Snapshot {
        counters,
        outbox: app.state.hot.outbox_len().await.unwrap(),
        rows: (
            app.count("SELECT count(*) FROM vouchers").await,
            app.count("SELECT count(*) FROM events").await,
            app.count("SELECT count(*) FROM campaigns").await,
            app.count("SELECT count(*) FROM programs").await,
            app.count("SELECT count(*) FROM rounds").await,
        ),
    }
}

fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(
        r.status, status,
        "expected {status} {code}, got {:?}",
        r.body
    );
    assert_eq!(r.code(), code, "{:?}", r.body);
    let message = r.body["message"].as_str().unwrap_or("");
    assert!(
        !message.is_empty(),
        "an error carries a human message: {:?}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_claim_gets_its_4xx_and_writes_nothing() {
    let app = spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app.catering_campaign(2, 1, &[(opens, 2)], 7).await;
    let path = format!("/v1/campaigns/{campaign}/claims");
    let good = app.resident("P1", 140500, 2);
    let claim =
        |token: &str, body: Value| app.at(Method::POST, &path).bearer_auth(token).json(&body);

    // Before the round opens.
    let before = snapshot(&app, campaign).await;
    let r = app.claim(&good, campaign, Uuid::new_v4()).await;
    assert_error(&r, 409, "ROUND_NOT_OPEN");
    assert_eq!(snapshot(&app, campaign).await, before);

    app.clock.set(opens);
    let base = snapshot(&app, campaign).await;
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "malformed JSON",
            app.at(Method::POST, &path)
                .bearer_auth(&good)
                .header("content-type", "application/json")
                .body("{\"claim_id\": "),
            400,
            "MALFORMED_JSON",
        ),
        (
            "claim id missing",
            claim(&good, json!({})),
            400,
            "INVALID_FIELD",
        ),
        (
            "claim id not a uuid",
            claim(&good, json!({"claim_id": "abc"})),
            400,
            "INVALID_FIELD",
        ),
        (
            "wrong content type",
            app.at(Method::POST, &path)
                .bearer_auth(&good)
                .header("content-type", "text/plain")
                .body("hi"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "body too large",
            app.at(Method::POST, &path)
                .bearer_auth(&good)
                .json(&json!({"claim_id": Uuid::new_v4(), "pad": "x".repeat(100_000)})),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "no identity",
            app.at(Method::POST, &path)
                .json(&json!({"claim_id": Uuid::new_v4()})),
            401,
            "MISSING_IDENTITY",
        ),
        (
            "garbage identity",
            claim("not-a-token", json!({"claim_id": Uuid::new_v4()})),
            401,
            "IDENTITY_INVALID",
        ),
        (
            "unknown campaign",
            app.at(Method::POST, "/v1/campaigns/999999/claims")
                .bearer_auth(&good)
                .json(&json!({"claim_id": Uuid::new_v4()})),
            404,
            "CAMPAIGN_NOT_FOUND",
        ),
        (
            "campaign id not a number",
            app.at(Method::POST, "/v1/campaigns/abc/claims")
                .bearer_auth(&good)
                .json(&json!({"claim_id": Uuid::new_v4()})),
            400,
            "INVALID_FIELD",
        ),
        (
            "resident of another city",
            claim(
                &app.resident("T1", 140100, 2),
                json!({"claim_id": Uuid::new_v4()}),
            ),
            403,
            "NOT_ELIGIBLE",
        ),
        (
            "real-name level too low",
            claim(
                &app.resident("P2", 140500, 1),
                json!({"claim_id": Uuid::new_v4()}),
            ),
            403,
            "NOT_ELIGIBLE",
        ),
    ];
    for (what, req, status, code) in cases {
        let r = app.send(req).await;
        assert_eq!(r.status, status, "{what}: {:?}", r.body);
        assert_error(&r, status, code);
        assert_eq!(
            snapshot(&app, campaign).await,
            base,
            "{what} wrote something"
        );
    }

    // An expired token, one signed by a key the service does not trust, one with a tampered payload.
    let who = Identity {
        person_id: PersonId::parse("P3").unwrap(),
        home: PlaceCode::try_from(140500).unwrap(),
        real_name_level: 2,
        expires_at: opens - Duration::minutes(1),
    };
    let expired = identity::mint(&app.secrets.idp_signing, &who, opens - Duration::hours(1));
    let r = app.claim(&expired, campaign, Uuid::new_v4()).await;
    assert_error(&r, 401, "IDENTITY_EXPIRED");
    let stranger = SigningKey::generate(app.secrets.idp_signing.kid()).unwrap();
    let forged = identity::mint(
        &stranger,
        &Identity {
            expires_at: opens + Duration::hours(1),
            ..who.clone()
        },
        opens,
    );
    let r = app.claim(&forged, campaign, Uuid::new_v4()).await;
    assert_error(&r, 401, "IDENTITY_INVALID");
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let r = app.claim(&parts.join("."), campaign, Uuid::new_v4()).await;
    assert_error(&r, 401, "IDENTITY_INVALID");
    assert_eq!(snapshot(&app, campaign).await, base);

    // Over the per-person limit, then sold out, then paused: each refused, nothing more written.
    assert_eq!(app.claim(&good, campaign, Uuid::new_v4()).await.status, 201);
    let after_one = snapshot(&app, campaign).await;
    assert_error(
        &app.claim(&good, campaign, Uuid::new_v4()).await,
        409,
        "PER_PERSON_LIMIT",
    );
    assert_eq!(snapshot(&app, campaign).await, after_one);
    assert_eq!(
        app.claim(&app.resident("P4", 140500, 2), campaign, Uuid::new_v4())
            .await
            .status,
        201
    );
    let sold = snapshot(&app, campaign).await;
    assert_error(
        &app.claim(&app.resident("P5", 140500, 2), campaign, Uuid::new_v4())
            .await,
        409,
        "SOLD_OUT",
    );
    assert_eq!(snapshot(&app, campaign).await, sold);
    let key = app.secrets.jincheng_admin.key.clone();
    let r = app
        .admin_post(
            &key,
            &format!("/v1/admin/campaigns/{campaign}/pause"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let paused = snapshot(&app, campaign).await;
    assert_error(
        &app.claim(&app.resident("P6", 140500, 2), campaign, Uuid::new_v4())
            .await,
        409,
        "CAMPAIGN_PAUSED",
    );
    assert_eq!(snapshot(&app, campaign).await, paused);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_administrator_requests_get_their_4xx_and_write_nothing() {
    let app = spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app.catering_campaign(5, 1, &[(opens, 5)], 7).await;
    let program = app.program().await;
    let base = snapshot(&app, campaign).await;
    let province = app.secrets.province_admin.key.clone();
    let jincheng = app.secrets.jincheng_admin.key.clone();
    let taiyuan = app.secrets.taiyuan_admin.key.clone();
    let spec_of = |program: i64, owner: u32, stock: i64| {
        json!({
            "program_id": program, "name": "x", "owner_place": owner, "category": "catering",
            "rule": {"type": "threshold", "min_spend": 10000, "off": 2000}, "stock": stock,
            "per_person_limit": 1, "rounds": [{"round_no": 1, "starts_at": opens, "quantity": 5}],
            "validity": {"days_after_claim": 7}, "budget": 10000,
            "eligibility": {"places": [], "min_real_name_level": 2}, "distribution": "claim"
        })
    };
    let spec = |owner: u32, stock: i64| spec_of(program, owner, stock);
    let program_spec = json!({"name": "p", "funder_place": 140000, "province_ratio_bp": 5000, "pool": 100, "refund_policy": "restore"});

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("no API key", app.at(Method::POST, "/v1/admin/campaigns").json(&spec(140500, 5)), 401, "MISSING_API_KEY"),
        ("unknown API key", app.at(Method::POST, "/v1/admin/campaigns").header("x-api-key", "nope").json(&spec(140500, 5)), 401, "API_KEY_INVALID"),
        ("a city officer creating in another city", app.at(Method::POST, "/v1/admin/campaigns").header("x-api-key", &taiyuan).json(&spec(140500, 5)), 403, "FORBIDDEN_PLACE"),
        ("a city officer creating a program", app.at(Method::POST, "/v1/admin/programs").header("x-api-key", &jincheng).json(&program_spec), 403, "FORBIDDEN_ROLE"),
        ("a city officer pausing another city's campaign", app.at(Method::POST, &format!("/v1/admin/campaigns/{campaign}/pause")).header("x-api-key", &taiyuan).json(&json!({})), 403, "FORBIDDEN_PLACE"),
        ("a city officer reading another city's campaign", app.at(Method::GET, &format!("/v1/admin/campaigns/{campaign}")).header("x-api-key", &taiyuan), 403, "FORBIDDEN_PLACE"),
        ("zero stock", app.at(Method::POST, "/v1/admin/campaigns").header("x-api-key", &jincheng).json(&spec(140500, 0)), 400, "INVALID_FIELD"),
        ("negative stock", app.at(Method::POST, "/v1/admin/campaigns").header("x-api-key", &jincheng).json(&spec(140500, -1)), 400, "INVALID_FIELD"),
        ("unknown program", app.at(Method::POST, "/v1/admin/campaigns").header("x-api-key", &jincheng).json(&spec_of(987_654, 140500, 5)), 404, "PROGRAM_NOT_FOUND"),
        ("a program with a float pool", app.at(Method::POST, "/v1/admin/programs").header("x-api-key", &province).json(&json!({"name": "p", "funder_place": 140000, "province_ratio_bp": 5000, "pool": 10.5, "refund_policy": "restore"})), 400, "INVALID_FIELD"),
        ("a ratio above 100%", app.at(Method::POST, "/v1/admin/programs").header("x-api-key", &province).json(&json!({"name": "p", "funder_place": 140000, "province_ratio_bp": 10001, "pool": 100, "refund_policy": "restore"})), 400, "INVALID_FIELD"),
        ("a round out of order", app.at(Method::POST, &format!("/v1/admin/campaigns/{campaign}/rounds")).header("x-api-key", &jincheng).json(&json!({"round_no": 2, "starts_at": opens - Duration::days(1), "quantity": 1})), 400, "INVALID_FIELD"),
        ("unknown campaign", app.at(Method::GET, "/v1/admin/campaigns/424242").header("x-api-key", &jincheng), 404, "CAMPAIGN_NOT_FOUND"),
        ("unknown route", app.at(Method::GET, "/v1/nothing-here"), 404, "NOT_FOUND"),
    ];
    for (what, req, status, code) in cases {
        let r = app.send(req).await;
        assert_error(&r, status, code);
        assert_eq!(
            snapshot(&app, campaign).await,
            base,
            "{what} wrote something"
        );
    }
    app.stop().await;
}

/// A number that does not fit the record (2³¹ and above) or a field the API does not know
/// is a 400 `INVALID_FIELD` naming the field, never a 500, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_too_large_and_unknown_fields_are_invalid_fields_and_write_nothing() {
    let app = spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app.catering_campaign(5, 1, &[(opens, 5)], 7).await;
    let program = app.program().await;
    let base = snapshot(&app, campaign).await;
    let jincheng = app.secrets.jincheng_admin.key.clone();
    let too_big: i64 = 2_147_483_648;
    let spec = json!({
        "program_id": program, "name": "x", "owner_place": 140500, "category": "catering",
        "rule": {"type": "threshold", "min_spend": 10000, "off": 2000}, "stock": 5,
        "per_person_limit": 1, "rounds": [{"round_no": 1, "starts_at": opens, "quantity": 5}],
        "validity": {"days_after_claim": 7}, "budget": 10000,
        "eligibility": {"places": [], "min_real_name_level": 2}, "distribution": "claim"
    });
    let with = |pointer: &str, value: Value| {
        let mut s = spec.clone();
        *s.pointer_mut(pointer).unwrap() = value;
        s
    };
    let mut unknown = spec.clone();
    unknown["colour"] = json!("red");
    let cases: Vec<(Value, &str)> = vec![
        (with("/stock", json!(too_big)), "stock"),
        (
            with("/per_person_limit", json!(too_big)),
            "per_person_limit",
        ),
        (
            with("/validity/days_after_claim", json!(too_big)),
            "validity.days_after_claim",
        ),
        (
            with("/rounds/0/quantity", json!(too_big)),
            "rounds[0].quantity",
        ),
        (
            with("/rounds/0/round_no", json!(too_big)),
            "rounds[0].round_no",
        ),
    ];
    for (body, field) in cases {
        let r = app
            .send(
                app.at(Method::POST, "/v1/admin/campaigns")
                    .header("x-api-key", &jincheng)
                    .json(&body),
            )
            .await;
        assert_error(&r, 400, "INVALID_FIELD");
        assert_eq!(r.body["details"]["field"], field, "{:?}", r.body);
    }
    let r = app
        .send(
            app.at(
                Method::POST,
                &format!("/v1/admin/campaigns/{campaign}/rounds"),
            )
            .header("x-api-key", &jincheng)
            .json(&json!({"starts_at": opens + Duration::days(1), "quantity": too_big})),
        )
        .await;
    assert_error(&r, 400, "INVALID_FIELD");
    assert_eq!(r.body["details"]["field"], "quantity", "{:?}", r.body);
    let r = app
        .send(
            app.at(Method::POST, "/v1/admin/campaigns")
                .header("x-api-key", &jincheng)
                .json(&unknown),
        )
        .await;
    assert_error(&r, 400, "INVALID_FIELD");
    assert_eq!(r.body["details"]["field"], "colour", "{:?}", r.body);
    assert_eq!(snapshot(&app, campaign).await, base, "nothing was written");
    app.stop().await;
}

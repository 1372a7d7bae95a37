//! The HTTP contract both services keep with any client, as API fuzzing (schemathesis,
//! `deploy/local/api-fuzz.sh`) reads it from their OpenAPI documents: numbers that would
//! overflow a column are 400 `INVALID_FIELD` naming the field, never 500; well-formed bodies
//! with an unknown or out-of-range field are `INVALID_FIELD`, not `MALFORMED_JSON`; a path id
//! that does not parse is 400 with the error envelope; a method a path does not answer is 405
//! with `Allow`; and every status a route can answer is in its document, with the 200 of a
//! checkout or a quote documented as one of its two shapes.

use crate::redemption_support::{self as rs, Term};
use crate::support::{self, release_day, Options, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;
use voucher_core::Category;

fn assert_invalid_field(r: &Reply, field: &str) {
    assert_eq!(r.status, 400, "{field}: {:?}", r.body);
    assert_eq!(r.code(), "INVALID_FIELD", "{field}: {:?}", r.body);
    assert_eq!(r.body["details"]["field"], field, "{:?}", r.body);
    assert!(
        !r.body["message"].as_str().unwrap_or("").is_empty(),
        "{:?}",
        r.body
    );
}

async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// 2³¹: one more than a 32-bit column holds.
const OVERFLOW: i64 = 2_147_483_648;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_that_overflow_a_column_are_invalid_fields_naming_them() {
    let app = support::spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app.catering_campaign(5, 1, &[(opens, 5)], 7).await;
    let program = app.program().await;
    let key = app.secrets.jincheng_admin.key.clone();
    let spec = json!({
        "program_id": program, "name": "x", "owner_place": 140500, "category": "catering",
        "rule": {"type": "threshold", "min_spend": 10000, "off": 2000}, "stock": 5,
        "per_person_limit": 1, "rounds": [{"round_no": 1, "starts_at": opens, "quantity": 5}],
        "validity": {"days_after_claim": 7}, "budget": 10000,
        "eligibility": {"places": [], "min_real_name_level": 2}, "distribution": "claim"
    });
    let campaigns_before = app.count("SELECT count(*) FROM campaigns").await;
    for (pointer, field) in [
        ("/stock", "stock"),
        ("/per_person_limit", "per_person_limit"),
        ("/validity/days_after_claim", "validity.days_after_claim"),
        ("/rounds/0/quantity", "rounds[0].quantity"),
    ] {
        let mut body = spec.clone();
        *body.pointer_mut(pointer).unwrap() = json!(OVERFLOW);
        let r = app.admin_post(&key, "/v1/admin/campaigns", &body).await;
        assert_invalid_field(&r, field);
    }
    let r = app
        .admin_post(
            &key,
            &format!("/v1/admin/campaigns/{campaign}/rounds"),
            &json!({"starts_at": opens + chrono::Duration::days(1), "quantity": OVERFLOW}),
        )
        .await;
    assert_invalid_field(&r, "quantity");
    assert_eq!(
        app.count("SELECT count(*) FROM campaigns").await,
        campaigns_before
    );
    assert_eq!(app.count("SELECT count(*) FROM rounds").await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_out_of_range_fields_are_invalid_fields_not_malformed_json() {
    let app = support::spawn(Options::default()).await;
    let province = app.secrets.province_admin.key.clone();
    let program = json!({"name": "p", "funder_place": 140000, "province_ratio_bp": 5000,
        "pool": 100, "refund_policy": "restore"});
    let cases = [
        ("province_ratio_bp", json!(10_001)),
        ("province_ratio_bp", json!(4_294_967_296_i64)),
        ("pool", json!(-1)),
        ("colour", json!("red")),
    ];
    for (field, value) in cases {
        let mut body = program.clone();
        body[field] = value;
        let r = app.admin_post(&province, "/v1/admin/programs", &body).await;
        assert_invalid_field(&r, field);
    }
    // A number no number type holds is well-formed JSON too.
    let r = app
        .send(
            app.at(Method::POST, "/v1/admin/programs")
                .header("x-api-key", &province)
                .header("content-type", "application/json")
                .body(
                    r#"{"name":"p","funder_place":140000,"province_ratio_bp":5000,"pool":1e400,"refund_policy":"restore"}"#,
                ),
        )
        .await;
    assert_invalid_field(&r, "pool");
    // Text that is not JSON stays MALFORMED_JSON.
    let r = app
        .send(
            app.at(Method::POST, "/v1/admin/programs")
                .header("x-api-key", &province)
                .header("content-type", "application/json")
                .body(r#"{"name": "#),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "MALFORMED_JSON"),
        "{:?}",
        r.body
    );
    let token = app.resident("P1", 140500, 2);
    let r = app
        .send(
            app.at(Method::POST, "/v1/campaigns/1/claims")
                .bearer_auth(&token)
                .json(&json!({"claim_id": Uuid::new_v4(), "extra": 1})),
        )
        .await;
    assert_invalid_field(&r, "extra");
    assert_eq!(app.count("SELECT count(*) FROM programs").await, 0);
    app.stop().await;

    // The terminal's signed bodies and the administrators' bodies of redemption.
    let app = rs::spawn().await;
    let campaign = app
        .catering(
            voucher_core::RefundPolicy::Restore,
            voucher_core::Fen::from_yuan(10_000).unwrap(),
        )
        .await;
    let term = app
        .merchant(
            "m-contract",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let claims = app.voucher(&campaign, "P1");
    let code = app.code(&claims);
    let checkout = json!({"code": code, "order_amount_fen": 15_000, "order_ref": "o-1"});
    for (field, value) in [("order_amount_fen", json!(0)), ("colour", json!("red"))] {
        let mut body = checkout.clone();
        body[field] = value;
        let (status, body) = app
            .call(&term, "POST", "/v1/redemptions", Some(body), Some("k-1"))
            .await;
        let r = Reply { status, body };
        assert_invalid_field(&r, field);
    }
    let raw = format!(r#"{{"code":"{code}","order_amount_fen":1e400,"order_ref":"o-2"}}"#);
    let r = reply(
        app.signed(&term, "POST", "/v1/redemptions", raw.as_bytes())
            .header("idempotency-key", "k-2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_invalid_field(&r, "order_amount_fen");
    let key = app.secrets.jincheng_admin.key.clone();
    let (status, body) = app
        .admin_post(
            &key,
            "/v1/admin/merchants/m-contract/approvals",
            json!({"program_id": campaign.spec.program_id.0, "colour": "red"}),
        )
        .await;
    assert_invalid_field(&Reply { status, body }, "colour");
    assert_eq!(app.count("redemptions").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_ids_that_do_not_parse_are_400_with_the_envelope() {
    let app = support::spawn(Options::default()).await;
    let key = app.secrets.province_admin.key.clone();
    for path in [
        "/v1/admin/programs/9223372036854775808",
        "/v1/admin/campaigns/abc",
        "/v1/admin/campaigns/-",
    ] {
        let r = app.admin_get(&key, path).await;
        assert_invalid_field(&r, "path");
    }
    app.stop().await;

    let app = rs::spawn().await;
    let term: Term = app.merchant("m-paths", Category::Catering, None, &[]).await;
    for path in ["/v1/redemptions/null%2Cnull", "/v1/redemptions/12"] {
        let (status, body) = app.call(&term, "GET", path, None, None).await;
        assert_invalid_field(&Reply { status, body }, "path");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_path_does_not_answer_is_405_with_allow() {
    let app = support::spawn(Options::default()).await;
    for (method, path, allow) in [
        (Method::DELETE, "/v1/admin/campaigns", "GET, POST"),
        (Method::PUT, "/v1/admin/campaigns/7", "GET"),
        (Method::GET, "/v1/campaigns/7/claims", "POST"),
        (Method::POST, "/healthz", "GET"),
    ] {
        let resp = app.at(method.clone(), path).send().await.unwrap();
        let header = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let r = reply(resp).await;
        assert_eq!(r.status, 405, "{method} {path}: {:?}", r.body);
        assert_eq!(r.code(), "METHOD_NOT_ALLOWED", "{:?}", r.body);
        assert_eq!(header.as_deref(), Some(allow), "{method} {path}");
        assert!(!r.body["message"].as_str().unwrap_or("").is_empty());
    }
    let r = app.send(app.at(Method::GET, "/v1/nothing-here")).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
    app.stop().await;

    let app = rs::spawn().await;
    let resp = app
        .http
        .put(app.url("/v1/redemptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST")
    );
    let r = reply(resp).await;
    assert_eq!((r.status, r.code()), (405, "METHOD_NOT_ALLOWED"));
    app.stop().await;
}

/// Every operation of `doc`: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.clone(), path.clone(), op.clone()));
        }
    }
    ops
}

fn assert_common_statuses(service: &str, doc: &Value) {
    let mut secured = 0;
    for (method, path, op) in operations(doc) {
        let responses = &op["responses"];
        let has = |status: &str| responses[status].is_object();
        let what = format!("{service}: {method} {path}");
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            secured += 1;
            assert!(has("401"), "{what} lacks 401");
        }
        if op["requestBody"].is_object() {
            for status in ["400", "413", "415"] {
                assert!(has(status), "{what} lacks {status}");
            }
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if !params.is_empty() {
            assert!(has("400"), "{what} has parameters but lacks 400");
        }
        for status in ["429", "503"] {
            assert!(has(status), "{what} lacks {status}");
        }
    }
    assert!(secured > 5, "{service}: only {secured} secured operations");
}

fn one_of_names(doc: &Value, schema_ref: &Value) -> Vec<String> {
    let name = schema_ref["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("not a $ref: {schema_ref}"))
        .trim_start_matches("#/components/schemas/");
    doc["components"]["schemas"][name]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} is not a oneOf"))
        .iter()
        .map(|s| s["$ref"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_documents_declare_every_common_status_the_bounds_and_the_two_shapes() {
    let app = support::spawn(Options::default()).await;
    let issuance: Value = app.send(app.at(Method::GET, "/openapi.json")).await.body;
    app.stop().await;
    let app = rs::spawn().await;
    let redemption: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.stop().await;

    assert_common_statuses("issuance", &issuance);
    assert_common_statuses("redemption", &redemption);

    let program_id = &issuance["paths"]["/v1/admin/programs/{id}"]["get"]["responses"];
    assert!(program_id["400"].is_object() && program_id["401"].is_object());
    let schemas = &issuance["components"]["schemas"];
    assert_eq!(
        schemas["NewCampaign"]["properties"]["stock"]["maximum"],
        100_000_000
    );
    assert_eq!(
        schemas["Validity"]["properties"]["days_after_claim"]["maximum"],
        3660
    );
    assert_eq!(
        schemas["NewProgram"]["properties"]["province_ratio_bp"]["maximum"],
        10_000
    );

    for path in ["/v1/redemptions", "/v1/authorizations"] {
        let ok = &redemption["paths"][path]["post"]["responses"]["200"]["content"]
            ["application/json"]["schema"];
        let shapes = one_of_names(&redemption, ok);
        assert_eq!(
            shapes,
            vec![
                "#/components/schemas/RedemptionView",
                "#/components/schemas/DeclineView"
            ],
            "{path}"
        );
        let key = redemption["paths"][path]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .cloned()
            .unwrap();
        assert_eq!(key["schema"]["maxLength"], 128, "{path}");
        assert!(key["schema"]["pattern"].is_string(), "{path}");
    }
    let quote = &redemption["paths"]["/v1/quotes"]["post"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert_eq!(one_of_names(&redemption, quote).len(), 2);
    let checkout = &redemption["components"]["schemas"]["CheckoutRequest"]["properties"];
    assert_eq!(checkout["order_amount_fen"]["minimum"], 1);
    assert_eq!(checkout["order_amount_fen"]["maximum"], 10_000_000_000_i64);
    let by_id = &redemption["paths"]["/v1/redemptions/{id}"]["get"]["responses"];
    assert!(by_id["400"].is_object() && by_id["401"].is_object());
    let post = &redemption["paths"]["/v1/redemptions"]["post"];
    assert!(post["security"][0]["terminal"].is_array());
    assert!(redemption["components"]["securitySchemes"]["terminal"].is_object());
}

//! The issuance routes the rush tests do not reach, end to end over real HTTP: what a
//! resident sees (campaign list, own vouchers, dynamic code), administrators' reads, rounds,
//! pause/resume, counters, and bulk issuance to a list (idempotent on re-upload).

use crate::support::{release_day, spawn, Options};
use chrono::Duration;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_sees_eligible_campaigns_then_their_voucher_and_its_dynamic_code() {
    let app = spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app
        .catering_campaign(10, 2, &[(opens, 6), (opens + Duration::days(7), 4)], 7)
        .await;
    let jincheng = app.resident("F1", 140500, 2);
    let taiyuan = app.resident("F2", 140100, 2);

    // Before the round: listed with its schedule, nothing claimed yet.
    let list = app
        .send(app.at(Method::GET, "/v1/campaigns").bearer_auth(&jincheng))
        .await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));
    assert_eq!(list.body[0]["id"], campaign);
    assert_eq!(list.body[0]["my_claimed"], 0);
    assert!(list.body[0]["current_round"].is_null());
    assert_eq!(
        list.body[0]["upcoming_rounds"].as_array().map(Vec::len),
        Some(2)
    );
    let elsewhere = app
        .send(app.at(Method::GET, "/v1/campaigns").bearer_auth(&taiyuan))
        .await;
    assert_eq!(
        elsewhere.body,
        json!([]),
        "a Taiyuan resident is not offered a Jincheng campaign"
    );

    // Claim, then the list shows the count and the voucher appears with a dynamic code.
    app.clock.set(opens);
    let claim = app.claim(&jincheng, campaign, Uuid::new_v4()).await;
    assert_eq!(claim.status, 201, "{:?}", claim.body);
    let voucher = claim.body["voucher_id"].as_str().unwrap().to_owned();
    let list = app
        .send(app.at(Method::GET, "/v1/campaigns").bearer_auth(&jincheng))
        .await;
    assert_eq!(list.body[0]["my_claimed"], 1);
    assert_eq!(list.body[0]["current_round"]["round_no"], 1);
    app.wait_persisted().await;
    let mine = app
        .send(
            app.at(Method::GET, "/v1/me/vouchers")
                .bearer_auth(&jincheng),
        )
        .await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.body[0]["voucher_id"], voucher.as_str());
    assert_eq!(
        (
            mine.body[0]["status"].as_str(),
            mine.body[0]["usable"].as_bool()
        ),
        (Some("issued"), Some(true))
    );
    assert_eq!(mine.body[0]["valid_from"], claim.body["valid_from"]);
    let code_path = format!("/v1/me/vouchers/{voucher}/code");
    let code = app
        .send(app.at(Method::GET, &code_path).bearer_auth(&jincheng))
        .await;
    assert_eq!(code.status, 200, "{:?}", code.body);
    let text = code.body["code"].as_str().unwrap();
    assert!(
        text.starts_with(claim.body["token"].as_str().unwrap()),
        "the code carries the voucher token"
    );
    assert!(code.body["refresh_at"].is_string());

    // Another person asking for it, an unknown voucher, and after expiry.
    let thief = app
        .send(
            app.at(Method::GET, &code_path)
                .bearer_auth(app.resident("F3", 140500, 2)),
        )
        .await;
    assert_eq!((thief.status, thief.code()), (404, "VOUCHER_NOT_FOUND"));
    let unknown = app
        .send(
            app.at(
                Method::GET,
                &format!("/v1/me/vouchers/{}/code", Uuid::new_v4()),
            )
            .bearer_auth(&jincheng),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "VOUCHER_NOT_FOUND"));
    app.clock.set(opens + Duration::days(8));
    let late = app
        .send(
            app.at(Method::GET, &code_path)
                .bearer_auth(app.resident("F1", 140500, 2)),
        )
        .await;
    assert_eq!((late.status, late.code()), (409, "VOUCHER_NOT_USABLE"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_add_rounds_pause_resume_and_read_counters_within_their_place() {
    let app = spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app.catering_campaign(10, 5, &[(opens, 2)], 7).await;
    let key = app.secrets.jincheng_admin.key.clone();
    let base = format!("/v1/admin/campaigns/{campaign}");

    let round = app
        .admin_post(
            &key,
            &format!("{base}/rounds"),
            &json!({"starts_at": opens + Duration::days(1), "quantity": 3}),
        )
        .await;
    assert_eq!(round.status, 201, "{:?}", round.body);
    assert_eq!(round.body["rounds"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        round.body["rounds"][1]["round_no"], 2,
        "the next number by default"
    );

    app.clock.set(opens);
    let person = app.resident("G1", 140500, 2);
    assert_eq!(
        app.claim(&person, campaign, Uuid::new_v4()).await.status,
        201
    );
    let paused = app
        .admin_post(&key, &format!("{base}/pause"), &json!({}))
        .await;
    assert_eq!(
        (paused.status, paused.body["status"].as_str()),
        (200, Some("paused"))
    );
    assert_eq!(
        app.claim(&person, campaign, Uuid::new_v4()).await.code(),
        "CAMPAIGN_PAUSED"
    );
    let resumed = app
        .admin_post(&key, &format!("{base}/resume"), &json!({}))
        .await;
    assert_eq!(resumed.body["status"], "active");
    assert_eq!(
        app.claim(&person, campaign, Uuid::new_v4()).await.status,
        201
    );

    app.wait_persisted().await;
    let counters = app.admin_get(&key, &format!("{base}/counters")).await;
    assert_eq!(counters.status, 200, "{:?}", counters.body);
    assert_eq!(counters.body["live"]["claimed"], 2);
    assert_eq!(counters.body["persisted"]["issued"], 2);
    let one = app.admin_get(&key, &base).await;
    assert_eq!(
        (
            one.body["id"].as_i64(),
            one.body["counters"]["claimed"].as_i64()
        ),
        (Some(campaign), Some(2))
    );

    let mine = app.admin_get(&key, "/v1/admin/campaigns").await;
    assert_eq!(mine.body.as_array().map(Vec::len), Some(1));
    let taiyuan = app
        .admin_get(&app.secrets.taiyuan_admin.key, "/v1/admin/campaigns")
        .await;
    assert_eq!(
        taiyuan.body,
        json!([]),
        "a Taiyuan officer does not see Jincheng's campaigns"
    );
    let province = app
        .admin_get(&app.secrets.province_admin.key, "/v1/admin/campaigns")
        .await;
    assert_eq!(
        province.body.as_array().map(Vec::len),
        Some(1),
        "the province sees every city's"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_is_issued_once_even_when_uploaded_twice() {
    let app = spawn(Options::default()).await;
    let program = app.program().await;
    let key = app.secrets.jincheng_admin.key.clone();
    let spec = json!({
        "program_id": program, "name": "晋城工会餐饮券", "owner_place": 140500, "category": "catering",
        "rule": {"type": "threshold", "min_spend": 0, "off": 5000}, "stock": 3, "per_person_limit": 1,
        "rounds": [], "validity": {"days_after_claim": 30}, "budget": 1_000_000,
        "eligibility": {"places": [], "min_real_name_level": 0}, "distribution": "list"
    });
    let created = app.admin_post(&key, "/v1/admin/campaigns", &spec).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let campaign = created.body["id"].as_i64().unwrap();
    let path = format!("/v1/admin/campaigns/{campaign}/bulk-issuances");
    let csv = "person_id,name\nU1,Zhang\nU2,Li\nbad id!,Wang\nU1,Zhang again\n\nU3,Zhao\nU4,Qian\n";
    let upload = || {
        app.send(
            app.at(Method::POST, &path)
                .header("x-api-key", &key)
                .header("content-type", "text/csv")
                .body(csv),
        )
    };

    let first = upload().await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        (
            first.body["issued"].as_u64(),
            first.body["invalid"].as_u64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(
        first.body["skipped"], 2,
        "the duplicate row and the one past the stock"
    );
    assert_eq!(first.body["rows"][2]["line"], 4);
    assert_eq!(
        first.body["rows"][5]["line"], 8,
        "line numbers count the blank line"
    );
    assert_eq!(first.body["rows"][5]["reason"], "sold out");

    let second = upload().await;
    assert_eq!(second.body["issued"], 0, "{:?}", second.body);
    assert_eq!(second.body["rows"][0]["reason"], "already issued");
    assert_eq!(
        second.body["rows"][0]["voucher_id"],
        first.body["rows"][0]["voucher_id"]
    );
    app.wait_persisted().await;
    assert_eq!(app.count("SELECT count(*) FROM vouchers").await, 3);

    let token = app.resident("U1", 140500, 2);
    let claim = app.claim(&token, campaign, Uuid::new_v4()).await;
    assert_eq!(
        (claim.status, claim.code()),
        (409, "CAMPAIGN_NOT_CLAIMABLE")
    );
    let wrong_type = app
        .send(
            app.at(Method::POST, &path)
                .header("x-api-key", &key)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    assert_eq!(
        (wrong_type.status, wrong_type.code()),
        (415, "UNSUPPORTED_MEDIA_TYPE")
    );
    let no_column = app
        .send(
            app.at(Method::POST, &path)
                .header("x-api-key", &key)
                .header("content-type", "text/csv")
                .body("id\nU9\n"),
        )
        .await;
    assert_eq!((no_column.status, no_column.code()), (400, "INVALID_FIELD"));
    app.stop().await;
}

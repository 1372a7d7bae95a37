//! The endpoints the pages stand on, over real HTTP between the two real services: the
//! dev sign-in and the server clock, an offline code computed from the voucher's code key
//! alone and accepted at a till, revoking that key (old codes refused, new ones accepted),
//! one-time pairing codes, quotes that write nothing, and the resident's history.

use crate::stack_support::{self, json, Stack};
use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use voucher_core::dynamic_code::mac_with_key;
use voucher_core::{Clock, ManualClock};

fn release_day() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0).single().unwrap()
}

/// The code the page computes from a `code-key` answer at `now`: no server involved.
fn offline_code(key: &Value, now: chrono::DateTime<Utc>) -> String {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key["key"].as_str().unwrap())
        .unwrap();
    let key_bytes: [u8; 32] = raw.try_into().unwrap();
    let step = now
        .timestamp()
        .div_euclid(key["step_secs"].as_i64().unwrap());
    let mac = mac_with_key(&key_bytes, step);
    let token = key["token"].as_str().unwrap();
    match key["epoch"].as_u64().unwrap() {
        0 => format!("{token}.{mac}"),
        e => format!("{token}.{e}.{mac}"),
    }
}

async fn stack_at_release() -> (Stack, ManualClock, i64, i64) {
    let clock = ManualClock::new(release_day() - Duration::minutes(1));
    let stack = stack_support::start(Arc::new(clock.clone())).await;
    let (program, campaign) = stack.catering_campaign(50, release_day()).await;
    clock.set(release_day() + Duration::seconds(5));
    (stack, clock, program, campaign)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dev_sign_in_and_the_server_clock_are_what_the_resident_page_starts_from() {
    let (stack, clock, _, campaign) = stack_at_release().await;
    let (status, now) = json(
        stack
            .http
            .get(format!("{}/v1/time", stack.issuance))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        now["now"],
        json!(clock.now()),
        "the service's clock, not the machine's"
    );
    let token = stack.sign_in("R000001").await;
    let (status, campaigns) = stack.resident_get(&token, "/v1/campaigns").await;
    assert_eq!(status, 200, "{campaigns}");
    let mine = campaigns
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == campaign)
        .unwrap();
    assert_eq!(mine["owner_place_name"], "晋城市");
    // A bad sign-in is a 400 naming the field, and writes nothing.
    let (status, body) = json(
        stack
            .http
            .post(format!("{}/v1/dev/sign-in", stack.issuance))
            .json(&json!({"person_id": "R1", "home": 140500, "real_name_level": 9}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["details"]["field"].as_str()),
        (400, Some("real_name_level"))
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_offline_code_from_the_code_key_is_accepted_and_a_revoked_key_s_codes_are_not() {
    let (stack, clock, program, campaign) = stack_at_release().await;
    stack.merchant("m-offline", program).await;
    let term = stack.pair("m-offline").await;
    let alice = stack.sign_in("alice").await;
    let bob = stack.sign_in("bob").await;
    let voucher = stack.claim(&alice, campaign).await;
    let key_path = format!("/v1/me/vouchers/{voucher}/code-key");
    let (status, key) = stack.resident_get(&bob, &key_path).await;
    assert_eq!(status, 404, "only the owner gets the key: {key}");
    let (status, key) = stack.resident_get(&alice, &key_path).await;
    assert_eq!(status, 200, "{key}");
    assert_eq!(key["epoch"], 0);

    // The phone computes the code with the key alone; the server would draw the same code.
    let offline = offline_code(&key, clock.now());
    let (_, online) = stack
        .resident_get(&alice, &format!("/v1/me/vouchers/{voucher}/code"))
        .await;
    assert_eq!(offline, online["code"].as_str().unwrap());

    // A key revoked (a lost phone): the old key's codes are refused, the new key's accepted.
    let (status, fresh) = json(
        stack
            .http
            .post(format!("{}{key_path}/revoke", stack.issuance))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, fresh["epoch"].as_u64()), (200, Some(1)), "{fresh}");
    let (status, answer) = stack.redeem(&term, &offline).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (200, Some("CODE_REVOKED")),
        "{answer}"
    );
    let (_, quote) = stack
        .signed(
            &term,
            "POST",
            "/v1/quotes",
            Some(json!({"code": offline, "order_amount_fen": 15_000})),
            None,
        )
        .await;
    assert_eq!(quote["reason"], "CODE_REVOKED", "{quote}");
    clock.advance(Duration::seconds(31));
    let renewed = offline_code(&fresh, clock.now());
    assert!(
        renewed.contains(".1."),
        "the code carries its key's epoch: {renewed}"
    );
    let (_, quote) = stack
        .signed(
            &term,
            "POST",
            "/v1/quotes",
            Some(json!({"code": renewed, "order_amount_fen": 15_000})),
            None,
        )
        .await;
    assert_eq!(
        (
            quote["outcome"].as_str(),
            quote["discount_fen"].as_i64(),
            quote["to_pay_fen"].as_i64()
        ),
        (Some("quote"), Some(2_000), Some(13_000)),
        "{quote}"
    );
    assert_eq!(
        stack.count("redemptions").await,
        0,
        "a quote writes nothing"
    );
    let (status, answer) = stack.redeem(&term, &renewed).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("approved")),
        "{answer}"
    );
    // A spent voucher has no key any more, and its history shows the saving.
    let (status, _) = stack.resident_get(&alice, &key_path).await;
    assert_eq!(status, 409);
    let (status, history) = stack.resident_get(&alice, "/v1/me/history").await;
    assert_eq!(status, 200);
    assert_eq!(history["total_saved_fen"], 2_000, "{history}");
    assert_eq!(history["total_spent_fen"], 13_000, "{history}");
    assert_eq!(
        history["redemptions"][0]["merchant_name"],
        "晋城老字号饭店 m-offline"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pairing_code_pairs_one_browser_once_and_an_unpaired_terminal_is_refused() {
    let (stack, _clock, program, _) = stack_at_release().await;
    stack.merchant("m-pair", program).await;
    let code = stack.pairing_code("m-pair").await;
    let pair = |code: String| {
        let http = stack.http.clone();
        let url = format!("{}/v1/terminal-pairings", stack.redemption);
        async move {
            json(
                http.post(url)
                    .json(&json!({ "pairing_code": code }))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // Two browsers race with one code: exactly one gets the key.
    let (a, b) = tokio::join!(pair(code.clone()), pair(code.clone()));
    let statuses = [a.0, b.0];
    assert!(
        statuses.contains(&200) && statuses.contains(&404),
        "{statuses:?}"
    );
    let won = if a.0 == 200 { a.1 } else { b.1 };
    assert_eq!(won["merchant"]["id"], "m-pair");
    assert_eq!(won["secret"].as_str().map(str::len), Some(64));
    let (status, body) = pair(code).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("PAIRING_CODE_INVALID"))
    );
    let (status, _) = pair("2345-6789-ABCD".into()).await;
    assert_eq!(status, 404);
    let term = stack_support::PairedTerminal {
        key_id: won["key_id"].as_str().unwrap().to_owned(),
        secret: won["secret"].as_str().unwrap().to_owned(),
    };
    let (status, me) = stack
        .signed(&term, "GET", "/v1/terminal/me", None, None)
        .await;
    assert_eq!(
        (status, me["merchant"]["name"].as_str()),
        (200, Some("晋城老字号饭店 m-pair")),
        "{me}"
    );
    let (status, _) = stack
        .signed(&term, "POST", "/v1/terminal/unpair", None, None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = stack
        .signed(&term, "GET", "/v1/terminal/me", None, None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("TERMINAL_KEY_INVALID"))
    );
    stack.stop().await;
}

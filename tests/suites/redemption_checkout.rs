//! Checkout against real PostgreSQL, real Redis and real HTTP: double spend, cap race,
//! budget race, holds, reversals, security refusals, idempotency, offline pre-check.

use crate::redemption_support::{spawn, spawn_with, t0};
use chrono::Duration;
use futures::future::join_all;
use serde_json::{json, Value};
use std::time::Instant;
use voucher_core::{Category, Clock, Fen, PlaceCode, RefundPolicy};

fn big() -> Fen {
    Fen::from_yuan(100_000_000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_voucher_at_50_terminals_of_10_merchants_is_redeemed_exactly_once() {
    let app = spawn().await;
    let campaign = app.catering(RefundPolicy::Restore, big()).await;
    let mut terminals = Vec::new();
    for m in 0..10 {
        let first = app
            .merchant(
                &format!("m{m}"),
                Category::Catering,
                None,
                &[campaign.spec.program_id],
            )
            .await;
        terminals.push(first);
        for _ in 0..4 {
            terminals.push(app.terminal(&format!("m{m}")).await);
        }
    }
    assert_eq!(terminals.len(), 50);
    let voucher = app.voucher(&campaign, "alice");
    let code = app.code(&voucher);

    let answers = join_all(terminals.iter().map(|t| app.redeem(t, &code, 150_00))).await;

    let approved: Vec<&Value> = answers
        .iter()
        .filter(|(_, b)| b["outcome"] == "approved")
        .map(|(_, b)| b)
        .collect();
    let declined = answers
        .iter()
        .filter(|(s, b)| *s == 200 && b["reason"] == "VOUCHER_ALREADY_REDEEMED")
        .count();
    assert_eq!(approved.len(), 1, "{answers:?}");
    assert_eq!(declined, 49, "{answers:?}");
    assert_eq!(approved[0]["discount_fen"], 20_00);
    assert_eq!(approved[0]["to_pay_fen"], 130_00);
    assert_eq!(app.count("redemptions").await, 1);
    assert_eq!(app.count("events WHERE kind = 'voucher_redeemed'").await, 1);
    assert_eq!(app.count("vouchers WHERE status = 'redeemed'").await, 1);
    assert_eq!(app.budget_left(campaign.id).await, big().as_i64() - 20_00);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_racing_at_5_furnishing_merchants_gets_exactly_the_2000_yuan_cap() {
    let app = spawn().await;
    let campaign = app.furnishing(RefundPolicy::Restore, big()).await;
    let mut terminals = Vec::new();
    for m in 0..5 {
        terminals.push(
            app.merchant(
                &format!("f{m}"),
                Category::HomeFurnishing,
                None,
                &[campaign.spec.program_id],
            )
            .await,
        );
    }
    let voucher = app.voucher(&campaign, "bob");
    let code = app.code(&voucher);

    // 5 purchases of 9,000 yuan each: 10% = 900 yuan each, 4,500 yuan uncapped in total.
    let answers = join_all(terminals.iter().map(|t| app.redeem(t, &code, 9_000_00))).await;

    let total: i64 = answers
        .iter()
        .map(|(s, b)| {
            assert_eq!((*s, b["outcome"].as_str()), (200, Some("approved")), "{b}");
            b["discount_fen"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(total, 200_000, "{answers:?}");
    // A later purchase is a sale without discount, approved, with the notice.
    let (status, later) = app.redeem(&terminals[0], &code, 1_000_00).await;
    assert_eq!(status, 200);
    assert_eq!(later["outcome"], "approved");
    assert_eq!(later["discount_fen"], 0);
    assert_eq!(later["to_pay_fen"], 1_000_00);
    assert_eq!(later["notice"], "CAP_EXHAUSTED");
    assert_eq!(later["cap_exhausted"], true);
    let used: i64 = sqlx::query_scalar("SELECT used_fen FROM entitlements")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(used, 200_000);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_smaller_than_demand_is_never_exceeded() {
    let app = spawn_with(|s| s.budget.buckets = 4).await;
    // Budget for 5 threshold vouchers (20 yuan each) plus 10 yuan; 20 vouchers race.
    let budget = Fen::try_from(5 * 20_00 + 10_00).unwrap();
    let campaign = app.catering(RefundPolicy::Restore, budget).await;
    let program = campaign.spec.program_id;
    let mut terminals = Vec::new();
    for m in 0..4 {
        terminals.push(
            app.merchant(&format!("b{m}"), Category::Catering, None, &[program])
                .await,
        );
    }
    let codes: Vec<String> = (0..20)
        .map(|i| app.code(&app.voucher(&campaign, &format!("p{i}"))))
        .collect();

    let answers = join_all(
        codes
            .iter()
            .enumerate()
            .map(|(i, c)| app.redeem(&terminals[i % 4], c, 100_00)),
    )
    .await;

    let granted: i64 = answers
        .iter()
        .filter(|(_, b)| b["outcome"] == "approved")
        .map(|(_, b)| b["discount_fen"].as_i64().unwrap())
        .sum();
    let exhausted = answers
        .iter()
        .filter(|(_, b)| b["reason"] == "BUDGET_EXHAUSTED")
        .count();
    assert!(granted <= budget.as_i64(), "granted {granted} > budget");
    assert_eq!(granted, 5 * 20_00, "{answers:?}");
    assert_eq!(exhausted, 15, "{answers:?}");
    assert_eq!(app.budget_left(campaign.id).await, 10_00);
    // Declined vouchers were not spent.
    assert_eq!(app.count("vouchers WHERE status = 'redeemed'").await, 5);

    // A percentage campaign's discount is cut to what is left, never beyond.
    let furnishing = app
        .furnishing(RefundPolicy::Restore, Fen::try_from(50_00).unwrap())
        .await;
    let shop = app
        .merchant(
            "fb",
            Category::HomeFurnishing,
            None,
            &[furnishing.spec.program_id],
        )
        .await;
    let fcodes: Vec<String> = (0..6)
        .map(|i| app.code(&app.voucher(&furnishing, &format!("q{i}"))))
        .collect();
    let answers = join_all(fcodes.iter().map(|c| app.redeem(&shop, c, 200_00))).await;
    let granted: i64 = answers
        .iter()
        .map(|(_, b)| b["discount_fen"].as_i64().unwrap())
        .sum();
    assert_eq!(granted, 50_00, "{answers:?}");
    assert_eq!(app.budget_left(furnishing.id).await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_resolve_exactly_once_and_release_themselves_after_the_timeout() {
    let app = spawn().await;
    let campaign = app.catering(RefundPolicy::Restore, big()).await;
    let t = app
        .merchant("h", Category::Catering, None, &[campaign.spec.program_id])
        .await;
    let budget = big().as_i64();

    // Authorise → the voucher is reserved: a second authorisation is declined.
    let v1 = app.voucher(&campaign, "h1");
    let (_, hold) = app
        .checkout(&t, "/v1/authorizations", &app.code(&v1), 120_00)
        .await;
    assert_eq!(
        (hold["outcome"].as_str(), hold["status"].as_str()),
        (Some("approved"), Some("held")),
        "{hold}"
    );
    let id = hold["redemption_id"].as_str().unwrap().to_owned();
    let (_, again) = app
        .checkout(&t, "/v1/authorizations", &app.code(&v1), 120_00)
        .await;
    assert_eq!(again["reason"], "VOUCHER_ALREADY_REDEEMED");
    assert_eq!(
        app.count("events WHERE kind = 'voucher_redeemed'").await,
        0,
        "no spending before capture"
    );
    assert_eq!(app.budget_left(campaign.id).await, budget - 20_00);

    // Double capture: both answer captured, one event.
    let capture = format!("/v1/authorizations/{id}/capture");
    let (s1, c1) = app.call(&t, "POST", &capture, None, None).await;
    let (s2, c2) = app.call(&t, "POST", &capture, None, None).await;
    assert_eq!(
        (s1, c1["status"].as_str(), s2, c2["status"].as_str()),
        (200, Some("captured"), 200, Some("captured"))
    );
    assert_eq!(app.count("events WHERE kind = 'voucher_redeemed'").await, 1);
    // Void after capture is refused.
    let (s, v) = app
        .call(
            &t,
            "POST",
            &format!("/v1/authorizations/{id}/void"),
            None,
            None,
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (409, Some("HOLD_RESOLVED")));

    // Void, then capture after void is refused; the voucher is usable again.
    let v2 = app.voucher(&campaign, "h2");
    let (_, hold) = app
        .checkout(&t, "/v1/authorizations", &app.code(&v2), 120_00)
        .await;
    let id2 = hold["redemption_id"].as_str().unwrap().to_owned();
    let (s, v) = app
        .call(
            &t,
            "POST",
            &format!("/v1/authorizations/{id2}/void"),
            None,
            None,
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("voided")));
    let (s, c) = app
        .call(
            &t,
            "POST",
            &format!("/v1/authorizations/{id2}/capture"),
            None,
            None,
        )
        .await;
    assert_eq!((s, c["code"].as_str()), (409, Some("HOLD_RESOLVED")));
    assert_eq!(
        app.budget_left(campaign.id).await,
        budget - 20_00,
        "the void gave the budget back"
    );

    // Concurrent capture and void of one hold: exactly one wins.
    let v3 = app.voucher(&campaign, "h3");
    let (_, hold) = app
        .checkout(&t, "/v1/authorizations", &app.code(&v3), 120_00)
        .await;
    let id3 = hold["redemption_id"].as_str().unwrap().to_owned();
    let (cap_path, void_path) = (
        format!("/v1/authorizations/{id3}/capture"),
        format!("/v1/authorizations/{id3}/void"),
    );
    let (cap, void) = tokio::join!(
        app.call(&t, "POST", &cap_path, None, None),
        app.call(&t, "POST", &void_path, None, None)
    );
    assert_eq!(
        [cap.0, void.0].iter().filter(|s| **s == 200).count(),
        1,
        "{cap:?} {void:?}"
    );

    // Timeout: a hold neither captured nor voided releases itself (sweeper) and cannot be captured.
    let v4 = app.voucher(&campaign, "h4");
    let (_, hold) = app
        .checkout(&t, "/v1/authorizations", &app.code(&v4), 120_00)
        .await;
    let id4 = hold["redemption_id"].as_str().unwrap().to_owned();
    let before = app.budget_left(campaign.id).await;
    app.clock.advance(Duration::minutes(16));
    assert_eq!(redemption::holds::sweep_once(app.state()).await.unwrap(), 1);
    assert_eq!(
        redemption::holds::sweep_once(app.state()).await.unwrap(),
        0,
        "released once"
    );
    assert_eq!(app.budget_left(campaign.id).await, before + 20_00);
    let (s, c) = app
        .call(
            &t,
            "POST",
            &format!("/v1/authorizations/{id4}/capture"),
            None,
            None,
        )
        .await;
    assert_eq!((s, c["code"].as_str()), (409, Some("HOLD_EXPIRED")));
    let (_, sale) = app.redeem(&t, &app.code(&v4), 120_00).await;
    assert_eq!(
        sale["outcome"], "approved",
        "the released voucher is usable again: {sale}"
    );

    // Lazy expiry: a capture after the timeout releases the hold itself.
    let v5 = app.voucher(&campaign, "h5");
    let (_, hold) = app
        .checkout(&t, "/v1/authorizations", &app.code(&v5), 120_00)
        .await;
    let id5 = hold["redemption_id"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::minutes(16));
    let (s, c) = app
        .call(
            &t,
            "POST",
            &format!("/v1/authorizations/{id5}/capture"),
            None,
            None,
        )
        .await;
    assert_eq!((s, c["code"].as_str()), (409, Some("HOLD_EXPIRED")));
    assert_eq!(app.count("redemptions WHERE status = 'held'").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reversals_restore_or_forfeit_per_policy_and_are_idempotent() {
    let app = spawn().await;
    let restore = app.catering(RefundPolicy::Restore, big()).await;
    let forfeit = app.catering(RefundPolicy::Forfeit, big()).await;
    let furnishing = app.furnishing(RefundPolicy::Restore, big()).await;
    let programs = [restore.spec.program_id, forfeit.spec.program_id];
    let t = app.merchant("r", Category::Catering, None, &programs).await;
    let f = app
        .merchant(
            "rf",
            Category::HomeFurnishing,
            None,
            &[furnishing.spec.program_id],
        )
        .await;

    // Restore: the voucher is usable again.
    let v = app.voucher(&restore, "r1");
    let (_, sale) = app.redeem(&t, &app.code(&v), 150_00).await;
    let id = sale["redemption_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/redemptions/{id}/reversals");
    let (s, rev) = app
        .reverse(&t, &path, json!({"reversal_ref": "refund-1"}))
        .await;
    assert_eq!(
        (
            s,
            rev["discount_reversed_fen"].as_i64(),
            rev["restored"].as_bool()
        ),
        (200, Some(20_00), Some(true)),
        "{rev}"
    );
    let (s, again) = app
        .reverse(&t, &path, json!({"reversal_ref": "refund-1"}))
        .await;
    assert_eq!(
        (s, &again),
        (200, &rev),
        "the same reversal answers the same"
    );
    let (s, noop) = app
        .reverse(&t, &path, json!({"reversal_ref": "refund-2"}))
        .await;
    assert_eq!(
        (
            s,
            noop["outcome"].as_str(),
            noop["discount_reversed_fen"].as_i64()
        ),
        (200, Some("nothing_to_reverse"), Some(0))
    );
    assert_eq!(app.count("reversals").await, 1);
    assert_eq!(
        app.count("events WHERE kind = 'redemption_reversed'").await,
        1
    );
    let (_, resale) = app.redeem(&t, &app.code(&v), 150_00).await;
    assert_eq!(
        resale["outcome"], "approved",
        "restored voucher redeems again: {resale}"
    );

    // Unknown redemption: always the same 404, nothing written.
    for _ in 0..2 {
        let unknown = format!("/v1/redemptions/{}/reversals", uuid::Uuid::now_v7());
        let (s, e) = app
            .reverse(&t, &unknown, json!({"reversal_ref": "x"}))
            .await;
        assert_eq!((s, e["code"].as_str()), (404, Some("REDEMPTION_NOT_FOUND")));
    }
    assert_eq!(app.count("reversals").await, 1);

    // Forfeit: spending corrected, the voucher stays spent.
    let v = app.voucher(&forfeit, "r2");
    let (_, sale) = app.redeem(&t, &app.code(&v), 150_00).await;
    let id = sale["redemption_id"].as_str().unwrap().to_owned();
    let (s, rev) = app
        .reverse(
            &t,
            &format!("/v1/redemptions/{id}/reversals"),
            json!({"reversal_ref": "a"}),
        )
        .await;
    assert_eq!(
        (
            s,
            rev["restored"].as_bool(),
            rev["discount_reversed_fen"].as_i64()
        ),
        (200, Some(false), Some(20_00))
    );
    let (_, resale) = app.redeem(&t, &app.code(&v), 150_00).await;
    assert_eq!(resale["reason"], "VOUCHER_ALREADY_REDEEMED");

    // Partial reversal of an entitlement restores the proportional part of the cap.
    let v = app.voucher(&furnishing, "r3");
    let (_, sale) = app.redeem(&f, &app.code(&v), 3_000_00).await;
    assert_eq!(sale["discount_fen"], 300_00);
    let id = sale["redemption_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/redemptions/{id}/reversals");
    let (s, rev) = app
        .reverse(
            &f,
            &path,
            json!({"reversal_ref": "p1", "refund_amount_fen": 1_000_00}),
        )
        .await;
    assert_eq!(
        (s, rev["discount_reversed_fen"].as_i64()),
        (200, Some(100_00)),
        "{rev}"
    );
    let used: i64 = sqlx::query_scalar("SELECT used_fen FROM entitlements")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(used, 200_00);
    let (s, rev) = app.reverse(&f, &path, json!({"reversal_ref": "p2"})).await;
    assert_eq!(
        (
            s,
            rev["discount_reversed_fen"].as_i64(),
            rev["refund_amount_fen"].as_i64()
        ),
        (200, Some(200_00), Some(2_000_00))
    );
    let used: i64 = sqlx::query_scalar("SELECT used_fen FROM entitlements")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(used, 0);
    let (s, e) = app
        .reverse(
            &f,
            &path,
            json!({"reversal_ref": "p3", "refund_amount_fen": 1}),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (409, Some("REFUND_NOT_ALLOWED")));

    // The refund window closes.
    let v = app.voucher(&restore, "r4");
    let (_, sale) = app.redeem(&t, &app.code(&v), 150_00).await;
    let id = sale["redemption_id"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::days(31));
    let (s, e) = app
        .reverse(
            &t,
            &format!("/v1/redemptions/{id}/reversals"),
            json!({"reversal_ref": "late"}),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (409, Some("REFUND_WINDOW_CLOSED")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_stale_replayed_and_misplaced_requests_are_refused_and_write_nothing() {
    let app = spawn().await;
    let campaign = app.catering(RefundPolicy::Restore, big()).await;
    let program = campaign.spec.program_id;
    let t = app
        .merchant("s", Category::Catering, None, &[program])
        .await;
    let other = app
        .merchant("other", Category::Catering, None, &[program])
        .await;
    let lodging = app
        .merchant("lodge", Category::Lodging, None, &[program])
        .await;
    let unapproved = app
        .merchant("unapproved", Category::Catering, None, &[])
        .await;
    let v = app.voucher(&campaign, "s1");
    let code = app.code(&v);
    let body =
        serde_json::to_vec(&json!({"code": code, "order_amount_fen": 150_00, "order_ref": "o-1"}))
            .unwrap();
    let before = app.written().await;

    // Replayed signed request: the same headers twice.
    let req = app
        .signed(&t, "POST", "/v1/redemptions", &b"{}"[..])
        .header("idempotency-key", "k0");
    let replay = req.try_clone().unwrap();
    let (s, _) = crate::redemption_support::json_of(req.send().await.unwrap()).await;
    assert_eq!(s, 400, "the first (empty) request passes authentication");
    let (s, e) = crate::redemption_support::json_of(replay.send().await.unwrap()).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("NONCE_REUSED")));

    // Stale timestamp.
    let old = redemption::sign_request(
        &t.key_id,
        &t.secret,
        "POST",
        "/v1/redemptions",
        (app.clock.now() - Duration::seconds(301)).timestamp(),
        &body,
    )
    .unwrap();
    let mut req = app
        .http
        .post(app.url("/v1/redemptions"))
        .header("content-type", "application/json")
        .header("idempotency-key", "k1")
        .body(body.clone());
    for (k, v) in old {
        req = req.header(k, v);
    }
    let (s, e) = crate::redemption_support::json_of(req.send().await.unwrap()).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("STALE_TIMESTAMP")));

    // Another merchant's key (signed with our secret): bad signature.
    let forged = crate::redemption_support::Term {
        key_id: other.key_id.clone(),
        ..t.clone()
    };
    let (s, e) = app
        .call(
            &forged,
            "POST",
            "/v1/redemptions",
            Some(serde_json::from_slice(&body).unwrap()),
            Some("k2"),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (401, Some("BAD_SIGNATURE")));

    // Amount tampered after signing.
    let headers = redemption::sign_request(
        &t.key_id,
        &t.secret,
        "POST",
        "/v1/redemptions",
        app.clock.now().timestamp(),
        &body,
    )
    .unwrap();
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("15000", "99999");
    let mut req = app
        .http
        .post(app.url("/v1/redemptions"))
        .header("content-type", "application/json")
        .header("idempotency-key", "k3")
        .body(tampered);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let (s, e) = crate::redemption_support::json_of(req.send().await.unwrap()).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("BAD_SIGNATURE")));

    // Revoked key.
    let revoked = app.terminal("s").await;
    let (s, _) = app
        .admin_post(
            &app.secrets.jincheng_admin.key,
            &format!(
                "/v1/admin/merchants/s/terminals/{}/revoke",
                revoked.terminal_id
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, 204);
    let (s, e) = app.redeem(&revoked, &code, 150_00).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("TERMINAL_KEY_INVALID")));

    // Forged token: the payload changed, signature kept.
    let mut forged_claims = v.clone();
    forged_claims.rule = voucher_core::Rule::Threshold {
        min_spend: Fen::ZERO,
        off: Fen::from_yuan(100).unwrap(),
    };
    let other_key = voucher_core::keys::SigningKey::generate(1).unwrap();
    let fake = voucher_core::token::sign(&other_key, &forged_claims);
    let fake_code = format!("{}.{}", fake.as_str(), code.rsplit_once('.').unwrap().1);
    let (s, d) = app.redeem(&t, &fake_code, 150_00).await;
    assert_eq!((s, d["reason"].as_str()), (200, Some("TOKEN_INVALID")));
    let (_, d) = app.redeem(&t, "garbage.code", 150_00).await;
    assert_eq!(d["reason"], "TOKEN_INVALID");

    // Screenshot: the code of two minutes ago.
    app.clock.advance(Duration::minutes(2));
    let (_, d) = app.redeem(&t, &code, 150_00).await;
    assert_eq!(d["reason"], "CODE_STALE");

    // Voucher of another city (Taiyuan 140100) at a Jincheng merchant.
    let mut taiyuan = app.voucher(&campaign, "s2");
    taiyuan.place = PlaceCode::try_from(140_100).unwrap();
    let (_, d) = app.redeem(&t, &app.code(&taiyuan), 150_00).await;
    assert_eq!(d["reason"], "OUTSIDE_ISSUING_PLACE");
    // A Yangcheng county voucher at a city-level merchant (outside the county).
    let mut county = app.voucher(&campaign, "s3");
    county.place = PlaceCode::try_from(140_522).unwrap();
    let (_, d) = app.redeem(&t, &app.code(&county), 150_00).await;
    assert_eq!(d["reason"], "OUTSIDE_ISSUING_PLACE");

    // Wrong category, unapproved merchant, below threshold, expired.
    let fresh = app.code(&v);
    let (_, d) = app.redeem(&lodging, &fresh, 150_00).await;
    assert_eq!(d["reason"], "MERCHANT_CATEGORY_MISMATCH");
    let (_, d) = app.redeem(&unapproved, &fresh, 150_00).await;
    assert_eq!(d["reason"], "MERCHANT_NOT_APPROVED");
    let (_, d) = app.redeem(&t, &fresh, 99_99).await;
    assert_eq!(d["reason"], "BELOW_THRESHOLD");
    app.clock.advance(Duration::days(8));
    let (_, d) = app.redeem(&t, &app.code(&v), 150_00).await;
    assert_eq!(d["reason"], "VOUCHER_EXPIRED");

    // Bad input: 4xx with a code.
    let (s, e) = app
        .call(
            &t,
            "POST",
            "/v1/redemptions",
            Some(json!({"code": "x", "order_amount_fen": -5, "order_ref": "o"})),
            Some("k9"),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (400, Some("INVALID_FIELD")));
    let (s, e) = app
        .call(
            &t,
            "POST",
            "/v1/redemptions",
            Some(json!({"code": "x", "order_amount_fen": 5, "order_ref": "o"})),
            None,
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (400, Some("MISSING_IDEMPOTENCY_KEY"))
    );
    let (s, e) = crate::redemption_support::json_of(
        app.http
            .post(app.url("/v1/redemptions"))
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (401, Some("MISSING_SIGNATURE")));

    assert_eq!(
        app.written().await,
        before,
        "refusals and declines wrote nothing"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_a_dropped_response_returns_the_same_redemption() {
    let app = spawn().await;
    let campaign = app.catering(RefundPolicy::Restore, big()).await;
    let t = app
        .merchant("i", Category::Catering, None, &[campaign.spec.program_id])
        .await;
    let v = app.voucher(&campaign, "i1");
    let body = json!({"code": app.code(&v), "order_amount_fen": 150_00, "order_ref": "order-77"});

    let (s1, first) = app
        .call(
            &t,
            "POST",
            "/v1/redemptions",
            Some(body.clone()),
            Some("idem-1"),
        )
        .await;
    let (s2, retry) = app
        .call(
            &t,
            "POST",
            "/v1/redemptions",
            Some(body.clone()),
            Some("idem-1"),
        )
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first["outcome"], "approved");
    assert_eq!(first, retry, "the stored answer is replayed");
    assert_eq!(app.count("redemptions").await, 1);

    let mut other = body.clone();
    other["order_amount_fen"] = json!(160_00);
    let (s, e) = app
        .call(&t, "POST", "/v1/redemptions", Some(other), Some("idem-1"))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED"))
    );

    // Concurrent duplicates: one decision, the others replay it or are told it is in flight.
    let v2 = app.voucher(&campaign, "i2");
    let body = json!({"code": app.code(&v2), "order_amount_fen": 150_00, "order_ref": "order-78"});
    let answers = join_all((0..8).map(|_| {
        app.call(
            &t,
            "POST",
            "/v1/redemptions",
            Some(body.clone()),
            Some("idem-2"),
        )
    }))
    .await;
    for (s, b) in &answers {
        assert!(
            (*s == 200 && b["outcome"] == "approved") || (*s == 409 && b["code"] == "IN_FLIGHT"),
            "{s} {b}"
        );
    }
    assert_eq!(app.count("redemptions").await, 2);

    // Queries: by id, by order ref, the day with totals.
    let id = first["redemption_id"].as_str().unwrap();
    let (s, one) = app
        .call(&t, "GET", &format!("/v1/redemptions/{id}"), None, None)
        .await;
    assert_eq!((s, one["order_ref"].as_str()), (200, Some("order-77")));
    let (s, by_ref) = app
        .call(
            &t,
            "GET",
            "/v1/redemptions/by-order-ref/order-77",
            None,
            None,
        )
        .await;
    assert_eq!((s, by_ref["redemption_id"].as_str()), (200, Some(id)));
    let (s, day) = app
        .call(&t, "GET", "/v1/redemptions?date=2026-05-01", None, None)
        .await;
    assert_eq!(
        (s, day["count"].as_i64(), day["discount_fen"].as_i64()),
        (200, Some(2), Some(40_00)),
        "{day}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_published_keys_check_codes_offline_and_ops_endpoints_answer() {
    let app = spawn().await;
    let campaign = app.catering(RefundPolicy::Restore, big()).await;
    let (s, doc) = crate::redemption_support::json_of(
        app.http
            .get(app.url("/.well-known/voucher-keys"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let keys = redemption::offline::parse_keys(&doc.to_string()).unwrap();
    assert_eq!(keys.len(), 1);
    let v = app.voucher(&campaign, "o1");
    let code = app.code(&v);
    let claims = redemption::offline_check(&code, &keys, app.clock.now()).unwrap();
    assert_eq!(claims.voucher_id, v.voucher_id);
    let other_key = voucher_core::keys::SigningKey::generate(1).unwrap();
    let forged = voucher_core::token::sign(&other_key, &v);
    assert!(redemption::offline_check(
        &format!("{}.AAAAAAAAAAAAAA", forged.as_str()),
        &keys,
        app.clock.now()
    )
    .is_err());
    assert!(
        redemption::offline_check(&code, &keys, t0() + Duration::days(30)).is_err(),
        "expired"
    );

    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("redemption_holds_outstanding"),
        "{metrics}"
    );
    // The shared request middleware counted the probes above under their route patterns.
    assert!(
        metrics.contains("redemption_http_requests_total{route=\"/healthz\",status=\"200\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}

/// Measures sequential redemption latency (one terminal, one connection) and the
/// throughput of 200 concurrent redemptions on one campaign budget with 1 bucket row (the
/// hot row) and with 16; prints them (the numbers go into the README).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redemption_latency_and_budget_bucket_cost_are_measured() {
    for buckets in [1, 16] {
        let app = spawn_with(|s| s.budget.buckets = buckets).await;
        let campaign = app.catering(RefundPolicy::Restore, big()).await;
        let t = app
            .merchant("lat", Category::Catering, None, &[campaign.spec.program_id])
            .await;
        let n = 200;
        let codes: Vec<String> = (0..n)
            .map(|i| app.code(&app.voucher(&campaign, &format!("l{i}"))))
            .collect();
        let mut times = Vec::with_capacity(n);
        for c in &codes {
            let started = Instant::now();
            let (_, b) = app.redeem(&t, c, 150_00).await;
            times.push(started.elapsed());
            assert_eq!(b["outcome"], "approved");
        }
        times.sort();
        let p = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)];
        eprintln!(
            "buckets={buckets}: sequential redemption latency over {n}: p50 {:?} p95 {:?} p99 {:?}",
            p(50),
            p(95),
            p(99)
        );
        let more: Vec<String> = (0..n)
            .map(|i| app.code(&app.voucher(&campaign, &format!("c{i}"))))
            .collect();
        let started = Instant::now();
        let answers = join_all(more.iter().map(|c| app.redeem(&t, c, 150_00))).await;
        let elapsed = started.elapsed();
        assert!(answers.iter().all(|(_, b)| b["outcome"] == "approved"));
        eprintln!("buckets={buckets}: {n} concurrent redemptions on one campaign: {elapsed:?}");
        assert_eq!(
            app.budget_left(campaign.id).await,
            big().as_i64() - 2 * 200 * 20_00
        );
        app.stop().await;
    }
}

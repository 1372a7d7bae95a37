//! Issue 14's checkout levers against real PostgreSQL, Redis and HTTP: the group commit
//! (concurrent decisions share one transaction, and still no voucher is spent twice, no
//! budget is exceeded, and a batch's failure answers every terminal 503 without losing an
//! acknowledged decision) and the spent filter (a voucher spent for good is refused without
//! a transaction, while the retry of the sale that spent it is still replayed).

use crate::redemption_support::{spawn_with, TestApp};
use futures::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;
use voucher_core::{Category, Fen, RefundPolicy};

/// The value of an unlabelled metric (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A sale of `code` with an explicit key and order ref (to retry it byte for byte).
async fn sale(
    app: &TestApp,
    term: &crate::redemption_support::Term,
    code: &str,
    key: &str,
    order_ref: &str,
) -> (u16, Value) {
    let body = json!({"code": code, "order_amount_fen": 150_00, "order_ref": order_ref});
    app.call(term, "POST", "/v1/redemptions", Some(body), Some(key))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_checkouts_share_group_commits_and_spend_each_voucher_exactly_once() {
    // Two deciders that wait up to 20 ms for a batch to fill: batches of several decisions.
    let app = spawn_with(|s| {
        s.checkout.deciders = 2;
        s.checkout.batch_max = 16;
        s.checkout.batch_wait_us = 20_000;
    })
    .await;
    let budget = Fen::from_yuan(2_000).unwrap(); // 100 discounts of 20 yuan
    let campaign = app.catering(RefundPolicy::Restore, budget).await;
    let mut terminals = Vec::new();
    for m in 0..4 {
        let merchant = format!("g{m}");
        terminals.push(
            app.merchant(
                &merchant,
                Category::Catering,
                None,
                &[campaign.spec.program_id],
            )
            .await,
        );
        terminals.push(app.terminal(&merchant).await);
    }
    // 120 vouchers, each presented at two terminals at once: 240 checkouts for a budget of
    // 100 discounts.
    let codes: Vec<String> = (0..120)
        .map(|i| app.code(&app.voucher(&campaign, &format!("p{i}"))))
        .collect();
    let calls = codes.iter().enumerate().flat_map(|(i, code)| {
        let (a, b) = (&terminals[i % 8], &terminals[(i + 3) % 8]);
        [app.redeem(a, code, 150_00), app.redeem(b, code, 150_00)]
    });
    let answers = join_all(calls).await;

    let approved = answers
        .iter()
        .filter(|(_, b)| b["outcome"] == "approved")
        .count();
    let reasons: Vec<&str> = answers
        .iter()
        .filter(|(_, b)| b["outcome"] == "declined")
        .filter_map(|(_, b)| b["reason"].as_str())
        .collect();
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(
        approved, 100,
        "the budget buys exactly 100 discounts: {answers:?}"
    );
    assert_eq!(approved + reasons.len(), 240);
    assert!(
        reasons
            .iter()
            .all(|r| *r == "VOUCHER_ALREADY_REDEEMED" || *r == "BUDGET_EXHAUSTED"),
        "{reasons:?}"
    );
    // The record agrees: one redemption per spent voucher, the budget spent to the fen.
    assert_eq!(app.count("redemptions").await, 100);
    assert_eq!(app.count("vouchers WHERE status = 'redeemed'").await, 100);
    assert_eq!(
        app.count("(SELECT voucher_id FROM redemptions GROUP BY voucher_id HAVING count(*) > 1) d")
            .await,
        0
    );
    assert_eq!(app.budget_left(campaign.id).await, 0);
    // And the decisions were grouped: fewer commits than decisions.
    let m = app.metrics().await;
    let (batches, grouped) = (
        metric(&m, "redemption_group_commit_batch_size_count"),
        metric(&m, "redemption_group_commit_batch_size_sum"),
    );
    assert!(
        grouped >= 200.0,
        "decisions through the deciders: {grouped}"
    );
    assert!(
        batches < grouped,
        "{batches} commits for {grouped} decisions"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_grouping_each_decision_commits_alone_and_the_race_still_holds() {
    let app = spawn_with(|s| s.checkout.deciders = 0).await;
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::from_yuan(1_000_000).unwrap())
        .await;
    let t1 = app
        .merchant("a0", Category::Catering, None, &[campaign.spec.program_id])
        .await;
    let t2 = app.terminal("a0").await;
    let code = app.code(&app.voucher(&campaign, "solo"));
    let answers =
        join_all((0..20).map(|i| app.redeem(if i % 2 == 0 { &t1 } else { &t2 }, &code, 150_00)))
            .await;
    let approved = answers
        .iter()
        .filter(|(_, b)| b["outcome"] == "approved")
        .count();
    assert_eq!(approved, 1, "{answers:?}");
    assert_eq!(app.count("redemptions").await, 1);
    let m = app.metrics().await;
    assert_eq!(metric(&m, "redemption_group_commit_batch_size_count"), 0.0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_voucher_spent_for_good_is_refused_without_a_transaction_and_its_sale_still_replays() {
    let app = spawn_with(|_| {}).await;
    let forfeit = app
        .catering(RefundPolicy::Forfeit, Fen::from_yuan(1_000_000).unwrap())
        .await;
    let restore = app
        .catering(RefundPolicy::Restore, Fen::from_yuan(1_000_000).unwrap())
        .await;
    let programs = [forfeit.spec.program_id, restore.spec.program_id];
    let t = app
        .merchant("sf", Category::Catering, None, &programs)
        .await;
    let other = app
        .merchant("sg", Category::Catering, None, &programs)
        .await;

    // Forfeit: once sold, the voucher is spent for good.
    let code = app.code(&app.voucher(&forfeit, "f1"));
    let key = Uuid::new_v4().to_string();
    let (s, first) = sale(&app, &t, &code, &key, "sf-1").await;
    assert_eq!(
        (s, first["outcome"].as_str()),
        (200, Some("approved")),
        "{first}"
    );
    let hits = |m: &str| metric(m, "redemption_spent_filter_hits_total");
    assert_eq!(hits(&app.metrics().await), 0.0);
    let (s, again) = app.redeem(&other, &code, 150_00).await;
    assert_eq!(
        (s, again["reason"].as_str()),
        (200, Some("VOUCHER_ALREADY_REDEEMED")),
        "{again}"
    );
    assert_eq!(hits(&app.metrics().await), 1.0, "refused by the filter");
    // The terminal that sold it retries (its answer was lost): the sale is replayed, not
    // refused.
    let (s, replay) = sale(&app, &t, &code, &key, "sf-1").await;
    assert_eq!(
        (s, &replay),
        (200, &first),
        "the stored answer, byte for byte"
    );
    assert_eq!(app.count("redemptions").await, 1);

    // Restore: a refund makes the voucher usable again, so the filter never holds it.
    let code = app.code(&app.voucher(&restore, "r1"));
    let (_, sold) = app.redeem(&t, &code, 150_00).await;
    let id = sold["redemption_id"].as_str().unwrap().to_owned();
    let (s, rev) = app
        .reverse(
            &t,
            &format!("/v1/redemptions/{id}/reversals"),
            json!({"reversal_ref": "back"}),
        )
        .await;
    assert_eq!((s, rev["restored"].as_bool()), (200, Some(true)), "{rev}");
    let (s, resold) = app.redeem(&other, &code, 150_00).await;
    assert_eq!(
        (s, resold["outcome"].as_str()),
        (200, Some("approved")),
        "{resold}"
    );
    // A hold of a forfeit voucher is not remembered either: voided, the voucher sells.
    let code = app.code(&app.voucher(&forfeit, "h1"));
    let (_, held) = app.checkout(&t, "/v1/authorizations", &code, 150_00).await;
    let hold = held["redemption_id"].as_str().unwrap().to_owned();
    let (s, voided) = app
        .call(
            &t,
            "POST",
            &format!("/v1/authorizations/{hold}/void"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{voided}");
    let (s, sold) = app.redeem(&other, &code, 150_00).await;
    assert_eq!(
        (s, sold["outcome"].as_str()),
        (200, Some("approved")),
        "{sold}"
    );
    assert_eq!(hits(&app.metrics().await), 2.0);
    app.stop().await;
}

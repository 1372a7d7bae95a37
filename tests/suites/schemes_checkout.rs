//! The seeds' other schemes at the till (issue 12), against real PostgreSQL, real Redis and
//! real HTTP: the 2025 以旧换新 per-item discount (002 §(十五)) with its per-item cap and
//! per-person per-category limits, the 旅游惠民年卡 annual card subsidised once (001 item 13),
//! and a program's extra rule on certified green / new-energy products (000 item 63, 003
//! §(十八)) settled as its own `subsidy_lines` row.
//!
//! The example rates and caps (15% of the price, at most 2,000 yuan per item; air conditioners
//! three per person; phones up to 6,000 yuan, at most 500 yuan each) are the 2025 national
//! trade-in rules that 002 §(十五) implements; the seeds give no figures of their own, and
//! the code has none: they are the campaign's configuration here.

use crate::redemption_support::{json_of, spawn, Term, TestApp};
use crate::stack_support;
use chrono::Duration;
use futures::future::join_all;
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::token::VoucherToken;
use voucher_core::{Campaign, Category, Clock, Fen, ManualClock, RefundPolicy, Rule, VoucherId};

fn big() -> Fen {
    Fen::from_yuan(100_000_000).unwrap()
}

/// 15% of each item, at most 2,000 yuan an item; a refrigerator once, air conditioners three
/// times per person; phones up to 6,000 yuan, at most 500 yuan each.
fn trade_in_rule(per_person_cap: Option<i64>) -> Rule {
    serde_json::from_value(json!({
        "type": "item_percent", "rate_bp": 1500, "item_cap": 200_000, "per_person_cap": per_person_cap,
        "categories": [
            {"product_category": "refrigerator", "per_person_items": 1},
            {"product_category": "air_conditioner", "per_person_items": 3},
            {"product_category": "phone", "per_person_items": 1, "item_cap": 50_000, "max_item_price": 600_000}
        ]
    }))
    .unwrap()
}

async fn trade_in_campaign(app: &TestApp, per_person_cap: Option<i64>, budget: Fen) -> Campaign {
    let program = app.program(RefundPolicy::Restore).await;
    app.campaign(
        program,
        Category::HomeFurnishing,
        trade_in_rule(per_person_cap),
        budget,
    )
    .await
}

fn line(category: &str, unit_price_fen: i64, quantity: i64) -> Value {
    json!({"product_category": category, "unit_price_fen": unit_price_fen, "quantity": quantity})
}

fn certified(unit_price_fen: i64, quantity: i64, attribute: &str, certificate: &str) -> Value {
    json!({"unit_price_fen": unit_price_fen, "quantity": quantity,
           "certifications": [{"attribute": attribute, "certificate_no": certificate}]})
}

fn total(lines: &Value) -> i64 {
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["unit_price_fen"].as_i64().unwrap() * l["quantity"].as_i64().unwrap())
        .sum()
}

/// A checkout (`path`) of an order made of `lines`, with a fresh idempotency key and order ref.
async fn buy(app: &TestApp, term: &Term, path: &str, code: &str, lines: Value) -> (u16, Value) {
    let body = json!({"code": code, "order_amount_fen": total(&lines),
        "order_ref": format!("o-{}", Uuid::new_v4().simple()), "lines": lines});
    app.call(
        term,
        "POST",
        path,
        Some(body),
        Some(&Uuid::new_v4().to_string()),
    )
    .await
}

async fn sale(app: &TestApp, term: &Term, code: &str, lines: Value) -> (u16, Value) {
    buy(app, term, "/v1/redemptions", code, lines).await
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn used_items(app: &TestApp, person: &str, category: &str) -> i64 {
    scalar(
        app,
        &format!(
            "SELECT coalesce(sum(used_items), 0)::int8 FROM item_category_counts
             WHERE person_id = '{person}' AND product_category = '{category}'"
        ),
    )
    .await
}

fn approved(answer: &(u16, Value)) -> &Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["outcome"], "approved", "{}", answer.1);
    &answer.1
}

fn declined(answer: &(u16, Value), reason: &str) {
    assert_eq!(
        (
            answer.0,
            answer.1["outcome"].as_str(),
            answer.1["reason"].as_str()
        ),
        (200, Some("declined"), Some(reason)),
        "{}",
        answer.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trade_in_items_get_15_percent_capped_per_item_and_a_fourth_air_conditioner_is_refused() {
    let app = spawn().await;
    let campaign = trade_in_campaign(&app, None, big()).await;
    let shop = app
        .merchant(
            "gome",
            Category::HomeFurnishing,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let code = app.code(&app.voucher(&campaign, "zhang"));

    // A 4,999.00 yuan refrigerator gets 15% = 749.85 yuan; two 15,000.00 yuan air
    // conditioners get 2,250 yuan each before the 2,000 yuan cap per item.
    let first = sale(
        &app,
        &shop,
        &code,
        json!([
            line("refrigerator", 4_999_00, 1),
            line("air_conditioner", 15_000_00, 2)
        ]),
    )
    .await;
    let body = approved(&first);
    assert_eq!(body["discount_fen"], 749_85 + 2 * 2_000_00);
    assert_eq!(body["to_pay_fen"], 34_999_00 - 4_749_85);
    assert_eq!(body["items"][0]["per_item_fen"], 749_85);
    assert_eq!(body["items"][1]["per_item_fen"], 2_000_00);
    assert_eq!(body["items"][1]["discount_fen"], 4_000_00);
    assert_eq!(body["cap_exhausted"], false);

    // The third air conditioner: 15% of 3,000 yuan.
    let third = sale(
        &app,
        &shop,
        &code,
        json!([line("air_conditioner", 3_000_00, 1)]),
    )
    .await;
    assert_eq!(approved(&third)["discount_fen"], 450_00);
    assert_eq!(used_items(&app, "zhang", "air_conditioner").await, 3);

    // A fourth is refused, and so is a second refrigerator; nothing is written.
    let before = app.written().await;
    let fourth = sale(
        &app,
        &shop,
        &code,
        json!([line("air_conditioner", 2_000_00, 1)]),
    )
    .await;
    declined(&fourth, "CATEGORY_LIMIT_REACHED");
    let fridge = sale(
        &app,
        &shop,
        &code,
        json!([line("refrigerator", 3_000_00, 1)]),
    )
    .await;
    declined(&fridge, "CATEGORY_LIMIT_REACHED");
    // Four on one order are refused for anyone, before the record is read.
    let other = app.code(&app.voucher(&campaign, "li"));
    let four = sale(
        &app,
        &shop,
        &other,
        json!([line("air_conditioner", 2_000_00, 4)]),
    )
    .await;
    declined(&four, "CATEGORY_LIMIT_REACHED");
    assert_eq!(app.written().await, before);
    assert_eq!(used_items(&app, "zhang", "air_conditioner").await, 3);
    assert_eq!(used_items(&app, "li", "air_conditioner").await, 0);

    // A phone above 6,000 yuan is refused; one at 5,999 yuan gets 500 yuan, not 899.85.
    let dear = sale(&app, &shop, &code, json!([line("phone", 6_999_00, 1)])).await;
    declined(&dear, "ITEM_PRICE_ABOVE_LIMIT");
    let phone = sale(&app, &shop, &code, json!([line("phone", 5_999_00, 1)])).await;
    assert_eq!(approved(&phone)["discount_fen"], 500_00);

    // No lines, or a category the campaign does not cover.
    let (s, none) = app.redeem(&shop, &other, 1_000_00).await;
    declined(&(s, none), "ITEMS_REQUIRED");
    let tv = sale(
        &app,
        &shop,
        &other,
        json!([line("television", 3_000_00, 1)]),
    )
    .await;
    declined(&tv, "PRODUCT_CATEGORY_NOT_COVERED");

    // The quote says the same as the checkout, and binds nothing.
    let (s, quote) = app
        .call(
            &shop,
            "POST",
            "/v1/quotes",
            Some(json!({"code": other, "order_amount_fen": 5_999_00,
                        "lines": [line("phone", 5_999_00, 1)]})),
            None,
        )
        .await;
    assert_eq!(
        (s, &quote["discount_fen"]),
        (200, &json!(500_00)),
        "{quote}"
    );
    assert_eq!(quote["items"][0]["product_category"], "phone");
    let (_, quote) = app
        .call(
            &shop,
            "POST",
            "/v1/quotes",
            Some(json!({"code": code, "order_amount_fen": 2_000_00,
                        "lines": [line("air_conditioner", 2_000_00, 1)]})),
            None,
        )
        .await;
    assert_eq!(quote["reason"], "CATEGORY_LIMIT_REACHED", "{quote}");

    let granted = 4_749_85 + 450_00 + 500_00;
    assert_eq!(app.budget_left(campaign.id).await, big().as_i64() - granted);
    assert_eq!(
        scalar(&app, "SELECT sum(used_fen)::int8 FROM entitlements").await,
        granted
    );
    assert_eq!(
        scalar(&app, "SELECT sum(discount_fen)::int8 FROM redemption_items").await,
        granted,
        "the stored lines add up to the discounts"
    );
    // The record shows the lines too.
    let id = body["redemption_id"].as_str().unwrap();
    let (_, stored) = app
        .call(&shop, "GET", &format!("/v1/redemptions/{id}"), None, None)
        .await;
    assert_eq!(stored["items"], body["items"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_checkouts_of_one_person_approve_exactly_the_category_limit() {
    let app = spawn().await;
    let campaign = trade_in_campaign(&app, None, big()).await;
    let mut shops = Vec::new();
    for m in 0..5 {
        shops.push(
            app.merchant(
                &format!("suning{m}"),
                Category::HomeFurnishing,
                None,
                &[campaign.spec.program_id],
            )
            .await,
        );
    }
    let code = app.code(&app.voucher(&campaign, "wang"));

    let answers = join_all((0..20).map(|i| {
        sale(
            &app,
            &shops[i % 5],
            &code,
            json!([line("air_conditioner", 4_000_00, 1)]),
        )
    }))
    .await;

    let ok = answers
        .iter()
        .filter(|(_, b)| b["outcome"] == "approved")
        .count();
    let limited = answers
        .iter()
        .filter(|(_, b)| b["reason"] == "CATEGORY_LIMIT_REACHED")
        .count();
    assert_eq!((ok, limited), (3, 17), "{answers:?}");
    assert_eq!(used_items(&app, "wang", "air_conditioner").await, 3);
    assert_eq!(app.count("redemptions").await, 3);
    assert_eq!(
        app.budget_left(campaign.id).await,
        big().as_i64() - 3 * 600_00
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_refund_or_a_void_gives_the_items_back_and_a_partial_refund_does_not() {
    let app = spawn().await;
    let campaign = trade_in_campaign(&app, None, big()).await;
    let shop = app
        .merchant(
            "haier",
            Category::HomeFurnishing,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let code = app.code(&app.voucher(&campaign, "zhao"));
    let two = sale(
        &app,
        &shop,
        &code,
        json!([line("air_conditioner", 3_000_00, 2)]),
    )
    .await;
    let two = approved(&two).clone();
    assert_eq!(two["discount_fen"], 900_00);
    approved(
        &sale(
            &app,
            &shop,
            &code,
            json!([line("air_conditioner", 3_000_00, 1)]),
        )
        .await,
    );
    declined(
        &sale(
            &app,
            &shop,
            &code,
            json!([line("air_conditioner", 3_000_00, 1)]),
        )
        .await,
        "CATEGORY_LIMIT_REACHED",
    );
    let path = format!(
        "/v1/redemptions/{}/reversals",
        two["redemption_id"].as_str().unwrap()
    );

    // Half of the order refunded: half the discount back, no item.
    let (s, half) = app
        .reverse(
            &shop,
            &path,
            json!({"reversal_ref": "r1", "refund_amount_fen": 3_000_00}),
        )
        .await;
    assert_eq!(
        (s, &half["discount_reversed_fen"]),
        (200, &json!(450_00)),
        "{half}"
    );
    assert_eq!(used_items(&app, "zhao", "air_conditioner").await, 3);
    declined(
        &sale(
            &app,
            &shop,
            &code,
            json!([line("air_conditioner", 3_000_00, 1)]),
        )
        .await,
        "CATEGORY_LIMIT_REACHED",
    );

    // The rest refunded: the order's two items come back.
    let (s, rest) = app
        .reverse(&shop, &path, json!({"reversal_ref": "r2"}))
        .await;
    assert_eq!(
        (s, &rest["discount_reversed_fen"]),
        (200, &json!(450_00)),
        "{rest}"
    );
    assert_eq!(used_items(&app, "zhao", "air_conditioner").await, 1);
    approved(
        &sale(
            &app,
            &shop,
            &code,
            json!([line("air_conditioner", 3_000_00, 2)]),
        )
        .await,
    );
    assert_eq!(used_items(&app, "zhao", "air_conditioner").await, 3);

    // A hold reserves the items; voiding it gives them back.
    let other = app.code(&app.voucher(&campaign, "qian"));
    let hold = buy(
        &app,
        &shop,
        "/v1/authorizations",
        &other,
        json!([line("air_conditioner", 3_000_00, 3)]),
    )
    .await;
    let hold = approved(&hold).clone();
    assert_eq!(hold["status"], "held");
    declined(
        &sale(
            &app,
            &shop,
            &other,
            json!([line("air_conditioner", 3_000_00, 1)]),
        )
        .await,
        "CATEGORY_LIMIT_REACHED",
    );
    let void = format!(
        "/v1/authorizations/{}/void",
        hold["redemption_id"].as_str().unwrap()
    );
    let (s, voided) = app.call(&shop, "POST", &void, None, None).await;
    assert_eq!((s, &voided["status"]), (200, &json!("voided")), "{voided}");
    assert_eq!(used_items(&app, "qian", "air_conditioner").await, 0);
    approved(
        &sale(
            &app,
            &shop,
            &other,
            json!([line("air_conditioner", 3_000_00, 1)]),
        )
        .await,
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cumulative_cap_cuts_the_lines_in_order_and_then_refuses() {
    let app = spawn().await;
    // 3,000 yuan per person in all.
    let campaign = trade_in_campaign(&app, Some(3_000_00), big()).await;
    let shop = app
        .merchant(
            "midea",
            Category::HomeFurnishing,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let code = app.code(&app.voucher(&campaign, "sun"));
    let first = sale(
        &app,
        &shop,
        &code,
        json!([line("air_conditioner", 15_000_00, 1)]),
    )
    .await;
    assert_eq!(approved(&first)["discount_fen"], 2_000_00);
    let second = sale(
        &app,
        &shop,
        &code,
        json!([
            line("refrigerator", 4_999_00, 1),
            line("air_conditioner", 15_000_00, 1)
        ]),
    )
    .await;
    let body = approved(&second);
    assert_eq!(body["discount_fen"], 1_000_00);
    assert_eq!(body["items"][0]["discount_fen"], 749_85);
    assert_eq!(body["items"][1]["discount_fen"], 250_15);
    assert_eq!(body["notice"], "CAP_EXHAUSTED");
    assert_eq!(body["cap_exhausted"], true);
    let before = app.written().await;
    declined(
        &sale(
            &app,
            &shop,
            &code,
            json!([line("air_conditioner", 1_000_00, 1)]),
        )
        .await,
        "CAP_EXHAUSTED",
    );
    assert_eq!(app.written().await, before);
    app.stop().await;
}

async fn annual_card_campaign(app: &TestApp, budget: Fen) -> Campaign {
    let program = app.program(RefundPolicy::Restore).await;
    let rule = Rule::AnnualCard {
        subsidy: Fen::try_from(10_00).unwrap(),
    };
    app.campaign(program, Category::CultureTourism, rule, budget)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_annual_card_is_subsidised_10_yuan_at_its_first_entry_and_never_again() {
    let app = spawn().await;
    let campaign = annual_card_campaign(&app, big()).await;
    let program = campaign.spec.program_id;
    let gate_a = app
        .merchant("taihang_gate", Category::CultureTourism, None, &[program])
        .await;
    let gate_b = app
        .merchant(
            "huangcheng_gate",
            Category::CultureTourism,
            None,
            &[program],
        )
        .await;
    let card = app.voucher(&campaign, "zhou");
    let code = app.code(&card);

    let (_, first) = app.redeem(&gate_a, &code, 50_00).await;
    assert_eq!(
        (
            &first["outcome"],
            &first["discount_fen"],
            &first["to_pay_fen"]
        ),
        (&json!("approved"), &json!(10_00), &json!(40_00)),
        "{first}"
    );
    assert_eq!(first["cap_exhausted"], true);
    for gate in [&gate_a, &gate_b, &gate_a] {
        let (_, later) = app.redeem(gate, &code, 50_00).await;
        assert_eq!(
            (
                &later["outcome"],
                &later["discount_fen"],
                &later["to_pay_fen"]
            ),
            (&json!("approved"), &json!(0), &json!(50_00)),
            "every later entry is a sale without subsidy: {later}"
        );
    }
    assert_eq!(app.count("redemptions").await, 4);
    assert_eq!(
        app.count("vouchers WHERE status = 'issued'").await,
        1,
        "the card stays usable"
    );
    assert_eq!(app.budget_left(campaign.id).await, big().as_i64() - 10_00);

    // An entry cheaper than the subsidy gets the entry's price, and the card is then used.
    let cheap = app.code(&app.voucher(&campaign, "wu"));
    let (_, entry) = app.redeem(&gate_b, &cheap, 6_00).await;
    assert_eq!(entry["discount_fen"], 6_00);
    let (_, again) = app.redeem(&gate_b, &cheap, 6_00).await;
    assert_eq!(again["discount_fen"], 0);

    // The first entry refunded in full (policy restore): the subsidy is available again.
    let path = format!(
        "/v1/redemptions/{}/reversals",
        first["redemption_id"].as_str().unwrap()
    );
    let (s, rev) = app
        .reverse(&gate_a, &path, json!({"reversal_ref": "refund"}))
        .await;
    assert_eq!(
        (s, &rev["discount_reversed_fen"]),
        (200, &json!(10_00)),
        "{rev}"
    );
    let (_, next) = app.redeem(&gate_b, &code, 50_00).await;
    assert_eq!(next["discount_fen"], 10_00, "{next}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_entries_racing_at_two_gates_get_one_subsidy_per_card() {
    let app = spawn().await;
    let campaign = annual_card_campaign(&app, big()).await;
    let program = campaign.spec.program_id;
    let gates = [
        app.merchant("gate_east", Category::CultureTourism, None, &[program])
            .await,
        app.merchant("gate_west", Category::CultureTourism, None, &[program])
            .await,
    ];
    let codes: Vec<String> = (0..3)
        .map(|p| app.code(&app.voucher(&campaign, &format!("card{p}"))))
        .collect();

    let answers = join_all((0..24).map(|i| app.redeem(&gates[i % 2], &codes[i % 3], 80_00))).await;

    for (i, code) in codes.iter().enumerate() {
        let mine: Vec<&Value> = answers
            .iter()
            .enumerate()
            .filter(|(j, _)| j % 3 == i)
            .map(|(_, (_, b))| b)
            .collect();
        assert!(mine.iter().all(|b| b["outcome"] == "approved"), "{mine:?}");
        let subsidised: Vec<i64> = mine
            .iter()
            .map(|b| b["discount_fen"].as_i64().unwrap())
            .filter(|d| *d > 0)
            .collect();
        assert_eq!(subsidised, vec![10_00], "card {code}: {mine:?}");
    }
    assert_eq!(
        app.budget_left(campaign.id).await,
        big().as_i64() - 3 * 10_00
    );
    assert_eq!(
        scalar(&app, "SELECT sum(used_fen)::int8 FROM entitlements").await,
        3 * 10_00
    );
    app.stop().await;
}

/// Sets an extra rule as the province administrator; the answer.
async fn set_extra(app: &TestApp, program: i64, rule: Value) -> Value {
    let key = app.secrets.province_admin.key.clone();
    let (s, body) = app
        .admin_post(
            &key,
            &format!("/v1/admin/programs/{program}/extra-rules"),
            rule,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    body
}

async fn extra_lines(app: &TestApp, kind: &str) -> Vec<(i64, String, String)> {
    sqlx::query_as(
        "SELECT amount_fen, payee_kind, merchant_id FROM subsidy_lines WHERE kind = $1 ORDER BY counted_at, amount_fen DESC",
    )
    .bind(kind)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_green_certified_line_gets_the_programs_extra_as_its_own_settlement_line() {
    let app = spawn().await;
    let furnishing = app.furnishing(RefundPolicy::Restore, big()).await;
    let program = furnishing.spec.program_id;
    let shop = app
        .merchant("greenhome", Category::HomeFurnishing, None, &[program])
        .await;
    let rule = set_extra(
        &app,
        program.0,
        json!({"attribute": "green_product", "rate_bp": 500, "cap_per_order": 500_00, "budget": 10_000_00}),
    )
    .await;
    assert_eq!(
        (&rule["kind"], &rule["remaining"], &rule["active"]),
        (
            &json!("extra:green_product"),
            &json!(10_000_00),
            &json!(true)
        )
    );
    let code = app.code(&app.voucher(&furnishing, "zheng"));

    // A 3,999.99 yuan refrigerator certified green and a 100 yuan kettle that is not: the
    // voucher takes 10% of 4,099.99 yuan (409.99), the extra 5% of 3,999.99 yuan (199.99).
    let lines = json!([
        certified(3_999_99, 1, "green_product", "CQC-GP-2024-001234"),
        {"unit_price_fen": 100_00, "quantity": 1}
    ]);
    let first = sale(&app, &shop, &code, lines).await;
    let body = approved(&first).clone();
    assert_eq!(body["discount_fen"], 409_99);
    assert_eq!(body["extras_fen"], 199_99);
    assert_eq!(body["to_pay_fen"], 4_099_99 - 409_99 - 199_99);
    assert_eq!(
        body["extras"],
        json!([{"attribute": "green_product", "kind": "extra:green_product",
                "base_fen": 3_999_99, "amount_fen": 199_99, "reversed_fen": 0}])
    );
    assert_eq!(
        extra_lines(&app, "extra:green_product").await,
        vec![(199_99, "merchant".to_owned(), "greenhome".to_owned())]
    );
    let (city, county, campaign): (i32, Option<i32>, Option<i64>) = sqlx::query_as(
        "SELECT city, county, campaign_id FROM subsidy_lines WHERE kind = 'extra:green_product'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (city, county, campaign),
        (140500, None, Some(furnishing.id.0))
    );

    // An uncertified order gets nothing extra.
    let plain = sale(
        &app,
        &shop,
        &code,
        json!([{"unit_price_fen": 2_000_00, "quantity": 1}]),
    )
    .await;
    let plain = approved(&plain);
    assert_eq!(
        (&plain["extras_fen"], plain.get("extras")),
        (&json!(0), None)
    );
    assert_eq!(app.count("subsidy_lines").await, 1);

    // Three partial refunds give the extra back exactly, each as a negative line.
    let path = format!(
        "/v1/redemptions/{}/reversals",
        body["redemption_id"].as_str().unwrap()
    );
    let mut back = 0;
    for (i, part) in [1_366_66, 1_366_66, 1_366_67].into_iter().enumerate() {
        let (s, rev) = app
            .reverse(
                &shop,
                &path,
                json!({"reversal_ref": format!("part{i}"), "refund_amount_fen": part}),
            )
            .await;
        assert_eq!(s, 200, "{rev}");
        back += rev["extras_reversed_fen"].as_i64().unwrap();
        let (_, replay) = app
            .reverse(
                &shop,
                &path,
                json!({"reversal_ref": format!("part{i}"), "refund_amount_fen": part}),
            )
            .await;
        assert_eq!(replay, rev, "a repeated reversal answers the same");
    }
    assert_eq!(back, 199_99);
    let lines = extra_lines(&app, "extra:green_product").await;
    assert_eq!(lines.len(), 4);
    assert!(lines[1..].iter().all(|(a, _, _)| *a < 0), "{lines:?}");
    assert_eq!(lines.iter().map(|(a, _, _)| a).sum::<i64>(), 0);
    assert_eq!(
        scalar(&app, "SELECT reversed_fen FROM redemption_extras").await,
        199_99
    );
    let key = app.secrets.jincheng_admin.key.clone();
    let resp = app
        .http
        .get(app.url(&format!("/v1/admin/programs/{}/extra-rules", program.0)))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    let (s, listed) = json_of(resp).await;
    assert_eq!(s, 200, "{listed}");
    assert_eq!(
        (&listed[0]["granted"], &listed[0]["remaining"]),
        (&json!(0), &json!(10_000_00)),
        "the reversals gave the budget back"
    );

    // The extra is the program's, not the rule type's: a threshold voucher of the same program
    // gets it too (5% of 150 yuan on top of 满100减20).
    let catering = app
        .campaign(
            program,
            Category::Catering,
            Rule::Threshold {
                min_spend: Fen::from_yuan(100).unwrap(),
                off: Fen::from_yuan(20).unwrap(),
            },
            big(),
        )
        .await;
    let restaurant = app
        .merchant("greenfood", Category::Catering, None, &[program])
        .await;
    let meal = app.code(&app.voucher(&catering, "zheng"));
    let dinner = sale(
        &app,
        &restaurant,
        &meal,
        json!([certified(150_00, 1, "green_product", "CQC-GP-2024-009999")]),
    )
    .await;
    let dinner = approved(&dinner);
    assert_eq!(
        (
            &dinner["discount_fen"],
            &dinner["extras_fen"],
            &dinner["to_pay_fen"]
        ),
        (&json!(20_00), &json!(7_50), &json!(122_50))
    );

    // A hold: the extra is reserved, settled only at capture.
    let hold = buy(
        &app,
        &shop,
        "/v1/authorizations",
        &code,
        json!([certified(
            1_000_00,
            1,
            "green_product",
            "CQC-GP-2024-000001"
        )]),
    )
    .await;
    let hold = approved(&hold).clone();
    assert_eq!(hold["extras_fen"], 50_00);
    let lines_before = app.count("subsidy_lines").await;
    let capture = format!(
        "/v1/authorizations/{}/capture",
        hold["redemption_id"].as_str().unwrap()
    );
    let (s, captured) = app.call(&shop, "POST", &capture, None, None).await;
    assert_eq!(
        (s, &captured["extras_fen"]),
        (200, &json!(50_00)),
        "{captured}"
    );
    assert_eq!(app.count("subsidy_lines").await, lines_before + 1);
    // A voided hold gives its reservation back and settles nothing.
    let hold = buy(
        &app,
        &shop,
        "/v1/authorizations",
        &code,
        json!([certified(
            1_000_00,
            1,
            "green_product",
            "CQC-GP-2024-000002"
        )]),
    )
    .await;
    let void = format!(
        "/v1/authorizations/{}/void",
        approved(&hold)["redemption_id"].as_str().unwrap()
    );
    let (s, _) = app.call(&shop, "POST", &void, None, None).await;
    assert_eq!(s, 200);
    assert_eq!(app.count("subsidy_lines").await, lines_before + 1);
    assert_eq!(
        scalar(&app, "SELECT used_fen FROM program_extra_rules").await,
        7_50 + 50_00
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_extra_budget_gives_no_extra_and_the_sale_is_still_approved() {
    let app = spawn().await;
    let furnishing = app.furnishing(RefundPolicy::Restore, big()).await;
    let program = furnishing.spec.program_id;
    let shops = [
        app.merchant("byd1", Category::HomeFurnishing, None, &[program])
            .await,
        app.merchant("byd2", Category::HomeFurnishing, None, &[program])
            .await,
    ];
    // 5% of a 1,000 yuan certified product is 50 yuan; the budget is 123.45 yuan.
    set_extra(
        &app,
        program.0,
        json!({"attribute": "new_energy", "rate_bp": 500, "cap_per_order": 100_00, "budget": 123_45}),
    )
    .await;
    let codes: Vec<String> = (0..10)
        .map(|p| app.code(&app.voucher(&furnishing, &format!("ne{p}"))))
        .collect();

    let answers = join_all((0..10).map(|i| {
        sale(
            &app,
            &shops[i % 2],
            &codes[i],
            json!([certified(1_000_00, 1, "new_energy", "NEV-2025-0001")]),
        )
    }))
    .await;

    let mut extras = 0;
    for a in &answers {
        let body = approved(a);
        assert_eq!(
            body["discount_fen"], 100_00,
            "the voucher's own discount is untouched"
        );
        extras += body["extras_fen"].as_i64().unwrap();
        assert_eq!(
            body["to_pay_fen"].as_i64().unwrap(),
            1_000_00 - 100_00 - body["extras_fen"].as_i64().unwrap()
        );
    }
    assert_eq!(extras, 123_45, "{answers:?}");
    assert_eq!(
        extra_lines(&app, "extra:new_energy")
            .await
            .iter()
            .map(|(a, _, _)| a)
            .sum::<i64>(),
        123_45
    );
    // The budget may not be set below what was granted.
    let key = app.secrets.province_admin.key.clone();
    let (s, e) = app
        .admin_post(
            &key,
            &format!("/v1/admin/programs/{}/extra-rules", program.0),
            json!({"attribute": "new_energy", "rate_bp": 500, "cap_per_order": 100_00, "budget": 100_00}),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("EXTRA_BUDGET_BELOW_GRANTED")),
        "{e}"
    );
    // A per-person cap: a resident gets at most 60 yuan across orders.
    set_extra(
        &app,
        program.0,
        json!({"attribute": "new_energy", "rate_bp": 500, "cap_per_order": 100_00,
               "per_person_cap": 60_00, "budget": 1_000_00}),
    )
    .await;
    let code = app.code(&app.voucher(&furnishing, "capped"));
    let mut got = Vec::new();
    for _ in 0..3 {
        let a = sale(
            &app,
            &shops[0],
            &code,
            json!([certified(1_000_00, 1, "new_energy", "NEV-2025-0002")]),
        )
        .await;
        got.push(approved(&a)["extras_fen"].as_i64().unwrap());
    }
    assert_eq!(got, vec![50_00, 10_00, 0]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_lines_and_bad_extra_rules_are_refused_with_4xx_and_write_nothing() {
    let app = spawn().await;
    let campaign = trade_in_campaign(&app, None, big()).await;
    let program = campaign.spec.program_id;
    let shop = app
        .merchant("badinput", Category::HomeFurnishing, None, &[program])
        .await;
    let code = app.code(&app.voucher(&campaign, "bad"));
    let before = (
        app.written().await,
        app.count("item_category_counts").await,
        app.count("subsidy_lines").await,
    );
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "lines not adding up to the order",
            json!({"order_amount_fen": 5_000_00, "lines": [line("refrigerator", 4_999_00, 1)]}),
            422,
            "LINES_TOTAL_MISMATCH",
        ),
        (
            "no line",
            json!({"order_amount_fen": 100, "lines": []}),
            400,
            "INVALID_FIELD",
        ),
        (
            "quantity 0",
            json!({"order_amount_fen": 100, "lines": [line("phone", 100, 0)]}),
            400,
            "INVALID_FIELD",
        ),
        (
            "a price of 0",
            json!({"order_amount_fen": 100, "lines": [line("phone", 0, 1)]}),
            400,
            "INVALID_FIELD",
        ),
        (
            "a category that is not a name",
            json!({"order_amount_fen": 100, "lines": [line("冰箱", 100, 1)]}),
            400,
            "INVALID_FIELD",
        ),
        (
            "an attribute that is not a name",
            json!({"order_amount_fen": 100, "lines": [certified(100, 1, "Green Product", "CQC-1234")]}),
            400,
            "INVALID_FIELD",
        ),
        (
            "a certificate number that is not one",
            json!({"order_amount_fen": 100, "lines": [certified(100, 1, "green_product", "x")]}),
            400,
            "INVALID_FIELD",
        ),
        (
            "an attribute twice on a line",
            json!({"order_amount_fen": 100, "lines": [{"unit_price_fen": 100, "quantity": 1, "certifications": [
                {"attribute": "green_product", "certificate_no": "CQC-0001"},
                {"attribute": "green_product", "certificate_no": "CQC-0002"}]}]}),
            400,
            "INVALID_FIELD",
        ),
        (
            "an unknown field on a line",
            json!({"order_amount_fen": 100, "lines": [{"unit_price_fen": 100, "quantity": 1, "colour": "red"}]}),
            400,
            "INVALID_FIELD",
        ),
        (
            "51 lines",
            json!({"order_amount_fen": 51, "lines": vec![line("phone", 1, 1); 51]}),
            400,
            "INVALID_FIELD",
        ),
    ];
    for (what, mut body, status, code_expected) in cases {
        body["code"] = json!(code);
        body["order_ref"] = json!(format!("o-{}", Uuid::new_v4().simple()));
        for path in ["/v1/redemptions", "/v1/authorizations", "/v1/quotes"] {
            let mut body = body.clone();
            if path == "/v1/quotes" {
                body.as_object_mut().unwrap().remove("order_ref");
            }
            let (s, e) = app
                .call(
                    &shop,
                    "POST",
                    path,
                    Some(body),
                    Some(&Uuid::new_v4().to_string()),
                )
                .await;
            let code = e["code"]
                .as_str()
                .unwrap_or_else(|| e["reason"].as_str().unwrap_or(""));
            assert_eq!((s, code), (status, code_expected), "{what} at {path}: {e}");
        }
    }
    assert_eq!(
        (
            app.written().await,
            app.count("item_category_counts").await,
            app.count("subsidy_lines").await
        ),
        before
    );

    // The idempotency key is bound to the lines: the same key with other lines is refused.
    let order_ref = format!("o-{}", Uuid::new_v4().simple());
    let body = |price: i64| {
        json!({"code": code, "order_amount_fen": 2_000_00, "order_ref": order_ref,
               "lines": [line("air_conditioner", price, 1), line("phone", 2_000_00 - price, 1)]})
    };
    let (s, first) = app
        .call(
            &shop,
            "POST",
            "/v1/redemptions",
            Some(body(1_000_00)),
            Some("key-1"),
        )
        .await;
    assert_eq!((s, &first["outcome"]), (200, &json!("approved")), "{first}");
    let (s, e) = app
        .call(
            &shop,
            "POST",
            "/v1/redemptions",
            Some(body(1_500_00)),
            Some("key-1"),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED")),
        "{e}"
    );

    // Extra rules: the administrator's mistakes.
    let province = app.secrets.province_admin.key.clone();
    let jincheng = app.secrets.jincheng_admin.key.clone();
    let path = format!("/v1/admin/programs/{}/extra-rules", program.0);
    let good = json!({"attribute": "green_product", "rate_bp": 500, "cap_per_order": 500_00, "budget": 10_000_00});
    let bad_rules: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "an attribute that is not a name",
            &province,
            json!({"attribute": "Green Product", "rate_bp": 500, "cap_per_order": 1, "budget": 1}),
            400,
            "INVALID_FIELD",
        ),
        (
            "a zero rate",
            &province,
            json!({"attribute": "green_product", "rate_bp": 0, "cap_per_order": 1, "budget": 1}),
            400,
            "INVALID_FIELD",
        ),
        (
            "a zero budget",
            &province,
            json!({"attribute": "green_product", "rate_bp": 500, "cap_per_order": 1, "budget": 0}),
            400,
            "INVALID_FIELD",
        ),
        (
            "an unknown field",
            &province,
            json!({"attribute": "green_product", "rate_bp": 500, "cap_per_order": 1, "budget": 1, "bonus": 1}),
            400,
            "INVALID_FIELD",
        ),
        (
            "a city officer",
            &jincheng,
            good.clone(),
            403,
            "FORBIDDEN_ROLE",
        ),
    ];
    for (what, key, body, status, expected) in bad_rules {
        let (s, e) = app.admin_post(key, &path, body).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (status, Some(expected)),
            "{what}: {e}"
        );
    }
    let (s, e) = app
        .admin_post(&province, "/v1/admin/programs/999999/extra-rules", good)
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (404, Some("PROGRAM_NOT_FOUND")),
        "{e}"
    );
    assert_eq!(app.count("program_extra_rules").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issuance_creates_trade_in_and_annual_card_campaigns_whose_vouchers_redeem_at_the_till() {
    let start = chrono::Utc::now();
    let clock = ManualClock::new(start);
    let stack = stack_support::start(Arc::new(clock.clone())).await;
    let province = stack.secrets.province_admin.key.clone();
    let jincheng = stack.secrets.jincheng_admin.key.clone();
    let (s, program) = stack
        .admin_post(
            &stack.issuance,
            &province,
            "/v1/admin/programs",
            json!({
            "name": "消费品以旧换新 2025", "funder_place": 140000, "province_ratio_bp": 5000,
            "pool": 20_000_000_000_i64, "refund_policy": "restore"}),
        )
        .await;
    assert_eq!(s, 201, "{program}");
    let opens = start + Duration::seconds(10);
    let campaign = |category: &str, rule: Value, limit: u32| {
        json!({"program_id": program["id"], "name": format!("晋城 {category}"), "owner_place": 140500,
            "category": category, "rule": rule, "stock": 100, "per_person_limit": limit,
            "rounds": [{"round_no": 1, "starts_at": opens, "quantity": 100}],
            "validity": {"days_after_claim": 30}, "budget": 100_000_000,
            "eligibility": {"places": [140500], "min_real_name_level": 1}, "distribution": "claim"})
    };
    let item_rule = json!({"type": "item_percent", "rate_bp": 1500, "item_cap": 200_000,
        "categories": [{"product_category": "refrigerator", "per_person_items": 1},
                       {"product_category": "air_conditioner", "per_person_items": 3}]});
    let card_rule = json!({"type": "annual_card", "subsidy": 1000});
    let (s, trade_in) = stack
        .admin_post(
            &stack.issuance,
            &jincheng,
            "/v1/admin/campaigns",
            campaign("home_furnishing", item_rule.clone(), 1),
        )
        .await;
    assert_eq!(s, 201, "{trade_in}");
    assert_eq!(trade_in["rule"], item_rule);
    let (s, card) = stack
        .admin_post(
            &stack.issuance,
            &jincheng,
            "/v1/admin/campaigns",
            campaign("culture_tourism", card_rule.clone(), 1),
        )
        .await;
    assert_eq!(s, 201, "{card}");
    assert_eq!(card["rule"], card_rule);
    // A card is issued once per person.
    let (s, e) = stack
        .admin_post(
            &stack.issuance,
            &jincheng,
            "/v1/admin/campaigns",
            campaign("culture_tourism", card_rule, 2),
        )
        .await;
    assert_eq!((s, e["code"].as_str()), (400, Some("INVALID_FIELD")), "{e}");

    for (id, category) in [
        ("appliances", "home_furnishing"),
        ("scenic", "culture_tourism"),
    ] {
        let n: u32 = id.bytes().map(u32::from).sum();
        let head = format!("91140500MA{n:07}");
        let credit = format!(
            "{head}{}",
            voucher_core::CreditCode::check_char(&head).unwrap()
        );
        let (s, b) = stack
            .admin_post(
                &stack.redemption,
                &jincheng,
                "/v1/admin/merchants",
                json!({
                "id": id, "name": id, "credit_code": credit, "category": category,
                "city": 140500, "settlement_account": "ICBC-6222-0002"}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let (s, b) = stack
            .admin_post(
                &stack.redemption,
                &jincheng,
                &format!("/v1/admin/merchants/{id}/approvals"),
                json!({"program_id": program["id"]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    clock.set(opens + Duration::seconds(5));
    let token = stack.sign_in("resident-1").await;
    let codes = DynamicCodes::new(
        &stack.secrets.dynamic_code_secret,
        redemption::Settings::default().dynamic_code.step_secs,
    )
    .unwrap();
    let mut code_of = std::collections::HashMap::new();
    for c in [&trade_in, &card] {
        let (s, claimed) = stack_support::json(
            stack
                .http
                .post(format!(
                    "{}/v1/campaigns/{}/claims",
                    stack.issuance, c["id"]
                ))
                .bearer_auth(&token)
                .json(&json!({"claim_id": Uuid::new_v4()}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 201, "{claimed}");
        let voucher = VoucherId(claimed["voucher_id"].as_str().unwrap().parse().unwrap());
        let token = VoucherToken::from_text(claimed["token"].as_str().unwrap().to_owned());
        code_of.insert(
            c["id"].as_i64().unwrap(),
            codes.code(&token, voucher, clock.now()).code,
        );
    }
    let shop = stack.pair("appliances").await;
    let gate = stack.pair("scenic").await;
    let order = |code: &str, amount: i64, lines: Option<Value>| {
        let mut b = json!({"code": code, "order_amount_fen": amount,
                           "order_ref": format!("o-{}", Uuid::new_v4().simple())});
        if let Some(l) = lines {
            b["lines"] = l;
        }
        b
    };
    let fridge = order(
        &code_of[&trade_in["id"].as_i64().unwrap()],
        4_999_00,
        Some(json!([line("refrigerator", 4_999_00, 1)])),
    );
    let (s, sold) = stack
        .signed(
            &shop,
            "POST",
            "/v1/redemptions",
            Some(fridge),
            Some(&Uuid::new_v4().to_string()),
        )
        .await;
    assert_eq!((s, &sold["discount_fen"]), (200, &json!(749_85)), "{sold}");
    for expected in [10_00, 0] {
        let entry = order(&code_of[&card["id"].as_i64().unwrap()], 60_00, None);
        let (s, entered) = stack
            .signed(
                &gate,
                "POST",
                "/v1/redemptions",
                Some(entry),
                Some(&Uuid::new_v4().to_string()),
            )
            .await;
        assert_eq!(
            (s, &entered["outcome"], &entered["discount_fen"]),
            (200, &json!("approved"), &json!(expected)),
            "{entered}"
        );
    }
    stack.stop().await;
}

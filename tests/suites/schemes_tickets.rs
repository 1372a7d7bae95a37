//! Scenic-spot ticket subsidies (门票补贴, seed 001 item 13) through the redemption
//! service's HTTP API, in process, on a private Redis, a fresh database and a manual clock
//! standing in the seed's window (2023年6月前): administrators create schemes for their places
//! only; the spots' signed terminals report sales (list 100.00 sold at 80.00: the city adds
//! 16.00 per ticket; 80.01: nothing; floored to the fen), idempotently under racing
//! retries; refunds give back exactly q × the per-ticket amounts; every eligible sale and
//! refund is subsidy lines, which the reconciliation library settles with the province /
//! city split and the county's co-funding.

use crate::redemption_support::{place, spawn, Term, TestApp};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use futures::future::join_all;
use reconciliation::period::{beijing, Period};
use reconciliation::settle::{settle, SettleRequest};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use uuid::Uuid;
use voucher_core::{BasisPoints, Category, Clock, Fen, NewProgram, ProgramId, RefundPolicy};

const JINCHENG: i32 = 140_500;
const YANGCHENG: i32 = 140_522;

/// `d` January 2023 at `hour`:00 Beijing time: inside the seed's window.
fn jan(d: u32, hour: u32) -> DateTime<Utc> {
    beijing()
        .with_ymd_and_hms(2023, 1, d, hour, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn jan_day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 1, d).unwrap()
}

/// The province's and the city's programs: the province pays all of its part (ratio
/// 10000), the city all of its own (ratio 0), Yangcheng co-funding `cofund_bp` of it.
async fn programs(app: &TestApp, cofund_bp: Option<u32>) -> (ProgramId, ProgramId) {
    let mut ids = Vec::new();
    for (name, ratio, cofund) in [
        ("山西省A级景区门票补贴", 10_000, None),
        ("晋城市A级景区门票补贴", 0, cofund_bp),
    ] {
        let spec = NewProgram {
            name: name.into(),
            funder_place: place(140_000),
            province_ratio_bp: BasisPoints::try_from(ratio).unwrap(),
            pool: Fen::from_yuan(10_000_000).unwrap(),
            city_allocations: BTreeMap::new(),
            county_cofund_bp: cofund.map(|c| BasisPoints::try_from(c).unwrap()),
            refund_policy: RefundPolicy::Forfeit,
        };
        ids.push(
            voucher_store::pg::programs::create(&app.db.pool, &spec)
                .await
                .unwrap()
                .id,
        );
    }
    (ids[0], ids[1])
}

/// The scheme body: Jincheng's rule (80% of list or less; the city adds 20% of the sale
/// price) with a province part of half the discount, at most 15.00 per ticket (the seed
/// leaves the provincial policy to the province: this is configuration), counting from
/// 2022-12-15 until 2023-06-01 (2023年6月前).
fn scheme_body(owner: i32, province: ProgramId, city: ProgramId) -> Value {
    json!({
        "name": "晋城A级景区首道门票补贴",
        "owner_place": owner,
        "province_program_id": province.0,
        "city_program_id": city.0,
        "rule": {
            "max_sale_ratio_bp": 8000,
            "province": {"basis": "discount", "rate_bp": 5000, "per_ticket_cap_fen": 15_00},
            "city_rate_bp": 2000
        },
        "starts_at": "2022-12-15T00:00:00+08:00",
        "ends_at": "2023-06-01T00:00:00+08:00"
    })
}

/// Creates a scheme as the Jincheng administrator; its id.
async fn scheme(app: &TestApp, body: Value) -> i64 {
    let key = app.secrets.jincheng_admin.key.clone();
    let (status, created) = app.admin_post(&key, "/v1/admin/ticket-schemes", body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_i64().unwrap()
}

/// A scenic spot (culture_tourism) of Jincheng, in `county` if given, approved for both
/// programs, with a terminal.
async fn spot(app: &TestApp, id: &str, county: Option<u32>, p: (ProgramId, ProgramId)) -> Term {
    app.merchant(id, Category::CultureTourism, county, &[p.0, p.1])
        .await
}

/// A signed sale report with `key` as its Idempotency-Key.
async fn report(
    app: &TestApp,
    term: &Term,
    key: &str,
    scheme: i64,
    sale_ref: &str,
    list: i64,
    sale: i64,
    quantity: i64,
) -> (u16, Value) {
    let body = json!({
        "scheme_id": scheme, "sale_ref": sale_ref,
        "list_price_fen": list, "sale_price_fen": sale, "quantity": quantity,
    });
    app.call(term, "POST", "/v1/ticket-sales", Some(body), Some(key))
        .await
}

/// A sale report with a fresh key and sale reference.
async fn sell(app: &TestApp, term: &Term, scheme: i64, list: i64, sale: i64, q: i64) -> Value {
    let fresh = Uuid::new_v4().simple().to_string();
    let (status, body) = report(app, term, &fresh, scheme, &fresh, list, sale, q).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn refund(
    app: &TestApp,
    term: &Term,
    sale: &Value,
    refund_ref: &str,
    q: i64,
) -> (u16, Value) {
    let path = format!(
        "/v1/ticket-sales/{}/refunds",
        sale["sale_id"].as_str().unwrap()
    );
    app.call(
        term,
        "POST",
        &path,
        Some(json!({"refund_ref": refund_ref, "quantity": q})),
        None,
    )
    .await
}

/// The subsidy lines paid to merchants, by kind (the province's first) and amount:
/// (kind, program, city, county, merchant, amount).
async fn lines(app: &TestApp) -> Vec<(String, i64, i32, Option<i32>, String, i64)> {
    sqlx::query_as(
        "SELECT kind, program_id, city, county, merchant_id, amount_fen FROM subsidy_lines
          WHERE payee_kind = 'merchant' AND person_id IS NULL AND campaign_id IS NULL
          ORDER BY kind DESC, amount_fen",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

/// Rows in every table a ticket request may write.
async fn written(app: &TestApp) -> [i64; 5] {
    [
        app.count("ticket_sales").await,
        app.count("ticket_refunds").await,
        app.count("subsidy_lines").await,
        app.count("idempotency_keys").await,
        app.count("ticket_schemes").await,
    ]
}

/// Settles the Beijing day `d` of January 2023 with the reconciliation library.
async fn settle_day(app: &TestApp, d: u32) {
    settle(
        &app.db.pool,
        &SettleRequest {
            period: Period::day(jan_day(d)),
            actor: "test".into(),
            now: jan(d + 1, 1),
        },
    )
    .await
    .unwrap();
}

/// (spending, province, city, county) of `program`'s batch for Jincheng on day `d`.
async fn batch(app: &TestApp, program: ProgramId, d: u32) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT b.spending_fen, b.province_fen, b.city_fen, b.county_fen
           FROM settlement_batches b JOIN settlement_runs r ON r.id = b.run_id
          WHERE b.city = $1 AND r.program_id = $2 AND r.period_start = $3 AND r.period_end = $3",
    )
    .bind(JINCHENG)
    .bind(program.0)
    .bind(jan_day(d))
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

async fn post_scheme(app: &TestApp, key: String, body: Value) -> (u16, Value) {
    app.admin_post(&key, "/v1/admin/ticket-schemes", body).await
}

/// The owner places of the schemes `key`'s holder is shown.
async fn owners_listed(app: &TestApp, key: &str) -> Vec<i64> {
    let resp = app
        .http
        .get(app.url("/v1/admin/ticket-schemes"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let all: Vec<Value> = resp.json().await.unwrap();
    all.iter()
        .map(|s| s["owner_place"].as_i64().unwrap())
        .collect()
}

fn parts(v: &Value) -> (i64, i64) {
    (
        v["province_fen"].as_i64().unwrap(),
        v["city_fen"].as_i64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listed_at_100_sold_at_80_the_city_adds_16_per_ticket_and_80_01_gets_nothing() {
    let app = spawn().await;
    app.clock.set(jan(15, 10));
    let p = programs(&app, None).await;
    let scheme = scheme(&app, scheme_body(JINCHENG, p.0, p.1)).await;
    let spot = spot(&app, "hcxf", None, p).await;

    // 001 item 13: sold at 80% of the list price (八折): the city adds 20% of the actual
    // price, 16.00 per ticket, 48.00 for three; the province half the 20.00 discount.
    let sale = sell(&app, &spot, scheme, 100_00, 80_00, 3).await;
    assert_eq!(sale["outcome"], "recorded");
    assert_eq!(sale["eligible"], true);
    assert_eq!(parts(&sale["per_ticket"]), (10_00, 16_00));
    assert_eq!(parts(&sale["total"]), (30_00, 48_00));
    assert_eq!(sale["max_eligible_sale_price_fen"], 80_00);
    assert_eq!(sale["sold_at"], json!(jan(15, 10)));

    // One fen above 80%: recorded, not eligible, nothing paid, no subsidy line.
    let above = sell(&app, &spot, scheme, 100_00, 80_01, 3).await;
    assert_eq!(above["eligible"], false);
    assert_eq!(above["reason"], "SALE_ABOVE_MAX_RATIO");
    assert_eq!(parts(&above["per_ticket"]), (0, 0));
    assert_eq!(parts(&above["total"]), (0, 0));

    // Floored to the fen: 20% of 79.99 is 15.998 → 15.99; half the 20.01 discount 10.005 → 10.00.
    let floored = sell(&app, &spot, scheme, 100_00, 79_99, 1).await;
    assert_eq!(parts(&floored["per_ticket"]), (10_00, 15_99));
    // The province part is capped at 15.00 per ticket: half the 100.00 discount would be 50.00.
    let capped = sell(&app, &spot, scheme, 200_00, 100_00, 2).await;
    assert_eq!(parts(&capped["per_ticket"]), (15_00, 20_00));
    assert_eq!(parts(&capped["total"]), (30_00, 40_00));

    assert_eq!(app.count("ticket_sales").await, 4);
    assert_eq!(app.count("ticket_sales WHERE NOT eligible AND province_per_ticket_fen = 0 AND city_per_ticket_fen = 0").await, 1);
    let spot_lines = lines(&app).await;
    let city = |amount: i64| {
        (
            "ticket_city".to_owned(),
            p.1 .0,
            JINCHENG,
            None,
            "hcxf".to_owned(),
            amount,
        )
    };
    let province = |amount: i64| {
        (
            "ticket_province".to_owned(),
            p.0 .0,
            JINCHENG,
            None,
            "hcxf".to_owned(),
            amount,
        )
    };
    assert_eq!(
        spot_lines,
        [
            province(10_00),
            province(30_00),
            province(30_00),
            city(15_99),
            city(40_00),
            city(48_00)
        ],
        "two lines per eligible sale, none for the sale above 80%"
    );
    let sources: Vec<String> = sqlx::query_scalar(
        "SELECT source FROM subsidy_lines WHERE source LIKE 'ticket:%' ORDER BY source",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let first = sale["sale_id"].as_str().unwrap();
    assert!(
        sources.contains(&format!("ticket:{first}:province")),
        "{sources:?}"
    );
    assert!(
        sources.contains(&format!("ticket:{first}:city")),
        "{sources:?}"
    );
    let counted: Vec<DateTime<Utc>> =
        sqlx::query_scalar("SELECT DISTINCT counted_at FROM subsidy_lines")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(counted, [jan(15, 10)], "counted at the sale time");

    // Settled with the reconciliation library: the province pays its program's lines in
    // full, the city its own; each spot's lines are their own settlement lines.
    settle_day(&app, 15).await;
    assert_eq!(batch(&app, p.0, 15).await, (70_00, 70_00, 0, 0));
    assert_eq!(batch(&app, p.1, 15).await, (103_99, 0, 103_99, 0));
    let settled: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, payee_id, payable_fen FROM settlement_subsidy_lines ORDER BY kind",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        settled,
        [
            ("ticket_city".to_owned(), "hcxf".to_owned(), 103_99),
            ("ticket_province".to_owned(), "hcxf".to_owned(), 70_00)
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_county_co_funds_the_city_part_of_its_scenic_spots_through_the_settlement() {
    let app = spawn().await;
    app.clock.set(jan(15, 10));
    // Yangcheng pays half of the city's part of its spots' tickets (县级配套).
    let p = programs(&app, Some(5000)).await;
    let city_scheme = scheme(&app, scheme_body(JINCHENG, p.0, p.1)).await;
    let county_scheme = scheme(&app, scheme_body(YANGCHENG, p.0, p.1)).await;
    let in_county = spot(&app, "hcxf-yc", Some(YANGCHENG as u32), p).await;
    let in_city = spot(&app, "jc-spot", None, p).await;

    // A spot in Yangcheng under the city's scheme and under the county's own: the city's
    // lines carry the county either way; the province's carry none.
    sell(&app, &in_county, city_scheme, 100_00, 80_00, 3).await;
    sell(&app, &in_county, county_scheme, 50_00, 40_00, 1).await;
    sell(&app, &in_city, city_scheme, 100_00, 80_00, 1).await;
    // A spot of Jincheng proper is not one of Yangcheng's.
    let fresh = Uuid::new_v4().to_string();
    let (status, body) = report(
        &app,
        &in_city,
        &fresh,
        county_scheme,
        "x-1",
        100_00,
        80_00,
        1,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("TICKET_MERCHANT_NOT_IN_SCHEME")),
        "{body}"
    );

    let by_county: Vec<(String, Option<i32>, i64)> = sqlx::query_as(
        "SELECT kind, county, sum(amount_fen)::bigint FROM subsidy_lines GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        by_county,
        [
            ("ticket_city".to_owned(), Some(YANGCHENG), 48_00 + 8_00),
            ("ticket_city".to_owned(), None, 16_00),
            ("ticket_province".to_owned(), None, 30_00 + 5_00 + 10_00),
        ]
    );

    settle_day(&app, 15).await;
    // City program: S = 72.00, of which Yangcheng's spots 56.00; the county pays half of
    // that (28.00), the city the rest (44.00); the province nothing (ratio 0).
    assert_eq!(batch(&app, p.1, 15).await, (72_00, 0, 44_00, 28_00));
    let shares: Vec<(i32, i64, i64)> = sqlx::query_as(
        "SELECT s.county, s.spending_fen, s.county_fen FROM settlement_county_shares s
           JOIN settlement_batches b ON b.id = s.batch_id WHERE b.program_id = $1",
    )
    .bind(p.1 .0)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(shares, [(YANGCHENG, 56_00, 28_00)]);
    // Province program: it pays its part in full.
    assert_eq!(batch(&app, p.0, 15).await, (45_00, 45_00, 0, 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_report_retried_or_raced_is_recorded_once_and_answered_the_same() {
    let app = spawn().await;
    app.clock.set(jan(15, 10));
    let p = programs(&app, None).await;
    let scheme = scheme(&app, scheme_body(JINCHENG, p.0, p.1)).await;
    let spot = spot(&app, "hcxf", None, p).await;
    let second_till = app.terminal("hcxf").await;

    // The same key again (a lost answer): the first answer.
    let (s1, first) = report(&app, &spot, "k-1", scheme, "T-0001", 100_00, 80_00, 3).await;
    let (s2, again) = report(&app, &spot, "k-1", scheme, "T-0001", 100_00, 80_00, 3).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, again);
    // The same sale under another key, from the spot's other till: the same sale.
    let (s3, other_key) = report(
        &app,
        &second_till,
        "k-2",
        scheme,
        "T-0001",
        100_00,
        80_00,
        3,
    )
    .await;
    assert_eq!(s3, 200, "{other_key}");
    assert_eq!(other_key["sale_id"], first["sale_id"]);
    // The same key with another body; the same sale_ref for another sale: refused.
    let (s4, reused) = report(&app, &spot, "k-1", scheme, "T-0001", 100_00, 80_00, 2).await;
    assert_eq!(
        (s4, reused["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED"))
    );
    let (s5, other_sale) = report(&app, &spot, "k-3", scheme, "T-0001", 100_00, 70_00, 3).await;
    assert_eq!(
        (s5, other_sale["code"].as_str()),
        (409, Some("TICKET_SALE_REF_USED")),
        "{other_sale}"
    );
    assert_eq!(app.count("ticket_sales").await, 1);
    assert_eq!(app.count("subsidy_lines").await, 2);

    // 40 reports of one sale racing from two tills under 40 keys, and 20 under one key:
    // one sale, two lines, every answer that is not IN_FLIGHT names it.
    let keys: Vec<String> = (0..40).map(|i| format!("race-{i}")).collect();
    let racing = keys.iter().enumerate().map(|(i, k)| {
        let till = if i % 2 == 0 { &spot } else { &second_till };
        report(&app, till, k, scheme, "T-0002", 150_00, 120_00, 2)
    });
    let same_key =
        (0..20).map(|_| report(&app, &spot, "one-key", scheme, "T-0002", 150_00, 120_00, 2));
    let (a, b) = tokio::join!(join_all(racing), join_all(same_key));
    let mut ids = std::collections::BTreeSet::new();
    for (status, body) in a.iter().chain(b.iter()) {
        match status {
            200 => {
                assert_eq!(parts(&body["total"]), (30_00, 48_00), "{body}");
                ids.insert(body["sale_id"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(body["code"], "IN_FLIGHT", "{body}"),
            _ => panic!("{status} {body}"),
        }
    }
    assert!(
        a.iter().all(|(s, _)| *s == 200),
        "different keys never collide"
    );
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(app.count("ticket_sales WHERE sale_ref = 'T-0002'").await, 1);
    assert_eq!(app.count("subsidy_lines").await, 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_gives_back_exactly_q_times_the_per_ticket_amounts_in_its_own_period() {
    let app = spawn().await;
    app.clock.set(jan(15, 10));
    let p = programs(&app, Some(5000)).await;
    let scheme = scheme(&app, scheme_body(JINCHENG, p.0, p.1)).await;
    let other = spot(&app, "other", None, p).await;
    let spot = spot(&app, "hcxf-yc", Some(YANGCHENG as u32), p).await;
    // 79.99 × 5: 10.00 + 15.99 per ticket.
    let sale = sell(&app, &spot, scheme, 100_00, 79_99, 5).await;
    assert_eq!(parts(&sale["total"]), (50_00, 79_95));
    settle_day(&app, 15).await;

    // The next day: one ticket back, exactly its per-ticket amounts; the same refund_ref again
    // answers the same refund; another quantity under it is refused.
    app.clock.set(jan(16, 9));
    let (status, one) = refund(&app, &spot, &sale, "R-1", 1).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(parts(&one["given_back"]), (10_00, 15_99));
    let (_, replay) = refund(&app, &spot, &sale, "R-1", 1).await;
    assert_eq!(replay, one);
    let (status, body) = refund(&app, &spot, &sale, "R-1", 2).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("TICKET_REFUND_REF_USED"))
    );
    // Not another merchant's to refund; not more than is left.
    let (status, body) = refund(&app, &other, &sale, "R-x", 1).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("TICKET_SALE_NOT_FOUND"))
    );
    let (status, body) = refund(&app, &spot, &sale, "R-2", 5).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("TICKET_REFUND_TOO_MANY"))
    );
    assert_eq!(body["details"]["left"], 4);

    // Ten refunds of one ticket racing for the four left: four succeed.
    let refs: Vec<String> = (0..10).map(|i| format!("race-{i}")).collect();
    let racing = join_all(refs.iter().map(|r| refund(&app, &spot, &sale, r, 1))).await;
    let ok = racing.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 4, "{racing:?}");
    assert!(racing
        .iter()
        .all(|(s, b)| *s == 200 || b["code"] == "TICKET_REFUND_TOO_MANY"));
    assert_eq!(
        app.count("ticket_sales WHERE refunded_quantity = 5").await,
        1
    );

    // Every fen is given back, as negative lines with their own sources, the city's with
    // the county; the day's settlement counts them in the day they happen.
    let net: Vec<(String, Option<i32>, i64, i64)> = sqlx::query_as(
        "SELECT kind, county, sum(amount_fen)::bigint, count(*) FILTER (WHERE amount_fen < 0)
           FROM subsidy_lines GROUP BY 1, 2 ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        net,
        [
            ("ticket_city".to_owned(), Some(YANGCHENG), 0, 5),
            ("ticket_province".to_owned(), None, 0, 5)
        ]
    );
    assert_eq!(
        app.count("subsidy_lines WHERE source LIKE 'ticket-refund:%'")
            .await,
        10
    );
    settle_day(&app, 16).await;
    assert_eq!(batch(&app, p.1, 16).await.0, -79_95);
    assert_eq!(batch(&app, p.0, 16).await.0, -50_00);
    let reversed: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT l.kind, l.granted_fen, l.reversed_fen FROM settlement_subsidy_lines l
           JOIN settlement_batches b ON b.id = l.batch_id JOIN settlement_runs r ON r.id = b.run_id
          WHERE r.period_start = $1 ORDER BY 1",
    )
    .bind(jan_day(16))
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        reversed,
        [
            ("ticket_city".to_owned(), 0, 79_95),
            ("ticket_province".to_owned(), 0, 50_00)
        ]
    );

    // An ineligible sale's refund gives nothing back and writes no line.
    let above = sell(&app, &spot, scheme, 100_00, 90_00, 2).await;
    let lines_before = app.count("subsidy_lines").await;
    let (status, none) = refund(&app, &spot, &above, "R-1", 2).await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(parts(&none["given_back"]), (0, 0));
    assert_eq!(app.count("subsidy_lines").await, lines_before);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_reports_closed_windows_and_strangers_are_refused_and_write_nothing() {
    let app = spawn().await;
    app.clock.set(jan(15, 10));
    let p = programs(&app, None).await;
    let scheme = scheme(&app, scheme_body(JINCHENG, p.0, p.1)).await;
    let spot = spot(&app, "hcxf", None, p).await;
    let restaurant = app
        .merchant("restaurant", Category::Catering, None, &[p.0, p.1])
        .await;
    let unapproved = app
        .merchant("unapproved", Category::CultureTourism, None, &[p.1])
        .await;
    let before = written(&app).await;

    let ok = json!({"scheme_id": scheme, "sale_ref": "S-1", "list_price_fen": 100_00,
                    "sale_price_fen": 80_00, "quantity": 1});
    let with = |field: &str, value: Value| {
        let mut b = ok.clone();
        b[field] = value;
        b
    };
    let mut unknown = ok.clone();
    unknown["colour"] = json!("red");
    for (body, field) in [
        (with("sale_price_fen", json!(100_01)), "sale_price_fen"),
        (with("sale_price_fen", json!(0)), "sale_price_fen"),
        (with("list_price_fen", json!(-5)), "list_price_fen"),
        (with("quantity", json!(0)), "quantity"),
        (with("quantity", json!(10_001)), "quantity"),
        (with("quantity", json!("three")), "quantity"),
        (with("sale_ref", json!("")), "sale_ref"),
        (unknown, "colour"),
    ] {
        let (status, answer) = app
            .call(
                &spot,
                "POST",
                "/v1/ticket-sales",
                Some(body),
                Some(&Uuid::new_v4().to_string()),
            )
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("INVALID_FIELD")),
            "{answer}"
        );
        assert_eq!(answer["details"]["field"], field, "{answer}");
    }
    let (status, answer) = app
        .call(&spot, "POST", "/v1/ticket-sales", Some(ok.clone()), None)
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("MISSING_IDEMPOTENCY_KEY"))
    );
    // Unsigned: refused before anything is read.
    let unsigned = app
        .http
        .post(app.url("/v1/ticket-sales"))
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);

    let refused = |scheme_id: i64, who: &'static str| (scheme_id, who);
    for ((scheme_id, who), term, code, status) in [
        (
            refused(scheme + 100, "unknown scheme"),
            &spot,
            "TICKET_SCHEME_NOT_FOUND",
            404,
        ),
        (
            refused(scheme, "a restaurant"),
            &restaurant,
            "TICKET_MERCHANT_NOT_IN_SCHEME",
            403,
        ),
        (
            refused(scheme, "not approved for the province's program"),
            &unapproved,
            "TICKET_MERCHANT_NOT_IN_SCHEME",
            403,
        ),
    ] {
        let body = with("scheme_id", json!(scheme_id));
        let (s, answer) = app
            .call(
                term,
                "POST",
                "/v1/ticket-sales",
                Some(body),
                Some(&Uuid::new_v4().to_string()),
            )
            .await;
        assert_eq!(
            (s, answer["code"].as_str()),
            (status, Some(code)),
            "{who}: {answer}"
        );
    }

    // After the window (2023年6月前): refused with the dates; before it too.
    for at in [
        beijing()
            .with_ymd_and_hms(2023, 6, 1, 0, 0, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc),
        beijing()
            .with_ymd_and_hms(2022, 12, 14, 23, 59, 59)
            .single()
            .unwrap()
            .with_timezone(&Utc),
    ] {
        app.clock.set(at);
        let (status, answer) = app
            .call(
                &spot,
                "POST",
                "/v1/ticket-sales",
                Some(ok.clone()),
                Some(&Uuid::new_v4().to_string()),
            )
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (409, Some("TICKET_SCHEME_CLOSED")),
            "{answer}"
        );
        assert_eq!(answer["details"]["starts_at"], "2022-12-14T16:00:00Z");
        assert_eq!(answer["details"]["ends_at"], "2023-05-31T16:00:00Z");
    }
    app.clock.set(jan(15, 10));
    // A refund of a sale that does not exist, and a bad refund.
    let ghost = json!({"sale_id": Uuid::now_v7().to_string()});
    let (status, answer) = refund(&app, &spot, &ghost, "R-1", 1).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (404, Some("TICKET_SALE_NOT_FOUND"))
    );
    let (status, answer) = refund(&app, &spot, &ghost, "R-1", 0).await;
    assert_eq!(
        (status, answer["details"]["field"].as_str()),
        (400, Some("quantity"))
    );

    assert_eq!(
        written(&app).await,
        before,
        "nothing written by any refusal"
    );
    // The same report, now fine, is recorded (the refusals left its key and sale_ref free).
    let (status, answer) = app
        .call(&spot, "POST", "/v1/ticket-sales", Some(ok), Some("k-fine"))
        .await;
    assert_eq!(
        (status, answer["eligible"].as_bool()),
        (200, Some(true)),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_city_officer_creates_schemes_only_for_the_city_and_its_counties_with_fitting_programs() {
    let app = spawn().await;
    let p = programs(&app, None).await;
    let jincheng = app.secrets.jincheng_admin.key.clone();
    let taiyuan = app.secrets.taiyuan_admin.key.clone();
    let province = app.secrets.province_admin.key.clone();
    let post = |key: &str, body: Value| post_scheme(&app, key.to_owned(), body);

    let (status, created) = post(&jincheng, scheme_body(JINCHENG, p.0, p.1)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["rule"]["province"]["basis"], "discount");
    assert_eq!(created["rule"]["city_rate_bp"], 2000);
    assert_eq!(created["owner_place"], JINCHENG);
    let (status, _) = post(&jincheng, scheme_body(YANGCHENG, p.0, p.1)).await;
    assert_eq!(status, 201);
    let before = app.count("ticket_schemes").await;

    // Another city's scheme: refused for Jincheng's officer, fine for Taiyuan's.
    let (status, body) = post(&jincheng, scheme_body(140_100, p.0, p.1)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("FORBIDDEN_PLACE")),
        "{body}"
    );
    // Programs that do not exist or do not fit the part they are named for.
    let (status, body) = post(&jincheng, scheme_body(JINCHENG, ProgramId(999), p.1)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("PROGRAM_NOT_FOUND")),
        "{body}"
    );
    let (status, body) = post(&jincheng, scheme_body(JINCHENG, p.1, p.0)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("TICKET_PROGRAM_MISMATCH")),
        "{body}"
    );
    // Bad specs, each naming its field.
    let mut bad = Vec::new();
    let mut b = scheme_body(JINCHENG, p.0, p.0);
    bad.push((b.clone(), "city_program_id"));
    b = scheme_body(JINCHENG, p.0, p.1);
    b["ends_at"] = b["starts_at"].clone();
    bad.push((b, "ends_at"));
    b = scheme_body(140_000, p.0, p.1);
    bad.push((b, "owner_place"));
    b = scheme_body(JINCHENG, p.0, p.1);
    b["rule"]["max_sale_ratio_bp"] = json!(0);
    bad.push((b, "rule.max_sale_ratio_bp"));
    b = scheme_body(JINCHENG, p.0, p.1);
    b["rule"]["max_sale_ratio_bp"] = json!(10_001);
    bad.push((b, "rule.max_sale_ratio_bp"));
    b = scheme_body(JINCHENG, p.0, p.1);
    b["rule"]["province"]["basis"] = json!("everything");
    bad.push((b, "rule.province.basis"));
    b = scheme_body(JINCHENG, p.0, p.1);
    b["name"] = json!("  ");
    bad.push((b, "name"));
    for (body, field) in bad {
        let (status, answer) = post(&jincheng, body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("INVALID_FIELD")),
            "{field}: {answer}"
        );
        assert_eq!(answer["details"]["field"], field, "{answer}");
    }
    let (status, body) = app
        .admin_post(
            "not-a-key",
            "/v1/admin/ticket-schemes",
            scheme_body(JINCHENG, p.0, p.1),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        app.count("ticket_schemes").await,
        before,
        "no refusal wrote a scheme"
    );

    let (status, _) = post(&taiyuan, scheme_body(140_100, p.0, p.1)).await;
    assert_eq!(status, 201);

    // Each officer lists the schemes of their places; the province all.
    assert_eq!(owners_listed(&app, &jincheng).await, [140_500, 140_522]);
    assert_eq!(owners_listed(&app, &taiyuan).await, [140_100]);
    assert_eq!(
        owners_listed(&app, &province).await,
        [140_500, 140_522, 140_100]
    );

    // The routes are in the OpenAPI document.
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/ticket-sales",
        "/v1/ticket-sales/{id}/refunds",
        "/v1/admin/ticket-schemes",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["components"]["schemas"]["TicketSaleView"].is_object());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_clock_of_the_report_is_the_sale_time_and_a_sale_counts_in_its_day() {
    let app = spawn().await;
    // 23:59 Beijing on the 15th and 00:01 on the 16th: two settlement days.
    app.clock.set(jan(15, 23) + chrono::Duration::minutes(59));
    let p = programs(&app, None).await;
    let scheme = scheme(&app, scheme_body(JINCHENG, p.0, p.1)).await;
    let spot = spot(&app, "hcxf", None, p).await;
    sell(&app, &spot, scheme, 100_00, 80_00, 1).await;
    app.clock.set(jan(16, 0) + chrono::Duration::minutes(1));
    sell(&app, &spot, scheme, 100_00, 80_00, 2).await;
    assert_eq!(app.clock.now(), jan(16, 0) + chrono::Duration::minutes(1));
    settle_day(&app, 15).await;
    settle_day(&app, 16).await;
    assert_eq!(batch(&app, p.1, 15).await.0, 16_00);
    assert_eq!(batch(&app, p.1, 16).await.0, 32_00);
    app.stop().await;
}

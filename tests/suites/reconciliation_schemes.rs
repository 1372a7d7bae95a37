//! The other schemes settle through the same programs, ledger and split as vouchers:
//! subsidy lines (a car trade-in paid to a resident, a scenic spot's ticket subsidy, a green
//! top-up) count in S with the redemptions, are split between the province and the city with
//! the pool and allocation limits, are written as their own lines and paid through the
//! ledger; and a program's advance to a merchant (预拨资金) is netted against what the
//! merchant earns, with the balance in either direction, to the fen.

use crate::reconciliation_support::*;
use chrono::{DateTime, Utc};
use reconciliation::advances::{advance, balances, AdvanceRequest};
use reconciliation::auth::{Admin, Role};
use reconciliation::period::Period;
use reconciliation::{report, ReconError};
use uuid::Uuid;
use voucher_core::PlaceCode;

fn officer(role: Role, place: u32) -> Admin {
    Admin {
        name: format!("{}-{place}", role.as_str()),
        role,
        place: PlaceCode::try_from(place).unwrap(),
    }
}

/// One subsidy line as a scheme writes it.
#[allow(clippy::too_many_arguments)]
async fn line(
    fx: &Fx,
    kind: &str,
    source: &str,
    city: i32,
    county: Option<i32>,
    payee: (&str, &str),
    amount: i64,
    when: DateTime<Utc>,
) {
    let (payee_kind, id) = payee;
    sqlx::query(
        "INSERT INTO subsidy_lines (id, source, kind, program_id, city, county, payee_kind,
                                    merchant_id, person_id, amount_fen, counted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(Uuid::now_v7())
    .bind(source)
    .bind(kind)
    .bind(fx.program)
    .bind(city)
    .bind(county)
    .bind(payee_kind)
    .bind((payee_kind == "merchant").then_some(id))
    .bind((payee_kind == "resident").then_some(id))
    .bind(amount)
    .bind(when)
    .execute(&fx.db.pool)
    .await
    .unwrap();
}

async fn approve(fx: &Fx, merchant: &str) {
    sqlx::query(
        "INSERT INTO merchant_programs (merchant_id, program_id, approved_by, approved_at)
         VALUES ($1, $2, 'test', now())",
    )
    .bind(merchant)
    .bind(fx.program)
    .execute(&fx.db.pool)
    .await
    .unwrap();
}

async fn balance(fx: &Fx, account: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(amount_fen), 0)::bigint FROM ledger_postings WHERE account_code = $1",
    )
    .bind(account)
    .fetch_one(&fx.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn car_trade_in_subsidies_are_split_half_and_half_and_paid_to_the_residents() {
    // 004 §二(一): up to 2,000 yuan for a transfer, 3,000 for a scrapping; the province pays
    // 50% of each city's actual spending.
    let fx = Fx::new(100_000_000, 5000, None, &[(JINCHENG, 10_000_000)]).await;
    let jc = fx.campaign(JINCHENG).await;
    fx.merchant("m-jc", "晋城家居馆", JINCHENG).await;
    fx.sale(jc, "m-jc", "p-1", 2_000, at(10, 10, 0)).await;
    line(
        &fx,
        "trade_in",
        "trade_in:1",
        JINCHENG,
        None,
        ("resident", "p-car-1"),
        200_000,
        at(10, 11, 0),
    )
    .await;
    line(
        &fx,
        "trade_in",
        "trade_in:2",
        JINCHENG,
        Some(YANGCHENG),
        ("resident", "p-car-2"),
        300_000,
        at(10, 12, 0),
    )
    .await;
    // Approved the next day: the next period.
    line(
        &fx,
        "trade_in",
        "trade_in:3",
        JINCHENG,
        None,
        ("resident", "p-car-3"),
        200_000,
        at(11, 9, 0),
    )
    .await;
    fx.settle(10, 10).await;

    let (province, city, county, spending) = fx.batch(JINCHENG, 10, 10).await;
    assert_eq!(
        spending,
        2_000 + 500_000,
        "S counts the voucher and both trade-ins"
    );
    assert_eq!(province, 251_000, "the province pays 50%");
    assert_eq!(city + county, 251_000);
    fx.assert_balanced().await;
    assert_eq!(
        balance(&fx, "resident_payable:p-car-1").await,
        -200_000,
        "owed to the resident"
    );
    assert_eq!(balance(&fx, "resident_payable:p-car-2").await, -300_000);
    assert_eq!(
        balance(&fx, "resident_payable:p-car-3").await,
        0,
        "not in this period"
    );
    let lines: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, payee_id, payable_fen FROM settlement_subsidy_lines ORDER BY payee_id",
    )
    .fetch_all(&fx.db.pool)
    .await
    .unwrap();
    assert_eq!(
        lines,
        [
            ("trade_in".to_owned(), "p-car-1".to_owned(), 200_000),
            ("trade_in".to_owned(), "p-car-2".to_owned(), 300_000)
        ]
    );

    // The reports show the lines, and Σ payables = Σ S still holds.
    let r = report::load(&fx.db.pool, &Period::day(day(10)), None)
        .await
        .unwrap();
    let csv = report::subsidy_lines_csv(&r).unwrap();
    assert!(
        csv.contains("trade_in,resident,p-car-2,,3000.00,0.00,3000.00,1"),
        "{csv}"
    );
    assert!(report::summary(&r).contains("Σ payables = Σ S = Σ province + Σ city + Σ county: yes"));
    assert_eq!(r.programs[0].payable_fen, r.programs[0].spending_fen);
}

#[tokio::test]
async fn a_citys_allocation_bounds_the_province_share_of_all_schemes_together() {
    let fx = Fx::new(100_000_000, 5000, None, &[(JINCHENG, 100_000)]).await;
    fx.merchant("m-jc", "皇城相府景区", JINCHENG).await;
    line(
        &fx,
        "ticket",
        "ticket:1:city",
        JINCHENG,
        None,
        ("merchant", "m-jc"),
        160_000,
        at(10, 10, 0),
    )
    .await;
    line(
        &fx,
        "trade_in",
        "trade_in:1",
        JINCHENG,
        None,
        ("resident", "p-1"),
        200_000,
        at(10, 11, 0),
    )
    .await;
    fx.settle(10, 10).await;
    let (province, city, _, spending) = fx.batch(JINCHENG, 10, 10).await;
    assert_eq!(spending, 360_000);
    assert_eq!(
        province, 100_000,
        "half would be 180,000: the allocation stops it"
    );
    assert_eq!(city, 260_000);
    fx.assert_balanced().await;
}

#[tokio::test]
async fn an_advance_is_drawn_down_by_what_the_merchant_earns_and_the_balance_is_exact() {
    let fx = Fx::new(100_000_000, 5000, None, &[]).await;
    let jc = fx.campaign(JINCHENG).await;
    fx.merchant("m-jc", "晋城家电城", JINCHENG).await;
    fx.merchant("m-other", "晋城手机店", JINCHENG).await;
    approve(&fx, "m-jc").await;
    let province = officer(Role::Province, 140_000);
    let request = AdvanceRequest {
        program_id: fx.program,
        merchant_id: "m-jc".into(),
        amount_fen: 500_000,
        reference: "ADV-2025-001".into(),
    };
    // Before sales: 5,000 yuan advanced, once however often it is sent.
    let first = advance(&fx.db.pool, &province, &request, at(1, 9, 0))
        .await
        .unwrap();
    assert!(first.created);
    let again = advance(&fx.db.pool, &province, &request, at(1, 9, 5))
        .await
        .unwrap();
    assert_eq!((again.id, again.created), (first.id, false));
    assert_eq!(
        balance(&fx, "merchant_advance:m-jc:p1").await.abs(),
        500_000
    );
    fx.assert_balanced().await;

    // Refusals: a city officer, a merchant not approved for the program, a bad amount.
    let city = officer(Role::City, 140_500);
    assert!(matches!(
        advance(
            &fx.db.pool,
            &city,
            &AdvanceRequest {
                reference: "x".into(),
                ..request.clone()
            },
            at(1, 9, 0)
        )
        .await,
        Err(ReconError::ForbiddenRole { .. })
    ));
    assert!(matches!(
        advance(
            &fx.db.pool,
            &province,
            &AdvanceRequest {
                merchant_id: "m-other".into(),
                reference: "y".into(),
                ..request.clone()
            },
            at(1, 9, 0)
        )
        .await,
        Err(ReconError::Usage(_))
    ));
    assert!(matches!(
        advance(
            &fx.db.pool,
            &province,
            &AdvanceRequest {
                amount_fen: 0,
                reference: "z".into(),
                ..request.clone()
            },
            at(1, 9, 0)
        )
        .await,
        Err(ReconError::Usage(_))
    ));

    // Day 10: the merchant grants 2,000 yuan: all drawn from the advance, nothing to pay.
    for i in 0..4 {
        fx.sale(jc, "m-jc", &format!("p{i}"), 50_000, at(10, 10, i))
            .await;
    }
    fx.settle(10, 10).await;
    // Day 11: 4,000 yuan more: the last 3,000 of the advance, then 1,000 to pay.
    for i in 0..8 {
        fx.sale(jc, "m-jc", &format!("q{i}"), 50_000, at(11, 10, i))
            .await;
    }
    fx.settle(11, 11).await;
    let lines: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT a.payable_fen, a.outstanding_before_fen, a.drawdown_fen, a.outstanding_after_fen,
                a.net_payable_fen
           FROM settlement_advance_lines a JOIN settlement_batches b ON b.id = a.batch_id
           JOIN settlement_runs r ON r.id = b.run_id ORDER BY r.period_start",
    )
    .fetch_all(&fx.db.pool)
    .await
    .unwrap();
    assert_eq!(
        lines,
        [
            (200_000, 500_000, 200_000, 300_000, 0),
            (400_000, 300_000, 300_000, 0, 100_000)
        ]
    );
    fx.assert_balanced().await;
    assert_eq!(
        balance(&fx, "merchant_advance:m-jc:p1").await,
        0,
        "the advance is used up"
    );
    assert_eq!(
        balance(&fx, "merchant_payable:m-jc").await,
        -100_000,
        "1,000 yuan still owed to it"
    );
    assert_eq!(balance(&fx, "advance_disbursement:p1").await, -500_000);
    let b = balances(&fx.db.pool, &province).await.unwrap();
    assert_eq!(
        (b[0].advanced_fen, b[0].drawn_fen, b[0].outstanding_fen),
        (500_000, 500_000, 0)
    );
    // Taiyuan's officer does not see Jincheng's merchant.
    assert!(balances(&fx.db.pool, &officer(Role::City, 140_100))
        .await
        .unwrap()
        .is_empty());

    let r = report::load(&fx.db.pool, &Period::day(day(11)), None)
        .await
        .unwrap();
    let csv = report::advances_csv(&r).unwrap();
    assert!(
        csv.contains("m-jc,4000.00,3000.00,3000.00,0.00,1000.00"),
        "{csv}"
    );
}

#[tokio::test]
async fn an_unearned_advance_stays_owed_by_the_merchant_and_reversals_never_draw_it_down() {
    let fx = Fx::new(100_000_000, 5000, None, &[]).await;
    let jc = fx.campaign(JINCHENG).await;
    fx.merchant("m-jc", "晋城家电城", JINCHENG).await;
    approve(&fx, "m-jc").await;
    let province = officer(Role::Province, 140_000);
    advance(
        &fx.db.pool,
        &province,
        &AdvanceRequest {
            program_id: fx.program,
            merchant_id: "m-jc".into(),
            amount_fen: 300_000,
            reference: "ADV-1".into(),
        },
        at(1, 9, 0),
    )
    .await
    .unwrap();
    let sale = fx.sale(jc, "m-jc", "p1", 100_000, at(10, 10, 0)).await;
    fx.settle(10, 10).await;
    // Day 11: only the reversal of day 10's sale: the merchant's payable is negative.
    fx.reverse(sale, 100_000, at(11, 10, 0)).await;
    fx.settle(11, 11).await;
    let lines: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT a.payable_fen, a.drawdown_fen, a.outstanding_after_fen, a.net_payable_fen
           FROM settlement_advance_lines a JOIN settlement_batches b ON b.id = a.batch_id
           JOIN settlement_runs r ON r.id = b.run_id ORDER BY r.period_start",
    )
    .fetch_all(&fx.db.pool)
    .await
    .unwrap();
    assert_eq!(
        lines,
        [
            (100_000, 100_000, 200_000, 0),
            (-100_000, 0, 200_000, -100_000)
        ]
    );
    fx.assert_balanced().await;
    // The merchant holds 2,000 yuan of advance and owes back 1,000 yuan of reversed discount.
    assert_eq!(balance(&fx, "merchant_advance:m-jc:p1").await, 200_000);
    assert_eq!(balance(&fx, "merchant_payable:m-jc").await, 100_000);
}

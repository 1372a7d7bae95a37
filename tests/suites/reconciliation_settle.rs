//! Settlement against a real PostgreSQL: the split of actual spending between province and
//! cities when the pool runs out over two periods, odd fen and county co-funding, a reversal
//! in a later period, idempotent re-runs with byte-identical reports, and crash safety.

use crate::reconciliation_support::*;
use reconciliation::period::Period;
use reconciliation::report;
use reconciliation::settle::{settle, SettleRequest};
use reconciliation::ReconError;
use std::process::Stdio;

#[tokio::test]
async fn the_pool_runs_out_across_two_periods_and_is_shared_by_largest_remainder() {
    // Arrange: 100 yuan of pool at 50%; merchants in Taiyuan, Jincheng and Datong.
    let fx = Fx::new(10_000, 5000, None, &[]).await;
    let (ty, jc, dt) = (
        fx.campaign(TAIYUAN).await,
        fx.campaign(JINCHENG).await,
        fx.campaign(DATONG).await,
    );
    fx.merchant("m-ty", "太原家具城", TAIYUAN).await;
    fx.merchant("m-jc", "晋城家居馆", JINCHENG).await;
    fx.merchant("m-dt", "大同家居", DATONG).await;
    // Day 1: Taiyuan 80.01, Jincheng 60.01 (odd fen).
    fx.sale(ty, "m-ty", "p1", 5_000, at(1, 10, 0)).await;
    fx.sale(ty, "m-ty", "p2", 3_001, at(1, 23, 59)).await;
    fx.sale(jc, "m-jc", "p3", 6_001, at(1, 0, 0)).await;
    // Day 2: Taiyuan 50.00, Jincheng 30.01, Datong 9.99.
    fx.sale(ty, "m-ty", "p4", 5_000, at(2, 9, 0)).await;
    fx.sale(jc, "m-jc", "p5", 3_001, at(2, 12, 0)).await;
    fx.sale(dt, "m-dt", "p6", 999, at(2, 18, 0)).await;

    // Act
    fx.settle(1, 1).await;
    fx.settle(2, 2).await;

    // Assert: day 1 is paid in full (⌊8001/2⌋ = 4000, ⌊6001/2⌋ = 3000), 30.00 left.
    assert_eq!(fx.batch(TAIYUAN, 1, 1).await, (4_000, 4_001, 0, 8_001));
    assert_eq!(fx.batch(JINCHENG, 1, 1).await, (3_000, 3_001, 0, 6_001));
    // Day 2: claims 2500 + 1500 + 499 = 4499 > 3000 left. 3000 × claim / 4499 floors to
    // 1667, 1000, 332 (= 2999); the last fen goes to the largest remainder, Datong's.
    assert_eq!(fx.batch(TAIYUAN, 2, 2).await, (1_667, 3_333, 0, 5_000));
    assert_eq!(fx.batch(JINCHENG, 2, 2).await, (1_000, 2_001, 0, 3_001));
    assert_eq!(fx.batch(DATONG, 2, 2).await, (333, 666, 0, 999));
    assert_eq!(
        fx.scalar("SELECT pool_after_fen FROM settlement_runs ORDER BY period_start DESC LIMIT 1")
            .await,
        0
    );
    let limits: Vec<String> = sqlx::query_scalar(
        "SELECT b.limit_kind FROM settlement_batches b JOIN settlement_runs r ON r.id = b.run_id
          WHERE r.period_start = $1 ORDER BY b.city",
    )
    .bind(day(2))
    .fetch_all(&fx.db.pool)
    .await
    .unwrap();
    assert_eq!(limits, vec!["pool", "pool", "pool"]);
    fx.assert_balanced().await;
    // The pool account's balance is what the province paid: the whole pool.
    let drawn = fx.scalar("SELECT sum(amount_fen)::bigint FROM ledger_postings WHERE account_code LIKE 'provincial_pool:%'").await;
    assert_eq!(drawn, 10_000);
}

#[tokio::test]
async fn odd_fen_county_cofunding_and_city_allocations_are_exact() {
    // 50%, a county co-funds 30% of its campaigns' local share, Jincheng capped at 6.00.
    let fx = Fx::new(1_000_000, 5000, Some(3000), &[(JINCHENG, 600)]).await;
    let jc = fx.campaign(JINCHENG).await;
    let yc = fx.campaign(YANGCHENG).await;
    let ty = fx.campaign(TAIYUAN).await;
    fx.merchant("m-jc", "晋城家居馆", JINCHENG).await;
    fx.merchant("m-yc", "阳城家居", JINCHENG).await;
    fx.merchant("m-ty", "太原家具城", TAIYUAN).await;
    fx.sale(jc, "m-jc", "p1", 1_001, at(3, 10, 0)).await;
    fx.sale(yc, "m-yc", "p2", 333, at(3, 11, 0)).await;
    fx.sale(ty, "m-ty", "p3", 1_999, at(3, 12, 0)).await;

    fx.settle(3, 3).await;

    // Jincheng: S = 1334, ⌊S/2⌋ = 667 but the allocation caps P at 600; local 734.
    // Yangcheng pays 30% of its part of the local share: ⌊734 × 333/1334 × 0.3⌋ = 54.
    let (p, city, county, s) = fx.batch(JINCHENG, 3, 3).await;
    assert_eq!((p, city, county, s), (600, 680, 54, 1_334));
    let county_row: (i32, i64, i64) =
        sqlx::query_as("SELECT county, spending_fen, county_fen FROM settlement_county_shares")
            .fetch_one(&fx.db.pool)
            .await
            .unwrap();
    assert_eq!(county_row, (YANGCHENG, 333, 54));
    // Taiyuan has no allocation: ⌊1999/2⌋ = 999, the city pays 1000.
    assert_eq!(fx.batch(TAIYUAN, 3, 3).await, (999, 1_000, 0, 1_999));
    let limit: String =
        sqlx::query_scalar("SELECT limit_kind FROM settlement_batches WHERE city = $1")
            .bind(JINCHENG)
            .fetch_one(&fx.db.pool)
            .await
            .unwrap();
    assert_eq!(limit, "allocation");
    fx.assert_balanced().await;
    assert_eq!(
        fx.scalar(&format!(
            "SELECT sum(amount_fen)::bigint FROM ledger_postings WHERE account_code = 'county_budget:p{}:140522'",
            fx.program
        ))
        .await,
        54
    );
}

#[tokio::test]
async fn a_reversal_in_a_later_period_pays_the_province_back_but_never_below_zero() {
    let fx = Fx::new(1_000_000, 5000, None, &[]).await;
    let jc = fx.campaign(JINCHENG).await;
    fx.merchant("m-jc", "晋城家居馆", JINCHENG).await;
    // Day 4: a sale of 30.01, a hold created on day 4 but captured on day 5, a hold voided.
    let sale = fx.sale(jc, "m-jc", "p1", 3_001, at(4, 10, 0)).await;
    fx.redemption(
        jc,
        "m-jc",
        "p2",
        20_000,
        500,
        "captured",
        at(4, 23, 0),
        Some(at(5, 0, 30)),
    )
    .await;
    fx.redemption(
        jc,
        "m-jc",
        "p3",
        20_000,
        700,
        "voided",
        at(4, 12, 0),
        Some(at(4, 12, 5)),
    )
    .await;
    // Day 5: the sale is reversed in full.
    fx.reverse(sale, 3_001, at(5, 9, 0)).await;

    fx.settle(4, 4).await;
    fx.settle(5, 5).await;

    // Day 4: only the sale counts (the hold is not captured yet, the voided hold never).
    assert_eq!(fx.batch(JINCHENG, 4, 4).await, (1_500, 1_501, 0, 3_001));
    // Day 5: S = 500 − 3001 = −2501. ⌊0.5 × −2501⌋ = −1251 (toward −∞) but the province had
    // paid only 1500 … which covers it: P = −1251, the city −1250.
    assert_eq!(fx.batch(JINCHENG, 5, 5).await, (-1_251, -1_250, 0, -2_501));
    let payable: i64 = sqlx::query_scalar(
        "SELECT l.payable_fen FROM settlement_merchant_lines l JOIN settlement_batches b ON b.id = l.batch_id
          JOIN settlement_runs r ON r.id = b.run_id WHERE r.period_start = $1",
    )
    .bind(day(5))
    .fetch_one(&fx.db.pool)
    .await
    .unwrap();
    assert_eq!(
        payable, -2_501,
        "the merchant owes back the reversed discount net of the capture"
    );
    assert_eq!(
        fx.scalar("SELECT pool_after_fen FROM settlement_runs WHERE period_start = '2026-05-05'")
            .await,
        1_000_000 - 1_500 + 1_251
    );
    fx.assert_balanced().await;
}

#[tokio::test]
async fn a_payback_stops_at_what_the_province_had_paid() {
    let fx = Fx::new(1_000_000, 5000, None, &[]).await;
    let jc = fx.campaign(JINCHENG).await;
    fx.merchant("m-jc", "晋城家居馆", JINCHENG).await;
    // Day 6: a sale of 99.99 (P = 4999); day 7: a sale of 0.01 (P = ⌊0.5⌋ = 0); day 8: the
    // first sale is reversed.
    let old = fx.sale(jc, "m-jc", "p1", 9_999, at(6, 8, 0)).await;
    fx.settle(6, 6).await;
    fx.sale(jc, "m-jc", "p2", 1, at(7, 8, 0)).await;
    fx.reverse(old, 9_999, at(8, 8, 0)).await;
    fx.settle(7, 7).await;
    fx.settle(8, 8).await;
    // Paid 4999 + 0 so far; day 8 owes ⌊−9999/2⌋ = −5000 but is capped at −4999.
    assert_eq!(fx.batch(JINCHENG, 8, 8).await, (-4_999, -5_000, 0, -9_999));
    let paid = fx
        .scalar("SELECT sum(province_fen)::bigint FROM settlement_batches")
        .await;
    assert_eq!(paid, 0, "cumulative P never below zero");
    fx.assert_balanced().await;
}

/// Every rendering of the report of `from..=to`.
async fn rendered(fx: &Fx, from: u32, to: u32) -> Vec<(&'static str, String)> {
    let r = report::load(&fx.db.pool, &Period::new(day(from), day(to)).unwrap(), None)
        .await
        .unwrap();
    report::render_all(&r).unwrap()
}

async fn a_settled_day() -> Fx {
    let fx = Fx::new(5_000, 5000, None, &[]).await;
    let (ty, jc) = (fx.campaign(TAIYUAN).await, fx.campaign(JINCHENG).await);
    fx.merchant("m-ty", "太原家具城", TAIYUAN).await;
    fx.merchant("m-jc", "晋城家居馆", JINCHENG).await;
    fx.merchant("m-jc2", "晋城\"老字号\",家居", JINCHENG).await;
    for i in 0..20 {
        fx.sale(ty, "m-ty", &format!("t{i}"), 1_001 + i, at(9, 8, i as u32))
            .await;
        fx.sale(
            jc,
            if i % 2 == 0 { "m-jc" } else { "m-jc2" },
            &format!("j{i}"),
            777 + i,
            at(9, 9, i as u32),
        )
        .await;
    }
    fx
}

#[tokio::test]
async fn rerunning_a_settled_day_writes_nothing_and_prints_the_same_bytes() {
    let fx = a_settled_day().await;
    let first = fx.settle(9, 9).await;
    assert_eq!(first.created.len(), 1);
    let rows = fx.ledger_rows().await;
    let report = rendered(&fx, 9, 9).await;

    let again = fx.settle(9, 9).await;

    assert!(again.created.is_empty(), "nothing new: {again:?}");
    assert_eq!(again.existing, first.created);
    assert_eq!(fx.ledger_rows().await, rows, "no row written by the re-run");
    assert_eq!(
        rendered(&fx, 9, 9).await,
        report,
        "the same report, byte for byte"
    );
    // The CSV opens in a spreadsheet: BOM first, Chinese names, quoted commas.
    let (_, merchants) = &report[1];
    assert!(merchants.starts_with('\u{feff}'));
    assert!(merchants.contains("\"晋城\"\"老字号\"\",家居\""));
    fx.assert_balanced().await;
}

#[tokio::test]
async fn an_overlapping_period_is_refused() {
    let fx = a_settled_day().await;
    fx.settle(9, 9).await;
    let err = settle(
        &fx.db.pool,
        &SettleRequest {
            period: Period::new(day(8), day(10)).unwrap(),
            actor: "t".into(),
            now: at(11, 0, 0),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ReconError::PeriodOverlap { .. }), "{err}");
}

#[tokio::test]
async fn a_fault_before_commit_leaves_nothing_and_the_rerun_settles_once() {
    // A control database settled without a crash gives the expected report.
    let control = a_settled_day().await;
    control.settle(9, 9).await;
    let expected = rendered(&control, 9, 9).await;

    let fx = a_settled_day().await;
    // The job's process is aborted just before commit (as kill -9 would).
    let status = std::process::Command::new(reconciliation_binary())
        .args(["settle", "--from", "2026-05-09", "--to", "2026-05-09"])
        .env("APP__POSTGRES__URL", &fx.db.url)
        .env("VP_RECON_FAULT", "abort")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the job died");
    assert_eq!(fx.ledger_rows().await, vec![0; 7], "nothing half-written");

    // Run again, normally: settled once, and a re-run prints the same summary.
    let out = std::process::Command::new(reconciliation_binary())
        .args([
            "settle",
            "--from",
            "2026-05-09",
            "--to",
            "2026-05-09",
            "--actor",
            "test",
        ])
        .env("APP__POSTGRES__URL", &fx.db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out2 = std::process::Command::new(reconciliation_binary())
        .args([
            "settle",
            "--from",
            "2026-05-09",
            "--to",
            "2026-05-09",
            "--actor",
            "test",
        ])
        .env("APP__POSTGRES__URL", &fx.db.url)
        .output()
        .unwrap();
    assert!(out2.status.success());
    assert_eq!(
        out.stdout, out2.stdout,
        "the re-run prints the same summary"
    );
    assert_eq!(
        fx.scalar("SELECT count(*) FROM settlement_runs").await,
        1,
        "no duplicate run"
    );
    // The same figures as the control (run ids and creators aside, which the JSON and
    // summary name): compare the city and merchant CSVs.
    let got = rendered(&fx, 9, 9).await;
    let strip = |s: &str| {
        s.lines()
            .map(|l| l.rsplit_once(',').map_or(l, |x| x.0).to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip(&got[0].1),
        strip(&expected[0].1),
        "cities.csv (batch ids aside)"
    );
    assert_eq!(got[1].1, expected[1].1, "merchants.csv");
    fx.assert_balanced().await;
}

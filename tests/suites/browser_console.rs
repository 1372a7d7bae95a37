//! The finance console in a real browser (Debian's Chromium through ChromeDriver) against the
//! real service: a city officer signs in, sees only their city and confirms their batch; a
//! province officer confirms it and marks it paid; the downloaded CSV opens and its totals
//! equal the screen's. axe-core finds nothing serious; screenshots of the overview and a
//! batch are kept in `target/browser-artifacts/` (the README's come from here).

use crate::browser_support::Browser;
use crate::console_support::*;
use crate::reconciliation_support::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;

async fn assert_accessible(browser: &Browser, what: &str) {
    let violations = browser.axe().await;
    assert!(
        violations.is_empty(),
        "{what}: serious accessibility violations: {}",
        serde_json::to_string_pretty(&Value::Array(violations)).unwrap_or_default()
    );
}

/// Signs in on the console with `key`; waits for the header.
async fn sign_in(browser: &Browser, c: &Console, key: &str, name: &str) {
    browser.goto(&format!("{}/console/", c.url)).await;
    browser.fill("signin-api-key", key).await;
    browser.click("signin-submit").await;
    browser
        .until(
            "signed in",
            &format!("document.querySelector('[data-testid=\"officer-name\"]')?.textContent.includes('{name}')"),
        )
        .await;
}

/// Opens `hash` (e.g. `#/batches/3`) and waits for the screen `screen`.
async fn open(browser: &Browser, c: &Console, hash: &str, screen: &str) {
    browser.goto(&format!("{}/console/{hash}", c.url)).await;
    browser.find(screen).await;
    browser
        .until(
            "the screen has loaded",
            "!document.querySelector('[data-testid=\"loading\"]')",
        )
        .await;
}

/// Presses the confirm button for `to`, accepts the dialog, waits for the new status.
async fn confirm(browser: &Browser, to: &str) {
    browser
        .until(
            "the confirm button is offered",
            &format!(
                "document.querySelector('[data-testid=\"confirm-button\"][data-to=\"{to}\"]')"
            ),
        )
        .await;
    browser.click("confirm-button").await;
    browser.find("confirm-dialog").await;
    browser.click("confirm-ok").await;
    browser
        .until(
            "the batch shows its new status",
            &format!("document.querySelector('[data-testid=\"batch-status\"]')?.getAttribute('data-status') === '{to}'"),
        )
        .await;
}

/// Integer fen from a yuan figure on the screen or in a CSV ("¥1,234.50", "1234.50").
fn fen(text: &str) -> i64 {
    let cleaned: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    let (whole, frac) = cleaned.split_once('.').unwrap_or((&cleaned, "00"));
    assert_eq!(frac.len(), 2, "two decimals in {text:?}");
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    sign * (whole.trim_start_matches('-').parse::<i64>().unwrap() * 100
        + frac.parse::<i64>().unwrap())
}

/// More settled days, so that the overview has a history to draw.
async fn history(c: &Console) {
    let (ty, jc) = (c.fx.campaign(TAIYUAN).await, c.fx.campaign(JINCHENG).await);
    for d in 3..10 {
        for i in 0..(d % 4 + 2) {
            let ty_fen = 40_000 + i64::from(d) * 2_000 + i64::from(i) * 700;
            c.fx.sale(ty, "m-ty", &format!("h-ty-{d}-{i}"), ty_fen, at(d, 14, i))
                .await;
            c.fx.sale(jc, "m-jc", &format!("h-jc-{d}-{i}"), 55_000, at(d, 15, i))
                .await;
        }
    }
    c.fx.settle(3, 9).await;
}

#[tokio::test]
async fn a_city_officer_sees_only_their_city_and_confirms_their_batch() {
    let c = Console::start().await;
    let browser = Browser::start(1280, 900, None).await;
    sign_in(&browser, &c, JC, "jincheng-finance").await;
    assert_accessible(&browser, "overview (city)").await;

    browser.click("nav-settlement").await;
    browser.find("period-row").await;
    let page = browser.find("settlement").await.text().await.unwrap();
    assert!(!page.contains("太原"), "Taiyuan is not Jincheng's: {page}");
    browser.click("run-link").await;
    browser.find("batch-row").await;
    let cities: Value = browser
        .client
        .execute(
            "return [...document.querySelectorAll('[data-testid=\"batch-row\"]')].map(r => r.getAttribute('data-city'));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(cities, json!(["140500"]), "only Jincheng's batch");
    browser.click("batch-link").await;
    browser.find("batch").await;
    confirm(&browser, "city_confirmed").await;
    browser
        .until(
            "the history shows the confirmation",
            "document.querySelectorAll('[data-testid=\"step-row\"]').length === 2",
        )
        .await;
    assert!(
        !browser.has("confirm-button").await,
        "the next step is the province's: no button for the city"
    );
    assert_accessible(&browser, "batch (city, after confirming)").await;
    let (status, actor): (String, String) = sqlx::query_as(
        "SELECT b.status, s.actor FROM settlement_batches b
           JOIN settlement_batch_steps s ON s.batch_id = b.id AND s.status = 'city_confirmed'
          WHERE b.id = $1",
    )
    .bind(c.jc_batch)
    .fetch_one(&c.fx.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), actor.as_str()),
        ("city_confirmed", "jincheng-finance")
    );

    // Another city's batch, asked for by its address: refused, nothing shown.
    open(&browser, &c, &format!("#/batches/{}", c.ty_batch), "batch").await;
    browser
        .until(
            "the refusal is shown",
            "document.querySelector('[data-testid=\"screen-error\"]')?.getAttribute('data-code') === 'FORBIDDEN_PLACE'",
        )
        .await;
    assert!(!browser.has("merchant-row").await);
    browser.close().await;
}

#[tokio::test]
async fn the_province_confirms_and_pays_and_the_downloaded_csv_matches_the_screen() {
    let c = Console::start_funded(
        3_000_000,
        &[(TAIYUAN, 1_200_000), (JINCHENG, 1_500_000)],
        |_| {},
    )
    .await;
    history(&c).await;
    // Jincheng has confirmed its figures.
    let jc = c.sign_in(JC).await;
    let (status, body) = c
        .write(
            Method::POST,
            &format!("/v1/batches/{}/confirm", c.jc_batch),
            &jc,
            Some(json!({"to": "city_confirmed"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let downloads = tempfile::tempdir().unwrap();
    let browser = Browser::start_with(1280, 900, None, Some(downloads.path())).await;
    sign_in(&browser, &c, PROVINCE, "shanxi-finance").await;
    browser.find("burn-chart").await;
    browser.find("forecast").await;
    browser
        .until(
            "the charts are drawn",
            "document.querySelectorAll('canvas').length >= 4",
        )
        .await;
    assert_accessible(&browser, "overview (province)").await;
    browser.screenshot("console-overview").await;

    // The run: both cities, and the totals row.
    open(&browser, &c, &format!("#/runs/{}", c.run), "run").await;
    browser.find("batch-row").await;
    let screen_spending = fen(&browser.text("total-spending").await);
    let screen_province = fen(&browser.text("total-province").await);
    assert_eq!(screen_spending, 6_000 + 11_000);
    assert_eq!(screen_province, 3_000 + 5_500);

    // The downloaded cities.csv opens and adds up to the screen's totals.
    browser.click("download-cities.csv").await;
    let file = downloads.path().join("cities-2026-05-10.csv");
    wait_for_file(&file).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text
        .strip_prefix('\u{feff}')
        .expect("a BOM for spreadsheets");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h.ends_with(name)).unwrap();
    let (s_col, p_col) = (col("spending_S"), col("province_share"));
    let (mut s, mut p) = (0, 0);
    for row in reader.records() {
        let row = row.unwrap();
        s += fen(&row[s_col]);
        p += fen(&row[p_col]);
    }
    assert_eq!(
        (s, p),
        (screen_spending, screen_province),
        "the CSV's totals are the screen's"
    );

    // The batch: the province confirms, then marks it paid.
    open(&browser, &c, &format!("#/batches/{}", c.jc_batch), "batch").await;
    confirm(&browser, "province_confirmed").await;
    confirm(&browser, "paid").await;
    browser
        .until(
            "the history shows four steps",
            "document.querySelectorAll('[data-testid=\"step-row\"]').length === 4",
        )
        .await;
    assert!(!browser.has("confirm-button").await, "paid is the end");
    assert_accessible(&browser, "batch (province, paid)").await;
    browser.screenshot("console-batch").await;
    let status: String = sqlx::query_scalar("SELECT status FROM settlement_batches WHERE id = $1")
        .bind(c.jc_batch)
        .fetch_one(&c.fx.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "paid");
    browser.close().await;
}

async fn wait_for_file(path: &Path) {
    for _ in 0..200 {
        if path.exists() && std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{} was not downloaded", path.display());
}

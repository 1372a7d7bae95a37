//! The two pages in a real browser (Debian's Chromium through ChromeDriver) against both
//! real services: a resident signs in, waits for a round to open, claims and shows the QR
//! code; a cashier at a paired web till redeems it (a double tap still makes one
//! redemption) and the resident's page then shows it spent; a code computed offline by the
//! phone is read by the till's camera and accepted. Screenshots of each page at phone and
//! tablet sizes are kept in `target/browser-artifacts/`, and axe-core finds no serious or
//! critical accessibility violation on any of them.

use crate::browser_support::{qr_video, Browser};
use crate::stack_support::{self, Stack};
use chrono::{Duration, Utc};
use serde_json::Value;
use std::sync::Arc;
use voucher_core::SystemClock;

/// Asserts that axe-core finds nothing serious on the page.
async fn assert_accessible(browser: &Browser, what: &str) {
    let violations = browser.axe().await;
    assert!(
        violations.is_empty(),
        "{what}: serious accessibility violations: {}",
        serde_json::to_string_pretty(&Value::Array(violations)).unwrap_or_default()
    );
}

/// Signs in on the residents' page with the dev identity provider.
async fn dev_sign_in(phone: &Browser, stack: &Stack, person: &str) {
    phone.goto(&format!("{}/app/", stack.issuance)).await;
    phone.find("dev-badge").await;
    phone.fill("dev-person", person).await;
    phone
        .client
        .execute(
            "const s = document.querySelector('[data-testid=\"dev-home\"]');
             s.value = '140500'; s.dispatchEvent(new Event('change', { bubbles: true }));",
            vec![],
        )
        .await
        .unwrap();
    phone.click("dev-signin-submit").await;
    phone.find("tab-campaigns").await;
}

/// Opens the code view of `voucher` on the phone; the code it draws.
async fn show_code(phone: &Browser, voucher: &str) -> String {
    phone.click("tab-vouchers").await;
    let card = format!("voucher-{voucher}");
    phone
        .until(
            "the voucher is listed as usable",
            &format!(
                "document.querySelector('[data-testid=\"{card}\"] [data-testid=\"show-code\"]')"
            ),
        )
        .await;
    phone
        .client
        .execute(
            &format!(
                "document.querySelector('[data-testid=\"{card}\"] [data-testid=\"show-code\"]').click();"
            ),
            vec![],
        )
        .await
        .unwrap();
    phone
        .until(
            "a code is drawn",
            "(document.querySelector('[data-testid=\"qr\"]')?.getAttribute('data-code') || '').length > 100",
        )
        .await;
    phone.attr("qr", "data-code").await.unwrap()
}

/// The resident's only voucher id, from the record.
async fn only_voucher(stack: &Stack, person: &str) -> String {
    for _ in 0..200 {
        let id: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT voucher_id FROM vouchers WHERE person_id = $1")
                .bind(person)
                .fetch_optional(&stack.db.pool)
                .await
                .unwrap();
        if let Some(id) = id {
            return id.to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no voucher of {person} reached the record");
}

/// Pairs the till with a one-time code from its URL.
async fn pair_till(till: &Browser, stack: &Stack, merchant: &str) {
    let code = stack.pairing_code(merchant).await;
    till.goto(&format!("{}/till/#pair={code}", stack.redemption))
        .await;
    let name = till.text("merchant-name").await;
    assert!(name.contains("晋城老字号饭店"), "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resident_claims_when_the_round_opens_and_a_cashier_redeems_it_once_at_a_paired_web_till()
{
    let stack = stack_support::start(Arc::new(SystemClock)).await;
    let opens = Utc::now() + Duration::seconds(10);
    let (program, campaign) = stack.catering_campaign(10, opens).await;
    stack.merchant("m-web", program).await;

    // The resident's phone: sign in, see the countdown, wait for the round, claim.
    let phone = Browser::start(390, 844, None).await;
    dev_sign_in(&phone, &stack, "R000777").await;
    let card = format!("campaign-{campaign}");
    phone.find(&card).await;
    let claim = format!("[data-testid=\"{card}\"] [data-testid=\"claim-button\"]");
    let disabled: Value = phone
        .client
        .execute(
            &format!("return document.querySelector('{claim}').disabled;"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        disabled,
        Value::Bool(true),
        "the claim button waits for the round"
    );
    let countdown: Value = phone
        .client
        .execute(
            &format!(
                "return document.querySelector('[data-testid=\"{card}\"] [data-testid=\"countdown\"]').textContent;"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert!(
        countdown.as_str().is_some_and(|t| t.contains("00:00:")),
        "a countdown to the round: {countdown}"
    );
    phone.screenshot("resident-campaigns-390x844").await;
    assert_accessible(&phone, "the campaigns").await;
    phone
        .until(
            "the round opens",
            &format!("document.querySelector('{claim}').disabled === false"),
        )
        .await;
    phone
        .client
        .execute(
            &format!("document.querySelector('{claim}').click();"),
            vec![],
        )
        .await
        .unwrap();
    let voucher = only_voucher(&stack, "R000777").await;
    let code = show_code(&phone, &voucher).await;
    phone.screenshot("resident-code-390x844").await;
    assert_accessible(&phone, "the code view").await;

    // The till: paired from its URL, the code pasted (a scan gun types it), a quote, then a
    // double tap on confirm.
    let till = Browser::start(1024, 768, None).await;
    pair_till(&till, &stack, "m-web").await;
    till.fill("scan-input", &code).await;
    till.fill("amount-input", "150.00").await;
    till.until(
        "the quote shows the discount",
        "(document.querySelector('[data-testid=\"quote-discount\"]')?.textContent || '').includes('20.00')",
    )
    .await;
    assert!(till.text("quote-to-pay").await.contains("130.00"));
    till.screenshot("till-quote-1024x768").await;
    assert_accessible(&till, "the till's checkout").await;
    till.client
        .execute(
            "const b = document.querySelector('[data-testid=\"confirm-sale\"]'); b.click(); b.click();",
            vec![],
        )
        .await
        .unwrap();
    till.until(
        "the sale is approved",
        "document.querySelector('[data-testid=\"sale-result\"]')?.getAttribute('data-outcome') === 'approved'",
    )
    .await;
    till.screenshot("till-approved-1024x768").await;
    // Another double tap on the result screen changes nothing either.
    let _ = till
        .client
        .execute(
            "const b = document.querySelector('[data-testid=\"confirm-sale\"]'); if (b) { b.click(); b.click(); }",
            vec![],
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        stack.count("redemptions").await,
        1,
        "a double tap redeems once"
    );
    assert_eq!(stack.count("vouchers WHERE status = 'redeemed'").await, 1);

    // The resident's page notices the voucher was spent: the open code view says so and
    // closes (or is closed), and the list shows it used.
    phone
        .until(
            "the phone shows the voucher spent",
            &format!(
                "document.querySelector('[data-testid=\"voucher-{voucher}\"]')?.getAttribute('data-status') === 'redeemed' \
                 || (document.querySelector('[data-testid=\"code-view\"]')?.textContent || '').includes('已核销')"
            ),
        )
        .await;
    phone.screenshot("resident-spent-390x844").await;
    if phone.has("code-close").await {
        let _ = phone
            .client
            .execute(
                "document.querySelector('[data-testid=\"code-close\"]')?.click();",
                vec![],
            )
            .await;
    }
    phone
        .until(
            "the list shows the voucher used",
            &format!(
                "!document.querySelector('[data-testid=\"code-view\"]') && \
                 document.querySelector('[data-testid=\"voucher-{voucher}\"]')?.getAttribute('data-status') === 'redeemed'"
            ),
        )
        .await;

    // Today's list at the till matches the record.
    till.click("tab-today").await;
    till.until(
        "today's list has the sale",
        "(document.querySelector('[data-testid=\"today-count\"]')?.textContent || '').includes('1')",
    )
    .await;
    assert!(till.text("today-discount").await.contains("20.00"));
    till.screenshot("till-today-1024x768").await;
    assert_accessible(&till, "the till's day").await;

    // The other sizes the pages must fit: the smallest and largest phones, the till on a phone.
    for (w, h) in [(360, 640), (430, 932)] {
        phone.client.set_window_size(w, h).await.unwrap();
        phone.click("tab-history").await;
        phone.find("history-total-saved").await;
        let overflow: Value = phone
            .client
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            overflow,
            Value::Bool(false),
            "no horizontal scroll at {w}x{h}"
        );
        phone.screenshot(&format!("resident-history-{w}x{h}")).await;
    }
    assert_accessible(&phone, "the history").await;
    phone.click("elder-toggle").await;
    phone.click("tab-vouchers").await;
    phone.screenshot("resident-elder-430x932").await;
    assert_accessible(&phone, "elder-friendly mode").await;
    till.client.set_window_size(390, 844).await.unwrap();
    till.click("tab-checkout").await;
    till.screenshot("till-checkout-390x844").await;
    phone.close().await;
    till.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_the_phone_computes_offline_is_read_by_the_till_s_camera_and_accepted() {
    let stack = stack_support::start(Arc::new(SystemClock)).await;
    let (program, campaign) = stack
        .catering_campaign(10, Utc::now() - Duration::minutes(1))
        .await;
    stack.merchant("m-cam", program).await;
    let phone = Browser::start(390, 844, None).await;
    dev_sign_in(&phone, &stack, "R000888").await;
    let claim = format!("[data-testid=\"campaign-{campaign}\"] [data-testid=\"claim-button\"]");
    phone
        .until(
            "the round is open",
            &format!("document.querySelector('{claim}')?.disabled === false"),
        )
        .await;
    phone
        .client
        .execute(
            &format!("document.querySelector('{claim}').click();"),
            vec![],
        )
        .await
        .unwrap();
    let voucher = only_voucher(&stack, "R000888").await;
    // Online once: the page fetches the voucher's code key into IndexedDB.
    show_code(&phone, &voucher).await;
    phone.click("code-close").await;

    // In the basement: no network at all. The page still draws the code, from the key.
    phone.set_offline(true).await;
    let code = show_code(&phone, &voucher).await;
    phone
        .until(
            "the code is marked as computed offline",
            "(document.querySelector('[data-testid=\"code-mode\"]')?.textContent || '').includes('离线')",
        )
        .await;
    phone.screenshot("resident-offline-code-390x844").await;

    // The till films the phone's screen: its fake camera plays the QR code of that code.
    let video = tempfile::Builder::new().suffix(".y4m").tempfile().unwrap();
    qr_video(&code, video.path());
    let till = Browser::start(1024, 768, Some(video.path())).await;
    pair_till(&till, &stack, "m-cam").await;
    till.fill("amount-input", "150.00").await;
    till.click("camera-button").await;
    till.until(
        "the camera reads the code",
        &format!(
            "document.querySelector('[data-testid=\"scan-input\"]')?.value === {}",
            serde_json::to_string(&code).unwrap()
        ),
    )
    .await;
    till.until(
        "the quote shows the discount",
        "(document.querySelector('[data-testid=\"quote-discount\"]')?.textContent || '').includes('20.00')",
    )
    .await;
    till.click("confirm-sale").await;
    till.until(
        "the sale is approved",
        "document.querySelector('[data-testid=\"sale-result\"]')?.getAttribute('data-outcome') === 'approved'",
    )
    .await;
    assert_eq!(stack.count("redemptions").await, 1);
    phone.close().await;
    till.close().await;
    stack.stop().await;
}

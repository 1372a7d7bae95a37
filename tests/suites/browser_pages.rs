//! The two pages in a real browser (Debian's Chromium through ChromeDriver) against both
//! real services: a resident signs in, waits for a round to open, claims and shows the QR
//! code; a cashier at a paired web till redeems it (a double tap still makes one
//! redemption) and the resident's page then shows it spent; a code computed offline by the
//! phone is read by the till's camera and accepted; a resident registers for a lottery round
//! (报名摇号) and sees the draw's result; a resident applies for the car trade-in subsidy with
//! two papers and sees it approved with the amount. Screenshots of each page at phone and
//! tablet sizes are kept in `target/browser-artifacts/`, and axe-core finds no serious or
//! critical accessibility violation on any of them.

use crate::browser_support::{qr_video, Browser};
use crate::stack_support::{self, Stack};
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use voucher_core::{ManualClock, SystemClock};

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

/// Runs `script` on the phone (a click inside a card, a value set on a date input).
async fn run(phone: &Browser, script: &str) {
    phone.client.execute(script, vec![]).await.unwrap();
}

/// Scrolls the element with test id `id` to the middle of the screen (clear of the tab bar)
/// and taps it.
async fn tap(phone: &Browser, id: &str) {
    phone.find(id).await;
    run(
        phone,
        &format!(
            "document.querySelector('[data-testid=\"{id}\"]').scrollIntoView({{ block: 'center' }});"
        ),
    )
    .await;
    phone.click(id).await;
}

/// Takes the message toast off the screen and scrolls to the top, for a screenshot.
async fn tidy(phone: &Browser, top: bool) {
    run(
        phone,
        &format!(
            "document.querySelector('[data-testid=\"toast\"]')?.classList.remove('show'); if ({top}) window.scrollTo(0, 0);"
        ),
    )
    .await;
    // The toast fades out in 0.2 s.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
}

/// Copies a screenshot from `target/browser-artifacts/` into the README's screenshots
/// (`services/web/screenshots/`) when `VP_KEEP_SCREENSHOTS=1`, so that an ordinary run leaves
/// the working tree alone.
fn keep_screenshot(name: &str) {
    if std::env::var("VP_KEEP_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let from = crate::browser_support::artifacts().join(format!("{name}.png"));
    let to = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../services/web/screenshots")
        .join(format!("{name}.png"));
    std::fs::copy(&from, &to).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resident_registers_for_a_lottery_round_in_the_page_and_sees_that_they_won_after_the_draw(
) {
    // A manual clock: registration opens a minute after the campaign is made (the commitment
    // is published before it), and the draw comes after the window without waiting for it.
    let start = Utc::now();
    let clock = ManualClock::new(start);
    let stack = stack_support::start(Arc::new(clock.clone())).await;
    let opens = start + Duration::minutes(1);
    let closes = start + Duration::minutes(30);
    let province = stack.secrets.province_admin.key.clone();
    let jincheng = stack.secrets.jincheng_admin.key.clone();
    let (status, program) = stack
        .admin_post(
            &stack.issuance,
            &province,
            "/v1/admin/programs",
            json!({"name": "住宿餐饮文旅数字消费券", "funder_place": 140000, "province_ratio_bp": 5000,
                   "pool": 10_000_000_000_i64, "refund_policy": "restore"}),
        )
        .await;
    assert_eq!(status, 201, "{program}");
    let (status, campaign) = stack
        .admin_post(&stack.issuance, &jincheng, "/v1/admin/campaigns", json!({
            "program_id": program["id"], "name": "晋城餐饮券 报名摇号", "owner_place": 140500,
            "category": "catering", "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
            "stock": 2, "per_person_limit": 1,
            "rounds": [{"round_no": 1, "starts_at": closes, "quantity": 2, "mode": "lottery",
                        "registration_opens_at": opens, "registration_closes_at": closes}],
            "validity": {"days_after_claim": 7}, "budget": 100_000_000,
            "eligibility": {"places": [140500], "min_real_name_level": 1}, "distribution": "claim"}))
        .await;
    assert_eq!(status, 201, "{campaign}");
    let campaign = campaign["id"].as_i64().unwrap();
    // Two rush campaigns of the other new rules, whose cards must say them in words.
    let later = start + Duration::hours(2);
    let mut rules = Vec::new();
    for (category, rule) in [
        (
            "home_furnishing",
            json!({"type": "item_percent", "rate_bp": 1500, "item_cap": 200_000, "categories": [
                {"product_category": "refrigerator", "per_person_items": 1},
                {"product_category": "air_conditioner", "per_person_items": 3},
                {"product_category": "phone", "per_person_items": 1, "item_cap": 50_000, "max_item_price": 600_000}]}),
        ),
        (
            "culture_tourism",
            json!({"type": "annual_card", "subsidy": 1000}),
        ),
    ] {
        let (status, body) = stack
            .admin_post(&stack.issuance, &jincheng, "/v1/admin/campaigns", json!({
                "program_id": program["id"], "name": format!("晋城 {category}"), "owner_place": 140500,
                "category": category, "rule": rule, "stock": 10, "per_person_limit": 1,
                "rounds": [{"round_no": 1, "starts_at": later, "quantity": 10}],
                "validity": {"days_after_claim": 30}, "budget": 100_000_000,
                "eligibility": {"places": [140500], "min_real_name_level": 1}, "distribution": "claim"}))
            .await;
        assert_eq!(status, 201, "{body}");
        rules.push(body["id"].as_i64().unwrap());
    }
    clock.set(opens + Duration::seconds(5));

    let phone = Browser::start(390, 844, None).await;
    dev_sign_in(&phone, &stack, "R000901").await;
    let card = format!("[data-testid=\"campaign-{campaign}\"]");
    phone
        .until(
            "the lottery panel shows the registration open",
            &format!(
                "document.querySelector('{card} [data-testid=\"lottery-panel\"]')?.getAttribute('data-phase') === 'registration_open' \
                 && document.querySelector('{card} [data-testid=\"register-button\"]')"
            ),
        )
        .await;
    let no_claim: Value = phone
        .client
        .execute(
            &format!("return !document.querySelector('{card} [data-testid=\"claim-button\"]');"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        no_claim,
        Value::Bool(true),
        "a lottery round offers no claim button"
    );
    let rule_of = |id: i64| {
        format!("return document.querySelector('[data-testid=\"campaign-{id}\"]').innerText;")
    };
    let items = phone
        .client
        .execute(&rule_of(rules[0]), vec![])
        .await
        .unwrap();
    let items = items.as_str().unwrap_or_default();
    assert!(
        items.contains("以旧换新 每件立减15%，单件最高2000元（冰箱限1台、空调限3台、手机限1部）")
            && items.contains("手机限1部（单件最高500元，单价6000元以内）"),
        "{items}"
    );
    let card_rule = phone
        .client
        .execute(&rule_of(rules[1]), vec![])
        .await
        .unwrap();
    assert!(
        card_rule
            .as_str()
            .unwrap_or_default()
            .contains("旅游惠民年卡：首次入园补贴10元"),
        "{card_rule}"
    );
    let phase = phone.text("lottery-phase").await;
    assert!(phase.contains("报名中") && phase.contains("00:"), "{phase}");
    let commitment = phone.attr("commitment", "title").await.unwrap_or_default();
    assert_eq!(commitment.len(), 64, "the round's commitment is shown");
    // A double tap registers once.
    run(
        &phone,
        &format!(
            "const b = document.querySelector('{card} [data-testid=\"register-button\"]'); b.click(); b.click();"
        ),
    )
    .await;
    phone
        .until(
            "the page shows the entry",
            "document.querySelector('[data-testid=\"registration-status\"]')?.textContent.includes('已报名')",
        )
        .await;
    let hash = phone
        .attr("registration-hash", "title")
        .await
        .unwrap_or_default();
    assert_eq!(hash.len(), 64, "the entry's hash: {hash}");
    assert_eq!(stack.count("lottery_registrations").await, 1);
    tidy(&phone, false).await;
    phone.screenshot("resident-lottery-390x844").await;
    keep_screenshot("resident-lottery-390x844");
    assert_accessible(&phone, "a lottery round").await;

    // The window closes; an administrator draws through the API.
    clock.set(closes + Duration::seconds(5));
    let (status, report) = stack
        .admin_post(
            &stack.issuance,
            &jincheng,
            &format!("/v1/admin/campaigns/{campaign}/rounds/1/draw"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["winners"][0]["registration_hash"], json!(hash));
    let voucher = report["winners"][0]["voucher_id"]
        .as_str()
        .unwrap()
        .to_owned();

    tap(&phone, "lottery-refresh").await;
    phone
        .until(
            "the page shows the win",
            "document.querySelector('[data-testid=\"lottery-result\"]')?.getAttribute('data-result') === 'won' \
             && document.querySelector('[data-testid=\"lottery-panel\"]')?.getAttribute('data-phase') === 'drawn' \
             && document.querySelector('[data-testid=\"lottery-see-voucher\"]')",
        )
        .await;
    assert!(phone.text("lottery-result").await.contains("已中签"));
    let link = phone.attr("draw-link", "href").await.unwrap_or_default();
    assert!(
        link.ends_with(&format!("/v1/campaigns/{campaign}/rounds/1/draw")),
        "{link}"
    );
    let (status, draw) = stack
        .resident_get("", &format!("/v1/campaigns/{campaign}/rounds/1/draw"))
        .await;
    assert_eq!(status, 200, "{draw}");
    assert_eq!(draw["registration_hashes"], json!([hash]));
    tidy(&phone, false).await;
    phone.screenshot("resident-lottery-won-390x844").await;
    assert_accessible(&phone, "a drawn lottery round").await;
    // The voucher the draw gave is in 我的券 once the outbox has brought it to the record.
    assert_eq!(only_voucher(&stack, "R000901").await, voucher);
    tap(&phone, "lottery-see-voucher").await;
    phone.find(&format!("voucher-{voucher}")).await;
    phone.close().await;
    stack.stop().await;
}

/// A VIN numbered `n` with its check digit (9th place).
fn vin(prefix: &str, n: u32) -> String {
    let mut v = format!("{prefix}0KS{n:06}");
    let check = voucher_core::trade_in::Vin::check_digit(&v).unwrap();
    v.replace_range(8..9, &check.to_string());
    v
}

/// A unified social credit code registered in `place`, with its check character.
fn credit(place: u32, tail: &str) -> String {
    let head = format!("91{place}MA0K{tail}");
    let check = voucher_core::CreditCode::check_char(&head).unwrap();
    format!("{head}{check}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resident_applies_for_the_car_trade_in_subsidy_with_two_papers_and_sees_it_approved() {
    let stack = stack_support::start(Arc::new(SystemClock)).await;
    let province = stack.secrets.province_admin.key.clone();
    let jincheng = stack.secrets.jincheng_admin.key.clone();
    let (status, program) = stack
        .admin_post(
            &stack.issuance,
            &province,
            "/v1/admin/programs",
            json!({"name": "汽车以旧换新", "funder_place": 140000, "province_ratio_bp": 5000,
                   "pool": 5_000_000_000_i64, "refund_policy": "forfeit"}),
        )
        .await;
    assert_eq!(status, 201, "{program}");
    let program = program["id"].as_i64().unwrap();
    // A window around today (Beijing), with the seed's caps.
    let today = (Utc::now() + Duration::hours(8)).date_naive();
    let (status, scheme) = stack
        .admin_post(
            &stack.issuance,
            &province,
            "/v1/admin/trade-in/schemes",
            json!({"program_id": program, "opens_on": today - Duration::days(30),
                   "closes_on": today + Duration::days(30),
                   "transfer_cap_fen": 200_000, "scrap_cap_fen": 300_000}),
        )
        .await;
    assert_eq!(status, 201, "{scheme}");

    // The two papers, as a phone would have them: a PDF and a photo.
    let dir = tempfile::tempdir().unwrap();
    let certificate = dir.path().join("certificate.pdf");
    std::fs::write(&certificate, b"%PDF-1.4\n% transfer certificate\n%%EOF\n").unwrap();
    let invoice = dir.path().join("invoice.png");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(b"invoice photo");
    std::fs::write(&invoice, png).unwrap();

    let phone = Browser::start(390, 844, None).await;
    dev_sign_in(&phone, &stack, "R000902").await;
    phone.click("tab-tradein").await;
    phone.find(&format!("ti-scheme-{program}")).await;
    phone.find("ti-form").await;
    let old_vin = vin("LFV2A21K", 901);
    let new_vin = vin("LSGKB54H", 902);
    // A VIN with a wrong check digit first: the service's refusal lands on the field.
    let mut wrong = old_vin.clone();
    let digit = if &old_vin[8..9] == "1" { "2" } else { "1" };
    wrong.replace_range(8..9, digit);
    phone.fill("ti-old-vin", &wrong).await;
    phone.fill("ti-old-plate", "晋E12345").await;
    phone
        .fill("ti-certifier-name", "晋城市诚信二手车交易市场有限公司")
        .await;
    phone
        .fill("ti-certifier-code", &credit(140500, "2HC01"))
        .await;
    phone
        .find("ti-certificate-file")
        .await
        .send_keys(&certificate.display().to_string())
        .await
        .unwrap();
    phone.fill("ti-invoice-no", "23142000000000000901").await;
    let day = (today - Duration::days(1)).to_string();
    run(
        &phone,
        &format!(
            "const d = document.querySelector('[data-testid=\"ti-invoice-date\"]'); d.value = '{day}';
             d.dispatchEvent(new Event('input', {{ bubbles: true }}));"
        ),
    )
    .await;
    phone.fill("ti-new-vin", &new_vin).await;
    phone.fill("ti-price", "158,800.5").await;
    phone
        .fill("ti-dealer-name", "晋城市长城汽车销售服务有限公司")
        .await;
    phone.fill("ti-dealer-code", &credit(140500, "4D001")).await;
    phone
        .find("ti-invoice-file")
        .await
        .send_keys(&invoice.display().to_string())
        .await
        .unwrap();
    assert!(phone.text("ti-estimate").await.contains("2,000.00"));
    phone.screenshot("resident-trade-in-form-390x844").await;
    assert_accessible(&phone, "the trade-in form").await;
    tap(&phone, "ti-submit").await;
    phone
        .until(
            "the wrong VIN is marked",
            "document.querySelector('[data-testid=\"ti-error-old-vin\"]') \
             && document.querySelector('[data-testid=\"ti-old-vin\"]').getAttribute('aria-invalid') === 'true'",
        )
        .await;
    assert!(phone.text("ti-error-old-vin").await.contains("校验位"));
    assert_eq!(stack.count("trade_in_applications").await, 0);
    phone.fill("ti-old-vin", &old_vin).await;
    tap(&phone, "ti-submit").await;
    phone
        .until(
            "the application is listed as submitted",
            "document.querySelector('.trade-in-app')?.getAttribute('data-status') === 'submitted'",
        )
        .await;
    assert!(phone.text("ti-app-status").await.contains("已提交"));
    assert!(
        !phone.has("ti-form").await,
        "the form closes once the application is made"
    );
    // Stored as typed, to the fen, with both papers.
    let (id, price, kind, docs): (uuid::Uuid, i64, String, i64) = sqlx::query_as(
        "SELECT id, price_fen, kind, (SELECT count(*) FROM trade_in_documents) FROM trade_in_applications",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!((price, kind.as_str(), docs), (15_880_050, "transfer", 2));
    tidy(&phone, true).await;
    phone
        .screenshot("resident-trade-in-submitted-390x844")
        .await;

    // The city's commerce bureau asks for more; the resident sends a clearer invoice photo.
    let (status, body) = stack
        .admin_post(
            &stack.issuance,
            &jincheng,
            &format!("/v1/admin/trade-in/applications/{id}/request-more"),
            json!({"what": "请上传清晰的购车发票照片"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    tap(&phone, "ti-refresh").await;
    phone
        .until(
            "the page shows what is asked for",
            "document.querySelector('.trade-in-app')?.getAttribute('data-status') === 'needs_more' \
             && document.querySelector('[data-testid=\"ti-app-requested\"]')?.textContent.includes('清晰的购车发票')",
        )
        .await;
    tap(&phone, "ti-amend").await;
    let clearer = dir.path().join("invoice-clearer.png");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(b"a clearer invoice photo");
    std::fs::write(&clearer, png).unwrap();
    phone
        .find("ti-invoice-file")
        .await
        .send_keys(&clearer.display().to_string())
        .await
        .unwrap();
    tap(&phone, "ti-submit").await;
    phone
        .until(
            "the amended application is listed as submitted again",
            "document.querySelector('.trade-in-app')?.getAttribute('data-status') === 'submitted' \
             && !document.querySelector('[data-testid=\"ti-form\"]')",
        )
        .await;
    let (submissions, docs): (i32, i64) = sqlx::query_as(
        "SELECT submissions, (SELECT count(*) FROM trade_in_documents) FROM trade_in_applications",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!((submissions, docs), (2, 3));

    // The city's commerce bureau approves through the API; the page shows it with the amount.
    let (status, body) = stack
        .admin_post(
            &stack.issuance,
            &jincheng,
            &format!("/v1/admin/trade-in/applications/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    tap(&phone, "ti-refresh").await;
    phone
        .until(
            "the application is listed as approved",
            "document.querySelector('.trade-in-app')?.getAttribute('data-status') === 'approved'",
        )
        .await;
    let amount = phone.text("ti-app-amount").await;
    assert!(
        amount.contains("¥2,000.00") && amount.contains("审核通过"),
        "{amount}"
    );
    tidy(&phone, true).await;
    phone.screenshot("resident-trade-in-390x844").await;
    keep_screenshot("resident-trade-in-390x844");
    phone.client.set_window_size(430, 932).await.unwrap();
    phone.click("elder-toggle").await;
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
        "no horizontal scroll in elder mode"
    );
    tidy(&phone, true).await;
    phone.screenshot("resident-trade-in-elder-430x932").await;
    assert_accessible(&phone, "the approved application, elder-friendly").await;
    phone.close().await;
    stack.stop().await;
}

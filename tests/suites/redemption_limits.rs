//! Rate limits per terminal and per IP, and the body size limit: refused with their codes
//! before anything is written.
use crate::redemption_support::*;
use serde_json::json;
use voucher_core::{Category, Fen, RefundPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_over_its_rate_gets_429_and_nothing_is_written() {
    let app = spawn_with(|s| {
        s.rate_limits.terminal_per_second = 1;
        s.rate_limits.terminal_burst = 3;
    })
    .await;
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::try_from(1_000_000).unwrap())
        .await;
    let term = app
        .merchant(
            "m-rate",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let other = app.terminal("m-rate").await;
    let mut statuses = Vec::new();
    let mut codes = Vec::new();
    for i in 0..6 {
        let code = app.code(&app.voucher(&campaign, &format!("p{i}")));
        let (status, body) = app.redeem(&term, &code, 12_000).await;
        statuses.push(status);
        codes.push(body.get("code").and_then(|c| c.as_str()).map(str::to_owned));
    }
    // The burst of 3 passes, the rest is refused with RATE_LIMITED.
    assert_eq!(statuses[..3], [200, 200, 200], "{codes:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    assert!(
        codes[3..]
            .iter()
            .all(|c| c.as_deref() == Some("RATE_LIMITED")),
        "{codes:?}"
    );
    assert_eq!(app.count("redemptions").await, 3);
    // Another terminal of the same merchant has its own budget of requests.
    let code = app.code(&app.voucher(&campaign, "p-other"));
    assert_eq!(app.redeem(&other, &code, 12_000).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_over_its_rate_gets_429() {
    let app = spawn_with(|s| {
        s.rate_limits.ip_per_second = 1;
        s.rate_limits.ip_burst = 2;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let resp = app
            .http
            .get(app.url("/.well-known/voucher-keys"))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses[..2], [200, 200]);
    assert!(statuses[2..].contains(&429), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_body_is_413_and_writes_nothing() {
    let app = spawn_with(|s| s.server.json_limit_bytes = 2048).await;
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::try_from(1_000_000).unwrap())
        .await;
    let term = app
        .merchant(
            "m-big",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let before = app.written().await;
    let body = json!({"code": "x".repeat(4096), "order_amount_fen": 12_000, "order_ref": "big-1"});
    let (status, body) = app
        .call(
            &term,
            "POST",
            "/v1/redemptions",
            Some(body),
            Some("idem-big"),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(app.written().await, before);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A terminal may gzip its body: the service decompresses it, verifies the signature over
/// the JSON and redeems; a small compressed body that inflates past the limit is a 413 and
/// writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzipped_signed_request_is_redeemed_and_a_gzip_bomb_is_413() {
    let app = spawn_with(|s| s.server.json_limit_bytes = 4096).await;
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::try_from(1_000_000).unwrap())
        .await;
    let term = app
        .merchant(
            "m-gzip",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let code = app.code(&app.voucher(&campaign, "gzip"));
    let json = serde_json::to_vec(
        &json!({"code": code, "order_amount_fen": 15_000, "order_ref": "o-gzip"}),
    )
    .unwrap();
    let send = |signed_over: Vec<u8>, sent: Vec<u8>, key: &'static str| {
        app.signed(&term, "POST", "/v1/redemptions", &signed_over)
            .header("content-encoding", "gzip")
            .header("idempotency-key", key)
            .body(sent)
            .send()
    };
    let resp = send(json.clone(), gzip(&json), "k-gzip").await.unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("approved")),
        "{body}"
    );

    let mut bomb = json.clone();
    bomb.extend(std::iter::repeat_n(b' ', 1_000_000));
    let compressed = gzip(&bomb);
    assert!(compressed.len() < 4096, "the bomb is small on the wire");
    let resp = send(bomb, compressed, "k-bomb").await.unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(app.count("redemptions").await, 1);
}

//! Lottery rounds (报名摇号, issue 12 "beyond the anchors") through the issuance service's
//! HTTP API, in process, on a private Redis, a fresh database and a manual clock: the
//! commitment published when the round is created, registration (eligibility as for claims,
//! one entry per person under racing requests), the draw (only from the round's start, once
//! under racing administrators), the winners' vouchers through the claim script and the
//! outbox into PostgreSQL (and redeemed at a till), the per-person limit, leftover stock
//! going on to the next round, and the `issuance verify-draw` command run as a real process.
//!
//! The expected registration hashes, commitments and winners are recomputed here from the
//! documented algorithm (`voucher_core::lottery`'s module documentation) with the system's
//! `sha256sum`, not with the code under test.

use crate::support::{release_day, spawn, Options, Reply, TestApp};
use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

// ---------------------------------------------------------------------------------------
// The documented algorithm, recomputed independently.

/// SHA-256 of `bytes` by the system's `sha256sum` (coreutils), as 64 lowercase hex digits.
fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bytes)
        .expect("bytes written to sha256sum");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

fn unhex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0, "{s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// SHA-256(campaign id, 8 bytes signed big-endian ‖ round, 4 bytes big-endian ‖ person id
/// UTF-8).
fn registration_hash(campaign: i64, round_no: u32, person: &str) -> String {
    let mut bytes = campaign.to_be_bytes().to_vec();
    bytes.extend_from_slice(&round_no.to_be_bytes());
    bytes.extend_from_slice(person.as_bytes());
    sha256_hex(&bytes)
}

/// The winners: entries ordered by SHA-256(seed ‖ entry) ascending (then by the entry), the
/// first `quantity`. Hex strings of equal length order as their bytes do.
fn expected_winners(seed_hex: &str, entries: &[String], quantity: usize) -> Vec<String> {
    let seed = unhex(seed_hex);
    let mut keyed: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            let mut bytes = seed.clone();
            bytes.extend_from_slice(&unhex(e));
            (sha256_hex(&bytes), e.clone())
        })
        .collect();
    keyed.sort();
    keyed.into_iter().take(quantity).map(|(_, e)| e).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------
// `issuance verify-draw`, as a real process.

/// The `issuance` binary, built once per test run (a no-op when it is up to date), so the
/// command under test is the current one and not a stale build.
fn issuance_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let ok = Command::new(cargo)
                .args(["build", "--quiet", "-p", "issuance", "--bin", "issuance"])
                .current_dir(&root)
                .status()
                .expect("cargo build")
                .success();
            assert!(ok, "building the issuance binary failed");
            system_tests::workspace_binary("issuance")
        })
        .clone()
}

/// Runs `issuance verify-draw --file <draw>` (and `--person`): success, stdout, stderr.
fn verify_draw(draw: &Value, person: Option<&str>) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("draw.json");
    std::fs::write(&file, serde_json::to_vec_pretty(draw).unwrap()).unwrap();
    let mut command = Command::new(issuance_binary());
    command.arg("verify-draw").arg("--file").arg(&file);
    if let Some(p) = person {
        command.args(["--person", p]);
    }
    let out = command.output().expect("issuance verify-draw runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------------
// The service.

const JINCHENG: u32 = 140_500;
const TAIYUAN: u32 = 140_100;

/// Registration opens a minute after the test app's clock starts (release day − 5 min).
fn opens() -> DateTime<Utc> {
    release_day() - Duration::minutes(4)
}

/// Registration closes.
fn closes() -> DateTime<Utc> {
    release_day() - Duration::minutes(1)
}

/// A lottery round's wire form.
fn lottery_round(
    round_no: u32,
    quantity: u32,
    opens: DateTime<Utc>,
    closes: DateTime<Utc>,
    starts: DateTime<Utc>,
) -> Value {
    json!({"round_no": round_no, "starts_at": starts, "quantity": quantity, "mode": "lottery",
           "registration_opens_at": opens, "registration_closes_at": closes})
}

fn rush_round(round_no: u32, quantity: u32, starts: DateTime<Utc>) -> Value {
    json!({"round_no": round_no, "starts_at": starts, "quantity": quantity})
}

fn campaign_spec(program: i64, stock: u32, limit: u32, rounds: Value) -> Value {
    json!({
        "program_id": program, "name": "晋城餐饮券 报名摇号", "owner_place": JINCHENG,
        "category": "catering", "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
        "stock": stock, "per_person_limit": limit, "rounds": rounds,
        "validity": {"days_after_claim": 7}, "budget": 100_000_000,
        "eligibility": {"places": [JINCHENG], "min_real_name_level": 2}, "distribution": "claim"
    })
}

/// Creates a Jincheng campaign with `rounds`; its id and the created campaign.
async fn lottery_campaign(app: &TestApp, stock: u32, limit: u32, rounds: Value) -> (i64, Value) {
    let program = app.program().await;
    let r = app
        .admin_post(
            &app.secrets.jincheng_admin.key,
            "/v1/admin/campaigns",
            &campaign_spec(program, stock, limit, rounds),
        )
        .await;
    assert_eq!(r.status, 201, "campaign: {:?}", r.body);
    (r.body["id"].as_i64().unwrap(), r.body)
}

fn person(n: usize) -> String {
    format!("R{n:06}")
}

async fn register(app: &TestApp, token: &str, campaign: i64, round_no: u32) -> Reply {
    app.send(
        app.at(
            Method::POST,
            &format!("/v1/campaigns/{campaign}/rounds/{round_no}/registrations"),
        )
        .bearer_auth(token),
    )
    .await
}

async fn get(app: &TestApp, path: &str) -> Reply {
    app.send(app.at(Method::GET, path)).await
}

async fn draw(app: &TestApp, key: &str, campaign: i64, round_no: u32) -> Reply {
    app.send(
        app.at(
            Method::POST,
            &format!("/v1/admin/campaigns/{campaign}/rounds/{round_no}/draw"),
        )
        .header("x-api-key", key),
    )
    .await
}

async fn mine(app: &TestApp, token: &str, campaign: i64, round_no: u32) -> Reply {
    app.send(
        app.at(
            Method::GET,
            &format!("/v1/campaigns/{campaign}/rounds/{round_no}/registrations/me"),
        )
        .bearer_auth(token),
    )
    .await
}

// ---------------------------------------------------------------------------------------

/// The worked example of the documentation, recomputed here and checked by the command:
/// seed = the bytes 0x00…0x1f, campaign 7, round 2, residents R000001…R000005, quantity 2:
/// the winners are R000003, then R000005.
#[test]
fn the_worked_example_gives_its_documented_winners_and_verify_draw_agrees() {
    let seed: String = (0u8..32).map(|b| format!("{b:02x}")).collect();
    let commitment = sha256_hex(&unhex(&seed));
    assert_eq!(
        commitment,
        "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    );
    let hashes: Vec<String> = (1..=5)
        .map(|i| registration_hash(7, 2, &person(i)))
        .collect();
    assert_eq!(
        hashes,
        [
            "388a1b01f2a076083faed5a34851b0ef2ddee8cac96d6cdeccbbbf238430d801",
            "83bd71819e2f5aa5c0ef2206e054f834faddb0e72bf5b3893d800b52fbea55ee",
            "4106fb9be9aedfcdda4a5690d5377e3fb0938ff8ed943d14c315aa6701fd8b73",
            "018b8d1f8ac224e667250469901d86aaf11d1725c7ff8aabce8141a36ff8ada6",
            "dfe6c9c38b116042e13b304afcd6a83c7211dd4de98fefc62b67fce2bfab7e91",
        ]
    );
    let winners = expected_winners(&seed, &hashes, 2);
    assert_eq!(
        winners,
        [hashes[2].clone(), hashes[4].clone()],
        "R000003, R000005"
    );
    assert_eq!(
        expected_winners(&seed, &hashes, 9),
        [2, 4, 0, 3, 1].map(|i| hashes[i].clone()),
        "the whole ranking: R000003, R000005, R000001, R000004, R000002"
    );

    let mut sorted = hashes.clone();
    sorted.sort();
    let published = json!({
        "algorithm": "vp-lottery-v1", "campaign_id": 7, "round_no": 2, "quantity": 2,
        "commitment": commitment, "seed": seed, "drawn_at": "2026-05-01T02:00:00Z",
        "registration_hashes": sorted, "winners": winners,
    });
    let (ok, out, err) = verify_draw(&published, Some("R000005"));
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("OK: the draw of campaign 7 round 2 verifies"),
        "{out}"
    );
    assert!(out.contains("person R000005: registration hash"), "{out}");
    assert!(out.contains("won, rank 2 of 2"), "{out}");

    // The winners in the wrong order, or a loser named instead: refused, with the rank.
    let mut swapped = published.clone();
    swapped["winners"] = json!([hashes[4], hashes[2]]);
    let (ok, _, err) = verify_draw(&swapped, None);
    assert!(!ok);
    assert!(err.contains("does NOT verify"), "{err}");
    assert!(err.contains("winner #1"), "{err}");
    // Another seed under the same commitment: refused, naming the commitment.
    let mut reseeded = published.clone();
    reseeded["seed"] = json!("ff".repeat(32));
    let (ok, _, err) = verify_draw(&reseeded, None);
    assert!(!ok);
    assert!(err.contains("does not match the commitment"), "{err}");
    // Not a draw at all.
    let (ok, _, err) = verify_draw(&json!({"hello": 1}), None);
    assert!(!ok);
    assert!(err.contains("is not a published draw"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lottery_round_commits_takes_registrations_draws_and_issues_verifiably() {
    let app = spawn(Options::default()).await;
    let starts = release_day();
    let (campaign, created) = lottery_campaign(
        &app,
        10,
        1,
        json!([
            lottery_round(1, 2, opens(), closes(), starts),
            rush_round(2, 3, starts + Duration::days(1))
        ]),
    )
    .await;

    // The commitment is published at creation: in the answer, the catalog and the state.
    let commitment = created["rounds"][0]["commitment"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(commitment.len(), 64);
    assert_eq!(created["rounds"][0]["mode"], "lottery");
    assert_eq!(created["rounds"][1]["mode"], "rush");
    assert!(created["rounds"][1].get("commitment").is_none());
    let tokens: Vec<String> = (1..=6)
        .map(|i| app.resident(&person(i), JINCHENG, 2))
        .collect();
    let list = app
        .send(app.at(Method::GET, "/v1/campaigns").bearer_auth(&tokens[0]))
        .await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let upcoming = &list.body[0]["upcoming_rounds"][0];
    assert_eq!(
        (upcoming["mode"].as_str(), upcoming["commitment"].as_str()),
        (Some("lottery"), Some(commitment.as_str())),
        "{upcoming}"
    );
    assert_eq!(upcoming["registration_opens_at"], json!(opens()));
    let state_path = format!("/v1/campaigns/{campaign}/rounds/1/lottery");
    let draw_path = format!("/v1/campaigns/{campaign}/rounds/1/draw");
    let state = get(&app, &state_path).await;
    assert_eq!(state.status, 200, "{:?}", state.body);
    assert_eq!(state.body["phase"], "upcoming");
    assert_eq!(state.body["commitment"], commitment.as_str());
    assert!(state.body.get("seed").is_none(), "the seed stays secret");

    // Before the window: refused with its opening, nothing written.
    let early = register(&app, &tokens[0], campaign, 1).await;
    assert_eq!((early.status, early.code()), (409, "REGISTRATION_NOT_OPEN"));
    assert_eq!(
        early.body["details"]["registration_opens_at"],
        opens()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .as_str()
    );
    assert_eq!(
        app.count("SELECT count(*) FROM lottery_registrations")
            .await,
        0
    );

    // In the window: five entries; each hash is the documented one; a repeat is the same.
    app.clock.set(opens());
    let mut hashes = Vec::new();
    for (i, token) in tokens.iter().take(5).enumerate() {
        let r = register(&app, token, campaign, 1).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.body["replayed"], false);
        let expected = registration_hash(campaign, 1, &person(i + 1));
        assert_eq!(r.body["registration_hash"], expected.as_str());
        hashes.push(expected);
    }
    app.clock.set(opens() + Duration::seconds(30));
    let again = register(&app, &tokens[2], campaign, 1).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["replayed"], true);
    assert_eq!(again.body["registration_hash"], hashes[2].as_str());
    assert_eq!(again.body["registered_at"], json!(opens()));

    // Eligibility as for claims: place and real-name level; nothing written.
    let taiyuan = app.resident("T000001", TAIYUAN, 2);
    let r = register(&app, &taiyuan, campaign, 1).await;
    assert_eq!(
        (r.status, r.code(), r.body["details"]["reason"].as_str()),
        (403, "NOT_ELIGIBLE", Some("place"))
    );
    let level1 = app.resident("L000001", JINCHENG, 1);
    let r = register(&app, &level1, campaign, 1).await;
    assert_eq!(
        (r.status, r.code(), r.body["details"]["reason"].as_str()),
        (403, "NOT_ELIGIBLE", Some("real_name_level"))
    );
    assert_eq!(
        app.count("SELECT count(*) FROM lottery_registrations")
            .await,
        5
    );
    let state = get(&app, &state_path).await;
    assert_eq!(
        (
            state.body["phase"].as_str(),
            state.body["registered"].as_u64()
        ),
        (Some("registration_open"), Some(5))
    );

    // No draw before the round's start; nothing published.
    let jincheng = app.secrets.jincheng_admin.key.clone();
    let r = draw(&app, &jincheng, campaign, 1).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "DRAW_TOO_EARLY"),
        "{:?}",
        r.body
    );
    let r = get(&app, &draw_path).await;
    assert_eq!((r.status, r.code()), (409, "NOT_YET_DRAWN"));

    // After the close: no more entries.
    app.clock.set(closes());
    let late = register(&app, &tokens[5], campaign, 1).await;
    assert_eq!((late.status, late.code()), (409, "REGISTRATION_CLOSED"));
    assert_eq!(
        get(&app, &state_path).await.body["phase"],
        "registration_closed"
    );

    // The lottery round is no rush: a claim in it is refused.
    app.clock.set(starts + Duration::seconds(1));
    let rush = app.claim(&tokens[5], campaign, uuid::Uuid::new_v4()).await;
    assert_eq!((rush.status, rush.code()), (409, "ROUND_IS_LOTTERY"));

    // The draw: two winners, both issued.
    let report = draw(&app, &jincheng, campaign, 1).await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    assert_eq!(
        (
            report.body["issued"].as_u64(),
            report.body["refused"].as_u64(),
            report.body["pending"].as_u64()
        ),
        (Some(2), Some(0), Some(0)),
        "{:?}",
        report.body
    );
    let published = get(&app, &draw_path).await;
    assert_eq!(published.status, 200, "{:?}", published.body);
    assert_eq!(published.body, report.body["draw"]);
    let d = &published.body;
    let seed = d["seed"].as_str().unwrap();
    assert_eq!(d["commitment"], commitment.as_str());
    assert_eq!(
        sha256_hex(&unhex(seed)),
        commitment,
        "the seed is the one committed to"
    );
    let mut sorted = hashes.clone();
    sorted.sort();
    assert_eq!(strings(&d["registration_hashes"]), sorted);
    let winners = expected_winners(seed, &hashes, 2);
    assert_eq!(
        strings(&d["winners"]),
        winners,
        "recomputed from the seed and the list"
    );
    assert_eq!(d["quantity"], 2);
    let state = get(&app, &state_path).await;
    assert_eq!(
        (
            state.body["phase"].as_str(),
            state.body["seed"].as_str(),
            state.body["winners"].as_u64()
        ),
        (Some("drawn"), Some(seed), Some(2))
    );

    // Each resident reads their result; the winners' vouchers reach PostgreSQL through the
    // outbox, with the draw's claim ids, and are listed as theirs.
    let mut voucher_ids = Vec::new();
    for (i, token) in tokens.iter().take(5).enumerate() {
        let r = mine(&app, token, campaign, 1).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let won = winners.contains(&hashes[i]);
        assert_eq!(r.body["result"]["won"], won, "{:?}", r.body);
        if won {
            assert_eq!(r.body["result"]["issue_status"], "issued");
            voucher_ids.push((
                i,
                r.body["result"]["voucher_id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(voucher_ids.len(), 2);
    app.wait_persisted().await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM vouchers v JOIN lottery_winners w
               ON w.claim_id = v.claim_id AND w.voucher_id = v.voucher_id
                  AND w.person_id = v.person_id AND w.status = 'issued'
             WHERE v.campaign_id = {campaign} AND v.round_no = 1 AND v.status = 'issued'"
        ))
        .await,
        2
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM vouchers WHERE campaign_id = {campaign}"
        ))
        .await,
        2
    );
    for (i, voucher) in &voucher_ids {
        let listed = app
            .send(
                app.at(Method::GET, "/v1/me/vouchers")
                    .bearer_auth(&tokens[*i]),
            )
            .await;
        assert_eq!(
            listed.body[0]["voucher_id"],
            voucher.as_str(),
            "{:?}",
            listed.body
        );
    }

    // Drawing again answers the same draw and issues nothing more.
    let again = draw(&app, &jincheng, campaign, 1).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["draw"], published.body);
    app.wait_persisted().await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM vouchers WHERE campaign_id = {campaign}"
        ))
        .await,
        2
    );

    // Anyone can check the published draw with the command; a tampered copy fails.
    let winner_person = person(voucher_ids[0].0 + 1);
    let (ok, out, err) = verify_draw(&published.body, Some(&winner_person));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("5 registrations, quantity 2, 2 winners"),
        "{out}"
    );
    assert!(out.contains(&format!("person {winner_person}")), "{out}");
    let loser = sorted.iter().find(|h| !winners.contains(h)).unwrap();
    let mut tampered = published.body.clone();
    tampered["winners"][1] = json!(loser);
    let (ok, _, err) = verify_draw(&tampered, None);
    assert!(!ok, "a replaced winner must fail");
    assert!(err.contains("winner #2"), "{err}");
    let mut dropped = published.body.clone();
    dropped["registration_hashes"] = json!(sorted
        .iter()
        .filter(|h| **h != winners[0])
        .collect::<Vec<_>>());
    let (ok, _, err) = verify_draw(&dropped, None);
    assert!(!ok, "a winner missing from the list must fail");
    assert!(err.contains("does NOT verify"), "{err}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_racing_make_one_entry_per_person() {
    let app = spawn(Options::default()).await;
    let (campaign, _) = lottery_campaign(
        &app,
        100,
        1,
        json!([lottery_round(1, 10, opens(), closes(), release_day())]),
    )
    .await;
    app.clock.set(opens() + Duration::seconds(1));

    // One person, 40 requests at once (many phones, a bot): one entry.
    let token = app.resident(&person(1), JINCHENG, 2);
    let replies = join_all((0..40).map(|_| register(&app, &token, campaign, 1))).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let repeated = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        (created, repeated),
        (1, 39),
        "{:?}",
        replies.iter().find(|r| r.status >= 300)
    );
    let expected = registration_hash(campaign, 1, &person(1));
    assert!(replies
        .iter()
        .all(|r| r.body["registration_hash"] == expected.as_str()));
    assert_eq!(
        app.count("SELECT count(*) FROM lottery_registrations")
            .await,
        1
    );

    // 120 more persons, each twice, all at once: each counted once.
    let tokens: Vec<String> = (2..=121)
        .map(|i| app.resident(&person(i), JINCHENG, 2))
        .collect();
    let replies = join_all(
        tokens
            .iter()
            .chain(tokens.iter())
            .map(|t| register(&app, t, campaign, 1)),
    )
    .await;
    assert!(
        replies.iter().all(|r| r.status == 201 || r.status == 200),
        "{:?}",
        replies.iter().find(|r| r.status >= 300)
    );
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), 120);
    assert_eq!(
        app.count(&format!(
            "SELECT count(DISTINCT person_id) FROM lottery_registrations WHERE campaign_id = {campaign}"
        ))
        .await,
        121
    );
    assert_eq!(
        app.count("SELECT count(*) FROM lottery_registrations")
            .await,
        121
    );
    let state = get(&app, &format!("/v1/campaigns/{campaign}/rounds/1/lottery")).await;
    assert_eq!(state.body["registered"], 121);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn administrators_drawing_at_once_make_one_draw_and_issue_once() {
    let app = spawn(Options::default()).await;
    let (campaign, _) = lottery_campaign(
        &app,
        100,
        1,
        json!([lottery_round(1, 10, opens(), closes(), release_day())]),
    )
    .await;
    app.clock.set(opens());
    let mut hashes = Vec::new();
    for i in 1..=30 {
        let r = register(&app, &app.resident(&person(i), JINCHENG, 2), campaign, 1).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        hashes.push(registration_hash(campaign, 1, &person(i)));
    }
    app.clock.set(release_day());

    // The city's and the province's administrators press "draw" together, four times each.
    let keys = [
        app.secrets.jincheng_admin.key.clone(),
        app.secrets.province_admin.key.clone(),
    ];
    let replies = join_all((0..8).map(|i| draw(&app, &keys[i % 2], campaign, 1))).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["draw"], replies[0].body["draw"], "one draw");
        assert_eq!(r.body["issued"], 10, "{:?}", r.body);
    }
    let d = &replies[0].body["draw"];
    let winners = expected_winners(d["seed"].as_str().unwrap(), &hashes, 10);
    assert_eq!(strings(&d["winners"]), winners);
    assert_eq!(app.count("SELECT count(*) FROM lottery_winners").await, 10);
    app.wait_persisted().await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(DISTINCT person_id) FROM vouchers WHERE campaign_id = {campaign}"
        ))
        .await,
        10
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM vouchers WHERE campaign_id = {campaign}"
        ))
        .await,
        10,
        "each winner issued once, whoever drew"
    );
    let counters = app
        .admin_get(
            &keys[0],
            &format!("/v1/admin/campaigns/{campaign}/counters"),
        )
        .await;
    assert_eq!(counters.status, 200, "{:?}", counters.body);
    assert_eq!(counters.body["live"]["claimed"], 10, "{:?}", counters.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn winners_keep_the_per_person_limit_and_stock_they_leave_goes_to_the_next_round() {
    let app = spawn(Options::default()).await;
    let day = release_day();
    // Round 1 (rush, 2) opens at release; round 2 (lottery, 5) takes registrations from
    // before that until an hour later and is drawn then; round 3 (rush, 3) the next day.
    let lottery_starts = day + Duration::hours(1);
    let (campaign, _) = lottery_campaign(
        &app,
        10,
        1,
        json!([
            rush_round(1, 2, day),
            lottery_round(2, 5, opens(), lottery_starts, lottery_starts),
            rush_round(3, 3, day + Duration::days(1))
        ]),
    )
    .await;
    let token = |p: &str| app.resident(p, JINCHENG, 2);
    let (a, b, c, d) = ("PA", "PB", "PC", "PD");

    // A, C and D register for round 2 before round 1 opens.
    app.clock.set(opens());
    for p in [a, c, d] {
        let r = register(&app, &token(p), campaign, 2).await;
        assert_eq!(r.status, 201, "{p}: {:?}", r.body);
    }
    // Round 1: A and B claim their one voucher each in the rush.
    app.clock.set(day);
    for p in [a, b] {
        let r = app.claim(&token(p), campaign, uuid::Uuid::new_v4()).await;
        assert_eq!(r.status, 201, "{p}: {:?}", r.body);
    }
    // B, at the limit, cannot register (as a claim would be refused); A's repeat still
    // answers A's entry, made before.
    let r = register(&app, &token(b), campaign, 2).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "PER_PERSON_LIMIT"),
        "{:?}",
        r.body
    );
    let r = register(&app, &token(a), campaign, 2).await;
    assert_eq!((r.status, r.body["replayed"].as_bool()), (200, Some(true)));
    assert_eq!(
        app.count("SELECT count(*) FROM lottery_registrations")
            .await,
        3
    );

    // Round 2 drawn: all three entries win (quantity 5); A is refused by the limit.
    app.clock.set(lottery_starts + Duration::seconds(1));
    let e = token("PE");
    let r = app.claim(&e, campaign, uuid::Uuid::new_v4()).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "ROUND_IS_LOTTERY"),
        "no rush on the leftovers"
    );
    let report = draw(&app, &app.secrets.jincheng_admin.key, campaign, 2).await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    assert_eq!(
        (
            report.body["issued"].as_u64(),
            report.body["refused"].as_u64()
        ),
        (Some(2), Some(1)),
        "{:?}",
        report.body
    );
    let refused = report.body["winners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["status"] == "refused")
        .unwrap();
    assert_eq!(
        refused["registration_hash"],
        registration_hash(campaign, 2, a).as_str()
    );
    assert_eq!(refused["reason"], "per-person limit reached");
    let r = mine(&app, &token(a), campaign, 2).await;
    assert_eq!(
        (
            r.body["result"]["won"].as_bool(),
            r.body["result"]["issue_status"].as_str()
        ),
        (Some(true), Some("refused"))
    );

    // Round 3: its 3 plus the 3 the lottery left: six claims succeed, the seventh is sold out.
    app.clock.set(day + Duration::days(1));
    let mut claimed = 0;
    for i in 1..=7 {
        let r = app
            .claim(&token(&format!("PF{i}")), campaign, uuid::Uuid::new_v4())
            .await;
        match r.status {
            201 => claimed += 1,
            _ => {
                assert_eq!((i, r.code()), (7, "SOLD_OUT"), "{:?}", r.body);
            }
        }
    }
    assert_eq!(claimed, 6);
    app.wait_persisted().await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM vouchers WHERE campaign_id = {campaign}"
        ))
        .await,
        10,
        "2 in the rush, 2 drawn, 6 in round 3: the whole stock"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM vouchers WHERE campaign_id = {campaign} AND person_id = 'PA'"
        ))
        .await,
        1,
        "A holds one voucher: the limit held for the winner"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_lottery_input_is_refused_and_writes_nothing() {
    let app = spawn(Options::default()).await;
    let program = app.program().await;
    let jincheng = app.secrets.jincheng_admin.key.clone();
    let now = app.clock_now();
    let written = || async {
        [
            app.count("SELECT count(*) FROM campaigns").await,
            app.count("SELECT count(*) FROM rounds").await,
            app.count("SELECT count(*) FROM lottery_rounds").await,
            app.count("SELECT count(*) FROM lottery_registrations")
                .await,
            app.count("SELECT count(*) FROM lottery_winners").await,
        ]
    };

    // Campaigns whose lottery round is malformed.
    let good = lottery_round(1, 5, opens(), closes(), release_day());
    let mut no_close = good.clone();
    no_close
        .as_object_mut()
        .unwrap()
        .remove("registration_closes_at");
    let mut late_close = good.clone();
    late_close["registration_closes_at"] = json!(release_day() + Duration::minutes(1));
    let mut own_commitment = good.clone();
    own_commitment["commitment"] = json!("00".repeat(32));
    let mut opened_before = good.clone();
    opened_before["registration_opens_at"] = json!(now - Duration::seconds(1));
    let mut window_on_rush = good.clone();
    window_on_rush["mode"] = json!("rush");
    let mut unknown_mode = good.clone();
    unknown_mode["mode"] = json!("raffle");
    for (what, round) in [
        ("no close", no_close),
        ("closes after the start", late_close),
        ("a commitment from the client", own_commitment),
        ("opened before creation", opened_before),
        ("a window on a rush round", window_on_rush),
        ("an unknown mode", unknown_mode),
    ] {
        let r = app
            .admin_post(
                &jincheng,
                "/v1/admin/campaigns",
                &campaign_spec(program, 10, 1, json!([round])),
            )
            .await;
        assert_eq!(r.status, 400, "{what}: {:?}", r.body);
        assert!(
            ["INVALID_FIELD", "MALFORMED_JSON"].contains(&r.code()),
            "{what}: {:?}",
            r.body
        );
        assert_eq!(written().await, [0; 5], "{what} wrote something");
    }
    let r = app
        .admin_post(
            &jincheng,
            "/v1/admin/campaigns",
            &campaign_spec(
                program,
                10,
                1,
                json!([{"round_no": 1, "starts_at": release_day(), "quantity": 5, "mode": "lottery",
                        "registration_opens_at": now - Duration::minutes(1),
                        "registration_closes_at": closes()}]),
            ),
        )
        .await;
    assert_eq!(r.body["details"]["field"], "rounds", "{:?}", r.body);

    // A rush campaign; a lottery round added with its window already open is refused, a
    // good one is added with its commitment.
    let (campaign, _) =
        lottery_campaign(&app, 10, 1, json!([rush_round(1, 5, release_day())])).await;
    let base = written().await;
    let rounds_path = format!("/v1/admin/campaigns/{campaign}/rounds");
    let r = app
        .admin_post(
            &jincheng,
            &rounds_path,
            &json!({"starts_at": release_day() + Duration::days(1), "quantity": 5, "mode": "lottery",
                    "registration_opens_at": now - Duration::seconds(1),
                    "registration_closes_at": release_day() + Duration::hours(1)}),
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.body["details"]["field"].as_str()),
        (400, "INVALID_FIELD", Some("registration_opens_at")),
        "{:?}",
        r.body
    );
    let r = app
        .admin_post(
            &jincheng,
            &rounds_path,
            &json!({"starts_at": release_day() + Duration::days(1), "quantity": 5, "mode": "lottery",
                    "registration_opens_at": release_day() + Duration::hours(2)}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_FIELD"), "{:?}", r.body);
    assert_eq!(written().await, base);
    let r = app
        .admin_post(
            &jincheng,
            &rounds_path,
            &json!({"starts_at": release_day() + Duration::days(1), "quantity": 5, "mode": "lottery",
                    "registration_opens_at": opens(),
                    "registration_closes_at": release_day() + Duration::hours(1)}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["rounds"][1]["mode"], "lottery");
    assert_eq!(
        r.body["rounds"][1]["commitment"].as_str().map(str::len),
        Some(64)
    );
    let base = written().await;
    assert_eq!(base[2], 1, "one lottery round, with its seed");

    // Registration and draws that are refused.
    app.clock.set(opens());
    let token = app.resident("R000001", JINCHENG, 2);
    for (path, status, code) in [
        (
            format!("/v1/campaigns/{campaign}/rounds/abc/registrations"),
            400,
            "",
        ),
        (
            format!("/v1/campaigns/{campaign}/rounds/9/registrations"),
            404,
            "ROUND_NOT_FOUND",
        ),
        (
            format!("/v1/campaigns/{campaign}/rounds/1/registrations"),
            409,
            "ROUND_NOT_LOTTERY",
        ),
        (
            "/v1/campaigns/999/rounds/2/registrations".to_owned(),
            404,
            "CAMPAIGN_NOT_FOUND",
        ),
    ] {
        let r = app
            .send(app.at(Method::POST, &path).bearer_auth(&token))
            .await;
        assert_eq!(r.status, status, "{path}: {:?}", r.body);
        if !code.is_empty() {
            assert_eq!(r.code(), code, "{path}");
        }
        assert!(!r.code().is_empty(), "{path}: a machine-readable code");
    }
    let anonymous = app
        .send(app.at(
            Method::POST,
            &format!("/v1/campaigns/{campaign}/rounds/2/registrations"),
        ))
        .await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (401, "MISSING_IDENTITY")
    );
    app.clock.set(release_day() + Duration::days(1));
    let taiyuan = draw(&app, &app.secrets.taiyuan_admin.key, campaign, 2).await;
    assert_eq!((taiyuan.status, taiyuan.code()), (403, "FORBIDDEN_PLACE"));
    let rush = draw(&app, &jincheng, campaign, 1).await;
    assert_eq!((rush.status, rush.code()), (409, "ROUND_NOT_LOTTERY"));
    let keyless = app
        .send(app.at(
            Method::POST,
            &format!("/v1/admin/campaigns/{campaign}/rounds/2/draw"),
        ))
        .await;
    assert_eq!(keyless.status, 401, "{:?}", keyless.body);
    assert_eq!(written().await, base, "nothing registered or drawn");
    assert_eq!(
        app.count("SELECT count(*) FROM lottery_rounds WHERE drawn_at IS NOT NULL")
            .await,
        0
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_winner_redeems_the_voucher_the_draw_gave_at_a_till() {
    use crate::stack_support;
    use std::sync::Arc;
    use voucher_core::ManualClock;

    let clock = ManualClock::new(release_day() - Duration::minutes(5));
    let stack = stack_support::start(Arc::new(clock.clone())).await;
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
    let program = program["id"].as_i64().unwrap();
    let (status, campaign) = stack
        .admin_post(
            &stack.issuance,
            &jincheng,
            "/v1/admin/campaigns",
            campaign_spec(
                program,
                5,
                1,
                json!([lottery_round(1, 1, opens(), closes(), release_day())]),
            ),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let campaign = campaign["id"].as_i64().unwrap();
    stack.merchant("m-lottery", program).await;
    let term = stack.pair("m-lottery").await;

    clock.set(opens());
    let alice = stack.sign_in("alice").await;
    let (status, body) = json_of(
        stack
            .http
            .post(format!(
                "{}/v1/campaigns/{campaign}/rounds/1/registrations",
                stack.issuance
            ))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    clock.set(release_day() + Duration::seconds(5));
    let (status, report) = stack
        .admin_post(
            &stack.issuance,
            &jincheng,
            &format!("/v1/admin/campaigns/{campaign}/rounds/1/draw"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let voucher = report["winners"][0]["voucher_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The voucher reaches the record through the outbox, then is spent at the till.
    let mut listed = false;
    for _ in 0..200 {
        let (_, mine) = stack.resident_get(&alice, "/v1/me/vouchers").await;
        if mine
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x["voucher_id"] == voucher.as_str()))
        {
            listed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(listed, "the winner's voucher never reached the record");
    let (status, code) = stack
        .resident_get(&alice, &format!("/v1/me/vouchers/{voucher}/code"))
        .await;
    assert_eq!(status, 200, "{code}");
    let (status, answer) = stack.redeem(&term, code["code"].as_str().unwrap()).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("approved")),
        "{answer}"
    );
    assert_eq!(
        stack
            .count(&format!(
                "vouchers WHERE voucher_id = '{voucher}' AND status = 'redeemed'"
            ))
            .await,
        1
    );
    stack.stop().await;
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

//! Terminal HMAC secrets at rest (issue 13, "Secrets"): the database holds them sealed under
//! a key-encryption key (KEK) of the secrets directory, so a dump of the database alone signs
//! nothing; rows written as is by an older version are sealed when the service starts; a
//! KEK rotation (add, make current, re-wrap, retire) runs while replicas serve, and every
//! terminal keeps signing throughout and afterwards.
//!
//! Each test runs the real redemption app (in process, port 0) on a fresh database and a
//! private Redis (`redemption_support`); "replicas" are more apps on the same database,
//! Redis and secrets directory.

use crate::redemption_support::{spawn, t0, Term, TestApp};
use futures::future::join_all;
use redemption::settings::Settings;
use redemption::terminal_secrets::{self, kek_file, Keyring};
use redemption::{Application, ShutdownHandle};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;
use voucher_core::{Category, Clock as _, Fen, RefundPolicy, TerminalKeyId};
use voucher_platform::secrets::SecretsDir;

/// Another replica of `app`'s service: same database, Redis, clock and secrets directory
/// (it loads the KEK file as it is now).
struct Replica {
    base: String,
    handle: ShutdownHandle,
}

async fn replica(app: &TestApp) -> Replica {
    let mut s = Settings::default();
    s.server.port = 0;
    s.server.workers = Some(1);
    s.redis.url = app.redis.url().into();
    s.postgres.url = app.db.url.clone().into();
    s.postgres.max_connections = 8;
    s.secrets_dir = app.secrets.dir.clone();
    s.holds.sweep_interval_secs = 0;
    s.rate_limits.terminal_per_second = 1000;
    s.rate_limits.terminal_burst = 1000;
    s.rate_limits.ip_per_second = 10_000;
    s.rate_limits.ip_burst = 10_000;
    let built = Application::build(s, Arc::new(app.clock.clone()))
        .await
        .unwrap();
    let replica = Replica {
        base: format!("http://127.0.0.1:{}", built.port()),
        handle: built.shutdown_handle(),
    };
    tokio::spawn(built.run_until_stopped());
    replica
}

/// `GET /v1/terminal/me` at `base`, signed by `key_id` with `secret` (hex) at the app's now:
/// the status and the error code, if any.
async fn me(app: &TestApp, base: &str, key_id: &str, secret: &str) -> (u16, String) {
    let path = "/v1/terminal/me";
    let headers = redemption::sign_request(
        key_id,
        secret,
        "GET",
        path,
        app.clock.now().timestamp(),
        b"",
    )
    .unwrap();
    let mut req = app.http.get(format!("{base}{path}"));
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

/// A database dump as an attacker would take it: `pg_dump` of the whole database, data
/// included.
fn pg_dump(app: &TestApp) -> String {
    let out = std::process::Command::new("pg_dump")
        .args(["--no-owner", "--data-only", &app.db.url])
        .output()
        .expect("pg_dump (PostgreSQL client tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn to_hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every way the secret could appear as text: its hex (either case), the base64 of its
/// bytes and of its text.
fn spellings(secret_hex: &str) -> Vec<String> {
    use base64::Engine as _;
    let raw: Vec<u8> = (0..secret_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&secret_hex[i..i + 2], 16).unwrap())
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        secret_hex.to_lowercase(),
        secret_hex.to_uppercase(),
        b64.encode(&raw),
        b64.encode(secret_hex.as_bytes()),
        to_hex(secret_hex.as_bytes()),
    ]
}

/// The KEK ids and secret forms of every stored terminal: `(kek_id, plain)` pairs.
async fn stored_forms(app: &TestApp) -> Vec<(Option<i32>, bool)> {
    sqlx::query_as("SELECT kek_id, secret IS NOT NULL FROM terminals ORDER BY terminal_id")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_database_dump_alone_cannot_forge_a_terminal_request() {
    // Arrange: a merchant with two terminals, one of them rotated, and a sale made.
    let app = spawn().await;
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::from_yuan(1_000_000).unwrap())
        .await;
    let term = app
        .merchant(
            "m-dump",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let second = app.terminal("m-dump").await;
    let key = app.secrets.jincheng_admin.key.clone();
    let (status, rotated) = app
        .admin_post(
            &key,
            &format!(
                "/v1/admin/merchants/m-dump/terminals/{}/rotate",
                second.terminal_id
            ),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let second = Term {
        key_id: rotated["key_id"].as_str().unwrap().to_owned(),
        secret: rotated["secret"].as_str().unwrap().to_owned(),
        ..second
    };
    let claims = app.voucher(&campaign, "alice");
    let (status, sale) = app.redeem(&term, &app.code(&claims), 120_00).await;
    assert_eq!((status, sale["outcome"].as_str()), (200, Some("approved")));

    // Act: dump the database, and read the terminal rows as they are stored.
    let dump = pg_dump(&app);
    let rows: Vec<(String, Option<String>, i32, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT key_id, secret, kek_id, secret_nonce, secret_ciphertext FROM terminals
         ORDER BY terminal_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();

    // Assert: no secret appears in the dump, in any spelling; the rows hold ciphertext only.
    assert!(
        dump.contains(&term.key_id),
        "the dump is not of this database"
    );
    for t in [&term, &second] {
        for spelling in spellings(&t.secret) {
            assert!(
                !dump.contains(&spelling),
                "the dump holds a terminal secret"
            );
        }
    }
    assert_eq!(rows.len(), 2);
    for (_, plain, kek_id, nonce, ciphertext) in &rows {
        assert_eq!((plain.as_deref(), *kek_id, nonce.len()), (None, 1, 12));
        assert_eq!(ciphertext.len(), 64 + 16, "a 64-digit secret and its tag");
    }

    // Assert: whatever the rows hold, signing with it is refused.
    for (key_id, _, kek_id, nonce, ciphertext) in &rows {
        // An HMAC key is 32 bytes: every 32-byte window of what the row holds (the
        // ciphertext with its tag, the nonce, the key id and KEK id, padded) ...
        let mut material = ciphertext.clone();
        material.extend_from_slice(nonce);
        material.extend_from_slice(key_id.as_bytes());
        material.extend_from_slice(&kek_id.to_be_bytes());
        material.resize(material.len().max(32), 0);
        let mut candidates: Vec<String> = material.windows(32).map(to_hex).collect();
        // ... and the ciphertext read as if it were the secret's 64 hex digits.
        candidates.extend(
            std::str::from_utf8(&ciphertext[..64])
                .ok()
                .filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_owned),
        );
        for candidate in candidates {
            let (status, code) = me(&app, &app.base, key_id, &candidate).await;
            assert_eq!((status, code.as_str()), (401, "BAD_SIGNATURE"));
        }
    }

    // Assert: with the KEK (the service), the real secrets sign.
    for t in [&term, &second] {
        assert_eq!(me(&app, &app.base, &t.key_id, &t.secret).await.0, 200);
    }
    let claims = app.voucher(&campaign, "bob");
    let (status, sale) = app.redeem(&second, &app.code(&claims), 150_00).await;
    assert_eq!((status, sale["outcome"].as_str()), (200, Some("approved")));
}

#[tokio::test]
async fn a_sealed_secret_copied_into_another_terminals_row_does_not_open() {
    // Arrange: two terminals of one merchant.
    let app = spawn().await;
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::from_yuan(1_000).unwrap())
        .await;
    let first = app
        .merchant(
            "m-swap",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let second = app.terminal("m-swap").await;

    // Act: someone with write access copies the first row's sealed secret into the second.
    sqlx::query(
        "UPDATE terminals SET (kek_id, secret_nonce, secret_ciphertext) =
             (SELECT kek_id, secret_nonce, secret_ciphertext FROM terminals WHERE key_id = $1)
         WHERE key_id = $2",
    )
    .bind(&first.key_id)
    .bind(&second.key_id)
    .execute(&app.db.pool)
    .await
    .unwrap();

    // Assert: the moved ciphertext opens for neither secret (it is bound to its terminal and
    // key id); the first terminal is untouched.
    for secret in [&first.secret, &second.secret] {
        let (status, code) = me(&app, &app.base, &second.key_id, secret).await;
        assert_eq!((status, code.as_str()), (401, "TERMINAL_KEY_INVALID"));
    }
    assert_eq!(
        me(&app, &app.base, &first.key_id, &first.secret).await.0,
        200
    );
}

#[tokio::test]
async fn a_secret_stored_as_is_by_an_older_version_is_sealed_when_the_service_starts() {
    // Arrange: a terminal row as a version before migration 0012 wrote it (plain secret).
    let app = spawn().await;
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::from_yuan(1_000).unwrap())
        .await;
    let term = app
        .merchant(
            "m-old",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let key_id = TerminalKeyId::from_random(Uuid::new_v4());
    let secret = voucher_core::signing::new_secret().unwrap();
    sqlx::query(
        "INSERT INTO terminals (terminal_id, merchant_id, key_id, secret, status, created_at)
         VALUES ($1, 'm-old', $2, $3, 'active', $4)",
    )
    .bind(Uuid::now_v7())
    .bind(key_id.as_str())
    .bind(&secret)
    .bind(t0())
    .execute(&app.db.pool)
    .await
    .unwrap();
    // A plain row signs nothing, even on a service that is up.
    let (status, code) = me(&app, &app.base, key_id.as_str(), &secret).await;
    assert_eq!((status, code.as_str()), (401, "TERMINAL_KEY_INVALID"));

    // Act: a service starts (a new replica, or the upgraded one).
    let started = replica(&app).await;

    // Assert: no plaintext is left, the old row is sealed under KEK 1, and it signs on
    // every replica; the terminal made through the API is as it was.
    assert_eq!(stored_forms(&app).await, vec![(Some(1), false); 2]);
    for spelling in spellings(&secret) {
        assert!(!pg_dump(&app).contains(&spelling));
    }
    for base in [&started.base, &app.base] {
        assert_eq!(me(&app, base, key_id.as_str(), &secret).await.0, 200);
        assert_eq!(me(&app, base, &term.key_id, &term.secret).await.0, 200);
    }
    started.handle.stop().await;
}

#[tokio::test]
async fn a_kek_rotation_rewraps_every_secret_while_terminals_keep_signing() {
    // Arrange: terminals sealed under KEK 1, and a sale campaign.
    let app = spawn().await;
    let dir = app.secrets.dir.clone();
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::from_yuan(1_000_000).unwrap())
        .await;
    let mut terms = vec![
        app.merchant(
            "m-rot",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await,
    ];
    for _ in 0..11 {
        terms.push(app.terminal("m-rot").await);
    }

    // Act 1: add KEK 2 (it only opens), roll a replica onto the file, then make it current
    // and roll another replica: that one seals new terminals under KEK 2.
    assert_eq!(kek_file::add(&dir, false).unwrap(), (2, false));
    let opens_2 = replica(&app).await;
    kek_file::make_current(&dir, 2).unwrap();
    let seals_2 = replica(&app).await;
    let fresh = Term {
        merchant: "m-rot".into(),
        ..app.terminal("m-rot").await
    };
    let http = reqwest::Client::new();
    let (status, on_new) = {
        let resp = http
            .post(format!(
                "{}/v1/admin/merchants/m-rot/terminals",
                seals_2.base
            ))
            .header("x-api-key", &app.secrets.jincheng_admin.key)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 201, "{on_new}");
    let sealed_by_2 = Term {
        merchant: "m-rot".into(),
        terminal_id: on_new["terminal_id"].as_str().unwrap().into(),
        key_id: on_new["key_id"].as_str().unwrap().into(),
        secret: on_new["secret"].as_str().unwrap().into(),
    };
    terms.push(fresh);
    terms.push(sealed_by_2.clone());
    // The replica that loaded KEK 2 opens what the newest one sealed.
    for base in [&opens_2.base, &seals_2.base, &app.base] {
        let (status, _) = me(&app, base, &sealed_by_2.key_id, &sealed_by_2.secret).await;
        let expected = if base == &app.base { 500 } else { 200 };
        assert_eq!(status, expected, "{base}");
    }
    app.stop().await; // the replica that never loaded KEK 2 leaves the rotation

    // Retiring KEK 1 before the re-wrap is refused: secrets are still sealed under it.
    let refused = kek_file::retire(&dir, &app.db.pool, 1).await.unwrap_err();
    assert!(refused.to_string().contains("rewrap-secrets"), "{refused}");

    // Act 2: the re-wrap command runs while every terminal keeps signing on both replicas.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!(
            "postgres:\n  url: \"{}\"\nsecrets_dir: \"{}\"\n",
            app.db.url,
            dir.display()
        ),
    )
    .unwrap();
    let load = async {
        let mut answers = Vec::new();
        for round in 0..3 {
            let base = if round % 2 == 0 {
                &opens_2.base
            } else {
                &seals_2.base
            };
            answers
                .extend(join_all(terms.iter().map(|t| me(&app, base, &t.key_id, &t.secret))).await);
        }
        answers
    };
    let rewrap = redemption::commands::Cli {
        config: Some(config.path().to_path_buf()),
        command: redemption::commands::Command::RewrapSecrets,
    }
    .run();
    let (answers, rewrapped) = tokio::join!(load, rewrap);
    rewrapped.unwrap();
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );

    // Assert: every stored secret is under KEK 2; KEK 1 can now be retired.
    let forms = stored_forms(&app).await;
    assert_eq!(forms, vec![(Some(2), false); terms.len()]);
    kek_file::retire(&dir, &app.db.pool, 1).await.unwrap();
    let keks = SecretsDir::new(&dir).terminal_keks().unwrap();
    assert_eq!(keks.current, 2);
    assert_eq!(keks.keys.iter().map(|k| k.id).collect::<Vec<_>>(), vec![2]);
    // A second re-wrap finds nothing to do.
    let again = terminal_secrets::rewrap(&app.db.pool, &Keyring::new(&keks).unwrap(), false)
        .await
        .unwrap();
    assert_eq!((again.sealed_plain, again.rewrapped), (0, 0));

    // Assert: a replica that holds KEK 2 only serves every terminal, sales included.
    let after = replica(&app).await;
    for t in &terms {
        assert_eq!(me(&app, &after.base, &t.key_id, &t.secret).await.0, 200);
    }
    let claims = app.voucher(&campaign, "carol");
    let code = app.code(&claims);
    let body = serde_json::to_vec(&serde_json::json!({
        "code": code, "order_amount_fen": 120_00, "order_ref": "after-rotation",
    }))
    .unwrap();
    let headers = redemption::sign_request(
        &terms[0].key_id,
        &terms[0].secret,
        "POST",
        "/v1/redemptions",
        app.clock.now().timestamp(),
        &body,
    )
    .unwrap();
    let mut req = http
        .post(format!("{}/v1/redemptions", after.base))
        .header("content-type", "application/json")
        .header("idempotency-key", "after-rotation-1")
        .body(body);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let sale: Value = resp.json().await.unwrap();
    assert_eq!(sale["outcome"], "approved", "{sale}");
    for r in [opens_2, seals_2, after] {
        r.handle.stop().await;
    }
}

#[tokio::test]
async fn a_rewrap_leaves_a_terminal_rotated_meanwhile_as_the_rotation_wrote_it() {
    // Arrange: two terminals under KEK 1; KEK 2 becomes current; the re-wrap reads its page.
    let app = spawn().await;
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::from_yuan(1_000).unwrap())
        .await;
    let stays = app
        .merchant(
            "m-race",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let rotates = app.terminal("m-race").await;
    let dir = app.secrets.dir.clone();
    kek_file::add(&dir, true).unwrap();
    let keyring = Keyring::new(&SecretsDir::new(&dir).terminal_keks().unwrap()).unwrap();
    let read = voucher_store::pg::terminals::needing_wrap(&app.db.pool, 2, false, None, 10)
        .await
        .unwrap();
    assert_eq!(read.len(), 2);

    // Act: the terminal is rotated (by the replica still sealing under KEK 1) before the
    // re-wrap writes what it read.
    let (status, rotated) = app
        .admin_post(
            &app.secrets.jincheng_admin.key,
            &format!(
                "/v1/admin/merchants/m-race/terminals/{}/rotate",
                rotates.terminal_id
            ),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let page: Vec<_> = read
        .iter()
        .map(|row| {
            let secret = keyring
                .open(row.terminal_id, &row.key_id, &row.secret)
                .unwrap();
            use terminal_secrets::ExposeSecret as _;
            let sealed = keyring
                .seal(row.terminal_id, &row.key_id, secret.expose_secret())
                .unwrap();
            (row, sealed)
        })
        .collect();
    let (from_plain, from_sealed) = voucher_store::pg::terminals::rewrap(&app.db.pool, 2, &page)
        .await
        .unwrap();

    // Assert: only the untouched row moved to KEK 2; on a replica holding both KEKs the
    // rotated key works and the old is gone; the next re-wrap moves the rotated row too.
    assert_eq!((from_plain, from_sealed), (0, 1));
    let both = replica(&app).await;
    let new_key = rotated["key_id"].as_str().unwrap();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_eq!(me(&app, &both.base, new_key, new_secret).await.0, 200);
    let (status, _) = me(&app, &both.base, &rotates.key_id, &rotates.secret).await;
    assert_eq!(status, 401);
    assert_eq!(
        me(&app, &both.base, &stays.key_id, &stays.secret).await.0,
        200
    );
    let report = terminal_secrets::rewrap(&app.db.pool, &keyring, false)
        .await
        .unwrap();
    assert_eq!((report.rewrapped, report.changed_meanwhile), (1, 0));
    assert_eq!(stored_forms(&app).await, vec![(Some(2), false); 2]);
    both.handle.stop().await;
}

//! The persister as its own process, killed with SIGKILL in the middle of draining: another
//! persister takes over the dead one's pending entries and every claimed voucher ends up in
//! PostgreSQL exactly once.

use crate::support::{release_day, spawn, Options, TestApp};
use futures::stream::{self, StreamExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn persister(app: &TestApp, consumer: &str, batch: usize) -> Child {
    Command::new(system_tests::workspace_binary("issuance"))
        .arg("persister")
        .env("APP__REDIS__URL", app.redis.url())
        .env("APP__POSTGRES__URL", &app.db.url)
        .env("APP__SECRETS_DIR", &app.secrets.dir)
        .env("APP__PERSISTER__CONSUMER", consumer)
        .env("APP__PERSISTER__BATCH", batch.to_string())
        .env("APP__PERSISTER__BLOCK_MS", "20")
        .env("APP__PERSISTER__CLAIM_IDLE_MS", "300")
        .env("APP__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("persister process")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_persister_killed_mid_drain_is_replaced_and_every_voucher_lands_exactly_once() {
    // Arrange: 2000 claims sit in the outbox; the service's own persister is off.
    let app = spawn(Options {
        persister: false,
        ..Options::default()
    })
    .await;
    let opens = release_day();
    let campaign = app.catering_campaign(2000, 1, &[(opens, 2000)], 7).await;
    app.clock.set(opens);
    let tokens: Vec<String> = (0..2000)
        .map(|i| app.resident(&format!("K{i:05}"), 140500, 2))
        .collect();
    let statuses: Vec<u16> = stream::iter(&tokens)
        .map(|t| app.claim(t, campaign, Uuid::new_v4()))
        .buffer_unordered(200)
        .map(|r| r.status)
        .collect()
        .await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(
        created,
        2000,
        "{:?}",
        statuses.iter().filter(|s| **s != 201).collect::<Vec<_>>()
    );
    assert_eq!(app.state.hot.outbox_len().await.unwrap(), 2000);

    // Act: persister A drains in batches of 10 and is killed -9 partway.
    let mut a = persister(&app, "persister-a", 10);
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let n = app.count("SELECT count(*) FROM vouchers").await;
        if n >= 100 || Instant::now() > deadline {
            a.kill().expect("kill -9");
            a.wait().expect("reaped");
            break app.count("SELECT count(*) FROM vouchers").await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(
        at_kill > 0 && at_kill < 2000,
        "killed mid-drain (persisted {at_kill})"
    );

    // Persister B takes over A's pending entries after they idle, and drains the rest.
    let mut b = persister(&app, "persister-b", 100);
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.state.hot.outbox_len().await.unwrap() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.kill().expect("stop b");
    b.wait().expect("reaped");

    // Assert: everything exactly once.
    assert_eq!(
        app.state.hot.outbox_len().await.unwrap(),
        0,
        "outbox drained"
    );
    assert_eq!(app.count("SELECT count(*) FROM vouchers").await, 2000);
    assert_eq!(
        app.count("SELECT count(DISTINCT claim_id) FROM vouchers")
            .await,
        2000
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE kind = 'voucher_claimed'")
            .await,
        2000
    );
    assert_eq!(
        app.count("SELECT count(DISTINCT person_id) FROM vouchers")
            .await,
        2000
    );
    app.stop().await;
}

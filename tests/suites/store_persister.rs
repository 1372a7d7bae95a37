//! The persister: at-least-once delivery made exactly-once by idempotent writes. A
//! persister that dies before its commit leaves its entries pending; another takes them
//! over; redelivered events are written once; undecodable entries are dead-lettered.

#![allow(clippy::unwrap_used)]

use crate::store_support::{claimed, env, t0, Shape};
use chrono::Duration;
use futures::future::join_all;
use voucher_store::persister::{CancellationToken, PersisterConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_a_persister_that_died_before_commit_are_taken_over_and_written_once() {
    let env = env(Shape::rush(2000, 1)).await;
    let now = t0() + Duration::seconds(1);
    for chunk in (0..2000).collect::<Vec<_>>().chunks(200) {
        let outcomes = join_all(chunk.iter().map(|i| {
            let req = env.request(&format!("p{i}"), now);
            let hot = env.hot.clone();
            async move { hot.claim(&req).await }
        }))
        .await;
        assert!(outcomes.iter().all(|o| claimed(o.as_ref().unwrap())));
    }
    assert_eq!(env.hot.outbox_len().await.unwrap(), 2000);

    // Persister A reads a batch, writes it, and "dies" before COMMIT.
    let a = env.persister("a").fail_before_commit(true);
    assert!(
        a.step().await.is_err(),
        "the failpoint aborts the transaction"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM events").await,
        0,
        "nothing committed"
    );
    let mut raw = env.raw_redis().await;
    let pending: (
        u64,
        Option<String>,
        Option<String>,
        Option<Vec<(String, String)>>,
    ) = redis::cmd("XPENDING")
        .arg(env.hot.outbox_key(env.campaign.id))
        .arg("persister")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(pending.0, 500, "A's batch is pending with A");
    assert_eq!(pending.3.unwrap(), vec![("a".to_owned(), "500".to_owned())]);
    drop(a);

    // Persister B takes A's entries over once they are idle and drains everything.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let b = env.persister("b");
    assert_eq!(b.drain().await.unwrap(), 2000);
    assert_eq!(env.count("SELECT count(*) FROM vouchers").await, 2000);
    assert_eq!(
        env.count("SELECT count(DISTINCT voucher_id) FROM vouchers")
            .await,
        2000
    );
    assert_eq!(env.count("SELECT count(*) FROM events").await, 2000);
    assert_eq!(
        env.count("SELECT count(DISTINCT event_id) FROM events")
            .await,
        2000
    );
    let xlen: u64 = redis::cmd("XLEN")
        .arg(env.hot.outbox_key(env.campaign.id))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(xlen, 0, "stream empty");
    let pending: (u64,) = redis::cmd("XPENDING")
        .arg(env.hot.outbox_key(env.campaign.id))
        .arg("persister")
        .query_async(&mut raw)
        .await
        .map(
            |(n, _, _, _): (
                u64,
                Option<String>,
                Option<String>,
                Option<Vec<(String, String)>>,
            )| (n,),
        )
        .unwrap();
    assert_eq!(pending.0, 0, "nothing pending");
}

#[tokio::test]
async fn a_redelivered_event_is_written_once() {
    let env = env(Shape::rush(10, 1)).await;
    assert!(claimed(&env.claim("alice", t0()).await));
    let stream = env.hot.outbox_key(env.campaign.id);
    let mut raw = env.raw_redis().await;
    let entries: Vec<(String, Vec<(String, Vec<u8>)>)> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(&mut raw)
        .await
        .unwrap();
    let event = entries[0].1[0].1.clone();
    // The same envelope (same event id) a second time, as after a lost acknowledgement.
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("e")
        .arg(&event)
        .query_async(&mut raw)
        .await
        .unwrap();

    assert_eq!(
        env.persister("p").drain().await.unwrap(),
        2,
        "both entries read and written"
    );
    assert_eq!(env.count("SELECT count(*) FROM events").await, 1);
    assert_eq!(env.count("SELECT count(*) FROM vouchers").await, 1);
    assert_eq!(env.hot.outbox_len().await.unwrap(), 0);
}

#[tokio::test]
async fn undecodable_entries_are_dead_lettered_and_do_not_block_the_stream() {
    let env = env(Shape::rush(10, 5)).await;
    assert!(claimed(&env.claim("alice", t0()).await));
    let stream = env.hot.outbox_key(env.campaign.id);
    let mut raw = env.raw_redis().await;
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("e")
        .arg(&b"\xff\x01garbage"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("x")
        .arg("no e field")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(claimed(&env.claim("alice", t0()).await));

    let persisted = env.persister("p").drain().await.unwrap();
    assert_eq!(persisted, 2, "the two claims");
    assert_eq!(env.count("SELECT count(*) FROM vouchers").await, 2);
    assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 2);
    assert_eq!(
        env.count(
            "SELECT count(*) FROM dead_letters WHERE payload = '\\xff0167617262616765'::bytea"
        )
        .await,
        1
    );
    assert_eq!(
        env.hot.outbox_len().await.unwrap(),
        0,
        "dead letters are acknowledged too"
    );
}

#[tokio::test]
async fn the_event_log_is_append_only_and_readable() {
    let env = env(Shape::rush(10, 1)).await;
    assert!(claimed(&env.claim("alice", t0()).await));
    env.persister("p").drain().await.unwrap();
    let (kind, person): (String, String) =
        sqlx::query_as("SELECT kind, payload_json #>> '{voucher_claimed,person_id}' FROM events")
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (kind.as_str(), person.as_str()),
        ("voucher_claimed", "alice")
    );
    assert!(
        sqlx::query("UPDATE events SET kind = 'x'")
            .execute(&env.db.pool)
            .await
            .is_err(),
        "no UPDATE"
    );
    assert!(
        sqlx::query("DELETE FROM events")
            .execute(&env.db.pool)
            .await
            .is_err(),
        "no DELETE"
    );
    assert!(
        sqlx::query("TRUNCATE events")
            .execute(&env.db.pool)
            .await
            .is_err(),
        "no TRUNCATE"
    );
    assert_eq!(env.count("SELECT count(*) FROM events").await, 1);
}

#[tokio::test]
async fn run_persists_in_the_background_until_cancelled() {
    let env = env(Shape::rush(10, 5)).await;
    let config = PersisterConfig::new("bg");
    let persister =
        voucher_store::persister::Persister::new(env.db.pool.clone(), env.hot.clone(), config);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(persister.run(shutdown.clone()));
    for _ in 0..3 {
        assert!(claimed(&env.claim("alice", t0()).await));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while env.count("SELECT count(*) FROM vouchers").await < 3
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(env.count("SELECT count(*) FROM vouchers").await, 3);
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voucher_first_inserted_from_its_token_gets_its_real_claim_id() {
    let env = env(Shape::rush(10, 1)).await;
    let req = env.request("p1", t0() + Duration::seconds(1));
    assert!(claimed(&env.hot.claim(&req).await.unwrap()));
    // The redemption service was faster than the persister: it inserted the voucher from
    // its signed token (source 'token', a claim id derived from the voucher id) and spent it.
    sqlx::query(
        "INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                               claimed_at, valid_from, valid_until)
         VALUES ($1, $2, 'p1', gen_random_uuid(), 0, 'token', 'redeemed', $3, $3, $4)",
    )
    .bind(req.voucher_id.0)
    .bind(env.campaign.id.0)
    .bind(req.valid_from)
    .bind(req.valid_until)
    .execute(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(env.persister("a").drain().await.unwrap(), 1);
    let (claim_id, source, status, round): (uuid::Uuid, String, String, i32) = sqlx::query_as(
        "SELECT claim_id, source, status, round_no FROM vouchers WHERE voucher_id = $1",
    )
    .bind(req.voucher_id.0)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(
        claim_id, req.claim_id.0,
        "the real claim id, so expiry can recycle it"
    );
    assert_eq!(
        (source.as_str(), status.as_str(), round),
        ("rush", "redeemed", 1)
    );
    assert_eq!(env.count("SELECT count(*) FROM vouchers").await, 1);
}

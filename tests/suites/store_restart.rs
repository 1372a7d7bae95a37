//! Redis restarts: the scripts are reloaded (`NOSCRIPT` → `SCRIPT LOAD`), the connection is
//! re-established, and with the append-only file a `kill -9` loses no acknowledged claim.

#![allow(clippy::unwrap_used)]

use crate::store_support::{claimed, env, person, t0, Shape};
use chrono::Duration;
use uuid::Uuid;
use voucher_core::ClaimId;
use voucher_store::ClaimOutcome;

#[tokio::test]
async fn claims_work_after_script_flush_and_after_a_restart() {
    let mut env = env(Shape::rush(10, 5)).await;
    let now = t0() + Duration::seconds(1);
    assert!(claimed(&env.claim("alice", now).await));

    let mut raw = env.raw_redis().await;
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        claimed(&env.claim("alice", now).await),
        "NOSCRIPT is answered by loading the script"
    );

    env.redis.restart();
    assert!(
        claimed(&env.claim("alice", now).await),
        "the connection is re-established"
    );
    let c = env.hot.counters(env.campaign.id).await.unwrap().unwrap();
    assert_eq!((c.claimed, c.live), (3, 7), "nothing lost in the restart");
}

#[tokio::test]
async fn kill_9_keeps_every_acknowledged_claim() {
    let mut env = env(Shape::rush(100, 1)).await;
    let now = t0() + Duration::seconds(1);
    let mut first = Vec::new();
    for i in 0..50 {
        let req = env.request_with(&format!("p{i}"), now, ClaimId(Uuid::new_v4()));
        let ClaimOutcome::Claimed(v) = env.hot.claim(&req).await.unwrap() else {
            panic!("claim {i}")
        };
        first.push((req, v));
    }
    env.redis.kill9();
    env.redis.restart();

    let c = env.hot.counters(env.campaign.id).await.unwrap().unwrap();
    assert_eq!((c.claimed, c.live, c.outbox_len), (50, 50, 50));
    for (req, v) in &first {
        let mut retry = req.clone();
        retry.voucher_id = voucher_core::VoucherId(Uuid::now_v7());
        assert_eq!(
            env.hot.claim(&retry).await.unwrap(),
            ClaimOutcome::Replayed(v.clone())
        );
    }
    assert_eq!(
        env.hot
            .person_claims(env.campaign.id, &person("p7"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(env.persister("after-crash").drain().await.unwrap(), 50);
    assert_eq!(env.count("SELECT count(*) FROM vouchers").await, 50);
}

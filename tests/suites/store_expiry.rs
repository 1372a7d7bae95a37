//! Expiry and recycling (POLICY rule 6): unused vouchers past validity are expired in
//! PostgreSQL, their stock goes back to the pool in Redis exactly once, and the next round
//! releases it.

#![allow(clippy::unwrap_used)]

use crate::store_support::{claimed, env, t0, Shape};
use chrono::Duration;
use voucher_core::Distribution;
use voucher_store::expiry::{self, ExpiryReport};
use voucher_store::ClaimOutcome;

fn two_rounds() -> Shape {
    Shape {
        stock: 4,
        limit: 1,
        rounds: vec![(Duration::zero(), 2), (Duration::days(10), 2)],
        distribution: Distribution::Claim,
        validity_days: 7,
    }
}

#[tokio::test]
async fn expired_vouchers_are_recycled_once_and_released_by_the_next_round() {
    let env = env(two_rounds()).await;
    let now = t0() + Duration::minutes(1);
    assert!(claimed(&env.claim("alice", now).await));
    assert!(claimed(&env.claim("bob", now).await));
    assert_eq!(env.claim("carol", now).await, ClaimOutcome::SoldOut);
    env.persister("p").drain().await.unwrap();

    let before_due = expiry::run_once(&env.db.pool, &env.hot, now + Duration::days(6), 100)
        .await
        .unwrap();
    assert_eq!(before_due, ExpiryReport::default(), "nothing is due yet");

    let later = t0() + Duration::days(8);
    let report = expiry::run_once(&env.db.pool, &env.hot, later, 1)
        .await
        .unwrap();
    assert_eq!(
        report,
        ExpiryReport {
            expired: 2,
            recycled: 2
        },
        "batches of 1 loop until done"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM vouchers WHERE status = 'expired' AND recycled_at IS NOT NULL"
        )
        .await,
        2
    );
    assert_eq!(
        env.count("SELECT count(*) FROM events WHERE kind = 'voucher_expired'")
            .await,
        2
    );
    let c = env.hot.counters(env.campaign.id).await.unwrap().unwrap();
    assert_eq!((c.pool, c.live, c.claimed, c.recycled), (4, 0, 2, 2));
    assert_eq!(c.total, c.pool + c.live + c.claimed - c.recycled);

    env.persister("p").drain().await.unwrap();
    assert_eq!(
        env.count("SELECT count(*) FROM events WHERE kind = 'stock_recycled'")
            .await,
        2
    );

    let again = expiry::run_once(&env.db.pool, &env.hot, later, 100)
        .await
        .unwrap();
    assert_eq!(
        again,
        ExpiryReport::default(),
        "a second pass finds nothing new"
    );
    assert_eq!(
        env.hot
            .counters(env.campaign.id)
            .await
            .unwrap()
            .unwrap()
            .recycled,
        2
    );

    // Round 2 releases its own 2 plus the 2 recycled.
    let round_2 = t0() + Duration::days(10) + Duration::minutes(1);
    for who in ["dave", "erin", "frank", "grace"] {
        assert!(
            claimed(&env.claim(who, round_2).await),
            "{who} claims in round 2"
        );
    }
    assert_eq!(env.claim("heidi", round_2).await, ClaimOutcome::SoldOut);
}

#[tokio::test]
async fn a_redeemed_voucher_does_not_expire() {
    let env = env(two_rounds()).await;
    let now = t0() + Duration::minutes(1);
    assert!(claimed(&env.claim("alice", now).await));
    assert!(claimed(&env.claim("bob", now).await));
    env.persister("p").drain().await.unwrap();
    sqlx::query("UPDATE vouchers SET status = 'redeemed' WHERE person_id = 'alice'")
        .execute(&env.db.pool)
        .await
        .unwrap();

    let report = expiry::run_once(&env.db.pool, &env.hot, t0() + Duration::days(8), 100)
        .await
        .unwrap();
    assert_eq!(
        report,
        ExpiryReport {
            expired: 1,
            recycled: 1
        }
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM vouchers WHERE person_id = 'alice' AND status = 'redeemed'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_pass_that_died_between_expiring_and_recycling_is_repaired_exactly_once() {
    let env = env(two_rounds()).await;
    assert!(claimed(&env.claim("alice", t0()).await));
    env.persister("p").drain().await.unwrap();
    // The first step committed, then the process died before Redis heard of it.
    let later = t0() + Duration::days(8);
    sqlx::query("UPDATE vouchers SET status = 'expired', expired_at = $1")
        .bind(later)
        .execute(&env.db.pool)
        .await
        .unwrap();

    let report = expiry::run_once(&env.db.pool, &env.hot, later, 100)
        .await
        .unwrap();
    assert_eq!(
        report,
        ExpiryReport {
            expired: 0,
            recycled: 1
        }
    );
    let again = expiry::run_once(&env.db.pool, &env.hot, later, 100)
        .await
        .unwrap();
    assert_eq!(again, ExpiryReport::default());
    let c = env.hot.counters(env.campaign.id).await.unwrap().unwrap();
    assert_eq!((c.pool, c.recycled), (3, 1));
}

#[tokio::test]
async fn recycling_directly_is_idempotent_per_claim() {
    let env = env(two_rounds()).await;
    let req = env.request("alice", t0());
    assert!(claimed(&env.hot.claim(&req).await.unwrap()));
    assert!(env
        .hot
        .recycle(env.campaign.id, req.claim_id, req.voucher_id, t0())
        .await
        .unwrap());
    assert!(!env
        .hot
        .recycle(env.campaign.id, req.claim_id, req.voucher_id, t0())
        .await
        .unwrap());
    let unknown = voucher_core::ClaimId(uuid::Uuid::new_v4());
    assert!(matches!(
        env.hot
            .recycle(env.campaign.id, unknown, req.voucher_id, t0())
            .await,
        Err(voucher_store::StoreError::NotFound)
    ));
    assert_eq!(
        env.hot
            .counters(env.campaign.id)
            .await
            .unwrap()
            .unwrap()
            .recycled,
        1
    );
}

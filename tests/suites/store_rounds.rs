//! Release rounds: a round releases its quantity when it opens (lazily, at the first claim
//! after its start); a list campaign releases everything at once.

#![allow(clippy::unwrap_used)]

use crate::store_support::t0;
use crate::store_support::{claimed, env, Shape};
use chrono::Duration;
use voucher_core::Distribution;
use voucher_store::ClaimOutcome;

#[tokio::test]
async fn only_the_released_rounds_can_be_claimed() {
    let shape = Shape {
        stock: 5,
        limit: 1,
        rounds: vec![(Duration::zero(), 3), (Duration::hours(1), 2)],
        distribution: Distribution::Claim,
        validity_days: 7,
    };
    let env = env(shape).await;
    let during_round_1 = t0() + Duration::minutes(10);
    for who in ["p1", "p2", "p3"] {
        assert!(
            claimed(&env.claim(who, during_round_1).await),
            "{who} claims in round 1"
        );
    }
    assert_eq!(
        env.claim("p4", during_round_1).await,
        ClaimOutcome::SoldOut,
        "round 1 released 3"
    );
    let c = env.hot.counters(env.campaign.id).await.unwrap().unwrap();
    assert_eq!((c.pool, c.live, c.claimed, c.released_round), (2, 0, 3, 1));

    let during_round_2 = t0() + Duration::hours(1) + Duration::seconds(1);
    for who in ["p4", "p5"] {
        assert!(
            claimed(&env.claim(who, during_round_2).await),
            "{who} claims in round 2"
        );
    }
    assert_eq!(env.claim("p6", during_round_2).await, ClaimOutcome::SoldOut);
    let c = env.hot.counters(env.campaign.id).await.unwrap().unwrap();
    assert_eq!(
        (c.total, c.pool, c.live, c.claimed, c.released_round),
        (5, 0, 0, 5, 2)
    );
}

#[tokio::test]
async fn rounds_that_opened_unseen_are_released_together() {
    let shape = Shape {
        stock: 6,
        limit: 10,
        rounds: vec![
            (Duration::zero(), 1),
            (Duration::hours(1), 2),
            (Duration::hours(2), 3),
        ],
        distribution: Distribution::Claim,
        validity_days: 7,
    };
    let env = env(shape).await;
    let late = t0() + Duration::hours(1) + Duration::minutes(30);
    let mut n = 0;
    while claimed(&env.claim("early-bird", late).await) {
        n += 1;
    }
    assert_eq!(n, 3, "rounds 1 and 2 (1 + 2), not round 3");
    let c = env.hot.counters(env.campaign.id).await.unwrap().unwrap();
    assert_eq!((c.pool, c.released_round), (3, 2));
}

#[tokio::test]
async fn a_list_campaign_releases_its_whole_stock_at_once() {
    let shape = Shape {
        stock: 3,
        limit: 1,
        rounds: vec![],
        distribution: Distribution::List,
        validity_days: 30,
    };
    let env = env(shape).await;
    let before_anything = t0() - Duration::days(30);
    for who in ["e1", "e2", "e3"] {
        assert!(
            claimed(&env.claim(who, before_anything).await),
            "list issuance to {who}"
        );
    }
    assert_eq!(
        env.claim("e4", before_anything).await,
        ClaimOutcome::SoldOut
    );
    assert_eq!(
        env.claim("e1", before_anything).await,
        ClaimOutcome::SoldOut,
        "stock is checked before the limit"
    );
}

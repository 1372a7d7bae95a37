//! The claim script's decisions, against a private Redis: unknown, not open, paused, sold
//! out, limit, replay, claim-id conflict, and counters that always add up.

#![allow(clippy::unwrap_used)]

use crate::store_support::{claimed, env, person, t0, Shape};
use chrono::Duration;
use uuid::Uuid;
use voucher_core::{CampaignId, CampaignStatus, ClaimId};
use voucher_store::{CampaignCounters, ClaimOutcome};

fn adds_up(c: &CampaignCounters) -> bool {
    c.total == c.pool + c.live + c.claimed - c.recycled
}

#[tokio::test]
async fn unknown_campaign_and_claims_before_the_first_round_are_refused() {
    let env = env(Shape::rush(10, 1)).await;
    let mut unknown = env.request("alice", t0());
    unknown.campaign_id = CampaignId(env.campaign.id.0 + 1000);
    assert_eq!(
        env.hot.claim(&unknown).await.unwrap(),
        ClaimOutcome::UnknownCampaign
    );
    assert_eq!(
        env.claim("alice", t0() - Duration::seconds(1)).await,
        ClaimOutcome::NotOpen
    );
    assert!(
        claimed(&env.claim("alice", t0()).await),
        "claims open at the round's start"
    );
    assert_eq!(
        env.hot.outbox_len().await.unwrap(),
        1,
        "only the successful claim wrote an event"
    );
}

#[tokio::test]
async fn a_paused_campaign_refuses_claims_until_resumed() {
    let env = env(Shape::rush(10, 1)).await;
    env.hot
        .set_status(env.campaign.id, CampaignStatus::Paused)
        .await
        .unwrap();
    assert_eq!(env.claim("alice", t0()).await, ClaimOutcome::Paused);
    env.hot
        .set_status(env.campaign.id, CampaignStatus::Active)
        .await
        .unwrap();
    assert!(claimed(&env.claim("alice", t0()).await));
    // Pausing a campaign Redis does not know creates nothing.
    env.hot
        .set_status(CampaignId(9999), CampaignStatus::Paused)
        .await
        .unwrap();
    assert_eq!(env.hot.counters(CampaignId(9999)).await.unwrap(), None);
}

#[tokio::test]
async fn stock_and_the_per_person_limit_are_enforced_and_counters_add_up() {
    let env = env(Shape::rush(3, 2)).await;
    let now = t0() + Duration::minutes(1);
    assert!(claimed(&env.claim("alice", now).await));
    assert!(claimed(&env.claim("alice", now).await));
    assert_eq!(
        env.claim("alice", now).await,
        ClaimOutcome::LimitReached,
        "limit 2 per person"
    );
    assert!(claimed(&env.claim("bob", now).await));
    assert_eq!(env.claim("carol", now).await, ClaimOutcome::SoldOut);

    let c = env.hot.counters(env.campaign.id).await.unwrap().unwrap();
    assert_eq!(
        (
            c.total,
            c.pool,
            c.live,
            c.claimed,
            c.recycled,
            c.released_round
        ),
        (3, 0, 0, 3, 0, 1)
    );
    assert_eq!(c.outbox_len, 3);
    assert!(adds_up(&c));
    assert_eq!(
        env.hot
            .person_claims(env.campaign.id, &person("alice"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        env.hot
            .person_claims(env.campaign.id, &person("carol"))
            .await
            .unwrap(),
        0
    );

    // Re-syncing the campaign never resets its counters.
    env.hot.sync_campaign(&env.campaign).await.unwrap();
    assert_eq!(env.hot.counters(env.campaign.id).await.unwrap().unwrap(), c);
    assert_eq!(env.claim("dave", now).await, ClaimOutcome::SoldOut);
}

#[tokio::test]
async fn a_replayed_claim_returns_the_first_voucher_and_creates_nothing() {
    let env = env(Shape::rush(10, 1)).await;
    let claim_id = ClaimId(Uuid::new_v4());
    let first = env.request_with("alice", t0(), claim_id);
    let ClaimOutcome::Claimed(voucher) = env.hot.claim(&first).await.unwrap() else {
        panic!("first claim")
    };
    assert_eq!(voucher.voucher_id, first.voucher_id);
    let before = env.hot.counters(env.campaign.id).await.unwrap().unwrap();

    let retry = env.request_with("alice", t0() + Duration::seconds(5), claim_id);
    assert_ne!(retry.voucher_id, first.voucher_id);
    assert_eq!(
        env.hot.claim(&retry).await.unwrap(),
        ClaimOutcome::Replayed(voucher.clone())
    );
    assert_eq!(
        env.hot.counters(env.campaign.id).await.unwrap().unwrap(),
        before,
        "no stock, no event"
    );

    // The very same request sent again (a reply lost on the wire) is its own voucher.
    assert_eq!(
        env.hot.claim(&first).await.unwrap(),
        ClaimOutcome::Claimed(voucher)
    );
    assert_eq!(
        env.hot
            .person_claims(env.campaign.id, &person("alice"))
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_claim_id_reused_by_another_person_conflicts() {
    let env = env(Shape::rush(10, 5)).await;
    let claim_id = ClaimId(Uuid::new_v4());
    assert!(claimed(
        &env.hot
            .claim(&env.request_with("alice", t0(), claim_id))
            .await
            .unwrap()
    ));
    let stolen = env.request_with("mallory", t0(), claim_id);
    assert_eq!(
        env.hot.claim(&stolen).await.unwrap(),
        ClaimOutcome::ClaimIdConflict
    );
    assert_eq!(
        env.hot
            .person_claims(env.campaign.id, &person("mallory"))
            .await
            .unwrap(),
        0
    );
    let c = env.hot.counters(env.campaign.id).await.unwrap().unwrap();
    assert_eq!((c.claimed, c.outbox_len), (1, 1));
}

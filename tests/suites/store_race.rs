//! The rush: thousands of concurrent claims on one hot store never oversell and never give
//! one person two vouchers, and what Redis decided is exactly what PostgreSQL records.

#![allow(clippy::unwrap_used)]

use crate::store_support::{env, t0, Shape};
use chrono::Duration;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;
use voucher_core::ClaimId;
use voucher_store::ClaimOutcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_thousand_concurrent_claims_sell_exactly_the_stock_once_per_person() {
    let env = env(Shape::rush(500, 1)).await;
    let now = t0() + Duration::seconds(1);
    // 1000 people × 2 devices × 2 attempts: each device has its claim id, each attempt is
    // its own request (a fresh voucher id), so a second attempt is a retry.
    let mut requests = Vec::new();
    for p in 0..1000 {
        for _device in 0..2 {
            let claim_id = ClaimId(Uuid::new_v4());
            for _attempt in 0..2 {
                requests.push(env.request_with(&format!("person-{p}"), now, claim_id));
            }
        }
    }
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let hot = env.hot.clone();
            tokio::spawn(async move {
                let outcome = hot.claim(&req).await.unwrap();
                (req.person_id.as_str().to_owned(), outcome)
            })
        })
        .collect();
    let mut claimed = 0;
    let mut vouchers_of: HashMap<String, HashSet<Uuid>> = HashMap::new();
    for task in tasks {
        let (who, outcome) = task.await.unwrap();
        match outcome {
            ClaimOutcome::Claimed(v) => {
                claimed += 1;
                vouchers_of.entry(who).or_default().insert(v.voucher_id.0);
            }
            ClaimOutcome::Replayed(v) => {
                vouchers_of.entry(who).or_default().insert(v.voucher_id.0);
            }
            ClaimOutcome::SoldOut | ClaimOutcome::LimitReached => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(claimed, 500, "exactly the stock");
    assert!(
        vouchers_of.values().all(|v| v.len() == 1),
        "nobody holds two vouchers"
    );
    assert_eq!(vouchers_of.len(), 500);
    let c = env.hot.counters(env.campaign.id).await.unwrap().unwrap();
    assert_eq!((c.live, c.claimed, c.outbox_len), (0, 500, 500));

    let persisted = env.persister("race").drain().await.unwrap();
    assert_eq!(persisted, 500);
    assert_eq!(env.count("SELECT count(*) FROM vouchers").await, 500);
    assert_eq!(
        env.count("SELECT count(*) FROM events WHERE kind = 'voucher_claimed'")
            .await,
        500
    );
    assert_eq!(env.hot.outbox_len().await.unwrap(), 0);

    let per_person: Vec<(String, i64)> =
        sqlx::query_as("SELECT person_id, count(*) FROM vouchers GROUP BY person_id")
            .fetch_all(&env.db.pool)
            .await
            .unwrap();
    assert_eq!(per_person.len(), 500);
    for (who, n) in per_person {
        let in_redis = env
            .hot
            .person_claims(env.campaign.id, &crate::store_support::person(&who))
            .await
            .unwrap();
        assert_eq!(i64::from(in_redis), n, "{who}: redis and postgres agree");
        let held = &vouchers_of[&who];
        let row: Uuid = sqlx::query_scalar("SELECT voucher_id FROM vouchers WHERE person_id = $1")
            .bind(&who)
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
        assert!(
            held.contains(&row),
            "{who}: the persisted voucher is the one the claim returned"
        );
    }
}

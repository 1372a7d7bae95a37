//! The bucketed hot layout (`voucher_store::hot`): per-voucher entries live in many small
//! hashes that stay listpacks, the bucket count is fixed per campaign, and a store whose
//! cached bucket count is stale recomputes its keys instead of missing entries.

use crate::store_support::{claimed, env, person, t0, Shape};
use voucher_store::{ClaimOutcome, HotStore};

#[tokio::test]
async fn entries_live_in_small_listpack_buckets_and_nothing_else_per_voucher() {
    let env = env(Shape::rush(500, 2)).await;
    for i in 0..400 {
        assert!(claimed(
            &env.claim(&format!("1405000000000{i:05}"), t0()).await
        ));
    }
    let id = env.campaign.id.0;
    let mut raw = env.raw_redis().await;
    let nb: u32 = redis::cmd("HGET")
        .arg(format!("vp:{{c{id}}}:c"))
        .arg("nb")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(nb, 11, "⌈500 / 48⌉");
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("vp:{{c{id}}}:*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    keys.sort();
    let buckets: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains(":p:") || k.contains(":v:"))
        .collect();
    assert_eq!(buckets.len(), 2 * 11, "{keys:?}");
    assert_eq!(keys.len() - buckets.len(), 4, "c, r, rq, ob: {keys:?}");
    for key in buckets {
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(encoding, "listpack", "{key}");
    }
    // A re-sync keeps the bucket count (and the entries where they are).
    env.hot.sync_campaign(&env.campaign).await.unwrap();
    let snap = env
        .hot
        .campaign_snapshot(env.campaign.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.fields.get("nb").map(String::as_str), Some("11"));
    assert_eq!((snap.claims.len(), snap.persons.len()), (400, 400));
    assert!(snap
        .claims
        .keys()
        .chain(snap.persons.keys())
        .all(|k| !k.contains("bucket")));
    assert!(snap.claims.values().all(|r| r.ends_with("|L")));
}

#[tokio::test]
async fn a_stale_cached_bucket_count_is_noticed_and_entries_are_still_found() {
    let env = env(Shape::rush(10, 1)).await;
    // Another process's store, which caches the campaign's bucket count (1).
    let other = HotStore::connect(&env.redis.url(), "vp").await.unwrap();
    assert!(claimed(
        &other.claim(&env.request("alice", t0())).await.unwrap()
    ));
    // The campaign's bucket count changes under it (e.g. Redis rebuilt with another stock).
    let mut raw = env.raw_redis().await;
    let key = format!("vp:{{c{}}}:c", env.campaign.id.0);
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("nb")
        .arg(7)
        .query_async(&mut raw)
        .await
        .unwrap();

    let bob = env.request("bob", t0());
    assert!(claimed(&other.claim(&bob).await.unwrap()));
    let retry = env.request_with("bob", t0(), bob.claim_id);
    assert!(matches!(
        env.hot.claim(&retry).await.unwrap(),
        ClaimOutcome::Replayed(_)
    ));
    assert!(matches!(
        other.claim(&retry).await.unwrap(),
        ClaimOutcome::Replayed(_)
    ));
    assert_eq!(
        other
            .person_claims(env.campaign.id, &person("bob"))
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        other.claim(&env.request("bob", t0())).await.unwrap(),
        ClaimOutcome::LimitReached
    ));
    assert!(other
        .recycle(env.campaign.id, bob.claim_id, bob.voucher_id, t0())
        .await
        .unwrap());
    assert!(!env
        .hot
        .recycle(env.campaign.id, bob.claim_id, bob.voucher_id, t0())
        .await
        .unwrap());
}

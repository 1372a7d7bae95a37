//! The cross-check and the rebuild against a real Redis and PostgreSQL (invariant I7): a
//! flushed Redis is rebuilt from PostgreSQL and the check is then clean; a corrupted counter
//! is reported exactly, and the binary exits non-zero.

use crate::reconciliation_support::reconciliation_binary;
use crate::store_support::{env, t0, Env, Shape};
use chrono::Duration;
use reconciliation::check::{check, CheckOptions, Difference};
use reconciliation::rebuild::rebuild;

/// A campaign with claims by several people, all persisted to PostgreSQL.
async fn claimed_and_persisted() -> Env {
    let mut shape = Shape::rush(50, 3);
    shape.rounds = vec![(Duration::zero(), 20), (Duration::hours(1), 30)];
    let e = env(shape).await;
    for i in 0..12 {
        let who = format!("person-{}", i % 5);
        e.claim(&who, t0() + Duration::minutes(i)).await;
    }
    e.persister("test").drain().await.unwrap();
    e
}

#[tokio::test]
async fn a_flushed_redis_is_rebuilt_from_postgres_and_the_check_is_then_clean() {
    let e = claimed_and_persisted().await;
    let pool = &e.db.pool;
    let before = check(pool, &e.hot, CheckOptions::default()).await.unwrap();
    assert!(before.is_clean(), "{}", before.render());

    let mut raw = e.raw_redis().await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
    let lost = check(pool, &e.hot, CheckOptions::default()).await.unwrap();
    assert!(!lost.is_clean());

    let rebuilt = rebuild(pool, &e.hot, t0() + Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(
        (rebuilt.campaigns, rebuilt.claims, rebuilt.persons),
        (1, 12, 5)
    );
    let after = check(pool, &e.hot, CheckOptions::default()).await.unwrap();
    assert!(after.is_clean(), "{}", after.render());

    // The rebuilt state works: claims go on where they stopped (limit 3 per person, 20 in
    // round 1 of which 12 are taken).
    let counters = e.hot.counters(e.campaign.id).await.unwrap().unwrap();
    assert_eq!(
        (
            counters.total,
            counters.claimed,
            counters.live,
            counters.pool
        ),
        (50, 12, 8, 30)
    );
    assert!(matches!(
        e.claim("person-0", t0() + Duration::minutes(31)).await,
        voucher_store::ClaimOutcome::LimitReached
    ));
    assert!(crate::store_support::claimed(
        &e.claim("person-new", t0() + Duration::minutes(31)).await
    ));
}

#[tokio::test]
async fn a_corrupted_counter_is_reported_exactly_and_the_check_exits_non_zero() {
    let e = claimed_and_persisted().await;
    let key = format!("vp:{{c{}}}:c", e.campaign.id.0);
    let mut raw = e.raw_redis().await;
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("claimed")
        .arg(13)
        .query_async(&mut raw)
        .await
        .unwrap();

    let r = check(&e.db.pool, &e.hot, CheckOptions::default())
        .await
        .unwrap();
    assert_eq!(
        r.differences,
        vec![Difference {
            campaign_id: Some(e.campaign.id.0),
            item: "claimed".into(),
            redis: "13".into(),
            postgres: "12".into(),
        }]
    );

    let out = std::process::Command::new(reconciliation_binary())
        .arg("check")
        .env("APP__POSTGRES__URL", &e.db.url)
        .env("APP__REDIS__URL", e.redis.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "DIFF campaign {}: claimed: redis=13 postgres=12",
            e.campaign.id.0
        )),
        "{stdout}"
    );
    assert_eq!(stdout.matches("DIFF").count(), 1, "{stdout}");
}

#[tokio::test]
async fn unpersisted_outbox_events_and_a_wrong_person_count_are_differences() {
    let e = claimed_and_persisted().await;
    // A claim not yet persisted: Redis is ahead of PostgreSQL and the outbox lags.
    e.claim("person-late", t0() + Duration::minutes(40)).await;
    let r = check(&e.db.pool, &e.hot, CheckOptions::default())
        .await
        .unwrap();
    let items: Vec<&str> = r.differences.iter().map(|d| d.item.as_str()).collect();
    assert!(items.contains(&"claimed"), "{items:?}");
    assert!(items.contains(&"person person-late vouchers"), "{items:?}");
    assert!(
        items.contains(&"outbox events not yet persisted"),
        "{items:?}"
    );
    assert_eq!(r.outbox_len, 1);
    e.persister("test").drain().await.unwrap();
    let r = check(&e.db.pool, &e.hot, CheckOptions::default())
        .await
        .unwrap();
    assert!(r.is_clean(), "{}", r.render());
}

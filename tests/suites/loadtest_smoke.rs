//! The benchmark harness at toy scale, as CI runs it: the HTTP rush (closed and open loop)
//! against a real service, both baselines, the invariant checks and the reports. Seconds
//! long; no timing is asserted — only that the harness works and the invariants hold.

use crate::support::{release_day, spawn, Options};
use loadtest::driver::Pace;
use loadtest::report::StandardReport;
use loadtest::residents::load_idp_key;
use loadtest::scenario::baseline_pg::{self, PgTarget};
use loadtest::scenario::baseline_redis::{self, RedisTarget};
use loadtest::scenario::rush::{self, RushTarget};
use loadtest::scenario::Workload;
use loadtest::standard::require_invariants;
use std::time::Duration;

fn workload(stock: u32, residents: usize, devices: usize, pace: Pace) -> Workload {
    Workload {
        stock,
        residents,
        devices,
        per_person_limit: 1,
        pace,
        max_secs: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_runs_the_rush_and_both_baselines_and_verifies_the_invariants() {
    // Arrange: a service whose release round opens now.
    let app = spawn(Options::default()).await;
    app.clock.set(release_day());
    let target = RushTarget {
        base_url: app.base.clone(),
        province_key: app.secrets.province_admin.key.clone(),
        city_key: app.secrets.jincheng_admin.key.clone(),
        idp_key: load_idp_key(&app.secrets.dir).unwrap(),
        redis_url: app.redis.url(),
        redis_prefix: system_tests::REDIS_PREFIX.to_owned(),
        pg_url: app.db.url.clone(),
        pid: None,
        now: app.clock_now(),
        drain_timeout: Duration::from_secs(30),
    };
    let redis = RedisTarget {
        url: app.redis.url(),
        prefix: "bench".to_owned(),
        connections: 2,
    };
    let pg = PgTarget {
        admin_url: system_tests::admin_url(),
        database: format!("{}_pg_baseline", app.db.name),
        pool: 8,
    };

    // Act: more demand than stock (sold out) and two phones per person (over the limit).
    let closed = rush::run(
        &target,
        &workload(150, 200, 2, Pace::Closed { concurrency: 32 }),
    )
    .await
    .unwrap();
    let open = rush::run(
        &target,
        &workload(
            100,
            80,
            2,
            Pace::Open {
                rate_per_sec: 400,
                max_in_flight: 32,
            },
        ),
    )
    .await
    .unwrap();
    let raw = baseline_redis::run(
        &redis,
        &workload(150, 200, 2, Pace::Closed { concurrency: 32 }),
        9_001,
    )
    .await
    .unwrap();
    let relational = baseline_pg::run(
        &pg,
        &workload(150, 200, 2, Pace::Closed { concurrency: 32 }),
    )
    .await
    .unwrap();
    baseline_pg::drop_database(&pg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = StandardReport::new(
        "smoke",
        "now".to_owned(),
        closed.clone(),
        raw.clone(),
        relational.clone(),
    );
    let files = report.write(dir.path()).unwrap();

    // Assert: every invariant held, the right number of vouchers went out, reports exist.
    require_invariants(&[&closed, &open, &raw, &relational]).unwrap();
    assert_eq!(
        closed.summary.successes, 150,
        "sold out: min(stock 150, demand 200)"
    );
    assert_eq!(open.summary.successes, 80, "min(stock 100, demand 80)");
    assert_eq!(raw.summary.successes, 150);
    assert_eq!(relational.summary.successes, 150);
    for r in [&closed, &open, &raw, &relational] {
        assert_eq!(
            r.summary.requests,
            400.min(u64::try_from(r.workload.attempts()).unwrap())
        );
        assert_eq!(r.summary.errors, 0, "{:?}", r.summary.outcomes);
        assert!(!r.summary.timeline.is_empty());
    }
    assert!(raw.redis_memory.is_some_and(|m| m.vouchers == 150));
    assert_eq!(files.len(), 3);
    for f in &files {
        assert!(
            std::fs::metadata(f).unwrap().len() > 0,
            "{} is empty",
            f.display()
        );
    }
    assert!(report.markdown().contains("Invariants: all held"));
    app.stop().await;
}

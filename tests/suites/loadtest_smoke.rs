//! The benchmark harness at toy scale, as CI runs it: the HTTP rush (closed and open loop)
//! against a real service, the baselines (the PostgreSQL one swept over two pool sizes, the
//! minimal script through `redis-benchmark` and the minimal redemption through `pgbench`),
//! the invariant checks, the reports and the README section rendered from the JSON. Seconds
//! long; no timing is asserted — only that the harness works and the invariants hold.

use crate::support::{release_day, spawn, Options};
use loadtest::driver::Pace;
use loadtest::readme;
use loadtest::report::StandardReport;
use loadtest::residents::load_idp_key;
use loadtest::scenario::baseline_pg::{self, PgTarget};
use loadtest::scenario::baseline_redis::{self, RedisTarget};
use loadtest::scenario::pg_redeem::{self, PgRedeemPlan, PgRedeemTarget};
use loadtest::scenario::redis_minimal::{self, RedisMinimalPlan, RedisMinimalTarget};
use loadtest::scenario::rush::{self, RushTarget};
use loadtest::scenario::{Scenario, Sweep, Workload};
use loadtest::standard::{require_invariants, require_report_invariants};
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
async fn the_harness_runs_the_rush_and_every_baseline_and_renders_the_readme_from_the_json() {
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
    // The sweep: 4 and 16 claims in flight, the pool capped at 8.
    let sweep = baseline_pg::sweep(
        &pg,
        &workload(150, 200, 2, Pace::Closed { concurrency: 1 }),
        &[4, 16],
        |_| {},
    )
    .await
    .unwrap()
    .unwrap();
    baseline_pg::drop_database(&pg).await.unwrap();
    let minimal = redis_minimal::run(
        &RedisMinimalTarget {
            url: app.redis.url(),
            prefix: "bench".to_owned(),
        },
        &RedisMinimalPlan {
            calls: 2_000,
            clients: vec![8],
            pipelines: vec![1, 4],
            keyspace: 100_000_000,
        },
    )
    .await
    .unwrap();
    let redeem_target = PgRedeemTarget {
        admin_url: system_tests::admin_url(),
        database: format!("{}_pg_redeem", app.db.name),
    };
    let redeem = pg_redeem::run(
        &redeem_target,
        &PgRedeemPlan {
            vouchers: 2_000,
            clients: vec![2],
            threads: 2,
            secs: 1,
        },
    )
    .await
    .unwrap();
    pg_redeem::drop_database(&redeem_target).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut open_run = open.clone();
    open_run.scenario = Scenario::RushOpenLoop;
    let report = StandardReport::new(
        "smoke",
        "now".to_owned(),
        closed.clone(),
        raw.clone(),
        relational.clone(),
    )
    .with_open_loop(Some(open_run))
    .with_tool_baselines(Sweep::of(minimal.clone()), Sweep::of(redeem.clone()))
    .with_pg_sweep(sweep.clone());
    let files = report.write(dir.path()).unwrap();

    // Assert: every invariant held, the right number of vouchers went out, reports exist.
    require_invariants(&[&closed, &open, &raw, &relational]).unwrap();
    require_report_invariants(&report).unwrap();
    assert_eq!(sweep.points.len(), 2);
    assert_eq!(
        sweep
            .points
            .iter()
            .map(|p| (p.connections, p.pool))
            .collect::<Vec<_>>(),
        [(4, 4), (16, 8)]
    );
    assert_eq!(sweep.points.iter().filter(|p| p.best).count(), 1);
    assert_eq!(sweep.best.summary.successes, 150);
    assert_eq!(minimal.len(), 2);
    assert!(minimal
        .iter()
        .all(|p| p.claims > 1_980 && p.claims <= 2_000));
    assert_eq!(redeem.len(), 1);
    assert!(redeem[0].transactions > 0 && redeem[0].failed == 0);
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

    // The JSON's stable keys, and the README section rendered from them.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("smoke.json")).unwrap()).unwrap();
    let ratios = &json["ratios"];
    for key in [
        "claims_vs_pg_best",
        "claims_vs_redis_script",
        "claims_vs_redis_minimal",
    ] {
        let permille = ratios[format!("{key}_permille")].as_u64().unwrap();
        let text = loadtest::fixed::Fixed::from_permille(permille).text();
        assert_eq!(
            ratios[key].as_f64(),
            Some(text.parse::<f64>().unwrap()),
            "{key} is its per-mille integer ÷ 1000"
        );
    }
    assert!(
        ratios["redemptions_vs_pg_redeem"].is_null(),
        "no checkout in this run"
    );
    assert_eq!(json["baseline_pg_sweep"].as_array().map(Vec::len), Some(2));
    assert!(json["baseline_redis_minimal"]["best"]["claims_per_sec"].is_u64());
    assert!(json["baseline_pg_redeem"]["best"]["tps"].is_u64());
    assert_eq!(json["verdicts"]["p99_run"], "rush_open_loop");
    let readme_path = dir.path().join("README.md");
    std::fs::write(
        &readme_path,
        format!("# x\n{}\nold\n{}\nafter\n", readme::BEGIN, readme::END),
    )
    .unwrap();
    let report_path = dir.path().join("smoke.json");
    assert_eq!(
        readme::update(&report_path, &readme_path, false).unwrap(),
        readme::Outcome::Written
    );
    assert_eq!(
        readme::update(&report_path, &readme_path, true).unwrap(),
        readme::Outcome::UpToDate
    );
    assert_eq!(
        readme::latest_report(dir.path()).unwrap(),
        report_path,
        "LATEST names the report"
    );
    let text = std::fs::read_to_string(&readme_path).unwrap();
    assert!(
        text.contains("(best of ") && text.contains("redis-benchmark") && text.contains("pgbench")
    );
    assert!(text.ends_with(&format!("{}\nafter\n", readme::END)));
    app.stop().await;
}

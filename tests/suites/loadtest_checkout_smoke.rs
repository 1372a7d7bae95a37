//! The checkout and mixed scenarios at toy scale, as CI runs them: a real issuance service
//! and a real redemption service (in process, on port 0, sharing the database, Redis, the
//! secrets and the clock), residents claiming over HTTP, signed terminals redeeming —
//! duplicates included — and the PostgreSQL invariants checked after each run. No timing is
//! asserted.

use crate::support::{spawn, Options};
use loadtest::driver::Pace;
use loadtest::residents::load_idp_key;
use loadtest::scenario::checkout::{self, CheckoutTarget, CheckoutWorkload, ALREADY_REDEEMED};
use loadtest::scenario::rush::RushTarget;
use loadtest::scenario::{mixed, Scenario, Workload};
use loadtest::standard::{require_checkout_invariants, require_invariants};
use std::sync::Arc;
use std::time::Duration;

fn checkout_workload(vouchers: usize, entitlements: usize, pace: Pace) -> CheckoutWorkload {
    CheckoutWorkload {
        vouchers,
        entitlements,
        duplicate_every: 5,
        merchants: 4,
        terminals: 8,
        pace,
        max_secs: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_runs_checkout_and_mixed_and_verifies_no_double_redemption() {
    // Arrange: issuance and redemption over the same stores, on a clock near real time (the
    // terminals sign with the real time, within the service's allowed skew).
    let app = spawn(Options::default()).await;
    app.clock.set(chrono::Utc::now());
    let mut s = redemption::Settings::default();
    s.server.port = 0;
    s.server.workers = Some(2);
    s.redis.url = app.redis.url().into();
    s.postgres.url = app.db.url.clone().into();
    s.postgres.max_connections = 8;
    s.secrets_dir = app.secrets.dir.clone();
    s.holds.sweep_interval_secs = 0;
    (
        s.rate_limits.terminal_per_second,
        s.rate_limits.terminal_burst,
    ) = (1_000_000, 1_000_000);
    (s.rate_limits.ip_per_second, s.rate_limits.ip_burst) = (1_000_000, 1_000_000);
    let step = s.dynamic_code.step_secs;
    let redemption = redemption::Application::build(s, Arc::new(app.clock.clone()))
        .await
        .unwrap();
    let redemption_url = format!("http://127.0.0.1:{}", redemption.port());
    let stop_redemption = redemption.shutdown_handle();
    tokio::spawn(redemption.run_until_stopped());
    let target = CheckoutTarget {
        issuance: RushTarget {
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
        },
        redemption_url,
        redemption_pid: None,
        secrets_dir: app.secrets.dir.clone(),
        code_step_secs: step,
        clock: Arc::new(app.clock.clone()),
    };

    // Act: a closed-loop checkout, an open-loop one, and a rush while terminals redeem.
    let closed = checkout::run(
        &target,
        &checkout_workload(60, 6, Pace::Closed { concurrency: 8 }),
    )
    .await
    .unwrap();
    let open = checkout::run(
        &target,
        &checkout_workload(
            30,
            4,
            Pace::Open {
                rate_per_sec: 200,
                max_in_flight: 8,
            },
        ),
    )
    .await
    .unwrap();
    let claims = Workload {
        stock: 50,
        residents: 40,
        devices: 2,
        per_person_limit: 1,
        pace: Pace::Closed { concurrency: 16 },
        max_secs: 0,
    };
    let both = mixed::run(
        &target,
        &claims,
        &checkout_workload(40, 4, Pace::Closed { concurrency: 8 }),
    )
    .await
    .unwrap();

    // Assert: every invariant held; each voucher went once, each duplicate was refused.
    require_checkout_invariants(&[&closed, &open, &both.checkout]).unwrap();
    require_invariants(&[&both.rush]).unwrap();
    for (r, vouchers, entitlements) in [(&closed, 60, 6), (&open, 30, 4), (&both.checkout, 40, 4)] {
        assert!(r.completed);
        assert_eq!(r.summary.errors, 0, "{:?}", r.summary.outcomes);
        assert_eq!(
            r.summary.successes,
            vouchers + 2 * entitlements,
            "{:?}",
            r.summary.outcomes
        );
        assert_eq!(
            r.summary.outcomes.get(ALREADY_REDEEMED).copied(),
            Some(vouchers / 5),
            "{:?}",
            r.summary.outcomes
        );
        assert!(!r.summary.timeline.is_empty());
    }
    assert_eq!(both.rush.scenario, Scenario::MixedRush);
    assert_eq!(both.rush.summary.successes, 40, "min(stock 50, demand 40)");
    stop_redemption.stop().await;
    app.stop().await;
}

//! The fault table (issue 13): each test is one row — a real process killed with SIGKILL
//! and restarted, a reply lost, a dependency paused or stalled, a SIGTERM under load — with
//! the load running. Afterwards every acknowledged claim and redemption is in PostgreSQL
//! exactly once, nothing is there that no client heard, and the invariants I1–I7 hold; the
//! row reports the time to heal and the errors the clients saw, by code (see
//! `fault_support`). `deploy/local/faults.sh` runs the rows several times with bigger loads
//! and prints the table that the README carries.

use crate::fault_support::{
    checkout, lock, phones, rss_kib, rush, scale, settlement_balanced, IssuanceOptions,
    IssuanceRig, Mode, Pace, Proc, RedemptionOptions, RedemptionRig, Row, Tally, Verdict,
};
use std::time::{Duration, Instant};
use system_tests::fresh_db;

/// Waits `d` without holding a worker.
async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}

/// A row's claim load: `persons` residents with two phones each against a stock of
/// `persons * 4 / 5` (sold out, and the second phone refused by the limit).
fn claim_load(persons: usize) -> (u32, Vec<crate::fault_support::Phone>) {
    let stock = u32::try_from(persons * 4 / 5).unwrap_or(u32::MAX);
    (stock, phones("F", persons, 2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_issuance_mid_rush_loses_no_acknowledged_claim() {
    let s = scale();
    let (stock, load) = claim_load(150 * s);
    let rig = IssuanceRig::start(IssuanceOptions {
        stock,
        ..IssuanceOptions::default()
    })
    .await;
    let tally = Tally::default();
    let (log, ()) = tokio::join!(rush(&rig, load, Pace::Closed(32), &tally), async {
        tally.wait_oks(40 * s as u64, Duration::from_secs(60)).await;
        rig.issuance.kill9();
        pause(Duration::from_millis(300)).await;
        tally.recovered();
        rig.issuance.restart().await;
    });
    let verdict = rig.verify(&log).await;
    Row::new(
        "kill -9 of issuance (with its persister) mid-rush, restarted",
        &tally,
        &verdict,
        String::new(),
    )
    .emit();
    verdict.assert_ok();
    assert!(
        tally.heal().is_some(),
        "claims succeed again after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_persister_mid_drain_loses_and_duplicates_nothing() {
    let s = scale();
    let (stock, load) = claim_load(150 * s);
    let rig = IssuanceRig::start(IssuanceOptions {
        stock,
        persister_process: true,
        ..IssuanceOptions::default()
    })
    .await;
    let persister = rig.persister.as_ref().expect("a persister process");
    let tally = Tally::default();
    let mut restarted = Instant::now();
    let (log, ()) = tokio::join!(rush(&rig, load, Pace::Closed(32), &tally), async {
        tally.wait_oks(40 * s as u64, Duration::from_secs(60)).await;
        persister.kill9();
        // Claims go on; the outbox fills while no persister runs.
        pause(Duration::from_millis(800)).await;
        restarted = Instant::now();
        persister.restart().await;
    });
    let caught_up = rig.wait_persisted(Duration::from_secs(60)).await;
    let verdict = rig.verify(&log).await;
    let mut row = Row::new(
        "kill -9 of the persister (`issuance persister`) mid-drain, restarted",
        &tally,
        &verdict,
        "time to heal: from the restart until the outbox is empty".into(),
    );
    row.heal = caught_up.map(|_| restarted.elapsed());
    row.emit();
    verdict.assert_ok();
    assert!(caught_up.is_some(), "the restarted persister caught up");
    assert!(
        tally.errors().is_empty(),
        "claims do not need the persister: {:?}",
        tally.errors()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_redis_mid_rush_loses_no_acknowledged_claim() {
    let s = scale();
    let (stock, load) = claim_load(150 * s);
    let rig = IssuanceRig::start(IssuanceOptions {
        stock,
        ..IssuanceOptions::default()
    })
    .await;
    let tally = Tally::default();
    let (log, ()) = tokio::join!(rush(&rig, load, Pace::Closed(32), &tally), async {
        tally.wait_oks(40 * s as u64, Duration::from_secs(60)).await;
        lock(&rig.redis).kill9();
        pause(Duration::from_millis(500)).await;
        tally.recovered();
        lock(&rig.redis).restart();
    });
    let verdict = rig.verify(&log).await;
    Row::new(
        "kill -9 of Redis mid-rush, restarted on its append-only file",
        &tally,
        &verdict,
        String::new(),
    )
    .emit();
    verdict.assert_ok();
    assert!(
        tally.heal().is_some_and(|h| h < Duration::from_secs(10)),
        "healed: {:?}",
        tally.heal()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_redemption_mid_checkout_loses_no_approval() {
    let s = scale();
    let rig = RedemptionRig::start(RedemptionOptions::default()).await;
    let sales = rig.sales("G", 120 * s, 5);
    let tally = Tally::default();
    let (log, ()) = tokio::join!(checkout(&rig, sales, Pace::Closed(16), &tally), async {
        tally.wait_oks(30 * s as u64, Duration::from_secs(60)).await;
        rig.redemption.kill9();
        pause(Duration::from_millis(300)).await;
        tally.recovered();
        rig.redemption.restart().await;
    });
    let verdict = rig.verify(&log).await;
    Row::new(
        "kill -9 of redemption mid-checkout, restarted",
        &tally,
        &verdict,
        String::new(),
    )
    .emit();
    verdict.assert_ok();
    assert!(
        tally.heal().is_some(),
        "checkouts approved again after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_redis_mid_checkout_loses_no_approval_and_heals_without_a_restart() {
    let s = scale();
    let rig = RedemptionRig::start(RedemptionOptions::default()).await;
    let sales = rig.sales("H", 120 * s, 5);
    let tally = Tally::default();
    let (log, ()) = tokio::join!(checkout(&rig, sales, Pace::Closed(16), &tally), async {
        tally.wait_oks(30 * s as u64, Duration::from_secs(60)).await;
        lock(&rig.redis).kill9();
        pause(Duration::from_millis(500)).await;
        tally.recovered();
        lock(&rig.redis).restart();
    });
    let verdict = rig.verify(&log).await;
    Row::new(
        "kill -9 of Redis mid-checkout, restarted on its append-only file",
        &tally,
        &verdict,
        String::new(),
    )
    .emit();
    verdict.assert_ok();
    assert!(
        tally.heal().is_some_and(|h| h < Duration::from_secs(10)),
        "healed: {:?}",
        tally.heal()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_reconciliation_job_mid_settlement_leaves_nothing_and_the_rerun_settles_once()
{
    let s = scale();
    let db = fresh_db().await;
    let env = vec![("APP__POSTGRES__URL".to_owned(), db.url.clone())];
    let day = "2026-05-01";
    let redemptions = (20_000 * s).to_string();
    let (status, out) = Proc::run(
        "reconciliation",
        &[
            "gen-bench",
            "--redemptions",
            &redemptions,
            "--merchants",
            "200",
            "--day",
            day,
        ],
        &env,
    );
    assert!(status.success(), "gen-bench: {out}");
    let settle = [
        "settle",
        "--from",
        day,
        "--to",
        day,
        "--actor",
        "fault-table",
    ];

    // The job is killed while it holds the settlement lock, i.e. inside its transaction.
    let job = Proc::start("reconciliation", &settle, env.clone(), None);
    let locked = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                   WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = sqlx::query_scalar(locked)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if n > 0 {
            break;
        }
        assert!(
            job.exited().is_none(),
            "the job ended before it was killed: {}",
            job.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "the job never took the settlement lock"
        );
        pause(Duration::from_millis(5)).await;
    }
    // Killed while the transaction is open: the lock is its first statement and is released
    // by the commit; aggregating the day takes longer than this pause.
    pause(Duration::from_millis(20)).await;
    let still: i64 = sqlx::query_scalar(locked)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(still > 0, "killed mid-settlement, not after its commit");
    job.kill9();

    let mut verdict = Verdict::default();
    let mut written = Vec::new();
    for t in [
        "settlement_runs",
        "settlement_batches",
        "settlement_merchant_lines",
        "ledger_postings",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
            .fetch_one(&db.pool)
            .await
            .unwrap();
        written.push(n);
    }
    verdict.check(
        "atomic: the killed job left nothing half-written",
        written.iter().all(|n| *n == 0),
        format!("{written:?}"),
    );

    let rerun = Instant::now();
    let (status, first) = Proc::run("reconciliation", &settle, &env);
    let heal = rerun.elapsed();
    verdict.check("heals: the re-run settles", status.success(), &first);
    let (status, second) = Proc::run("reconciliation", &settle, &env);
    verdict.check(
        "I6 a second re-run writes nothing and prints the same",
        status.success() && first == second,
        format!("{status}; first:\n{first}\nsecond:\n{second}"),
    );
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM settlement_runs")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    verdict.check(
        "I6 one settlement run per program and period",
        runs == 1,
        runs,
    );
    settlement_balanced(&db, &mut verdict).await;
    let (records, settled): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM redemptions WHERE status IN ('approved', 'captured')),
                (SELECT COALESCE(sum(redemptions), 0)::int8 FROM settlement_merchant_lines)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    verdict.check(
        "exactly once: every redemption of the day settled once",
        records == settled,
        format!("{settled} of {records}"),
    );
    verdict.acknowledged = u64::try_from(records).unwrap_or(0);
    verdict.lost = u64::try_from((records - settled).abs()).unwrap_or(0);
    let tally = Tally::default();
    let mut row = Row::new(
        "kill -9 of the reconciliation job mid-settlement, run again",
        &tally,
        &verdict,
        "acknowledged = redemptions of the day; time to heal = the re-run".into(),
    );
    row.heal = Some(heal);
    row.emit();
    verdict.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_claim_reply_retried_with_the_same_claim_id_gets_the_same_voucher() {
    let s = scale();
    let (stock, load) = claim_load(100 * s);
    let rig = IssuanceRig::start(IssuanceOptions {
        stock,
        front_proxy: true,
        ..IssuanceOptions::default()
    })
    .await;
    let front = rig.front.as_ref().expect("a front proxy");
    let tally = Tally::default();
    let (log, ()) = tokio::join!(rush(&rig, load, Pace::Closed(16), &tally), async {
        tally.wait_oks(20 * s as u64, Duration::from_secs(60)).await;
        front.set(Mode::DropReplies);
        pause(Duration::from_millis(400)).await;
        front.set(Mode::Pass);
        tally.recovered();
    });
    let verdict = rig.verify(&log).await;
    let replays = log.acks.iter().filter(|a| a.replayed).count();
    Row::new(
        "lost reply of a claim (decided, the answer dropped by a proxy), retried with the same claim id",
        &tally,
        &verdict,
        format!("{} replies dropped, {replays} retries answered as replays", front.dropped()),
    )
    .emit();
    verdict.assert_ok();
    assert!(front.dropped() > 0, "replies were dropped");
    assert!(
        replays > 0,
        "a retried claim id is answered as a replay of the first decision"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_checkout_reply_retried_with_the_same_key_gets_the_same_redemption() {
    let s = scale();
    let rig = RedemptionRig::start(RedemptionOptions {
        front_proxy: true,
        ..RedemptionOptions::default()
    })
    .await;
    let front = rig.front.as_ref().expect("a front proxy");
    let sales = rig.sales("L", 100 * s, 5);
    let tally = Tally::default();
    let (log, ()) = tokio::join!(checkout(&rig, sales, Pace::Closed(12), &tally), async {
        tally.wait_oks(20 * s as u64, Duration::from_secs(60)).await;
        front.set(Mode::DropReplies);
        pause(Duration::from_millis(400)).await;
        front.set(Mode::Pass);
        tally.recovered();
    });
    let verdict = rig.verify(&log).await;
    Row::new(
        "lost reply of a checkout (committed, the answer dropped by a proxy), retried with the same Idempotency-Key",
        &tally,
        &verdict,
        format!("{} replies dropped", front.dropped()),
    )
    .emit();
    verdict.assert_ok();
    assert!(front.dropped() > 0, "replies were dropped");
}

/// The bound on any answer while a dependency hangs: the request deadline and a margin for
/// a debug build on a shared machine.
fn within_deadline(deadline_ms: u64, slowest: Duration) -> bool {
    slowest <= Duration::from_millis(deadline_ms + 2_500)
}

/// Only "try again" errors while a dependency hangs: 503s and lost connections.
fn only_unavailable(tally: &Tally) -> bool {
    tally.errors().keys().all(|c| {
        [
            "SERVICE_UNAVAILABLE",
            "DEADLINE_EXCEEDED",
            "IN_FLIGHT",
            "HTTP_503",
        ]
        .contains(&c.as_str())
    })
}

/// The checks of a row whose dependency hung or stopped and came back: every answer within
/// the 1-s request deadline (plus the margin), only "try again" errors, the service's memory
/// bounded while it waited (`growth` in KiB, where measured), and healed without a restart
/// within `heal_within` of the fault being undone.
fn check_prompt_and_healed(
    verdict: &mut Verdict,
    tally: &Tally,
    growth: Option<u64>,
    heal_within: Duration,
) {
    verdict.check(
        "deadline: every answer within the request deadline (+ margin)",
        within_deadline(1_000, tally.slowest()),
        format!("{:?}", tally.slowest()),
    );
    verdict.check(
        "clear errors: only 503s (each with Retry-After)",
        only_unavailable(tally),
        format!("{:?}", tally.errors()),
    );
    if let Some(growth) = growth {
        verdict.check(
            "bounded memory: RSS grows < 64 MiB",
            growth < 64 * 1024,
            format!("{growth} KiB"),
        );
    }
    verdict.check(
        "heals: without a restart",
        tally.heal().is_some_and(|h| h < heal_within),
        format!("{:?}", tally.heal()),
    );
}

/// The fault of a "slow dependency" row: once the load has had 20 successes, `hang` the
/// dependency for 3 s while sampling the service's RSS every 100 ms, then `release` it and
/// mark the recovery. Answers the service's RSS before and at its peak, in KiB.
async fn hang_for_3s(
    tally: &Tally,
    pid: u32,
    hang: impl FnOnce(),
    release: impl FnOnce(),
) -> (u64, u64) {
    tally.wait_oks(20, Duration::from_secs(60)).await;
    let before = rss_kib(pid);
    let mut peak = 0;
    hang();
    for _ in 0..30 {
        pause(Duration::from_millis(100)).await;
        peak = peak.max(rss_kib(pid));
    }
    release();
    tally.recovered();
    (before, peak)
}

/// The note of a "slow dependency" row.
fn hang_note(tally: &Tally, (before, peak): (u64, u64)) -> String {
    format!(
        "slowest answer {:.2?}; RSS {before} → {peak} KiB",
        tally.slowest()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_redis_under_claims_gives_prompt_503s_bounded_memory_and_heals_without_a_restart()
{
    let s = scale();
    let rig = IssuanceRig::start(IssuanceOptions {
        stock: 100_000,
        request_timeout_ms: 1_000,
        ..IssuanceOptions::default()
    })
    .await;
    let pid = rig.issuance.pid().expect("running");
    let redis_pid = lock(&rig.redis).pid().expect("redis runs");
    let tally = Tally::default();
    let (log, rss) = tokio::join!(
        rush(&rig, phones("S", 240 * s, 1), Pace::Open(60), &tally),
        hang_for_3s(
            &tally,
            pid,
            || crate::fault_support::signal(redis_pid, "STOP"),
            || crate::fault_support::signal(redis_pid, "CONT")
        )
    );
    let mut verdict = rig.verify(&log).await;
    let growth = rss.1.saturating_sub(rss.0);
    check_prompt_and_healed(&mut verdict, &tally, Some(growth), Duration::from_secs(10));
    Row::new(
        "slow Redis: redis-server paused (SIGSTOP) 3 s under claims, resumed",
        &tally,
        &verdict,
        hang_note(&tally, rss),
    )
    .emit();
    verdict.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_redis_under_checkouts_gives_prompt_503s_bounded_memory_and_heals_without_a_restart(
) {
    let s = scale();
    let rig = RedemptionRig::start(RedemptionOptions {
        request_timeout_ms: 1_000,
        ..RedemptionOptions::default()
    })
    .await;
    let pid = rig.redemption.pid().expect("running");
    let redis_pid = lock(&rig.redis).pid().expect("redis runs");
    let sales = rig.sales("P", 200 * s, 0);
    let tally = Tally::default();
    let (log, rss) = tokio::join!(
        checkout(&rig, sales, Pace::Open(50), &tally),
        hang_for_3s(
            &tally,
            pid,
            || crate::fault_support::signal(redis_pid, "STOP"),
            || crate::fault_support::signal(redis_pid, "CONT")
        )
    );
    let mut verdict = rig.verify(&log).await;
    let growth = rss.1.saturating_sub(rss.0);
    check_prompt_and_healed(&mut verdict, &tally, Some(growth), Duration::from_secs(10));
    Row::new(
        "slow Redis: redis-server paused (SIGSTOP) 3 s under checkouts, resumed",
        &tally,
        &verdict,
        hang_note(&tally, rss),
    )
    .emit();
    verdict.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_postgres_under_checkouts_gives_prompt_503s_bounded_memory_and_heals_without_a_restart(
) {
    let s = scale();
    let rig = RedemptionRig::start(RedemptionOptions {
        request_timeout_ms: 1_000,
        pg_proxy: true,
        ..RedemptionOptions::default()
    })
    .await;
    let proxy = rig.pg_proxy.as_ref().expect("a proxy");
    let pid = rig.redemption.pid().expect("running");
    let sales = rig.sales("Q", 200 * s, 0);
    let tally = Tally::default();
    let (log, rss) = tokio::join!(
        checkout(&rig, sales, Pace::Open(50), &tally),
        hang_for_3s(
            &tally,
            pid,
            || proxy.set(Mode::Stall),
            || proxy.set(Mode::Pass)
        )
    );
    let mut verdict = rig.verify(&log).await;
    let growth = rss.1.saturating_sub(rss.0);
    check_prompt_and_healed(&mut verdict, &tally, Some(growth), Duration::from_secs(10));
    Row::new(
        "slow PostgreSQL: a proxy holds every byte 3 s under checkouts, then passes again",
        &tally,
        &verdict,
        hang_note(&tally, rss),
    )
    .emit();
    verdict.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_lost_entirely_claims_wait_for_the_rebuild_then_resume_with_the_right_stock_and_limits(
) {
    let s = scale();
    // Two rushes of one campaign: the first before the loss; the second after it, by the
    // first rush's persons again (each already at the limit) and as many new ones, with
    // stock for 80 % of all persons, so the campaign sells out during the second rush.
    let persons = 100 * s;
    let rig = IssuanceRig::start(IssuanceOptions {
        stock: u32::try_from(persons * 2 * 4 / 5).unwrap_or(u32::MAX),
        ..IssuanceOptions::default()
    })
    .await;
    let before = Tally::default();
    let first = rush(&rig, phones("L", persons, 1), Pace::Closed(32), &before).await;
    let persisted = rig.wait_persisted(Duration::from_secs(60)).await;

    // The loss: the master and its replica killed, their data directories deleted, both
    // started again empty (the replica following the master again).
    {
        let mut replica = lock(rig.replica.as_ref().expect("a replica"));
        replica.kill9_and_wipe();
        let mut master = lock(&rig.redis);
        master.kill9_and_wipe();
        master.restart();
        replica.restart();
        master.wait_replicas_online(1);
    }
    let mut second_phones = phones("L", persons, 1);
    second_phones.extend(phones("M", persons, 1));
    let tally = Tally::default();
    let mut rebuild = (false, String::new());
    let (second, ()) = tokio::join!(rush(&rig, second_phones, Pace::Open(100), &tally), async {
        // Claims meet the lost campaign for a while, as they would until an operator acts.
        pause(Duration::from_secs(2)).await;
        tally.recovered();
        let env = rig.command_env();
        let (status, out) =
            tokio::task::spawn_blocking(move || Proc::run("reconciliation", &["rebuild"], &env))
                .await
                .expect("the rebuild command");
        rebuild = (status.success(), out);
    });
    let second_acks = second.acks.clone();
    let mut log = first;
    log.acks.extend(second.acks);
    log.unfinished += second.unfinished;
    log.unexpected.extend(second.unexpected);
    let mut verdict = rig
        .verify_paging(&log, &["HOT_STATE_LOST", "lost the hot state"])
        .await;
    verdict.check(
        "the first rush persisted before the loss",
        persisted.is_some(),
        format!("{persisted:?}"),
    );
    verdict.check("rebuild succeeds", rebuild.0, &rebuild.1);
    verdict.check(
        "claims wait: 503 HOT_STATE_LOST until the rebuild, nothing recreated",
        tally.errors().keys().all(|c| {
            ["HOT_STATE_LOST", "SERVICE_UNAVAILABLE", "DEADLINE_EXCEEDED"].contains(&c.as_str())
        }) && tally.errors().contains_key("HOT_STATE_LOST"),
        format!("{:?}", tally.errors()),
    );
    let vouchers: i64 = sqlx::query_scalar("SELECT count(*) FROM vouchers WHERE campaign_id = $1")
        .bind(rig.campaign)
        .fetch_one(&rig.db.pool)
        .await
        .unwrap_or(-1);
    verdict.check(
        "the right stock: sold out exactly",
        vouchers == i64::from(rig.opts.stock),
        format!("{vouchers} vouchers of {}", rig.opts.stock),
    );
    let second_vouchers = second_acks
        .iter()
        .filter(|a| a.person.starts_with('L'))
        .count();
    verdict.check(
        "the right per-person counts: nobody of the first rush got a second voucher",
        second_vouchers == 0,
        second_vouchers,
    );
    Row::new(
        "Redis lost entirely (master and replica killed, data directories deleted) between rushes; `reconciliation rebuild` while claims wait",
        &tally,
        &verdict,
        "time to heal: from the start of `reconciliation rebuild`".into(),
    )
    .emit();
    verdict.assert_ok();
}

/// How long PostgreSQL stays stopped: the 30 s in the long run (`faults.sh`), 6 s in
/// the test command.
fn pg_outage() -> Duration {
    if scale() > 1 {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(6)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_mid_rush_claims_go_on_and_the_persister_catches_up_losing_nothing() {
    let outage = pg_outage();
    // An open loop that outlasts the outage: 60 phones a second for the outage and 6 s more,
    // two phones per person and stock for everyone (the first phones all succeed, the second
    // ones meet the limit), so that claims are acknowledged all through the outage.
    let persons = usize::try_from((outage.as_secs() + 6) * 30).unwrap_or(usize::MAX);
    let rig = IssuanceRig::start(IssuanceOptions {
        stock: u32::try_from(persons).unwrap_or(u32::MAX),
        pg_proxy: true,
        ..IssuanceOptions::default()
    })
    .await;
    let proxy = rig.pg_proxy.as_ref().expect("a proxy");
    let http = reqwest::Client::new();
    let tally = Tally::default();
    let mut during = 0;
    let mut ready_while_down = (0, String::new());
    let mut passed = Instant::now();
    let (log, ()) = tokio::join!(
        rush(&rig, phones("P", persons, 2), Pace::Open(60), &tally),
        async {
            tally.wait_oks(20, Duration::from_secs(60)).await;
            proxy.set(Mode::Down);
            let before = tally.oks();
            pause(outage / 2).await;
            if let Ok(r) = http.get(format!("{}/readyz", rig.base())).send().await {
                ready_while_down = (r.status().as_u16(), r.text().await.unwrap_or_default());
            }
            pause(outage - outage / 2).await;
            during = tally.oks() - before;
            proxy.set(Mode::Pass);
            passed = Instant::now();
        }
    );
    let caught_up = rig.wait_persisted(Duration::from_secs(120)).await;
    let mut verdict = rig.verify(&log).await;
    verdict.check(
        "claims go on: acknowledged while PostgreSQL was down",
        during > 0,
        during,
    );
    verdict.check(
        "ready while down: /readyz 200, PostgreSQL reported degraded",
        ready_while_down.0 == 200 && ready_while_down.1.contains("unavailable"),
        format!("{} {}", ready_while_down.0, ready_while_down.1),
    );
    verdict.check(
        "heals: the persister empties the outbox after PostgreSQL is back",
        caught_up.is_some(),
        format!("{caught_up:?}"),
    );
    let mut row = Row::new(
        &format!(
            "PostgreSQL stopped {} s mid-rush (connections cut and refused), started again",
            outage.as_secs()
        ),
        &tally,
        &verdict,
        format!(
            "{during} claims acknowledged while it was down; time to heal: until the outbox is empty"
        ),
    );
    row.heal = caught_up.map(|_| passed.elapsed());
    row.emit();
    verdict.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_mid_checkout_answers_503_with_retry_after_in_time_and_heals() {
    let outage = pg_outage();
    let rig = RedemptionRig::start(RedemptionOptions {
        request_timeout_ms: 1_000,
        pg_proxy: true,
        ..RedemptionOptions::default()
    })
    .await;
    let proxy = rig.pg_proxy.as_ref().expect("a proxy");
    // 64 tills, each retrying its payment until it has an answer (a till does not start the
    // next sale meanwhile), with enough sales to go on after the outage.
    let sales = rig.sales("D", 1_200, 5);
    let tally = Tally::default();
    let (log, ()) = tokio::join!(checkout(&rig, sales, Pace::Closed(64), &tally), async {
        tally.wait_oks(20, Duration::from_secs(60)).await;
        proxy.set(Mode::Down);
        pause(outage).await;
        proxy.set(Mode::Pass);
        tally.recovered();
    });
    let mut verdict = rig.verify(&log).await;
    check_prompt_and_healed(&mut verdict, &tally, None, Duration::from_secs(15));
    Row::new(
        &format!(
            "PostgreSQL stopped {} s mid-checkout (connections cut and refused), started again",
            outage.as_secs()
        ),
        &tally,
        &verdict,
        format!("slowest answer {:.2?}", tally.slowest()),
    )
    .emit();
    verdict.assert_ok();
}

/// The stop's bound in these rows (`server.shutdown_timeout_secs`) and the margin allowed
/// for a process to exit after it.
const STOP_SECS: u64 = 3;
const STOP_MARGIN: Duration = Duration::from_millis(1_500);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_claims_drains_and_stops_in_time_with_redis_up_and_with_redis_down() {
    let s = scale();
    let mut stops = Vec::new();
    let mut verdict = Verdict::default();
    let tally = Tally::default();
    for redis_down in [false, true] {
        let (stock, load) = claim_load(100 * s);
        let rig = IssuanceRig::start(IssuanceOptions {
            stock,
            shutdown_timeout_secs: STOP_SECS,
            ..IssuanceOptions::default()
        })
        .await;
        let (log, ()) = tokio::join!(rush(&rig, load, Pace::Closed(32), &tally), async {
            tally
                .wait_oks(tally.oks() + 30 * s as u64, Duration::from_secs(60))
                .await;
            if redis_down {
                lock(&rig.redis).kill9();
            }
            let asked = Instant::now();
            rig.issuance.signal("TERM");
            let exit = rig
                .issuance
                .wait_exit(Duration::from_secs(STOP_SECS) + STOP_MARGIN * 4)
                .await;
            let took = asked.elapsed();
            verdict.check(
                &format!(
                    "stops in time: SIGTERM with Redis {}, exit 0",
                    if redis_down { "down" } else { "up" }
                ),
                exit.is_some_and(|e| e.success())
                    && took <= Duration::from_secs(STOP_SECS) + STOP_MARGIN,
                format!("{exit:?} after {took:?}"),
            );
            stops.push(format!(
                "Redis {}: stopped in {took:.1?}",
                if redis_down { "down" } else { "up" }
            ));
            if redis_down {
                lock(&rig.redis).restart();
            }
            tally.recovered();
            rig.issuance.restart().await;
        });
        verdict.merge(rig.verify(&log).await);
    }
    Row::new(
        "graceful shutdown: SIGTERM to issuance under claims, Redis up / Redis killed",
        &tally,
        &verdict,
        stops.join("; "),
    )
    .emit();
    verdict.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_checkouts_drains_and_stops_in_time_with_postgres_up_and_with_postgres_hung()
{
    let s = scale();
    let mut stops = Vec::new();
    let mut verdict = Verdict::default();
    let tally = Tally::default();
    for pg_hung in [false, true] {
        let rig = RedemptionRig::start(RedemptionOptions {
            pg_proxy: true,
            shutdown_timeout_secs: STOP_SECS,
            ..RedemptionOptions::default()
        })
        .await;
        let proxy = rig.pg_proxy.as_ref().expect("a proxy");
        let sales = rig.sales("T", 100 * s, 5);
        let (log, ()) = tokio::join!(checkout(&rig, sales, Pace::Closed(16), &tally), async {
            tally
                .wait_oks(tally.oks() + 25 * s as u64, Duration::from_secs(60))
                .await;
            if pg_hung {
                proxy.set(Mode::Stall);
                pause(Duration::from_millis(200)).await;
            }
            let asked = Instant::now();
            rig.redemption.signal("TERM");
            let exit = rig
                .redemption
                .wait_exit(Duration::from_secs(STOP_SECS) + STOP_MARGIN * 4)
                .await;
            let took = asked.elapsed();
            let state = if pg_hung { "hung" } else { "up" };
            verdict.check(
                &format!("stops in time: SIGTERM with PostgreSQL {state}, exit 0"),
                exit.is_some_and(|e| e.success())
                    && took <= Duration::from_secs(STOP_SECS) + STOP_MARGIN,
                format!("{exit:?} after {took:?}"),
            );
            stops.push(format!("PostgreSQL {state}: stopped in {took:.1?}"));
            proxy.set(Mode::Pass);
            tally.recovered();
            rig.redemption.restart().await;
        });
        verdict.merge(rig.verify(&log).await);
    }
    Row::new(
        "graceful shutdown: SIGTERM to redemption under checkouts, PostgreSQL up / hung (proxy stalled)",
        &tally,
        &verdict,
        stops.join("; "),
    )
    .emit();
    verdict.assert_ok();
}

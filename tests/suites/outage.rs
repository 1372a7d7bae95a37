//! Checkout under a PostgreSQL outage seen through a TCP proxy the test controls (the
//! test cluster is shared, so it is never stopped here): the proxy blackholes the traffic
//! (a half-open network: nothing answers, nothing closes) or closes every connection hard,
//! while terminals keep checking out. Every answer must be an approval that was committed, a
//! decline, or a 503 with `Retry-After` — never a 500 — and come within the request deadline;
//! afterwards the service heals without a restart. Also one round of the budget soak
//! (`deploy/local/budget-soak.sh` runs it in a loop with other seeds and concurrencies).
//! (A replayed reversal answering the first answer byte for byte needs the real clock's
//! nanoseconds: `platform_process` checks it against the binary.)

use crate::redemption_support::{self as rdm, spawn_with};
use futures::StreamExt as _;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;
use voucher_core::{Category, Fen, RefundPolicy};

fn big() -> Fen {
    Fen::from_yuan(100_000_000).unwrap()
}

// ---------------------------------------------------------------------------------------
// The proxy.

/// What the proxy does with the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Forward both ways.
    Pass = 0,
    /// Accept connections and keep them open, but forward nothing either way (bytes wait in
    /// the proxy and flow again when it passes: TCP retransmission after a partition).
    Blackhole = 1,
    /// Close every connection at once, and each new one as soon as it is accepted.
    Refuse = 2,
    /// Forward again, but only on connections opened from now on: the ones open before stay
    /// silent forever, without a word (a NAT or firewall that lost their state).
    PassNewOnly = 3,
}

/// A TCP proxy from a local port to PostgreSQL whose mode the test switches.
struct Proxy {
    port: u16,
    mode: Arc<AtomicU8>,
    /// Connections opened before the last `PassNewOnly` have an older epoch.
    epoch: Arc<AtomicU8>,
    changed: watch::Sender<u8>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let (changed, _) = watch::channel(Mode::Pass as u8);
        let epoch = Arc::new(AtomicU8::new(0));
        let (m, e, tx) = (mode.clone(), epoch.clone(), changed.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if m.load(Ordering::SeqCst) == Mode::Refuse as u8 {
                    drop(client);
                    continue;
                }
                let (m, rx, upstream) = (m.clone(), tx.subscribe(), upstream.clone());
                let gate = Gate {
                    mode: m,
                    epoch: e.clone(),
                    born: e.load(Ordering::SeqCst),
                };
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    // Either direction ending (or a Refuse) ends both: dropping the halves
                    // closes the sockets.
                    tokio::select! {
                        () = pump(cr, sw, gate.clone(), rx.clone()) => {}
                        () = pump(sr, cw, gate, rx) => {}
                    }
                });
            }
        });
        Proxy {
            port,
            mode,
            epoch,
            changed,
        }
    }

    fn set(&self, mode: Mode) {
        if mode == Mode::PassNewOnly {
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        self.mode.store(mode as u8, Ordering::SeqCst);
        self.changed.send_replace(mode as u8);
    }

    fn url(&self, db_url: &str) -> String {
        let mut url = reqwest::Url::parse(db_url).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }
}

/// Whether one connection may forward now.
#[derive(Clone)]
struct Gate {
    mode: Arc<AtomicU8>,
    epoch: Arc<AtomicU8>,
    born: u8,
}

impl Gate {
    /// `Some(true)`: forward; `Some(false)`: hold; `None`: close.
    fn open(&self) -> Option<bool> {
        let m = self.mode.load(Ordering::SeqCst);
        if m == Mode::Refuse as u8 {
            None
        } else if m == Mode::Pass as u8 {
            Some(true)
        } else if m == Mode::PassNewOnly as u8 {
            Some(self.born == self.epoch.load(Ordering::SeqCst))
        } else {
            Some(false)
        }
    }
}

/// Copies `from` to `to` while the gate is open: holds the bytes while it is shut, returns
/// (closing both) on Refuse or at the end of either stream.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    gate: Gate,
    mut changed: watch::Receiver<u8>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Wait while shut; stop on Refuse.
        loop {
            match gate.open() {
                None => return,
                Some(true) => break,
                Some(false) => {}
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            },
            r = changed.changed() => {
                if r.is_err() { return; }
                continue;
            }
        };
        // Bytes read while the mode changed are held until the gate opens again.
        loop {
            match gate.open() {
                None => return,
                Some(true) => break,
                Some(false) => {}
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
        // The end of the stream too is passed on only when the gate is open: a connection
        // lost for good never hears of its peer's close.
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Checkouts through an outage.

/// One checkout's answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
    key: String,
    request: Value,
}

/// A sale with a fresh idempotency key, timed; the client itself never waits longer than
/// `client_limit` (a hang is a failure of the test, not a wait).
async fn sale(
    app: &rdm::TestApp,
    term: &rdm::Term,
    request: Value,
    key: String,
    client_limit: Duration,
) -> Answer {
    let bytes = serde_json::to_vec(&request).unwrap();
    let started = Instant::now();
    let resp = tokio::time::timeout(
        client_limit,
        app.signed(term, "POST", "/v1/redemptions", &bytes)
            .header("idempotency-key", &key)
            .send(),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer within {client_limit:?}: a hang"))
    .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
        took: started.elapsed(),
        key,
        request,
    }
}

/// Runs terminals checking out for `outage` in `mode` (with traffic before and after), and
/// checks every answer; then heals and checks the record.
async fn checkouts_through(mode: Mode, heal: Mode) {
    const DEADLINE_MS: u64 = 2_000;
    let direct = system_tests::fresh_db().await;
    let proxy = Proxy::start(
        reqwest::Url::parse(&direct.url)
            .map(|u| format!("127.0.0.1:{}", u.port().unwrap_or(5432)))
            .unwrap(),
    )
    .await;
    let proxied = proxy.url(&direct.url);
    let db_url = direct.url.clone();
    let app = rdm::spawn_in(direct, |s| {
        s.postgres.url = proxied.into();
        // Fewer connections than tills, so that each is busy when the outage starts and
        // one stuck for good would show.
        s.postgres.max_connections = 2;
        s.postgres.acquire_timeout_ms = 1_000;
        s.server.request_timeout_ms = DEADLINE_MS;
    })
    .await;
    let campaign = app.catering(RefundPolicy::Restore, big()).await;
    let term = app
        .merchant(
            "m-outage",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let first = app.voucher(&campaign, "warm");
    let (status, body) = app.redeem(&term, &app.code(&first), 150_00).await;
    assert_eq!(body["outcome"], "approved", "{status} {body}");

    // Terminals check out continuously; the outage starts and ends under them.
    let margin = Duration::from_millis(1_500);
    let client_limit = Duration::from_millis(DEADLINE_MS) + margin + Duration::from_secs(5);
    let started = Instant::now();
    let stop = Arc::new(AtomicU8::new(0));
    let mut tills = Vec::new();
    for t in 0..4 {
        let (app, term, campaign, stop) = (&app, term.clone(), &campaign, stop.clone());
        tills.push(async move {
            let mut answers = Vec::new();
            let mut i = 0;
            while stop.load(Ordering::SeqCst) == 0 {
                let voucher = app.voucher(campaign, &format!("t{t}-{i}"));
                let request = json!({
                    "code": app.code(&voucher), "order_amount_fen": 150_00,
                    "order_ref": format!("o-{t}-{i}"),
                });
                answers.push(
                    sale(
                        app,
                        &term,
                        request,
                        Uuid::new_v4().to_string(),
                        client_limit,
                    )
                    .await,
                );
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answers
        });
    }
    let driver = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        // The outage starts while decisions are surely in the middle of their transaction:
        // the redemptions table is locked (over a direct connection) so that they wait in
        // their INSERT; the outage begins; the lock goes; their answers are then lost in it.
        let mut lock = app.db.pool.begin().await.unwrap();
        sqlx::query("LOCK TABLE redemptions IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *lock)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.set(mode);
        tokio::time::sleep(Duration::from_millis(100)).await;
        lock.commit().await.unwrap();
        tokio::time::sleep(Duration::from_millis(3_900)).await;
        proxy.set(heal);
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(1, Ordering::SeqCst);
    };
    let (answers, ()) = tokio::join!(futures::future::join_all(tills), driver);
    let answers: Vec<Answer> = answers.into_iter().flatten().collect();
    eprintln!(
        "{mode:?}: {} checkouts in {:?}",
        answers.len(),
        started.elapsed()
    );

    // Every answer: approved (committed), declined, or 503 with Retry-After; within the
    // deadline and a margin.
    let limit = Duration::from_millis(DEADLINE_MS) + margin;
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    for a in &answers {
        let kind = match (a.status, a.body["outcome"].as_str()) {
            (200, Some("approved")) => "approved".to_owned(),
            (200, Some("declined")) => format!("declined {}", a.body["reason"]),
            (503, _) => {
                assert!(
                    a.retry_after.is_some(),
                    "a 503 without Retry-After: {}",
                    a.body
                );
                format!("503 {}", a.body["code"].as_str().unwrap_or("?"))
            }
            _ => panic!("{mode:?}: answered {} {}", a.status, a.body),
        };
        assert!(
            a.took <= limit,
            "{mode:?}: {kind} after {:?}, over the deadline + margin {limit:?}",
            a.took
        );
        *by_kind.entry(kind).or_default() += 1;
    }
    eprintln!("{mode:?}: answers {by_kind:?}");
    assert!(
        by_kind.keys().any(|k| k.starts_with("503")),
        "the outage was seen: {by_kind:?}"
    );
    assert!(by_kind.contains_key("approved"), "{by_kind:?}");
    if mode == Mode::Blackhole {
        assert!(
            by_kind.contains_key("503 DEADLINE_EXCEEDED"),
            "decisions caught by the outage end at the deadline: {by_kind:?}"
        );
    }

    // Healed without a restart: a new sale is approved at once.
    let voucher = app.voucher(&campaign, "after");
    let healed = Instant::now();
    loop {
        let (status, body) = app.redeem(&term, &app.code(&voucher), 150_00).await;
        if body["outcome"] == "approved" {
            break;
        }
        assert_eq!(status, 503, "only 503s while healing: {body}");
        assert!(
            healed.elapsed() < Duration::from_secs(10),
            "not healed 10 s after the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{mode:?}: healed {:?} after the check began",
        healed.elapsed()
    );

    // Every approval was committed; every 503's retry with its key gets one decision (the
    // first one if it had committed), and no order is recorded twice.
    let record = sqlx::PgPool::connect(&db_url).await.unwrap();
    let committed = |id: String| {
        let record = record.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM redemptions WHERE id = $1::uuid AND status = 'approved'",
            )
            .bind(id)
            .fetch_one(&record)
            .await
            .unwrap();
            n
        }
    };
    for a in answers.iter().filter(|a| a.body["outcome"] == "approved") {
        let id = a.body["redemption_id"].as_str().unwrap().to_owned();
        assert_eq!(
            committed(id).await,
            1,
            "approved but not committed: {}",
            a.body
        );
    }
    for a in answers.iter().filter(|a| a.status == 503) {
        // A request whose connection went silent keeps its transaction (and the key's lock)
        // on the server until the server ends it (idle in transaction for twice the
        // deadline): until then the retry is told IN_FLIGHT, and retries.
        let retried = Instant::now();
        let again = loop {
            let again = sale(&app, &term, a.request.clone(), a.key.clone(), client_limit).await;
            if again.status != 409 || again.body["code"] != "IN_FLIGHT" {
                break again;
            }
            assert!(
                retried.elapsed() < Duration::from_millis(4 * DEADLINE_MS) + margin,
                "still IN_FLIGHT {:?} after healing",
                retried.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(again.status, 200, "the retry after healing: {}", again.body);
        if again.body["outcome"] == "approved" {
            let id = again.body["redemption_id"].as_str().unwrap().to_owned();
            assert_eq!(committed(id).await, 1, "{}", again.body);
        }
    }
    let doubled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT order_ref FROM redemptions GROUP BY order_ref
          HAVING count(*) > 1) d",
    )
    .fetch_one(&record)
    .await
    .unwrap();
    assert_eq!(doubled, 0, "an order recorded twice");
    record.close().await;
    app.stop().await;
}

/// PostgreSQL unreachable without a word (a half-open network): decisions that wait on it
/// end at the request deadline with a 503, none hangs, none is a 500, and the service heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkouts_through_a_blackholed_postgres_are_bounded_503s_and_heal() {
    checkouts_through(Mode::Blackhole, Mode::Pass).await;
}

/// As above, but the connections open during the blackhole never come back (no word, no
/// close: the network lost their state): the pool must drop them by itself — a connection
/// given back after a dropped request is checked within a bound — or it would never heal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkouts_heal_when_the_blackholed_connections_never_come_back() {
    checkouts_through(Mode::Blackhole, Mode::PassNewOnly).await;
}

/// PostgreSQL's connections closed hard and refused for a while: prompt 503s with
/// `Retry-After`, never a 500, and the service heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkouts_through_hard_closed_postgres_connections_are_503s_and_heal() {
    checkouts_through(Mode::Refuse, Mode::Pass).await;
}

// ---------------------------------------------------------------------------------------
// One round of the budget soak.

/// splitmix64: the round's choices from its seed, so a failing round can be run again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// What one soak operation does.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// A threshold sale (满100减20).
    Sale,
    /// A percentage sale (10 %), cut to what is left of the budget.
    Percent,
    /// A hold on a threshold voucher, then captured or voided.
    Hold { capture: bool },
    /// A sale, then reversals: one full, or two partial ones racing.
    SaleThenReverse { partial: bool },
}

/// `VP_SOAK_SEED` (default: from the clock) and `VP_SOAK_CONCURRENCY` (default 8) choose a
/// round: the bucket count, two small budgets, and a mix of sales, percentage sales, holds
/// captured or voided and reversals racing on them. After it, for each campaign:
/// Σ buckets + Σ (discount − reversed) of its approved, held and captured redemptions =
/// its budget, and no discount beyond it. `deploy/local/budget-soak.sh` runs it in a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_soak_round_keeps_buckets_plus_discounts_equal_to_the_budget() {
    let seed = env_u64("VP_SOAK_SEED")
        .unwrap_or_else(|| u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(1));
    let concurrency = usize::try_from(env_u64("VP_SOAK_CONCURRENCY").unwrap_or(8).max(1)).unwrap();
    let ops_n = env_u64("VP_SOAK_OPS").unwrap_or(40);
    let mut rng = Rng(seed);
    let buckets = i32::try_from(1 + rng.below(8)).unwrap();
    eprintln!("budget soak: seed {seed} concurrency {concurrency} ops {ops_n} buckets {buckets}");
    let app = spawn_with(|s| s.budget.buckets = buckets).await;
    let threshold_budget = i64::try_from(ops_n / 3 * 20_00 + rng.below(20_00)).unwrap();
    let percent_budget = i64::try_from(ops_n / 4 * 15_00 + rng.below(15_00)).unwrap();
    let catering = app
        .catering(
            RefundPolicy::Restore,
            Fen::try_from(threshold_budget).unwrap(),
        )
        .await;
    let furnishing = app
        .furnishing(
            if rng.below(2) == 0 {
                RefundPolicy::Restore
            } else {
                RefundPolicy::Forfeit
            },
            Fen::try_from(percent_budget).unwrap(),
        )
        .await;
    let mut tills = Vec::new();
    for m in 0..3 {
        tills.push(
            app.merchant(
                &format!("soak{m}"),
                Category::Catering,
                None,
                &[catering.spec.program_id],
            )
            .await,
        );
    }
    let shop = app
        .merchant(
            "soakf",
            Category::HomeFurnishing,
            None,
            &[furnishing.spec.program_id],
        )
        .await;
    let ops: Vec<(usize, Op, i64)> = (0..ops_n)
        .map(|i| {
            let op = match rng.below(6) {
                0 | 1 => Op::Sale,
                2 => Op::Percent,
                3 => Op::Hold {
                    capture: rng.below(2) == 0,
                },
                _ => Op::SaleThenReverse {
                    partial: rng.below(2) == 0,
                },
            };
            let amount = i64::try_from(100_00 + rng.below(400_00)).unwrap();
            (usize::try_from(i).unwrap(), op, amount)
        })
        .collect();
    let app = &app;
    let (catering, furnishing, tills, shop) = (&catering, &furnishing, &tills, &shop);
    let failures: Vec<String> = futures::stream::iter(ops)
        .map(|(i, op, amount)| async move {
            let till = &tills[i % tills.len()];
            let mut problems = Vec::new();
            let (path, campaign, kind) = match op {
                // A partial reversal needs a percentage sale (a single-use voucher is
                // reversed only in full).
                Op::Percent | Op::SaleThenReverse { partial: true } => {
                    ("/v1/redemptions", furnishing, "percent")
                }
                Op::Hold { .. } => ("/v1/authorizations", catering, "hold"),
                _ => ("/v1/redemptions", catering, "sale"),
            };
            let term = if std::ptr::eq(campaign, furnishing) {
                shop
            } else {
                till
            };
            let voucher = app.voucher(campaign, &format!("s{i}"));
            let (status, body) = app.checkout(term, path, &app.code(&voucher), amount).await;
            if status != 200 {
                problems.push(format!("{kind} {i}: {status} {body}"));
                return problems;
            }
            if body["outcome"] != "approved" {
                return problems;
            }
            let id = body["redemption_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match op {
                Op::Hold { capture } => {
                    let verb = if capture { "capture" } else { "void" };
                    let (s, b) = app
                        .call(
                            term,
                            "POST",
                            &format!("/v1/authorizations/{id}/{verb}"),
                            None,
                            None,
                        )
                        .await;
                    if s != 200 {
                        problems.push(format!("{verb} {i}: {s} {b}"));
                    }
                }
                Op::SaleThenReverse { partial } => {
                    let path = format!("/v1/redemptions/{id}/reversals");
                    let refs: Vec<Value> = if partial {
                        vec![
                            json!({"reversal_ref": "a", "refund_amount_fen": amount / 3}),
                            json!({"reversal_ref": "b", "refund_amount_fen": amount / 3}),
                        ]
                    } else {
                        vec![
                            json!({"reversal_ref": "all"}),
                            json!({"reversal_ref": "all"}),
                        ]
                    };
                    let answers = futures::future::join_all(
                        refs.into_iter().map(|b| app.reverse(term, &path, b)),
                    )
                    .await;
                    for (s, b) in answers {
                        // A concurrent reversal may be told to retry (IN_FLIGHT).
                        if s != 200 && b["code"] != "IN_FLIGHT" {
                            problems.push(format!("reversal {i}: {s} {b}"));
                        }
                    }
                }
                Op::Sale | Op::Percent => {}
            }
            problems
        })
        .buffer_unordered(concurrency)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    assert!(failures.is_empty(), "seed {seed}: {failures:#?}");

    let rows: Vec<(i64, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT c.id, c.budget_fen,
                coalesce((SELECT sum(discount_fen - reversed_fen) FROM redemptions r
                          WHERE r.campaign_id = c.id AND r.status IN ('approved', 'held', 'captured')), 0)::int8,
                (SELECT sum(remaining_fen) FROM campaign_budget_buckets b WHERE b.campaign_id = c.id)::int8
         FROM campaigns c ORDER BY c.id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    for (id, budget, granted, remaining) in rows {
        let remaining = remaining.unwrap_or(budget);
        assert!(
            granted <= budget && remaining >= 0,
            "seed {seed}: campaign {id} granted {granted} of {budget}, {remaining} left"
        );
        assert_eq!(
            remaining + granted,
            budget,
            "seed {seed} concurrency {concurrency}: campaign {id}: buckets {remaining} + discounts {granted} ≠ budget"
        );
    }
    let reversed_ok: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM redemptions r
          WHERE r.reversed_fen <> coalesce((SELECT sum(discount_reversed_fen) FROM reversals v
                                             WHERE v.redemption_id = r.id), 0)",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(reversed_ok, 0, "seed {seed}: reversed_fen ≠ Σ reversals");
    app.stop().await;
}

/// A campaign whose budget was split under another `budget.buckets` setting (2 buckets;
/// the service now runs with 8): every reversal gives the discount back to a bucket that
/// exists, so Σ buckets + Σ discounts stays the budget — before, a reversal whose redemption
/// hashed to bucket 2..7 updated no row and the money vanished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversals_give_the_budget_back_even_when_the_bucket_count_changed() {
    let app = spawn_with(|s| s.budget.buckets = 8).await;
    let budget = 1_000_00;
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::try_from(budget).unwrap())
        .await;
    voucher_store::pg::budget::ensure_budget(&app.db.pool, campaign.id, 2)
        .await
        .unwrap();
    let term = app
        .merchant(
            "m-buckets",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    for i in 0..8 {
        let voucher = app.voucher(&campaign, &format!("b{i}"));
        let (_, sale) = app.redeem(&term, &app.code(&voucher), 150_00).await;
        assert_eq!(sale["outcome"], "approved", "{sale}");
        let id = sale["redemption_id"].as_str().unwrap();
        let (status, back) = app
            .reverse(
                &term,
                &format!("/v1/redemptions/{id}/reversals"),
                json!({"reversal_ref": "all"}),
            )
            .await;
        assert_eq!(
            (status, back["discount_reversed_fen"].as_i64()),
            (200, Some(20_00)),
            "{back}"
        );
    }
    let buckets: i64 =
        sqlx::query_scalar("SELECT count(*) FROM campaign_budget_buckets WHERE campaign_id = $1")
            .bind(campaign.id.0)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(buckets, 2);
    assert_eq!(app.budget_left(campaign.id).await, budget, "all given back");
    app.stop().await;
}

/// A decision stuck behind a lock (here: the redemptions table locked by someone else) ends
/// at the deadline with a 503 and `Retry-After` — never a 500 — and the server stops
/// waiting too (the pool's `statement_timeout`): no backend of the service still waits on the
/// lock after the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_stuck_on_a_lock_is_a_503_at_the_deadline_and_the_server_stops_too() {
    const DEADLINE_MS: u64 = 1_500;
    let app = spawn_with(|s| s.server.request_timeout_ms = DEADLINE_MS).await;
    let campaign = app.catering(RefundPolicy::Restore, big()).await;
    let term = app
        .merchant(
            "m-stuck",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let mut lock = app.db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE redemptions IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let voucher = app.voucher(&campaign, "stuck");
    let request =
        json!({"code": app.code(&voucher), "order_amount_fen": 150_00, "order_ref": "o-stuck"});
    let a = sale(
        &app,
        &term,
        request.clone(),
        "k-stuck".into(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.retry_after.is_some(), "{}", a.body);
    assert!(
        a.took < Duration::from_millis(DEADLINE_MS + 1_500),
        "{:?}",
        a.took
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut *lock)
    .await
    .unwrap();
    assert_eq!(
        waiting, 0,
        "a backend still waits on the lock after the answer"
    );
    lock.commit().await.unwrap();
    let again = sale(
        &app,
        &term,
        request,
        "k-stuck".into(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(again.body["outcome"], "approved", "{}", again.body);
    app.stop().await;
}

//! Redis durability (issue 13, "Redis lost its data"): with a replica that has its own
//! append-only file and `redis.ack_replicas = 1`, a claim is acknowledged only once the
//! replica holds it. Real processes: the issuance service and `reconciliation check` run
//! as binaries, the master is `kill -9`ed and its data directory deleted, the replica is
//! promoted (the documented recovery), and every acknowledged claim must reach PostgreSQL
//! exactly once, with nobody given a second voucher.

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use issuance::{generate_dev_secrets, DevSecrets};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use system_tests::{fresh_db, hot_store, ServiceProcess, TestDb, TestRedis};
use uuid::Uuid;
use voucher_core::{PersonId, PlaceCode};

/// The issuance and reconciliation binaries, built once per run (a no-op when up to date),
/// so the processes under test are the current code and not a stale build.
fn binaries() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "--quiet", "-p", "issuance", "--bin", "issuance"])
            .args(["-p", "reconciliation", "--bin", "reconciliation"])
            .current_dir(&root)
            .status()
            .expect("cargo build")
            .success();
        assert!(ok, "building the service binaries failed");
    });
}

struct Env {
    db: TestDb,
    secrets: DevSecrets,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Env {
    async fn new() -> Env {
        binaries();
        let dir = tempfile::tempdir().unwrap();
        let secrets = generate_dev_secrets(dir.path()).unwrap();
        Env {
            db: fresh_db().await,
            secrets,
            _dir: dir,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    /// `issuance serve` against the Redis at `redis`, waiting for 1 replica.
    fn issuance(
        &self,
        redis: &TestRedis,
        ack_replicas: u32,
        persister: bool,
        ack_timeout_ms: u64,
    ) -> ServiceProcess {
        ServiceProcess::serve(
            "issuance",
            &[
                ("APP__REDIS__URL", redis.url()),
                ("APP__REDIS__ACK_REPLICAS", ack_replicas.to_string()),
                ("APP__REDIS__ACK_TIMEOUT_MS", ack_timeout_ms.to_string()),
                ("APP__POSTGRES__URL", self.db.url.clone()),
                ("APP__SECRETS_DIR", self.secrets.dir.display().to_string()),
                ("APP__PERSISTER__ENABLED", persister.to_string()),
                ("APP__PERSISTER__BLOCK_MS", "50".into()),
                ("APP__EXPIRY__ENABLED", "false".into()),
                ("APP__CAMPAIGNS_REFRESH_MS", "300".into()),
                ("APP__RATE_LIMITS__IP_PER_SECOND", "1000000".into()),
                ("APP__RATE_LIMITS__IP_BURST", "1000000".into()),
                ("APP__RATE_LIMITS__PERSON_PER_SECOND", "1000".into()),
                ("APP__RATE_LIMITS__PERSON_BURST", "1000".into()),
                ("APP__SERVER__REQUEST_TIMEOUT_MS", "15000".into()),
                ("APP__LOG__LEVEL", "warn".into()),
            ],
        )
    }

    fn token(&self, person: &str) -> String {
        self.secrets.mint(
            &PersonId::parse(person).unwrap(),
            PlaceCode::try_from(140500).unwrap(),
            2,
            Utc::now(),
            chrono::Duration::hours(1),
        )
    }

    async fn post(&self, base: &str, path: &str, key: &str, body: &Value) -> Value {
        let r = self
            .http
            .post(format!("{base}{path}"))
            .header("x-api-key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{path}");
        r.json().await.unwrap()
    }

    /// A rush campaign (limit 1 per person) whose one round opens at `opens`.
    async fn campaign(&self, base: &str, stock: u32, opens: DateTime<Utc>) -> i64 {
        let program = self
            .post(
                base,
                "/v1/admin/programs",
                &self.secrets.province_admin.key,
                &json!({"name": "测试项目", "funder_place": 140000, "province_ratio_bp": 5000,
                        "pool": 20_000_000_000_i64, "refund_policy": "restore"}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let spec = json!({
            "program_id": program, "name": "晋城餐饮券 满100减20", "owner_place": 140500,
            "category": "catering", "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
            "stock": stock, "per_person_limit": 1,
            "rounds": [{"round_no": 1, "starts_at": opens, "quantity": stock}],
            "validity": {"days_after_claim": 7}, "budget": 100_000_000,
            "eligibility": {"places": [140500], "min_real_name_level": 2}, "distribution": "claim"
        });
        self.post(
            base,
            "/v1/admin/campaigns",
            &self.secrets.jincheng_admin.key,
            &spec,
        )
        .await["id"]
            .as_i64()
            .unwrap()
    }

    /// A claim: status, `Retry-After`, body. `None` when no answer came (the service died).
    async fn claim(
        &self,
        base: &str,
        campaign: i64,
        person: &str,
        claim_id: Uuid,
    ) -> Option<(u16, Option<String>, Value)> {
        let r = self
            .http
            .post(format!("{base}/v1/campaigns/{campaign}/claims"))
            .bearer_auth(self.token(person))
            .json(&json!({ "claim_id": claim_id }))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = r.json().await.ok()?;
        Some((status, retry_after, body))
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

async fn wait_persisted(redis: &TestRedis) {
    let hot = hot_store(redis).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while hot.outbox_len().await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "the outbox did not drain in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_open(opens: DateTime<Utc>) {
    let wait = (opens - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
}

/// What a loss of the master during a rush left behind.
struct Aftermath {
    env: Env,
    /// The promoted server (the old replica) and the old master, now its replica.
    promoted: TestRedis,
    _old_master: TestRedis,
    /// The issuance service, restarted against `promoted`, persister on.
    service: ServiceProcess,
    campaign: i64,
    /// Person → (claim id, voucher id) of every claim answered 201.
    acked: HashMap<String, (Uuid, String)>,
    /// Claims answered 503 while the replica was cut off.
    refused: usize,
}

/// A rush of `persons` claims against issuance (`redis.ack_replicas = ack`, persister
/// off, so every acknowledged claim lives only in Redis). Partway, the replica is cut off
/// (SIGSTOP) for 1.5 s; then issuance is killed -9, the master is killed -9 and its data
/// directory deleted, and the replica is killed -9 too (whatever it had received but not
/// written to its own append-only file is gone). Recovery, as the README says: the replica
/// comes back from its append-only file AS A MASTER (never as a replica of the empty
/// master, which would wipe it), the old master comes back empty as its replica, and
/// issuance points at the promoted one; the persister drains the outbox it finds there.
async fn lose_the_master_during_a_rush(ack: u32, persons: usize) -> Aftermath {
    let mut master = TestRedis::start();
    let mut replica = TestRedis::start_replica_of(&master);
    let env = Env::new().await;
    let service = env.issuance(&master, ack, false, 500);
    let base = service.base.clone();
    let opens = Utc::now() + chrono::Duration::seconds(2);
    let stock = u32::try_from(persons).unwrap();
    let campaign = env.campaign(&base, stock, opens).await;
    wait_open(opens).await;

    let names: Vec<String> = (0..persons).map(|i| format!("D{i:05}")).collect();
    let created = AtomicUsize::new(0);
    let rush = {
        let base = base.clone();
        let env = &env;
        let created = &created;
        async move {
            stream::iter(names)
                .map(|p| {
                    let base = base.clone();
                    async move {
                        let claim_id = Uuid::new_v4();
                        let answer = env.claim(&base, campaign, &p, claim_id).await;
                        if matches!(answer, Some((201, _, _))) {
                            created.fetch_add(1, Ordering::Relaxed);
                        }
                        (p, claim_id, answer)
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await
        }
    };
    let faults = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while created.load(Ordering::Relaxed) < persons / 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        replica.pause();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        drop(service); // kill -9 of issuance
        master.kill9_and_wipe();
        replica.kill9();
    };
    let (answers, ()) = tokio::join!(rush, faults);
    let acked: HashMap<String, (Uuid, String)> = answers
        .iter()
        .filter_map(|(p, claim_id, a)| match a {
            Some((201, _, body)) => Some((
                p.clone(),
                (*claim_id, body["voucher_id"].as_str().unwrap().to_owned()),
            )),
            _ => None,
        })
        .collect();
    let refused = answers
        .iter()
        .filter(|(_, _, a)| matches!(a, Some((503, Some(_), _))))
        .count();
    assert_eq!(env.count("SELECT count(*) FROM vouchers").await, 0);

    // Recovery.
    replica.set_replica_of(None);
    replica.restart();
    master.set_replica_of(Some(replica.port()));
    master.restart();
    replica.wait_replicas_online(1);
    let service = env.issuance(&replica, ack, true, 500);
    wait_persisted(&replica).await;
    Aftermath {
        env,
        promoted: replica,
        _old_master: master,
        service,
        campaign,
        acked,
        refused,
    }
}

impl Aftermath {
    /// The acknowledged vouchers that are not in PostgreSQL.
    async fn lost(&self) -> Vec<String> {
        let ids: Vec<Uuid> = self
            .acked
            .values()
            .map(|(_, v)| v.parse().unwrap())
            .collect();
        let found: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT voucher_id, person_id FROM vouchers WHERE voucher_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&self.env.db.pool)
                .await
                .unwrap();
        for (id, person) in &found {
            assert_eq!(self.acked[person].1, id.to_string(), "{person}");
        }
        let found: std::collections::HashSet<String> =
            found.into_iter().map(|(id, _)| id.to_string()).collect();
        self.acked
            .values()
            .map(|(_, v)| v.clone())
            .filter(|v| !found.contains(v))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_claims_survive_the_loss_of_the_masters_data_directory() {
    let after = lose_the_master_during_a_rush(1, 240).await;
    let env = &after.env;
    assert!(
        after.acked.len() >= 60,
        "a rush big enough to mean something ({} acknowledged)",
        after.acked.len()
    );
    assert!(
        after.refused > 0,
        "claims made while the replica was cut off are refused (503, Retry-After)"
    );

    // Every acknowledged voucher is in PostgreSQL exactly once, for its person.
    assert_eq!(
        after.lost().await,
        Vec::<String>::new(),
        "acknowledged, then lost"
    );
    assert_eq!(
        env.count("SELECT count(*) - count(DISTINCT person_id) FROM vouchers")
            .await,
        0,
        "nobody holds two vouchers"
    );

    // `reconciliation check` against the promoted server finds no difference.
    let out = Command::new(system_tests::workspace_binary("reconciliation"))
        .arg("check")
        .env("APP__POSTGRES__URL", &env.db.url)
        .env("APP__REDIS__URL", after.promoted.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Each acknowledged person claiming again: a new claim id is refused at the limit, the
    // first claim id replays the same voucher. Never a second voucher.
    let base = &after.service.base;
    for (person, (claim_id, voucher)) in after.acked.iter().take(30) {
        let (status, _, body) = env
            .claim(base, after.campaign, person, Uuid::new_v4())
            .await
            .unwrap();
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("PER_PERSON_LIMIT")),
            "{person}: {body}"
        );
        let (status, _, body) = env
            .claim(base, after.campaign, person, *claim_id)
            .await
            .unwrap();
        assert_eq!(status, 200, "{person}: {body}");
        assert_eq!(body["voucher_id"].as_str(), Some(voucher.as_str()));
        assert_eq!(body["replayed"], true);
    }
    wait_persisted(&after.promoted).await;
    assert_eq!(
        env.count("SELECT count(*) - count(DISTINCT person_id) FROM vouchers")
            .await,
        0
    );
}

/// The control: the same fault without the barrier (`ack_replicas = 0`, the behaviour
/// before issue 13) loses acknowledged claims, so the test above can tell the difference.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_barrier_the_same_fault_loses_acknowledged_claims() {
    let after = lose_the_master_during_a_rush(0, 200).await;
    assert_eq!(after.refused, 0);
    let lost = after.lost().await;
    assert!(
        !lost.is_empty(),
        "{} acknowledged, none lost: the fault did not bite",
        after.acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_its_replica_a_claim_is_refused_503_in_time_and_its_retry_replays_it() {
    let master = TestRedis::start();
    let mut replica = TestRedis::start_replica_of(&master);
    let env = Env::new().await;
    let service = env.issuance(&master, 1, true, 300);
    let base = service.base.clone();
    let opens = Utc::now() + chrono::Duration::seconds(2);
    let campaign = env.campaign(&base, 100, opens).await;
    wait_open(opens).await;
    let (status, _, _) = env
        .claim(&base, campaign, "E00001", Uuid::new_v4())
        .await
        .unwrap();
    assert_eq!(status, 201, "with the replica up");

    // The replica goes away: the claim is made on the master, but not acknowledged.
    replica.stop();
    let claim_id = Uuid::new_v4();
    let started = Instant::now();
    let (status, retry_after, body) = env
        .claim(&base, campaign, "E00002", claim_id)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    assert!(retry_after.is_some(), "Retry-After");
    assert!(took < Duration::from_millis(1500), "answered in {took:?}");

    // The replica is back (it resyncs from the master): the retry with the same claim id
    // returns the one voucher the first attempt made.
    replica.restart();
    master.wait_replicas_online(1);
    let (status, _, body) = env
        .claim(&base, campaign, "E00002", claim_id)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replayed"], true);
    let voucher: Uuid = body["voucher_id"].as_str().unwrap().parse().unwrap();
    wait_persisted(&master).await;
    let held: Vec<Uuid> =
        sqlx::query_scalar("SELECT voucher_id FROM vouchers WHERE person_id = 'E00002'")
            .fetch_all(&env.db.pool)
            .await
            .unwrap();
    assert_eq!(held, vec![voucher]);
}

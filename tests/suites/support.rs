//! Starting the issuance service for a test: a private Redis, a fresh database, freshly
//! generated secrets, a manual clock, the real `Application` on port 0, and a real HTTP
//! client. Helpers for the calls most tests make.

use chrono::{DateTime, Duration, TimeZone, Utc};
use issuance::settings::Settings;
use issuance::startup::{Application, ShutdownHandle};
use issuance::state::AppState;
use issuance::{generate_dev_secrets, DevSecrets};
use serde_json::{json, Value};
use std::sync::Arc;
use system_tests::{fresh_db, TestDb, TestRedis};
use voucher_core::identity::{self, Identity};
use voucher_core::{ManualClock, PersonId, PlaceCode};

/// 2026-05-01 10:00 Beijing time (02:00 UTC): release day.
pub fn release_day() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0)
        .single()
        .expect("valid date")
}

/// What the test may tune.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run the persister inside the service.
    pub persister: bool,
    /// Per-person rate limit (per second, burst).
    pub person_rate: (u32, u32),
    /// `server.request_timeout_ms`, when not the default.
    pub request_timeout_ms: Option<u64>,
    /// Per-IP rate limit (per second, burst); generous unless a test measures it.
    pub ip_rate: (u32, u32),
    /// `rate_limits.trust_forwarded_for`: believe `X-Forwarded-For`, as behind a proxy.
    pub trust_forwarded_for: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            persister: true,
            person_rate: (1000, 1000),
            request_timeout_ms: None,
            ip_rate: (1_000_000, 1_000_000),
            trust_forwarded_for: false,
        }
    }
}

/// A running issuance service and everything behind it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client with a large pool.
    pub http: reqwest::Client,
    /// The service's clock.
    pub clock: ManualClock,
    /// Keys and admin keys.
    pub secrets: DevSecrets,
    /// The service's state (stores).
    pub state: AppState,
    /// The private Redis.
    pub redis: TestRedis,
    /// The fresh database.
    pub db: TestDb,
    handle: ShutdownHandle,
    _dir: tempfile::TempDir,
}

/// Starts the service.
pub async fn spawn(opts: Options) -> TestApp {
    spawn_in(opts, fresh_db().await).await
}

/// Starts the service on `db` (e.g. one of a [`system_tests::TestPostgres`] the test stops).
pub async fn spawn_in(opts: Options, db: TestDb) -> TestApp {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let secrets = generate_dev_secrets(dir.path()).expect("dev secrets");
    let mut s = Settings::default();
    s.server.port = 0;
    s.server.workers = Some(2);
    s.redis.url = redis.url().into();
    s.redis.ack_replicas = 0; // a lone test Redis: no replica to wait for
    s.postgres.url = db.url.clone().into();
    s.postgres.max_connections = 10;
    s.secrets_dir = dir.path().to_path_buf();
    (s.rate_limits.ip_per_second, s.rate_limits.ip_burst) = opts.ip_rate;
    s.rate_limits.trust_forwarded_for = opts.trust_forwarded_for;
    (s.rate_limits.person_per_second, s.rate_limits.person_burst) = opts.person_rate;
    s.persister.enabled = opts.persister;
    s.persister.block_ms = 50;
    s.expiry.enabled = false;
    s.campaigns_refresh_ms = 500;
    // The rushes below run hundreds of claims at once on a debug build that shares two cores
    // with the whole suite; the production bounds would cut some of them. The fault tests
    // set the bound they test.
    s.server.request_timeout_ms = opts.request_timeout_ms.unwrap_or(30_000);
    s.redis.response_timeout_ms = 10_000;
    let clock = ManualClock::new(release_day() - Duration::minutes(5));
    let app = Application::build(s, Arc::new(clock.clone()))
        .await
        .expect("application");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let handle = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    let http = system_tests::http_client();
    TestApp {
        base,
        http,
        clock,
        secrets,
        state,
        redis,
        db,
        handle,
        _dir: dir,
    }
}

/// A JSON reply.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body (Null if not JSON).
    pub body: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    /// Stops the service gracefully.
    pub async fn stop(&self) {
        self.handle.stop().await;
    }

    /// Sends a request and reads the reply.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// A request builder for `path`.
    pub fn at(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// An identity token for `person` living in `home` with real-name level `level`.
    pub fn resident(&self, person: &str, home: u32, level: u8) -> String {
        let now = self.clock_now();
        let who = Identity {
            person_id: PersonId::parse(person).expect("person id"),
            home: PlaceCode::try_from(home).expect("place"),
            real_name_level: level,
            expires_at: now + Duration::hours(12),
        };
        identity::mint(&self.secrets.idp_signing, &who, now)
    }

    /// The service clock's now.
    pub fn clock_now(&self) -> DateTime<Utc> {
        use voucher_core::Clock;
        self.clock.now()
    }

    /// POST JSON as an administrator.
    pub async fn admin_post(&self, key: &str, path: &str, body: &Value) -> Reply {
        self.send(
            self.at(reqwest::Method::POST, path)
                .header("x-api-key", key)
                .json(body),
        )
        .await
    }

    /// GET as an administrator.
    pub async fn admin_get(&self, key: &str, path: &str) -> Reply {
        self.send(self.at(reqwest::Method::GET, path).header("x-api-key", key))
            .await
    }

    /// Creates the home-furnishing style program (province key) and returns its id.
    pub async fn program(&self) -> i64 {
        let r = self
            .admin_post(
                &self.secrets.province_admin.key,
                "/v1/admin/programs",
                &json!({"name": "测试项目", "funder_place": 140000, "province_ratio_bp": 5000,
                        "pool": 20_000_000_000_i64, "refund_policy": "restore"}),
            )
            .await;
        assert_eq!(r.status, 201, "program: {:?}", r.body);
        r.body["id"].as_i64().expect("program id")
    }

    /// Creates a Jincheng catering campaign (满100减20) and returns its id. `rounds` are
    /// `(start, quantity)`.
    pub async fn catering_campaign(
        &self,
        stock: u32,
        limit: u32,
        rounds: &[(DateTime<Utc>, u32)],
        validity_days: u32,
    ) -> i64 {
        let program = self.program().await;
        let rounds: Vec<Value> = rounds
            .iter()
            .enumerate()
            .map(|(i, (at, q))| json!({"round_no": i + 1, "starts_at": at, "quantity": q}))
            .collect();
        let spec = json!({
            "program_id": program, "name": "晋城餐饮券 满100减20", "owner_place": 140500,
            "category": "catering", "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
            "stock": stock, "per_person_limit": limit, "rounds": rounds,
            "validity": {"days_after_claim": validity_days}, "budget": 100_000_000,
            "eligibility": {"places": [140500], "min_real_name_level": 2}, "distribution": "claim"
        });
        let r = self
            .admin_post(
                &self.secrets.jincheng_admin.key,
                "/v1/admin/campaigns",
                &spec,
            )
            .await;
        assert_eq!(r.status, 201, "campaign: {:?}", r.body);
        r.body["id"].as_i64().expect("campaign id")
    }

    /// A claim with `claim_id`.
    pub async fn claim(&self, token: &str, campaign: i64, claim_id: uuid::Uuid) -> Reply {
        self.send(
            self.at(
                reqwest::Method::POST,
                &format!("/v1/campaigns/{campaign}/claims"),
            )
            .bearer_auth(token)
            .json(&json!({ "claim_id": claim_id })),
        )
        .await
    }

    /// Waits until the outbox is empty (the persister caught up).
    pub async fn wait_persisted(&self) {
        for _ in 0..600 {
            if self.state.hot.outbox_len().await.expect("outbox len") == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the outbox did not drain within 30 s");
    }

    /// Rows in a table of the test database.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.db.pool)
            .await
            .expect("count query")
    }
}

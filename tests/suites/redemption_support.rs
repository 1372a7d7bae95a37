//! Black-box harness: the real redemption app on port 0 against a private Redis and a fresh
//! PostgreSQL database (system-tests' `TestRedis` and `fresh_db`), freshly generated secrets
//! shared with issuance, a manual clock, real HTTP, and a signing terminal client.

use chrono::{DateTime, Duration, TimeZone, Utc};
use issuance::{generate_dev_secrets, DevSecrets};
use redemption::settings::Settings;
use redemption::{Application, ShutdownHandle};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use system_tests::{fresh_db, ServiceProcess, TestDb, TestRedis};
use uuid::Uuid;
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::token::{self, VoucherClaims};
use voucher_core::{
    BasisPoints, Campaign, CampaignId, Category, Clock, Distribution, Eligibility, Fen,
    ManualClock, NewCampaign, NewProgram, PersonId, PlaceCode, ProgramId, RefundPolicy, Round,
    Rule, Validity, VoucherId,
};

/// 2026-05-01 02:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0).single().unwrap()
}

/// A place.
pub fn place(code: u32) -> PlaceCode {
    PlaceCode::try_from(code).unwrap()
}

/// A running app and its world.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The service clock.
    pub clock: ManualClock,
    /// Secrets (voucher signing key, admin keys).
    pub secrets: DevSecrets,
    /// The database.
    pub db: TestDb,
    /// The private Redis (tests may kill and restart it).
    pub redis: TestRedis,
    codes: DynamicCodes,
    running: Running,
    _dir: tempfile::TempDir,
}

/// How the service under test runs.
enum Running {
    /// The real `Application` inside the test process.
    InProcess {
        state: redemption::AppState,
        handle: ShutdownHandle,
    },
    /// The `redemption` binary as a child process (its clock is the system's).
    Process(ServiceProcess),
}

/// A terminal's credentials.
#[derive(Debug, Clone)]
pub struct Term {
    /// Merchant.
    pub merchant: String,
    /// Terminal id.
    pub terminal_id: String,
    /// Key id.
    pub key_id: String,
    /// Secret (hex).
    pub secret: String,
}

/// Starts the app; `tune` adjusts the settings.
pub async fn spawn_with(tune: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_in(fresh_db().await, tune).await
}

/// A secrets directory as the redemption service gets it: generated, then every private
/// key removed (the service verifies vouchers and never mints them; the test keeps the
/// signing key in memory to mint vouchers).
fn redemption_secrets() -> (tempfile::TempDir, DevSecrets) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = generate_dev_secrets(dir.path()).unwrap();
    for private in [
        voucher_platform::secrets::VOUCHER_SIGNING,
        voucher_platform::secrets::IDP_SIGNING,
        voucher_platform::secrets::ADMIN_KEYS_PLAIN,
    ] {
        std::fs::remove_file(dir.path().join(private)).unwrap();
    }
    (dir, secrets)
}

/// Starts the app on `db` (e.g. one of a [`system_tests::TestPostgres`] the test stops).
pub async fn spawn_in(db: TestDb, tune: impl FnOnce(&mut Settings)) -> TestApp {
    voucher_platform::telemetry::init(&voucher_platform::settings::LogSettings {
        format: voucher_platform::settings::LogFormat::Json,
        level: "warn".into(),
    });
    let redis = TestRedis::start();
    let (dir, secrets) = redemption_secrets();
    let mut s = Settings::default();
    s.server.port = 0;
    s.server.workers = Some(2);
    s.redis.url = redis.url().into();
    s.postgres.url = db.url.clone().into();
    s.postgres.max_connections = 24;
    s.secrets_dir = secrets.dir.clone();
    s.holds.sweep_interval_secs = 0;
    s.rate_limits.terminal_per_second = 1000;
    s.rate_limits.terminal_burst = 1000;
    s.rate_limits.ip_per_second = 10_000;
    s.rate_limits.ip_burst = 10_000;
    // The races below queue hundreds of checkouts on a debug build sharing two cores with
    // the whole suite: waiting for a connection may take longer than a till would accept.
    // The fault tests set their own (production) bounds.
    s.postgres.acquire_timeout_ms = 15_000;
    s.server.request_timeout_ms = 30_000;
    tune(&mut s);
    let clock = ManualClock::new(t0());
    let codes = DynamicCodes::new(&secrets.dynamic_code_secret, s.dynamic_code.step_secs).unwrap();
    let app = Application::build(s, Arc::new(clock.clone()))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.shutdown_handle();
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        http: system_tests::http_client(),
        clock,
        secrets,
        db,
        redis,
        codes,
        running: Running::InProcess { state, handle },
        _dir: dir,
    }
}

/// Runs the `redemption` binary (`serve`, JSON logs at the default level) against a private
/// Redis and a fresh database, with `env` on top of the test settings; its clock is the
/// system's, and so is the harness's.
pub async fn spawn_process(env: &[(&str, String)]) -> TestApp {
    let redis = TestRedis::start();
    let db = fresh_db().await;
    let (dir, secrets) = redemption_secrets();
    let mut all: Vec<(&str, String)> = vec![
        ("APP__REDIS__URL", redis.url()),
        ("APP__POSTGRES__URL", db.url.clone()),
        ("APP__SECRETS_DIR", dir.path().display().to_string()),
        ("APP__RATE_LIMITS__IP_PER_SECOND", "10000".into()),
        ("APP__RATE_LIMITS__IP_BURST", "10000".into()),
    ];
    all.extend(env.iter().cloned());
    let process = ServiceProcess::serve("redemption", &all);
    let codes = DynamicCodes::new(&secrets.dynamic_code_secret, 30).unwrap();
    TestApp {
        base: process.base.clone(),
        http: system_tests::http_client(),
        clock: ManualClock::new(Utc::now()),
        secrets,
        db,
        redis,
        codes,
        running: Running::Process(process),
        _dir: dir,
    }
}

/// Starts the app with the test defaults.
pub async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

/// A valid 统一社会信用代码 made from a number.
pub fn credit_code(n: u32) -> String {
    let head = format!("91140500MA{n:07}");
    let check = voucher_core::CreditCode::check_char(&head).unwrap();
    format!("{head}{check}")
}

static CREDIT_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

impl TestApp {
    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Graceful stop.
    pub async fn stop(&self) {
        match &self.running {
            Running::InProcess { handle, .. } => handle.stop().await,
            Running::Process(process) => process.terminate(),
        }
    }

    /// The in-process app's state.
    ///
    /// # Panics
    /// The service runs as a process.
    pub fn state(&self) -> &redemption::AppState {
        match &self.running {
            Running::InProcess { state, .. } => state,
            Running::Process(_) => panic!("the service runs as a process"),
        }
    }

    /// The service process.
    ///
    /// # Panics
    /// The service runs in process.
    pub fn process(&mut self) -> &mut ServiceProcess {
        match &mut self.running {
            Running::Process(process) => process,
            Running::InProcess { .. } => panic!("the service runs in process"),
        }
    }

    /// A program with `policy`.
    pub async fn program(&self, policy: RefundPolicy) -> ProgramId {
        let spec = NewProgram {
            name: "test program".into(),
            funder_place: place(140_000),
            province_ratio_bp: BasisPoints::try_from(5000).unwrap(),
            pool: Fen::from_yuan(200_000_000).unwrap(),
            city_allocations: BTreeMap::new(),
            county_cofund_bp: None,
            refund_policy: policy,
        };
        voucher_store::pg::programs::create(&self.db.pool, &spec)
            .await
            .unwrap()
            .id
    }

    /// A campaign of Jincheng (140500).
    pub async fn campaign(
        &self,
        program: ProgramId,
        category: Category,
        rule: Rule,
        budget: Fen,
    ) -> Campaign {
        let spec = NewCampaign {
            program_id: program,
            name: "test campaign".into(),
            owner_place: place(140_500),
            category,
            rule,
            stock: 100_000,
            per_person_limit: 5,
            rounds: vec![Round {
                round_no: 1,
                starts_at: t0() - Duration::days(1),
                quantity: 100_000,
                mode: voucher_core::RoundMode::Rush,
            }],
            validity: Validity {
                days_after_claim: Some(7),
                ends_at: None,
            },
            budget,
            eligibility: Eligibility {
                places: vec![],
                min_real_name_level: 0,
            },
            distribution: Distribution::Claim,
        };
        voucher_store::pg::campaigns::create(&self.db.pool, &spec)
            .await
            .unwrap()
    }

    /// A catering 满100减20 campaign with a big budget, program policy `policy`.
    pub async fn catering(&self, policy: RefundPolicy, budget: Fen) -> Campaign {
        let program = self.program(policy).await;
        let rule = Rule::Threshold {
            min_spend: Fen::from_yuan(100).unwrap(),
            off: Fen::from_yuan(20).unwrap(),
        };
        self.campaign(program, Category::Catering, rule, budget)
            .await
    }

    /// A home-furnishing 10% campaign capped at 2,000 yuan per person.
    pub async fn furnishing(&self, policy: RefundPolicy, budget: Fen) -> Campaign {
        let program = self.program(policy).await;
        let rule = Rule::Percent {
            rate_bp: BasisPoints::try_from(1000).unwrap(),
            per_person_cap: Fen::from_yuan(2000).unwrap(),
        };
        self.campaign(program, Category::HomeFurnishing, rule, budget)
            .await
    }

    /// Signed claims of a fresh voucher of `campaign` for `person`, valid 7 days from t0.
    pub fn voucher(&self, campaign: &Campaign, person: &str) -> VoucherClaims {
        VoucherClaims {
            voucher_id: VoucherId(Uuid::now_v7()),
            campaign_id: campaign.id,
            program_id: campaign.spec.program_id,
            person_id: PersonId::parse(person).unwrap(),
            place: campaign.spec.owner_place,
            category: campaign.spec.category,
            rule: campaign.spec.rule.clone(),
            valid_from: self.clock.now() - Duration::hours(1),
            valid_until: self.clock.now() + Duration::days(7),
        }
    }

    /// The dynamic code of `claims` at the service clock's now.
    pub fn code(&self, claims: &VoucherClaims) -> String {
        let token = token::sign(&self.secrets.voucher_signing, claims);
        self.codes
            .code(&token, claims.voucher_id, self.clock.now())
            .code
    }

    /// POST as the Jincheng administrator (or `key`).
    pub async fn admin_post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .header("x-api-key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        json_of(resp).await
    }

    /// A merchant of `category` in Jincheng (county optional), approved for `programs`,
    /// with one terminal.
    pub async fn merchant(
        &self,
        id: &str,
        category: Category,
        county: Option<u32>,
        programs: &[ProgramId],
    ) -> Term {
        let key = self.secrets.jincheng_admin.key.clone();
        let n = CREDIT_SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = json!({
            "id": id, "name": format!("商户 {id}"), "credit_code": credit_code(n), "category": category.as_str(),
            "city": 140500, "county": county, "settlement_account": "ICBC-6222-0000",
        });
        let (status, created) = self.admin_post(&key, "/v1/admin/merchants", body).await;
        assert_eq!(status, 201, "{created}");
        for p in programs {
            let (status, body) = self
                .admin_post(
                    &key,
                    &format!("/v1/admin/merchants/{id}/approvals"),
                    json!({"program_id": p.0}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        self.terminal(id).await
    }

    /// A new terminal of `merchant`.
    pub async fn terminal(&self, merchant: &str) -> Term {
        let key = self.secrets.jincheng_admin.key.clone();
        let (status, t) = self
            .admin_post(
                &key,
                &format!("/v1/admin/merchants/{merchant}/terminals"),
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        Term {
            merchant: merchant.to_owned(),
            terminal_id: t["terminal_id"].as_str().unwrap().to_owned(),
            key_id: t["key_id"].as_str().unwrap().to_owned(),
            secret: t["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// A signed request builder at the service clock's now.
    pub fn signed(
        &self,
        term: &Term,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let headers = redemption::sign_request(
            &term.key_id,
            &term.secret,
            method,
            path,
            self.clock.now().timestamp(),
            body,
        )
        .unwrap();
        let mut req = self.http.request(method.parse().unwrap(), self.url(path));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        if !body.is_empty() {
            req = req
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        req
    }

    /// A signed terminal request; `idem` adds an `Idempotency-Key`.
    pub async fn call(
        &self,
        term: &Term,
        method: &str,
        path: &str,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let mut req = self.signed(term, method, path, &bytes);
        if let Some(key) = idem {
            req = req.header("idempotency-key", key);
        }
        json_of(req.send().await.unwrap()).await
    }

    /// A signed reversal request (`POST …/reversals`, no idempotency key: the
    /// `reversal_ref` in `body` makes it idempotent).
    pub async fn reverse(&self, term: &Term, path: &str, body: Value) -> (u16, Value) {
        self.call(term, "POST", path, Some(body), None).await
    }

    /// Redeems `code` for an order (a fresh idempotency key and order ref).
    pub async fn redeem(&self, term: &Term, code: &str, amount_fen: i64) -> (u16, Value) {
        self.checkout(term, "/v1/redemptions", code, amount_fen)
            .await
    }

    /// A checkout on `path` with a fresh idempotency key and order ref.
    pub async fn checkout(
        &self,
        term: &Term,
        path: &str,
        code: &str,
        amount_fen: i64,
    ) -> (u16, Value) {
        let order_ref = format!("o-{}", Uuid::new_v4().simple());
        let body = json!({"code": code, "order_amount_fen": amount_fen, "order_ref": order_ref});
        self.call(
            term,
            "POST",
            path,
            Some(body),
            Some(&Uuid::new_v4().to_string()),
        )
        .await
    }

    /// The service's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `SELECT count(*) FROM <table> [WHERE …]`.
    pub async fn count(&self, sql_from_where: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {sql_from_where}"))
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Counts of every table a checkout writes: redemptions, reversals, events, vouchers,
    /// entitlements, stored idempotency keys.
    pub async fn written(&self) -> [i64; 6] {
        [
            self.count("redemptions").await,
            self.count("reversals").await,
            self.count("events").await,
            self.count("vouchers").await,
            self.count("entitlements").await,
            self.count("idempotency_keys").await,
        ]
    }

    /// Σ remaining budget of a campaign.
    pub async fn budget_left(&self, campaign: CampaignId) -> i64 {
        voucher_store::pg::budget::budget_remaining(&self.db.pool, campaign)
            .await
            .unwrap()
            .unwrap_or(-1)
    }
}

/// Status and JSON body.
pub async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

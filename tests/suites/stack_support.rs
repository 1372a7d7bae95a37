//! Both services together, as a resident's phone and a till see them: the issuance service
//! (with the dev identity provider on and the residents' page) and the redemption service
//! (with the till's page), in process, on one private Redis and one fresh database, with one
//! clock, and helpers for what an administrator sets up through the APIs.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use system_tests::{fresh_db, TestDb, TestRedis};
use voucher_core::Clock;
use voucher_platform::secrets::{ADMIN_KEYS, DYNAMIC_CODE_SECRET, TERMINAL_KEK, VOUCHER_PUBLIC};

/// The built pages (`VP_WEB_DIST`, set by `deploy/local/test.sh`; else the repository's).
pub fn web_dist() -> PathBuf {
    std::env::var_os("VP_WEB_DIST").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../services/web/dist"),
        PathBuf::from,
    )
}

/// Both services running.
pub struct Stack {
    /// `http://127.0.0.1:PORT` of the issuance service.
    pub issuance: String,
    /// `http://127.0.0.1:PORT` of the redemption service.
    pub redemption: String,
    /// A client.
    pub http: reqwest::Client,
    /// The services' clock.
    pub clock: Arc<dyn Clock>,
    /// The issuance side's secrets (the test mints with them).
    pub secrets: issuance::DevSecrets,
    /// The record.
    pub db: TestDb,
    /// The hot store.
    pub redis: TestRedis,
    stops: Vec<voucher_platform::server::ShutdownHandle>,
    issuance_stop: voucher_platform::server::ShutdownHandle,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Starts both services on `clock`.
pub async fn start(clock: Arc<dyn Clock>) -> Stack {
    voucher_platform::telemetry::init(&voucher_platform::settings::LogSettings {
        format: voucher_platform::settings::LogFormat::Json,
        level: "warn".into(),
    });
    let redis = TestRedis::start();
    let db = fresh_db().await;
    let issuance_dir = tempfile::tempdir().unwrap();
    let secrets = issuance::generate_dev_secrets(issuance_dir.path()).unwrap();
    let redemption_dir = tempfile::tempdir().unwrap();
    for file in [
        VOUCHER_PUBLIC,
        DYNAMIC_CODE_SECRET,
        ADMIN_KEYS,
        TERMINAL_KEK,
    ] {
        std::fs::copy(
            issuance_dir.path().join(file),
            redemption_dir.path().join(file),
        )
        .unwrap();
    }
    let mut iss = issuance::Settings::default();
    let mut rdm = redemption::Settings::default();
    for s in [&mut iss.server, &mut rdm.server] {
        s.port = 0;
        s.workers = Some(2);
        s.request_timeout_ms = 30_000;
    }
    iss.redis.url = redis.url().into();
    iss.redis.ack_replicas = 0; // a lone test Redis: no replica to wait for
    rdm.redis.url = redis.url().into();
    iss.postgres.url = db.url.clone().into();
    rdm.postgres.url = db.url.clone().into();
    iss.secrets_dir = issuance_dir.path().to_path_buf();
    iss.documents.dir = issuance_dir.path().join("documents");
    rdm.secrets_dir = redemption_dir.path().to_path_buf();
    iss.web.dir = web_dist();
    rdm.web.dir = web_dist();
    iss.dev_idp.enabled = true;
    iss.persister.block_ms = 50;
    iss.expiry.enabled = false;
    iss.campaigns_refresh_ms = 300;
    iss.rate_limits.ip_per_second = 100_000;
    iss.rate_limits.ip_burst = 100_000;
    rdm.rate_limits.ip_per_second = 100_000;
    rdm.rate_limits.ip_burst = 100_000;
    rdm.holds.sweep_interval_secs = 0;
    let issuance_app = issuance::Application::build(iss, clock.clone())
        .await
        .unwrap();
    let redemption_app = redemption::Application::build(rdm, clock.clone())
        .await
        .unwrap();
    let issuance_url = format!("http://127.0.0.1:{}", issuance_app.port());
    let redemption_url = format!("http://127.0.0.1:{}", redemption_app.port());
    let issuance_stop = issuance_app.shutdown_handle();
    let stops = vec![redemption_app.shutdown_handle()];
    tokio::spawn(issuance_app.run_until_stopped());
    tokio::spawn(redemption_app.run_until_stopped());
    Stack {
        issuance: issuance_url,
        redemption: redemption_url,
        http: system_tests::http_client(),
        clock,
        secrets,
        db,
        redis,
        stops,
        issuance_stop,
        _dirs: (issuance_dir, redemption_dir),
    }
}

/// A JSON answer.
pub async fn json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

impl Stack {
    /// POST JSON with an administrator's key to `base + path`.
    pub async fn admin_post(&self, base: &str, key: &str, path: &str, body: Value) -> (u16, Value) {
        json(
            self.http
                .post(format!("{base}{path}"))
                .header("x-api-key", key)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A program (province) and a Jincheng catering campaign 满100减20 of `stock` vouchers,
    /// one per person, whose one round opens at `opens`. Returns (program, campaign).
    pub async fn catering_campaign(&self, stock: u32, opens: DateTime<Utc>) -> (i64, i64) {
        let province = self.secrets.province_admin.key.clone();
        let jincheng = self.secrets.jincheng_admin.key.clone();
        let (status, program) = self
            .admin_post(
                &self.issuance,
                &province,
                "/v1/admin/programs",
                json!({
                "name": "住宿餐饮文旅数字消费券", "funder_place": 140000, "province_ratio_bp": 5000,
                "pool": 10_000_000_000_i64, "refund_policy": "restore"}),
            )
            .await;
        assert_eq!(status, 201, "{program}");
        let (status, campaign) = self
            .admin_post(&self.issuance, &jincheng, "/v1/admin/campaigns", json!({
                "program_id": program["id"], "name": "晋城餐饮券 满100减20", "owner_place": 140500,
                "category": "catering", "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
                "stock": stock, "per_person_limit": 1,
                "rounds": [{"round_no": 1, "starts_at": opens, "quantity": stock}],
                "validity": {"days_after_claim": 7}, "budget": 100_000_000,
                "eligibility": {"places": [140500], "min_real_name_level": 1}, "distribution": "claim"}))
            .await;
        assert_eq!(status, 201, "{campaign}");
        (
            program["id"].as_i64().unwrap(),
            campaign["id"].as_i64().unwrap(),
        )
    }

    /// A Jincheng catering merchant `id` approved for `program`.
    pub async fn merchant(&self, id: &str, program: i64) {
        let jincheng = self.secrets.jincheng_admin.key.clone();
        let head = format!("91140500MA{:07}", id.bytes().map(u32::from).sum::<u32>());
        let credit = format!(
            "{head}{}",
            voucher_core::CreditCode::check_char(&head).unwrap()
        );
        let (status, body) = self
            .admin_post(
                &self.redemption,
                &jincheng,
                "/v1/admin/merchants",
                json!({
                "id": id, "name": format!("晋城老字号饭店 {id}"), "credit_code": credit,
                "category": "catering", "city": 140500, "settlement_account": "ICBC-6222-0001"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = self
            .admin_post(
                &self.redemption,
                &jincheng,
                &format!("/v1/admin/merchants/{id}/approvals"),
                json!({ "program_id": program }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// A one-time pairing code for a new web terminal of `merchant`.
    pub async fn pairing_code(&self, merchant: &str) -> String {
        let jincheng = self.secrets.jincheng_admin.key.clone();
        let (status, body) = self
            .admin_post(
                &self.redemption,
                &jincheng,
                &format!("/v1/admin/merchants/{merchant}/pairings"),
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["pairing_code"].as_str().unwrap().to_owned()
    }

    /// A dev identity token for `person` of Jincheng, through the dev sign-in.
    pub async fn sign_in(&self, person: &str) -> String {
        let (status, body) = json(
            self.http
                .post(format!("{}/v1/dev/sign-in", self.issuance))
                .json(&json!({"person_id": person, "home": 140500, "real_name_level": 2}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// GET `base + path` as the resident holding `token`.
    pub async fn resident_get(&self, token: &str, path: &str) -> (u16, Value) {
        json(
            self.http
                .get(format!("{}{path}", self.issuance))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Claims one voucher of `campaign` and waits until the record has it. Its id.
    pub async fn claim(&self, token: &str, campaign: i64) -> String {
        let (status, body) = json(
            self.http
                .post(format!("{}/v1/campaigns/{campaign}/claims", self.issuance))
                .bearer_auth(token)
                .json(&json!({"claim_id": uuid::Uuid::new_v4()}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let voucher = body["voucher_id"].as_str().unwrap().to_owned();
        for _ in 0..200 {
            let (_, mine) = self.resident_get(token, "/v1/me/vouchers").await;
            if mine
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x["voucher_id"] == voucher.as_str()))
            {
                return voucher;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("voucher {voucher} never reached the record");
    }

    /// Rows of the record.
    pub async fn count(&self, sql_from_where: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {sql_from_where}"))
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Stops the issuance service only (the phone loses its network; the till keeps its own).
    pub async fn stop_issuance(&self) {
        self.issuance_stop.stop().await;
    }

    /// Stops both services.
    pub async fn stop(&self) {
        self.issuance_stop.stop().await;
        for s in &self.stops {
            s.stop().await;
        }
    }

    /// A validity-window-friendly now.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// A terminal paired through the API (as the till's page does), for API-level tests.
pub struct PairedTerminal {
    /// Key id.
    pub key_id: String,
    /// Secret (hex).
    pub secret: String,
}

impl Stack {
    /// Pairs a terminal of `merchant` through `POST /v1/terminal-pairings`.
    pub async fn pair(&self, merchant: &str) -> PairedTerminal {
        let code = self.pairing_code(merchant).await;
        let (status, body) = json(
            self.http
                .post(format!("{}/v1/terminal-pairings", self.redemption))
                .json(&json!({ "pairing_code": code.to_lowercase() }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        PairedTerminal {
            key_id: body["key_id"].as_str().unwrap().to_owned(),
            secret: body["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// A signed terminal request: status and body.
    pub async fn signed(
        &self,
        term: &PairedTerminal,
        method: &str,
        path: &str,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let headers = voucher_core::signing::sign_request(
            &term.key_id,
            &term.secret,
            method,
            path,
            self.clock.now().timestamp(),
            &bytes,
        )
        .unwrap();
        let mut req = self.http.request(
            method.parse().unwrap(),
            format!("{}{path}", self.redemption),
        );
        for (name, value) in headers {
            req = req.header(name, value);
        }
        if !bytes.is_empty() {
            req = req.header("content-type", "application/json").body(bytes);
        }
        if let Some(key) = idem {
            req = req.header("idempotency-key", key);
        }
        json(req.send().await.unwrap()).await
    }

    /// Redeems `code` for a ¥150 order.
    pub async fn redeem(&self, term: &PairedTerminal, code: &str) -> (u16, Value) {
        let order = format!("o-{}", uuid::Uuid::new_v4().simple());
        self.signed(
            term,
            "POST",
            "/v1/redemptions",
            Some(json!({"code": code, "order_amount_fen": 15_000, "order_ref": order})),
            Some(&order),
        )
        .await
    }
}

/// `opens` rounded up to a whole minute plus `secs` (rounds open on the minute in the demo).
pub fn soon(now: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    now + Duration::seconds(secs)
}

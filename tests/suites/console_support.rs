//! The finance console's service in process, on a fresh database with one program settled
//! for a day in two cities (晋城 Jincheng, with a county campaign of 阳城 Yangcheng, and 太原
//! Taiyuan), one private Redis, a manual clock, and four officers: the province, the two
//! cities, and a county officer of Yangcheng. Sessions are driven by hand (the cookie and
//! the CSRF token), so that tests see exactly what a browser would send.

#![allow(dead_code)]

use crate::reconciliation_support::*;
use chrono::{DateTime, Utc};
use reconciliation::serve::settings::Settings;
use reqwest::Method;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use system_tests::TestRedis;
use uuid::Uuid;
use voucher_core::ManualClock;

/// Officers: (name, key, role, place).
pub const OFFICERS: [(&str, &str, &str, i32); 4] = [
    ("shanxi-finance", "prov-key-0123456789", "province", 140_000),
    ("jincheng-finance", "jc-key-0123456789", "city", JINCHENG),
    ("taiyuan-finance", "ty-key-0123456789", "city", TAIYUAN),
    ("yangcheng-finance", "yc-key-0123456789", "city", YANGCHENG),
];

/// The province officer's key.
pub const PROVINCE: &str = OFFICERS[0].1;
/// Jincheng's officer's key.
pub const JC: &str = OFFICERS[1].1;
/// Taiyuan's officer's key.
pub const TY: &str = OFFICERS[2].1;
/// Yangcheng county's officer's key.
pub const YC: &str = OFFICERS[3].1;

/// The console service running over a settled day.
pub struct Console {
    /// The record and its program.
    pub fx: Fx,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The service's clock (starts 2026-05-11 10:00 Beijing).
    pub clock: ManualClock,
    /// A client without a cookie store.
    pub http: reqwest::Client,
    /// The secrets directory (`admin-keys.json` and one `<name>.key` per officer).
    pub dir: tempfile::TempDir,
    /// The run settled for 2026-05-10.
    pub run: i64,
    /// Jincheng's batch.
    pub jc_batch: i64,
    /// Taiyuan's batch.
    pub ty_batch: i64,
    /// A sale at a Taiyuan merchant.
    pub ty_sale: Uuid,
    /// A sale at a Jincheng merchant.
    pub jc_sale: Uuid,
    /// A sale of Yangcheng's county campaign at a merchant in Yangcheng.
    pub yc_sale: Uuid,
    /// Redis.
    pub redis: TestRedis,
    stop: voucher_platform::server::ShutdownHandle,
}

/// A signed-in browser: its cookie and CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    /// `vp_console=…`.
    pub cookie: String,
    /// The token writes send.
    pub csrf: String,
    /// The whole answer to the sign-in.
    pub body: Value,
    /// The `Set-Cookie` header.
    pub set_cookie: String,
}

/// Writes `admin-keys.json` and the key files.
pub fn write_officers(dir: &Path) {
    let json: Vec<Value> = OFFICERS
        .iter()
        .map(|(name, key, role, place)| {
            std::fs::write(dir.join(format!("{name}.key")), format!("{key}\n")).unwrap();
            serde_json::json!({"name": name, "key_sha256": voucher_platform::admin::sha256_hex(key),
                               "role": role, "place": place})
        })
        .collect();
    std::fs::write(
        dir.join("admin-keys.json"),
        serde_json::to_string(&json).unwrap(),
    )
    .unwrap();
}

/// The file holding the key of the officer named `name`.
pub fn key_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.key"))
}

impl Console {
    /// The service with the default settings, the dev identity provider off.
    pub async fn start() -> Console {
        Console::start_with(|_| {}).await
    }

    /// The service, with `tune` applied to its settings.
    pub async fn start_with(tune: impl FnOnce(&mut Settings)) -> Console {
        Console::start_funded(10_000_000, &[(TAIYUAN, 50_000), (JINCHENG, 80_000)], tune).await
    }

    /// The service over a program with `pool` fen and these city allocations.
    pub async fn start_funded(
        pool: i64,
        allocations: &[(i32, i64)],
        tune: impl FnOnce(&mut Settings),
    ) -> Console {
        voucher_platform::telemetry::init(&voucher_platform::settings::LogSettings {
            format: voucher_platform::settings::LogFormat::Json,
            level: "warn".into(),
        });
        let fx = Fx::new(pool, 5000, None, allocations).await;
        let (ty, jc, yc) = (
            fx.campaign(TAIYUAN).await,
            fx.campaign(JINCHENG).await,
            fx.campaign(YANGCHENG).await,
        );
        fx.merchant("m-ty", "太原家具城", TAIYUAN).await;
        fx.merchant("m-jc", "晋城家居馆", JINCHENG).await;
        fx.merchant("m-yc", "阳城农家乐", JINCHENG).await;
        sqlx::query("UPDATE merchants SET county = $1 WHERE id = 'm-yc'")
            .bind(YANGCHENG)
            .execute(&fx.db.pool)
            .await
            .unwrap();
        // 2026-05-10: three sales by one person at each merchant (a review finding each).
        let mut ty_sale = Uuid::nil();
        let mut jc_sale = Uuid::nil();
        let mut yc_sale = Uuid::nil();
        for i in 0..3 {
            ty_sale = fx.sale(ty, "m-ty", "p-ty", 2_000, at(10, 10, i)).await;
            jc_sale = fx.sale(jc, "m-jc", "p-jc", 3_000, at(10, 11, i)).await;
            yc_sale = fx.sale(yc, "m-yc", "p-yc", 1_000, at(10, 12, i)).await;
        }
        fx.reverse(jc_sale, 1_000, at(10, 15, 0)).await;
        fx.settle(10, 10).await;
        // 2026-05-11, not yet settled: committed spending.
        fx.sale(jc, "m-jc", "p-jc2", 4_000, at(11, 9, 0)).await;
        let run: i64 = sqlx::query_scalar("SELECT id FROM settlement_runs")
            .fetch_one(&fx.db.pool)
            .await
            .unwrap();
        let batch = |city: i32| {
            let pool = fx.db.pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT id FROM settlement_batches WHERE city = $1")
                    .bind(city)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        let (jc_batch, ty_batch) = (batch(JINCHENG).await, batch(TAIYUAN).await);

        let redis = TestRedis::start();
        let dir = tempfile::tempdir().unwrap();
        write_officers(dir.path());
        let clock = ManualClock::new(at(11, 10, 0));
        let mut settings = Settings::default();
        settings.server.port = 0;
        settings.server.workers = Some(2);
        settings.postgres.url = fx.db.url.clone().into();
        settings.redis.url = redis.url().into();
        settings.secrets_dir = dir.path().to_path_buf();
        settings.web.dir = crate::stack_support::web_dist();
        settings.rate_limits.ip_per_second = 100_000;
        settings.rate_limits.ip_burst = 100_000;
        tune(&mut settings);
        let app = reconciliation::serve::Application::build(settings, Arc::new(clock.clone()))
            .await
            .unwrap();
        let url = format!("http://127.0.0.1:{}", app.port());
        let stop = app.shutdown_handle();
        tokio::spawn(app.run_until_stopped());
        Console {
            fx,
            url,
            clock,
            http: system_tests::http_client(),
            dir,
            run,
            jc_batch,
            ty_batch,
            ty_sale,
            jc_sale,
            yc_sale,
            redis,
            stop,
        }
    }

    /// Moves the clock.
    pub fn advance_secs(&self, secs: i64) {
        self.clock.advance(chrono::Duration::seconds(secs));
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        voucher_core::Clock::now(&self.clock)
    }

    /// Signs in with an API key.
    pub async fn sign_in(&self, key: &str) -> Session {
        let resp = self
            .http
            .post(format!("{}/v1/session", self.url))
            .json(&serde_json::json!({ "api_key": key }))
            .send()
            .await
            .unwrap();
        session_of(resp).await
    }

    /// A request with `session`'s cookie (and, if `csrf`, its token).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        session: Option<&Session>,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(s) = session {
            req = req.header("Cookie", &s.cookie);
        }
        if let Some(token) = csrf {
            req = req.header("X-CSRF-Token", token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    /// GET as `session`: (status, JSON body).
    pub async fn get(&self, path: &str, session: &Session) -> (u16, Value) {
        crate::stack_support::json(
            self.call(Method::GET, path, Some(session), None, None)
                .await,
        )
        .await
    }

    /// A write as `session`, with its CSRF token.
    pub async fn write(
        &self,
        method: Method,
        path: &str,
        session: &Session,
        body: Option<Value>,
    ) -> (u16, Value) {
        crate::stack_support::json(
            self.call(method, path, Some(session), Some(&session.csrf), body)
                .await,
        )
        .await
    }

    /// A report file as `session`: status and bytes.
    pub async fn download(&self, path: &str, session: &Session) -> (u16, Vec<u8>) {
        let resp = self
            .call(Method::GET, path, Some(session), None, None)
            .await;
        let status = resp.status().as_u16();
        (status, resp.bytes().await.unwrap().to_vec())
    }

    /// Stops the service.
    pub async fn stop(&self) {
        self.stop.stop().await;
    }
}

/// The session a sign-in answer sets (panics if it is not a 200 with a cookie).
pub async fn session_of(resp: reqwest::Response) -> Session {
    let status = resp.status().as_u16();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "sign-in: {body}");
    let cookie = set_cookie.split(';').next().unwrap().trim().to_owned();
    assert!(cookie.starts_with("vp_console="), "{set_cookie}");
    Session {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        body,
        set_cookie,
    }
}

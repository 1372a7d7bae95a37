//! Starting the real issuance application for a black-box test of its HTTP edge: the
//! harness's private Redis ([`TestRedis`]) and fresh database ([`fresh_db`], dropped with the
//! app), freshly generated secrets, a manual clock, port 0, and a real HTTP client.

use chrono::{DateTime, Duration, TimeZone, Utc};
use issuance::settings::Settings;
use issuance::startup::{Application, ShutdownHandle};
use issuance::{generate_dev_secrets, DevSecrets};
use std::sync::Arc;
use system_tests::{fresh_db, TestDb, TestRedis};
use voucher_core::{ManualClock, PersonId, PlaceCode};

/// 2026-05-01 02:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0).single().unwrap()
}

/// Settings for a test app (port 0, background tasks off, generous limits).
pub fn test_settings(redis: &TestRedis, pg_url: &str, secrets: &DevSecrets) -> Settings {
    let mut s = Settings::default();
    s.server.port = 0;
    s.server.workers = Some(1);
    s.redis.url = redis.url().into();
    s.redis.ack_replicas = 0; // a lone test Redis: no replica to wait for
    s.redis.prefix = "vp".into();
    s.postgres.url = pg_url.to_owned().into();
    s.postgres.max_connections = 4;
    s.secrets_dir = secrets.dir.clone();
    s.persister.enabled = false;
    s.expiry.enabled = false;
    s.campaigns_refresh_ms = 0;
    s
}

/// A running app.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The service clock.
    pub clock: ManualClock,
    /// Keys.
    pub secrets: DevSecrets,
    handle: ShutdownHandle,
    _redis: TestRedis,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

/// Starts the app; `tune` adjusts the settings first.
pub async fn spawn_with(tune: impl FnOnce(&mut Settings)) -> TestApp {
    let redis = TestRedis::start();
    let db = fresh_db().await;
    let pg_url = db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let secrets = generate_dev_secrets(dir.path()).unwrap();
    let mut settings = test_settings(&redis, &pg_url, &secrets);
    tune(&mut settings);
    let clock = ManualClock::new(t0());
    let app = Application::build(settings, Arc::new(clock.clone()))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        http: system_tests::http_client(),
        clock,
        secrets,
        handle,
        _redis: redis,
        _db: db,
        _dir: dir,
    }
}

impl TestApp {
    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An identity token valid for an hour from the service clock's now.
    pub fn resident(&self, person: &str) -> String {
        use voucher_core::Clock;
        let now = self.clock.now();
        self.secrets.mint(
            &PersonId::parse(person).unwrap(),
            PlaceCode::try_from(140_500).unwrap(),
            2,
            now,
            Duration::hours(1),
        )
    }

    /// Graceful stop.
    pub async fn stop(&self) {
        self.handle.stop().await;
    }
}

/// Status and JSON body.
pub async fn json_of(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

//! Starting the real application for a black-box test: a private `redis-server` on a free
//! port, a fresh database on the cluster named by `VP_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:55432/postgres`), freshly generated secrets, a manual
//! clock, port 0, and a real HTTP client.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use issuance::secrets::{generate_dev_secrets, DevSecrets};
use issuance::settings::Settings;
use issuance::startup::{Application, ShutdownHandle};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use voucher_core::{ManualClock, PersonId, PlaceCode};

/// A private Redis, killed on drop.
pub struct PrivateRedis {
    child: Child,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Starts one and waits until it answers.
    pub fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let url = format!("redis://127.0.0.1:{port}");
        let mut redis = PrivateRedis {
            child,
            url,
            _dir: dir,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let _ = redis.child.kill();
        panic!("redis-server did not start on port {port}");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh, migrated database; returns its URL.
pub async fn fresh_database() -> String {
    let admin_url = std::env::var("VP_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".to_owned());
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("the test PostgreSQL cluster (VP_TEST_PG_URL) answers");
    let name = format!("vp_iss_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");
    let pool = voucher_store::pg::connect(&url, 2).await.unwrap();
    voucher_store::pg::migrate(&pool).await.unwrap();
    pool.close().await;
    url
}

/// 2026-05-01 02:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0).single().unwrap()
}

/// Settings for a test app (port 0, background tasks off, generous limits).
pub fn test_settings(redis: &PrivateRedis, pg_url: &str, secrets: &DevSecrets) -> Settings {
    let mut s = Settings::default();
    s.server.port = 0;
    s.server.workers = Some(1);
    s.redis.url = redis.url.clone().into();
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
    _redis: PrivateRedis,
    _dir: tempfile::TempDir,
}

/// Starts the app; `tune` adjusts the settings first.
pub async fn spawn_with(tune: impl FnOnce(&mut Settings)) -> TestApp {
    let redis = PrivateRedis::start();
    let pg_url = fresh_database().await;
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
        http: reqwest::Client::new(),
        clock,
        secrets,
        handle,
        _redis: redis,
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

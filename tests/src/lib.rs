//! The system-test harness: real, private infrastructure for each test.
//!
//! - [`TestRedis`]: a child `redis-server` on a free port in a temporary directory, with its
//!   append-only file on and fsynced at every write (`appendfsync always`), so a test can
//!   `kill -9` it ([`TestRedis::kill9`]) and bring it back on the same port and data
//!   ([`TestRedis::restart`]) and see exactly what was acknowledged. A second one can run
//!   as its replica ([`TestRedis::start_replica_of`]), be frozen ([`TestRedis::pause`]) or
//!   promoted ([`TestRedis::promote`]), and a master can lose its data directory
//!   ([`TestRedis::kill9_and_wipe`]).
//! - [`fresh_db`]: a new, migrated database on the PostgreSQL cluster named by
//!   `VP_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:55432/postgres`), which
//!   `deploy/local/test.sh` starts and exports. The database is dropped when the
//!   [`TestDb`] is (set `VP_TEST_KEEP_DBS=1` to keep it for a post-mortem).
//! - [`hot_store`]: the Redis side of the store, connected to a [`TestRedis`].
//! - [`TestPostgres`]: a PostgreSQL cluster of a test's own, which the test can stop (an
//!   outage, sessions terminated) and start again.
//! - [`ServiceProcess`]: a service binary of this workspace run as a child process (its
//!   log captured), for what only a real process shows: signals, exit, log lines.
//!
//! The test suites live in `suites/` and build into one test binary (`system`).

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use voucher_store::HotStore;

/// The PostgreSQL cluster the tests use when `VP_TEST_PG_URL` is not set.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:55432/postgres";

/// The key prefix of the hot store in tests (the services' default).
pub const REDIS_PREFIX: &str = "vp";

/// An HTTP client for tests. Its idle connections are dropped after 2 s, before the
/// services' keep-alive (actix: 5 s) closes them: reusing a connection at the moment the
/// server closes it fails the request with "connection closed before message completed",
/// a race of the test's client, not of the service.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("an HTTP client")
}

/// How long a starting `redis-server` (including loading its append-only file) may take
/// to answer `PING`.
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a graceful `SHUTDOWN` may take before the process is killed.
const REDIS_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A private `redis-server`, a child of the test process, killed when dropped.
///
/// Started with `--appendonly yes --appendfsync always --save ""` in a temporary directory
/// on a free port of 127.0.0.1; its log is `redis.log` in that directory.
pub struct TestRedis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// The master's port when this server is started as its replica (`--replicaof`).
    replica_of: Option<u16>,
}

impl std::fmt::Debug for TestRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRedis")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish()
    }
}

/// Why a start failed.
enum StartError {
    /// The process exited (most likely the port was taken meanwhile): worth another port.
    Exited(String),
    /// It runs but does not answer.
    Silent(String),
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The last lines of a log file, for a failure message.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl TestRedis {
    /// Starts a private Redis and waits until it answers `PING`.
    ///
    /// # Panics
    /// `redis-server` is not installed or does not come up.
    pub fn start() -> TestRedis {
        TestRedis::start_with(None)
    }

    /// Starts a private Redis as a replica of `master` (its own directory and append-only
    /// file, `appendfsync always`), and waits until the master counts it as an online
    /// replica.
    ///
    /// # Panics
    /// It does not come up or does not sync within 30 s.
    pub fn start_replica_of(master: &TestRedis) -> TestRedis {
        let replica = TestRedis::start_with(Some(master.port));
        master.wait_replicas_online(1);
        replica
    }

    fn start_with(replica_of: Option<u16>) -> TestRedis {
        let dir = tempfile::Builder::new()
            .prefix("vp-redis-")
            .tempdir()
            .expect("a temporary directory for redis");
        let mut redis = TestRedis {
            child: None,
            port: free_port(),
            dir,
            replica_of,
        };
        // A port found free may be taken by someone else before redis binds it: then redis
        // exits, and we try again on another port.
        for attempt in 1..=5 {
            match redis.spawn() {
                Ok(()) => return redis,
                Err(StartError::Exited(why)) if attempt < 5 => {
                    eprintln!("TestRedis: {why}; retrying on another port");
                    redis.port = free_port();
                }
                Err(StartError::Exited(why) | StartError::Silent(why)) => panic!("{why}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The working directory (append-only file, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of the running server, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits until this server (a master) counts `n` replicas online (`INFO replication`).
    ///
    /// # Panics
    /// Not within 30 s.
    pub fn wait_replicas_online(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let online = self
                .info("replication")
                .lines()
                .filter(|l| l.starts_with("slave") && l.contains("state=online"))
                .count();
            if online >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis on port {}: {online} of {n} replicas online after 30 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The text of `INFO <section>` (empty if the server does not answer).
    pub fn info(&self, section: &str) -> String {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .and_then(|mut con| redis::cmd("INFO").arg(section).query::<String>(&mut con))
            .unwrap_or_default()
    }

    /// Turns this replica into a master (`REPLICAOF NO ONE`), keeping its data; a later
    /// [`restart`](Self::restart) starts it as a master too.
    ///
    /// # Panics
    /// The server does not answer.
    pub fn promote(&mut self) {
        let client = redis::Client::open(self.url()).expect("redis url");
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("a connection to the replica");
        let _: String = redis::cmd("REPLICAOF")
            .arg("NO")
            .arg("ONE")
            .query(&mut con)
            .expect("REPLICAOF NO ONE");
        self.replica_of = None;
    }

    /// Makes the next [`restart`](Self::restart) start this server as a replica of the
    /// server on `master` (or as a master, with `None`).
    pub fn set_replica_of(&mut self, master: Option<u16>) {
        self.replica_of = master;
    }

    /// Kills the server with SIGKILL and deletes everything in its directory (the
    /// append-only files): "Redis lost its data directory". A later
    /// [`restart`](Self::restart) starts it empty.
    pub fn kill9_and_wipe(&mut self) {
        self.kill9();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
    }

    /// Freezes the server (SIGSTOP): it holds its connections but reads nothing, as a
    /// replica cut off by the network would. [`resume`](Self::resume) thaws it; a frozen
    /// server can still be killed.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a [`pause`](Self::pause)d server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
    }

    /// Kills the server with SIGKILL (no chance to flush anything) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server gracefully (`SHUTDOWN`) if it runs, then starts it again on the
    /// same port and directory, so it reloads its append-only file; waits for `PING`.
    /// After [`kill9`](Self::kill9) this is a crash recovery.
    ///
    /// # Panics
    /// The server does not come back.
    pub fn restart(&mut self) {
        self.stop();
        // The port is ours, but give the kernel a moment if it was just released.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(StartError::Exited(why)) if Instant::now() < deadline => {
                    eprintln!("TestRedis: restart: {why}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(StartError::Exited(why) | StartError::Silent(why)) => panic!("{why}"),
            }
        }
    }

    /// Stops the server gracefully (`SHUTDOWN`, which fsyncs the append-only file); kills
    /// it if it does not exit in time.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(2)) {
                    // The server closes the connection instead of answering.
                    let _ = redis::cmd("SHUTDOWN").query::<redis::Value>(&mut con);
                }
            }
            let deadline = Instant::now() + REDIS_STOP_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Starts the process on `self.port` in `self.dir` and waits until it answers `PING`
    /// (and is the process we started, not someone else on the same port).
    fn spawn(&mut self) -> Result<(), StartError> {
        let log = self.log_path();
        // redis-server writes its own log; stdout/stderr catch what comes before that.
        let out = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("redis.out"))
            .expect("redis.out");
        let err = out.try_clone().expect("redis.out");
        let child = Command::new("redis-server")
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--daemonize", "no"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(
                self.replica_of
                    .map(|m| {
                        vec![
                            "--replicaof".to_owned(),
                            "127.0.0.1".to_owned(),
                            m.to_string(),
                        ]
                    })
                    .unwrap_or_default(),
            )
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); run deploy/local/install-deps.sh")
            });
        let pid = child.id();
        self.child = Some(child);

        let url = self.url();
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(StartError::Exited(format!(
                    "redis-server on port {} exited ({status}): {}",
                    self.port,
                    tail(&log, 5)
                )));
            }
            if answers_as(&url, pid) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill9();
                return Err(StartError::Silent(format!(
                    "redis-server on port {} did not answer PING within {:?}: {}",
                    self.port,
                    REDIS_START_TIMEOUT,
                    tail(&log, 5)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether the Redis at `url` answers `PING` (not `LOADING`) and is process `pid`.
fn answers_as(url: &str, pid: u32) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
        return false;
    };
    let _ = con.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(pong) = redis::cmd("PING").query::<String>(&mut con) else {
        return false;
    };
    if pong != "PONG" {
        return false;
    }
    match redis::cmd("INFO")
        .arg("server")
        .query::<redis::InfoDict>(&mut con)
    {
        Ok(info) => info.get::<u32>("process_id") == Some(pid),
        Err(_) => false,
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The hot store (prefix [`REDIS_PREFIX`]) connected to a private Redis.
///
/// # Panics
/// The connection failed.
pub async fn hot_store(redis: &TestRedis) -> HotStore {
    HotStore::connect(&redis.url(), REDIS_PREFIX)
        .await
        .unwrap_or_else(|e| panic!("hot store on {}: {e}", redis.url()))
}

/// A fresh, migrated database of its own, dropped (best effort, `WITH (FORCE)`) when this
/// value is, unless `VP_TEST_KEEP_DBS` is set. Leftovers (`vp_*`) are dropped by
/// `deploy/local/test.sh` before a run.
pub struct TestDb {
    /// The database name, `vp_<uuid>`.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// A pool on it (at most 8 connections).
    pub pool: PgPool,
    admin_url: String,
    dropped: bool,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The maintenance URL of the test cluster: `VP_TEST_PG_URL` or [`DEFAULT_PG_URL`].
pub fn admin_url() -> String {
    std::env::var("VP_TEST_PG_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_owned())
}

/// `url` with its database replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let authority = head.find("://").map_or(0, |i| i + 3);
    let base = match head[authority..].find('/') {
        Some(i) => &head[..authority + i],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

async fn admin_connection(admin: &str) -> PgConnection {
    PgConnection::connect(admin).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach the test PostgreSQL at {admin} ({e}); set VP_TEST_PG_URL, or run \
             the tests with deploy/local/test.sh (it starts a private cluster)"
        )
    })
}

/// Creates a new database `vp_<uuid>` on the test cluster, runs the store's migrations in
/// it, and returns it with a pool.
///
/// # Panics
/// The cluster cannot be reached, or creating or migrating the database failed.
pub async fn fresh_db() -> TestDb {
    fresh_db_on(&admin_url()).await
}

/// [`fresh_db`] on the cluster whose maintenance URL is `admin` (e.g. a [`TestPostgres`]).
///
/// # Panics
/// As [`fresh_db`].
pub async fn fresh_db_on(admin: &str) -> TestDb {
    let admin = admin.to_owned();
    let name = format!("vp_{}", uuid::Uuid::new_v4().simple());
    let mut con = admin_connection(&admin).await;
    // Concurrent CREATE DATABASE can collide on the template ("being accessed by other
    // users"); that is transient.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut con)
            .await
        {
            Ok(_) => break,
            Err(e) if attempt < 20 && e.to_string().contains("accessed by other users") => {
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => panic!("CREATE DATABASE {name}: {e}"),
        }
    }
    let _ = con.close().await;

    let url = with_database(&admin, &name);
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    voucher_store::pg::migrate(&pool)
        .await
        .unwrap_or_else(|e| panic!("migrating {name}: {e}"));
    TestDb {
        name,
        url,
        pool,
        admin_url: admin,
        dropped: false,
    }
}

impl TestDb {
    /// Drops the database now (`WITH (FORCE)`, closing every connection to it).
    ///
    /// # Panics
    /// The drop failed.
    pub async fn drop_database(mut self) {
        self.pool.close().await;
        let mut con = admin_connection(&self.admin_url).await;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut con)
        .await
        .unwrap_or_else(|e| panic!("DROP DATABASE {}: {e}", self.name));
        let _ = con.close().await;
        self.dropped = true;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        if std::env::var_os("VP_TEST_KEEP_DBS").is_some() {
            eprintln!("TestDb: keeping database {} ({})", self.name, self.url);
            return;
        }
        // Drop cannot await, and the test's runtime may be shutting down: drop the database
        // from a thread with a runtime of its own, and wait for it. Best effort.
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let work = async {
                    let mut con = PgConnection::connect(&admin).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut con)
                        .await?;
                    con.close().await
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), work).await;
            });
        });
        let _ = dropper.join();
    }
}

/// A private PostgreSQL cluster of its own (started by `deploy/local/postgres.sh` in a
/// temporary directory, on a free port, fsync off), for tests that stop PostgreSQL under a
/// running service: [`TestPostgres::stop`] is a fast shutdown (sessions are terminated, as
/// an operator's restart does), [`TestPostgres::start`] brings it back on the same port and
/// data. Stopped when dropped.
pub struct TestPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl std::fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPostgres")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// The repository's root (where `deploy/local/postgres.sh` is).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

impl TestPostgres {
    /// Initialises and starts a cluster; waits until it accepts connections.
    ///
    /// # Panics
    /// The PostgreSQL binaries are missing or the server does not come up.
    pub fn launch() -> TestPostgres {
        let dir = tempfile::Builder::new()
            .prefix("vp-pg-")
            .tempdir()
            .expect("a temporary directory for postgres");
        let pg = TestPostgres {
            dir,
            port: free_port(),
        };
        pg.start();
        pg
    }

    fn script(&self, verb: &str) -> std::process::Output {
        Command::new(repo_root().join("deploy/local/postgres.sh"))
            .arg(verb)
            .env("VP_PG_DIR", self.dir.path().join("data"))
            .env("VP_PG_PORT", self.port.to_string())
            .env("VP_PG_FSYNC", "off")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running deploy/local/postgres.sh {verb}: {e}"))
    }

    /// Starts the server (again) on the same port and data.
    ///
    /// # Panics
    /// It does not come up.
    pub fn start(&self) {
        let out = self.script("start");
        assert!(
            out.status.success(),
            "postgres.sh start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (fast shutdown: open sessions are terminated).
    pub fn stop(&self) {
        let _ = self.script("stop");
    }

    /// The maintenance URL, `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A fresh, migrated database on this cluster.
    pub async fn fresh_db(&self) -> TestDb {
        fresh_db_on(&self.url()).await
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A binary of this workspace (`issuance`, `redemption`, …), built if missing.
///
/// # Panics
/// The build failed.
pub fn workspace_binary(name: &str) -> PathBuf {
    let root = repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join(name);
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", name, "--bin", name])
            .current_dir(&root)
            .status()
            .expect("cargo build")
            .success();
        assert!(ok, "building the {name} binary failed");
    }
    bin
}

/// A service binary running as a child process: `serve` with `APP__…` settings, its
/// standard error (the JSON log) in a file, killed when dropped.
pub struct ServiceProcess {
    child: Child,
    log: tempfile::NamedTempFile,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl ServiceProcess {
    /// Runs `binary serve` on a free port with `env`, and waits until `/healthz` answers.
    ///
    /// # Panics
    /// The process does not start or does not answer within 60 s.
    pub fn serve(binary: &str, env: &[(&str, String)]) -> ServiceProcess {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let err = log.reopen().expect("the log file");
        let mut command = Command::new(workspace_binary(binary));
        command
            .arg("serve")
            .env("APP__SERVER__PORT", port.to_string())
            .env("APP__SERVER__WORKERS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("the service process");
        let mut process = ServiceProcess {
            child,
            log,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("{binary} exited ({status}): {}", process.log_text());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return process;
            }
            assert!(
                Instant::now() < deadline,
                "{binary} did not listen within 60 s: {}",
                process.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits at most `limit` for the process to exit; its exit status, or `None` if it
    /// still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:55432/postgres", "vp_1"),
            "postgres://postgres@127.0.0.1:55432/vp_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "vp_2"),
            "postgres://u:p@h:1/vp_2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://postgres@localhost", "vp_3"),
            "postgres://postgres@localhost/vp_3"
        );
    }
}

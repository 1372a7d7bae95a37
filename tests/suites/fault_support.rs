//! The fault harness: real service processes (the workspace's `issuance`, `redemption` and
//! `reconciliation` binaries) on a private Redis and a fresh database, a load that records
//! every claim and redemption the clients were told succeeded, faults injected while it runs
//! (`kill -9` and restart, SIGSTOP/SIGCONT, a TCP proxy that stalls or drops replies,
//! SIGTERM), and the checks afterwards: each acknowledged operation is in PostgreSQL exactly
//! once, nothing is there that nobody was told about, and the invariants I1–I7 hold.
//!
//! - [`Proc`]: a service binary as a child process that can be killed with SIGKILL,
//!   restarted on the same port, stopped, paused and resumed.
//! - [`Proxy`]: a TCP proxy the test controls, between a client and a server: it passes
//!   bytes, stalls them (a slow or hung PostgreSQL without touching the shared cluster), or
//!   lets the request through and drops the reply (the decision was made, the answer lost).
//! - [`Tally`]: what the clients saw — successes, refusals and errors by code, the slowest
//!   answer, and the time to heal (from the moment the fault is undone to the first success).
//! - [`IssuanceRig`] + [`rush`] + [`IssuanceRig::verify`]: phones claiming, each retrying
//!   with its own claim id (as the app does) until it gets a final answer.
//! - [`RedemptionRig`] + [`checkout`] + [`RedemptionRig::verify`]: terminals redeeming signed
//!   vouchers, each checkout retried with the same `Idempotency-Key` and body until final.
//! - [`Row`]: one line of the fault table, printed and, with `VP_FAULTS_REPORT=<file>`,
//!   appended there as JSON (`deploy/local/faults.sh` builds the README's table from it).
//!
//! Loads are small by default (the test command runs every row in about two minutes);
//! `VP_FAULTS_SCALE=n` multiplies them (the long runs of `deploy/local/faults.sh`).

use chrono::{Duration as ChronoDuration, NaiveDate, Utc};
use futures::stream::{self, StreamExt as _};
use issuance::{generate_dev_secrets, DevSecrets};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs as _};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use system_tests::{fresh_db, workspace_binary, TestDb, TestRedis, REDIS_PREFIX};
use uuid::Uuid;
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::token::{self, VoucherClaims};
use voucher_core::{
    BasisPoints, Campaign, Category, Distribution, Eligibility, Fen, NewCampaign, NewProgram,
    PersonId, PlaceCode, RefundPolicy, Round, Rule, Validity, VoucherId,
};

/// The load multiplier: `VP_FAULTS_SCALE` (default 1).
pub fn scale() -> usize {
    std::env::var("VP_FAULTS_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v: &usize| *v > 0)
        .unwrap_or(1)
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Sends `signal` (`KILL`, `TERM`, `STOP`, `CONT`) to process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Resident memory of process `pid`, KiB (0 when it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    loadtest::probe::rss_kib(pid).map_or(0, |(rss, _)| rss)
}

// ---------------------------------------------------------------------------------------
// Processes

/// A workspace binary run as a child process with fixed arguments and environment, its
/// standard error appended to a log file across restarts. Killed when dropped.
pub struct Proc {
    binary: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The HTTP port it serves on, if it is a service (kept across restarts).
    pub port: Option<u16>,
    child: Mutex<Option<Child>>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proc {
    /// Starts `binary args…` with `env`; a service (`port` given) is waited for until it
    /// listens there.
    ///
    /// # Panics
    /// It does not start, or does not listen within 60 s.
    pub fn start(
        binary: &str,
        args: &[&str],
        env: Vec<(String, String)>,
        port: Option<u16>,
    ) -> Proc {
        let dir = tempfile::Builder::new()
            .prefix("vp-fault-")
            .tempdir()
            .expect("a log directory");
        let p = Proc {
            binary: workspace_binary(binary),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env,
            port,
            child: Mutex::new(None),
            log: dir.path().join(format!("{binary}.log")),
            _dir: dir,
        };
        p.spawn();
        p
    }

    /// A service: `binary serve` on a fresh port with `env` (and `APP__SERVER__PORT`).
    pub fn serve(binary: &str, mut env: Vec<(String, String)>) -> Proc {
        let port = free_port();
        env.push(("APP__SERVER__PORT".into(), port.to_string()));
        Proc::start(binary, &["serve"], env, Some(port))
    }

    fn spawn(&self) {
        self.spawn_child();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.listening() {
            assert!(
                Instant::now() < deadline,
                "{:?} did not listen within 60 s: {}",
                self.binary,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn_child(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log file");
        let mut command = Command::new(&self.binary);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let child = command.spawn().expect("the process");
        *lock(&self.child) = Some(child);
    }

    /// Whether it listens on its port (a command without a port: whether it was started).
    ///
    /// # Panics
    /// It exited.
    fn listening(&self) -> bool {
        if let Some(Ok(Some(status))) = lock(&self.child).as_mut().map(Child::try_wait) {
            panic!("{:?} exited ({status}): {}", self.binary, self.log_text());
        }
        self.port
            .is_none_or(|port| TcpStream::connect(("127.0.0.1", port)).is_ok())
    }

    /// `http://127.0.0.1:PORT`.
    ///
    /// # Panics
    /// Not a service.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port.expect("a service"))
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.child).as_ref().map(Child::id)
    }

    /// SIGKILL, and reaped.
    pub fn kill9(&self) {
        let taken = lock(&self.child).take();
        if let Some(mut child) = taken {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (same arguments, environment and port) after it died or was killed,
    /// and waits (without blocking the runtime) until it listens.
    pub async fn restart(&self) {
        self.kill9();
        self.spawn_child();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.listening() {
            assert!(
                Instant::now() < deadline,
                "{:?} did not listen within 60 s after a restart: {}",
                self.binary,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends `sig` to the running process.
    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            signal(pid, sig);
        }
    }

    /// Waits at most `limit` for the process to exit: its status, or `None` if it still runs.
    pub async fn wait_exit(&self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Its exit status if it has exited (a reaped child keeps answering it).
    pub fn exited(&self) -> Option<ExitStatus> {
        match lock(&self.child).as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status),
            _ => None,
        }
    }

    /// Runs it to completion (a command, not a service): its status and standard output
    /// (with its standard error after it when it failed).
    pub fn run(binary: &str, args: &[&str], env: &[(String, String)]) -> (ExitStatus, String) {
        let mut command = Command::new(workspace_binary(binary));
        command.args(args).stdin(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().expect("the command");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            text.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        (out.status, text)
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Log lines at ERROR level or carrying a panic.
    pub fn bad_log_lines(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("\"level\":\"ERROR\"") || l.contains("panicked at"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------------------------------------------------------------------------------------
// The proxy

/// What the [`Proxy`] does with the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Passes them both ways.
    Pass,
    /// Holds them (and new connections) until the mode changes: a hung server.
    Stall,
    /// Passes requests; the first bytes of a reply close both sides instead (the server
    /// decided, the client never hears it).
    DropReplies,
    /// The server is stopped: open connections are cut and new ones closed at once.
    Down,
}

struct ProxyState {
    mode: AtomicU8,
    stop: AtomicBool,
    dropped: AtomicU64,
    upstream: SocketAddr,
}

impl ProxyState {
    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            1 => Mode::Stall,
            2 => Mode::DropReplies,
            3 => Mode::Down,
            _ => Mode::Pass,
        }
    }

    fn wait_while_stalled(&self) {
        while self.mode() == Mode::Stall && !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` (threads; stopped when dropped).
pub struct Proxy {
    port: u16,
    state: Arc<ProxyState>,
}

impl Proxy {
    /// Listens on a free port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy's port");
        let port = listener.local_addr().expect("bound").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let state = Arc::new(ProxyState {
            mode: AtomicU8::new(0),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            upstream,
        });
        let s = state.clone();
        std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let s = s.clone();
                        std::thread::spawn(move || connection(client, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Proxy { port, state }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Changes what it does.
    pub fn set(&self, mode: Mode) {
        let v = match mode {
            Mode::Pass => 0,
            Mode::Stall => 1,
            Mode::DropReplies => 2,
            Mode::Down => 3,
        };
        self.state.mode.store(v, Ordering::SeqCst);
    }

    /// Replies dropped so far.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

fn connection(client: TcpStream, s: &Arc<ProxyState>) {
    s.wait_while_stalled();
    if s.mode() == Mode::Down {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(server) = TcpStream::connect_timeout(&s.upstream, Duration::from_secs(2)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = s.clone();
    let forward = std::thread::spawn(move || pump(c2, s2, &up, false));
    pump(server, client, s, true);
    let _ = forward.join();
}

/// Copies `from` → `to` until either side closes; `reply` marks the server → client side.
fn pump(mut from: TcpStream, mut to: TcpStream, s: &ProxyState, reply: bool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if s.stop.load(Ordering::SeqCst) || s.mode() == Mode::Down {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        if reply && s.mode() == Mode::DropReplies {
            s.dropped.fetch_add(1, Ordering::SeqCst);
            break;
        }
        s.wait_while_stalled();
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// `host:port` of a `postgres://…` URL, resolved.
fn pg_addr(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |x| x.1);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |x| x.1);
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("cannot resolve {hostport}"))
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let user = authority.rsplit_once('@').map(|x| format!("{}@", x.0));
    format!(
        "{scheme}://{}127.0.0.1:{port}{tail}",
        user.unwrap_or_default()
    )
}

// ---------------------------------------------------------------------------------------
// What the clients saw

#[derive(Default)]
struct TallyInner {
    oks: u64,
    refusals: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    slowest: Duration,
    recovered_at: Option<Instant>,
    healed_after: Option<Duration>,
}

/// The clients' view of a run: successes, refusals and errors by code, the slowest answer,
/// and the time to heal.
#[derive(Default)]
pub struct Tally {
    inner: Mutex<TallyInner>,
}

impl Tally {
    fn with<T>(&self, f: impl FnOnce(&mut TallyInner) -> T) -> T {
        f(&mut self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn took(&self, took: Duration) {
        self.with(|t| t.slowest = t.slowest.max(took));
    }

    /// A success.
    pub fn ok(&self, took: Duration) {
        self.took(took);
        self.with(|t| {
            t.oks += 1;
            if let (Some(at), None) = (t.recovered_at, t.healed_after) {
                t.healed_after = Some(at.elapsed());
            }
        });
    }

    /// An expected refusal (sold out, the limit, a double spend).
    pub fn refusal(&self, code: &str, took: Duration) {
        self.took(took);
        self.with(|t| *t.refusals.entry(code.to_owned()).or_default() += 1);
    }

    /// An error the client saw (a status code, or a transport failure).
    pub fn error(&self, code: &str, took: Duration) {
        self.took(took);
        self.with(|t| *t.errors.entry(code.to_owned()).or_default() += 1);
    }

    /// The fault is undone now: the time to heal runs from here to the next success.
    pub fn recovered(&self) {
        self.with(|t| {
            t.recovered_at = Some(Instant::now());
            t.healed_after = None;
        });
    }

    /// Successes so far.
    pub fn oks(&self) -> u64 {
        self.with(|t| t.oks)
    }

    /// From [`Tally::recovered`] to the first success after it.
    pub fn heal(&self) -> Option<Duration> {
        self.with(|t| t.healed_after)
    }

    /// Errors by code.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.with(|t| t.errors.clone())
    }

    /// Refusals by code.
    pub fn refusals(&self) -> BTreeMap<String, u64> {
        self.with(|t| t.refusals.clone())
    }

    /// The slowest answer (or failure) seen.
    pub fn slowest(&self) -> Duration {
        self.with(|t| t.slowest)
    }

    /// Waits until at least `n` successes were seen (or `limit` passed).
    pub async fn wait_oks(&self, n: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.oks() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// How requests are paced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// At most this many clients at once, each sending its next request when answered.
    Closed(usize),
    /// A new client every 1/rate seconds, whatever the answers (in-flight is not bounded
    /// by the clients).
    Open(u32),
}

/// Runs `tasks` at `pace`.
async fn paced<T, F, Fut>(items: Vec<T>, pace: Pace, f: F)
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = tokio::time::Instant::now();
    let limit = match pace {
        Pace::Closed(c) => c.max(1),
        Pace::Open(_) => items.len().max(1),
    };
    stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| {
            let at = match pace {
                Pace::Closed(_) => None,
                Pace::Open(rate) => Some(
                    started
                        + Duration::from_micros(
                            u64::try_from(i).unwrap_or(0) * 1_000_000 / u64::from(rate.max(1)),
                        ),
                ),
            };
            let fut = f(item);
            async move {
                if let Some(at) = at {
                    tokio::time::sleep_until(at).await;
                }
                fut.await;
            }
        })
        .buffer_unordered(limit)
        .collect::<Vec<()>>()
        .await;
}

/// How long a client keeps retrying one operation before giving up on it.
const RETRY_FOR: Duration = Duration::from_secs(90);

/// A client's own bound on one request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(Duration::from_secs(4))
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// The code an error answer is counted under: the body's `code`, else `HTTP_<status>`.
fn code_of(status: u16, body: &Value) -> String {
    body["code"]
        .as_str()
        .map_or_else(|| format!("HTTP_{status}"), str::to_owned)
}

/// How long a client waits before its next try: never sooner than the answer's
/// `Retry-After`, plus an exponential backoff with full jitter (up to 100 ms × 2^attempt, at
/// most 5 s), as the phone's page and the till do. Retries in lockstep would keep a service
/// that just got its dependency back overloaded (every client in flight retrying each
/// second), so that it never heals.
fn backoff(attempt: u32, retry_after: Option<u64>) -> Duration {
    let cap = 100_u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    let jitter = u64::try_from(Uuid::new_v4().as_u128() % u128::from(cap + 1)).unwrap_or(0);
    Duration::from_secs(retry_after.unwrap_or(0).min(5)) + Duration::from_millis(jitter)
}

/// An answer as the clients read it.
struct Reply {
    status: u16,
    /// `Retry-After`, in whole seconds.
    retry_after: Option<u64>,
    body: Value,
}

impl Reply {
    async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = resp.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            retry_after,
            body,
        }
    }

    /// What no client should see in the answer's form: a 503 without `Retry-After`.
    fn malformed(&self) -> Option<String> {
        (self.status == 503 && self.retry_after.is_none())
            .then(|| format!("503 without Retry-After: {}", self.body))
    }
}

/// The code a transport failure is counted under.
fn transport_code(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "CLIENT_TIMEOUT"
    } else if e.is_connect() {
        "CONNECTION_REFUSED"
    } else {
        "CONNECTION_CLOSED"
    }
}

// ---------------------------------------------------------------------------------------
// Checks and the table's row

/// The checks of a run.
#[derive(Debug, Default)]
pub struct Verdict {
    /// (what, held, what was found).
    pub checks: Vec<(String, bool, String)>,
    /// Operations acknowledged to clients.
    pub acknowledged: u64,
    /// Acknowledged operations not found exactly once in PostgreSQL.
    pub lost: u64,
}

impl Verdict {
    /// Records a check.
    pub fn check(&mut self, what: &str, ok: bool, found: impl std::fmt::Display) {
        self.checks.push((what.to_owned(), ok, found.to_string()));
    }

    /// Adds another verdict's checks and counts.
    pub fn merge(&mut self, other: Verdict) {
        self.checks.extend(other.checks);
        self.acknowledged += other.acknowledged;
        self.lost += other.lost;
    }

    /// The checks in short, for the table: the invariants (`I1 I5 …`), then the other
    /// checks by the label before their colon.
    pub fn names(&self) -> String {
        let mut invariants: Vec<&str> = Vec::new();
        let mut others: Vec<&str> = Vec::new();
        for (what, _, _) in &self.checks {
            let head = what.split_whitespace().next().unwrap_or(what);
            let is_invariant = head.len() == 2
                && head.starts_with('I')
                && head[1..].chars().all(|c| c.is_ascii_digit());
            if is_invariant {
                invariants.push(head);
            } else {
                others.push(what.split(':').next().unwrap_or(what));
            }
        }
        invariants.sort_unstable();
        invariants.dedup();
        let mut seen: Vec<&str> = Vec::new();
        for o in others {
            if !seen.contains(&o) {
                seen.push(o);
            }
        }
        let mut out = invariants.join(" ");
        if !seen.is_empty() {
            out.push_str(", ");
            out.push_str(&seen.join(", "));
        }
        out
    }

    /// Panics listing every failed check.
    pub fn assert_ok(&self) {
        let failed: Vec<String> = self
            .checks
            .iter()
            .filter(|c| !c.1)
            .map(|(w, _, f)| format!("{w}: found {f}"))
            .collect();
        assert!(failed.is_empty(), "failed checks:\n{}", failed.join("\n"));
        assert_eq!(self.lost, 0, "acknowledged operations lost");
    }
}

/// One row of the fault table.
#[derive(Debug)]
pub struct Row {
    /// The fault.
    pub fault: String,
    /// What was checked.
    pub checked: String,
    /// Acknowledged operations.
    pub acknowledged: u64,
    /// Of them, lost (must be 0).
    pub lost: u64,
    /// Time to heal.
    pub heal: Option<Duration>,
    /// Errors the clients saw, by code.
    pub errors: BTreeMap<String, u64>,
    /// A measurement of the row's own (a stop time, memory), free text.
    pub note: String,
}

impl Row {
    /// A row from a run's tally and verdict.
    pub fn new(fault: &str, tally: &Tally, verdict: &Verdict, note: String) -> Row {
        Row {
            fault: fault.to_owned(),
            checked: verdict.names(),
            acknowledged: verdict.acknowledged,
            lost: verdict.lost,
            heal: tally.heal(),
            errors: tally.errors(),
            note,
        }
    }

    /// Prints the row and appends it to `VP_FAULTS_REPORT` (JSON, one line), if set.
    pub fn emit(&self) {
        let row = json!({
            "fault": self.fault, "checked": self.checked, "acknowledged": self.acknowledged,
            "lost": self.lost, "heal_ms": self.heal.map(|d| d.as_millis() as u64),
            "errors": self.errors, "note": self.note,
        });
        eprintln!("fault row: {row}");
        if let Ok(path) = std::env::var("VP_FAULTS_REPORT") {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{row}");
            }
        }
    }
}

/// The Beijing days that may hold today's records (yesterday and today, so a run across
/// midnight is covered).
fn settle_period() -> reconciliation::period::Period {
    let today: NaiveDate = Utc::now()
        .with_timezone(&reconciliation::period::beijing())
        .date_naive();
    reconciliation::period::Period::new(today - ChronoDuration::days(1), today).expect("a period")
}

/// I6 on `db`: settle the period, every batch balanced, Σ payables = spending = province +
/// city + county, the pool respected, and a re-run writes nothing.
pub async fn check_settlement(db: &TestDb, verdict: &mut Verdict) {
    use reconciliation::settle::{settle, SettleRequest};
    let req = SettleRequest {
        period: settle_period(),
        actor: "fault-table".into(),
        now: Utc::now(),
    };
    match settle(&db.pool, &req).await {
        Ok(first) => {
            let again = settle(&db.pool, &req).await;
            verdict.check(
                "I6 re-running the settlement writes nothing",
                matches!(&again, Ok(o) if o.created.is_empty() && o.existing.len() == first.created.len()),
                format!("{again:?}"),
            );
        }
        Err(e) => verdict.check("I6 the period settles", false, e),
    }
    settlement_balanced(db, verdict).await;
}

/// The balance checks of I6 on every batch written.
pub async fn settlement_balanced(db: &TestDb, verdict: &mut Verdict) {
    let scalar = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    let unbalanced = scalar("SELECT count(*) FROM (SELECT batch_id, advance_id FROM ledger_postings GROUP BY batch_id, advance_id HAVING sum(amount_fen) <> 0) x").await;
    verdict.check(
        "I6 ledger postings sum to zero per batch",
        unbalanced == 0,
        unbalanced,
    );
    let wrong = scalar(
        "SELECT count(*) FROM settlement_batches b
          WHERE b.spending_fen <> b.province_fen + b.city_fen + b.county_fen
             OR b.spending_fen <> (SELECT COALESCE(sum(payable_fen), 0) FROM settlement_merchant_lines l WHERE l.batch_id = b.id)
                                + (SELECT COALESCE(sum(payable_fen), 0) FROM settlement_subsidy_lines l WHERE l.batch_id = b.id)",
    )
    .await;
    verdict.check(
        "I6 Σ payables = spending = province + city + county",
        wrong == 0,
        wrong,
    );
    let over_pool = scalar(
        "SELECT count(*) FROM programs p
          WHERE (SELECT COALESCE(sum(province_fen), 0) FROM settlement_batches b WHERE b.program_id = p.id) > p.pool_fen",
    )
    .await;
    verdict.check("I6 Σ province share ≤ pool", over_pool == 0, over_pool);
}

// ---------------------------------------------------------------------------------------
// Claims

/// What an [`IssuanceRig`] is started with.
#[derive(Debug, Clone)]
pub struct IssuanceOptions {
    /// Vouchers in the campaign.
    pub stock: u32,
    /// Per person.
    pub limit: u32,
    /// Run the persister as its own process (`issuance persister`) instead of a task.
    pub persister_process: bool,
    /// Put PostgreSQL behind a [`Proxy`] the test controls.
    pub pg_proxy: bool,
    /// Put a [`Proxy`] in front of the service (lost replies).
    pub front_proxy: bool,
    /// `server.request_timeout_ms`.
    pub request_timeout_ms: u64,
    /// `server.shutdown_timeout_secs`.
    pub shutdown_timeout_secs: u64,
    /// Run Redis as in production: with a replica of its own append-only file, and claims
    /// acknowledged only once the replica has them (`redis.ack_replicas = 1`). Without it,
    /// one Redis and `ack_replicas = 0`.
    pub replica: bool,
}

impl Default for IssuanceOptions {
    fn default() -> Self {
        IssuanceOptions {
            stock: 200,
            limit: 1,
            persister_process: false,
            pg_proxy: false,
            front_proxy: false,
            request_timeout_ms: 2_000,
            shutdown_timeout_secs: 5,
            replica: true,
        }
    }
}

/// The issuance service as a process (and its persister, if separate), a private Redis with
/// its append-only file, a fresh database, and one open campaign.
pub struct IssuanceRig {
    /// The hot store (locked only to kill, pause or restart it).
    pub redis: Mutex<TestRedis>,
    /// Its URL.
    pub redis_url: String,
    /// Its replica, if the options asked for one.
    pub replica: Option<Mutex<TestRedis>>,
    /// The record.
    pub db: TestDb,
    /// Keys (identity tokens are minted with them).
    pub secrets: DevSecrets,
    /// The service.
    pub issuance: Proc,
    /// The persister, when it runs as its own process.
    pub persister: Option<Proc>,
    /// Between the services and PostgreSQL, if asked for.
    pub pg_proxy: Option<Proxy>,
    /// In front of the service, if asked for.
    pub front: Option<Proxy>,
    /// The campaign.
    pub campaign: i64,
    /// Its options.
    pub opts: IssuanceOptions,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A claim acknowledged to a phone.
#[derive(Debug, Clone)]
pub struct ClaimAck {
    /// The person.
    pub person: String,
    /// The phone's claim id.
    pub claim_id: Uuid,
    /// The voucher it was told about.
    pub voucher_id: Uuid,
    /// Answered as a replay (200) of an earlier decision.
    pub replayed: bool,
}

/// What the phones of a rush got.
#[derive(Debug, Default)]
pub struct ClaimLog {
    /// Every acknowledgement (a phone has at most one).
    pub acks: Vec<ClaimAck>,
    /// Phones that gave up without a final answer.
    pub unfinished: u64,
    /// Answers no phone should see (a 500, an unknown refusal), with the body.
    pub unexpected: Vec<String>,
}

/// A phone: a person and the claim id this device made.
#[derive(Debug, Clone)]
pub struct Phone {
    /// Person id.
    pub person: String,
    /// Its claim id (reused on every retry).
    pub claim_id: Uuid,
}

/// `count` persons `prefix000001…`, each with `devices` phones.
pub fn phones(prefix: &str, count: usize, devices: usize) -> Vec<Phone> {
    let mut out = Vec::with_capacity(count * devices);
    for _ in 0..devices {
        for n in 1..=count {
            out.push(Phone {
                person: format!("{prefix}{n:06}"),
                claim_id: Uuid::new_v4(),
            });
        }
    }
    out
}

impl IssuanceRig {
    /// Starts everything and opens a campaign.
    pub async fn start(opts: IssuanceOptions) -> IssuanceRig {
        let redis = TestRedis::start();
        let replica = opts.replica.then(|| TestRedis::start_replica_of(&redis));
        let db = fresh_db().await;
        let dir = tempfile::tempdir().expect("a secrets directory");
        let secrets = generate_dev_secrets(dir.path()).expect("dev secrets");
        let pg_proxy = opts.pg_proxy.then(|| Proxy::start(pg_addr(&db.url)));
        let pg_url = pg_proxy
            .as_ref()
            .map_or_else(|| db.url.clone(), |p| via_port(&db.url, p.port()));
        let common = |persister_enabled: bool| -> Vec<(String, String)> {
            [
                ("APP__REDIS__URL", redis.url()),
                (
                    "APP__REDIS__ACK_REPLICAS",
                    u32::from(opts.replica).to_string(),
                ),
                ("APP__POSTGRES__URL", pg_url.clone()),
                ("APP__POSTGRES__ACQUIRE_TIMEOUT_MS", "1000".into()),
                ("APP__SECRETS_DIR", dir.path().display().to_string()),
                ("APP__SERVER__WORKERS", "2".into()),
                (
                    "APP__SERVER__REQUEST_TIMEOUT_MS",
                    opts.request_timeout_ms.to_string(),
                ),
                (
                    "APP__SERVER__SHUTDOWN_TIMEOUT_SECS",
                    opts.shutdown_timeout_secs.to_string(),
                ),
                ("APP__PERSISTER__ENABLED", persister_enabled.to_string()),
                ("APP__PERSISTER__BLOCK_MS", "50".into()),
                ("APP__PERSISTER__CLAIM_IDLE_MS", "500".into()),
                ("APP__EXPIRY__ENABLED", "false".into()),
                ("APP__CAMPAIGNS_REFRESH_MS", "200".into()),
                ("APP__RATE_LIMITS__IP_PER_SECOND", "1000000".into()),
                ("APP__RATE_LIMITS__IP_BURST", "1000000".into()),
                ("APP__RATE_LIMITS__PERSON_PER_SECOND", "1000".into()),
                ("APP__RATE_LIMITS__PERSON_BURST", "1000".into()),
                ("APP__LOG__LEVEL", "warn,tracing_actix_web=error".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
        };
        let issuance = Proc::serve("issuance", common(!opts.persister_process));
        let persister = opts.persister_process.then(|| {
            let mut env = common(true);
            env.push(("APP__PERSISTER__CONSUMER".into(), "fault-persister".into()));
            Proc::start("issuance", &["persister"], env, None)
        });
        let front = opts.front_proxy.then(|| {
            Proxy::start(
                format!("127.0.0.1:{}", issuance.port.expect("a port"))
                    .parse()
                    .expect("an address"),
            )
        });
        let mut rig = IssuanceRig {
            redis_url: redis.url(),
            redis: Mutex::new(redis),
            replica: replica.map(Mutex::new),
            db,
            secrets,
            issuance,
            persister,
            pg_proxy,
            front,
            campaign: 0,
            opts,
            http: client(),
            _dir: dir,
        };
        rig.campaign = rig.open_campaign().await;
        rig
    }

    /// The environment a `reconciliation` command run against this rig needs.
    pub fn command_env(&self) -> Vec<(String, String)> {
        vec![
            ("APP__POSTGRES__URL".into(), self.db.url.clone()),
            ("APP__REDIS__URL".into(), self.redis_url.clone()),
            ("APP__REDIS__PREFIX".into(), REDIS_PREFIX.into()),
        ]
    }

    /// Where phones send their claims (the front proxy, if any).
    pub fn base(&self) -> String {
        match &self.front {
            Some(p) => format!("http://127.0.0.1:{}", p.port()),
            None => self.issuance.base(),
        }
    }

    async fn admin(&self, key: &str, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.issuance.base()))
            .header("x-api-key", key)
            .json(&body)
            .send()
            .await
            .expect("an admin call");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 201, "{path}: {body}");
        body
    }

    async fn open_campaign(&self) -> i64 {
        let program = self
            .admin(
                &self.secrets.province_admin.key,
                "/v1/admin/programs",
                json!({"name": "故障演练", "funder_place": 140000, "province_ratio_bp": 5000,
                       "pool": 10_000_000_000_i64, "refund_policy": "restore"}),
            )
            .await;
        let stock = self.opts.stock;
        let campaign = self
            .admin(
                &self.secrets.jincheng_admin.key,
                "/v1/admin/campaigns",
                json!({
                    "program_id": program["id"], "name": "故障演练 满100减20", "owner_place": 140500,
                    "category": "catering", "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
                    "stock": stock, "per_person_limit": self.opts.limit,
                    "rounds": [{"round_no": 1, "starts_at": Utc::now() - ChronoDuration::minutes(1), "quantity": stock}],
                    "validity": {"days_after_claim": 7}, "budget": i64::from(stock) * 2000,
                    "eligibility": {"places": [140500], "min_real_name_level": 1}, "distribution": "claim"}),
            )
            .await;
        // The service's campaign cache reloads every 200 ms.
        tokio::time::sleep(Duration::from_millis(700)).await;
        campaign["id"].as_i64().expect("a campaign id")
    }

    /// An identity token for `person` of Jincheng.
    pub fn token(&self, person: &str) -> String {
        self.secrets.mint(
            &PersonId::parse(person).expect("a person id"),
            PlaceCode::try_from(140_500).expect("a place"),
            2,
            Utc::now(),
            ChronoDuration::hours(2),
        )
    }

    /// One phone: claims with its claim id until it gets a final answer (a voucher, or a
    /// refusal), retrying what may heal (503, 5xx, a lost connection) every 100 ms.
    async fn phone(&self, phone: Phone, tally: &Tally, log: &Mutex<ClaimLog>) {
        let token = self.token(&phone.person);
        let url = format!("{}/v1/campaigns/{}/claims", self.base(), self.campaign);
        let began = Instant::now();
        let mut seen: Option<Uuid> = None;
        let mut attempt = 0u32;
        loop {
            let sent = Instant::now();
            let answer = self
                .http
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({ "claim_id": phone.claim_id }))
                .send()
                .await;
            let took = sent.elapsed();
            // A 503's `Retry-After`, honoured as the phone and the till do.
            let mut after: Option<u64> = None;
            let retry = match answer {
                Err(e) => {
                    tally.error(transport_code(&e), took);
                    true
                }
                Ok(resp) => {
                    let reply = Reply::read(resp).await;
                    after = reply.retry_after;
                    if let Some(why) = reply.malformed() {
                        lock(log).unexpected.push(why);
                    }
                    let Reply { status, body, .. } = reply;
                    match status {
                        200 | 201 => {
                            tally.ok(took);
                            let voucher = body["voucher_id"]
                                .as_str()
                                .and_then(|v| Uuid::parse_str(v).ok());
                            let mut log = lock(log);
                            match voucher {
                                Some(v) if seen.is_none_or(|s| s == v) => {
                                    seen = Some(v);
                                    log.acks.push(ClaimAck {
                                        person: phone.person.clone(),
                                        claim_id: phone.claim_id,
                                        voucher_id: v,
                                        replayed: status == 200,
                                    });
                                }
                                _ => log.unexpected.push(format!("{status} {body}")),
                            }
                            false
                        }
                        409 if matches!(
                            body["code"].as_str(),
                            Some("SOLD_OUT" | "PER_PERSON_LIMIT")
                        ) =>
                        {
                            tally.refusal(&code_of(status, &body), took);
                            false
                        }
                        502..=504 => {
                            tally.error(&code_of(status, &body), took);
                            true
                        }
                        _ => {
                            tally.error(&code_of(status, &body), took);
                            lock(log).unexpected.push(format!("{status} {body}"));
                            status >= 500
                        }
                    }
                }
            };
            if !retry {
                return;
            }
            if began.elapsed() > RETRY_FOR {
                lock(log).unfinished += 1;
                return;
            }
            attempt += 1;
            tokio::time::sleep(backoff(attempt, after)).await;
        }
    }

    /// Waits until the outbox is empty (everything acknowledged reached the persister's
    /// commit), at most `limit`; how long it took.
    pub async fn wait_persisted(&self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let hot = voucher_store::HotStore::connect(&self.redis_url, REDIS_PREFIX)
            .await
            .expect("the hot store");
        while started.elapsed() < limit {
            if hot.outbox_len().await.ok() == Some(0) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Every acknowledged claim in PostgreSQL exactly once (and as the same voucher),
    /// nothing there that no phone was told about, I1, I2, I5 and I7 (Redis against
    /// PostgreSQL, the cross-check clean).
    pub async fn verify(&self, log: &ClaimLog) -> Verdict {
        self.verify_paging(log, &[]).await
    }

    /// [`IssuanceRig::verify`] for a fault that must page an operator: ERROR lines containing
    /// one of `paged` are what the fault should log, not noise.
    pub async fn verify_paging(&self, log: &ClaimLog, paged: &[&str]) -> Verdict {
        let mut v = Verdict::default();
        let drained = self.wait_persisted(Duration::from_secs(90)).await;
        v.check(
            "I5 the outbox drains into PostgreSQL",
            drained.is_some(),
            format!("{drained:?}"),
        );
        let rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
            "SELECT claim_id, voucher_id, person_id FROM vouchers WHERE campaign_id = $1",
        )
        .bind(self.campaign)
        .fetch_all(&self.db.pool)
        .await
        .expect("the vouchers");
        let mut by_claim: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (claim, voucher, _) in &rows {
            by_claim.entry(*claim).or_default().push(*voucher);
        }
        let mut acked: HashMap<Uuid, Uuid> = HashMap::new();
        let mut changed = 0;
        for a in &log.acks {
            if let Some(first) = acked.insert(a.claim_id, a.voucher_id) {
                if first != a.voucher_id {
                    changed += 1;
                }
            }
        }
        v.acknowledged = acked.len() as u64;
        let mut lost = 0;
        let mut wrong = 0;
        for (claim, voucher) in &acked {
            match by_claim.get(claim).map(Vec::as_slice) {
                Some([one]) if one == voucher => {}
                Some([_]) => wrong += 1,
                _ => lost += 1,
            }
        }
        v.lost = lost + wrong;
        v.check(
            "I5 each acknowledged claim in PostgreSQL exactly once",
            lost == 0,
            format!("{lost} missing or duplicated"),
        );
        v.check(
            "same answer: a retried claim id gets the same voucher",
            wrong == 0 && changed == 0,
            format!("{wrong} rows differ, {changed} answers changed"),
        );
        let unacked = by_claim.keys().filter(|c| !acked.contains_key(c)).count();
        v.check(
            "exactly once: no voucher that no phone was told about",
            log.unfinished > 0 || unacked == 0,
            format!(
                "{unacked} unacknowledged vouchers, {} phones unfinished",
                log.unfinished
            ),
        );
        v.check(
            "final answers: every phone got one",
            log.unfinished == 0,
            log.unfinished,
        );
        v.check(
            "no 5xx: no 500 or unexpected answer",
            log.unexpected.is_empty(),
            log.unexpected
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(" | "),
        );
        v.check(
            "I1 vouchers ≤ stock",
            rows.len() <= self.opts.stock as usize,
            format!("{} of {}", rows.len(), self.opts.stock),
        );
        let mut per_person: HashMap<&str, u32> = HashMap::new();
        for (_, _, person) in &rows {
            *per_person.entry(person.as_str()).or_default() += 1;
        }
        let over = per_person
            .values()
            .filter(|n| **n > self.opts.limit)
            .count();
        v.check("I2 nobody over the per-person limit", over == 0, over);
        let hot = voucher_store::HotStore::connect(&self.redis_url, REDIS_PREFIX)
            .await
            .expect("the hot store");
        let report = reconciliation::check::check(
            &self.db.pool,
            &hot,
            reconciliation::check::CheckOptions::default(),
        )
        .await;
        let bad: Vec<String> = self
            .issuance
            .bad_log_lines()
            .into_iter()
            .filter(|l| l.contains("panicked at") || !paged.iter().any(|p| l.contains(p)))
            .collect();
        v.check(
            "quiet log: no ERROR line or panic",
            bad.is_empty(),
            bad.join("\n"),
        );
        v.check(
            "I7 Redis and PostgreSQL agree (check clean)",
            report.as_ref().is_ok_and(|r| r.is_clean()),
            report.map_or_else(|e| e.to_string(), |r| r.render()),
        );
        v
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Phones claim at `pace`; returns what they were told.
pub async fn rush(rig: &IssuanceRig, phones: Vec<Phone>, pace: Pace, tally: &Tally) -> ClaimLog {
    let log = Mutex::new(ClaimLog::default());
    paced(phones, pace, |p| rig.phone(p, tally, &log)).await;
    log.into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// Checkouts

/// What a [`RedemptionRig`] is started with.
#[derive(Debug, Clone)]
pub struct RedemptionOptions {
    /// Terminals (of as many merchants).
    pub terminals: usize,
    /// Put PostgreSQL behind a [`Proxy`] the test controls.
    pub pg_proxy: bool,
    /// Put a [`Proxy`] in front of the service (lost replies).
    pub front_proxy: bool,
    /// `server.request_timeout_ms`.
    pub request_timeout_ms: u64,
    /// `server.shutdown_timeout_secs`.
    pub shutdown_timeout_secs: u64,
}

impl Default for RedemptionOptions {
    fn default() -> Self {
        RedemptionOptions {
            terminals: 4,
            pg_proxy: false,
            front_proxy: false,
            request_timeout_ms: 2_000,
            shutdown_timeout_secs: 5,
        }
    }
}

/// A terminal's credentials.
#[derive(Debug, Clone)]
pub struct Term {
    /// Merchant.
    pub merchant: String,
    /// Key id.
    pub key_id: String,
    /// Secret.
    pub secret: String,
}

/// The redemption service as a process, a private Redis, a fresh database with a catering
/// campaign (满100减20) and merchants with a terminal each; vouchers are minted here with the
/// signing key the service trusts (a signed token is itself proof of issuance).
pub struct RedemptionRig {
    /// The hot store (nonces; locked only to kill, pause or restart it).
    pub redis: Mutex<TestRedis>,
    /// Its URL.
    pub redis_url: String,
    /// The record.
    pub db: TestDb,
    /// Keys.
    pub secrets: DevSecrets,
    /// The service.
    pub redemption: Proc,
    /// Between the service and PostgreSQL, if asked for.
    pub pg_proxy: Option<Proxy>,
    /// In front of the service, if asked for.
    pub front: Option<Proxy>,
    /// The campaign.
    pub campaign: Campaign,
    /// Its budget, fen.
    pub budget: i64,
    /// One terminal per merchant.
    pub terms: Vec<Term>,
    codes: DynamicCodes,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// One checkout as a terminal makes it: one key, one body, retried until final.
#[derive(Debug, Clone)]
pub struct Sale {
    /// The voucher presented.
    pub voucher: VoucherClaims,
    /// The terminal (index).
    pub terminal: usize,
    /// `Idempotency-Key` (also the order reference).
    pub key: String,
}

/// A checkout acknowledged as approved.
#[derive(Debug, Clone)]
pub struct SaleAck {
    /// Its idempotency key.
    pub key: String,
    /// The redemption the terminal was told about.
    pub redemption_id: Uuid,
    /// The voucher.
    pub voucher_id: Uuid,
}

/// What the terminals got.
#[derive(Debug, Default)]
pub struct SaleLog {
    /// Approvals.
    pub acks: Vec<SaleAck>,
    /// Checkouts that gave up without a final answer.
    pub unfinished: u64,
    /// Answers no terminal should see.
    pub unexpected: Vec<String>,
    /// Vouchers presented (distinct).
    pub vouchers: u64,
    /// Vouchers whose till gave up with `CODE_STALE` after retrying past the code's life
    /// (the customer shows a fresh code; none of those presentations may have been approved).
    pub stale: HashSet<Uuid>,
}

impl RedemptionRig {
    /// Starts everything: program, campaign, merchants, terminals.
    pub async fn start(opts: RedemptionOptions) -> RedemptionRig {
        let redis = TestRedis::start();
        let db = fresh_db().await;
        let dir = tempfile::tempdir().expect("a secrets directory");
        let secrets = generate_dev_secrets(dir.path()).expect("dev secrets");
        // The service verifies vouchers and never mints them: no private keys in its directory.
        for private in [
            voucher_platform::secrets::VOUCHER_SIGNING,
            voucher_platform::secrets::IDP_SIGNING,
            voucher_platform::secrets::ADMIN_KEYS_PLAIN,
        ] {
            let _ = std::fs::remove_file(dir.path().join(private));
        }
        let pg_proxy = opts.pg_proxy.then(|| Proxy::start(pg_addr(&db.url)));
        let pg_url = pg_proxy
            .as_ref()
            .map_or_else(|| db.url.clone(), |p| via_port(&db.url, p.port()));
        let env: Vec<(String, String)> = [
            ("APP__REDIS__URL", redis.url()),
            ("APP__POSTGRES__URL", pg_url),
            ("APP__POSTGRES__ACQUIRE_TIMEOUT_MS", "1000".into()),
            ("APP__POSTGRES__MAX_CONNECTIONS", "8".into()),
            ("APP__SECRETS_DIR", dir.path().display().to_string()),
            ("APP__SERVER__WORKERS", "2".into()),
            (
                "APP__SERVER__REQUEST_TIMEOUT_MS",
                opts.request_timeout_ms.to_string(),
            ),
            (
                "APP__SERVER__SHUTDOWN_TIMEOUT_SECS",
                opts.shutdown_timeout_secs.to_string(),
            ),
            ("APP__HOLDS__SWEEP_INTERVAL_SECS", "0".into()),
            ("APP__RATE_LIMITS__IP_PER_SECOND", "1000000".into()),
            ("APP__RATE_LIMITS__IP_BURST", "1000000".into()),
            ("APP__RATE_LIMITS__TERMINAL_PER_SECOND", "100000".into()),
            ("APP__RATE_LIMITS__TERMINAL_BURST", "100000".into()),
            ("APP__LOG__LEVEL", "warn,tracing_actix_web=error".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let redemption = Proc::serve("redemption", env);
        let front = opts.front_proxy.then(|| {
            Proxy::start(
                format!("127.0.0.1:{}", redemption.port.expect("a port"))
                    .parse()
                    .expect("an address"),
            )
        });
        let program = voucher_store::pg::programs::create(
            &db.pool,
            &NewProgram {
                name: "故障演练".into(),
                funder_place: PlaceCode::try_from(140_000).expect("a place"),
                province_ratio_bp: BasisPoints::try_from(5000).expect("bp"),
                pool: Fen::from_yuan(200_000_000).expect("fen"),
                city_allocations: BTreeMap::new(),
                county_cofund_bp: None,
                refund_policy: RefundPolicy::Restore,
            },
        )
        .await
        .expect("a program");
        let budget = Fen::from_yuan(1_000_000).expect("fen");
        let campaign = voucher_store::pg::campaigns::create(
            &db.pool,
            &NewCampaign {
                program_id: program.id,
                name: "故障演练 满100减20".into(),
                owner_place: PlaceCode::try_from(140_500).expect("a place"),
                category: Category::Catering,
                rule: Rule::Threshold {
                    min_spend: Fen::from_yuan(100).expect("fen"),
                    off: Fen::from_yuan(20).expect("fen"),
                },
                stock: 1_000_000,
                per_person_limit: 5,
                rounds: vec![Round {
                    round_no: 1,
                    starts_at: Utc::now() - ChronoDuration::days(1),
                    quantity: 1_000_000,
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
            },
        )
        .await
        .expect("a campaign");
        let codes = DynamicCodes::new(&secrets.dynamic_code_secret, 30).expect("dynamic codes");
        let mut rig = RedemptionRig {
            redis_url: redis.url(),
            redis: Mutex::new(redis),
            db,
            secrets,
            redemption,
            pg_proxy,
            front,
            campaign,
            budget: budget.as_i64(),
            terms: Vec::new(),
            codes,
            http: client(),
            _dir: dir,
        };
        for k in 0..opts.terminals.max(2) {
            let term = rig.merchant(&format!("m-fault-{k}"), k).await;
            rig.terms.push(term);
        }
        rig
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.redemption.base()))
            .header("x-api-key", &self.secrets.jincheng_admin.key)
            .json(&body)
            .send()
            .await
            .expect("an admin call");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        body
    }

    async fn merchant(&self, id: &str, n: usize) -> Term {
        let head = format!("91140500MC{:07}", n);
        let credit = format!(
            "{head}{}",
            voucher_core::CreditCode::check_char(&head).expect("a credit code")
        );
        self.admin(
            "/v1/admin/merchants",
            json!({"id": id, "name": format!("故障演练商户 {n}"), "credit_code": credit,
                   "category": "catering", "city": 140500, "settlement_account": "ICBC-6222-0009"}),
        )
        .await;
        self.admin(
            &format!("/v1/admin/merchants/{id}/approvals"),
            json!({"program_id": self.campaign.spec.program_id.0}),
        )
        .await;
        let t = self
            .admin(&format!("/v1/admin/merchants/{id}/terminals"), json!({}))
            .await;
        Term {
            merchant: id.to_owned(),
            key_id: t["key_id"].as_str().expect("key id").to_owned(),
            secret: t["secret"].as_str().expect("secret").to_owned(),
        }
    }

    /// Where terminals send (the front proxy, if any).
    pub fn base(&self) -> String {
        match &self.front {
            Some(p) => format!("http://127.0.0.1:{}", p.port()),
            None => self.redemption.base(),
        }
    }

    /// A fresh signed voucher of the campaign for `person`.
    pub fn voucher(&self, person: &str) -> VoucherClaims {
        let now = Utc::now();
        VoucherClaims {
            voucher_id: VoucherId(Uuid::now_v7()),
            campaign_id: self.campaign.id,
            program_id: self.campaign.spec.program_id,
            person_id: PersonId::parse(person).expect("a person id"),
            place: self.campaign.spec.owner_place,
            category: self.campaign.spec.category,
            rule: self.campaign.spec.rule.clone(),
            valid_from: now - ChronoDuration::hours(1),
            valid_until: now + ChronoDuration::days(7),
        }
    }

    /// `count` vouchers, each presented at one terminal; every `dup_every`-th also at the
    /// next terminal at the same moment (the screenshot passed around; 0: never).
    pub fn sales(&self, prefix: &str, count: usize, dup_every: usize) -> Vec<Sale> {
        let n = self.terms.len();
        let mut out = Vec::new();
        for i in 0..count {
            let voucher = self.voucher(&format!("{prefix}{i:06}"));
            out.push(Sale {
                voucher: voucher.clone(),
                terminal: i % n,
                key: format!("k-{}", Uuid::new_v4().simple()),
            });
            if dup_every > 0 && i % dup_every == 0 {
                out.push(Sale {
                    voucher,
                    terminal: (i + 1) % n,
                    key: format!("k-{}", Uuid::new_v4().simple()),
                });
            }
        }
        out
    }

    fn signed(&self, term: &Term, path: &str, body: &[u8]) -> reqwest::RequestBuilder {
        let headers = voucher_core::signing::sign_request(
            &term.key_id,
            &term.secret,
            "POST",
            path,
            Utc::now().timestamp(),
            body,
        )
        .expect("a signature");
        let mut req = self
            .http
            .post(format!("{}{path}", self.base()))
            .header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(name, value);
        }
        req.body(body.to_vec())
    }

    /// One checkout: the same key and body until a final answer (approved, or declined),
    /// retrying what may heal (503, `IN_FLIGHT`, 5xx, a lost connection) every 100 ms.
    async fn till(&self, sale: Sale, tally: &Tally, log: &Mutex<SaleLog>) {
        let term = &self.terms[sale.terminal];
        let token = token::sign(&self.secrets.voucher_signing, &sale.voucher);
        let code = self
            .codes
            .code(&token, sale.voucher.voucher_id, Utc::now())
            .code;
        let body = serde_json::to_vec(&json!({
            "code": code, "order_amount_fen": 15_000, "order_ref": sale.key,
        }))
        .expect("a body");
        let began = Instant::now();
        let mut attempt = 0u32;
        loop {
            let sent = Instant::now();
            let answer = self
                .signed(term, "/v1/redemptions", &body)
                .header("idempotency-key", &sale.key)
                .send()
                .await;
            let took = sent.elapsed();
            // A 503's `Retry-After`, honoured as the phone and the till do.
            let mut after: Option<u64> = None;
            let retry = match answer {
                Err(e) => {
                    tally.error(transport_code(&e), took);
                    true
                }
                Ok(resp) => {
                    let reply = Reply::read(resp).await;
                    after = reply.retry_after;
                    if let Some(why) = reply.malformed() {
                        lock(log).unexpected.push(why);
                    }
                    let Reply { status, body, .. } = reply;
                    match (status, body["outcome"].as_str()) {
                        (200, Some("approved")) => {
                            tally.ok(took);
                            let id = body["redemption_id"]
                                .as_str()
                                .and_then(|v| Uuid::parse_str(v).ok());
                            let mut log = lock(log);
                            match id {
                                Some(id) => log.acks.push(SaleAck {
                                    key: sale.key.clone(),
                                    redemption_id: id,
                                    voucher_id: sale.voucher.voucher_id.0,
                                }),
                                None => log.unexpected.push(format!("{status} {body}")),
                            }
                            false
                        }
                        // A till that retried for longer than a code lives (a step of at
                        // least 30 s) is told to ask for a fresh one: a final answer.
                        (200, Some("declined"))
                            if body["reason"] == "CODE_STALE"
                                && began.elapsed() > Duration::from_secs(30) =>
                        {
                            tally.refusal("CODE_STALE", took);
                            lock(log).stale.insert(sale.voucher.voucher_id.0);
                            false
                        }
                        (200, Some("declined")) if body["reason"] == "VOUCHER_ALREADY_REDEEMED" => {
                            tally.refusal("VOUCHER_ALREADY_REDEEMED", took);
                            false
                        }
                        (409, _) if body["code"] == "IN_FLIGHT" => {
                            tally.error("IN_FLIGHT", took);
                            true
                        }
                        (502..=504, _) => {
                            tally.error(&code_of(status, &body), took);
                            true
                        }
                        _ => {
                            let code = match body["reason"].as_str() {
                                Some(reason) => format!("declined {reason}"),
                                None => code_of(status, &body),
                            };
                            tally.error(&code, took);
                            lock(log).unexpected.push(format!("{status} {body}"));
                            status >= 500
                        }
                    }
                }
            };
            if !retry {
                return;
            }
            if began.elapsed() > RETRY_FOR {
                lock(log).unfinished += 1;
                return;
            }
            attempt += 1;
            tokio::time::sleep(backoff(attempt, after)).await;
        }
    }

    /// Every approval in PostgreSQL exactly once as the redemption the terminal was told
    /// about, nothing approved that no terminal heard, I3, I4, and (after settling) I6.
    pub async fn verify(&self, log: &SaleLog) -> Verdict {
        let mut v = Verdict::default();
        let rows: Vec<(Uuid, String, Uuid, String)> = sqlx::query_as(
            "SELECT id, order_ref, voucher_id, status FROM redemptions WHERE campaign_id = $1",
        )
        .bind(self.campaign.id.0)
        .fetch_all(&self.db.pool)
        .await
        .expect("the redemptions");
        let mut by_ref: HashMap<&str, Vec<(Uuid, &str)>> = HashMap::new();
        for (id, order_ref, _, status) in &rows {
            by_ref
                .entry(order_ref.as_str())
                .or_default()
                .push((*id, status.as_str()));
        }
        v.acknowledged = log.acks.len() as u64;
        let mut lost = 0;
        for a in &log.acks {
            match by_ref.get(a.key.as_str()).map(Vec::as_slice) {
                Some([(id, "approved")]) if *id == a.redemption_id => {}
                _ => lost += 1,
            }
        }
        v.lost = lost;
        v.check(
            "I5 each approval in PostgreSQL exactly once, as the redemption the terminal heard",
            lost == 0,
            format!("{lost} missing, duplicated or different"),
        );
        let approved = rows.iter().filter(|r| r.3 == "approved").count();
        v.check(
            "exactly once: no approval that no terminal heard",
            log.unfinished > 0 || approved == log.acks.len(),
            format!("{approved} rows, {} approvals heard", log.acks.len()),
        );
        v.check(
            "final answers: every checkout got one",
            log.unfinished == 0,
            log.unfinished,
        );
        v.check(
            "no 5xx: no 500 or unexpected answer",
            log.unexpected.is_empty(),
            log.unexpected
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(" | "),
        );
        let mut per_voucher: HashMap<Uuid, u32> = HashMap::new();
        for (_, _, voucher, status) in &rows {
            if ["approved", "held", "captured"].contains(&status.as_str()) {
                *per_voucher.entry(*voucher).or_default() += 1;
            }
        }
        let twice = per_voucher.values().filter(|n| **n > 1).count();
        v.check("I3 no voucher redeemed twice", twice == 0, twice);
        v.check(
            "exactly once: every presented voucher redeemed once",
            log.unfinished > 0
                || per_voucher.len() as u64
                    + log
                        .stale
                        .iter()
                        .filter(|v| !per_voucher.contains_key(v))
                        .count() as u64
                    == log.vouchers,
            format!(
                "{} of {} ({} given up as CODE_STALE)",
                per_voucher.len(),
                log.vouchers,
                log.stale.len()
            ),
        );
        let (granted, remaining): (i64, Option<i64>) = sqlx::query_as(
            "SELECT coalesce((SELECT sum(discount_fen - reversed_fen) FROM redemptions r
                              WHERE r.campaign_id = $1 AND r.status IN ('approved', 'held', 'captured')), 0)::int8,
                    (SELECT sum(remaining_fen) FROM campaign_budget_buckets b WHERE b.campaign_id = $1)::int8",
        )
        .bind(self.campaign.id.0)
        .fetch_one(&self.db.pool)
        .await
        .expect("the budget");
        v.check(
            "I4 Σ discounts ≤ budget",
            granted <= self.budget,
            format!("{granted} of {}", self.budget),
        );
        if let Some(remaining) = remaining {
            v.check(
                "I4 budget buckets + discounts = budget",
                remaining + granted == self.budget,
                format!("{remaining} + {granted} vs {}", self.budget),
            );
        }
        check_settlement(&self.db, &mut v).await;
        let bad = self.redemption.bad_log_lines();
        v.check(
            "quiet log: no ERROR line or panic",
            bad.is_empty(),
            bad.join("\n"),
        );
        v
    }
}

/// Terminals check out `sales` at `pace`; returns what they were told.
pub async fn checkout(rig: &RedemptionRig, sales: Vec<Sale>, pace: Pace, tally: &Tally) -> SaleLog {
    let vouchers = sales
        .iter()
        .map(|s| s.voucher.voucher_id)
        .collect::<std::collections::HashSet<_>>()
        .len() as u64;
    let log = Mutex::new(SaleLog {
        vouchers,
        ..SaleLog::default()
    });
    paced(sales, pace, |s| rig.till(s, tally, &log)).await;
    log.into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

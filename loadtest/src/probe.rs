//! Readings taken from outside the service: Redis memory (`INFO memory`), the service's
//! resident memory (`/proc/<pid>/status`), sampled while the load runs.

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `used_memory` of the Redis at `url`, bytes.
///
/// # Errors
/// Redis unreachable or the field missing.
pub async fn redis_used_memory(url: &str) -> Result<u64> {
    let client = redis::Client::open(url).context("redis url")?;
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .context("connecting to redis")?;
    let info: redis::InfoDict = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut con)
        .await
        .context("INFO memory")?;
    info.get::<u64>("used_memory")
        .context("INFO memory without used_memory")
}

/// `VmRSS` and `VmHWM` of process `pid`, KiB.
///
/// # Errors
/// The process does not exist (or /proc is not readable).
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// Samples a process's `VmRSS` every 200 ms until stopped; keeps the highest.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    pid: u32,
}

/// What the sampler saw, KiB.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RssReading {
    /// The process.
    pub pid: u32,
    /// Highest `VmRSS` sampled while the load ran.
    pub peak_rss_kib: u64,
    /// `VmHWM` (the kernel's high-water mark of RSS, since the process started) at the end.
    pub hwm_kib: u64,
    /// `VmRSS` at the end.
    pub end_rss_kib: u64,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Ok((rss, _)) = rss_kib(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        RssSampler {
            stop,
            peak,
            task,
            pid,
        }
    }

    /// Stops sampling and reads the final figures.
    ///
    /// # Errors
    /// The process is gone.
    pub async fn finish(self) -> Result<RssReading> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let (end, hwm) = rss_kib(self.pid)?;
        Ok(RssReading {
            pid: self.pid,
            peak_rss_kib: self.peak.load(Ordering::Relaxed).max(end),
            hwm_kib: hwm,
            end_rss_kib: end,
        })
    }
}

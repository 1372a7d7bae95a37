//! The ceiling of any claim on this Redis: a Lua script with only what a claim cannot do
//! without (`redis_minimal.lua`: the stock guard `DECR`, the per-person count guard
//! `HINCRBY`, a voucher record `HSET`, an outbox entry `XADD`), loaded with `SCRIPT LOAD` and
//! driven by Redis's own load generator, `redis-benchmark … EVALSHA <sha> …`, a random person
//! per call (`__rand_int__` over a large keyspace). No rounds, no claim-id replay, no signed
//! record, no HTTP: what is left is the cost of the writes themselves under the Redis's
//! durability (AOF `always` in the benchmark).
//!
//! The script is swept over client counts and pipeline depths (`-c`, `-P`) and the best point
//! is the anchor (`ratios.claims_vs_redis_minimal`). Each point starts from fresh keys under
//! `<prefix>:{minimal}:` with a stock equal to its calls, so the stock never runs out and
//! almost every call is a whole claim (a person drawn twice is refused by the count guard,
//! which a check bounds to under 1 %); claims per second are `redis-benchmark`'s calls per
//! second × claims ÷ calls. After each point the keys are checked (records = outbox entries
//! = stock taken = Σ person counts = claims, nobody over the limit) and deleted.

use super::{tool, Point};
use crate::fixed::{parse_scaled, Fixed};
use crate::invariants::Invariants;
use anyhow::{bail, Context, Result};
use redis::aio::MultiplexedConnection;
use redis::ConnectionAddr;
use serde::Serialize;

/// The script, loaded with `SCRIPT LOAD` before the sweep.
const SCRIPT: &str = include_str!("redis_minimal.lua");

/// Vouchers one person may hold.
const LIMIT: u64 = 1;

/// Where it runs.
#[derive(Debug, Clone)]
pub struct RedisMinimalTarget {
    /// The Redis (`redis://host:port[/db]`; no password).
    pub url: String,
    /// The key prefix (the keys are `<prefix>:{minimal}:…`).
    pub prefix: String,
}

/// The sweep.
#[derive(Debug, Clone)]
pub struct RedisMinimalPlan {
    /// Calls per point (`-n`).
    pub calls: u64,
    /// Client connections (`-c`), each tried with every pipeline depth.
    pub clients: Vec<u32>,
    /// Pipeline depths (`-P`).
    pub pipelines: Vec<u32>,
    /// Persons are drawn from `0..keyspace` (`-r`).
    pub keyspace: u64,
}

/// One point of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct RedisMinimalPoint {
    /// Client connections (`-c`).
    pub clients: u32,
    /// Pipeline depth (`-P`).
    pub pipeline: u32,
    /// Script calls made (`-n`).
    pub calls: u64,
    /// Calls per second, as `redis-benchmark` measured them.
    pub calls_per_sec: u64,
    /// Vouchers the calls created.
    pub claims: u64,
    /// `calls_per_sec × claims ÷ calls`.
    pub claims_per_sec: u64,
    /// Median latency of a call, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// The median in ms.
    pub p50_ms: Fixed,
    /// The 99th percentile in ms.
    pub p99_ms: Fixed,
    /// The checks of the keys after the point.
    pub invariants: Invariants,
    /// Whether this is the sweep's best point.
    pub best: bool,
}

impl Point for RedisMinimalPoint {
    fn per_sec(&self) -> u64 {
        self.claims_per_sec
    }

    fn set_best(&mut self, best: bool) {
        self.best = best;
    }
}

/// The keys of the baseline.
struct Keys {
    stock: String,
    persons: String,
    vouchers: String,
    outbox: String,
    numbers: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        let key = |name: &str| format!("{prefix}:{{minimal}}:{name}");
        Keys {
            stock: key("stock"),
            persons: key("persons"),
            vouchers: key("vouchers"),
            outbox: key("outbox"),
            numbers: key("numbers"),
        }
    }

    fn all(&self) -> [&str; 5] {
        [
            &self.stock,
            &self.persons,
            &self.vouchers,
            &self.outbox,
            &self.numbers,
        ]
    }

    async fn delete(&self, con: &mut MultiplexedConnection) -> Result<()> {
        let _: i64 = redis::cmd("UNLINK")
            .arg(&self.all()[..])
            .query_async(con)
            .await
            .context("deleting the minimal script's keys")?;
        Ok(())
    }
}

/// `redis-benchmark`'s connection options for `url`.
///
/// # Errors
/// The URL does not parse, is not plain TCP, or carries a password.
pub fn connection_args(url: &str) -> Result<Vec<String>> {
    let client = redis::Client::open(url).context("redis url")?;
    let info = client.get_connection_info();
    if info.redis.password.is_some() || info.redis.username.is_some() {
        bail!("the redis-benchmark baseline does not pass credentials: use a Redis without a password");
    }
    let ConnectionAddr::Tcp(host, port) = &info.addr else {
        bail!("the redis-benchmark baseline needs a plain TCP address, got {url}");
    };
    Ok(vec![
        "-h".to_owned(),
        host.clone(),
        "-p".to_owned(),
        port.to_string(),
        "--dbnum".to_owned(),
        info.redis.db.to_string(),
    ])
}

/// The figures of one `redis-benchmark --csv` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvFigures {
    /// Calls per second (truncated).
    pub calls_per_sec: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
}

/// Reads the `--csv` output: a header line (`"test","rps",…,"p50_latency_ms",…`) and one line
/// of figures.
///
/// # Errors
/// The header, the line or one of the three columns is missing or not a number.
pub fn parse_csv(out: &str) -> Result<CsvFigures> {
    let fields = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('"')
            .split("\",\"")
            .map(str::to_owned)
            .collect()
    };
    let mut lines = out.lines().map(str::trim).filter(|l| !l.is_empty());
    let header = lines
        .find(|l| l.starts_with("\"test\""))
        .map(fields)
        .context("redis-benchmark printed no CSV header")?;
    let values = lines
        .next()
        .map(fields)
        .context("redis-benchmark printed no CSV figures")?;
    let column = |name: &str, places: u32| -> Result<u64> {
        let at = header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("redis-benchmark's CSV has no {name} column"))?;
        let text = values
            .get(at)
            .with_context(|| format!("redis-benchmark's CSV line has no {name}"))?;
        parse_scaled(text, places)
            .with_context(|| format!("redis-benchmark's {name} is not a number: {text:?}"))
    };
    Ok(CsvFigures {
        calls_per_sec: column("rps", 0)?,
        p50_us: column("p50_latency_ms", 3)?,
        p99_us: column("p99_latency_ms", 3)?,
    })
}

async fn connect(url: &str) -> Result<MultiplexedConnection> {
    redis::Client::open(url)
        .context("redis url")?
        .get_multiplexed_async_connection()
        .await
        .context("connecting to redis")
}

/// Runs the sweep; the points in order (none when the plan has no calls).
///
/// # Errors
/// Redis is unreachable, `redis-benchmark` is missing or failed, or its output did not parse.
pub async fn run(
    target: &RedisMinimalTarget,
    plan: &RedisMinimalPlan,
) -> Result<Vec<RedisMinimalPoint>> {
    if plan.calls == 0 {
        return Ok(Vec::new());
    }
    let mut con = connect(&target.url).await?;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(SCRIPT)
        .query_async(&mut con)
        .await
        .context("loading the minimal claim script")?;
    let keys = Keys::new(&target.prefix);
    let connection = connection_args(&target.url)?;
    let mut points = Vec::new();
    for &clients in &plan.clients {
        for &pipeline in &plan.pipelines {
            keys.delete(&mut con).await?;
            let _: () = redis::cmd("SET")
                .arg(&keys.stock)
                .arg(plan.calls)
                .query_async(&mut con)
                .await?;
            let mut args = connection.clone();
            args.extend(
                [
                    "-n".to_owned(),
                    plan.calls.to_string(),
                    "-c".to_owned(),
                    clients.to_string(),
                    "-P".to_owned(),
                    pipeline.max(1).to_string(),
                    "-r".to_owned(),
                    plan.keyspace.max(1).to_string(),
                    "--csv".to_owned(),
                    "EVALSHA".to_owned(),
                    sha.clone(),
                    "5".to_owned(),
                ]
                .into_iter()
                .chain(keys.all().iter().map(|k| (*k).to_owned()))
                .chain(["__rand_int__".to_owned(), LIMIT.to_string()]),
            );
            let out = tool::run("redis-benchmark", "redis-tools", &args, None).await?;
            let figures = parse_csv(&out)?;
            let (claims, invariants) = verify(&mut con, &keys, plan.calls).await?;
            keys.delete(&mut con).await?;
            let claims_per_sec = u64::try_from(
                u128::from(figures.calls_per_sec) * u128::from(claims) / u128::from(plan.calls),
            )
            .unwrap_or(u64::MAX);
            points.push(RedisMinimalPoint {
                clients,
                pipeline: pipeline.max(1),
                calls: plan.calls,
                calls_per_sec: figures.calls_per_sec,
                claims,
                claims_per_sec,
                p50_us: figures.p50_us,
                p99_us: figures.p99_us,
                p50_ms: Fixed::ms_from_us(figures.p50_us),
                p99_ms: Fixed::ms_from_us(figures.p99_us),
                invariants,
                best: false,
            });
        }
    }
    Ok(points)
}

/// The claims the point made, and the checks of its keys.
async fn verify(
    con: &mut MultiplexedConnection,
    keys: &Keys,
    calls: u64,
) -> Result<(u64, Invariants)> {
    let claims: Option<u64> = redis::cmd("GET")
        .arg(&keys.numbers)
        .query_async(con)
        .await?;
    let claims = claims.unwrap_or(0);
    let remaining: Option<u64> = redis::cmd("GET").arg(&keys.stock).query_async(con).await?;
    let records: u64 = redis::cmd("HLEN")
        .arg(&keys.vouchers)
        .query_async(con)
        .await?;
    let outbox: u64 = redis::cmd("XLEN")
        .arg(&keys.outbox)
        .query_async(con)
        .await?;
    let counts: Vec<u64> = redis::cmd("HVALS")
        .arg(&keys.persons)
        .query_async(con)
        .await?;
    let mut inv = Invariants::default();
    inv.equal("voucher records = claims", claims, records);
    inv.equal("outbox entries = claims", claims, outbox);
    inv.equal(
        "stock taken = claims",
        claims,
        calls.saturating_sub(remaining.unwrap_or(0)),
    );
    inv.equal(
        "per-person counts add up to claims",
        claims,
        counts.iter().sum(),
    );
    inv.equal(
        "persons over the per-person limit",
        0,
        u64::try_from(counts.iter().filter(|&&n| n > LIMIT).count()).unwrap_or(u64::MAX),
    );
    inv.holds(
        "claims ≥ 99 % of calls (each call a whole claim)",
        claims * 100 >= calls * 99,
        &format!("≥ {}", calls * 99 / 100),
        claims.to_string(),
    );
    Ok((claims, inv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_figures_are_read_by_column_name() {
        let out = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
            \"EVALSHA 4cff 5 a b c d e __rand_int__ 1\",\"9302.33\",\"6.602\",\"0.928\",\"6.559\",\"12.351\",\"19.519\",\"25.231\"\n";
        let f = parse_csv(out).unwrap();
        assert_eq!(
            f,
            CsvFigures {
                calls_per_sec: 9_302,
                p50_us: 6_559,
                p99_us: 19_519
            }
        );
    }

    #[test]
    fn output_without_figures_is_an_error() {
        assert!(parse_csv("").is_err());
        assert!(parse_csv("\"test\",\"rps\"\n").is_err());
        assert!(parse_csv(
            "\"test\",\"rps\",\"p50_latency_ms\",\"p99_latency_ms\"\n\"x\",\"-nan\",\"1\",\"2\""
        )
        .is_err());
    }

    #[test]
    fn redis_benchmark_is_pointed_at_the_urls_host_port_and_database() {
        assert_eq!(
            connection_args("redis://127.0.0.1:56390/2").unwrap(),
            ["-h", "127.0.0.1", "-p", "56390", "--dbnum", "2"]
        );
        assert!(connection_args("redis://:secret@127.0.0.1:56390").is_err());
    }
}

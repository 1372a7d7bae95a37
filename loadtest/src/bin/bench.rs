//! The benchmark: `bench rush`, `bench baseline-redis`, `bench baseline-pg`, `bench checkout`,
//! `bench mixed` run one scenario; `bench standard` runs them all, with the baselines swept
//! (`redis-benchmark` and `pgbench` included), and writes the reports
//! (`deploy/local/bench.sh` starts everything and runs it); `bench readme` renders a report
//! into the README (or checks that the README shows it). Exits non-zero when an invariant
//! broke or, with `readme --check`, when the README differs.

use anyhow::{Context, Result};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use loadtest::client::admin_key;
use loadtest::driver::Pace;
use loadtest::readme;
use loadtest::residents::load_idp_key;
use loadtest::scenario::baseline_pg::{self, PgTarget};
use loadtest::scenario::baseline_redis::{self, RedisTarget};
use loadtest::scenario::checkout::{self, CheckoutTarget, CheckoutWorkload};
use loadtest::scenario::mixed;
use loadtest::scenario::pg_redeem::{PgRedeemPlan, PgRedeemTarget};
use loadtest::scenario::redis_minimal::{RedisMinimalPlan, RedisMinimalTarget};
use loadtest::scenario::rush::{self, RushTarget, CITY, PROVINCE};
use loadtest::scenario::Workload;
use loadtest::standard::{
    self, announce, announce_checkout, require_checkout_invariants, require_invariants,
    CheckoutPlan, Standard, BASELINE_CAMPAIGN,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "The rush benchmark: HTTP claims against the issuance service and two baselines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Residents claim over HTTP.
    Rush {
        #[command(flatten)]
        service: Service,
        #[command(flatten)]
        load: Load,
    },
    /// The service's claim script straight at Redis.
    BaselineRedis {
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        load: Load,
    },
    /// One PostgreSQL transaction per claim.
    BaselinePg {
        #[command(flatten)]
        pg: PgArgs,
        #[command(flatten)]
        load: Load,
    },
    /// Terminals redeem claimed vouchers at the redemption service.
    Checkout {
        #[command(flatten)]
        service: Service,
        #[command(flatten)]
        redemption: RedemptionArgs,
        #[command(flatten)]
        load: CheckoutLoad,
    },
    /// A rush (`--stock`, `--concurrency`, …) while terminals redeem.
    Mixed {
        #[command(flatten)]
        service: Service,
        #[command(flatten)]
        redemption: RedemptionArgs,
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        checkout: CheckoutLoad,
    },
    /// All of them, reports written to `<reports-dir>/<name>.{json,md,png}`.
    Standard(Box<StandardArgs>),
    /// Renders a report's tables into the README between `<!-- bench:begin -->` and
    /// `<!-- bench:end -->`, and names the report in `LATEST` beside it.
    Readme {
        /// The report's JSON (e.g. loadtest/reports/standard-….json).
        #[arg(long)]
        report: PathBuf,
        /// The README.
        #[arg(long, default_value = "README.md")]
        readme: PathBuf,
        /// Change nothing; exit non-zero when the README differs from what the report
        /// renders.
        #[arg(long)]
        check: bool,
    },
}

/// The redemption service under test.
#[derive(Args, Debug)]
struct RedemptionArgs {
    /// Redemption service base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    redemption: String,
    /// Its process id (to read its memory).
    #[arg(long)]
    redemption_pid: Option<u32>,
    /// The services' dynamic-code step, seconds.
    #[arg(long, default_value_t = 30)]
    code_step_secs: u32,
}

/// A checkout's workload.
#[derive(Args, Debug, Clone)]
struct CheckoutLoad {
    /// Threshold vouchers, each redeemed once.
    #[arg(long, default_value_t = 40_000)]
    vouchers: usize,
    /// Home-furnishing entitlements, each spent by two purchases at once.
    #[arg(long, default_value_t = 2_000)]
    entitlements: usize,
    /// Every n-th voucher is also presented at another merchant's terminal at once (0: never).
    #[arg(long, default_value_t = 20)]
    duplicate_every: usize,
    /// Merchants (a quarter of them home-furnishing).
    #[arg(long, default_value_t = 16)]
    merchants: usize,
    /// Terminals in all: the closed loop's concurrency, one connection each.
    #[arg(long, default_value_t = 128)]
    terminals: usize,
    /// Open loop at this many redemptions per second (default: closed loop).
    #[arg(long)]
    checkout_rate: Option<u64>,
    /// Stop issuing after this many seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    checkout_max_secs: u64,
}

impl CheckoutLoad {
    fn workload(&self) -> CheckoutWorkload {
        CheckoutWorkload {
            vouchers: self.vouchers,
            entitlements: self.entitlements,
            duplicate_every: self.duplicate_every,
            merchants: self.merchants,
            terminals: self.terminals,
            pace: match self.checkout_rate {
                Some(rate_per_sec) => Pace::Open {
                    rate_per_sec,
                    max_in_flight: self.terminals,
                },
                None => Pace::Closed {
                    concurrency: self.terminals,
                },
            },
            max_secs: self.checkout_max_secs,
        }
    }
}

impl RedemptionArgs {
    fn target(&self, service: &Service) -> Result<CheckoutTarget> {
        Ok(CheckoutTarget {
            issuance: service.target()?,
            redemption_url: self.redemption.clone(),
            redemption_pid: self.redemption_pid,
            secrets_dir: service.secrets_dir.clone(),
            code_step_secs: self.code_step_secs,
            clock: Arc::new(voucher_core::SystemClock),
        })
    }
}

/// The service under test.
#[derive(Args, Debug)]
struct Service {
    /// Issuance service base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    issuance: String,
    /// Secrets directory (idp-signing.json, admin-keys.plain.json).
    #[arg(long, default_value = ".local/secrets")]
    secrets_dir: PathBuf,
    /// The service's Redis.
    #[arg(long, default_value = "redis://127.0.0.1:56379")]
    redis_url: String,
    /// The service's Redis key prefix.
    #[arg(long, default_value = "vp")]
    redis_prefix: String,
    /// The service's database.
    #[arg(long)]
    pg_url: String,
    /// The service's process id (to read its memory).
    #[arg(long)]
    issuance_pid: Option<u32>,
}

#[derive(Args, Debug)]
struct RedisArgs {
    /// The Redis to drive.
    #[arg(long = "baseline-redis-url", default_value = "redis://127.0.0.1:56379")]
    url: String,
    /// Key prefix of the baseline's campaign.
    #[arg(long = "baseline-redis-prefix", default_value = "bench")]
    prefix: String,
    /// Multiplexed connections.
    #[arg(long = "baseline-redis-connections", default_value_t = 8)]
    connections: usize,
}

#[derive(Args, Debug)]
struct PgArgs {
    /// A maintenance URL of the cluster.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:55432/postgres")]
    pg_admin_url: String,
    /// The database the baseline (re)creates.
    #[arg(long, default_value = "vp_bench_pg_baseline")]
    pg_baseline_db: String,
    /// Connections in its pool, at most (the cluster's max_connections, 700 with
    /// `deploy/local/postgres.sh`, is shared with the services; a sweep point asking for more
    /// keeps its claims in flight over this many).
    #[arg(long, default_value_t = 512)]
    pg_pool: u32,
}

/// One scenario's workload.
#[derive(Args, Debug, Clone)]
struct Load {
    /// Vouchers in the campaign.
    #[arg(long, default_value_t = 20_000)]
    stock: u32,
    /// Residents (default: stock + 10 %).
    #[arg(long)]
    residents: Option<usize>,
    /// Phones per resident.
    #[arg(long, default_value_t = 2)]
    devices: usize,
    /// Per-person limit.
    #[arg(long, default_value_t = 1)]
    limit: u32,
    /// Requests in flight (closed loop), or most in flight (open loop).
    #[arg(long, default_value_t = 512)]
    concurrency: usize,
    /// Open loop at this many attempts per second (default: closed loop).
    #[arg(long)]
    rate: Option<u64>,
    /// Stop issuing after this many seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    max_secs: u64,
}

impl Load {
    fn workload(&self) -> Workload {
        let stock = usize::try_from(self.stock).unwrap_or(usize::MAX);
        Workload {
            stock: self.stock,
            residents: self.residents.unwrap_or(stock + stock / 10),
            devices: self.devices,
            per_person_limit: self.limit,
            pace: match self.rate {
                Some(rate_per_sec) => Pace::Open {
                    rate_per_sec,
                    max_in_flight: self.concurrency,
                },
                None => Pace::Closed {
                    concurrency: self.concurrency,
                },
            },
            max_secs: self.max_secs,
        }
    }
}

#[derive(Args, Debug)]
struct StandardArgs {
    /// Report name (file stem); default `standard-<UTC timestamp>`.
    #[arg(long)]
    name: Option<String>,
    /// Where the reports go.
    #[arg(long, default_value = "loadtest/reports")]
    reports_dir: PathBuf,
    #[command(flatten)]
    service: Service,
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    pg: PgArgs,
    /// Requests in flight in every scenario.
    #[arg(long, default_value_t = 512)]
    concurrency: usize,
    /// Open loop for the HTTP rush at this rate (default: closed loop).
    #[arg(long)]
    rate: Option<u64>,
    /// Stock of the HTTP rush (sized for ~20–30 s of claiming on a 2-core machine).
    #[arg(long, default_value_t = 150_000)]
    rush_stock: u32,
    /// Stock of the raw-script baseline (its live vouchers are the Redis memory measurement;
    /// 1000000 for the million-claim figure).
    #[arg(long, default_value_t = 300_000)]
    redis_stock: u32,
    /// Stock of the PostgreSQL baseline.
    #[arg(long, default_value_t = 100_000)]
    pg_stock: u32,
    /// Each point of the PostgreSQL baseline stops issuing after this many seconds.
    #[arg(long, default_value_t = 10)]
    pg_max_secs: u64,
    /// Claims in flight at each point of the PostgreSQL baseline's sweep (the best is the
    /// baseline).
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,512")]
    pg_sweep: Vec<usize>,
    /// The open-loop rush's arrival rate, attempts/s (0: not run). Its p99 is the p99 target.
    #[arg(long, default_value_t = 10_000)]
    open_rate: u64,
    /// The open-loop rush stops issuing after this many seconds.
    #[arg(long, default_value_t = 15)]
    open_secs: u64,
    /// Stock of the open-loop rush (default: rate × seconds ÷ 2, about what half of the
    /// attempts — the first phone of each resident — claim).
    #[arg(long)]
    open_stock: Option<u32>,
    /// Script calls per point of the redis-benchmark sweep (0: not run).
    #[arg(long, default_value_t = 200_000)]
    redis_benchmark_calls: u64,
    /// redis-benchmark client counts (`-c`).
    #[arg(long, value_delimiter = ',', default_value = "64,256,512")]
    redis_benchmark_clients: Vec<u32>,
    /// redis-benchmark pipeline depths (`-P`), each tried with every client count.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    redis_benchmark_pipelines: Vec<u32>,
    /// Persons are drawn from this many (`-r`).
    #[arg(long, default_value_t = 100_000_000)]
    redis_benchmark_keyspace: u64,
    /// Key prefix of the minimal script (keys `<prefix>:{minimal}:…`).
    #[arg(long, default_value = "bench")]
    redis_benchmark_prefix: String,
    /// Seconds per point of the pgbench sweep (0: not run).
    #[arg(long, default_value_t = 10)]
    pgbench_secs: u32,
    /// pgbench client counts (`-c`), one point each.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
    pgbench_clients: Vec<u32>,
    /// pgbench threads (`-j`).
    #[arg(long, default_value_t = 2)]
    pgbench_threads: u32,
    /// Vouchers pre-filled for pgbench.
    #[arg(long, default_value_t = 300_000)]
    pgbench_vouchers: u32,
    /// The database pgbench (re)creates.
    #[arg(long, default_value = "vp_bench_pg_redeem")]
    pgbench_db: String,
    /// Phones per resident.
    #[arg(long, default_value_t = 2)]
    devices: usize,
    /// Skip the checkout and mixed runs (claims only, no redemption service needed).
    #[arg(long)]
    no_checkout: bool,
    #[command(flatten)]
    redemption: RedemptionArgs,
    /// The checkout on its own (its `--checkout-max-secs` defaults to 0; the standard run
    /// caps it with `--standard-checkout-secs`).
    #[command(flatten)]
    checkout: CheckoutLoad,
    /// The standard checkout stops issuing after this many seconds.
    #[arg(long, default_value_t = 20)]
    standard_checkout_secs: u64,
    /// Stock of the mixed run's rush.
    #[arg(long, default_value_t = 30_000)]
    mixed_stock: u32,
    /// Connections of the mixed run's rush.
    #[arg(long, default_value_t = 256)]
    mixed_concurrency: usize,
    /// Threshold vouchers redeemed during the mixed run's rush.
    #[arg(long, default_value_t = 20_000)]
    mixed_vouchers: usize,
    /// Entitlements spent during the mixed run's rush.
    #[arg(long, default_value_t = 1_000)]
    mixed_entitlements: usize,
}

impl Service {
    fn target(&self) -> Result<RushTarget> {
        Ok(RushTarget {
            base_url: self.issuance.clone(),
            province_key: admin_key(&self.secrets_dir, PROVINCE)?,
            city_key: admin_key(&self.secrets_dir, CITY)?,
            idp_key: load_idp_key(&self.secrets_dir)?,
            redis_url: self.redis_url.clone(),
            redis_prefix: self.redis_prefix.clone(),
            pg_url: self.pg_url.clone(),
            pid: self.issuance_pid,
            // A second ago, so the round is open by the service's clock too.
            now: Utc::now() - chrono::Duration::seconds(1),
            drain_timeout: Duration::from_secs(120),
        })
    }
}

impl RedisArgs {
    fn target(&self) -> RedisTarget {
        RedisTarget {
            url: self.url.clone(),
            prefix: self.prefix.clone(),
            connections: self.connections,
        }
    }
}

impl PgArgs {
    fn target(&self) -> PgTarget {
        PgTarget {
            admin_url: self.pg_admin_url.clone(),
            database: self.pg_baseline_db.clone(),
            pool: self.pg_pool,
        }
    }
}

fn load(stock: u32, a: &StandardArgs, rate: Option<u64>, max_secs: u64) -> Workload {
    Load {
        stock,
        residents: None,
        devices: a.devices,
        limit: 1,
        concurrency: a.concurrency,
        rate,
        max_secs,
    }
    .workload()
}

#[tokio::main]
async fn main() -> Result<()> {
    let report = match Cli::parse().command {
        Command::Rush { service, load } => rush::run(&service.target()?, &load.workload()).await?,
        Command::BaselineRedis { redis, load } => {
            baseline_redis::run(&redis.target(), &load.workload(), BASELINE_CAMPAIGN).await?
        }
        Command::BaselinePg { pg, load } => {
            baseline_pg::run(&pg.target(), &load.workload()).await?
        }
        Command::Checkout {
            service,
            redemption,
            load,
        } => {
            let report = checkout::run(&redemption.target(&service)?, &load.workload()).await?;
            announce_checkout(&report);
            println!(
                "{}",
                serde_json::to_string_pretty(&report).context("report")?
            );
            return require_checkout_invariants(&[&report]);
        }
        Command::Mixed {
            service,
            redemption,
            load,
            checkout,
        } => {
            let report = mixed::run(
                &redemption.target(&service)?,
                &load.workload(),
                &checkout.workload(),
            )
            .await?;
            announce(&report.rush);
            announce_checkout(&report.checkout);
            println!(
                "{}",
                serde_json::to_string_pretty(&report).context("report")?
            );
            require_invariants(&[&report.rush])?;
            return require_checkout_invariants(&[&report.checkout]);
        }
        Command::Readme {
            report,
            readme: path,
            check,
        } => {
            return match readme::update(&report, &path, check)? {
                readme::Outcome::UpToDate => {
                    eprintln!("{} shows {}", path.display(), report.display());
                    Ok(())
                }
                readme::Outcome::Written => {
                    eprintln!("wrote {} from {}", path.display(), report.display());
                    Ok(())
                }
                readme::Outcome::Differs {
                    line,
                    found,
                    expected,
                } => anyhow::bail!(
                    "{} does not show {} (line {line}):\n  README: {found}\n  report: {expected}\nrun: bench readme --report {} --readme {}",
                    path.display(),
                    report.display(),
                    report.display(),
                    path.display()
                ),
            };
        }
        Command::Standard(a) => {
            let name = a
                .name
                .clone()
                .unwrap_or_else(|| format!("standard-{}", Utc::now().format("%Y%m%dT%H%M%SZ")));
            let s = Standard {
                name,
                reports_dir: a.reports_dir.clone(),
                rush_target: a.service.target()?,
                rush: load(a.rush_stock, &a, a.rate, 0),
                rush_open_loop: (a.open_rate > 0).then(|| {
                    let stock = a.open_stock.unwrap_or_else(|| {
                        u32::try_from(a.open_rate.saturating_mul(a.open_secs) / 2)
                            .unwrap_or(u32::MAX)
                    });
                    load(stock, &a, Some(a.open_rate), a.open_secs)
                }),
                redis_target: a.redis.target(),
                redis: load(a.redis_stock, &a, None, 0),
                redis_minimal_target: RedisMinimalTarget {
                    url: a.redis.url.clone(),
                    prefix: a.redis_benchmark_prefix.clone(),
                },
                redis_minimal: RedisMinimalPlan {
                    calls: a.redis_benchmark_calls,
                    clients: a.redis_benchmark_clients.clone(),
                    pipelines: a.redis_benchmark_pipelines.clone(),
                    keyspace: a.redis_benchmark_keyspace,
                },
                pg_target: a.pg.target(),
                pg: load(a.pg_stock, &a, None, a.pg_max_secs),
                pg_sweep: a.pg_sweep.clone(),
                pg_redeem_target: PgRedeemTarget {
                    admin_url: a.pg.pg_admin_url.clone(),
                    database: a.pgbench_db.clone(),
                },
                pg_redeem: PgRedeemPlan {
                    vouchers: a.pgbench_vouchers,
                    clients: a.pgbench_clients.clone(),
                    threads: a.pgbench_threads,
                    secs: a.pgbench_secs,
                },
                checkout: if a.no_checkout {
                    None
                } else {
                    let mut alone = a.checkout.workload();
                    if alone.max_secs == 0 {
                        alone.max_secs = a.standard_checkout_secs;
                    }
                    let mut mixed_checkout = alone;
                    (mixed_checkout.vouchers, mixed_checkout.entitlements) =
                        (a.mixed_vouchers, a.mixed_entitlements);
                    let mut mixed_rush = load(a.mixed_stock, &a, None, a.standard_checkout_secs);
                    mixed_rush.pace = Pace::Closed {
                        concurrency: a.mixed_concurrency,
                    };
                    Some(CheckoutPlan {
                        target: a.redemption.target(&a.service)?,
                        alone,
                        mixed_rush,
                        mixed_checkout,
                    })
                },
            };
            let report = standard::run(&s).await?;
            println!("{}", report.markdown());
            return Ok(());
        }
    };
    announce(&report);
    println!(
        "{}",
        serde_json::to_string_pretty(&report).context("report")?
    );
    require_invariants(&[&report])
}

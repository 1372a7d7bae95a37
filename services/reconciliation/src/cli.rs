//! The command line. Every subcommand connects, does one thing, prints what it did, and
//! returns an exit code: 0 done (and, for `check`, clean), 1 `check` found differences,
//! 2 an error (printed with its cause).
//!
//! Connection settings are shared with the services: `APP__POSTGRES__URL`,
//! `APP__REDIS__URL`, `APP__REDIS__PREFIX` (default `vp`), `APP__SECRETS_DIR` (default
//! `.local/secrets`, holding `admin-keys.json`).

use crate::auth::admin_from_files;
use crate::check::{check, CheckOptions};
use crate::error::ReconError;
use crate::period::Period;
use crate::review::{review, ReviewOptions};
use crate::settle::{settle, SettleRequest};
use crate::workflow::{advance, view, Status};
use crate::{bench, rebuild, report};
use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::path::PathBuf;
use std::process::ExitCode;
use voucher_store::HotStore;

/// The reconciliation job of the voucher platform.
#[derive(Debug, Parser)]
#[command(name = "reconciliation", version, about)]
pub struct Cli {
    /// PostgreSQL URL.
    #[arg(
        long,
        env = "APP__POSTGRES__URL",
        global = true,
        default_value = "postgres://postgres@127.0.0.1:55432/postgres"
    )]
    pub database_url: String,
    /// Redis URL (check, rebuild).
    #[arg(
        long,
        env = "APP__REDIS__URL",
        global = true,
        default_value = "redis://127.0.0.1:56379"
    )]
    pub redis_url: String,
    /// Redis key prefix.
    #[arg(long, env = "APP__REDIS__PREFIX", global = true, default_value = "vp")]
    pub redis_prefix: String,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// A period on the command line: `--from`/`--to` days (Beijing); default yesterday.
#[derive(Debug, Clone, Args)]
pub struct PeriodArgs {
    /// First day (YYYY-MM-DD, Beijing). Default: yesterday.
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last day, included. Default: `--from`.
    #[arg(long)]
    pub to: Option<NaiveDate>,
}

impl PeriodArgs {
    /// The period meant.
    ///
    /// # Errors
    /// `--to` before `--from`.
    pub fn period(&self) -> Result<Period, ReconError> {
        match (self.from, self.to) {
            (None, None) => Ok(Period::yesterday(Utc::now())),
            (Some(f), None) => Ok(Period::day(f)),
            (None, Some(t)) => Ok(Period::day(t)),
            (Some(f), Some(t)) => Period::new(f, t).map_err(ReconError::Usage),
        }
    }
}

/// Who acts: an administrator's API key in a file.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// File holding the administrator's API key (the key the issuance service accepts in
    /// `X-Api-Key`).
    #[arg(long)]
    pub api_key_file: PathBuf,
    /// Directory of `admin-keys.json` (hashed keys).
    #[arg(long, env = "APP__SECRETS_DIR", default_value = ".local/secrets")]
    pub secrets_dir: PathBuf,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Applies the store's migrations.
    Migrate,
    /// Migrates, then serves the finance console and its API (default port 8082) until
    /// SIGINT/SIGTERM. Settings: the platform's `APP__…` keys (see `serve::settings`).
    Serve {
        /// A YAML settings file (environment variables `APP__…` override it).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Settles a period and writes its reports.
    Settle {
        /// The period.
        #[command(flatten)]
        period: PeriodArgs,
        /// Where the reports go (cities.csv, merchants.csv, programs.csv, report.json, summary.txt).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Who runs the job (recorded).
        #[arg(long, env = "USER", default_value = "reconciliation-job")]
        actor: String,
    },
    /// Prints (and writes) the reports of a settled period, optionally as one city's officer.
    Report {
        /// The period.
        #[command(flatten)]
        period: PeriodArgs,
        /// Where the reports go.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Read as this administrator (a city officer sees only its city).
        #[arg(long)]
        api_key_file: Option<PathBuf>,
        /// Directory of `admin-keys.json`.
        #[arg(long, env = "APP__SECRETS_DIR", default_value = ".local/secrets")]
        secrets_dir: PathBuf,
    },
    /// Moves a batch one step: city_confirmed (city officer), province_confirmed, paid (province).
    Confirm {
        /// The batch.
        #[arg(long)]
        batch: i64,
        /// The status to reach.
        #[arg(long, value_enum)]
        to: Status,
        /// Who.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Advances a program's money to a merchant before its sales (预拨资金; a province
    /// officer). Idempotent on `--reference`.
    Advance {
        /// The program.
        #[arg(long)]
        program: i64,
        /// The merchant.
        #[arg(long)]
        merchant: String,
        /// How much, fen.
        #[arg(long)]
        amount_fen: i64,
        /// The payment's reference.
        #[arg(long)]
        reference: String,
        /// Who.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Shows a batch and its steps (only to an administrator covering its city).
    Show {
        /// The batch.
        #[arg(long)]
        batch: i64,
        /// Who.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Cross-checks Redis against PostgreSQL; exit code 1 when they differ.
    Check {
        /// Outbox events per campaign still tolerated (a live system persists continuously).
        #[arg(long, default_value_t = 0)]
        max_outbox_lag: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rebuilds Redis hot state from PostgreSQL, then checks. Safe while issuance serves a
    /// Redis that lost everything (its claims wait for the rebuild); otherwise stop issuance
    /// and let the outbox drain first.
    Rebuild {
        /// How long the check after the rebuild may wait for claims made meanwhile to be
        /// persisted (a serving issuance keeps writing) before it reports a difference.
        #[arg(long, default_value_t = 20)]
        settle_secs: u64,
    },
    /// Lists suspicious redemption patterns of a period, ranked, with evidence.
    Review {
        /// The period.
        #[command(flatten)]
        period: PeriodArgs,
        /// Write `review.json` and `review.txt` here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fills the database with a period of generated redemptions (benchmark): one day, or
    /// `--days` days from `--day` (a month: `--days 31`). Meant for a fresh database.
    GenBench {
        /// Redemptions in the period, spread evenly over it.
        #[arg(long, default_value_t = 1_000_000)]
        redemptions: i64,
        /// Merchants (at least 12: one per campaign).
        #[arg(long, default_value_t = 2_400)]
        merchants: i64,
        /// The first day (Beijing).
        #[arg(long)]
        day: NaiveDate,
        /// Days in the period.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
    },
}

async fn pg(url: &str) -> Result<PgPool, ReconError> {
    Ok(PgPoolOptions::new().max_connections(4).connect(url).await?)
}

async fn redis(cli: &Cli) -> Result<HotStore, ReconError> {
    Ok(HotStore::connect(&cli.redis_url, &cli.redis_prefix).await?)
}

fn write_file(path: PathBuf, text: &str) -> Result<(), ReconError> {
    std::fs::write(&path, text).map_err(|source| ReconError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Who runs a command, for the records: `$USER`, else `reconciliation-job`.
fn cli_actor() -> String {
    std::env::var("USER").unwrap_or_else(|_| "reconciliation-job".to_owned())
}

/// Runs the parsed command line.
///
/// # Errors
/// Whatever the command met; the caller prints it.
pub async fn run(cli: Cli) -> Result<ExitCode, ReconError> {
    match &cli.command {
        Command::Migrate => {
            let pool = pg(&cli.database_url).await?;
            voucher_store::pg::migrate(&pool).await?;
            println!("migrations applied");
        }
        Command::Serve { config } => {
            use voucher_platform::settings::ServiceSettings as _;
            let settings = crate::serve::settings::Settings::load(config.as_deref())
                .map_err(|e| ReconError::Usage(e.to_string()))?;
            voucher_platform::telemetry::init(&settings.log);
            let pool = pg(settings.postgres.url()).await?;
            voucher_store::pg::migrate(&pool).await?;
            pool.close().await;
            let app = crate::serve::Application::build(
                settings,
                std::sync::Arc::new(voucher_core::SystemClock),
            )
            .await
            .map_err(|e| ReconError::Usage(format!("{e:#}")))?;
            app.run_until_stopped()
                .await
                .map_err(|e| ReconError::Usage(format!("{e:#}")))?;
        }
        Command::Settle { period, out, actor } => {
            let pool = pg(&cli.database_url).await?;
            let period = period.period()?;
            let outcome = settle(
                &pool,
                &SettleRequest {
                    period,
                    actor: actor.clone(),
                    now: Utc::now(),
                },
            )
            .await?;
            for (program, run) in &outcome.created {
                eprintln!("settled program {program} for {period}: run {run}");
            }
            for (program, run) in &outcome.existing {
                eprintln!("program {program} was already settled for {period} (run {run}): nothing written");
            }
            let r = report::load(&pool, &period, None).await?;
            print!("{}", report::summary(&r));
            if let Some(dir) = out {
                for path in report::write_all(&r, dir)? {
                    eprintln!("wrote {}", path.display());
                }
            }
        }
        Command::Report {
            period,
            out,
            api_key_file,
            secrets_dir,
        } => {
            let pool = pg(&cli.database_url).await?;
            let reader = api_key_file
                .as_ref()
                .map(|f| admin_from_files(secrets_dir, f))
                .transpose()?;
            let r = report::load(&pool, &period.period()?, reader.as_ref()).await?;
            print!("{}", report::summary(&r));
            if let Some(dir) = out {
                for path in report::write_all(&r, dir)? {
                    eprintln!("wrote {}", path.display());
                }
            }
        }
        Command::Confirm { batch, to, admin } => {
            let who = admin_from_files(&admin.secrets_dir, &admin.api_key_file)?;
            let pool = pg(&cli.database_url).await?;
            advance(&pool, *batch, *to, &who, Utc::now()).await?;
            println!("batch {batch} is now {} (by {})", to.as_str(), who.name);
        }
        Command::Advance {
            program,
            merchant,
            amount_fen,
            reference,
            admin,
        } => {
            let who = admin_from_files(&admin.secrets_dir, &admin.api_key_file)?;
            let pool = pg(&cli.database_url).await?;
            let a = crate::advances::advance(
                &pool,
                &who,
                &crate::advances::AdvanceRequest {
                    program_id: *program,
                    merchant_id: merchant.clone(),
                    amount_fen: *amount_fen,
                    reference: reference.clone(),
                },
                Utc::now(),
            )
            .await?;
            println!(
                "advance {} of {} to merchant {} under program {} ({}){}",
                a.id,
                crate::money::yuan(a.amount_fen),
                a.merchant_id,
                a.program_id,
                a.reference,
                if a.created {
                    ""
                } else {
                    ": already made, nothing written"
                }
            );
        }
        Command::Show { batch, admin } => {
            let who = admin_from_files(&admin.secrets_dir, &admin.api_key_file)?;
            let pool = pg(&cli.database_url).await?;
            let v = view(&pool, *batch, &who).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| ReconError::Encode(e.to_string()))?
            );
        }
        Command::Check {
            max_outbox_lag,
            json,
        } => {
            let pool = pg(&cli.database_url).await?;
            let hot = redis(&cli).await?;
            let r = check(
                &pool,
                &hot,
                CheckOptions {
                    max_outbox_lag: *max_outbox_lag,
                },
            )
            .await?;
            // The console's operations glance shows the last check, the cron's included.
            if let Err(e) = crate::check::record(&pool, &cli_actor(), &r, Utc::now()).await {
                eprintln!("reconciliation: the check's result was not recorded: {e}");
            }
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&r)
                        .map_err(|e| ReconError::Encode(e.to_string()))?
                );
            } else {
                print!("{}", r.render());
            }
            if !r.is_clean() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Rebuild { settle_secs } => {
            let pool = pg(&cli.database_url).await?;
            let hot = redis(&cli).await?;
            let r = rebuild::rebuild(&pool, &hot, Utc::now()).await?;
            println!(
                "rebuilt {} campaigns ({} claim records, {} person counts)",
                r.campaigns, r.claims, r.persons
            );
            // Claims that resumed after the rebuild are in Redis before the persister writes
            // them: the check is clean once the record has caught up.
            let settle = std::time::Instant::now() + std::time::Duration::from_secs(*settle_secs);
            let c = loop {
                let c = check(&pool, &hot, CheckOptions::default()).await?;
                if c.is_clean() || std::time::Instant::now() >= settle {
                    break c;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            };
            print!("{}", c.render());
            if !c.is_clean() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Review { period, out } => {
            let pool = pg(&cli.database_url).await?;
            let period = period.period()?;
            let findings = review(&pool, &period, &ReviewOptions::default()).await?;
            let text = crate::review::render(&period, &findings);
            print!("{text}");
            if let Some(dir) = out {
                std::fs::create_dir_all(dir).map_err(|source| ReconError::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
                let json = serde_json::to_string_pretty(&findings)
                    .map_err(|e| ReconError::Encode(e.to_string()))?;
                write_file(dir.join("review.json"), &json)?;
                write_file(dir.join("review.txt"), &text)?;
            }
        }
        Command::GenBench {
            redemptions,
            merchants,
            day,
            days,
        } => {
            let pool = pg(&cli.database_url).await?;
            let started = std::time::Instant::now();
            let spec = bench::BenchSpec {
                redemptions: *redemptions,
                merchants: *merchants,
                day: *day,
                days: *days,
            };
            let g = bench::generate(&pool, &spec).await?;
            println!(
                "generated program {}: {redemptions} redemptions by {merchants} merchants in {} in {} ms \
                 (copy {} ms, indexes {} ms, vacuum {} ms)",
                g.program,
                spec.period()?,
                started.elapsed().as_millis(),
                g.copy.as_millis(),
                g.indexes.as_millis(),
                g.vacuum.as_millis()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_takes_the_status_names_the_reports_print() {
        for (arg, status) in [
            ("city_confirmed", crate::workflow::Status::CityConfirmed),
            (
                "province_confirmed",
                crate::workflow::Status::ProvinceConfirmed,
            ),
            ("paid", crate::workflow::Status::Paid),
        ] {
            let cli = Cli::try_parse_from([
                "reconciliation",
                "confirm",
                "--batch",
                "1",
                "--to",
                arg,
                "--api-key-file",
                "key",
            ])
            .unwrap_or_else(|e| panic!("{arg}: {e}"));
            match cli.command {
                Command::Confirm { to, .. } => assert_eq!(to, status),
                other => panic!("parsed as {other:?}"),
            }
        }
    }
}

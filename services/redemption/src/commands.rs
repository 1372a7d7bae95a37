//! The command line: `serve`, `migrate`, `verify-offline`, and the rotation of the
//! key-encryption keys of terminal secrets (`kek add|use|retire|status`,
//! `rewrap-secrets`; see [`crate::terminal_secrets`]).

use crate::offline;
use crate::settings::Settings;
use crate::startup::Application;
use crate::terminal_secrets::{self, kek_file, Keyring};
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use voucher_core::SystemClock;
use voucher_platform::secrets::SecretsDir;
use voucher_platform::settings::ServiceSettings as _;

/// The redemption service.
#[derive(Debug, Parser)]
#[command(name = "redemption", version, about)]
pub struct Cli {
    /// A YAML settings file (environment variables `APP__…` override it).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve until SIGINT/SIGTERM.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check a scanned dynamic code offline against a keys file (the well-known document).
    /// Cannot check the dynamic MAC (needs the server's secret) or whether it was spent.
    VerifyOffline {
        /// `GET /.well-known/voucher-keys` saved to a file.
        #[arg(long)]
        keys: PathBuf,
        /// The scanned code.
        code: String,
    },
    /// Re-seal every stored terminal secret under the current key-encryption key (and seal
    /// any still stored as is). Safe while the service runs; exits non-zero when a secret
    /// could not be opened.
    RewrapSecrets,
    /// Manage the key-encryption keys of terminal secrets (`terminal-kek.json` in the
    /// secrets directory).
    Kek {
        /// What to do.
        #[command(subcommand)]
        command: KekCommand,
    },
}

/// `redemption kek …`: the steps of a rotation (README, "Terminal secrets at rest").
#[derive(Debug, Subcommand)]
pub enum KekCommand {
    /// Add a key with the next id. It only opens until made current (`use`), so that every
    /// replica can load it before any seals with it.
    Add {
        /// Make it current at once (a single replica).
        #[arg(long)]
        current: bool,
    },
    /// Make key `id` the one that seals (restart the replicas to load the file).
    Use {
        /// Key id.
        id: u32,
    },
    /// Remove key `id`: refused while it is current or any stored secret is sealed under it.
    Retire {
        /// Key id.
        id: u32,
    },
    /// Print the key ids, the current one, and how many stored secrets each key sealed.
    Status,
}

impl Cli {
    /// Runs the command.
    ///
    /// # Errors
    /// Whatever failed, with context.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::VerifyOffline { keys, code } => {
                let text = std::fs::read_to_string(&keys)
                    .with_context(|| format!("reading {}", keys.display()))?;
                let keys =
                    offline::parse_keys(&text).context("the keys file is not a keys document")?;
                let claims = offline::offline_check(&code, &keys, chrono::Utc::now())?;
                println!("{}", serde_json::to_string_pretty(&claims)?);
                Ok(())
            }
            Command::Migrate => {
                let settings = Settings::load(self.config.as_deref())?;
                migrate(&settings).await
            }
            Command::RewrapSecrets => {
                let settings = Settings::load(self.config.as_deref())?;
                let keyring = Keyring::new(
                    &SecretsDir::new(&settings.secrets_dir)
                        .terminal_keks()
                        .context("loading the key-encryption keys")?,
                )?;
                let pg = connect(&settings).await?;
                let report = terminal_secrets::rewrap(&pg, &keyring, false).await?;
                pg.close().await;
                println!("{}", serde_json::to_string_pretty(&report)?);
                if report.unreadable.is_empty() {
                    Ok(())
                } else {
                    anyhow::bail!(
                        "{} terminal secret(s) could not be opened with the loaded keys",
                        report.unreadable.len()
                    )
                }
            }
            Command::Kek { command } => {
                let settings = Settings::load(self.config.as_deref())?;
                let dir = settings.secrets_dir.as_path();
                match command {
                    KekCommand::Add { current } => {
                        let (id, current) = kek_file::add(dir, current)?;
                        println!(
                            "key-encryption key {id} added{}",
                            if current {
                                " and current"
                            } else {
                                " (not current yet: `kek use`)"
                            }
                        );
                    }
                    KekCommand::Use { id } => {
                        kek_file::make_current(dir, id)?;
                        println!("key-encryption key {id} is current; restart the replicas, then `rewrap-secrets`");
                    }
                    KekCommand::Retire { id } => {
                        let pg = connect(&settings).await?;
                        let retired = kek_file::retire(dir, &pg, id).await;
                        pg.close().await;
                        retired?;
                        println!("key-encryption key {id} retired");
                    }
                    KekCommand::Status => {
                        let pg = connect(&settings).await?;
                        let status = kek_file::status(dir, &pg).await;
                        pg.close().await;
                        println!("{}", serde_json::to_string_pretty(&status?)?);
                    }
                }
                Ok(())
            }
            Command::Serve => {
                let settings = Settings::load(self.config.as_deref())?;
                voucher_platform::telemetry::init(&settings.log);
                migrate(&settings).await?;
                let app = Application::build(settings, Arc::new(SystemClock)).await?;
                app.run_until_stopped().await
            }
        }
    }
}

async fn connect(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    voucher_store::pg::connect(
        settings.postgres.url(),
        voucher_store::pg::PoolOptions::with_max(2),
    )
    .await
    .context("connecting to PostgreSQL")
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = voucher_store::pg::connect(
        settings.postgres.url(),
        voucher_store::pg::PoolOptions::with_max(2),
    )
    .await
    .context("connecting to PostgreSQL")?;
    voucher_store::pg::migrate(&pool)
        .await
        .context("migrating")?;
    pool.close().await;
    Ok(())
}

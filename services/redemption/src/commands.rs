//! The command line: `serve`, `migrate`, `verify-offline`.

use crate::offline;
use crate::settings::Settings;
use crate::startup::Application;
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use voucher_core::SystemClock;
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

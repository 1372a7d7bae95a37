//! The `issuance` command line: serve, migrate, run the persister alone, run one expiry
//! pass, generate and rotate the secrets ([`keys`]), and mint identity tokens with the dev
//! identity provider (for the demo and load tests), and check a published lottery draw
//! ([`verify_draw`]). `main.rs` only parses and calls [`Cli::run`].

pub mod keys;
pub mod verify_draw;

use crate::settings::Settings;
use crate::startup::{self, Application};
use anyhow::{bail, Context};
use chrono::Duration;
use clap::{Parser, Subcommand};
use keys::mint_identity;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use voucher_core::{PersonId, PlaceCode, SystemClock};
use voucher_platform::secrets::SecretsDir;
use voucher_platform::settings::ServiceSettings as _;
use voucher_store::persister::Persister;
use voucher_store::pg::PoolOptions;

/// The issuance service and its tools.
#[derive(Debug, Parser)]
#[command(name = "issuance", version, about)]
pub struct Cli {
    /// A YAML settings file (environment variables `APP__SECTION__KEY` override it).
    #[arg(long, global = true, env = "ISSUANCE_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations, then serve HTTP (with the background tasks the settings enable).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Run only the outbox persister (as its own process) until SIGINT/SIGTERM.
    Persister,
    /// Run one expiry-and-recycling pass now and print its report.
    Expire,
    /// Generate a fresh set of dev secrets (keys, dynamic-code secret, admin keys).
    Keygen {
        /// The directory to write.
        #[arg(long)]
        dir: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Add a new voucher signing key (next key id); the old public key stays published.
    RotateKey {
        /// The secrets directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Check a published lottery draw offline: the seed against the commitment, and the
    /// winners recomputed from the seed and the registration hashes. Exits non-zero, naming
    /// every difference, when it does not check out.
    VerifyDraw {
        /// The published draw (`GET /v1/campaigns/{id}/rounds/{round_no}/draw`) as JSON;
        /// `-` reads standard input.
        #[arg(long)]
        file: PathBuf,
        /// Also say where this person (id) stands in the draw.
        #[arg(long)]
        person: Option<String>,
    },
    /// The dev identity provider.
    DevIdp {
        /// What to mint.
        #[command(subcommand)]
        command: DevIdp,
    },
}

/// Dev identity provider commands.
#[derive(Debug, Subcommand)]
pub enum DevIdp {
    /// Print one identity token.
    Mint {
        /// The secrets directory (holding `idp-signing.json`).
        #[arg(long, default_value = ".local/secrets")]
        dir: PathBuf,
        /// Person id.
        #[arg(long)]
        person: String,
        /// Home place code.
        #[arg(long, default_value = "140500")]
        home: String,
        /// Real-name level 0–3.
        #[arg(long, default_value_t = 2)]
        level: u8,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl_secs: i64,
    },
    /// Write many tokens, one `person_id<TAB>token` per line, person ids `R000001`, ….
    MintMany {
        /// The secrets directory (holding `idp-signing.json`).
        #[arg(long, default_value = ".local/secrets")]
        dir: PathBuf,
        /// How many.
        #[arg(long)]
        count: u32,
        /// Home place code.
        #[arg(long, default_value = "140500")]
        home: String,
        /// Real-name level 0–3.
        #[arg(long, default_value_t = 2)]
        level: u8,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl_secs: i64,
        /// Person id prefix.
        #[arg(long, default_value = "R")]
        prefix: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

impl Cli {
    /// Runs the command.
    ///
    /// # Errors
    /// Whatever stopped it, with context.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Keygen { dir, force } => keygen(&dir, force),
            Command::RotateKey { dir } => {
                let kid = keys::rotate(&dir)?;
                println!(
                    "voucher signing key {kid} is now current in {}; restart the services",
                    dir.display()
                );
                Ok(())
            }
            Command::DevIdp { command } => dev_idp(command),
            Command::VerifyDraw { file, person } => {
                let draw = verify_draw::read(&file)?;
                print!("{}", verify_draw::check(&draw, person.as_deref())?);
                Ok(())
            }
            Command::Serve => serve(load(self.config.as_deref())?).await,
            Command::Migrate => {
                let settings = load(self.config.as_deref())?;
                migrate(&settings).await?;
                println!("migrations applied");
                Ok(())
            }
            Command::Persister => persister(load(self.config.as_deref())?).await,
            Command::Expire => expire(load(self.config.as_deref())?).await,
        }
    }
}

fn load(config: Option<&Path>) -> anyhow::Result<Settings> {
    let settings = Settings::load(config)?;
    voucher_platform::telemetry::init(&settings.log);
    Ok(settings)
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pg = voucher_store::pg::connect(settings.postgres.url(), PoolOptions::with_max(2))
        .await
        .context("connecting to PostgreSQL")?;
    voucher_store::pg::migrate(&pg).await.context("migrating")?;
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    migrate(&settings).await?;
    let app = Application::build(settings, Arc::new(SystemClock)).await?;
    app.run_until_stopped().await
}

async fn persister(settings: Settings) -> anyhow::Result<()> {
    let (pg, hot) = startup::connect_stores(&settings, 4).await?;
    let config = startup::persister_config(&settings);
    tracing::info!(consumer = %config.consumer, "persister starting");
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        voucher_platform::server::wait_for_signal().await;
        on_signal.cancel();
    });
    Persister::new(pg.clone(), hot.clone(), config.clone())
        .run(shutdown)
        .await;
    let drained = Persister::new(pg, hot, config).drain().await?;
    tracing::info!(events = drained, "persister stopped");
    Ok(())
}

async fn expire(settings: Settings) -> anyhow::Result<()> {
    let (pg, hot) = startup::connect_stores(&settings, 2).await?;
    let report =
        voucher_store::expiry::run_once(&pg, &hot, chrono::Utc::now(), settings.expiry.batch)
            .await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn keygen(dir: &Path, force: bool) -> anyhow::Result<()> {
    let existing = SecretsDir::new(dir).existing_files();
    if !existing.is_empty() && !force {
        let names: Vec<String> = existing.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "refusing to overwrite existing secrets (use --force): {}",
            names.join(", ")
        );
    }
    let dev = keys::generate_dev_secrets(dir)?;
    println!(
        "dev secrets written to {} (voucher key {}, admin keys in {})",
        dev.dir.display(),
        dev.voucher_signing.kid(),
        dir.join(voucher_platform::secrets::ADMIN_KEYS_PLAIN)
            .display()
    );
    Ok(())
}

fn parse_identity_args(
    home: &str,
    level: u8,
    ttl_secs: i64,
) -> anyhow::Result<(PlaceCode, Duration)> {
    let home = PlaceCode::parse(home)?;
    if level > 3 {
        bail!("--level must be 0-3");
    }
    if ttl_secs <= 0 {
        bail!("--ttl-secs must be positive");
    }
    Ok((home, Duration::seconds(ttl_secs)))
}

fn dev_idp(command: DevIdp) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    match command {
        DevIdp::Mint {
            dir,
            person,
            home,
            level,
            ttl_secs,
        } => {
            let (home, ttl) = parse_identity_args(&home, level, ttl_secs)?;
            let person = PersonId::parse(&person)?;
            let key = SecretsDir::new(&dir).idp_signing()?;
            println!("{}", mint_identity(&key, &person, home, level, now, ttl));
            Ok(())
        }
        DevIdp::MintMany {
            dir,
            count,
            home,
            level,
            ttl_secs,
            prefix,
            out,
        } => {
            let (home, ttl) = parse_identity_args(&home, level, ttl_secs)?;
            let key = SecretsDir::new(&dir).idp_signing()?;
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            for n in 1..=count {
                let person = PersonId::parse(&format!("{prefix}{n:06}"))?;
                let token = mint_identity(&key, &person, home, level, now, ttl);
                writeln!(writer, "{person}\t{token}")?;
            }
            writer.flush()?;
            println!("{count} tokens written to {}", out.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_parses() {
        let cli = Cli::try_parse_from(["issuance", "--config", "x.yaml", "serve"]).unwrap();
        assert!(matches!(cli.command, Command::Serve));
        assert_eq!(cli.config.as_deref(), Some(Path::new("x.yaml")));
        let cli = Cli::try_parse_from([
            "issuance",
            "dev-idp",
            "mint-many",
            "--count",
            "3",
            "--home",
            "140522",
            "--out",
            "t.tsv",
        ])
        .unwrap();
        match cli.command {
            Command::DevIdp {
                command:
                    DevIdp::MintMany {
                        count, home, level, ..
                    },
            } => {
                assert_eq!((count, home.as_str(), level), (3, "140522", 2));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            Cli::try_parse_from(["issuance", "keygen"]).is_err(),
            "--dir is required"
        );
    }

    #[test]
    fn identity_arguments_are_checked() {
        assert!(parse_identity_args("140500", 2, 60).is_ok());
        assert!(parse_identity_args("1405", 2, 60).is_err());
        assert!(parse_identity_args("140500", 4, 60).is_err());
        assert!(parse_identity_args("140500", 2, 0).is_err());
    }

    #[test]
    fn keygen_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(voucher_platform::secrets::ADMIN_KEYS), "[]").unwrap();
        let err = keygen(dir.path(), false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(voucher_platform::secrets::ADMIN_KEYS))
                .unwrap(),
            "[]"
        );
    }
}

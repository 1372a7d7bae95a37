//! `reconciliation`: the reconciliation job's binary and the finance console's service.
//! Parses the command line and hands over to [`reconciliation::cli::run`]. Commands log to
//! stderr (`RUST_LOG`, default `warn`); `serve` logs as the other services do (its `log`
//! settings).

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = reconciliation::cli::Cli::parse();
    if !matches!(cli.command, reconciliation::cli::Command::Serve { .. }) {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,sqlx::query=error")
                }),
            )
            .init();
    }
    match reconciliation::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // Each variant's message already carries its cause.
            eprintln!("reconciliation: {e}");
            ExitCode::from(2)
        }
    }
}

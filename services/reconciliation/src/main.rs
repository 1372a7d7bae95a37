//! `reconciliation`: the reconciliation job's binary. Parses the command line and hands
//! over to [`reconciliation::cli::run`]; logs go to stderr (`RUST_LOG`, default `warn`).

use clap::Parser;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx::query=error")),
        )
        .init();
    let cli = reconciliation::cli::Cli::parse();
    match reconciliation::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // Each variant's message already carries its cause.
            eprintln!("reconciliation: {e}");
            ExitCode::from(2)
        }
    }
}

//! The `issuance` binary: parses the command line and runs it (see `issuance::commands`).
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match issuance::cli::Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole cause chain on one line; no backtrace for an operator's mistake.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! Running another project's load generator (`redis-benchmark`, `pgbench`) as a child
//! process: its standard output is the measurement, its standard error the reason when it
//! failed. A missing tool is named with the package that brings it, since
//! `deploy/local/install-deps.sh` installs both.

use anyhow::{bail, Context, Result};
use std::process::Stdio;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

/// Runs `program args…`, feeding it `stdin` if given, and returns its standard output.
///
/// # Errors
/// The program is not installed, could not be run, or exited non-zero (its standard error
/// is in the message).
pub async fn run(
    program: &str,
    package: &str,
    args: &[String],
    stdin: Option<&str>,
) -> Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "{program} is not installed (package {package}; deploy/local/install-deps.sh installs it)"
                )
            } else {
                anyhow::Error::new(e).context(format!("starting {program}"))
            }
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .with_context(|| format!("writing {program}'s input"))?;
        // Dropping the pipe closes it: the tool reads to the end of its input.
        drop(pipe);
    }
    let out = child
        .wait_with_output()
        .await
        .with_context(|| format!("waiting for {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{program}'s output is not UTF-8"))
}

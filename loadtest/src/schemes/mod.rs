//! The demo's chapters for the seeds' other schemes (issue 12): each runs one scheme end to
//! end against the running services (applied or claimed, reviewed where it applies, paid or
//! redeemed); the day's settlement that `deploy/local/demo.sh` runs afterwards puts them on
//! the finance reports with the province/city split.

pub mod checkout;
pub mod lottery;
pub mod tickets;
pub mod trade_in;

use crate::client::{Auth, IssuanceClient, Reply};
use crate::residents::{self, Resident};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use voucher_core::keys::SigningKey;
use voucher_core::PlaceCode;

/// What every chapter needs.
pub struct Ctx<'a> {
    /// The issuance service.
    pub issuance: &'a IssuanceClient,
    /// The redemption service's base URL.
    pub redemption: &'a str,
    /// The redemption service, for administrators' calls.
    pub redemption_api: &'a IssuanceClient,
    /// The province's administrator key.
    pub province: &'a str,
    /// Jincheng's administrator key.
    pub city: &'a str,
    /// The dev identity provider's key (residents' tokens).
    pub idp: &'a SigningKey,
    /// When the demo runs.
    pub now: DateTime<Utc>,
    /// Where the demo keeps its files (`.local`).
    pub state_dir: &'a std::path::Path,
}

impl Ctx<'_> {
    /// `count` residents of Jincheng (real-name level 3) named `{prefix}{n:06}`.
    ///
    /// # Errors
    /// A name that does not parse.
    pub fn mint(&self, prefix: &str, count: usize) -> Result<Vec<Resident>> {
        residents::mint(
            self.idp,
            prefix,
            count,
            PlaceCode::try_from(140_500)?,
            3,
            self.now,
        )
    }
}

/// The body of a successful reply, or an error naming `what`.
///
/// # Errors
/// A status other than 2xx.
pub fn expect(reply: Reply, what: &str) -> Result<Value> {
    if !reply.status.is_success() {
        bail!("{what} failed: {} {}", reply.status, reply.body);
    }
    Ok(reply.body)
}

/// Creates a program (the province's key) and answers its id.
///
/// # Errors
/// Transport failure or a refusal.
pub async fn program(ctx: &Ctx<'_>, body: Value, what: &str) -> Result<i64> {
    let p = expect(
        ctx.issuance
            .post_json("/v1/admin/programs", Auth::ApiKey(ctx.province), &body)
            .await?,
        what,
    )?;
    p["id"].as_i64().context("program id")
}

/// Fen as yuan with two decimals (integer arithmetic).
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

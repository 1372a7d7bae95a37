//! A release morning: a new campaign's rush of claims over HTTP while the terminals redeem
//! vouchers claimed earlier — both services, one PostgreSQL and one Redis, on one machine.
//! The checkout part is prepared first (its vouchers claimed, merchants registered), then the
//! rush and the checkout start together; each is measured and verified as on its own.

use super::checkout::{self, CheckoutReport, CheckoutTarget, CheckoutWorkload, Setup};
use super::{rush, Scenario, ScenarioReport, Workload};
use anyhow::Result;
use serde::Serialize;

/// Both halves of a mixed run.
#[derive(Debug, Clone, Serialize)]
pub struct MixedReport {
    /// The claims of the new campaign.
    pub rush: ScenarioReport,
    /// The redemptions at the same time.
    pub checkout: CheckoutReport,
}

/// Runs the rush `claims` and the checkout `redeem` (over vouchers taken from `setup`) at
/// once.
///
/// # Errors
/// Either half could not run.
pub async fn run_prepared(
    t: &CheckoutTarget,
    setup: &mut Setup,
    claims: &Workload,
    redeem: &CheckoutWorkload,
) -> Result<MixedReport> {
    let (rush, checkout) = tokio::join!(
        rush::run(&t.issuance, claims),
        checkout::run_prepared(t, setup, redeem, "mx", Scenario::MixedCheckout),
    );
    let mut rush = rush?;
    rush.scenario = Scenario::MixedRush;
    Ok(MixedReport {
        rush,
        checkout: checkout?,
    })
}

/// Sets up the checkout half, then runs both at once.
///
/// # Errors
/// Setting up or either half failed.
pub async fn run(
    t: &CheckoutTarget,
    claims: &Workload,
    redeem: &CheckoutWorkload,
) -> Result<MixedReport> {
    let mut setup = checkout::prepare(t, redeem.vouchers, redeem.entitlements, redeem).await?;
    run_prepared(t, &mut setup, claims, redeem).await
}

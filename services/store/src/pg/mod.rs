//! PostgreSQL, the system of record. Migrations live in `services/store/migrations/` and are
//! never edited once applied; add a new one instead.
//!
//! One module per aggregate (its table, or a table and the rows that only exist with it):
//! - issuance's record: [`programs`], [`campaigns`] (with their rounds), [`vouchers`] (as
//!   the persister writes them), [`lottery`] (lottery rounds' seeds, registrations, draws);
//! - the redemption service's tables (`0002_redemption.sql`): [`merchants`] (with their
//!   program approvals), [`terminals`], [`entitlements`], [`budget`] (the campaign budget's
//!   buckets), [`redemptions`] (sales and holds, and the checkout's one-statement decision
//!   writes), [`reversals`], [`idempotency`] (stored responses), [`token_vouchers`] (vouchers
//!   inserted from their token and spent), [`pairings`] (one-time codes of web terminals)
//!   and [`event_log`] (appending to `events`);
//! - the checkout's schemes (`0009_checkout_schemes.sql`): [`item_counts`] (以旧换新 per-person
//!   per-category item counts, a redemption's subsidised lines) and [`extras`] (a program's
//!   extra rules on certified attributes, their budgets and per-person use, what each
//!   redemption was granted, the merchant's `subsidy_lines`);
//! - shared by them: [`constraints`] (violations mapped by constraint name) and the `text`
//!   codec of the status enums.

pub mod budget;
pub mod campaigns;
pub mod constraints;
pub mod entitlements;
pub mod event_log;
pub mod extras;
pub mod idempotency;
pub mod item_counts;
pub mod lottery;
pub mod merchants;
pub mod pairings;
pub mod programs;
pub mod redemptions;
pub mod reversals;
pub mod terminals;
pub mod tickets;
pub(crate) mod text_enum;
pub mod token_vouchers;
pub mod trade_in;
pub mod vouchers;

use crate::StoreError;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How the pool is sized and how long a caller waits for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most connections.
    pub max_connections: u32,
    /// Waiting for a connection (pooled or new) gives up after this, so a request fails
    /// fast (503) while PostgreSQL is away instead of hanging.
    pub acquire_timeout: Duration,
}

impl PoolOptions {
    /// `max_connections` with the default wait of 2 s.
    pub fn with_max(max_connections: u32) -> PoolOptions {
        PoolOptions {
            max_connections,
            acquire_timeout: Duration::from_secs(2),
        }
    }
}

/// A pool with `options`. Connections are checked before reuse (`test_before_acquire`),
/// so after PostgreSQL restarts a request gets a fresh connection rather than a dead one.
///
/// # Errors
/// The first connection failed.
pub async fn connect(url: &str, options: PoolOptions) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(true)
        .connect(url)
        .await?)
}

/// Applies pending migrations.
///
/// # Errors
/// A migration failed.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

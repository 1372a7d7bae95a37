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
pub(crate) mod text_enum;
pub mod tickets;
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
/// See [`connect_with`] for what bounds a connection's waits.
///
/// # Errors
/// The first connection failed.
pub async fn connect(url: &str, options: PoolOptions) -> Result<PgPool, StoreError> {
    connect_with(url, options, &[]).await
}

/// Session settings every pooled connection gets, whatever the service: the server ends a
/// transaction left idle by a client that went away (its locks — a voucher, a budget bucket
/// — would otherwise block every later checkout of it), and probes a silent client's socket
/// so that a half-open connection is closed within about half a minute, not two hours.
const SESSION_SETTINGS: [(&str, &str); 5] = [
    ("idle_in_transaction_session_timeout", "60s"),
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "3"),
    ("tcp_user_timeout", "30000"),
];

/// A pool with `options` and, on every connection, [`SESSION_SETTINGS`] and `session`
/// (e.g. `[("statement_timeout", "5s")]`; a setting named in both is `session`'s).
///
/// What bounds the waits on a PostgreSQL that is down or unreachable:
/// - taking a connection, including opening a new one and the check before reuse, gives up
///   after `acquire_timeout` (`PoolTimedOut`: a 503);
/// - a connection given back to the pool is checked (sqlx pings it, flushing the rollback
///   of a request dropped at its deadline); that check is bounded by `acquire_timeout` too,
///   and a connection that does not answer in time is closed: without the bound, a
///   connection that went silent (a half-open network) would hold its pool slot forever and
///   the pool would never heal;
/// - a query itself is bounded by the caller (the request deadline) and, server side, by
///   `session`'s `statement_timeout` if given.
///
/// # Errors
/// The URL is not valid, or the first connection failed.
pub async fn connect_with(
    url: &str,
    options: PoolOptions,
    session: &[(&str, String)],
) -> Result<PgPool, StoreError> {
    use sqlx::postgres::PgConnectOptions;
    use std::str::FromStr as _;
    let defaults = SESSION_SETTINGS
        .into_iter()
        .filter(|(k, _)| !session.iter().any(|(s, _)| s == k));
    let connect = PgConnectOptions::from_str(url)?
        .options(defaults)
        .options(session.iter().map(|(k, v)| (*k, v.as_str())));
    let release_check = options.acquire_timeout;
    Ok(PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(true)
        .after_release(move |con, _| {
            Box::pin(async move {
                match tokio::time::timeout(release_check, sqlx::Connection::ping(con)).await {
                    Ok(Ok(())) => Ok(true),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(sqlx::Error::PoolTimedOut),
                }
            })
        })
        .connect_with(connect)
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

//! PostgreSQL, the system of record. Migrations live in `services/store/migrations/` and are
//! never edited once applied; add a new one instead.

pub mod campaigns;
pub mod programs;
pub mod redemptions;
pub mod vouchers;

use crate::StoreError;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pool of at most `max_connections`.
///
/// # Errors
/// The first connection failed.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
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

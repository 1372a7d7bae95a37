//! Errors of the storage layer.

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis refused or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// PostgreSQL refused or the connection failed.
    #[error("postgres: {0}")]
    Pg(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data did not decode (a bug or a corrupted record).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The referenced row does not exist.
    #[error("not found")]
    NotFound,
    /// A conditional write found the row in another state.
    #[error("conflict: {0}")]
    Conflict(&'static str),
}

//! Errors of the storage layer, and which of them mean "a dependency is down" (worth a 503
//! and a retry) rather than a bug.

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
    /// A conditional write found the row in another state, or a unique constraint refused
    /// the row (the constraint's name says which).
    #[error("conflict: {0}")]
    Conflict(&'static str),
}

impl StoreError {
    /// Whether the failure is the dependency's state rather than the request or a bug: Redis
    /// unreachable or failing over, PostgreSQL down, restarting, out of connections, a
    /// connection terminated under the query, a serialisation failure or deadlock that a
    /// retry resolves. Callers answer these with 503 and `Retry-After`.
    pub fn is_unavailable(&self) -> bool {
        match self {
            // Every Redis failure is the server's or the connection's: the scripts and
            // commands are ours, and a refusal of theirs is an outcome, not an error.
            StoreError::Redis(_) => true,
            StoreError::Pg(e) => pg_unavailable(e),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => pg_unavailable(e),
            _ => false,
        }
    }
}

/// Whether a PostgreSQL error is the server's or the connection's state.
pub fn pg_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources (too many connections,
            // disk full); 57P01-57P05: the server shutting down, crashed or not accepting
            // connections yet; 40001/40P01: serialisation failure, deadlock (retryable);
            // 25006: read-only transaction (a replica after a failover); 55P03: lock
            // not available.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || matches!(code.as_ref(), "40001" | "40P01" | "25006" | "55P03")
        }),
        _ => false,
    }
}

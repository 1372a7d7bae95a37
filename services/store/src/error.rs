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
    /// A conditional write found the row in another state, or a unique constraint the
    /// write expected refused the row (mapped by the constraint's name: see
    /// [`crate::pg::constraints`]).
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// A write was not acknowledged by the Redis replicas in time (see
    /// [`crate::hot::ReplicaBarrier`]): it may exist on the master alone.
    #[error("redis replication: {0}")]
    NotReplicated(String),
    /// Redis has no counters for a campaign whose hot state was created before (the record's
    /// marker says so): Redis lost its data. Nothing was recreated; claims of the campaign
    /// wait for `reconciliation rebuild` (see "Creation" in [`crate::hot`]).
    #[error("redis lost the hot state of campaign {campaign}: run `reconciliation rebuild`")]
    HotStateLost {
        /// The campaign.
        campaign: voucher_core::CampaignId,
    },
}

/// Which conflict a write ran into. The variants named after a value are unique (or
/// primary-key) constraints of the schema, mapped by name in [`crate::pg::constraints`];
/// the others are conditional updates that found the row in another state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Conflict {
    /// `merchants_pkey`: a merchant with this id exists.
    #[error("merchant id")]
    MerchantId,
    /// `merchants_credit_code_key`: a merchant with this credit code (统一社会信用代码) exists.
    #[error("merchant credit code")]
    MerchantCreditCode,
    /// `terminals_pkey`: a terminal with this id exists.
    #[error("terminal id")]
    TerminalId,
    /// `terminals_key_id_key`: another terminal holds this key id.
    #[error("terminal key id")]
    TerminalKeyId,
    /// `redemptions_merchant_id_order_ref_key`: the merchant already used this order
    /// reference.
    #[error("order_ref")]
    OrderRef,
    /// `reversals_redemption_id_reversal_ref_key`: the redemption already has a reversal
    /// with this reference.
    #[error("reversal_ref")]
    ReversalRef,
    /// The reversal would refund more than the order or give back more than the discount
    /// (the redemption's totals changed under a concurrent reversal).
    #[error("reversal")]
    ReversalTotals,
    /// An entitlement could not be given back within `0..=cap` (a hold's release).
    #[error("entitlement release")]
    EntitlementRelease,
    /// `rounds_pkey`, or a round number that is not the campaign's next one.
    #[error("round")]
    Round,
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
            StoreError::NotReplicated(_) => true,
            // The state of Redis, mended by a rebuild: a retry then succeeds.
            StoreError::HotStateLost { .. } => true,
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
            // not available; 57014: a statement cancelled (its `statement_timeout`: the
            // server too slow or a lock held too long); 25P03: the session ended for
            // idling in a transaction (its client went silent).
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || matches!(
                    code.as_ref(),
                    "40001" | "40P01" | "25006" | "55P03" | "57014" | "25P03"
                )
        }),
        _ => false,
    }
}

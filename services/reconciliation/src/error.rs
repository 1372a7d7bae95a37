//! The job's one error type: what went wrong, in words a finance officer or an operator can
//! act on. The binary prints it with its cause chain and exits non-zero.

use voucher_core::settlement::SettlementError;
use voucher_core::PlaceCode;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The store (Redis or PostgreSQL through `voucher_store`) failed.
    #[error("store: {0}")]
    Store(#[from] voucher_store::StoreError),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The settlement arithmetic refused its input.
    #[error("settlement arithmetic: {0}")]
    Settlement(#[from] SettlementError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A report could not be encoded.
    #[error("report encoding: {0}")]
    Encode(String),
    /// A stored value is not what the schema promises.
    #[error("inconsistent record: {0}")]
    Corrupt(String),
    /// The period overlaps a period already settled for the program.
    #[error("program {program}: period {period} overlaps the settled period {settled}; settle periods that do not overlap")]
    PeriodOverlap {
        /// The program.
        program: i64,
        /// The period asked for.
        period: String,
        /// The settled period it overlaps.
        settled: String,
    },
    /// The postings of a batch do not balance (a bug: nothing is committed).
    #[error("batch {batch}: postings sum to {sum} fen instead of 0")]
    Unbalanced {
        /// The batch.
        batch: i64,
        /// Σ postings.
        sum: i64,
    },
    /// The API key is not in the administrators' key file.
    #[error("the API key is not known (check --api-key-file and --admin-keys)")]
    UnknownApiKey,
    /// The administrator may not act on or see this place.
    #[error("{who} may not act on or read the settlement of {place}")]
    ForbiddenPlace {
        /// The administrator.
        who: String,
        /// The batch's city.
        place: PlaceCode,
    },
    /// The step needs another role.
    #[error("{who}: moving a batch to {to} needs the {needed} role")]
    ForbiddenRole {
        /// The administrator.
        who: String,
        /// The target status.
        to: String,
        /// The role needed.
        needed: &'static str,
    },
    /// The batch is not in the status the step starts from.
    #[error("batch {batch} is {status}: it cannot move to {to}")]
    InvalidTransition {
        /// The batch.
        batch: i64,
        /// Its current status.
        status: String,
        /// The status asked for.
        to: String,
    },
    /// No such batch.
    #[error("no settlement batch {0}")]
    NoSuchBatch(i64),
    /// Bad command-line input.
    #[error("{0}")]
    Usage(String),
    /// The fault injected by `VP_RECON_FAULT` (tests of crash safety).
    #[error("injected fault before commit")]
    InjectedFault,
}

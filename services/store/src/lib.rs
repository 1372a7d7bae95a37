//! The only code that speaks Redis and PostgreSQL, shared by the services.
//!
//! - [`pg`]: the system of record (sqlx, migrations in `migrations/`).
//! - [`hot`]: the hot state in Redis: campaign counters, per-person counts, claims, and the
//!   per-campaign outbox streams, changed only by the Lua scripts kept beside it.
//! - [`persister`]: drains the outbox streams into PostgreSQL through a consumer group.
//! - [`expiry`]: expires unused vouchers in PostgreSQL and recycles their stock in Redis.
#![forbid(unsafe_code)]

pub mod error;
pub mod events;
pub mod expiry;
pub mod hot;
pub mod metrics;
pub mod nonces;
pub mod persister;
pub mod pg;
pub mod redis_conn;

pub use error::{Conflict, StoreError};
pub use hot::{
    CampaignCounters, ClaimMode, ClaimOutcome, ClaimRequest, ClaimedVoucher, HotStore,
    ReplicaBarrier,
};
pub use redis_conn::RedisOptions;

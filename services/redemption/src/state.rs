//! The application state shared by every handler and background task.

use crate::metrics::Metrics;
use crate::rate_limit::RateLimiters;
use crate::settings::Settings;
use issuance::auth::AdminKeys;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::keys::Verifier;
use voucher_core::{Clock, RefundPolicy};

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The settings the app was built with.
    pub settings: Arc<Settings>,
    /// PostgreSQL, the record.
    pub pg: PgPool,
    /// Nonces remembered in Redis.
    pub nonces: voucher_store::nonces::Nonces,
    /// Now (injectable for tests).
    pub clock: Arc<dyn Clock>,
    /// Every active voucher public key.
    pub verifier: Arc<Verifier>,
    /// Dynamic-code checker.
    pub dynamic_codes: Arc<DynamicCodes>,
    /// Administrators' keys (the same file as the issuance service).
    pub admins: Arc<AdminKeys>,
    /// Metrics.
    pub metrics: Metrics,
    /// Rate limiters.
    pub limiters: Arc<RateLimiters>,
    /// Per campaign: its program and refund policy (immutable once created, so cached).
    pub policies: Arc<RwLock<HashMap<i64, (i64, RefundPolicy)>>>,
    /// Campaigns whose budget buckets exist.
    pub budgets_ready: Arc<RwLock<HashSet<i64>>>,
}

//! The application state shared by every flow and background task: settings, stores,
//! clock, keys, metrics and the checkout's caches. (The signed-request extractor does not
//! read it: it has its own app data, [`crate::terminal_auth::TerminalAuth`].)

use crate::caches::Caches;
use crate::metrics::Metrics;
use crate::settings::Settings;
use sqlx::PgPool;
use std::sync::Arc;
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::keys::Verifier;
use voucher_core::Clock;

/// Everything a flow needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The settings the app was built with.
    pub settings: Arc<Settings>,
    /// PostgreSQL, the record.
    pub pg: PgPool,
    /// Now (injectable for tests).
    pub clock: Arc<dyn Clock>,
    /// Every active voucher public key (this service never holds a signing key).
    pub verifier: Arc<Verifier>,
    /// Dynamic-code checker.
    pub dynamic_codes: Arc<DynamicCodes>,
    /// Metrics.
    pub metrics: Metrics,
    /// Campaign facts the checkout caches (program, refund policy, budget buckets made).
    pub caches: Caches,
    /// The key-encryption keys that seal terminal secrets at rest.
    pub keyring: Arc<crate::terminal_secrets::Keyring>,
    /// The deciders' queue of checkouts (`None`: each decided in its own transaction).
    pub group: Option<crate::checkout::group::Group>,
}

impl AppState {
    /// The clock's now at the precision PostgreSQL keeps (`timestamptz`: microseconds). An
    /// instant that is written and answered must be this one, so that the first answer and
    /// every later read or replay of the row (a replayed reversal, `GET` of a redemption)
    /// carry the same `created_at`, byte for byte.
    pub fn now_stored(&self) -> chrono::DateTime<chrono::Utc> {
        use chrono::SubsecRound as _;
        self.clock.now().trunc_subsecs(6)
    }
}

//! What the handlers share.

use super::audit::Audit;
use sqlx::PgPool;
use std::sync::Arc;
use voucher_core::Clock;
use voucher_store::HotStore;

/// The console service's state.
#[derive(Clone)]
pub struct State {
    /// PostgreSQL: settlement, sessions, audit.
    pub pg: PgPool,
    /// Redis: the cross-check and the outbox lag.
    pub hot: HotStore,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// The audit trail.
    pub audit: Audit,
    /// Outbox events per campaign a console check still tolerates.
    pub max_outbox_lag: u64,
}

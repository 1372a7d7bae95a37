//! What the checkout remembers between requests: a campaign's program and refund policy
//! (fixed once the campaign exists) and whether its budget buckets exist — both read from
//! PostgreSQL once per campaign and process — and the spent filter.
//!
//! The spent filter ([`Caches::known_spent`]) lets a voucher presented again after it was
//! spent be refused without a transaction. It only ever says "spent for good" of a voucher
//! that is: it holds the single-use vouchers this process saw spent by a committed sale of a
//! campaign whose refund policy is `forfeit` — such a voucher never becomes usable again (a
//! reversal leaves it spent; only a hold's void or the `restore` policy give a voucher back,
//! and neither is remembered). Anything else — another process's sale, a forgotten entry —
//! is "maybe unspent", and PostgreSQL decides as always. It is bounded
//! ([`SPENT_FILTER_MAX`]): when full it forgets everything and fills again.

use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::{Arc, RwLock};
use voucher_core::{CampaignId, ProgramId, RefundPolicy, VoucherId};
use voucher_store::pg::{budget, campaigns};
use voucher_store::StoreError;

/// The checkout's caches. Cheap to clone.
#[derive(Clone, Default)]
pub struct Caches {
    /// Per campaign: its program and refund policy.
    policies: Arc<RwLock<HashMap<CampaignId, (ProgramId, RefundPolicy)>>>,
    /// Campaigns whose budget buckets exist.
    budgets_ready: Arc<RwLock<HashSet<CampaignId>>>,
    /// Single-use vouchers spent for good (see the module documentation).
    spent: Arc<Mutex<HashSet<VoucherId>>>,
}

/// Most vouchers the spent filter remembers (about 20 MB); then it starts again empty.
pub const SPENT_FILTER_MAX: usize = 500_000;

impl Caches {
    /// The campaign's program and refund policy.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown campaign; database failure.
    pub async fn policy_of(
        &self,
        pg: &PgPool,
        campaign_id: CampaignId,
    ) -> Result<(ProgramId, RefundPolicy), StoreError> {
        if let Some(found) = self
            .policies
            .read()
            .ok()
            .and_then(|m| m.get(&campaign_id).copied())
        {
            return Ok(found);
        }
        let found = campaigns::refund_policy(pg, campaign_id).await?;
        if let Ok(mut m) = self.policies.write() {
            m.insert(campaign_id, found);
        }
        Ok(found)
    }

    /// Makes sure the campaign's budget is split into `buckets` rows.
    ///
    /// # Errors
    /// Database failure.
    pub async fn ensure_budget(
        &self,
        pg: &PgPool,
        campaign_id: CampaignId,
        buckets: i32,
    ) -> Result<(), StoreError> {
        if self
            .budgets_ready
            .read()
            .is_ok_and(|s| s.contains(&campaign_id))
        {
            return Ok(());
        }
        budget::ensure_budget(pg, campaign_id, buckets).await?;
        if let Ok(mut s) = self.budgets_ready.write() {
            s.insert(campaign_id);
        }
        Ok(())
    }

    /// Whether the voucher is known to be spent for good (`false`: maybe unspent).
    pub fn known_spent(&self, voucher_id: VoucherId) -> bool {
        self.spent.lock().is_ok_and(|s| s.contains(&voucher_id))
    }

    /// Remembers a single-use voucher spent by a committed sale under the `forfeit` policy
    /// (the caller's to check: see the module documentation).
    pub fn remember_spent(&self, voucher_id: VoucherId) {
        if let Ok(mut s) = self.spent.lock() {
            if s.len() >= SPENT_FILTER_MAX {
                s.clear();
            }
            s.insert(voucher_id);
        }
    }
}

//! What the checkout remembers of a campaign between requests: its program and refund
//! policy (fixed once the campaign exists) and whether its budget buckets exist. Both are
//! read from PostgreSQL once per campaign and process.

use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use voucher_core::{CampaignId, ProgramId, RefundPolicy};
use voucher_store::pg::{budget, campaigns};
use voucher_store::StoreError;

/// The checkout's caches. Cheap to clone.
#[derive(Clone, Default)]
pub struct Caches {
    /// Per campaign: its program and refund policy.
    policies: Arc<RwLock<HashMap<CampaignId, (ProgramId, RefundPolicy)>>>,
    /// Campaigns whose budget buckets exist.
    budgets_ready: Arc<RwLock<HashSet<CampaignId>>>,
}

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
}

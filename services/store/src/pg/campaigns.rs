//! Campaigns and their rounds.

use crate::StoreError;
use sqlx::PgPool;
use voucher_core::{Campaign, CampaignId, CampaignStatus, NewCampaign, PlaceCode, Round};

/// Inserts a validated campaign with its rounds (one transaction).
///
/// # Errors
/// Database failure; [`StoreError::NotFound`] if the program does not exist.
pub async fn create(pool: &PgPool, spec: &NewCampaign) -> Result<Campaign, StoreError> {
    todo!("store: campaign create")
}

/// One campaign with its rounds.
///
/// # Errors
/// Database failure.
pub async fn get(pool: &PgPool, id: CampaignId) -> Result<Option<Campaign>, StoreError> {
    todo!("store: campaign get")
}

/// Campaigns whose owner place lies within `within` (all when `None`), by id.
///
/// # Errors
/// Database failure.
pub async fn list(pool: &PgPool, within: Option<PlaceCode>) -> Result<Vec<Campaign>, StoreError> {
    todo!("store: campaign list")
}

/// Appends a validated round (its number must be the next one: a concurrent append of the
/// same number gives [`StoreError::Conflict`]). Returns the campaign as it now is.
///
/// # Errors
/// Database failure, conflict, not found.
pub async fn add_round(pool: &PgPool, id: CampaignId, round: &Round) -> Result<Campaign, StoreError> {
    todo!("store: add round")
}

/// Sets the status. Returns the campaign as it now is.
///
/// # Errors
/// Database failure, not found.
pub async fn set_status(pool: &PgPool, id: CampaignId, status: CampaignStatus) -> Result<Campaign, StoreError> {
    todo!("store: set status")
}

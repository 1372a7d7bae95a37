//! Programs (funding rules).

use crate::StoreError;
use sqlx::PgPool;
use voucher_core::{NewProgram, Program, ProgramId};

/// Inserts a validated program.
///
/// # Errors
/// Database failure.
pub async fn create(pool: &PgPool, spec: &NewProgram) -> Result<Program, StoreError> {
    todo!("store: program create")
}

/// One program.
///
/// # Errors
/// Database failure.
pub async fn get(pool: &PgPool, id: ProgramId) -> Result<Option<Program>, StoreError> {
    todo!("store: program get")
}

/// All programs, by id.
///
/// # Errors
/// Database failure.
pub async fn list(pool: &PgPool) -> Result<Vec<Program>, StoreError> {
    todo!("store: program list")
}

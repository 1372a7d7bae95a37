//! The merchant registry: administrators (the platform's API keys, role and place) create
//! merchants in places they manage, approve them per program, and manage their terminals.
//! A terminal's HMAC secret is returned ONCE, at creation or rotation, and stored only
//! sealed under the current key-encryption key.

use crate::error::{ApiError, Code};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voucher_core::place::PlaceLevel;
use voucher_core::{signing, CreditCode};
use voucher_core::{Category, MerchantId, PlaceCode, ProgramId, TerminalId, TerminalKeyId};
use voucher_platform::admin::Admin;
use voucher_store::pg::merchants::{MerchantRecord, MerchantStatus};
use voucher_store::pg::terminals::SealedSecret;
use voucher_store::pg::{merchants as db, terminals};
use voucher_store::{Conflict, StoreError};

/// `POST /v1/admin/merchants` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMerchant {
    /// Merchant id, 1–64 characters of `[A-Za-z0-9_-]`.
    pub id: String,
    /// Business name.
    pub name: String,
    /// 统一社会信用代码.
    pub credit_code: String,
    /// `catering`, `lodging`, `culture_tourism`, `home_furnishing` or `general`.
    #[schema(value_type = String)]
    pub category: Category,
    /// City code, e.g. 140500.
    #[schema(value_type = u32)]
    pub city: PlaceCode,
    /// County code within the city, e.g. 140522.
    #[schema(value_type = Option<u32>)]
    #[serde(default)]
    pub county: Option<PlaceCode>,
    /// Settlement bank account reference.
    pub settlement_account: String,
}

/// `POST /v1/admin/merchants/{id}/approvals` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The program.
    pub program_id: i64,
}

/// A terminal's key, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TerminalCredentials {
    /// Terminal id.
    #[schema(value_type = Uuid)]
    pub terminal_id: TerminalId,
    /// Send as `X-Terminal-Key`.
    #[schema(value_type = String)]
    pub key_id: TerminalKeyId,
    /// The HMAC secret (64 hex digits). Shown only now: store it in the terminal.
    pub secret: String,
}

fn merchant_place(m: &MerchantRecord) -> Result<PlaceCode, ApiError> {
    let code = m.county.unwrap_or(m.city);
    PlaceCode::try_from(u32::try_from(code).unwrap_or(0)).map_err(ApiError::internal)
}

/// The merchant, if it exists and lies in the caller's place (else `MERCHANT_NOT_FOUND`,
/// so merchants of other places are not even confirmed to exist).
async fn visible(state: &AppState, who: &Admin, id: &str) -> Result<MerchantRecord, ApiError> {
    // An id that cannot exist is answered like one that does not.
    let m = match MerchantId::parse(id) {
        Ok(id) => db::get_merchant(&state.pg, &id).await?,
        Err(_) => None,
    };
    match m {
        Some(m) if who.can_manage(merchant_place(&m)?) => Ok(m),
        _ => Err(ApiError::new(Code::MerchantNotFound)
            .with_message(format!("merchant {id} does not exist"))),
    }
}

/// Creates a merchant in a place the caller manages.
///
/// # Errors
/// `INVALID_FIELD`, `FORBIDDEN_PLACE`, `MERCHANT_EXISTS`.
pub async fn create(
    state: &AppState,
    who: &Admin,
    m: NewMerchant,
) -> Result<MerchantRecord, ApiError> {
    let id = MerchantId::parse(&m.id)
        .map_err(|_| ApiError::invalid_field("id", "must be 1-64 characters of A-Z a-z 0-9 _ -"))?;
    let name_len = m.name.trim().chars().count();
    if name_len == 0 || name_len > 200 {
        return Err(ApiError::invalid_field("name", "must be 1-200 characters"));
    }
    let credit = CreditCode::parse(&m.credit_code)
        .map_err(|why| ApiError::invalid_field("credit_code", why))?;
    if m.city.level() != PlaceLevel::City {
        return Err(ApiError::invalid_field(
            "city",
            "must be a city code such as 140500",
        ));
    }
    if let Some(county) = m.county {
        if county.level() != PlaceLevel::County || !m.city.covers(county) {
            return Err(ApiError::invalid_field(
                "county",
                "must be a county of the city",
            ));
        }
    }
    let account_len = m.settlement_account.trim().chars().count();
    if account_len == 0 || account_len > 64 {
        return Err(ApiError::invalid_field(
            "settlement_account",
            "must be 1-64 characters",
        ));
    }
    who.require_place(m.county.unwrap_or(m.city))?;
    let record = MerchantRecord {
        id,
        name: m.name.trim().to_owned(),
        credit_code: credit.into_string(),
        category: m.category.as_str().to_owned(),
        city: i32::try_from(m.city.get()).map_err(ApiError::internal)?,
        county: m
            .county
            .map(|c| i32::try_from(c.get()))
            .transpose()
            .map_err(ApiError::internal)?,
        status: MerchantStatus::Active,
        settlement_account: m.settlement_account.trim().to_owned(),
        created_by: who.name.clone(),
        approved_programs: Vec::new(),
    };
    match db::create_merchant(&state.pg, &record).await {
        Ok(()) => Ok(record),
        Err(StoreError::Conflict(Conflict::MerchantId | Conflict::MerchantCreditCode)) => {
            Err(ApiError::new(Code::MerchantExists))
        }
        Err(e) => Err(e.into()),
    }
}

/// One merchant.
///
/// # Errors
/// `MERCHANT_NOT_FOUND`.
pub async fn get(state: &AppState, who: &Admin, id: &str) -> Result<MerchantRecord, ApiError> {
    visible(state, who, id).await
}

/// Approves a merchant for a program.
///
/// # Errors
/// `MERCHANT_NOT_FOUND`, `PROGRAM_NOT_FOUND`.
pub async fn approve(
    state: &AppState,
    who: &Admin,
    id: &str,
    program_id: i64,
) -> Result<MerchantRecord, ApiError> {
    let merchant = visible(state, who, id).await?;
    let program = ProgramId(program_id);
    match db::approve(
        &state.pg,
        &merchant.id,
        program,
        &who.name,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return Err(ApiError::new(Code::ProgramNotFound)
                .with_message(format!("program {program_id} does not exist")))
        }
        Err(e) => return Err(e.into()),
    }
    visible(state, who, id).await
}

fn new_key_id() -> TerminalKeyId {
    TerminalKeyId::from_random(Uuid::new_v4())
}

fn fresh_secret() -> Result<String, ApiError> {
    signing::new_secret()
        .map_err(|_| ApiError::internal(anyhow::anyhow!("the system random source failed")))
}

/// The new secret sealed under the current key-encryption key: only the sealed form is
/// stored ([`crate::terminal_secrets`]).
fn seal(state: &AppState, creds: &TerminalCredentials) -> Result<SealedSecret, ApiError> {
    state
        .keyring
        .seal(creds.terminal_id, &creds.key_id, &creds.secret)
        .map_err(ApiError::internal)
}

/// Creates a terminal; the secret is in the answer and never again.
///
/// # Errors
/// `MERCHANT_NOT_FOUND`.
pub async fn create_terminal(
    state: &AppState,
    who: &Admin,
    merchant: &str,
) -> Result<TerminalCredentials, ApiError> {
    let merchant = visible(state, who, merchant).await?;
    let creds = TerminalCredentials {
        terminal_id: TerminalId(Uuid::now_v7()),
        key_id: new_key_id(),
        secret: fresh_secret()?,
    };
    let sealed = seal(state, &creds)?;
    terminals::insert_terminal(
        &state.pg,
        creds.terminal_id,
        &merchant.id,
        &creds.key_id,
        &sealed,
        state.clock.now(),
    )
    .await?;
    Ok(creds)
}

/// Rotates a terminal's key: a new key id and secret; the old key stops working at once.
///
/// # Errors
/// `MERCHANT_NOT_FOUND`, `TERMINAL_NOT_FOUND` (also for a revoked terminal).
pub async fn rotate_terminal(
    state: &AppState,
    who: &Admin,
    merchant: &str,
    terminal_id: Uuid,
) -> Result<TerminalCredentials, ApiError> {
    let merchant = visible(state, who, merchant).await?;
    let creds = TerminalCredentials {
        terminal_id: TerminalId(terminal_id),
        key_id: new_key_id(),
        secret: fresh_secret()?,
    };
    let sealed = seal(state, &creds)?;
    match terminals::rotate_terminal(
        &state.pg,
        creds.terminal_id,
        &merchant.id,
        &creds.key_id,
        &sealed,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => Ok(creds),
        Err(StoreError::NotFound) => {
            Err(ApiError::new(Code::TerminalNotFound).with_message("no such active terminal"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Revokes a terminal (idempotent).
///
/// # Errors
/// `MERCHANT_NOT_FOUND`, `TERMINAL_NOT_FOUND`.
pub async fn revoke_terminal(
    state: &AppState,
    who: &Admin,
    merchant: &str,
    terminal_id: Uuid,
) -> Result<(), ApiError> {
    let merchant = visible(state, who, merchant).await?;
    let terminal_id = TerminalId(terminal_id);
    match terminals::revoke_terminal(&state.pg, terminal_id, &merchant.id, state.clock.now()).await
    {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(ApiError::new(Code::TerminalNotFound)),
        Err(e) => Err(e.into()),
    }
}

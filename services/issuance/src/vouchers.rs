//! A resident's own vouchers (from PostgreSQL, the record), the dynamic code the phone
//! shows at checkout, and the voucher's code key for offline codes. A voucher belongs to the
//! person who claimed it: asking for someone else's gives `VOUCHER_NOT_FOUND`, exactly as
//! for one that does not exist.
//!
//! **Offline codes.** Malls and basements have no signal. The owner's phone is given the
//! voucher's code key `k_v` (`voucher_core::dynamic_code`: the inner HMAC of the dynamic
//! code, derived from the server secret and the voucher id) and computes each step's MAC
//! itself, the way an authenticator app does. Why that is safe: `k_v` opens only this
//! voucher, only for its owner, who could show its codes anyway; it never reveals the server
//! secret (HMAC is one-way) nor any other voucher's key; a code is still bound to a 30–60 s
//! step, so a screenshot stops working within a minute or two exactly as an online code does;
//! and the till still decides online, in PostgreSQL, so a voucher is spent at most once. A
//! key that leaked (a lost phone) is revoked: the voucher's key epoch goes up, the phone
//! fetches the new key, and every till refuses codes of the old epoch (`CODE_REVOKED`).

use crate::claims::sign_voucher;
use crate::error::{self, ApiError, Code};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use voucher_core::identity::Identity;
use voucher_core::{Rule, VoucherId};
use voucher_store::pg::vouchers::{self, VoucherRecord, VoucherStatus};

/// One of my vouchers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MyVoucher {
    /// Voucher id.
    pub voucher_id: Uuid,
    /// Campaign id.
    pub campaign_id: i64,
    /// The campaign's name.
    pub campaign_name: String,
    /// Merchant category.
    pub category: String,
    /// The discount rule (amounts in fen).
    #[schema(value_type = Object)]
    pub rule: Option<Rule>,
    /// `issued`, `redeemed` or `expired`.
    pub status: String,
    /// Whether it can be spent now (issued and within validity).
    pub usable: bool,
    /// Release round (0 for list issuance).
    pub round_no: u32,
    /// When claimed.
    pub claimed_at: DateTime<Utc>,
    /// Start of validity.
    pub valid_from: DateTime<Utc>,
    /// End of validity.
    pub valid_until: DateTime<Utc>,
}

/// The dynamic code to show at checkout.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CodeResponse {
    /// `"<token>.<mac>"`: what the QR code encodes.
    pub code: String,
    /// When the code changes (fetch a new one then).
    pub refresh_at: DateTime<Utc>,
    /// Seconds per step.
    pub step_secs: u32,
}

fn status_name(status: VoucherStatus) -> &'static str {
    match status {
        VoucherStatus::Issued => "issued",
        VoucherStatus::Redeemed => "redeemed",
        VoucherStatus::Expired => "expired",
    }
}

fn usable_at(record: &VoucherRecord, now: DateTime<Utc>) -> Result<(), ApiError> {
    if record.status != VoucherStatus::Issued {
        return Err(error::voucher_not_usable(format!(
            "the voucher is {}",
            status_name(record.status)
        )));
    }
    if now < record.valid_from {
        return Err(error::voucher_not_usable(format!(
            "the voucher is valid from {}",
            record.valid_from.to_rfc3339()
        )));
    }
    if now > record.valid_until {
        return Err(error::voucher_not_usable(format!(
            "the voucher expired at {}",
            record.valid_until.to_rfc3339()
        )));
    }
    Ok(())
}

/// My vouchers, newest first.
///
/// # Errors
/// PostgreSQL failed.
#[tracing::instrument(name = "issuance.vouchers.list_mine", skip_all)]
pub async fn list_mine(state: &AppState, who: &Identity) -> Result<Vec<MyVoucher>, ApiError> {
    let now = state.clock.now();
    let records = vouchers::list_for_person(&state.pg, &who.person_id).await?;
    Ok(records
        .into_iter()
        .map(|r| {
            let campaign = state.campaigns.get(r.campaign_id);
            MyVoucher {
                voucher_id: r.voucher_id.0,
                campaign_id: r.campaign_id.0,
                campaign_name: campaign
                    .as_ref()
                    .map(|c| c.spec.name.clone())
                    .unwrap_or_default(),
                category: campaign
                    .as_ref()
                    .map(|c| c.spec.category.as_str().to_owned())
                    .unwrap_or_default(),
                rule: campaign.as_ref().map(|c| c.spec.rule.clone()),
                status: status_name(r.status).to_owned(),
                usable: usable_at(&r, now).is_ok(),
                round_no: r.round_no,
                claimed_at: r.claimed_at,
                valid_from: r.valid_from,
                valid_until: r.valid_until,
            }
        })
        .collect())
}

/// The code key of one of my vouchers, for computing its dynamic codes offline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CodeKeyResponse {
    /// Voucher id.
    pub voucher_id: Uuid,
    /// The signed voucher token (the first part of every code).
    pub token: String,
    /// The 32-byte code key, base64url without padding. The code of step `s`
    /// (`floor(unix seconds / step_secs)`) is `token "." mac` (epoch 0) or
    /// `token "." epoch "." mac`, where `mac` = base64url of the first 10 bytes of
    /// HMAC-SHA256(key, s as 8 bytes big-endian).
    pub key: String,
    /// Seconds per step.
    pub step_secs: u32,
    /// The key's epoch (raised by each revocation).
    pub epoch: u32,
    /// The voucher's end of validity (the key is useless after it).
    pub valid_until: DateTime<Utc>,
}

/// My usable voucher, its campaign and its token (what both the code and the key need).
async fn mine_usable(
    state: &AppState,
    who: &Identity,
    voucher_id: Uuid,
) -> Result<(VoucherRecord, voucher_core::token::VoucherToken), ApiError> {
    let record = vouchers::get(&state.pg, VoucherId(voucher_id))
        .await?
        .filter(|r| r.person_id == who.person_id)
        .ok_or_else(|| ApiError::new(Code::VoucherNotFound))?;
    usable_at(&record, state.clock.now())?;
    let campaign = state.campaigns.get(record.campaign_id).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "voucher {voucher_id} belongs to campaign {} that is not cached",
            record.campaign_id
        ))
    })?;
    let token = sign_voucher(
        state,
        &campaign,
        record.voucher_id,
        &record.person_id,
        record.valid_from,
        record.valid_until,
    );
    Ok((record, token))
}

fn key_response(
    state: &AppState,
    record: &VoucherRecord,
    token: &str,
    epoch: u32,
) -> CodeKeyResponse {
    use base64::Engine as _;
    let key = state.dynamic_codes.code_key(record.voucher_id, epoch);
    CodeKeyResponse {
        voucher_id: record.voucher_id.0,
        token: token.to_owned(),
        key: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
        step_secs: state.settings.dynamic_code.step_secs,
        epoch,
        valid_until: record.valid_until,
    }
}

/// The code key of my usable voucher `voucher_id` (see the module doc).
///
/// # Errors
/// `VOUCHER_NOT_FOUND`, `VOUCHER_NOT_USABLE`, PostgreSQL failure.
#[tracing::instrument(name = "issuance.vouchers.code_key", skip_all)]
pub async fn code_key(
    state: &AppState,
    who: &Identity,
    voucher_id: Uuid,
) -> Result<CodeKeyResponse, ApiError> {
    let (record, token) = mine_usable(state, who, voucher_id).await?;
    Ok(key_response(
        state,
        &record,
        token.as_str(),
        record.code_epoch,
    ))
}

/// Revokes the code key of my usable voucher (a lost phone, a leaked key) and answers the
/// new one: every till refuses codes made with the old key from now on.
///
/// # Errors
/// `VOUCHER_NOT_FOUND`, `VOUCHER_NOT_USABLE` (also when it was spent meanwhile), PostgreSQL
/// failure.
#[tracing::instrument(name = "issuance.vouchers.revoke_code_key", skip_all)]
pub async fn revoke_code_key(
    state: &AppState,
    who: &Identity,
    voucher_id: Uuid,
) -> Result<CodeKeyResponse, ApiError> {
    let (record, token) = mine_usable(state, who, voucher_id).await?;
    let epoch = vouchers::revoke_code_key(&state.pg, record.voucher_id, &who.person_id)
        .await?
        .ok_or_else(|| error::voucher_not_usable("the voucher was spent meanwhile".to_owned()))?;
    Ok(key_response(state, &record, token.as_str(), epoch))
}

/// The current dynamic code of my voucher `voucher_id`.
///
/// # Errors
/// `VOUCHER_NOT_FOUND` (no such voucher of mine, or not yet persisted), `VOUCHER_NOT_USABLE`
/// (spent, expired, outside validity), PostgreSQL failure.
#[tracing::instrument(name = "issuance.vouchers.dynamic_code", skip_all)]
pub async fn dynamic_code(
    state: &AppState,
    who: &Identity,
    voucher_id: Uuid,
) -> Result<CodeResponse, ApiError> {
    let (record, token) = mine_usable(state, who, voucher_id).await?;
    let now = state.clock.now();
    let code = state
        .dynamic_codes
        .code_at_epoch(&token, record.voucher_id, record.code_epoch, now);
    Ok(CodeResponse {
        code: code.code,
        refresh_at: code.refresh_at,
        step_secs: state.settings.dynamic_code.step_secs,
    })
}

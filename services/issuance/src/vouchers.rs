//! A resident's own vouchers (from PostgreSQL, the record) and the dynamic code the phone
//! shows at checkout. A voucher belongs to the person who claimed it: asking for someone
//! else's gives `VOUCHER_NOT_FOUND`, exactly as for one that does not exist.

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
                rule: campaign.as_ref().map(|c| c.spec.rule),
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
    let record = vouchers::get(&state.pg, VoucherId(voucher_id))
        .await?
        .filter(|r| r.person_id == who.person_id)
        .ok_or_else(|| ApiError::new(Code::VoucherNotFound))?;
    let now = state.clock.now();
    usable_at(&record, now)?;
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
    let code = state.dynamic_codes.code(&token, record.voucher_id, now);
    Ok(CodeResponse {
        code: code.code,
        refresh_at: code.refresh_at,
        step_secs: state.settings.dynamic_code.step_secs,
    })
}

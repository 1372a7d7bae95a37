//! Building and reading event envelopes (`proto/events.proto`).

use chrono::{DateTime, Utc};
use voucher_core::{CampaignId, ClaimId, PersonId, VoucherId};
use voucher_proto::events::{event_envelope::Event, ClaimSource, EventEnvelope, VoucherClaimed};
use voucher_proto::Message;

/// An encoded `VoucherClaimed` envelope with a fresh event id.
#[allow(clippy::too_many_arguments)]
pub fn voucher_claimed(
    campaign_id: CampaignId,
    voucher_id: VoucherId,
    claim_id: ClaimId,
    person_id: &PersonId,
    round_no: u32,
    claimed_at: DateTime<Utc>,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    source: ClaimSource,
) -> Vec<u8> {
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().as_bytes().to_vec(),
        occurred_at_ms: claimed_at.timestamp_millis(),
        campaign_id: campaign_id.0,
        event: Some(Event::VoucherClaimed(VoucherClaimed {
            voucher_id: voucher_id.0.as_bytes().to_vec(),
            claim_id: claim_id.0.as_bytes().to_vec(),
            person_id: person_id.as_str().to_owned(),
            round_no,
            claimed_at_ms: claimed_at.timestamp_millis(),
            valid_from: valid_from.timestamp(),
            valid_until: valid_until.timestamp(),
            source: source as i32,
        })),
    }
    .encode_to_vec()
}

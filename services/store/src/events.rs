//! Building and reading event envelopes (`proto/events.proto`).
//!
//! The encoded envelope is the contract: it is what the claim and recycle scripts XADD to a
//! campaign's outbox stream and what the event log keeps in `events.payload`. Decoding
//! yields the columns of the event log (id, campaign, kind, time), a readable JSON rendering
//! for `events.payload_json`, and, for a claim, the voucher row the persister writes.

use crate::StoreError;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;
use voucher_core::{CampaignId, ClaimId, PersonId, VoucherId};
use voucher_proto::events::{
    event_envelope::Event, ClaimSource, EventEnvelope, StockRecycled, VoucherClaimed,
    VoucherExpired,
};
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
        event_id: Uuid::now_v7().as_bytes().to_vec(),
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

/// An encoded `StockRecycled` envelope (one voucher's stock back to the pool) with a fresh
/// event id.
pub fn stock_recycled(
    campaign_id: CampaignId,
    voucher_id: VoucherId,
    at: DateTime<Utc>,
) -> Vec<u8> {
    EventEnvelope {
        event_id: Uuid::now_v7().as_bytes().to_vec(),
        occurred_at_ms: at.timestamp_millis(),
        campaign_id: campaign_id.0,
        event: Some(Event::StockRecycled(StockRecycled {
            voucher_id: voucher_id.0.as_bytes().to_vec(),
            quantity: 1,
        })),
    }
    .encode_to_vec()
}

/// The `VoucherExpired` envelope (not encoded) with a fresh event id: the expiry job writes
/// it straight into the event log, in the transaction that marks the voucher expired.
pub fn voucher_expired(
    campaign_id: CampaignId,
    voucher_id: VoucherId,
    valid_until: DateTime<Utc>,
    at: DateTime<Utc>,
) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::now_v7().as_bytes().to_vec(),
        occurred_at_ms: at.timestamp_millis(),
        campaign_id: campaign_id.0,
        event: Some(Event::VoucherExpired(VoucherExpired {
            voucher_id: voucher_id.0.as_bytes().to_vec(),
            valid_until: valid_until.timestamp(),
        })),
    }
}

/// The facts of a `VoucherClaimed` event: one row of `vouchers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedFacts {
    /// The voucher.
    pub voucher_id: Uuid,
    /// The claim that made it.
    pub claim_id: Uuid,
    /// Holder.
    pub person_id: String,
    /// Release round (0 for list issuance).
    pub round_no: u32,
    /// `"rush"` or `"list"`.
    pub source: &'static str,
    /// When claimed.
    pub claimed_at: DateTime<Utc>,
    /// Validity start.
    pub valid_from: DateTime<Utc>,
    /// Validity end.
    pub valid_until: DateTime<Utc>,
}

/// A decoded envelope: the columns of one `events` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedEvent {
    /// Unique id (the persister is idempotent on it).
    pub event_id: Uuid,
    /// The campaign.
    pub campaign_id: i64,
    /// Stable snake_case kind, e.g. `voucher_claimed`.
    pub kind: &'static str,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// A readable rendering of every field.
    pub json: Value,
    /// Set for `voucher_claimed`.
    pub claimed: Option<ClaimedFacts>,
}

fn uuid_of(bytes: &[u8], what: &str) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a 16-byte uuid")))
}

fn millis(ms: i64, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("{what} out of range")))
}

fn seconds(s: i64, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp(s, 0)
        .ok_or_else(|| StoreError::Corrupt(format!("{what} out of range")))
}

/// Decodes an encoded envelope.
///
/// # Errors
/// [`StoreError::Corrupt`] when the bytes are not an envelope with a known event and valid
/// ids and times.
pub fn decode(bytes: &[u8]) -> Result<DecodedEvent, StoreError> {
    let env = EventEnvelope::decode(bytes)
        .map_err(|e| StoreError::Corrupt(format!("event envelope: {e}")))?;
    let event_id = uuid_of(&env.event_id, "event_id")?;
    let occurred_at = millis(env.occurred_at_ms, "occurred_at_ms")?;
    let event = env
        .event
        .ok_or_else(|| StoreError::Corrupt("event envelope without an event".to_owned()))?;
    let mut claimed = None;
    let (kind, detail) = match event {
        Event::VoucherClaimed(e) => {
            let source = match ClaimSource::try_from(e.source) {
                Ok(ClaimSource::Rush) => "rush",
                Ok(ClaimSource::List) => "list",
                _ => return Err(StoreError::Corrupt(format!("claim source {}", e.source))),
            };
            let facts = ClaimedFacts {
                voucher_id: uuid_of(&e.voucher_id, "voucher_id")?,
                claim_id: uuid_of(&e.claim_id, "claim_id")?,
                person_id: e.person_id,
                round_no: e.round_no,
                source,
                claimed_at: millis(e.claimed_at_ms, "claimed_at_ms")?,
                valid_from: seconds(e.valid_from, "valid_from")?,
                valid_until: seconds(e.valid_until, "valid_until")?,
            };
            let detail = json!({
                "voucher_id": facts.voucher_id,
                "claim_id": facts.claim_id,
                "person_id": facts.person_id,
                "round_no": facts.round_no,
                "source": facts.source,
                "claimed_at": facts.claimed_at,
                "valid_from": facts.valid_from,
                "valid_until": facts.valid_until,
            });
            claimed = Some(facts);
            ("voucher_claimed", detail)
        }
        Event::VoucherRedeemed(e) => (
            "voucher_redeemed",
            json!({
                "voucher_id": uuid_of(&e.voucher_id, "voucher_id")?,
                "redemption_id": uuid_of(&e.redemption_id, "redemption_id")?,
                "merchant_id": e.merchant_id,
                "order_amount_fen": e.order_amount,
                "discount_fen": e.discount,
            }),
        ),
        Event::RedemptionReversed(e) => (
            "redemption_reversed",
            json!({
                "voucher_id": uuid_of(&e.voucher_id, "voucher_id")?,
                "redemption_id": uuid_of(&e.redemption_id, "redemption_id")?,
                "reversal_id": uuid_of(&e.reversal_id, "reversal_id")?,
                "discount_reversed_fen": e.discount_reversed,
            }),
        ),
        Event::VoucherExpired(e) => (
            "voucher_expired",
            json!({
                "voucher_id": uuid_of(&e.voucher_id, "voucher_id")?,
                "valid_until": seconds(e.valid_until, "valid_until")?,
            }),
        ),
        Event::StockRecycled(e) => (
            "stock_recycled",
            json!({ "voucher_id": uuid_of(&e.voucher_id, "voucher_id")?, "quantity": e.quantity }),
        ),
        Event::CampaignPaused(e) => ("campaign_paused", json!({ "by": e.by })),
        Event::CampaignResumed(e) => ("campaign_resumed", json!({ "by": e.by })),
    };
    let mut json = json!({
        "event_id": event_id,
        "campaign_id": env.campaign_id,
        "kind": kind,
        "occurred_at": occurred_at,
    });
    if let Value::Object(fields) = &mut json {
        fields.insert(kind.to_owned(), detail);
    }
    Ok(DecodedEvent {
        event_id,
        campaign_id: env.campaign_id,
        kind,
        occurred_at,
        json,
        claimed,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_envelope_decodes_to_its_voucher_row() {
        let at = DateTime::from_timestamp(1_777_600_000, 0).unwrap_or_default();
        let person = PersonId::parse("p-1").unwrap();
        let vid = VoucherId(Uuid::now_v7());
        let cid = ClaimId(Uuid::new_v4());
        let bytes = voucher_claimed(
            CampaignId(7),
            vid,
            cid,
            &person,
            2,
            at,
            at,
            at,
            ClaimSource::Rush,
        );
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.kind, "voucher_claimed");
        assert_eq!(decoded.campaign_id, 7);
        let facts = decoded.claimed.unwrap();
        assert_eq!(
            (
                facts.voucher_id,
                facts.claim_id,
                facts.round_no,
                facts.source
            ),
            (vid.0, cid.0, 2, "rush")
        );
        assert_eq!(decoded.json["voucher_claimed"]["person_id"], "p-1");
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(
            decode(b"\xff\xff\xff not protobuf"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode(&EventEnvelope::default().encode_to_vec()),
            Err(StoreError::Corrupt(_))
        ));
    }
}

//! Appending to the event log (`events`, append-only by trigger) from the redemption
//! service: captures and reversals, which commit their event in the transaction that
//! changes the record. (A checkout's `VoucherRedeemed` is written inside the decision's one
//! statement, [`super::redemptions::record_decision`].) Decoding an envelope into the log's
//! columns is [`crate::events`], shared with the persister.

use crate::events;
use crate::StoreError;
use sqlx::PgConnection;
use voucher_proto::events::EventEnvelope;
use voucher_proto::Message as _;

/// Appends an event (encoded envelope plus its readable JSON) to the event log.
///
/// # Errors
/// [`StoreError::Corrupt`] for an envelope that does not decode; database failure.
pub async fn append_event(
    con: &mut PgConnection,
    envelope: &EventEnvelope,
) -> Result<(), StoreError> {
    let bytes = envelope.encode_to_vec();
    let decoded = events::decode(&bytes)?;
    sqlx::query(
        "INSERT INTO events (event_id, campaign_id, kind, occurred_at, payload, payload_json)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(decoded.event_id)
    .bind(decoded.campaign_id)
    .bind(decoded.kind)
    .bind(decoded.occurred_at)
    .bind(&bytes)
    .bind(&decoded.json)
    .execute(&mut *con)
    .await?;
    Ok(())
}

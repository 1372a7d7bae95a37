//! The redemption API's error codes: ONE table ([`Code`]); each row gives the stable name,
//! the HTTP status, the type and the default message. The envelope, the codes every
//! service shares (`MALFORMED_JSON`, `INVALID_FIELD`, `MISSING_API_KEY`, `RATE_LIMITED`,
//! `SERVICE_UNAVAILABLE`…) and the error type are the platform's
//! ([`voucher_platform::error`]).
//!
//! Checkout *declines* (a voucher that cannot pay for this order: already redeemed, expired,
//! wrong category…) are not errors: they are answered `200` with
//! `{"outcome": "declined", "reason": …}` (the codes are `voucher_core::checkout::Decline`),
//! like a card network's decline, so a terminal branches on `outcome` and never on HTTP
//! status for them.

use voucher_platform::error::CodeInfo;
pub use voucher_platform::error::{ApiError, Common, ErrorBody, ErrorType};

voucher_platform::error_codes! {
    /// The redemption API's own codes (after the platform's [`Common`] ones).
    pub enum Code {
        /// A terminal request without the signature headers.
        MissingSignature => ("MISSING_SIGNATURE", UNAUTHORIZED, Auth, "a signed terminal request needs X-Terminal-Key, X-Timestamp, X-Nonce and X-Signature"),
        /// `X-Timestamp` more than the allowed skew away from the service clock.
        StaleTimestamp => ("STALE_TIMESTAMP", UNAUTHORIZED, Auth, "X-Timestamp is too far from the service clock"),
        /// `X-Nonce` seen before within the window (a replayed request).
        NonceReused => ("NONCE_REUSED", UNAUTHORIZED, Auth, "this nonce was already used: a replayed request"),
        /// The HMAC does not match.
        BadSignature => ("BAD_SIGNATURE", UNAUTHORIZED, Auth, "the request signature does not match"),
        /// Unknown or revoked terminal key.
        TerminalKeyInvalid => ("TERMINAL_KEY_INVALID", UNAUTHORIZED, Auth, "the terminal key is unknown or revoked"),
        /// The terminal's merchant is not active.
        MerchantNotActive => ("MERCHANT_NOT_ACTIVE", FORBIDDEN, Auth, "the merchant is not active"),
        /// No `Idempotency-Key` header.
        MissingIdempotencyKey => ("MISSING_IDEMPOTENCY_KEY", BAD_REQUEST, InvalidRequest, "send an Idempotency-Key header"),
        /// The key was used with another body.
        IdempotencyKeyReused => ("IDEMPOTENCY_KEY_REUSED", UNPROCESSABLE_ENTITY, InvalidRequest, "this Idempotency-Key was used with a different request body"),
        /// The first request with this key is still being processed.
        InFlight => ("IN_FLIGHT", CONFLICT, Conflict, "a request with this Idempotency-Key is still being processed"),
        /// No such merchant (for you).
        MerchantNotFound => ("MERCHANT_NOT_FOUND", NOT_FOUND, NotFound, "no such merchant"),
        /// A merchant with that id or credit code exists.
        MerchantExists => ("MERCHANT_EXISTS", CONFLICT, Conflict, "a merchant with this id or credit code exists"),
        /// No such terminal.
        TerminalNotFound => ("TERMINAL_NOT_FOUND", NOT_FOUND, NotFound, "no such terminal"),
        /// The pairing code is unknown, used or expired: ask the administrator for a new one.
        PairingCodeInvalid => ("PAIRING_CODE_INVALID", NOT_FOUND, NotFound, "the pairing code is not valid (unknown, already used or expired)"),
        /// No such program.
        ProgramNotFound => ("PROGRAM_NOT_FOUND", NOT_FOUND, NotFound, "no such program"),
        /// No such redemption of yours.
        RedemptionNotFound => ("REDEMPTION_NOT_FOUND", NOT_FOUND, NotFound, "no such redemption of this merchant"),
        /// This order reference was already used by the merchant.
        OrderRefUsed => ("ORDER_REF_USED", CONFLICT, Conflict, "this order_ref was already used by this merchant"),
        /// The hold was already captured, voided or expired.
        HoldResolved => ("HOLD_RESOLVED", CONFLICT, Conflict, "the hold is already resolved"),
        /// The hold's timeout passed; it was released.
        HoldExpired => ("HOLD_EXPIRED", CONFLICT, Conflict, "the hold timed out and was released"),
        /// The redemption cannot be reversed (a hold, voided or expired).
        NotReversible => ("NOT_REVERSIBLE", CONFLICT, Conflict, "this redemption cannot be reversed"),
        /// The refund window has closed.
        RefundWindowClosed => ("REFUND_WINDOW_CLOSED", CONFLICT, Conflict, "the refund window of this redemption has closed"),
        /// More refunded than the order, or a partial refund of a single-use voucher.
        RefundNotAllowed => ("REFUND_NOT_ALLOWED", CONFLICT, Conflict, "this refund is not allowed"),
        /// The order's lines do not add up to the order amount.
        LinesTotalMismatch => ("LINES_TOTAL_MISMATCH", UNPROCESSABLE_ENTITY, InvalidRequest, "the order's lines (unit price × quantity) must add up to order_amount_fen"),
        /// An extra rule's new budget is below what it already granted.
        ExtraBudgetBelowGranted => ("EXTRA_BUDGET_BELOW_GRANTED", CONFLICT, Conflict, "the extra rule's budget cannot be set below what it has already granted"),
        /// No such ticket scheme (for you).
        TicketSchemeNotFound => ("TICKET_SCHEME_NOT_FOUND", NOT_FOUND, NotFound, "no such ticket scheme"),
        /// A scheme's program does not fund the part it is named for, or lies in another province.
        TicketProgramMismatch => ("TICKET_PROGRAM_MISMATCH", UNPROCESSABLE_ENTITY, InvalidRequest, "the program cannot pay this part of a ticket scheme"),
        /// The terminal's merchant is not a scenic spot of the scheme (place, category, approval).
        TicketMerchantNotInScheme => ("TICKET_MERCHANT_NOT_IN_SCHEME", FORBIDDEN, Auth, "this merchant is not a scenic spot of the ticket scheme"),
        /// The sale falls outside the scheme's window (details: starts_at, ends_at).
        TicketSchemeClosed => ("TICKET_SCHEME_CLOSED", CONFLICT, Conflict, "the ticket scheme does not count sales at this time"),
        /// The merchant already reported another sale with this sale_ref.
        TicketSaleRefUsed => ("TICKET_SALE_REF_USED", CONFLICT, Conflict, "this sale_ref was already used by this merchant for another sale"),
        /// No such ticket sale of yours.
        TicketSaleNotFound => ("TICKET_SALE_NOT_FOUND", NOT_FOUND, NotFound, "no such ticket sale of this merchant"),
        /// This refund_ref was already used for another quantity.
        TicketRefundRefUsed => ("TICKET_REFUND_REF_USED", CONFLICT, Conflict, "this refund_ref was already used for another refund of this sale"),
        /// More tickets refunded than are left (details: left).
        TicketRefundTooMany => ("TICKET_REFUND_TOO_MANY", CONFLICT, Conflict, "more tickets than are left to refund"),
    }
}

/// Every code this API answers with, the platform's first, in documented order.
pub fn documented_codes() -> Vec<CodeInfo> {
    voucher_platform::error::documented_codes::<Code>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_clients_get_4xx_for_their_mistakes() {
        let all = documented_codes();
        let names: HashSet<_> = all.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), all.len());
        for info in &all {
            assert_eq!(
                info.status.is_server_error(),
                info.error_type == ErrorType::Internal,
                "{}",
                info.name
            );
        }
    }
}

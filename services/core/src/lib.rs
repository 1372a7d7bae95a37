//! The pure domain of the voucher platform: money in fen, places, programs, campaigns,
//! discount rules and their arithmetic, the signed voucher token, the dynamic code, the
//! resident identity token, terminal request signing, the checkout decline rules, merchant
//! credit codes and administrators' roles.
//!
//! Nothing here does I/O: no actix, redis, sqlx or tokio. Time is always passed in,
//! so every rule can be tested (and property-tested) without a clock or a server.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admin;
pub mod campaign;
pub mod category;
pub mod checkout;
pub mod clock;
pub mod credit_code;
pub mod discount;
pub mod dynamic_code;
pub mod extra;
pub mod identity;
pub mod ids;
pub mod item_rule;
pub mod keys;
pub mod lottery;
pub mod money;
pub mod place;
pub mod program;
pub mod rule;
pub mod settlement;
pub mod signing;
pub mod ticket;
pub mod token;
pub mod trade_in;

pub use admin::AdminRole;
pub use campaign::{
    Campaign, CampaignStatus, Distribution, Eligibility, NewCampaign, Round, RoundMode, Validity,
};
pub use category::Category;
pub use clock::{Clock, ManualClock, SystemClock};
pub use credit_code::CreditCode;
pub use ids::{
    CampaignId, ClaimId, MerchantId, PersonId, ProgramId, RedemptionId, ReversalId, TerminalId,
    TerminalKeyId, VoucherId,
};
pub use money::{BasisPoints, Fen};
pub use place::PlaceCode;
pub use program::{NewProgram, Program, RefundPolicy};
pub use rule::Rule;

//! The pure domain of the voucher platform: money in fen, places, programs, campaigns,
//! discount rules and their arithmetic, the signed voucher token, the dynamic code,
//! and the resident identity token.
//!
//! Nothing here does I/O: no actix, redis, sqlx or tokio. Time is always passed in,
//! so every rule can be tested (and property-tested) without a clock or a server.
#![forbid(unsafe_code)]

pub mod campaign;
pub mod category;
pub mod clock;
pub mod discount;
pub mod dynamic_code;
pub mod identity;
pub mod ids;
pub mod keys;
pub mod money;
pub mod place;
pub mod program;
pub mod rule;
pub mod settlement;
pub mod token;

pub use campaign::{
    Campaign, CampaignStatus, Distribution, Eligibility, NewCampaign, Round, Validity,
};
pub use category::Category;
pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{CampaignId, ClaimId, PersonId, ProgramId, VoucherId};
pub use money::{BasisPoints, Fen};
pub use place::PlaceCode;
pub use program::{NewProgram, Program, RefundPolicy};
pub use rule::Rule;

//! The redemption service: merchant point-of-sale terminals verify and redeem vouchers at
//! checkout (one-step redemption, authorise/capture/void holds, reversals), administrators
//! register merchants and terminals. actix-web over the shared storage crate.
//!
//! Layout: [`startup`] builds and runs the app; [`routes`] holds thin handlers; the flows are
//! [`checkout`], [`holds`], [`reversals`], [`queries`] and [`merchants`]; [`terminal_auth`]
//! and [`signing`] verify terminal requests; [`offline`] is the network-free pre-check;
//! [`error`] is the one error type with its code table; [`settings`], [`metrics`],
//! [`rate_limit`] and [`state`] are the plumbing. Secrets, admin-key checks, body parsing
//! and logging are reused from the `issuance` crate.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod checkout;
pub mod commands;
pub mod error;
pub mod holds;
pub mod merchants;
pub mod metrics;
pub mod offline;
pub mod openapi;
pub mod queries;
pub mod rate_limit;
pub mod reversals;
pub mod routes;
pub mod settings;
pub mod signing;
pub mod startup;
pub mod state;
pub mod terminal_auth;

pub use error::{ApiError, Code};
pub use offline::offline_check;
pub use settings::Settings;
pub use signing::sign_request;
pub use startup::{Application, ShutdownHandle};
pub use state::AppState;

//! The redemption service: merchant point-of-sale terminals verify and redeem vouchers at
//! checkout (one-step redemption, authorise/capture/void holds, reversals), administrators
//! register merchants and terminals. actix-web over the shared storage crate, built with
//! the shared platform crate; it imports no other service.
//!
//! Dependencies point one way: [`routes`] (thin handlers) and [`terminal_auth`] (the
//! signed-request extractor) → the flows ([`checkout`], [`holds`], [`reversals`],
//! [`queries`], [`merchants`]) → [`state`] ([`metrics`], [`settings`]); [`error`] is the
//! code table; [`offline`] is the network-free pre-check; [`openapi`] is a leaf that only
//! [`startup`] reads; [`commands`] is the command line.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod caches;
pub mod checkout;
pub mod commands;
pub mod error;
pub mod extras;
pub mod holds;
pub mod merchants;
pub mod metrics;
pub mod offline;
pub mod openapi;
pub mod pairing;
pub mod queries;
pub mod quote;
pub mod reversals;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod terminal_auth;
pub mod terminal_secrets;
pub mod tickets;

pub use error::{ApiError, Code};
pub use offline::offline_check;
pub use settings::Settings;
pub use startup::{Application, ShutdownHandle};
pub use state::AppState;
pub use voucher_core::signing::sign_request;

//! The issuance service: residents claim vouchers in timed rounds (the rush) and list
//! their vouchers; administrators create programs and campaigns, add rounds, pause, watch
//! counters and issue to lists. actix-web over the shared storage crate, built with the
//! shared platform crate.
//!
//! Dependencies point one way: [`routes`] (thin handlers) and [`auth`] (extractors) →
//! the flows ([`claims`], [`catalog`], [`vouchers`], [`admin`], [`bulk`]) → [`state`]
//! ([`identities`], [`metrics`], [`settings`]); [`error`] is the code table; [`openapi`]
//! (with [`schemas`]) is a leaf that only [`startup`] reads; [`cli`] is the command line
//! (serve, migrate, persister, expire, keygen, rotate-key, dev-idp).
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admin;
pub mod auth;
pub mod bulk;
pub mod catalog;
pub mod claims;
pub mod cli;
pub mod dev_idp;
pub mod error;
pub mod history;
pub mod identities;
pub mod lottery;
pub mod metrics;
pub mod openapi;
pub mod persisted;
pub mod routes;
pub mod schemas;
pub mod settings;
pub mod startup;
pub mod state;
pub mod trade_in;
pub mod vouchers;

pub use cli::keys::{generate_dev_secrets, DevSecrets};
pub use error::{ApiError, Code};
pub use settings::Settings;
pub use startup::{Application, ShutdownHandle};
pub use state::AppState;

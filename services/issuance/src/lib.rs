//! The issuance service: residents claim vouchers in timed rounds (the rush) and list
//! their vouchers; administrators create programs and campaigns, add rounds, pause, watch
//! counters and issue to lists. actix-web over the shared storage crate.
//!
//! Layout: [`startup`] builds and runs the app; [`routes`] holds thin handlers; the
//! service modules ([`claims`], [`catalog`], [`vouchers`], [`admin`], [`bulk`]) hold the
//! flows; [`error`] is the one error type with its code table; [`auth`], [`rate_limit`],
//! [`extract`], [`metrics`] and [`telemetry`] are the cross-cutting concerns; [`settings`]
//! and [`secrets`] are what the process is given.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admin;
pub mod auth;
pub mod bulk;
pub mod catalog;
pub mod claims;
pub mod commands;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod persisted;
pub mod rate_limit;
pub mod routes;
pub mod secrets;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod vouchers;

pub use error::{ApiError, Code};
pub use secrets::{generate_dev_secrets, DevSecrets};
pub use settings::Settings;
pub use startup::{Application, ShutdownHandle};
pub use state::AppState;

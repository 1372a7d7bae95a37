//! What every service shares, so that it lives once and behaves the same everywhere:
//!
//! - [`settings`]: the layered loader and the sections every service has (one key per
//!   setting across services);
//! - [`error`]: the error envelope, the code tables ([`error_codes!`]) and [`ApiError`];
//! - [`extract`]: body extractors (decompression and size limits) and the JSON error mapping;
//! - [`limit`]: keyed rate limits and the client-IP rule;
//! - [`metrics`], [`telemetry`]: HTTP metrics, dependency gauges, logs and request ids;
//! - [`app`]: the one app builder and the request deadline; [`ops`]: `/healthz`, `/readyz`,
//!   `/metrics`, `/openapi.json`; [`openapi`]: the statuses the plumbing adds to every
//!   documented operation, and the document as the route table for `405`; [`server`]:
//!   serving and the bounded shutdown;
//! - [`admin`]: administrators' keys with place scope; [`secrets`]: loading each secret
//!   file on its own, so a process holds only what it needs.
//!
//! No service imports another service; each imports this crate.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admin;
pub mod app;
pub mod error;
pub mod extract;
pub mod limit;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod telemetry;

pub use error::{ApiError, Common, ErrorBody, ErrorCode};

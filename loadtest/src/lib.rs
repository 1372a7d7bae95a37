//! The rush simulator and the benchmark harness.
//!
//! - [`client`], [`residents`]: the platform's API as a phone or an administrator uses it,
//!   and residents with identity tokens.
//! - [`driver`], [`stats`]: the load engine (closed and open loop) and what it measures (HDR
//!   histograms, per-second timeline, outcomes by code).
//! - [`scenario`]: the rush over HTTP, the checkout, and their baselines, each verified by
//!   [`invariants`] after the run; [`probe`] reads Redis and process memory.
//! - [`standard`], [`report`], [`chart`]: the standard benchmark (everything in one run), its
//!   JSON, Markdown and PNG reports; [`fixed`]: the report's decimals from integers.
//! - [`readme`]: the README's benchmark tables, rendered from a report's JSON.
//! - [`rush`]: the demo's small rush (`src/bin/demo.rs`).
//!
//! The binaries are thin: `bench` (the benchmark) and `demo` (the demo driver).
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod chart;
pub mod client;
pub mod driver;
pub mod fixed;
pub mod invariants;
pub mod probe;
pub mod readme;
pub mod report;
pub mod residents;
pub mod rush;
pub mod scenario;
pub mod schemes;
pub mod standard;
pub mod stats;
pub mod terminal;

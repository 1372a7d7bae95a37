//! The rush simulator: an HTTP client for the platform's APIs, a closed-loop claim rush with
//! latency recorded in HDR histograms, and the report it prints. The demo (`src/bin/demo.rs`)
//! drives a small rush with it; the benchmark harness grows from the same pieces.
#![forbid(unsafe_code)]

pub mod client;
pub mod residents;
pub mod rush;
pub mod terminal;

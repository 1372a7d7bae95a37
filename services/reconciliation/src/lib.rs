//! The reconciliation job (对账结算): a command-line batch job, scheduled daily, that
//!
//! - **settles** a period ([`settle`]): aggregates redemptions and reversals in SQL, splits
//!   each city's actual spending between the province and the city (and county) with the pure
//!   arithmetic of [`voucher_core::settlement`], computes each merchant's payable, and writes
//!   one settlement run per program with a batch per city, its lines and balanced
//!   double-entry postings ([`ledger`]) in one transaction; re-running a settled period
//!   writes nothing and prints the same report ([`report`]), because reports are rendered
//!   only from what the run stored;
//! - moves batches through draft → city confirmed → province confirmed → paid
//!   ([`workflow`]), each step by an administrator scoped to a place ([`auth`]);
//! - **checks** Redis hot state against PostgreSQL ([`check`]) and **rebuilds** it
//!   ([`rebuild`], invariant I7);
//! - **reviews** redemptions for suspected cash-out (套现) patterns ([`review`]);
//! - generates a benchmark period ([`bench`]).
//!
//! It also **serves** the finance console ([`serve`], `reconciliation serve`): the same
//! functions over HTTP for people, with sessions, CSRF protection, place scope and an
//! audit trail, and the console page at `/console/`.
//!
//! The binary (`src/main.rs`, [`cli`]) is a thin layer over these functions, which the
//! system tests call directly.
#![forbid(unsafe_code)]

pub mod advances;
pub mod aggregate;
pub mod auth;
pub mod bench;
pub mod check;
pub mod cli;
pub mod error;
pub mod ledger;
pub mod money;
pub mod period;
pub mod places;
pub mod rebuild;
pub mod report;
pub mod review;
pub mod serve;
pub mod settle;
pub mod workflow;

pub use error::ReconError;
pub use period::Period;

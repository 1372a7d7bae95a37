//! The system tests: one test binary for every suite (one link, one run), rooted here.
//! Every test starts its own private Redis and its own database; see `system_tests`.

// Tests state their expectations with unwrap and spell out the shapes they read from Redis.
#![allow(
    clippy::unwrap_used,
    clippy::type_complexity,
    clippy::inconsistent_digit_grouping, // amounts are written yuan_fen
    clippy::too_many_arguments,          // fixtures spell out every column
    clippy::zombie_processes,            // killed children are reaped by their harness
    dead_code,                           // each harness serves several suites
    missing_docs
)]

mod issuance_http_support;
mod redemption_support;
mod store_support;
mod support;

mod store_claims;
mod store_expiry;
mod store_layout;
mod store_persister;
mod store_pg;
mod store_race;
mod store_restart;
mod store_rounds;

mod issuance_bad_input;
mod issuance_claims;
mod issuance_expiry;
mod issuance_flows;
mod issuance_http;
mod issuance_persister_crash;

mod loadtest_checkout_smoke;
mod loadtest_smoke;

mod reconciliation_check;
mod reconciliation_review;
mod reconciliation_schemes;
mod reconciliation_settle;
mod reconciliation_support;
mod reconciliation_workflow;

mod record_defence;
mod redemption_checkout;
mod redemption_group_commit;
mod redemption_limits;
mod schemes_checkout;
mod terminal_secrets;

mod durability;
mod hot_state_guard;
mod outage;
mod platform_faults;
mod platform_process;
mod platform_settings;

mod abuse;
mod api_contract;
mod authz_matrix;
mod browser_console;
mod browser_pages;
mod browser_support;
mod console_api;
mod console_support;
mod fault_support;
mod fault_table;
mod lottery;
mod pages_api;
mod schemes_tickets;
mod stack_support;
mod trade_in;

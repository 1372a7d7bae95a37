//! HTTP routes. Each module exposes `configure(&mut web::ServiceConfig)`; handlers are thin:
//! extract → call a service module (`claims`, `catalog`, `vouchers`, `admin`, `bulk`) →
//! map the result to a status. Business rules live in those modules, not here.

pub mod admin;
pub mod lottery;
pub mod residents;
pub mod trade_in;

use actix_web::web;

/// Every route of the service (the operations routes are the platform's).
pub fn configure(cfg: &mut web::ServiceConfig) {
    residents::configure(cfg);
    admin::configure(cfg);
    lottery::configure(cfg);
    trade_in::configure(cfg);
}

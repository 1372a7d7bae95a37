//! HTTP routes. Each module exposes `configure(&mut web::ServiceConfig)`; handlers are thin:
//! extract → call a service module → map the result to a response.

pub mod admin;
pub mod extras;
pub mod terminal;
pub mod tickets;

use actix_web::web;

/// Every route of the service (the operations routes are the platform's).
pub fn configure(cfg: &mut web::ServiceConfig) {
    terminal::configure(cfg);
    admin::configure(cfg);
    extras::configure(cfg);
    tickets::configure(cfg);
}

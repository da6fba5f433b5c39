//! The handlers, one file per resource; `web::api_routes` and `web::ingest_routes` mount them.

pub mod deliveries;
pub mod events;
pub mod keys;
pub mod meta;
pub mod webhooks;

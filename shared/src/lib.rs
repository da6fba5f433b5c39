//! Herald's library crate: the domain (catalog, events, webhooks, matching, formats, signing,
//! deliveries), the ports (`Store`, `Queue`) with their DynamoDB/SQS and in-memory adapters, the
//! services that orchestrate them, and the axum router every host serves.

pub mod aws;
pub mod catalog;
pub mod config;
pub mod delivery;
pub mod error;
pub mod event;
pub mod fields;
pub mod format;
pub mod http;
pub mod ids;
pub mod matching;
pub mod metrics;
pub mod operational;
pub mod queue;
pub mod recovery;
pub mod runtime;
pub mod scope;
pub mod secret;
pub mod service;
pub mod signing;
pub mod stats;
pub mod store;
pub mod url_policy;
pub mod web;
pub mod webhook;

pub use config::Config;
pub use error::{Error, FieldError};

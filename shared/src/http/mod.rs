//! Outbound HTTP: the one client every delivery uses, behind the SSRF guard.

pub mod client;
pub mod guard;

pub use client::{DeliveryClient, DeliveryError, PostOutcome};

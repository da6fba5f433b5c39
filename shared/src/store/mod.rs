//! The storage port: tenants and their keys, webhooks, deliveries, and ingest's dedupe claims.

pub mod dynamodb;
pub mod memory;

pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;

use crate::delivery::Delivery;
use crate::error::Result;
use crate::webhook::Webhook;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An API key as stored: only its SHA-256 hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub hash: String,
    pub created_at: OffsetDateTime,
}

/// One page of a listing; `after` of the next call is the last item's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<()>;
    /// Stores a key (overwriting one with the same hash).
    async fn put_api_key(&self, key: &ApiKey) -> Result<()>;
    async fn tenant_for_key(&self, key_hash: &str) -> Result<Option<String>>;
    /// Revokes one of the tenant's keys; `false` when the tenant has no such key.
    async fn delete_api_key(&self, tenant_id: &str, key_id: &str) -> Result<bool>;

    /// Fails with `Error::Conflict` when the id is taken.
    async fn create_webhook(&self, webhook: &Webhook) -> Result<()>;
    async fn get_webhook(&self, tenant_id: &str, id: &str) -> Result<Option<Webhook>>;
    /// Replaces an existing webhook; `false` when it does not exist (it is not created).
    async fn update_webhook(&self, webhook: &Webhook) -> Result<bool>;
    async fn count_webhooks(&self, tenant_id: &str) -> Result<usize>;
    /// The tenant's webhooks in creation order, `limit` at most, after the id `after`.
    async fn list_webhooks(
        &self,
        tenant_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Webhook>>;
    /// Every webhook of the tenant that is enabled: what dispatch matches against.
    async fn enabled_webhooks(&self, tenant_id: &str) -> Result<Vec<Webhook>>;
    /// `false` when there was no such webhook.
    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<bool>;

    /// Creates or replaces a delivery record.
    async fn put_delivery(&self, delivery: &Delivery) -> Result<()>;
    /// Takes the next attempt of a delivery for one run: stores `delivery` (carrying its
    /// `leased_until`) only when no record exists yet, or the stored one belongs to the same
    /// tenant, still has `delivery.attempts.len()` attempts, is neither succeeded nor failed and
    /// holds no lease live at `now`. `false` when another run holds it or it has moved on: nothing is written.
    async fn lease_delivery(&self, delivery: &Delivery, now: OffsetDateTime) -> Result<bool>;
    async fn get_delivery(&self, tenant_id: &str, id: &str) -> Result<Option<Delivery>>;
    /// A webhook's deliveries, newest first, `limit` at most, older than the id `before`.
    async fn list_deliveries(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Page<Delivery>>;

    /// Claims an event id for the dedupe window and keeps the accepted envelope (for redelivery,
    /// as long as its deliveries are kept). `true` when this call claimed it, `false` when a live
    /// claim exists (a duplicate).
    async fn claim_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        envelope: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool>;
    /// The envelope last accepted under this event id.
    async fn get_event(&self, tenant_id: &str, event_id: &str) -> Result<Option<String>>;
    /// Gives a claim back, so an event that could not be enqueued can be posted again.
    async fn release_event_id(&self, tenant_id: &str, event_id: &str) -> Result<()>;
}

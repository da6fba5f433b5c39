//! The storage port, one role trait per kind of record: tenants and their keys
//! ([`TenantStore`]), webhooks ([`WebhookStore`]), deliveries ([`DeliveryStore`]) and ingest's
//! accepted events with their dedupe claims ([`EventLog`]) and recovery jobs
//! ([`RecoveryStore`]) and a webhook's counts per hour ([`StatsStore`]). [`Store`] is all six:
//! what the services hold. A test double implements the roles it fakes and delegates the rest.

pub mod dynamodb;
pub mod memory;

pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;

use crate::delivery::Delivery;
use crate::error::Result;
use crate::recovery::Recovery;
use crate::scope::Scopes;
use crate::stats::Counts;
use crate::webhook::Webhook;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An API key as stored: only its SHA-256 hash, never the key. Name and scopes are fixed when
/// the key is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub hash: String,
    /// A label for people; may be empty (keys made before names existed have none).
    pub name: String,
    pub scopes: Scopes,
    pub created_at: OffsetDateTime,
    /// The UTC day the key was last presented, recorded at most once a day.
    pub last_used: Option<Date>,
}

/// How a day is written where keys keep it and where the API shows it: `2026-12-02`. Days in
/// this form sort as text in date order, which the conditional write of a key's last use
/// relies on.
pub const DAY: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// One page of a listing; `after` of the next call is the last item's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

/// Tenants and their API keys.
#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<()>;
    /// Stores a key (overwriting one with the same hash).
    async fn put_api_key(&self, key: &ApiKey) -> Result<()>;
    /// The key with this hash: how a request is authenticated.
    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>>;
    /// One of the tenant's keys, by id.
    async fn get_api_key(&self, tenant_id: &str, key_id: &str) -> Result<Option<ApiKey>>;
    /// The tenant's keys in id (creation) order, `limit` at most, after the id `after`.
    async fn list_api_keys(
        &self,
        tenant_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<ApiKey>>;
    /// Records `day` as the key's last use. Writes nothing when the key is gone or already
    /// records `day` or a later one, so concurrent first uses of a day cannot move it back.
    async fn touch_api_key(&self, key_hash: &str, day: Date) -> Result<()>;
    /// Revokes one of the tenant's keys; `false` when the tenant has no such key.
    async fn delete_api_key(&self, tenant_id: &str, key_id: &str) -> Result<bool>;
}

/// Webhooks, under their tenant.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates the webhook while its tenant has fewer than `max`: `false` (nothing written) at
    /// the limit. Atomic, so concurrent creates never pass it together. Fails with
    /// `Error::Conflict` when the id is taken.
    async fn create_webhook(&self, webhook: &Webhook, max: usize) -> Result<bool>;
    async fn get_webhook(&self, tenant_id: &str, id: &str) -> Result<Option<Webhook>>;
    /// Replaces an existing webhook whose stored revision is still `webhook.revision` (the one
    /// its writer read), storing it with the next revision. `false` when it does not exist or
    /// has been written since: nothing is written, and the writer re-reads and re-applies.
    async fn update_webhook(&self, webhook: &Webhook) -> Result<bool>;
    async fn count_webhooks(&self, tenant_id: &str) -> Result<usize>;
    /// The tenant's webhooks in creation order, `limit` at most, after the id `after`.
    async fn list_webhooks(
        &self,
        tenant_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Webhook>>;
    /// Every webhook of the tenant, enabled or not: what dispatch matches an event against (a
    /// disabled one that matches holds the delivery).
    async fn subscribed_webhooks(&self, tenant_id: &str) -> Result<Vec<Webhook>>;
    /// `false` when there was no such webhook.
    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<bool>;
}

/// Deliveries: one record per (event, webhook), with its attempts.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Creates or replaces a delivery record.
    async fn put_delivery(&self, delivery: &Delivery) -> Result<()>;
    /// Creates a delivery record only where none exists: `false`, and nothing written, when one
    /// does. What holding a delivery writes, so a repeated fan-out never overwrites one that was
    /// made or recovered since.
    async fn create_delivery(&self, delivery: &Delivery) -> Result<bool>;
    /// Takes the next attempt of a delivery for one run: stores `delivery` (carrying its
    /// `leased_until`) only when no record exists yet, or the stored one belongs to the same
    /// tenant, still has `delivery.attempts.len()` attempts, is neither succeeded nor failed and
    /// holds no lease live at `now`. `false` when another run holds it or it has moved on: nothing is written.
    async fn lease_delivery(&self, delivery: &Delivery, now: OffsetDateTime) -> Result<bool>;
    /// Writes `delivery` over the stored record only while that is still `read`: the same
    /// tenant, as many attempts, the same status, and no lease live at `now`. `false` when an
    /// attempt ran or was recorded meanwhile: nothing is written. What a writer that is not
    /// dispatch (a redelivery) uses, so it never erases an attempt it did not see.
    async fn replace_delivery(
        &self,
        delivery: &Delivery,
        read: &Delivery,
        now: OffsetDateTime,
    ) -> Result<bool>;
    async fn get_delivery(&self, tenant_id: &str, id: &str) -> Result<Option<Delivery>>;
    /// A webhook's deliveries, newest first, `limit` at most, older than the id `before`.
    async fn list_deliveries(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Page<Delivery>>;
}

/// The sweep's reading of the deliveries: a port of its own, outside [`Store`], so the functions
/// that never sweep do not link it.
#[async_trait]
pub trait SweepIndex: Send + Sync {
    /// Deliveries of every tenant whose `sweep_at` is at or before `before`, soonest first,
    /// `limit` at most: what the sweep queues. Read from an index that may lag the last write
    /// by a moment, so a caller checks each one's `sweep_at` again.
    async fn due_for_sweep(&self, before: OffsetDateTime, limit: usize) -> Result<Vec<Delivery>>;
}

/// Accepted events: the dedupe claim of each id, with the envelope kept for redelivery.
///
/// A claim names the post that wrote it (or took it over), and one confirmation per post marks
/// all of that post's claims confirmed: a batch of 100 events is confirmed in one write, not 100.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Claims an event id for the dedupe window for the post `post` and keeps the accepted
    /// envelope (for redelivery, as long as its deliveries are kept), pending until
    /// [`EventLog::confirm_post`] confirms that post. When a live claim exists nothing is
    /// written, and the answer says what state it is in.
    async fn claim_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        envelope: &str,
        post: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Claim>;
    /// Marks every claim that names `post` (and was not released since) confirmed: their
    /// envelopes are on the queue. `until` is the latest end of their dedupe windows.
    async fn confirm_post(&self, tenant_id: &str, post: &str, until: OffsetDateTime) -> Result<()>;
    /// Takes over a pending claim whose holder is presumed dead for the post `post`: its claim
    /// time becomes `now` and it names `post`, on the condition that it is still pending and
    /// still claimed at `seen`. `false` when another post took it over or it was confirmed
    /// meanwhile.
    async fn take_over_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        post: &str,
        seen: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool>;
    /// Keeps an accepted envelope whose event id Herald made, as a claim already confirmed
    /// until `until`, in one plain write: no other post can have carried the id yet, so it
    /// needs no pending state and no confirmation. A later post that names the id (learned
    /// from the answer) within the window is a duplicate.
    async fn keep_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        envelope: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// The envelope last accepted under this event id.
    async fn get_event(&self, tenant_id: &str, event_id: &str) -> Result<Option<String>>;
    /// Gives a pending claim up after its enqueue failed: it names no post any more, so its
    /// post's confirmation does not confirm it, and the next post of the id takes it over at
    /// once and queues the stored envelope. Called by the post holding the claim, before it
    /// confirms; a kept event's claim is left as it is.
    async fn release_event_id(&self, tenant_id: &str, event_id: &str) -> Result<()>;
}

/// Recovery jobs (`crate::recovery`).
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Creates or replaces a recovery job.
    async fn put_recovery(&self, recovery: &Recovery) -> Result<()>;
    async fn get_recovery(&self, tenant_id: &str, id: &str) -> Result<Option<Recovery>>;
    /// Running recovery jobs of every tenant, `limit` at most: what the sweep moves on.
    async fn running_recoveries(&self, limit: usize) -> Result<Vec<Recovery>>;
}

/// A webhook's attempt counts per hour (`crate::stats`).
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Adds `counts` to the webhook's `hour` (the start of a UTC hour). Concurrent adds to one
    /// hour all count.
    async fn add_counts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        hour: OffsetDateTime,
        counts: &Counts,
    ) -> Result<()>;
    /// The webhook's hours from `since` on that have counts, oldest first.
    async fn counts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, Counts)>>;
}

/// Every role: what the services hold.
pub trait Store:
    TenantStore + WebhookStore + DeliveryStore + EventLog + RecoveryStore + StatsStore
{
}

impl<
        T: TenantStore + WebhookStore + DeliveryStore + EventLog + RecoveryStore + StatsStore + ?Sized,
    > Store for T
{
}

/// The state of an event id's live claim, as [`EventLog::claim_event`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This call claimed the id: its envelope is stored, pending.
    Won,
    /// The id's envelope is on the queue: this post is a duplicate.
    Confirmed,
    /// An earlier post holds the id and has not confirmed its enqueue: it is still queueing,
    /// or it failed or died before it could. `claimed_at` is the epoch after a release.
    Pending {
        envelope: String,
        claimed_at: OffsetDateTime,
        /// The end of the claim's dedupe window, which its confirmation must outlast.
        until: OffsetDateTime,
    },
}

//! The in-memory store: the local stack's default and the unit tests' store. A real
//! implementation with the same semantics as DynamoDB, not a mock.

use super::{
    ApiKey, Claim, DeliveryStore, EventLog, Page, RecoveryStore, StatsStore, SweepIndex, Tenant,
    TenantStore, WebhookStore,
};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Error, Result};
use crate::recovery::{Recovery, RecoveryState};
use crate::stats::Counts;
use crate::webhook::Webhook;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use time::{Date, OffsetDateTime};

#[derive(Default)]
struct State {
    tenants: HashMap<String, Tenant>,
    keys: HashMap<String, ApiKey>,
    /// (tenant, webhook id) in id order, which is creation order for ULIDs.
    webhooks: BTreeMap<(String, String), Webhook>,
    /// By id. Hashed, not ordered: each attempt looks its delivery up twice, and a tree of
    /// string keys costs a cache miss per level; the log's listing sorts what it shows.
    deliveries: HashMap<Arc<str>, Delivery, foldhash::fast::RandomState>,
    /// By (tenant, event id).
    claims: HashMap<(String, String), EventClaim>,
    /// The confirmed posts, by (tenant, post id).
    posts: HashSet<(String, String)>,
    /// Recovery jobs, by (tenant, id).
    recoveries: BTreeMap<(String, String), Recovery>,
    /// Counts by (tenant, webhook, hour), in hour order within a webhook.
    counts: BTreeMap<(String, String, OffsetDateTime), Counts>,
}

struct EventClaim {
    dedupe_until: OffsetDateTime,
    envelope: String,
    /// When the pending claim was taken; `None` for a kept event, confirmed as written.
    claimed_at: Option<OffsetDateTime>,
    /// The post whose confirmation confirms this claim; `None` once released.
    post: Option<String>,
}

#[derive(Default)]
pub struct MemoryStore {
    state: RwLock<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl TenantStore for MemoryStore {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.write()
            .tenants
            .insert(tenant.id.clone(), tenant.clone());
        Ok(())
    }

    async fn put_api_key(&self, key: &ApiKey) -> Result<()> {
        self.write().keys.insert(key.hash.clone(), key.clone());
        Ok(())
    }

    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        Ok(self.read().keys.get(key_hash).cloned())
    }

    async fn get_api_key(&self, tenant_id: &str, key_id: &str) -> Result<Option<ApiKey>> {
        Ok(self
            .read()
            .keys
            .values()
            .find(|k| k.tenant_id == tenant_id && k.id == key_id)
            .cloned())
    }

    async fn list_api_keys(
        &self,
        tenant_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<ApiKey>> {
        let state = self.read();
        let mut items: Vec<ApiKey> = state
            .keys
            .values()
            .filter(|k| k.tenant_id == tenant_id && after.is_none_or(|a| k.id.as_str() > a))
            .cloned()
            .collect();
        items.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }

    async fn touch_api_key(&self, key_hash: &str, day: Date) -> Result<()> {
        if let Some(key) = self.write().keys.get_mut(key_hash) {
            if key.last_used.is_none_or(|d| d < day) {
                key.last_used = Some(day);
            }
        }
        Ok(())
    }

    async fn delete_api_key(&self, tenant_id: &str, key_id: &str) -> Result<bool> {
        let mut state = self.write();
        let hash = state
            .keys
            .values()
            .find(|k| k.tenant_id == tenant_id && k.id == key_id)
            .map(|k| k.hash.clone());
        Ok(hash.is_some_and(|h| state.keys.remove(&h).is_some()))
    }
}

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn create_webhook(&self, webhook: &Webhook, max: usize) -> Result<bool> {
        let mut state = self.write();
        let key = (webhook.tenant_id.clone(), webhook.id.clone());
        if state.webhooks.contains_key(&key) {
            return Err(Error::Conflict(format!("webhook {} exists", webhook.id)));
        }
        let count = state
            .webhooks
            .keys()
            .filter(|(t, _)| *t == webhook.tenant_id)
            .count();
        if count >= max {
            return Ok(false);
        }
        state.webhooks.insert(key, webhook.clone());
        Ok(true)
    }

    async fn get_webhook(&self, tenant_id: &str, id: &str) -> Result<Option<Webhook>> {
        Ok(self
            .read()
            .webhooks
            .get(&(tenant_id.to_string(), id.to_string()))
            .cloned())
    }

    async fn update_webhook(&self, webhook: &Webhook) -> Result<bool> {
        let mut state = self.write();
        match state
            .webhooks
            .get_mut(&(webhook.tenant_id.clone(), webhook.id.clone()))
        {
            Some(slot) if slot.revision == webhook.revision => {
                *slot = webhook.clone();
                slot.revision += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn count_webhooks(&self, tenant_id: &str) -> Result<usize> {
        Ok(self
            .read()
            .webhooks
            .keys()
            .filter(|(t, _)| t == tenant_id)
            .count())
    }

    async fn list_webhooks(
        &self,
        tenant_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Webhook>> {
        let state = self.read();
        let mut items: Vec<Webhook> = state
            .webhooks
            .range((tenant_id.to_string(), after.unwrap_or("").to_string())..)
            .take_while(|((t, _), _)| t == tenant_id)
            .filter(|((_, id), _)| after.is_none_or(|a| id.as_str() > a))
            .take(limit + 1)
            .map(|(_, w)| w.clone())
            .collect();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }

    async fn subscribed_webhooks(&self, tenant_id: &str) -> Result<Vec<Webhook>> {
        Ok(self
            .read()
            .webhooks
            .range((tenant_id.to_string(), String::new())..)
            .take_while(|((t, _), _)| t == tenant_id)
            .map(|(_, w)| w.clone())
            .collect())
    }

    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<bool> {
        Ok(self
            .write()
            .webhooks
            .remove(&(tenant_id.to_string(), id.to_string()))
            .is_some())
    }
}

#[async_trait]
impl DeliveryStore for MemoryStore {
    async fn put_delivery(&self, delivery: &Delivery) -> Result<()> {
        let mut state = self.write();
        // A delivery is put over its lease: the stored copy's buffers are reused.
        match state.deliveries.get_mut(&*delivery.id) {
            Some(stored) => stored.clone_from(delivery),
            None => {
                state
                    .deliveries
                    .insert(delivery.id.clone(), delivery.clone());
            }
        }
        Ok(())
    }

    async fn create_delivery(&self, delivery: &Delivery) -> Result<bool> {
        let mut state = self.write();
        if state.deliveries.contains_key(&*delivery.id) {
            return Ok(false);
        }
        state
            .deliveries
            .insert(delivery.id.clone(), delivery.clone());
        Ok(true)
    }

    async fn lease_delivery(&self, delivery: &Delivery, now: OffsetDateTime) -> Result<bool> {
        let mut state = self.write();
        match state.deliveries.get_mut(&*delivery.id) {
            Some(stored) => {
                let free = stored.tenant_id == delivery.tenant_id
                    && stored.attempts.len() == delivery.attempts.len()
                    && !matches!(
                        stored.status,
                        DeliveryStatus::Succeeded | DeliveryStatus::Failed
                    )
                    && !stored.leased_at(now);
                if free {
                    stored.clone_from(delivery);
                }
                Ok(free)
            }
            None => {
                state
                    .deliveries
                    .insert(delivery.id.clone(), delivery.clone());
                Ok(true)
            }
        }
    }

    async fn replace_delivery(
        &self,
        delivery: &Delivery,
        read: &Delivery,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut state = self.write();
        let Some(stored) = state.deliveries.get_mut(&*delivery.id) else {
            return Ok(false);
        };
        let unchanged = stored.tenant_id == read.tenant_id
            && stored.attempts.len() == read.attempts.len()
            && stored.status == read.status
            && !stored.leased_at(now);
        if unchanged {
            stored.clone_from(delivery);
        }
        Ok(unchanged)
    }

    async fn get_delivery(&self, tenant_id: &str, id: &str) -> Result<Option<Delivery>> {
        Ok(self
            .read()
            .deliveries
            .get(id)
            .filter(|d| *d.tenant_id == *tenant_id)
            .cloned())
    }

    async fn list_deliveries(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Page<Delivery>> {
        let state = self.read();
        let mut matching: Vec<&Delivery> = state
            .deliveries
            .values()
            .filter(|d| before.is_none_or(|b| *d.id < *b))
            .filter(|d| *d.tenant_id == *tenant_id && *d.webhook_id == *webhook_id)
            .collect();
        // Newest first: ids are ULIDs, so their order is their creation order.
        matching.sort_unstable_by(|a, b| b.id.cmp(&a.id));
        let mut items: Vec<Delivery> = matching.into_iter().take(limit + 1).cloned().collect();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn claim_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        envelope: &str,
        post: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Claim> {
        let mut state = self.write();
        let key = (tenant_id.to_string(), event_id.to_string());
        match state.claims.get(&key) {
            Some(live) if live.dedupe_until > now => {
                let confirmed = live
                    .post
                    .as_ref()
                    .is_some_and(|p| state.posts.contains(&(key.0.clone(), p.clone())));
                Ok(match live.claimed_at {
                    Some(claimed_at) if !confirmed => Claim::Pending {
                        envelope: live.envelope.clone(),
                        claimed_at,
                        until: live.dedupe_until,
                    },
                    _ => Claim::Confirmed,
                })
            }
            _ => {
                state.claims.insert(
                    key,
                    EventClaim {
                        dedupe_until: until,
                        envelope: envelope.to_string(),
                        claimed_at: Some(now),
                        post: Some(post.to_string()),
                    },
                );
                Ok(Claim::Won)
            }
        }
    }

    async fn confirm_post(
        &self,
        tenant_id: &str,
        post: &str,
        _until: OffsetDateTime,
    ) -> Result<()> {
        self.write()
            .posts
            .insert((tenant_id.to_string(), post.to_string()));
        Ok(())
    }

    async fn take_over_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        post: &str,
        seen: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut state = self.write();
        match state
            .claims
            .get_mut(&(tenant_id.to_string(), event_id.to_string()))
        {
            Some(claim) if claim.claimed_at == Some(seen) => {
                claim.claimed_at = Some(now);
                claim.post = Some(post.to_string());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn keep_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        envelope: &str,
        until: OffsetDateTime,
        _now: OffsetDateTime,
    ) -> Result<()> {
        self.write().claims.insert(
            (tenant_id.to_string(), event_id.to_string()),
            EventClaim {
                dedupe_until: until,
                envelope: envelope.to_string(),
                claimed_at: None,
                post: None,
            },
        );
        Ok(())
    }

    async fn get_event(&self, tenant_id: &str, event_id: &str) -> Result<Option<String>> {
        Ok(self
            .read()
            .claims
            .get(&(tenant_id.to_string(), event_id.to_string()))
            .map(|claim| claim.envelope.clone()))
    }

    async fn release_event_id(&self, tenant_id: &str, event_id: &str) -> Result<()> {
        if let Some(claim) = self
            .write()
            .claims
            .get_mut(&(tenant_id.to_string(), event_id.to_string()))
        {
            if claim.claimed_at.is_some() {
                claim.claimed_at = Some(OffsetDateTime::UNIX_EPOCH);
                claim.post = None;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl RecoveryStore for MemoryStore {
    async fn put_recovery(&self, recovery: &Recovery) -> Result<()> {
        self.write().recoveries.insert(
            (recovery.tenant_id.clone(), recovery.id.clone()),
            recovery.clone(),
        );
        Ok(())
    }

    async fn get_recovery(&self, tenant_id: &str, id: &str) -> Result<Option<Recovery>> {
        Ok(self
            .read()
            .recoveries
            .get(&(tenant_id.to_string(), id.to_string()))
            .cloned())
    }

    async fn running_recoveries(&self, limit: usize) -> Result<Vec<Recovery>> {
        Ok(self
            .read()
            .recoveries
            .values()
            .filter(|r| r.state == RecoveryState::Running)
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl StatsStore for MemoryStore {
    async fn add_counts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        hour: OffsetDateTime,
        counts: &Counts,
    ) -> Result<()> {
        self.write()
            .counts
            .entry((tenant_id.to_string(), webhook_id.to_string(), hour))
            .or_default()
            .add(counts);
        Ok(())
    }

    async fn counts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, Counts)>> {
        let (t, w) = (tenant_id.to_string(), webhook_id.to_string());
        Ok(self
            .read()
            .counts
            .range((t.clone(), w.clone(), since)..)
            .take_while(|((tt, ww, _), _)| *tt == t && *ww == w)
            .map(|((_, _, hour), c)| (*hour, *c))
            .collect())
    }
}

#[async_trait]
impl SweepIndex for MemoryStore {
    async fn due_for_sweep(&self, before: OffsetDateTime, limit: usize) -> Result<Vec<Delivery>> {
        let state = self.read();
        let mut due: Vec<&Delivery> = state
            .deliveries
            .values()
            .filter(|d| d.sweep_at.is_some_and(|at| at <= before))
            .collect();
        due.sort_unstable_by_key(|d| d.sweep_at);
        Ok(due.into_iter().take(limit).cloned().collect())
    }
}

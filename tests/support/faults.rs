//! Store and queue wrappers whose operations fail on demand: fault injection for the
//! "nothing lost" tests.

use async_trait::async_trait;
use herald_shared::delivery::{Delivery, DeliveryStatus};
use herald_shared::error::{Error, Result};
use herald_shared::queue::{Encoded, Queue, Received};
use herald_shared::store::{
    ApiKey, Claim, DeliveryStore, EventLog, Page, Store, Tenant, TenantStore, WebhookStore,
};
use herald_shared::webhook::Webhook;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Switches for [`FlakyStore`] and [`FlakyQueue`].
#[derive(Default)]
pub struct Faults {
    pub fail_put_delivery: AtomicBool,
    pub fail_lease: AtomicBool,
    pub fail_get_delivery: AtomicBool,
    pub fail_send: AtomicBool,
    /// Sends wait for [`Faults::resume`] before they go on (then `fail_send` decides), and
    /// say so on [`Faults::send_entered`]: a send that stalls.
    pub stall_send: AtomicBool,
    pub resume: tokio::sync::Notify,
    pub send_entered: tokio::sync::Notify,
    /// Sends never return: a function killed, or a network that swallows the request.
    pub hang_send: AtomicBool,
    /// Every event claim is written twice, and the second answer is the one returned: the SDK
    /// retrying a claim whose first answer was lost after it was written.
    pub claim_answer_lost: AtomicBool,
    /// The next webhook update finds the webhook edited by another writer since it was read
    /// (its description set to [`EDITED_MEANWHILE`]): two writers at the same moment.
    pub edit_before_webhook_update: AtomicBool,
    /// The next delivery replacement finds one more attempt recorded since the delivery was
    /// read (a copy of its last): dispatch recording while the api redelivers.
    pub attempt_before_delivery_replace: AtomicBool,
    /// The next delivery replacement is written twice and answers with the second try: the
    /// SDK retrying a put whose first answer was lost after it was written.
    pub replace_answer_lost: AtomicBool,
    /// After this many recorded deliveries, the next delivery hangs forever before it starts:
    /// a process killed between two deliveries. 0 means never.
    pub freeze_after_deliveries: AtomicUsize,
    pub deliveries_recorded: AtomicUsize,
    /// Deliveries as last recorded in a final state (succeeded or failed), by id.
    pub finals: std::sync::Mutex<std::collections::HashMap<String, Delivery>>,
    /// Messages the queue took, one by one or in batches.
    pub messages_sent: AtomicUsize,
    /// The hash of every key whose last use was written, once per write.
    pub touched: std::sync::Mutex<Vec<String>>,
}

impl Faults {
    pub fn set(flag: &AtomicBool, on: bool) {
        flag.store(on, Ordering::SeqCst);
    }
}

pub const EDITED_MEANWHILE: &str = "edited meanwhile";

fn injected(what: &str) -> Error {
    Error::Store(format!("injected fault: {what}"))
}

pub struct FlakyStore {
    pub inner: Arc<dyn Store>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl TenantStore for FlakyStore {
    async fn put_tenant(&self, t: &Tenant) -> Result<()> {
        self.inner.put_tenant(t).await
    }
    async fn put_api_key(&self, k: &ApiKey) -> Result<()> {
        self.inner.put_api_key(k).await
    }
    async fn api_key(&self, h: &str) -> Result<Option<ApiKey>> {
        self.inner.api_key(h).await
    }
    async fn get_api_key(&self, t: &str, k: &str) -> Result<Option<ApiKey>> {
        self.inner.get_api_key(t, k).await
    }
    async fn list_api_keys(&self, t: &str, l: usize, a: Option<&str>) -> Result<Page<ApiKey>> {
        self.inner.list_api_keys(t, l, a).await
    }
    async fn touch_api_key(&self, h: &str, day: time::Date) -> Result<()> {
        self.faults.touched.lock().unwrap().push(h.to_string());
        self.inner.touch_api_key(h, day).await
    }
    async fn delete_api_key(&self, t: &str, k: &str) -> Result<bool> {
        self.inner.delete_api_key(t, k).await
    }
}

#[async_trait]
impl WebhookStore for FlakyStore {
    async fn create_webhook(&self, w: &Webhook, max: usize) -> Result<bool> {
        self.inner.create_webhook(w, max).await
    }
    async fn get_webhook(&self, t: &str, id: &str) -> Result<Option<Webhook>> {
        self.inner.get_webhook(t, id).await
    }
    async fn update_webhook(&self, w: &Webhook) -> Result<bool> {
        if self
            .faults
            .edit_before_webhook_update
            .swap(false, Ordering::SeqCst)
        {
            if let Some(mut other) = self.inner.get_webhook(&w.tenant_id, &w.id).await? {
                other.spec.description = EDITED_MEANWHILE.into();
                assert!(self.inner.update_webhook(&other).await?);
            }
        }
        self.inner.update_webhook(w).await
    }
    async fn count_webhooks(&self, t: &str) -> Result<usize> {
        self.inner.count_webhooks(t).await
    }
    async fn list_webhooks(&self, t: &str, l: usize, a: Option<&str>) -> Result<Page<Webhook>> {
        self.inner.list_webhooks(t, l, a).await
    }
    async fn enabled_webhooks(&self, t: &str) -> Result<Vec<Webhook>> {
        self.inner.enabled_webhooks(t).await
    }
    async fn delete_webhook(&self, t: &str, id: &str) -> Result<bool> {
        self.inner.delete_webhook(t, id).await
    }
}

#[async_trait]
impl DeliveryStore for FlakyStore {
    async fn put_delivery(&self, d: &Delivery) -> Result<()> {
        if self.faults.fail_put_delivery.load(Ordering::SeqCst) {
            return Err(injected("put_delivery"));
        }
        self.inner.put_delivery(d).await?;
        self.faults
            .deliveries_recorded
            .fetch_add(1, Ordering::SeqCst);
        if matches!(d.status, DeliveryStatus::Succeeded | DeliveryStatus::Failed) {
            self.faults
                .finals
                .lock()
                .unwrap()
                .insert(d.id.to_string(), d.clone());
        }
        Ok(())
    }
    async fn lease_delivery(&self, d: &Delivery, now: OffsetDateTime) -> Result<bool> {
        if self.faults.fail_lease.load(Ordering::SeqCst) {
            return Err(injected("lease_delivery"));
        }
        // Every attempt starts with its lease: freezing here stops a run between deliveries.
        let limit = self.faults.freeze_after_deliveries.load(Ordering::SeqCst);
        if limit > 0 && self.faults.deliveries_recorded.load(Ordering::SeqCst) >= limit {
            std::future::pending::<()>().await;
        }
        self.inner.lease_delivery(d, now).await
    }
    async fn replace_delivery(
        &self,
        d: &Delivery,
        read: &Delivery,
        now: OffsetDateTime,
    ) -> Result<bool> {
        if self
            .faults
            .attempt_before_delivery_replace
            .swap(false, Ordering::SeqCst)
        {
            if let Some(mut other) = self.inner.get_delivery(&d.tenant_id, &d.id).await? {
                let attempt = other
                    .attempts
                    .last()
                    .cloned()
                    .expect("an attempt to repeat");
                other.record(attempt, None);
                self.inner.put_delivery(&other).await?;
            }
        }
        if self
            .faults
            .replace_answer_lost
            .swap(false, Ordering::SeqCst)
        {
            self.inner.replace_delivery(d, read, now).await?;
        }
        self.inner.replace_delivery(d, read, now).await
    }
    async fn get_delivery(&self, t: &str, id: &str) -> Result<Option<Delivery>> {
        if self.faults.fail_get_delivery.load(Ordering::SeqCst) {
            return Err(injected("get_delivery"));
        }
        self.inner.get_delivery(t, id).await
    }
    async fn due_for_sweep(&self, before: OffsetDateTime, limit: usize) -> Result<Vec<Delivery>> {
        self.inner.due_for_sweep(before, limit).await
    }
    async fn list_deliveries(
        &self,
        t: &str,
        w: &str,
        l: usize,
        b: Option<&str>,
    ) -> Result<Page<Delivery>> {
        self.inner.list_deliveries(t, w, l, b).await
    }
}

#[async_trait]
impl EventLog for FlakyStore {
    async fn claim_event(
        &self,
        t: &str,
        e: &str,
        m: &str,
        u: OffsetDateTime,
        n: OffsetDateTime,
    ) -> Result<Claim> {
        if self.faults.claim_answer_lost.load(Ordering::SeqCst) {
            self.inner.claim_event(t, e, m, u, n).await?;
        }
        self.inner.claim_event(t, e, m, u, n).await
    }
    async fn confirm_event(&self, t: &str, e: &str, u: OffsetDateTime) -> Result<()> {
        self.inner.confirm_event(t, e, u).await
    }
    async fn take_over_event(
        &self,
        t: &str,
        e: &str,
        seen: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        self.inner.take_over_event(t, e, seen, now).await
    }
    async fn get_event(&self, t: &str, e: &str) -> Result<Option<String>> {
        self.inner.get_event(t, e).await
    }
    async fn release_event_id(&self, t: &str, e: &str) -> Result<()> {
        self.inner.release_event_id(t, e).await
    }
}

pub struct FlakyQueue {
    pub inner: Arc<dyn Queue>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Queue for FlakyQueue {
    async fn send(&self, message: Encoded, delay: Duration) -> Result<()> {
        if self.faults.hang_send.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.faults.stall_send.load(Ordering::SeqCst) {
            let resumed = self.faults.resume.notified();
            self.faults.send_entered.notify_one();
            resumed.await;
        }
        if self.faults.fail_send.load(Ordering::SeqCst) {
            return Err(Error::Queue("injected fault: send".into()));
        }
        self.inner.send(message, delay).await?;
        self.faults.messages_sent.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn send_batch(&self, messages: Vec<Encoded>) -> Result<Vec<Result<()>>> {
        if self.faults.fail_send.load(Ordering::SeqCst) {
            return Ok(messages
                .iter()
                .map(|_| Err(Error::Queue("injected fault: send".into())))
                .collect());
        }
        let sent = self.inner.send_batch(messages).await?;
        let taken = sent.iter().filter(|r| r.is_ok()).count();
        self.faults.messages_sent.fetch_add(taken, Ordering::SeqCst);
        Ok(sent)
    }
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>> {
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &str) -> Result<()> {
        self.inner.delete(receipt).await
    }
}

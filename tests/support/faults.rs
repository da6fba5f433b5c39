//! Store and queue wrappers whose operations fail on demand: fault injection for the
//! "nothing lost" tests.

use async_trait::async_trait;
use herald_shared::delivery::{Delivery, DeliveryStatus};
use herald_shared::error::{Error, Result};
use herald_shared::queue::{Encoded, Queue, Received};
use herald_shared::recovery::Recovery;
use herald_shared::stats::Counts;
use herald_shared::store::{
    ApiKey, Claim, DeliveryStore, EventLog, Page, RecoveryStore, StatsStore, Store, Tenant,
    TenantStore, WebhookStore,
};
use herald_shared::webhook::Webhook;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
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
    /// The next this many delivery puts fail (then they succeed again): a throttling burst
    /// that outlasted the SDK's own retries.
    pub refuse_next_puts: AtomicUsize,
    /// The next this many queue sends fail, as `refuse_next_puts` does for puts; in a batch,
    /// each of its first messages left to refuse is refused on its own, as SQS answers a
    /// `SendMessageBatch` entry.
    pub refuse_next_sends: AtomicUsize,
    /// Releases of a dedupe claim fail.
    pub fail_release: AtomicBool,
    /// Adds to a webhook's hourly counts fail, throttled.
    pub fail_counts: AtomicBool,
    /// Dedupe claims asked of the store.
    pub claims: AtomicUsize,
    /// Messages the queue took, one by one or in batches.
    pub messages_sent: AtomicUsize,
    /// AWS's failures at random (`Faults::chaos`); off unless set.
    pub chaos: Mutex<Option<Chaos>>,
    /// What chaos struck: calls by operation and kind.
    pub struck: Mutex<BTreeMap<String, usize>>,
    /// Deliveries whose attempt chaos made Herald redo after its POST, with the window each
    /// time: the sends a receiver may see again.
    pub repeat_windows: Mutex<HashMap<String, Vec<&'static str>>>,
    /// The hash of every key whose last use was written, once per write.
    pub touched: std::sync::Mutex<Vec<String>>,
}

impl Faults {
    pub fn set(flag: &AtomicBool, on: bool) {
        flag.store(on, Ordering::SeqCst);
    }

    /// Strikes `percent` % of the store's and queue's calls, from `seed`.
    pub fn chaos(&self, seed: u64, percent: u32) {
        *self.chaos.lock().unwrap() = Some(Chaos {
            rng: StdRng::seed_from_u64(seed),
            percent,
        });
    }

    /// Whether chaos strikes this call of `op`, and how: throttled always may be; the answer
    /// lost only where `lose` (the call is made, then fails as a timed-out SDK call would).
    fn strike(&self, op: &str, lose: bool) -> Option<Strike> {
        let mut chaos = self.chaos.lock().unwrap();
        let chaos = chaos.as_mut()?;
        let roll = chaos.rng.random_range(0..100);
        let strike = if roll < chaos.percent {
            Strike::Throttled
        } else if lose && roll < 2 * chaos.percent {
            Strike::AnswerLost
        } else {
            return None;
        };
        *self
            .struck
            .lock()
            .unwrap()
            .entry(format!("{op} {strike:?}"))
            .or_default() += 1;
        Some(strike)
    }

    fn may_repeat(&self, delivery_id: &str, window: &'static str) {
        self.repeat_windows
            .lock()
            .unwrap()
            .entry(delivery_id.to_string())
            .or_default()
            .push(window);
    }
}

/// Random failures of the kinds AWS documents, at a rate, from a seed.
pub struct Chaos {
    rng: StdRng,
    percent: u32,
}

/// What chaos does to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strike {
    /// Refused before anything is written: DynamoDB's `ProvisionedThroughputExceededException`
    /// or `ThrottlingException`, SQS's `ThrottlingException` (Herald's `Error::Store`/`Queue`).
    Throttled,
    /// Made, then answered with an error: an SDK call that timed out after its write landed.
    AnswerLost,
}

/// Takes one from a counter of refusals still to make; `true` when one was left.
fn take_one(left: &AtomicUsize) -> bool {
    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// The error a throttled call answers, as the adapters report AWS's.
fn throttled(op: &str) -> Error {
    Error::Store(format!(
        "ProvisionedThroughputExceededException: injected throttle of {op}"
    ))
}

/// Windows in which Herald redoes an attempt after its POST, so a receiver sees it again.
pub const RECORD_NOT_WRITTEN: &str = "the attempt's record was refused after its POST";
pub const RETRY_NOT_QUEUED: &str = "the retry could not be queued after the POST";

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
    async fn subscribed_webhooks(&self, t: &str) -> Result<Vec<Webhook>> {
        if self.faults.strike("subscribed_webhooks", false).is_some() {
            return Err(throttled("subscribed_webhooks"));
        }
        self.inner.subscribed_webhooks(t).await
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
        if take_one(&self.faults.refuse_next_puts) {
            return Err(throttled("put_delivery"));
        }
        let strike = self.faults.strike("put_delivery", true);
        if strike == Some(Strike::Throttled) {
            // Every put of a delivery follows its POST: the record, or giving a lease back
            // after the retry could not be queued.
            self.faults.may_repeat(&d.id, RECORD_NOT_WRITTEN);
            return Err(throttled("put_delivery"));
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
        if strike == Some(Strike::AnswerLost) {
            return Err(throttled("put_delivery (answer lost)"));
        }
        Ok(())
    }
    async fn create_delivery(&self, d: &Delivery) -> Result<bool> {
        if self.faults.strike("create_delivery", false).is_some() {
            return Err(throttled("create_delivery"));
        }
        self.inner.create_delivery(d).await
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
        match self.faults.strike("lease_delivery", true) {
            Some(Strike::Throttled) => Err(throttled("lease_delivery")),
            Some(Strike::AnswerLost) => {
                self.inner.lease_delivery(d, now).await?;
                Err(throttled("lease_delivery (answer lost)"))
            }
            None => self.inner.lease_delivery(d, now).await,
        }
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
        if self.faults.strike("get_delivery", false).is_some() {
            return Err(throttled("get_delivery"));
        }
        self.inner.get_delivery(t, id).await
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
impl RecoveryStore for FlakyStore {
    async fn put_recovery(&self, r: &Recovery) -> Result<()> {
        self.inner.put_recovery(r).await
    }
    async fn get_recovery(&self, t: &str, id: &str) -> Result<Option<Recovery>> {
        self.inner.get_recovery(t, id).await
    }
    async fn running_recoveries(&self, limit: usize) -> Result<Vec<Recovery>> {
        self.inner.running_recoveries(limit).await
    }
}

#[async_trait]
impl StatsStore for FlakyStore {
    async fn add_counts(&self, t: &str, w: &str, h: OffsetDateTime, c: &Counts) -> Result<()> {
        if self.faults.fail_counts.load(Ordering::SeqCst) {
            return Err(throttled("add_counts"));
        }
        self.inner.add_counts(t, w, h, c).await
    }
    async fn counts(
        &self,
        t: &str,
        w: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, Counts)>> {
        self.inner.counts(t, w, since).await
    }
}

#[async_trait]
impl EventLog for FlakyStore {
    async fn claim_event(
        &self,
        t: &str,
        e: &str,
        m: &str,
        p: &str,
        u: OffsetDateTime,
        n: OffsetDateTime,
    ) -> Result<Claim> {
        self.faults.claims.fetch_add(1, Ordering::SeqCst);
        if self.faults.claim_answer_lost.load(Ordering::SeqCst) {
            self.inner.claim_event(t, e, m, p, u, n).await?;
        }
        if self.faults.strike("claim_event", false).is_some() {
            return Err(throttled("claim_event"));
        }
        self.inner.claim_event(t, e, m, p, u, n).await
    }
    async fn confirm_post(&self, t: &str, p: &str, u: OffsetDateTime) -> Result<()> {
        if self.faults.strike("confirm_post", false).is_some() {
            return Err(throttled("confirm_post"));
        }
        self.inner.confirm_post(t, p, u).await
    }
    async fn take_over_event(
        &self,
        t: &str,
        e: &str,
        p: &str,
        seen: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        self.inner.take_over_event(t, e, p, seen, now).await
    }
    async fn keep_event(
        &self,
        t: &str,
        e: &str,
        m: &str,
        u: OffsetDateTime,
        n: OffsetDateTime,
    ) -> Result<()> {
        if self.faults.strike("keep_event", false).is_some() {
            return Err(throttled("keep_event"));
        }
        self.inner.keep_event(t, e, m, u, n).await
    }
    async fn get_event(&self, t: &str, e: &str) -> Result<Option<String>> {
        self.inner.get_event(t, e).await
    }
    async fn release_event_id(&self, t: &str, e: &str) -> Result<()> {
        if self.faults.fail_release.load(Ordering::SeqCst) {
            return Err(throttled("release_event_id"));
        }
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
        if take_one(&self.faults.refuse_next_sends) {
            return Err(Error::Queue(
                "ThrottlingException: injected throttle of send".into(),
            ));
        }
        let strike = self.faults.strike("send", true);
        if strike.is_some() {
            // A retry (or a swept attempt) that fails to queue, or seems to, has its attempt
            // redone by the message that made it. A deferral made no POST: it repeats none.
            if let Ok(Some(attempt)) = herald_shared::queue::Message::decode(message.as_str())
                .map(|m| m.attempt().cloned())
            {
                if attempt.deferrals == 0 {
                    self.faults
                        .may_repeat(&attempt.delivery_id, RETRY_NOT_QUEUED);
                }
            }
        }
        if strike == Some(Strike::Throttled) {
            return Err(Error::Queue(
                "ThrottlingException: injected throttle of send".into(),
            ));
        }
        self.inner.send(message, delay).await?;
        if strike == Some(Strike::AnswerLost) {
            return Err(Error::Queue("injected: send answer lost".into()));
        }
        self.faults.messages_sent.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn send_batch(&self, messages: Vec<Encoded>) -> Result<Vec<Result<()>>> {
        if self.faults.strike("send_batch", false).is_some() {
            return Err(Error::Queue(
                "ThrottlingException: injected throttle of send_batch".into(),
            ));
        }
        if self.faults.fail_send.load(Ordering::SeqCst) {
            return Ok(messages
                .iter()
                .map(|_| Err(Error::Queue("injected fault: send".into())))
                .collect());
        }
        let refused: Vec<bool> = messages
            .iter()
            .map(|_| take_one(&self.faults.refuse_next_sends))
            .collect();
        let passed = messages
            .into_iter()
            .zip(&refused)
            .filter(|(_, refused)| !**refused)
            .map(|(m, _)| m)
            .collect();
        let mut answers = self.inner.send_batch(passed).await?.into_iter();
        let sent: Vec<Result<()>> = refused
            .iter()
            .map(|refused| match refused {
                true => Err(Error::Queue(
                    "ThrottlingException: injected refusal of a batch entry".into(),
                )),
                false => answers.next().expect("an answer per message sent"),
            })
            .collect();
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

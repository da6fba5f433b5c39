//! Dispatch: for each queued event, match the tenant's enabled webhooks, format, sign, POST
//! (concurrently, bounded overall and per endpoint) and record the delivery; schedule a retry
//! message for each failed attempt that has attempts left.
//!
//! A record fails — and stays on the queue — only when something internal went wrong
//! (unreadable message, store or queue unavailable); a receiver's error is a recorded attempt.
//! Every step is safe to repeat: a delivery that succeeded is never attempted again, a retry
//! message whose expected attempt count is stale is dropped, and each attempt is leased with a
//! conditional write before the POST, so two runs handed the same message at once (SQS may)
//! make it once between them.

use crate::delivery::{delivery_id, verdict, Attempt, Delivery, DeliveryStatus, Verdict};
use crate::event::{Event, EventEnvelope, Target};
use crate::format;
use crate::http::{DeliveryError, Outbound, PostOutcome};
use crate::matching::webhook_matches;
use crate::metrics::BatchMetrics;
use crate::queue::Queue;
use crate::signing;
use crate::store::Store;
use crate::webhook::{Kind, Webhook};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

/// SQS's longest message delay; longer waits are chained.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);
/// How long past its delivery timeout a run holds an attempt: longer than the dispatch
/// function's timeout (so no live run loses its lease), shorter than the queue's visibility
/// timeout (so a message whose run died finds the lease lapsed when it comes back).
pub const LEASE_MARGIN: Duration = Duration::from_secs(60);
/// Endpoints a container keeps checked URLs and concurrency shares for: a 1,000-webhook fan-out
/// fits, and every URL ever posted to does not (each entry holds its URL twice, up to 4 KB).
pub const ENDPOINT_CACHE_CAPACITY: usize = 2048;
/// How long a message waits for a delivery another run holds, between looks.
const DEFER_MIN: Duration = Duration::from_secs(1);
const DEFER_MAX: Duration = Duration::from_secs(5);
/// How often a health change is applied again when the webhook was written meanwhile.
const HEALTH_WRITE_TRIES: usize = 3;

/// One queue message as the dispatcher sees it, whatever carried it (SQS event, local poller).
#[derive(Debug, Clone)]
pub struct Record {
    pub message_id: String,
    pub body: String,
}

impl From<&crate::queue::Received> for Record {
    fn from(m: &crate::queue::Received) -> Self {
        Record {
            message_id: m.message_id.clone(),
            body: m.body.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Deliveries in flight at once per container.
    pub concurrency: usize,
    /// Deliveries in flight at once to one URL, so a slow receiver cannot take every slot.
    pub per_endpoint: usize,
    /// Delay before each attempt, counted from the previous one.
    pub schedule: Vec<Duration>,
    /// A webhook whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// How long a run holds a delivery while it makes an attempt.
    pub lease: Duration,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    outbound: Outbound,
    settings: Settings,
    /// At most [`ENDPOINT_CACHE_CAPACITY`] idle endpoints; one a delivery holds is pinned.
    /// Looked up once per delivery, so hashed with foldhash (seeded per process), not SipHash.
    endpoints: Endpoints,
    keys: signing::Keys,
    /// Deliveries in flight across every batch this container handles at once (the local
    /// stack runs several pollers over one dispatcher).
    slots: Arc<Semaphore>,
}

/// One URL this container posts to: its share of the concurrency bound, and the URL as checked
/// (parsing and checking a URL costs about as much as formatting a body, so it is done once).
struct Endpoint {
    slots: Arc<Semaphore>,
    target: Result<url::Url, DeliveryError>,
}

type Endpoints = quick_cache::sync::Cache<
    String,
    Arc<Endpoint>,
    quick_cache::UnitWeighter,
    foldhash::fast::RandomState,
    InUse,
>;

/// Pins the endpoints a delivery holds (its `Arc` beside the cache's): evicting one would let
/// a second entry for the same URL hand out a second concurrency share.
#[derive(Clone, Default)]
struct InUse;

impl quick_cache::Lifecycle<String, Arc<Endpoint>> for InUse {
    type RequestState = ();

    fn is_pinned(&self, _url: &String, endpoint: &Arc<Endpoint>) -> bool {
        Arc::strong_count(endpoint) > 1
    }
}

/// What a batch came to: the records to hand back to the queue, and what happened.
#[derive(Debug, Default)]
pub struct Handled {
    pub failed: Vec<String>,
    pub metrics: BatchMetrics,
}

/// What one job came to.
enum JobResult {
    /// Nothing to send: already delivered, taken by an earlier run, or stale.
    Skipped,
    Attempted {
        verdict: Verdict,
        duration: Duration,
        /// From ingest accepting the event to now.
        since_accepted: Duration,
    },
    /// The store or queue failed; the record goes back to the queue.
    Internal,
}

/// What a job comes to once its delivery has been read.
enum Plan {
    /// Make the next attempt of this delivery (new, or as stored).
    Attempt(Delivery),
    /// Nothing to send: already delivered, stale, or redone by another message.
    Skip,
    /// Another run holds the delivery: look again after this long.
    Defer(Duration),
}

/// Decides whether a loaded webhook receives an event.
type Matcher = fn(&Webhook, &Event) -> bool;

/// One (event, webhook) pair to deliver.
struct Job<'a> {
    record: usize,
    envelope: &'a EventEnvelope,
    webhook: &'a Webhook,
    body: Bytes,
}

fn jitter() -> f64 {
    rand::random::<f64>() * 2.0 - 1.0
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        outbound: Outbound,
        settings: Settings,
    ) -> Self {
        Dispatcher {
            store,
            queue,
            outbound,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings: Settings {
                concurrency: settings.concurrency.max(1),
                per_endpoint: settings.per_endpoint.max(1),
                ..settings
            },
            endpoints: Endpoints::with(
                ENDPOINT_CACHE_CAPACITY,
                ENDPOINT_CACHE_CAPACITY as u64,
                quick_cache::UnitWeighter,
                foldhash::fast::RandomState::default(),
                InUse,
            ),
            keys: signing::Keys::default(),
        }
    }

    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// Handles a batch; reports the message ids that must be retried, and the batch's metrics.
    /// One batch: decode the records, hold back what is not due, fan each event out to its
    /// webhooks, run the jobs concurrently, and report the records that must come back.
    pub async fn handle(&self, records: &[Record]) -> Handled {
        let mut metrics = BatchMetrics::default();
        let mut failed = vec![false; records.len()];
        let mut envelopes = decode(records, &mut failed);
        self.defer_not_due(&mut envelopes, &mut failed).await;
        let subscriptions = self.subscriptions(&envelopes).await;
        let targeted = self.targets(&envelopes, &mut failed).await;
        let jobs = fan_out(
            &envelopes,
            &subscriptions,
            &targeted,
            &mut failed,
            &mut metrics,
        );
        // Each job's future lives in the stream's own slot, not a box of its own. The closure
        // takes an index, not a `Job`: one over borrowed jobs trips the compiler's `Send`
        // inference where the handler is spawned.
        let outcomes: Vec<(usize, JobResult)> = stream::iter(0..jobs.len())
            .map(|i| self.run(&jobs[i]))
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await;
        for (record, result) in outcomes {
            if tally(result, &mut metrics) {
                failed[record] = true;
            }
        }
        let failed: Vec<String> = records
            .iter()
            .zip(failed)
            .filter(|(_, f)| *f)
            .map(|(r, _)| r.message_id.clone())
            .collect();
        metrics.records_failed = failed.len() as u64;
        Handled { failed, metrics }
    }

    /// Messages not yet due go back on the queue (chained waits, a delayed first attempt).
    async fn defer_not_due(&self, envelopes: &mut [Option<EventEnvelope>], failed: &mut [bool]) {
        let now = OffsetDateTime::now_utc();
        for (i, slot) in envelopes.iter_mut().enumerate() {
            let Some(env) = slot else { continue };
            let due = env.not_before.or_else(|| {
                let first = self.settings.schedule.first().copied().unwrap_or_default();
                (env.target.is_none() && !first.is_zero()).then(|| accepted_at(env) + first)
            });
            let Some(due) = due.filter(|d| *d > now + time::Duration::milliseconds(100)) else {
                continue;
            };
            env.not_before = Some(due);
            let wait: Duration = (due - now).try_into().unwrap_or_default();
            let body = env.to_queue_text();
            if let Err(e) = self.queue.send(body, wait.min(MAX_QUEUE_DELAY)).await {
                tracing::error!(error = %e, "could not defer a message");
                failed[i] = true;
            }
            *slot = None;
        }
    }

    /// The enabled webhooks of each tenant with a fan-out in the batch, read once per tenant;
    /// `None` for a tenant whose read failed.
    async fn subscriptions<'e>(
        &self,
        envelopes: &'e [Option<EventEnvelope>],
    ) -> HashMap<&'e str, Option<Vec<Webhook>>> {
        let mut webhooks: HashMap<&str, Option<Vec<Webhook>>> = HashMap::new();
        for env in envelopes.iter().flatten().filter(|e| e.target.is_none()) {
            if !webhooks.contains_key(&*env.tenant_id) {
                let loaded = match self.store.enabled_webhooks(&env.tenant_id).await {
                    Ok(list) => Some(list),
                    Err(e) => {
                        tracing::error!(tenant_id = %env.tenant_id, error = %e, "could not load webhooks");
                        None
                    }
                };
                webhooks.insert(&env.tenant_id, loaded);
            }
        }
        webhooks
    }

    /// Retries and redeliveries name their webhook; one that is gone or disabled ends them.
    async fn targets(
        &self,
        envelopes: &[Option<EventEnvelope>],
        failed: &mut [bool],
    ) -> Vec<Option<Vec<Webhook>>> {
        let mut targeted: Vec<Option<Vec<Webhook>>> = Vec::with_capacity(envelopes.len());
        for (i, env) in envelopes.iter().enumerate() {
            let target = env.as_ref().and_then(|e| e.target.as_ref().map(|t| (e, t)));
            let Some((env, target)) = target else {
                targeted.push(None);
                continue;
            };
            match self
                .store
                .get_webhook(&env.tenant_id, &target.webhook_id)
                .await
            {
                Ok(Some(w)) if w.enabled => targeted.push(Some(vec![w])),
                Ok(_) => {
                    if !self.abandon(&env.tenant_id, target).await {
                        failed[i] = true;
                    }
                    targeted.push(None);
                }
                Err(e) => {
                    tracing::error!(webhook_id = %target.webhook_id, error = %e, "could not load webhook");
                    failed[i] = true;
                    targeted.push(None);
                }
            }
        }
        targeted
    }

    async fn run(&self, job: &Job<'_>) -> (usize, JobResult) {
        (job.record, self.deliver_and_record(job).await)
    }

    /// What to do with a job, given the delivery as stored now.
    fn plan(&self, job: &Job<'_>, stored: Option<Delivery>, now: OffsetDateTime) -> Plan {
        let env = job.envelope;
        match (&env.target, stored) {
            (None, None) => Plan::Attempt(Delivery::new(
                delivery_id(env.envelope_id, &job.webhook.id),
                env.tenant_id.clone(),
                env.event.id.clone(),
                env.event.event_type.clone(),
                job.webhook.id.as_str(),
                now,
            )),
            (Some(_), None) => Plan::Skip,
            (_, Some(d)) if d.status == DeliveryStatus::Succeeded => Plan::Skip,
            // Another run is making an attempt. It may die before recording it, so the message
            // comes back rather than being dropped; by then the delivery has moved on, or the
            // lease has lapsed and this run takes over.
            (_, Some(d)) if d.leased_at(now) => Plan::Defer(
                d.leased_until
                    .map_or(DEFER_MAX, |until| {
                        (until - now).try_into().unwrap_or_default()
                    })
                    .clamp(DEFER_MIN, DEFER_MAX),
            ),
            (None, Some(d)) if d.status == DeliveryStatus::Pending => Plan::Attempt(d),
            (None, Some(_)) => Plan::Skip,
            (Some(t), Some(d)) if d.attempts.len() == t.expect_attempts => Plan::Attempt(d),
            // Fewer attempts than expected and no lease: the run that queued this message died
            // before recording its attempt; the message it was handling comes back and redoes
            // it. More attempts: this message is stale.
            (Some(_), Some(_)) => Plan::Skip,
        }
    }

    async fn read_plan(&self, job: &Job<'_>) -> Result<Plan, crate::Error> {
        let env = job.envelope;
        let made;
        let id = match &env.target {
            Some(t) => t.delivery_id.as_str(),
            None => {
                made = delivery_id(env.envelope_id, &job.webhook.id);
                &*made
            }
        };
        let stored = self.store.get_delivery(&env.tenant_id, id).await?;
        Ok(self.plan(job, stored, OffsetDateTime::now_utc()))
    }

    /// After a lease was refused: the delivery was taken or moved on since it was read, so
    /// decide again from what is stored now.
    async fn decide_again(&self, job: &Job<'_>) -> JobResult {
        match self.read_plan(job).await {
            Ok(Plan::Skip) => JobResult::Skipped,
            Ok(Plan::Defer(wait)) => self.defer(job, wait).await,
            Ok(Plan::Attempt(_)) => self.defer(job, DEFER_MIN).await,
            Err(e) => internal(job.webhook, "read a delivery", e),
        }
    }

    /// Puts the job's message back on the queue for later.
    async fn defer(&self, job: &Job<'_>, wait: Duration) -> JobResult {
        let mut env = job.envelope.clone();
        env.not_before = Some(OffsetDateTime::now_utc() + wait);
        let body = env.to_queue_text();
        match self.queue.send(body, wait).await {
            Ok(()) => {
                tracing::info!(
                    event_id = %env.event.id,
                    webhook_id = %job.webhook.id,
                    wait_ms = wait.as_millis() as u64,
                    "delivery held by another run; message deferred"
                );
                JobResult::Skipped
            }
            Err(e) => {
                tracing::error!(event_id = %env.event.id, error = %e, "could not defer a message");
                JobResult::Internal
            }
        }
    }

    async fn deliver_and_record(&self, job: &Job<'_>) -> JobResult {
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the slots semaphore is never closed");
        let env = job.envelope;
        let webhook = job.webhook;
        // The rare paths below (defer, decide again, queue a retry, change health) are boxed:
        // each job's future is allocated whole by the stream that runs it, and carrying their
        // state inline made it 1.9 KB, past the sizes the allocator serves from its cache.
        // A first attempt is leased without reading: the lease's condition fails if the delivery
        // exists in any state but a fresh one, and only then is it read. One store call, not two.
        let planned = match env.target {
            None => Ok(self.plan(job, None, OffsetDateTime::now_utc())),
            Some(_) => self.read_plan(job).await,
        };
        let mut delivery = match planned {
            Ok(Plan::Attempt(d)) => d,
            Ok(Plan::Skip) => return JobResult::Skipped,
            Ok(Plan::Defer(wait)) => return Box::pin(self.defer(job, wait)).await,
            Err(e) => return internal(webhook, "read a delivery", e),
        };
        let endpoint = self.endpoint(&webhook.url);
        let permit = endpoint
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("endpoint semaphores are never closed");
        // The lease is taken once this run can post at once, so it covers only the attempt.
        let now = OffsetDateTime::now_utc();
        delivery.leased_until = Some(now + self.settings.lease);
        match self.store.lease_delivery(&delivery, now).await {
            Ok(true) => {}
            Ok(false) => return Box::pin(self.decide_again(job)).await,
            Err(e) => return internal(webhook, "lease a delivery", e),
        }
        let outcome = self
            .send_to(&endpoint, webhook, &env.event, job.body.clone())
            .await;
        drop(permit);
        let now = OffsetDateTime::now_utc();
        let verdict = verdict(
            outcome.policy_view(),
            delivery.attempts_in_series() + 1,
            &self.settings.schedule,
            jitter(),
        );
        let next = match verdict {
            Verdict::Retry(delay) => {
                match Box::pin(self.queue_retry(job, &mut delivery, delay, now)).await {
                    None => return JobResult::Internal,
                    due => due,
                }
            }
            _ => None,
        };
        delivery.record(attempt(now, &outcome), next);
        tracing::info!(
            tenant_id = %env.tenant_id,
            delivery_id = %delivery.id,
            webhook_id = %webhook.id,
            event_id = %env.event.id,
            attempt = delivery.attempts.len(),
            status = delivery.status.as_str(),
            status_code = outcome.status_code,
            duration_ms = outcome.duration.as_millis() as u64,
            error = outcome.error.as_ref().map(|e| e.to_string()),
            "delivery attempt"
        );
        if let Err(e) = self.store.put_delivery(&delivery).await {
            tracing::error!(delivery_id = %delivery.id, error = %e, "could not record delivery");
            return JobResult::Internal;
        }
        if let Some(change) = health_change(webhook, verdict) {
            Box::pin(self.change_health(webhook, change, now)).await;
        }
        JobResult::Attempted {
            verdict,
            duration: outcome.duration,
            since_accepted: (now - accepted_at(env)).try_into().unwrap_or_default(),
        }
    }

    /// Queues the next attempt of a delivery whose attempt failed; `None` when the queue
    /// refused it (the message then comes back and redoes this attempt).
    async fn queue_retry(
        &self,
        job: &Job<'_>,
        delivery: &mut Delivery,
        delay: Duration,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let (env, webhook) = (job.envelope, job.webhook);
        let due = now + delay;
        // The retry is queued before the state says "retrying", so a crash in between
        // leaves a delivery that is retried, never one that waits for nothing.
        let retry = EventEnvelope {
            tenant_id: env.tenant_id.clone(),
            envelope_id: env.envelope_id,
            event: env.event.clone(),
            target: Some(Target {
                webhook_id: webhook.id.clone(),
                delivery_id: delivery.id.to_string(),
                expect_attempts: delivery.attempts.len() + 1,
            }),
            not_before: Some(due),
        };
        let body = retry.to_queue_text();
        if let Err(e) = self.queue.send(body, delay.min(MAX_QUEUE_DELAY)).await {
            tracing::error!(delivery_id = %delivery.id, error = %e, "could not queue a retry");
            // Give the lease back so the redo need not wait for it to lapse. This run holds
            // it: nobody wrote since.
            delivery.leased_until = None;
            if let Err(e) = self.store.put_delivery(delivery).await {
                tracing::warn!(delivery_id = %delivery.id, error = %e, "could not release a lease");
            }
            return None;
        }
        Some(due)
    }

    /// Applies a health change to the webhook as stored now (see [`health_change`]). The write
    /// is conditioned on the revision read, so a PATCH or a rotation made meanwhile is never
    /// overwritten: the change is applied again to the fresh copy instead.
    async fn change_health(&self, seen: &Webhook, change: HealthChange, now: OffsetDateTime) {
        for _ in 0..HEALTH_WRITE_TRIES {
            let mut fresh = match self.store.get_webhook(&seen.tenant_id, &seen.id).await {
                Ok(Some(w)) => w,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(webhook_id = %seen.id, error = %e, "could not read webhook health");
                    return;
                }
            };
            // Health is judged for the endpoint the attempt went to; a webhook moved elsewhere
            // since has a clock of its own.
            if fresh.url != seen.url || !change(&mut fresh, now, self.settings.disable_after) {
                return;
            }
            match self.store.update_webhook(&fresh).await {
                Ok(true) => {
                    if !fresh.enabled {
                        tracing::warn!(webhook_id = %fresh.id, reason = ?fresh.disabled_reason, "webhook disabled");
                    }
                    return;
                }
                Ok(false) => continue,
                Err(e) => {
                    // Health is advisory: the delivery itself is recorded, so the record is done.
                    tracing::warn!(webhook_id = %seen.id, error = %e, "could not update webhook health");
                    return;
                }
            }
        }
    }

    /// Ends a retry chain whose webhook was deleted or disabled: the delivery fails as it is.
    async fn abandon(&self, tenant_id: &str, target: &Target) -> bool {
        match self
            .store
            .get_delivery(tenant_id, &target.delivery_id)
            .await
        {
            Ok(Some(mut d))
                if d.status != DeliveryStatus::Succeeded
                    && d.attempts.len() == target.expect_attempts =>
            {
                d.status = DeliveryStatus::Failed;
                d.next_attempt_at = None;
                self.store.put_delivery(&d).await.is_ok()
            }
            Ok(_) => true,
            Err(_) => false,
        }
    }

    fn endpoint(&self, url: &str) -> Arc<Endpoint> {
        let built = self.endpoints.get_or_insert_with(url, || {
            Ok::<_, std::convert::Infallible>(Arc::new(self.new_endpoint(url)))
        });
        match built {
            Ok(endpoint) => endpoint,
            Err(never) => match never {},
        }
    }

    fn new_endpoint(&self, url: &str) -> Endpoint {
        Endpoint {
            slots: Arc::new(Semaphore::new(self.settings.per_endpoint)),
            target: self.outbound.target(url),
        }
    }

    /// Endpoints cached now (at most [`ENDPOINT_CACHE_CAPACITY`] idle ones).
    pub fn cached_endpoints(&self) -> usize {
        self.endpoints.len()
    }

    /// Signs and POSTs one formatted body outside the delivery path (test sends): through the
    /// cached endpoint when the URL has one, else through one made for this send alone, so
    /// unsaved test sends to new URLs leave nothing behind.
    pub async fn send(&self, webhook: &Webhook, event: &Event, body: Bytes) -> PostOutcome {
        let endpoint = self
            .endpoints
            .peek(webhook.url.as_str())
            .unwrap_or_else(|| Arc::new(self.new_endpoint(&webhook.url)));
        self.send_to(&endpoint, webhook, event, body).await
    }

    /// Signs the body and starts its POST; the future holds only the request in flight.
    fn send_to(
        &self,
        endpoint: &Endpoint,
        webhook: &Webhook,
        event: &Event,
        body: Bytes,
    ) -> impl std::future::Future<Output = PostOutcome> + Send + '_ {
        let now = OffsetDateTime::now_utc();
        let headers = signed_headers(&self.keys, webhook, event, &body, now)
            .map_err(|e| DeliveryError::Request(format!("signing: {e}")));
        match headers {
            Ok(headers) => futures::future::Either::Left(self.outbound.post_to(
                &endpoint.target,
                headers,
                body,
            )),
            Err(e) => futures::future::Either::Right(std::future::ready(PostOutcome::failed(
                std::time::Instant::now(),
                e,
            ))),
        }
    }
}

/// The records' envelopes; an unreadable one is `None` and its record failed, so it stays on
/// the queue and after maxReceiveCount lands in the DLQ for a human.
fn decode(records: &[Record], failed: &mut [bool]) -> Vec<Option<EventEnvelope>> {
    let mut envelopes = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        match serde_json::from_str::<EventEnvelope>(&record.body) {
            Ok(env) => envelopes.push(Some(env)),
            Err(e) => {
                tracing::error!(message_id = %record.message_id, error = %e, "unreadable queue message");
                failed[i] = true;
                envelopes.push(None);
            }
        }
    }
    envelopes
}

/// One job per (event, webhook) pair to attempt: a fan-out's matching subscriptions, or a
/// retry's named webhook. Identical bodies for webhooks of one kind are formatted once per
/// (kind, include_result).
fn fan_out<'a>(
    envelopes: &'a [Option<EventEnvelope>],
    subscriptions: &'a HashMap<&str, Option<Vec<Webhook>>>,
    targeted: &'a [Option<Vec<Webhook>>],
    failed: &mut [bool],
    metrics: &mut BatchMetrics,
) -> Vec<Job<'a>> {
    let mut jobs = Vec::new();
    let mut bodies: Vec<((Kind, bool), Bytes)> = Vec::new();
    for (i, env) in envelopes.iter().enumerate() {
        let Some(env) = env else { continue };
        let (list, matches): (&Vec<Webhook>, Matcher) = match (&env.target, &targeted[i]) {
            (Some(_), Some(list)) => (list, |_, _| true),
            (Some(_), None) => continue,
            (None, _) => match &subscriptions[&*env.tenant_id] {
                Some(list) => (list, webhook_matches),
                None => {
                    failed[i] = true;
                    continue;
                }
            },
        };
        bodies.clear();
        let before = jobs.len();
        for webhook in list.iter().filter(|w| matches(w, &env.event)) {
            let key = (webhook.kind, webhook.include_result);
            let body = match bodies.iter().find(|(k, _)| *k == key) {
                Some((_, b)) => b.clone(),
                None => {
                    let b = Bytes::from(format::render(key.0, &env.event, key.1));
                    bodies.push((key, b.clone()));
                    b
                }
            };
            jobs.push(Job {
                record: i,
                envelope: env,
                webhook,
                body,
            });
        }
        if env.target.is_none() {
            metrics.fan_out.push((jobs.len() - before) as f64);
        }
    }
    jobs
}

/// Counts one job's result in the batch's metrics; `true` when its record must come back.
fn tally(result: JobResult, metrics: &mut BatchMetrics) -> bool {
    let millis = |d: Duration| d.as_secs_f64() * 1000.0;
    match result {
        JobResult::Skipped => false,
        JobResult::Internal => true,
        JobResult::Attempted {
            verdict,
            duration,
            since_accepted,
        } => {
            metrics.duration_ms.push(millis(duration));
            match verdict {
                Verdict::Succeeded => {
                    metrics.succeeded += 1;
                    metrics.latency_ms.push(millis(since_accepted));
                }
                Verdict::Retry(_) => metrics.retried += 1,
                Verdict::Failed | Verdict::Gone => metrics.failed += 1,
            }
            false
        }
    }
}

/// A store error that stops a job: logged, and the job's record goes back to the queue.
fn internal(webhook: &Webhook, what: &str, e: crate::Error) -> JobResult {
    tracing::error!(webhook_id = %webhook.id, error = %e, "could not {what}");
    JobResult::Internal
}

/// How an attempt's verdict changes its webhook's health, if it does.
type HealthChange = fn(&mut Webhook, OffsetDateTime, Duration) -> bool;

/// Auto-disable: a 410 disables at once; failures since `failing_since` for longer than
/// `disable_after` disable; one success clears the clock. Written only on transitions, so the
/// common success changes nothing and reads nothing.
fn health_change(seen: &Webhook, verdict: Verdict) -> Option<HealthChange> {
    match verdict {
        Verdict::Succeeded if seen.failing_since.is_some() => Some(|w, _, _| {
            w.failing_since = None;
            true
        }),
        Verdict::Succeeded => None,
        Verdict::Gone => Some(|w, now, _| {
            w.enabled = false;
            w.disabled_reason = Some("the endpoint answered 410 Gone".into());
            w.updated_at = now;
            true
        }),
        Verdict::Retry(_) | Verdict::Failed => Some(|w, now, after| match w.failing_since {
            None => {
                w.failing_since = Some(now);
                true
            }
            Some(since) if now - since >= after => {
                w.enabled = false;
                w.disabled_reason = Some(format!(
                    "every delivery attempt failed since {}",
                    since
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                ));
                w.updated_at = now;
                true
            }
            Some(_) => false,
        }),
    }
}

/// When ingest accepted the envelope (its ULID's time).
fn accepted_at(env: &EventEnvelope) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(env.envelope_id.timestamp_ms() as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// The request headers of a delivery: content type, Standard Webhooks headers, then the
/// webhook's own headers.
pub fn signed_headers(
    keys: &signing::Keys,
    webhook: &Webhook,
    event: &Event,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<HeaderMap, signing::SignatureError> {
    let timestamp = now.unix_timestamp();
    let signature =
        keys.signature_header(webhook.active_secrets(now), &event.id, timestamp, body)?;
    let mut headers = HeaderMap::with_capacity(4 + webhook.headers.len());
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for header in &webhook.headers {
        // Validated on save; a stored header that no longer parses is skipped, not sent broken.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.key.as_bytes()),
            HeaderValue::from_str(header.value.expose()),
        ) {
            let mut value = value;
            value.set_sensitive(header.protected);
            headers.insert(name, value);
        }
    }
    let id = HeaderValue::from_str(&event.id).map_err(|_| signing::SignatureError::BadSecret)?;
    headers.insert(WEBHOOK_ID, id);
    // Digits copied into one buffer (`From<i64>` takes two allocations).
    let timestamp = HeaderValue::from_str(itoa::Buffer::new().format(timestamp))
        .expect("digits are a valid header value");
    headers.insert(WEBHOOK_TIMESTAMP, timestamp);
    let mut signature =
        HeaderValue::try_from(signature).map_err(|_| signing::SignatureError::BadSecret)?;
    signature.set_sensitive(true);
    headers.insert(WEBHOOK_SIGNATURE, signature);
    Ok(headers)
}

pub fn attempt(at: OffsetDateTime, outcome: &PostOutcome) -> Attempt {
    Attempt {
        at,
        status_code: outcome.status_code,
        duration_ms: outcome.duration.as_millis() as u64,
        error: outcome.error.as_ref().map(|e| e.to_string()),
        response_body: outcome.response_body.clone(),
    }
}

/// Feeds queue messages to the dispatcher the way the SQS event source mapping does in Lambda:
/// batches of up to 10, successful records deleted, failed ones left to reappear after the
/// visibility timeout. Runs until `shutdown` resolves.
pub async fn poll(
    queue: Arc<dyn crate::queue::Queue>,
    dispatcher: Arc<Dispatcher>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let wait = std::time::Duration::from_secs(1);
    tokio::pin!(shutdown);
    loop {
        let received = tokio::select! {
            _ = &mut shutdown => return,
            r = queue.receive(10, wait) => r,
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "queue receive failed; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let records: Vec<Record> = messages.iter().map(Record::from).collect();
        let failed = dispatcher.handle(&records).await.failed;
        for m in messages.iter().filter(|m| !failed.contains(&m.message_id)) {
            if let Err(e) = queue.delete(&m.receipt).await {
                // It will be received again; deliveries already made are skipped then.
                tracing::warn!(message_id = %m.message_id, error = %e, "could not delete handled message");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Mode};
    use crate::queue::MemoryQueue;
    use crate::store::MemoryStore;
    use crate::webhook::WebhookSpec;
    use serde_json::json;

    #[test]
    fn many_distinct_urls_keep_the_endpoint_cache_at_its_bound() {
        let config = Config::from_lookup(Mode::Local, |_| None).expect("default config");
        let dispatcher = crate::runtime::dispatcher(
            &config,
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryQueue::default()),
        );
        // Held as a delivery in flight holds it: pinned, so never split in two.
        let held = dispatcher.endpoint("https://held.example/hook");
        for i in 0..3 * ENDPOINT_CACHE_CAPACITY {
            dispatcher.endpoint(&format!("https://h{i}.example/hook"));
            assert!(dispatcher.cached_endpoints() <= ENDPOINT_CACHE_CAPACITY + 1);
        }
        assert!(dispatcher.cached_endpoints() >= ENDPOINT_CACHE_CAPACITY / 2);
        assert!(Arc::ptr_eq(
            &held,
            &dispatcher.endpoint("https://held.example/hook")
        ));
        // A hot endpoint stays cached through the churn.
        let hot = dispatcher.endpoint("https://hot.example/hook");
        drop(hot);
        for i in 0..ENDPOINT_CACHE_CAPACITY {
            dispatcher.endpoint("https://hot.example/hook");
            dispatcher.endpoint(&format!("https://c{i}.example/hook"));
        }
        assert!(dispatcher
            .endpoints
            .peek("https://hot.example/hook")
            .is_some());
    }

    /// The stream that runs a batch allocates each job's future whole. glibc serves requests
    /// up to 1,032 bytes from its per-thread cache and sends larger ones through its bins,
    /// consolidating them; carrying the rare paths inline made the future 1,968 bytes.
    #[test]
    fn a_jobs_future_fits_the_allocators_per_thread_cache() {
        let config = Config::from_lookup(Mode::Local, |_| None).expect("default config");
        let dispatcher = crate::runtime::dispatcher(
            &config,
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryQueue::default()),
        );
        let now = OffsetDateTime::now_utc();
        let spec = WebhookSpec::parse(
            &json!({"url": "https://example.com/hook", "events": ["*"]}),
            &crate::runtime::url_rules(&config),
        )
        .expect("a valid webhook");
        let webhook = Webhook::new("wh_1".into(), "tn_1", spec, signing::generate_secret(), now);
        let envelope = EventEnvelope {
            tenant_id: "tn_1".into(),
            envelope_id: ulid::Ulid::new(),
            event: Event::parse(
                &json!({"id": "e1", "type": "experiments.failed", "data": {}}),
                now,
            )
            .expect("a valid event"),
            target: None,
            not_before: None,
        };
        let job = Job {
            record: 0,
            envelope: &envelope,
            webhook: &webhook,
            body: Bytes::new(),
        };
        // The stream's task adds about 112 bytes of its own.
        let size = std::mem::size_of_val(&dispatcher.run(&job));
        assert!(size + 112 <= 1032, "a job's future is {size} bytes");
    }
}

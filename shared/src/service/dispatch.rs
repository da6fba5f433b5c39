//! Dispatch: for each queued event, match the tenant's enabled webhooks, format, sign, POST
//! (concurrently, bounded) and record the delivery. A record fails — and stays on the queue —
//! only when something internal went wrong (unreadable message, store down); a receiver's
//! error is a recorded failed attempt, not a lost event.

use crate::delivery::{delivery_id, Attempt, Delivery};
use crate::event::{Event, EventEnvelope};
use crate::format;
use crate::http::{Outbound, PostOutcome};
use crate::matching::webhook_matches;
use crate::signing;
use crate::store::Store;
use crate::webhook::{Kind, Webhook};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use futures::FutureExt;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// One queue message as the dispatcher sees it, whatever carried it (SQS event, local poller).
#[derive(Debug, Clone)]
pub struct Record {
    pub message_id: String,
    pub body: String,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    outbound: Outbound,
    concurrency: usize,
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

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, outbound: Outbound, concurrency: usize) -> Self {
        Dispatcher {
            store,
            outbound,
            concurrency: concurrency.max(1),
        }
    }

    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// Handles a batch; returns the message ids that must be retried.
    pub async fn handle(&self, records: &[Record]) -> Vec<String> {
        let mut failed = vec![false; records.len()];
        let mut envelopes: Vec<Option<EventEnvelope>> = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            match serde_json::from_str::<EventEnvelope>(&record.body) {
                Ok(env) => envelopes.push(Some(env)),
                Err(e) => {
                    // Left on the queue: after maxReceiveCount it lands in the DLQ for a human.
                    tracing::error!(message_id = %record.message_id, error = %e, "unreadable queue message");
                    failed[i] = true;
                    envelopes.push(None);
                }
            }
        }

        // One subscription read per tenant per batch.
        let mut webhooks: HashMap<&str, Option<Vec<Webhook>>> = HashMap::new();
        for env in envelopes.iter().flatten().filter(|e| e.target.is_none()) {
            if !webhooks.contains_key(env.tenant_id.as_str()) {
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

        // Redeliveries name their webhook: it is read directly, enabled or matching or not.
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
                Ok(found) => targeted.push(Some(found.into_iter().collect())),
                Err(e) => {
                    tracing::error!(webhook_id = %target.webhook_id, error = %e, "could not load webhook");
                    failed[i] = true;
                    targeted.push(None);
                }
            }
        }

        let mut jobs = Vec::new();
        for (i, env) in envelopes.iter().enumerate() {
            let Some(env) = env else { continue };
            let (list, matches): (&Vec<Webhook>, Matcher) = match (&env.target, &targeted[i]) {
                (Some(_), Some(list)) => (list, |_, _| true),
                (Some(_), None) => continue,
                (None, _) => match &webhooks[env.tenant_id.as_str()] {
                    Some(list) => (list, webhook_matches),
                    None => {
                        failed[i] = true;
                        continue;
                    }
                },
            };
            // Identical bodies for webhooks of one kind: format once per (kind, include_result).
            let mut bodies: Vec<((Kind, bool), Bytes)> = Vec::new();
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
        }

        // The futures are built eagerly and boxed so the spawned handler's type holds no
        // closure over borrowed jobs (which trips the compiler's Send inference under spawn).
        let deliveries: Vec<BoxFuture<'_, (usize, bool)>> = jobs
            .into_iter()
            .map(|job| {
                async move {
                    let ok = self.deliver_and_record(&job).await;
                    (job.record, ok)
                }
                .boxed()
            })
            .collect();
        let outcomes: Vec<(usize, bool)> = stream::iter(deliveries)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (record, ok) in outcomes {
            if !ok {
                failed[record] = true;
            }
        }
        records
            .iter()
            .zip(failed)
            .filter(|(_, f)| *f)
            .map(|(r, _)| r.message_id.clone())
            .collect()
    }

    async fn deliver_and_record(&self, job: &Job<'_>) -> bool {
        let env = job.envelope;
        let now = OffsetDateTime::now_utc();
        let outcome = self.send(job.webhook, &env.event, job.body.clone()).await;
        let fresh = || {
            Delivery::new(
                delivery_id(env.envelope_id, &job.webhook.id),
                &env.tenant_id,
                &env.event.id,
                &env.event.event_type,
                &job.webhook.id,
                now,
            )
        };
        // A redelivery continues the delivery it was asked for, keeping its earlier attempts.
        let mut delivery = match &env.target {
            None => fresh(),
            Some(target) => match self
                .store
                .get_delivery(&env.tenant_id, &target.delivery_id)
                .await
            {
                Ok(Some(existing)) => existing,
                Ok(None) => fresh(),
                Err(e) => {
                    tracing::error!(delivery_id = %target.delivery_id, error = %e, "could not load delivery");
                    return false;
                }
            },
        };
        // Retry scheduling is not wired yet: a failed first attempt is final.
        delivery.record(attempt(now, &outcome), None);
        tracing::info!(
            delivery_id = %delivery.id,
            webhook_id = %job.webhook.id,
            event_id = %env.event.id,
            status = delivery.status.as_str(),
            status_code = outcome.status_code,
            duration_ms = outcome.duration.as_millis() as u64,
            error = outcome.error.as_ref().map(|e| e.to_string()),
            "delivery attempt"
        );
        match self.store.put_delivery(&delivery).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(delivery_id = %delivery.id, error = %e, "could not record delivery");
                false
            }
        }
    }

    /// Signs and POSTs one formatted body: the path real deliveries and test sends share.
    pub async fn send(&self, webhook: &Webhook, event: &Event, body: Bytes) -> PostOutcome {
        let now = OffsetDateTime::now_utc();
        match signed_headers(webhook, event, &body, now) {
            Ok(headers) => self.outbound.post(&webhook.url, headers, body).await,
            Err(e) => PostOutcome {
                status_code: None,
                response_body: None,
                duration: std::time::Duration::ZERO,
                error: Some(crate::http::DeliveryError::Request(format!("signing: {e}"))),
            },
        }
    }
}

/// The request headers of a delivery: content type, Standard Webhooks headers, then the
/// webhook's own headers.
pub fn signed_headers(
    webhook: &Webhook,
    event: &Event,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<HeaderMap, signing::SignatureError> {
    let timestamp = now.unix_timestamp();
    let signature =
        signing::signature_header(webhook.active_secrets(now), &event.id, timestamp, body)?;
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
    headers.insert("webhook-id", id);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    let mut signature =
        HeaderValue::from_str(&signature).map_err(|_| signing::SignatureError::BadSecret)?;
    signature.set_sensitive(true);
    headers.insert("webhook-signature", signature);
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
        let records: Vec<Record> = messages
            .iter()
            .map(|m| Record {
                message_id: m.message_id.clone(),
                body: m.body.clone(),
            })
            .collect();
        let failed = dispatcher.handle(&records).await;
        for m in messages.iter().filter(|m| !failed.contains(&m.message_id)) {
            if let Err(e) = queue.delete(&m.receipt).await {
                // It will be received again; dispatch skips nothing yet, so log loudly.
                tracing::warn!(message_id = %m.message_id, error = %e, "could not delete handled message");
            }
        }
    }
}

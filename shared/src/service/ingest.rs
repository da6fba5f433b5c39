//! Ingest: validate, dedupe (24 h per tenant and event id), enqueue. An event is answered
//! `accepted` only once it is on the queue, and `duplicate` only once an earlier post's envelope
//! is confirmed on the queue. A claim is pending (its envelope stored) until its enqueue is
//! confirmed; a post that finds a pending claim of a post presumed dead (failed, released or
//! killed between claim and confirmation) queues the stored envelope itself.

use crate::error::{Error, FieldError, Result};
use crate::event::{Event, EventEnvelope};
use crate::fields::Fields;
use crate::queue::{Encoded, Message, Queue};
use crate::store::{Claim, Store};
use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

pub const DEDUPE_WINDOW: time::Duration = time::Duration::hours(24);
pub const MAX_BATCH: usize = 100;
/// The largest envelope ingest queues: it must fit a DynamoDB item (400 KB, with the claim's
/// other attributes) and an SQS message (1 MiB), with room for a retry's target.
pub const MAX_ENVELOPE_BYTES: usize = 384 * 1024;
/// A pending claim older than this is presumed dead. Every post ends well within ingest's
/// function timeout (the SDK's operation timeouts see to it), so a claim this old belongs to a
/// post that failed or was killed between its claim and its confirmation.
pub const CLAIM_STALE_AFTER: time::Duration = time::Duration::seconds(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
/// What became of one posted event.
pub enum PostStatus {
    Accepted,
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub id: String,
    pub status: PostStatus,
}

/// What became of one event of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchStatus {
    /// On the queue.
    Accepted,
    /// The same id was accepted within 24 h, or earlier in this batch: not delivered again.
    Duplicate,
    /// Refused as it is (see `errors`, or `detail`): retrying cannot help.
    Invalid,
    /// Not queued this time: retry it.
    Failed,
}

/// One entry of a batch answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BatchItem {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: BatchStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct Ingest {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    stale_after: time::Duration,
}

/// The detail of a batch entry that was not queued: Herald's words, never AWS's.
fn not_queued(e: &Error) -> (BatchStatus, String) {
    match e {
        Error::Refused(what) => (
            BatchStatus::Invalid,
            format!("refused by {what} as it is; retrying cannot help"),
        ),
        Error::InFlight(secs) => (
            BatchStatus::Failed,
            format!("an earlier post of this id is still being queued; retry it in {secs} s"),
        ),
        _ => (
            BatchStatus::Failed,
            "could not be queued right now; retry it".into(),
        ),
    }
}

impl Ingest {
    pub fn new(store: Arc<dyn Store>, queue: Arc<dyn Queue>) -> Self {
        Ingest {
            store,
            queue,
            stale_after: CLAIM_STALE_AFTER,
        }
    }

    /// How old a pending claim must be before another post takes it over (tests shorten it).
    pub fn with_stale_after(mut self, stale_after: time::Duration) -> Self {
        self.stale_after = stale_after;
        self
    }

    pub async fn accept(&self, tenant_id: &str, body: &Value) -> Result<Accepted> {
        let now = OffsetDateTime::now_utc();
        let event = Event::parse(body, now)?;
        if !caller_named(body) {
            return self.accept_new(tenant_id, event, now).await;
        }
        let id = event.id.to_string();
        let outgoing = envelope(tenant_id, event)?;
        let post = crate::ids::ulid().to_string();
        let claim = self
            .claim(tenant_id, &id, outgoing.as_str(), &post, now)
            .await?;
        let Some((outgoing, until)) = self
            .to_send(tenant_id, &id, outgoing, &post, claim, now)
            .await?
        else {
            return Ok(Accepted {
                id,
                status: PostStatus::Duplicate,
            });
        };
        if let Err(e) = self.queue.send(outgoing, Duration::ZERO).await {
            self.release(tenant_id, &id).await;
            return Err(e);
        }
        self.confirm(tenant_id, &post, until).await;
        tracing::info!(tenant_id, event_id = %id, "event accepted");
        Ok(Accepted {
            id,
            status: PostStatus::Accepted,
        })
    }

    /// Accepts an event whose id Herald made, so it is new: no claim to take and confirm, one
    /// write keeps the event (for redelivery) before it is queued, so anything queued can be
    /// sent again. What an unnamed post and Herald's own operational events go through.
    pub async fn accept_new(
        &self,
        tenant_id: &str,
        event: Event,
        now: OffsetDateTime,
    ) -> Result<Accepted> {
        let id = event.id.to_string();
        let outgoing = envelope(tenant_id, event)?;
        self.store
            .keep_event(tenant_id, &id, outgoing.as_str(), now + DEDUPE_WINDOW, now)
            .await?;
        self.queue.send(outgoing, Duration::ZERO).await?;
        tracing::info!(tenant_id, event_id = %id, "event accepted");
        Ok(Accepted {
            id,
            status: PostStatus::Accepted,
        })
    }

    pub async fn accept_batch(&self, tenant_id: &str, body: &Value) -> Result<Vec<BatchItem>> {
        let events = batch_events(body)?;
        let now = OffsetDateTime::now_utc();
        let (mut items, valid) = parse_batch(tenant_id, events, now);
        let (named, unnamed): (Vec<_>, Vec<_>) = valid
            .into_iter()
            .partition(|(index, ..)| caller_named(&events[*index]));
        let post = crate::ids::ulid().to_string();
        let mut to_send = self
            .claim_batch(tenant_id, named, &post, &mut items, now)
            .await;
        to_send.extend(self.keep_batch(tenant_id, unnamed, &mut items, now).await);
        if !to_send.is_empty() {
            self.send_claimed(tenant_id, &post, to_send, &mut items)
                .await;
        }
        Ok(items)
    }

    /// What a claim leaves to send: this post's envelope when it won, the stored one taken
    /// over from a dead post, or `None` for a duplicate.
    async fn to_send(
        &self,
        tenant_id: &str,
        id: &str,
        outgoing: Encoded,
        post: &str,
        claim: Claim,
        now: OffsetDateTime,
    ) -> Result<Option<(Encoded, OffsetDateTime)>> {
        match claim {
            Claim::Won => Ok(Some((outgoing, now + DEDUPE_WINDOW))),
            Claim::Confirmed => Ok(None),
            Claim::Pending {
                envelope,
                claimed_at,
                until,
            } => {
                self.take_over(tenant_id, id, post, claimed_at, now).await?;
                Ok(Some((stored(&envelope)?, until)))
            }
        }
    }

    /// Keeps every event of a batch whose id Herald made (no claim: nothing to dedupe); what is
    /// left to send, with no dedupe window. One that could not be kept is marked failed.
    async fn keep_batch(
        &self,
        tenant_id: &str,
        unnamed: Vec<(usize, String, Encoded)>,
        items: &mut [BatchItem],
        now: OffsetDateTime,
    ) -> Vec<(usize, String, Encoded, Option<OffsetDateTime>)> {
        let kept = join_all(unnamed.iter().map(|(_, id, m)| {
            let until = now + DEDUPE_WINDOW;
            self.store.keep_event(tenant_id, id, m.as_str(), until, now)
        }))
        .await;
        let mut to_send = Vec::with_capacity(unnamed.len());
        for ((index, id, outgoing), kept) in unnamed.into_iter().zip(kept) {
            match kept {
                Ok(()) => to_send.push((index, id, outgoing, None)),
                Err(e) => {
                    let (status, detail) = not_queued(&e);
                    items[index].status = status;
                    items[index].detail = Some(detail);
                }
            }
        }
        to_send
    }

    /// Claims every valid event of a batch at once; what is left to send, with its index,
    /// id, envelope and dedupe window. A duplicate or a refused claim is marked in `items`.
    async fn claim_batch(
        &self,
        tenant_id: &str,
        valid: Vec<(usize, String, Encoded)>,
        post: &str,
        items: &mut [BatchItem],
        now: OffsetDateTime,
    ) -> Vec<(usize, String, Encoded, Option<OffsetDateTime>)> {
        let claims = join_all(
            valid
                .iter()
                .map(|(_, id, outgoing)| self.claim(tenant_id, id, outgoing.as_str(), post, now)),
        )
        .await;
        let mut to_send = Vec::new();
        for ((index, id, outgoing), claim) in valid.into_iter().zip(claims) {
            let taken = match claim {
                Ok(claim) => {
                    self.to_send(tenant_id, &id, outgoing, post, claim, now)
                        .await
                }
                Err(e) => Err(e),
            };
            match taken {
                Ok(Some((outgoing, until))) => to_send.push((index, id, outgoing, Some(until))),
                Ok(None) => items[index].status = BatchStatus::Duplicate,
                Err(e) => {
                    let (status, detail) = not_queued(&e);
                    items[index].status = status;
                    items[index].detail = Some(detail);
                }
            }
        }
        to_send
    }

    /// Sends the envelopes in one batch and marks every one not queued. A claimed one not
    /// queued is released; the post is confirmed, in one write for all its claims, once at
    /// least one of them is queued and every release held (a claim whose release failed still
    /// names the post, and confirming would mark an envelope that is not on the queue).
    async fn send_claimed(
        &self,
        tenant_id: &str,
        post: &str,
        to_send: Vec<(usize, String, Encoded, Option<OffsetDateTime>)>,
        items: &mut [BatchItem],
    ) {
        let (claimed, messages): (Vec<_>, Vec<Encoded>) = to_send
            .into_iter()
            .map(|(index, id, outgoing, until)| ((index, id, until), outgoing))
            .unzip();
        let results = match self.queue.send_batch(messages).await {
            Ok(r) => r,
            Err(e) => claimed
                .iter()
                .map(|_| Err(Error::Queue(e.to_string())))
                .collect(),
        };
        let mut confirm_until: Option<OffsetDateTime> = None;
        let mut releases_held = true;
        for ((index, id, until), result) in claimed.iter().zip(results) {
            match result {
                Ok(()) => {
                    tracing::info!(tenant_id, event_id = %id, "event accepted");
                    if let Some(until) = until {
                        confirm_until = confirm_until.max(Some(*until));
                    }
                }
                Err(e) => {
                    if until.is_some() {
                        releases_held &= self.release(tenant_id, id).await;
                    }
                    let (status, detail) = not_queued(&e);
                    items[*index].status = status;
                    items[*index].detail = Some(detail);
                }
            }
        }
        match confirm_until {
            Some(until) if releases_held => self.confirm(tenant_id, post, until).await,
            Some(_) => tracing::warn!(
                tenant_id,
                post,
                "a release failed: the post's claims stay pending, taken over when stale"
            ),
            None => {}
        }
    }

    /// A pending claim holding this very envelope (its envelope id is this post's, made
    /// fresh for it) is this post's own write: the SDK retried a claim whose answer was lost,
    /// and the retry's condition failed on what the first try wrote. It is won, not in flight.
    async fn claim(
        &self,
        tenant_id: &str,
        event_id: &str,
        message: &str,
        post: &str,
        now: OffsetDateTime,
    ) -> Result<Claim> {
        let claim = self
            .store
            .claim_event(tenant_id, event_id, message, post, now + DEDUPE_WINDOW, now)
            .await?;
        Ok(match claim {
            Claim::Pending { envelope, .. } if envelope == message => Claim::Won,
            other => other,
        })
    }

    /// Takes over a pending claim whose post is presumed dead (claimed longer ago than any post
    /// runs, or released after its enqueue failed), so its stored envelope is queued now, with
    /// the same envelope id: if the dead post did queue it, dispatch sees the same deliveries
    /// and sends nothing twice. A claim younger than that is a post still running: retry later.
    async fn take_over(
        &self,
        tenant_id: &str,
        event_id: &str,
        post: &str,
        claimed_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<()> {
        let age = now - claimed_at;
        if age < self.stale_after {
            let wait = (self.stale_after - age).as_seconds_f64().ceil().max(1.0);
            return Err(Error::InFlight(wait as u64));
        }
        if !self
            .store
            .take_over_event(tenant_id, event_id, post, claimed_at, now)
            .await?
        {
            // Another post took it over or it was confirmed: the next retry learns which.
            return Err(Error::InFlight(1));
        }
        tracing::warn!(
            tenant_id,
            event_id,
            "a pending claim was taken over; queueing its stored envelope"
        );
        Ok(())
    }

    /// The post's envelopes are on the queue. A failed confirmation leaves its claims pending:
    /// a later post of one of their ids takes it over and queues the same envelope again, which
    /// sends nothing twice.
    async fn confirm(&self, tenant_id: &str, post: &str, until: OffsetDateTime) {
        if let Err(e) = self.store.confirm_post(tenant_id, post, until).await {
            tracing::warn!(tenant_id, post, error = %e, "could not confirm a post's claims");
        }
    }

    /// Whether the claim was released.
    async fn release(&self, tenant_id: &str, event_id: &str) -> bool {
        match self.store.release_event_id(tenant_id, event_id).await {
            Ok(()) => true,
            Err(e) => {
                // The claim stays pending: a retry takes it over once it is stale.
                tracing::error!(tenant_id, event_id, error = %e, "could not release dedupe claim");
                false
            }
        }
    }
}

/// The batch's events: 1 to `MAX_BATCH` of them under `events`, the body's one field.
fn batch_events(body: &Value) -> Result<&Vec<Value>> {
    if let Some(fields) = body.as_object() {
        Fields::new(fields, &["events"]).finish()?;
    }
    match body.get("events") {
        Some(Value::Array(events)) if (1..=MAX_BATCH).contains(&events.len()) => Ok(events),
        Some(Value::Array(_)) => Err(Error::field(
            "events",
            format!("must hold 1 to {MAX_BATCH} events"),
        )),
        _ if !body.is_object() => Err(Error::BadRequest(
            "the body must be {\"events\": [...]}".into(),
        )),
        _ => Err(Error::field("events", "is required: a list of events")),
    }
}

/// Whether a posted event names its own id: only then can a post repeat it, so only then is a
/// dedupe claim written.
fn caller_named(body: &Value) -> bool {
    body.get("id").is_some_and(|id| !id.is_null())
}

/// Each event validated: an item per event (`accepted` so far, or `invalid` with its fields
/// named `events[i].field`), and the valid ones' index, id and envelope. A later copy of an id
/// in the same batch is a duplicate of the first: one claim each.
fn parse_batch(
    tenant_id: &str,
    events: &[Value],
    now: OffsetDateTime,
) -> (Vec<BatchItem>, Vec<(usize, String, Encoded)>) {
    let mut items: Vec<BatchItem> = Vec::with_capacity(events.len());
    let mut valid: Vec<(usize, String, Encoded)> = Vec::with_capacity(events.len());
    for (index, raw) in events.iter().enumerate() {
        let parsed = Event::parse(raw, now).and_then(|event| {
            let id = event.id.to_string();
            Ok((id, envelope(tenant_id, event)?))
        });
        match parsed {
            Ok((id, message)) => {
                items.push(item(index, Some(id.clone()), BatchStatus::Accepted));
                valid.push((index, id, message));
            }
            Err(e) => {
                let mut it = item(index, None, BatchStatus::Invalid);
                match e {
                    Error::Validation(errors) => {
                        it.errors = errors
                            .into_iter()
                            .map(|mut f| {
                                f.field = format!("events[{index}].{}", f.field);
                                f
                            })
                            .collect()
                    }
                    other => it.detail = Some(other.to_string()),
                }
                items.push(it);
            }
        }
    }
    let mut ids = std::collections::HashSet::with_capacity(valid.len());
    valid.retain(|(index, id, _)| {
        let first = ids.insert(id.clone());
        if !first {
            items[*index].status = BatchStatus::Duplicate;
        }
        first
    });
    (items, valid)
}

fn item(index: usize, id: Option<String>, status: BatchStatus) -> BatchItem {
    BatchItem {
        index,
        id,
        status,
        errors: Vec::new(),
        detail: None,
    }
}

/// The fan-out of an accepted event, refused when it is larger than the queue and the event
/// log can hold: numbers written out in full and escapes can make it larger than the body it
/// came in.
/// Encoded once: the same text is the event log's copy, the pending-claim comparison and what is
/// queued.
fn envelope(tenant_id: &str, event: Event) -> Result<Encoded> {
    let encoded = Message::fan_out(EventEnvelope {
        tenant_id: tenant_id.into(),
        envelope_id: crate::ids::ulid(),
        event,
    })
    .encode();
    let size = encoded.as_str().len();
    if size > MAX_ENVELOPE_BYTES {
        return Err(Error::EventTooLarge {
            size,
            limit: MAX_ENVELOPE_BYTES,
        });
    }
    Ok(encoded)
}

/// The fan-out a dead post left in its claim, to queue in its place. Read back through the
/// codec, so a stored text that is no message is refused here, not queued.
fn stored(text: &str) -> Result<Encoded> {
    Message::decode(text)
        .map(|message| message.encode())
        .map_err(|e| Error::Store(format!("unreadable stored event: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::MemoryQueue;
    use crate::store::MemoryStore;
    use serde_json::json;

    #[tokio::test]
    async fn duplicate_within_window_is_not_enqueued_twice() {
        let queue = Arc::new(MemoryQueue::default());
        let ingest = Ingest::new(Arc::new(MemoryStore::new()), queue.clone());
        let body = json!({"id": "evt-1", "type": "jobs.failed"});
        assert_eq!(
            ingest.accept("t1", &body).await.unwrap().status,
            PostStatus::Accepted
        );
        assert_eq!(
            ingest.accept("t1", &body).await.unwrap().status,
            PostStatus::Duplicate
        );
        assert_eq!(
            ingest.accept("t2", &body).await.unwrap().status,
            PostStatus::Accepted,
            "ids are per tenant"
        );
        assert_eq!(queue.depth(), 2);
    }

    #[tokio::test]
    async fn batch_reports_each_item() {
        let queue = Arc::new(MemoryQueue::default());
        let ingest = Ingest::new(Arc::new(MemoryStore::new()), queue.clone());
        let items = ingest
            .accept_batch(
                "t",
                &json!({"events": [
                    {"id": "a", "type": "builds.failed"},
                    {"type": "builds.exploded"},
                    {"id": "a", "type": "builds.failed"}
                ]}),
            )
            .await
            .unwrap();
        let statuses: Vec<_> = items.iter().map(|i| i.status).collect();
        assert_eq!(
            statuses,
            [
                BatchStatus::Accepted,
                BatchStatus::Invalid,
                BatchStatus::Duplicate
            ]
        );
        assert_eq!(items[1].errors[0].field, "events[1].type");
        assert_eq!(queue.depth(), 1);
        assert!(ingest
            .accept_batch("t", &json!({"events": []}))
            .await
            .is_err());
        let too_many: Vec<_> = (0..101).map(|_| json!({"type": "jobs.failed"})).collect();
        assert!(matches!(
            ingest.accept_batch("t", &json!({"events": too_many})).await,
            Err(Error::Validation(_))
        ));
    }
}

//! Ingest: validate, dedupe (24 h per tenant and event id), enqueue. An event is answered
//! `accepted` only once it is on the queue; if enqueueing fails its dedupe claim is released so
//! the platform's retry is not mistaken for a duplicate.

use crate::error::{Error, FieldError, Result};
use crate::event::{Event, EventEnvelope};
use crate::queue::Queue;
use crate::store::Store;
use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

pub const DEDUPE_WINDOW: time::Duration = time::Duration::hours(24);
pub const MAX_BATCH: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Accepted,
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub id: String,
    pub status: Outcome,
}

/// One entry of a batch answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BatchItem {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `accepted`, `duplicate`, `invalid` (see `errors`) or `failed` (retry it).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct Ingest {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
}

impl Ingest {
    pub fn new(store: Arc<dyn Store>, queue: Arc<dyn Queue>) -> Self {
        Ingest { store, queue }
    }

    pub async fn accept(&self, tenant_id: &str, body: &Value) -> Result<Accepted> {
        let now = OffsetDateTime::now_utc();
        let event = Event::parse(body, now)?;
        let id = event.id.to_string();
        let message = envelope(tenant_id, event);
        if !self.claim(tenant_id, &id, &message, now).await? {
            return Ok(Accepted {
                id,
                status: Outcome::Duplicate,
            });
        }
        if let Err(e) = self.queue.send(message, Duration::ZERO).await {
            self.release(tenant_id, &id).await;
            return Err(e);
        }
        tracing::info!(tenant_id, event_id = %id, "event accepted");
        Ok(Accepted {
            id,
            status: Outcome::Accepted,
        })
    }

    pub async fn accept_batch(&self, tenant_id: &str, body: &Value) -> Result<Vec<BatchItem>> {
        let events = match body.get("events") {
            Some(Value::Array(events)) if (1..=MAX_BATCH).contains(&events.len()) => events,
            Some(Value::Array(_)) => {
                return Err(Error::field(
                    "events",
                    format!("must hold 1 to {MAX_BATCH} events"),
                ))
            }
            _ if !body.is_object() => {
                return Err(Error::BadRequest(
                    "the body must be {\"events\": [...]}".into(),
                ))
            }
            _ => return Err(Error::field("events", "is required: a list of events")),
        };
        let now = OffsetDateTime::now_utc();
        let mut items: Vec<BatchItem> = Vec::with_capacity(events.len());
        let mut valid: Vec<(usize, String, String)> = Vec::with_capacity(events.len());
        for (index, raw) in events.iter().enumerate() {
            match Event::parse(raw, now) {
                Ok(event) => {
                    let id = event.id.to_string();
                    items.push(item(index, Some(id.clone()), "accepted"));
                    valid.push((index, id, envelope(tenant_id, event)));
                }
                Err(e) => {
                    let mut it = item(index, None, "invalid");
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
        // Claims are conditional writes, so two copies of one id in a batch yield one claim.
        let claims = join_all(
            valid
                .iter()
                .map(|(_, id, message)| self.claim(tenant_id, id, message, now)),
        )
        .await;
        let mut to_send: Vec<(usize, String, String)> = Vec::new();
        for ((index, id, message), claim) in valid.into_iter().zip(claims) {
            match claim {
                Ok(true) => to_send.push((index, id, message)),
                Ok(false) => items[index].status = "duplicate",
                Err(e) => {
                    items[index].status = "failed";
                    items[index].detail = Some(e.to_string());
                }
            }
        }
        if to_send.is_empty() {
            return Ok(items);
        }
        let bodies = to_send.iter().map(|(_, _, b)| b.clone()).collect();
        let results = match self.queue.send_batch(bodies).await {
            Ok(r) => r,
            Err(e) => vec![Err(e.to_string()); to_send.len()],
        };
        for ((index, id, _), result) in to_send.iter().zip(results) {
            match result {
                Ok(()) => tracing::info!(tenant_id, event_id = %id, "event accepted"),
                Err(detail) => {
                    self.release(tenant_id, id).await;
                    items[*index].status = "failed";
                    items[*index].detail = Some(detail);
                }
            }
        }
        Ok(items)
    }

    async fn claim(
        &self,
        tenant_id: &str,
        event_id: &str,
        message: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        self.store
            .claim_event(tenant_id, event_id, message, now + DEDUPE_WINDOW, now)
            .await
    }

    async fn release(&self, tenant_id: &str, event_id: &str) {
        if let Err(e) = self.store.release_event_id(tenant_id, event_id).await {
            // The event was not enqueued; a retry within 24 h will be answered `duplicate`.
            tracing::error!(tenant_id, event_id, error = %e, "could not release dedupe claim");
        }
    }
}

fn item(index: usize, id: Option<String>, status: &'static str) -> BatchItem {
    BatchItem {
        index,
        id,
        status,
        errors: Vec::new(),
        detail: None,
    }
}

fn envelope(tenant_id: &str, event: Event) -> String {
    serde_json::to_string(&EventEnvelope {
        tenant_id: tenant_id.into(),
        envelope_id: crate::ids::ulid(),
        event,
        target: None,
        not_before: None,
    })
    .expect("envelopes serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{MemoryQueue, Received};
    use crate::store::MemoryStore;
    use async_trait::async_trait;
    use serde_json::json;

    /// A queue that is down: every send fails.
    struct DownQueue;

    #[async_trait]
    impl Queue for DownQueue {
        async fn send(&self, _: String, _: Duration) -> Result<()> {
            Err(Error::Queue("unreachable".into()))
        }
        async fn send_batch(&self, bodies: Vec<String>) -> Result<Vec<Result<(), String>>> {
            Ok(bodies
                .iter()
                .map(|_| Err("unreachable".to_string()))
                .collect())
        }
        async fn receive(&self, _: usize, _: Duration) -> Result<Vec<Received>> {
            Ok(Vec::new())
        }
        async fn delete(&self, _: &str) -> Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn duplicate_within_window_is_not_enqueued_twice() {
        let queue = Arc::new(MemoryQueue::default());
        let ingest = Ingest::new(Arc::new(MemoryStore::new()), queue.clone());
        let body = json!({"id": "evt-1", "type": "jobs.failed"});
        assert_eq!(
            ingest.accept("t1", &body).await.unwrap().status,
            Outcome::Accepted
        );
        assert_eq!(
            ingest.accept("t1", &body).await.unwrap().status,
            Outcome::Duplicate
        );
        assert_eq!(
            ingest.accept("t2", &body).await.unwrap().status,
            Outcome::Accepted,
            "ids are per tenant"
        );
        assert_eq!(queue.depth(), 2);
    }

    #[tokio::test]
    async fn failed_enqueue_releases_the_claim() {
        let store = Arc::new(MemoryStore::new());
        let down = Ingest::new(store.clone(), Arc::new(DownQueue));
        let body = json!({"id": "evt-1", "type": "jobs.failed"});
        assert!(matches!(
            down.accept("t", &body).await,
            Err(Error::Queue(_))
        ));
        let items = down
            .accept_batch("t", &json!({"events": [body.clone()]}))
            .await
            .unwrap();
        assert_eq!(items[0].status, "failed");
        let up = Ingest::new(store, Arc::new(MemoryQueue::default()));
        assert_eq!(
            up.accept("t", &body).await.unwrap().status,
            Outcome::Accepted
        );
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
        assert_eq!(statuses, ["accepted", "invalid", "duplicate"]);
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

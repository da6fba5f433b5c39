//! The pipeline assembled as in `herald dev`, over memory or moto backends, driven through the
//! real router and the real dispatch Lambda handler.

use axum::body::Body;
use axum::Router;
use herald_shared::config::Config;
use herald_shared::queue::{MemoryQueue, Queue};
use herald_shared::runtime;
use herald_shared::service::{tenants, Dispatcher};
use herald_shared::store::{MemoryStore, Store};
use http::{Request, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

pub const TENANT: &str = "tn_test";
pub const KEY: &str = "test-key-0123456789";

pub struct Stack {
    pub router: Router,
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub dispatcher: Arc<Dispatcher>,
    /// The sweep's port on the same table, when the stack was given one.
    sweep_index: Option<Arc<dyn herald_shared::store::SweepIndex>>,
    wait: Duration,
}

/// The local stack's defaults, but one attempt per delivery: scenarios about retries set
/// their own (compressed) schedule.
pub fn local_config() -> Config {
    let mut config = Config::local();
    config.retry_schedule = vec![Duration::ZERO];
    config
}

impl Stack {
    pub async fn new(store: Arc<dyn Store>, queue: Arc<dyn Queue>, wait: Duration) -> Stack {
        Stack::with_config(local_config(), store, queue, wait).await
    }

    /// In memory, with a configuration adjusted by `change`.
    pub async fn memory_with(change: impl FnOnce(&mut Config)) -> Stack {
        let mut config = local_config();
        change(&mut config);
        Stack::with_config(
            config,
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryQueue::default()),
            Duration::ZERO,
        )
        .await
    }

    pub async fn with_config(
        config: Config,
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        wait: Duration,
    ) -> Stack {
        tenants::ensure_tenant_with_key(store.as_ref(), TENANT, "test", KEY)
            .await
            .expect("tenant created");
        let (router, dispatcher) = runtime::local_stack(&config, store.clone(), queue.clone());
        Stack {
            router,
            dispatcher,
            store,
            queue,
            sweep_index: None,
            wait,
        }
    }

    pub async fn memory() -> Stack {
        Stack::new(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryQueue::default()),
            Duration::ZERO,
        )
        .await
    }

    pub async fn moto() -> Stack {
        Stack::moto_with(|_| {}).await
    }

    /// DynamoDB and SQS on moto, with a configuration adjusted by `change`.
    pub async fn moto_with(change: impl FnOnce(&mut Config)) -> Stack {
        let moto = super::moto::moto();
        let mut config = local_config();
        change(&mut config);
        Stack::with_config(
            config,
            Arc::new(moto.store().await),
            Arc::new(super::moto::CheckedQueue {
                inner: moto.queue(5).await,
            }),
            Duration::from_secs(1),
        )
        .await
    }

    /// The same stack, with the sweep's port on its table (the store it was built with).
    pub fn with_sweep_index(mut self, index: Arc<dyn herald_shared::store::SweepIndex>) -> Stack {
        self.sweep_index = Some(index);
        self
    }

    /// The sweep over this stack's store and queue, as the template's schedule runs it.
    pub fn sweeper(&self) -> herald_shared::service::Sweeper {
        let index = self
            .sweep_index
            .clone()
            .expect("a stack built with_sweep_index, to sweep");
        herald_shared::service::Sweeper::new(self.store.clone(), index, self.queue.clone())
    }

    /// Sends a request through the router with the tenant key (or `key`).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (StatusCode, http::HeaderMap, Value) {
        let content_type = body.as_ref().map(|_| "application/json");
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.call_raw(method, path, content_type, bytes, Some(key.unwrap_or(KEY)))
            .await
    }

    /// Sends raw bytes with any content type and key (`None`: no Authorization header).
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        key: Option<&str>,
    ) -> (StatusCode, http::HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Body::from(body)).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 8 << 20)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON answer")
        };
        (status, headers, value)
    }

    /// A test send of an unsaved webhook configuration (`POST /v1/webhooks/test`).
    pub async fn test_unsaved(&self, body: Value) -> (StatusCode, http::HeaderMap, Value) {
        self.call("POST", "/v1/webhooks/test", Some(body), None)
            .await
    }

    pub async fn create_webhook(&self, body: Value) -> Value {
        let (status, _, webhook) = self.call("POST", "/v1/webhooks", Some(body), None).await;
        assert_eq!(status, StatusCode::CREATED, "{webhook}");
        webhook
    }

    pub async fn post_event(&self, body: Value) -> Value {
        let (status, _, answer) = self.call("POST", "/v1/events", Some(body), None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer
    }

    /// Feeds everything queued through the dispatch Lambda handler as SQS event source batches
    /// would, deleting handled messages. Returns the ids reported in `batchItemFailures`.
    pub async fn drain(&self) -> Vec<String> {
        self.drain_by(None).await
    }

    /// As [`Stack::drain`], each invocation cut off at `deadline` as Lambda's would be.
    pub async fn drain_by(&self, deadline: Option<tokio::time::Instant>) -> Vec<String> {
        let mut failures = Vec::new();
        loop {
            let messages = self.queue.receive(10, self.wait).await.expect("receive");
            if messages.is_empty() {
                return failures;
            }
            let records: Vec<Value> = messages
                .iter()
                .map(|m| {
                    json!({
                        "messageId": m.message_id, "receiptHandle": m.receipt, "body": m.body,
                        "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1"
                    })
                })
                .collect();
            let event = serde_json::from_value(json!({ "Records": records })).expect("SQS event");
            let response = herald_dispatch::handle(&self.dispatcher, event, deadline).await;
            let failed: Vec<String> = response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect();
            for m in messages.iter().filter(|m| !failed.contains(&m.message_id)) {
                self.queue.delete(&m.receipt).await.expect("delete");
            }
            if !failed.is_empty() {
                // Failed records stay invisible for the visibility timeout; report, don't spin.
                failures.extend(failed);
                return failures;
            }
        }
    }
}

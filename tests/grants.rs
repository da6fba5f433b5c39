//! Each function's IAM grant in `template.yaml` is exactly what it calls. The three functions
//! run as Lambda would build them (`herald_ingest::app`, `herald_api::app`,
//! `herald_dispatch::dispatch`) over moto, each through an SDK HTTP client that records the
//! action of every request it sends, while one scenario walks every route and delivery path.
//! An action called but not granted would be AccessDenied on AWS; one granted but never
//! called is a permission nobody needs.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use axum::body::Body;
use herald_shared::queue::Queue;
use herald_shared::store::{DeliveryStore, TenantStore};
use herald_tests::moto::moto;
use herald_tests::receiver::Receiver;
use herald_tests::stack::local_config;
use herald_tests::template::{self, Template};
use http::Request;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

type Seen = Arc<Mutex<BTreeSet<String>>>;

/// Marks a DynamoDB request that reads an index, which IAM authorizes on the index's ARN.
const ON_INDEX: &str = " on an index";

/// The IAM action of an AWS JSON-protocol request, from its `X-Amz-Target`
/// (`DynamoDB_20120810.PutItem` is `dynamodb:PutItem`), with [`ON_INDEX`] when it names one.
fn action(request: &HttpRequest) -> Option<String> {
    let target = request.headers().get("x-amz-target")?;
    let (service, operation) = target.split_once('.')?;
    let prefix = match service {
        s if s.starts_with("DynamoDB") => "dynamodb",
        "AmazonSQS" => "sqs",
        "secretsmanager" => "secretsmanager",
        other => panic!("a request to an unexpected service: {other}"),
    };
    // SQS authorizes a batch call by its single action's permission: there is no IAM action
    // sqs:SendMessageBatch or sqs:DeleteMessageBatch.
    let operation = operation.strip_suffix("Batch").unwrap_or(operation);
    let on_index = request
        .body()
        .bytes()
        .and_then(|body| serde_json::from_slice::<Value>(body).ok())
        .is_some_and(|body| body.get("IndexName").is_some());
    Some(format!(
        "{prefix}:{operation}{}",
        if on_index { ON_INDEX } else { "" }
    ))
}

#[derive(Debug)]
struct Recording {
    inner: SharedHttpClient,
    seen: Seen,
}

#[derive(Debug)]
struct RecordingConnector {
    inner: SharedHttpConnector,
    seen: Seen,
}

impl HttpClient for Recording {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RecordingConnector {
            inner: self.inner.http_connector(settings, components),
            seen: self.seen.clone(),
        })
    }
}

impl HttpConnector for RecordingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let action = action(&request).expect("every SDK request names its action");
        self.seen.lock().unwrap().insert(action);
        self.inner.call(request)
    }
}

/// moto's SDK configuration, sending through a recorder of its own.
async fn recorded(sdk: &aws_config::SdkConfig) -> (aws_config::SdkConfig, Seen) {
    let seen = Seen::default();
    let client = Recording {
        inner: herald_shared::aws::http::client(),
        seen: seen.clone(),
    };
    let config = sdk
        .to_builder()
        .http_client(SharedHttpClient::new(client))
        .build();
    (config, seen)
}

async fn call(router: &axum::Router, method: &str, path: &str, key: &str, body: Value) -> Value {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
    let body = if body.is_null() {
        Body::empty()
    } else {
        request = request.header("content-type", "application/json");
        Body::from(body.to_string())
    };
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

/// Every action each function's policy in the template allows.
fn granted(template: &Template, function: &str) -> BTreeSet<String> {
    template
        .function(function)
        .policy_actions()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn each_function_is_granted_exactly_the_actions_it_calls() {
    let moto = moto();
    let plain = moto.sdk_config().await;
    let store = moto.store().await;
    let queue = moto.queue(5).await;
    let admin_key = "grants-admin-key-0123456789abcdef";
    let secret = aws_sdk_secretsmanager::Client::new(&plain)
        .create_secret()
        .name(format!("herald-admin-{}", ulid::Ulid::new()))
        .secret_string(admin_key)
        .send()
        .await
        .unwrap();

    let mut config = local_config();
    config.table_name = store.table().to_string();
    config.queue_url = Some(queue.url().to_string());
    config.admin_key_secret = secret.arn().map(str::to_string);
    // Two attempts, no wait: a failing delivery is retried through the queue at once.
    config.retry_schedule = vec![Duration::ZERO, Duration::ZERO];

    let (ingest_sdk, ingest_seen) = recorded(&plain).await;
    let (api_sdk, api_seen) = recorded(&plain).await;
    let (dispatch_sdk, dispatch_seen) = recorded(&plain).await;
    let (sweep_sdk, sweep_seen) = recorded(&plain).await;
    let ingest = herald_ingest::app(&ingest_sdk, &config).await.unwrap();
    let api = herald_api::app(&api_sdk, &config).await.unwrap();
    let functions = herald_dispatch::dispatch(&dispatch_sdk, &config)
        .await
        .unwrap();
    let dispatch = |queue: herald_shared::queue::SqsQueue| {
        let dispatcher = &functions.dispatcher;
        async move {
            for _ in 0..10 {
                let messages = queue.receive(10, Duration::from_millis(500)).await.unwrap();
                if messages.is_empty() {
                    return;
                }
                let records: Vec<Value> = messages
                    .iter()
                    .map(|m| {
                        json!({"messageId": m.message_id, "body": m.body, "eventSource": "aws:sqs",
                               "attributes": {"ApproximateReceiveCount": "1"}})
                    })
                    .collect();
                let event = serde_json::from_value(json!({ "Records": records })).unwrap();
                let answer = herald_dispatch::handle(dispatcher, event, None).await;
                assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
                for m in &messages {
                    queue.delete(&m.receipt).await.unwrap();
                }
            }
        }
    };

    let good = Receiver::start(200).await;
    let bad = Receiver::start(500).await;

    // The api: a tenant with the admin key read from Secrets Manager, its keys and webhooks.
    let tenant = call(
        &api,
        "POST",
        "/v1/tenants",
        admin_key,
        json!({"name": "grants"}),
    )
    .await;
    let key = tenant["key"].as_str().unwrap();
    // A producer's key, first used by ingest: ingest records its day of use.
    let producer = call(
        &api,
        "POST",
        "/v1/keys",
        key,
        json!({"name": "producer", "scopes": ["ingest"]}),
    )
    .await;
    let producer_key = producer["key"].as_str().unwrap();
    call(&api, "GET", "/v1/keys", key, Value::Null).await;
    // A by-id entry whose hash names another key: the api reaches the store's revocation
    // of such an entry only when a key changes between its two reads, so the api's own store
    // (its recorded client) is driven here directly. The entry alone is deleted.
    let tenant_id = tenant["id"].as_str().unwrap();
    aws_sdk_dynamodb::Client::new(&plain)
        .put_item()
        .table_name(store.table())
        .item("PK", AttributeValue::S(format!("T#{tenant_id}")))
        .item("SK", AttributeValue::S("KEY#key_stale".into()))
        .item(
            "hash",
            AttributeValue::S(herald_shared::secret::hash_key(producer_key)),
        )
        .send()
        .await
        .unwrap();
    let api_store = herald_shared::runtime::dynamo_store(&api_sdk, &config);
    assert!(!api_store
        .delete_api_key(tenant_id, "key_stale")
        .await
        .unwrap());
    assert!(api_store
        .get_api_key(tenant_id, "key_stale")
        .await
        .unwrap()
        .is_none());
    let ok = call(
        &api,
        "POST",
        "/v1/webhooks",
        key,
        json!({"url": good.url, "events": ["*"]}),
    )
    .await;
    let failing = call(
        &api,
        "POST",
        "/v1/webhooks",
        key,
        json!({"url": bad.url, "events": ["*"]}),
    )
    .await;
    let (ok_id, failing_id) = (ok["id"].as_str().unwrap(), failing["id"].as_str().unwrap());
    call(&api, "GET", "/v1/webhooks", key, Value::Null).await;
    call(
        &api,
        "GET",
        &format!("/v1/webhooks/{ok_id}"),
        key,
        Value::Null,
    )
    .await;
    call(
        &api,
        "PATCH",
        &format!("/v1/webhooks/{ok_id}"),
        key,
        json!({"events": ["experiments.*", "*"]}),
    )
    .await;
    call(
        &api,
        "POST",
        &format!("/v1/webhooks/{ok_id}/secret/rotate"),
        key,
        Value::Null,
    )
    .await;
    call(
        &api,
        "GET",
        &format!("/v1/webhooks/{ok_id}/secret"),
        key,
        Value::Null,
    )
    .await;
    let sent = call(
        &api,
        "POST",
        &format!("/v1/webhooks/{ok_id}/test"),
        key,
        json!({"event_type": "experiments.failed"}),
    )
    .await;
    assert_eq!(sent["delivered"], true, "{sent}");

    // Ingest, with the producer's key: an event, the same id again, a batch.
    let key_of_api = key;
    let key = producer_key;
    let event = json!({"id": "grants-1", "type": "experiments.failed", "data": {"state": "ERROR"}});
    call(&ingest, "POST", "/v1/events", key, event.clone()).await;
    let again = call(&ingest, "POST", "/v1/events", key, event).await;
    assert_eq!(again["status"], "duplicate");
    let batch = json!({"events": [{"type": "experiments.failed", "data": {"state": "ERROR"}}]});
    let batch = call(&ingest, "POST", "/v1/events/batch", key, batch).await;
    assert_eq!(batch["data"][0]["status"], "accepted", "{batch}");
    let key = key_of_api;

    // Dispatch: both events to both webhooks; the failing one retried, then given up.
    dispatch(queue.clone()).await;
    assert_eq!(good.requests().len(), 3, "the test send and both events");
    assert_eq!(bad.requests().len(), 4, "two events, two attempts each");

    // The api again: the log, one delivery, a redelivery, and the webhooks deleted.
    let log = call(
        &api,
        "GET",
        &format!("/v1/webhooks/{failing_id}/deliveries"),
        key,
        Value::Null,
    )
    .await;
    let delivery_id = log["data"][0]["id"].as_str().unwrap();
    call(
        &api,
        "GET",
        &format!("/v1/deliveries/{delivery_id}"),
        key,
        Value::Null,
    )
    .await;
    call(
        &api,
        "POST",
        &format!("/v1/deliveries/{delivery_id}/redeliver"),
        key,
        Value::Null,
    )
    .await;
    dispatch(queue.clone()).await;
    assert_eq!(bad.requests().len(), 6, "the redelivery's two attempts");
    // The schedule's sweep, finding a delivery due with no message to carry it (written here
    // by another hand), and queueing its attempt.
    let plain_store = herald_shared::runtime::dynamo_store(&plain, &config);
    let mut due = plain_store
        .get_delivery(tenant_id, delivery_id)
        .await
        .unwrap()
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    due.status = herald_shared::delivery::DeliveryStatus::Retrying;
    due.next_attempt_at = Some(now);
    due.sweep_at = Some(now);
    plain_store.put_delivery(&due).await.unwrap();
    let sweeper = herald_dispatch::dispatch(&sweep_sdk, &config)
        .await
        .unwrap();
    let sweep = herald_dispatch::invoke(&sweeper, json!({"sweep": true}), None)
        .await
        .unwrap();
    assert_eq!(sweep["queued"], 1, "{sweep}");
    let producer_id = producer["id"].as_str().unwrap();
    for path in [
        format!("/v1/keys/{producer_id}"),
        format!("/v1/webhooks/{ok_id}"),
        format!("/v1/webhooks/{failing_id}"),
    ] {
        let response = api
            .clone()
            .oneshot(
                Request::delete(path)
                    .header("authorization", format!("Bearer {key}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    let template = template::load();
    let mut problems = Vec::new();
    for (function, seen) in [
        ("IngestFunction", &ingest_seen),
        ("ApiFunction", &api_seen),
        ("DispatchFunction", &dispatch_seen),
        ("SweepFunction", &sweep_seen),
    ] {
        let recorded = seen.lock().unwrap().clone();
        let called: BTreeSet<String> = recorded
            .iter()
            .map(|a| a.trim_end_matches(ON_INDEX).to_string())
            .collect();
        let grant = granted(&template, function);
        let reads_an_index = recorded.iter().any(|a| a.ends_with(ON_INDEX));
        if template.function(function).grants_table_indexes() != reads_an_index {
            problems.push(format!(
                "{function}: reads an index: {reads_an_index}, but its grant says otherwise"
            ));
        }
        let denied: Vec<_> = called.difference(&grant).collect();
        if !denied.is_empty() {
            problems.push(format!(
                "{function} calls {denied:?}, which template.yaml does not grant it"
            ));
        }
        let unused: Vec<_> = grant.difference(&called).collect();
        if !unused.is_empty() {
            problems.push(format!(
                "template.yaml grants {function} {unused:?}, which it never called"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

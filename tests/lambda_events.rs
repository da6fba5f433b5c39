//! The Lambda handlers fed the sample events in `events/`, through the same adapters Lambda
//! uses (`lambda_http`'s adapter for API Gateway HTTP API v2, the SQS event for dispatch), over
//! DynamoDB and SQS on moto.

use base64::Engine;
use herald_shared::config::Config;
use herald_shared::queue::Queue;
use herald_shared::service::tenants;
use herald_tests::event_file;
use herald_tests::moto::moto;
use herald_tests::receiver::Receiver;
use herald_tests::stack::{local_config, KEY, TENANT};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Service};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use std::time::Duration;

/// A configuration pointing at a fresh moto table and queue, as the SAM template would.
async fn aws_config() -> (
    aws_config::SdkConfig,
    Config,
    herald_shared::queue::SqsQueue,
) {
    let moto = moto();
    let store = moto.store().await;
    let queue = moto.queue(5).await;
    let sdk = moto.sdk_config().await;
    let mut config = local_config();
    config.table_name = store.table().to_string();
    config.queue_url = Some(queue.url().to_string());
    tenants::ensure_tenant_with_key(&store, TENANT, "test", KEY)
        .await
        .unwrap();
    (sdk, config, queue)
}

/// Runs one API Gateway event file through a router as `lambda_http::run` would and returns
/// the API Gateway response as JSON (statusCode, headers, body).
async fn invoke(router: axum::Router, file: &str) -> (u16, Value) {
    let request: LambdaRequest =
        serde_json::from_str(&event_file(file)).expect("an HTTP API v2 event");
    let mut adapter = Adapter::from(router);
    let response = adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .expect("the handler answers");
    let response = serde_json::to_value(response).unwrap();
    let status = response["statusCode"].as_u64().unwrap() as u16;
    let body = response["body"].as_str().unwrap_or("");
    let body = if response["isBase64Encoded"] == true {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap(),
        )
        .unwrap()
    } else {
        body.to_string()
    };
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap()
    };
    (
        status,
        json!({"headers": response["headers"], "body": body}),
    )
}

#[tokio::test]
async fn ingest_function_accepts_sample_events_and_enqueues_them() {
    let (sdk, config, queue) = aws_config().await;
    let app = herald_ingest::app(&sdk, &config).await.unwrap();

    let (status, answer) = invoke(app.clone(), "ingest-post-event.json").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["body"],
        json!({"id": "evt-sample-1", "status": "accepted"})
    );
    let (status, answer) = invoke(app.clone(), "ingest-post-event.json").await;
    assert_eq!(status, 200, "the same id again is a duplicate: {answer}");
    assert_eq!(answer["body"]["status"], "duplicate");

    let (status, answer) = invoke(app.clone(), "ingest-post-batch.json").await;
    assert_eq!(status, 200);
    let statuses: Vec<&str> = answer["body"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "accepted", "invalid"]);

    // Ingest serves only its routes.
    let (status, answer) = invoke(app, "api-health.json").await;
    assert_eq!(status, 404);
    assert_eq!(
        answer["headers"]["content-type"],
        "application/problem+json"
    );

    let mut bodies = Vec::new();
    for _ in 0..5 {
        for m in queue.receive(10, Duration::from_secs(1)).await.unwrap() {
            let envelope: Value = serde_json::from_str(&m.body).unwrap();
            assert_eq!(envelope["tenant_id"], TENANT);
            bodies.push(envelope["event"]["id"].as_str().unwrap().to_string());
        }
        if bodies.len() == 3 {
            break;
        }
    }
    bodies.sort();
    assert_eq!(
        bodies,
        ["evt-sample-1", "evt-sample-2", "evt-sample-3"],
        "each accepted event enqueued once"
    );
}

#[tokio::test]
async fn api_function_serves_sample_requests() {
    let (sdk, config, _) = aws_config().await;
    let app = herald_api::app(&sdk, &config).await.unwrap();

    let (status, answer) = invoke(app.clone(), "api-health.json").await;
    assert_eq!(status, 200);
    assert_eq!(answer["body"]["status"], "ok");

    let (status, answer) = invoke(app.clone(), "api-create-webhook.json").await;
    assert_eq!(status, 201, "{answer}");
    let created = &answer["body"];
    assert_eq!(created["kind"], "slack");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));

    let (status, answer) = invoke(app.clone(), "api-list-webhooks.json").await;
    assert_eq!(status, 200);
    assert_eq!(answer["body"]["data"][0]["id"], created["id"]);
    assert!(
        answer["body"]["data"][0].get("secret").is_none(),
        "the secret is shown once"
    );
    assert_eq!(answer["body"]["next_cursor"], Value::Null);

    // API routes do not take events.
    let (status, _) = invoke(app, "ingest-post-event.json").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn dispatch_function_delivers_and_reports_only_the_bad_record() {
    let (sdk, config, queue) = aws_config().await;
    let receiver = Receiver::start(200).await;
    let (sdk, config, queue) = (sdk, config, std::sync::Arc::new(queue));
    let store = std::sync::Arc::new(herald_shared::runtime::dynamo_store(&sdk, &config));
    let dispatcher = std::sync::Arc::new(herald_dispatch::dispatcher(&sdk, &config).await.unwrap());
    let view = herald_shared::runtime::app_state(&config, store, queue, dispatcher)
        .api
        .create_webhook(
            TENANT,
            &json!({"url": receiver.url, "events": ["experiments.failed"]}),
        )
        .await
        .unwrap();

    let event = serde_json::from_str(&event_file("dispatch-sqs-batch.json")).unwrap();
    let dispatcher = herald_dispatch::dispatcher(&sdk, &config).await.unwrap();
    let response = herald_dispatch::handle(&dispatcher, event).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8"],
        "only the unreadable record is retried"
    );
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("webhook-id"), "evt-sample-1");
    assert_eq!(got[0].json()["type"], "experiments.failed");
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8"}]})
    );
    assert!(view.id.starts_with("wh_"));
}

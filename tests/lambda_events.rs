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
    // JSON answers are parsed; others (the console's page) are kept as text.
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or(Value::String(body))
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

    // The web console's page, through API Gateway's `ANY /` route, with its security headers.
    let (status, answer) = invoke(app.clone(), "api-console-index.json").await;
    assert_eq!(status, 200, "{answer}");
    let headers = &answer["headers"];
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(
        headers["content-security-policy"],
        herald_shared::web::console::CONTENT_SECURITY_POLICY
    );
    assert!(answer["body"]
        .as_str()
        .is_some_and(|page| page.starts_with("<!doctype html>")));

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
    let sender = herald_shared::runtime::sender(&config);
    let view = herald_shared::runtime::api_state(&config, store, queue, sender)
        .api
        .create_webhook(
            TENANT,
            &json!({"url": receiver.url, "events": ["experiments.failed"]}),
        )
        .await
        .unwrap();

    let event = serde_json::from_str(&event_file("dispatch-sqs-batch.json")).unwrap();
    let dispatch = herald_dispatch::dispatch(&sdk, &config).await.unwrap();
    let response = herald_dispatch::handle(&dispatch.dispatcher, event, None).await;
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

/// The ids the sample events refer to, seeded before each file runs.
const WEBHOOK_ID: &str = "wh_01JDA8Q3Z5X8N2V7K4M6P9R1T4";
const DELIVERY_ID: &str = "dl_01JDA8Q3Z5FHM26AEHFR8EPC1B01JDA8Q3Z5X8N2V7K4M6P9R1T4";
const KEY_ID: &str = "key_01JDA8Q3Z5X8N2V7K4M6P9R1T6";
const ADMIN_KEY: &str = "admin-key-0123456789abcdef";

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// An HTTP API v2 request to the ingest or api function, and the status it gets.
    Ingest(u16),
    Api(u16),
    /// An SQS batch: how many records come back as failures, how many POSTs the receiver gets.
    Dispatch {
        failures: usize,
        delivered: usize,
    },
    /// The schedule's input to the dispatch function: a sweep, which answers what it queued.
    Sweep,
}

/// Every file in `events/` and what it must produce. A file missing here fails the test, so a
/// new sample cannot go unchecked.
fn expected(file: &str) -> Option<Expect> {
    use Expect::*;
    Some(match file {
        "ingest-post-event.json" => Ingest(202),
        "ingest-post-event-unauthenticated.json" => Ingest(401),
        "ingest-post-event-malformed.json" => Ingest(400),
        "ingest-post-event-invalid.json" => Ingest(422),
        "ingest-post-batch.json" => Ingest(200),
        "ingest-post-batch-unauthenticated.json" => Ingest(401),
        "ingest-post-batch-malformed.json" => Ingest(422),
        "api-health.json" | "api-openapi.json" | "api-event-types.json" => Api(200),
        "api-console-index.json" => Api(200),
        "api-create-webhook.json" => Api(201),
        "api-create-webhook-unauthenticated.json" => Api(401),
        "api-create-webhook-malformed.json" => Api(422),
        "api-list-webhooks.json" => Api(200),
        "api-list-webhooks-unauthenticated.json" => Api(401),
        "api-list-webhooks-malformed.json" => Api(422),
        "api-get-webhook.json" => Api(200),
        "api-get-webhook-unauthenticated.json" => Api(401),
        "api-get-webhook-malformed.json" => Api(404),
        "api-update-webhook.json" => Api(200),
        "api-update-webhook-malformed.json" => Api(422),
        "api-delete-webhook.json" => Api(204),
        "api-delete-webhook-unauthenticated.json" => Api(401),
        "api-get-secret.json" | "api-rotate-secret.json" => Api(200),
        "api-get-secret-unauthenticated.json" => Api(401),
        "api-rotate-secret-unknown.json" => Api(404),
        "api-test-unsaved-webhook.json" => Api(422),
        "api-test-unsaved-webhook-malformed.json" => Api(415),
        "api-test-webhook.json" => Api(200),
        "api-test-webhook-unauthenticated.json" => Api(401),
        "api-list-deliveries.json" => Api(200),
        "api-list-deliveries-malformed.json" => Api(422),
        "api-get-delivery.json" => Api(200),
        "api-get-delivery-unauthenticated.json" => Api(401),
        "api-redeliver.json" => Api(202),
        "api-redeliver-unknown.json" => Api(404),
        "api-create-tenant.json" => Api(201),
        "api-create-tenant-unauthenticated.json" => Api(401),
        "api-create-tenant-malformed.json" => Api(422),
        "api-create-key.json" => Api(201),
        "api-create-key-unauthenticated.json" => Api(401),
        "api-delete-key.json" => Api(204),
        "api-unknown-route.json" => Api(404),
        "dispatch-sqs-one.json" => Dispatch {
            failures: 0,
            delivered: 1,
        },
        "dispatch-sqs-ten.json" => Dispatch {
            failures: 0,
            delivered: 10,
        },
        "dispatch-sqs-retry.json" => Dispatch {
            failures: 0,
            delivered: 1,
        },
        "dispatch-sqs-poison.json" => Dispatch {
            failures: 1,
            delivered: 0,
        },
        "dispatch-sqs-batch.json" => Dispatch {
            failures: 1,
            delivered: 1,
        },
        "dispatch-sweep.json" => Sweep,
        _ => return None,
    })
}

/// A fresh table and queue holding what the samples refer to: the test tenant and key, a
/// second key, a webhook (posting to `receiver`), an accepted event and its delivery to the
/// webhook with one failed attempt.
async fn seeded(receiver: &str) -> (aws_config::SdkConfig, Config) {
    use herald_shared::delivery::{Attempt, Delivery};
    use herald_shared::store::{ApiKey, DeliveryStore, EventLog, TenantStore, WebhookStore};
    use herald_shared::webhook::{Webhook, WebhookSpec};
    let (sdk, mut config, _) = aws_config().await;
    config.admin_key = Some(herald_shared::secret::Secret::new(ADMIN_KEY));
    let store = herald_shared::runtime::dynamo_store(&sdk, &config);
    let now = time::OffsetDateTime::now_utc();
    let spec = WebhookSpec::parse(
        &json!({"name": "sample", "url": receiver, "events": ["*"]}),
        &herald_shared::runtime::url_rules(&config),
    )
    .unwrap();
    let webhook = Webhook::new(
        WEBHOOK_ID.into(),
        TENANT,
        spec,
        herald_shared::signing::generate_secret(),
        now,
    );
    assert!(store.create_webhook(&webhook, usize::MAX).await.unwrap());
    let mut delivery = Delivery::new(
        DELIVERY_ID.into(),
        TENANT,
        "evt-ten-0",
        "experiments.failed",
        WEBHOOK_ID,
        now,
    );
    let failed = Attempt {
        at: now,
        status_code: Some(503),
        duration_ms: 12,
        error: None,
        response_body: None,
    };
    delivery.record(failed, Some(now));
    store.put_delivery(&delivery).await.unwrap();
    // The event behind the delivery (the acceptance the retry sample names), kept as ingest
    // keeps it, so it can be redelivered: the delivery's id is the one it makes.
    let retry: Value = serde_json::from_str(&event_file("dispatch-sqs-retry.json")).unwrap();
    let retry = retry["Records"][0]["body"].as_str().unwrap();
    let accepted = herald_shared::queue::Message::decode(retry).unwrap();
    let made = herald_shared::delivery::delivery_id(accepted.envelope().envelope_id, WEBHOOK_ID);
    assert_eq!(
        &*made, DELIVERY_ID,
        "the samples name the delivery the event makes"
    );
    let kept = herald_shared::queue::Message::fan_out(accepted.envelope().clone()).encode();
    let envelope = kept.as_str();
    let day = time::Duration::days(1);
    let claimed = store
        .claim_event(TENANT, "evt-ten-0", envelope, "post-0", now + day, now)
        .await
        .unwrap();
    assert_eq!(claimed, herald_shared::store::Claim::Won);
    store
        .confirm_post(TENANT, "post-0", now + day)
        .await
        .unwrap();
    store
        .put_api_key(&ApiKey {
            id: KEY_ID.into(),
            tenant_id: TENANT.into(),
            hash: herald_shared::secret::hash_key("second-key-0123456789"),
            name: "second".into(),
            scopes: herald_shared::scope::Scopes::ALL,
            created_at: now,
            last_used: None,
        })
        .await
        .unwrap();
    (sdk, config)
}

#[tokio::test]
async fn every_sample_event_gets_its_documented_answer() {
    let dir = herald_tests::workspace_root().join("events");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the sample set is complete: {files:?}");
    for file in &files {
        let expect = expected(file)
            .unwrap_or_else(|| panic!("events/{file} has no expected answer in this test"));
        let receiver = Receiver::start(200).await;
        let (sdk, config) = seeded(&receiver.url).await;
        match expect {
            Expect::Ingest(want) | Expect::Api(want) => {
                let app = if matches!(expect, Expect::Ingest(_)) {
                    herald_ingest::app(&sdk, &config).await.unwrap()
                } else {
                    herald_api::app(&sdk, &config).await.unwrap()
                };
                let (status, answer) = invoke(app, file).await;
                assert_eq!(status, want, "events/{file}: {answer}");
                if status >= 400 {
                    assert_eq!(
                        answer["headers"]["content-type"], "application/problem+json",
                        "events/{file}"
                    );
                    assert_eq!(answer["body"]["status"], status, "events/{file}");
                }
                if status == 422 {
                    let named = answer["body"]["errors"]
                        .as_array()
                        .is_some_and(|e| !e.is_empty() && e.iter().all(|e| e["field"].is_string()));
                    assert!(named, "events/{file}: a 422 names its fields: {answer}");
                }
            }
            Expect::Dispatch {
                failures,
                delivered,
            } => {
                // Through the function's entry point, as Lambda hands it the event.
                let event = serde_json::from_str(&event_file(file)).unwrap();
                let dispatch = herald_dispatch::dispatch(&sdk, &config).await.unwrap();
                let answer = herald_dispatch::invoke(&dispatch, event, None)
                    .await
                    .unwrap();
                let response: aws_lambda_events::event::sqs::SqsBatchResponse =
                    serde_json::from_value(answer).unwrap();
                assert_eq!(
                    response.batch_item_failures.len(),
                    failures,
                    "events/{file}"
                );
                let got = if delivered > 0 {
                    receiver.wait_for(delivered).await
                } else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    receiver.requests()
                };
                assert_eq!(got.len(), delivered, "events/{file}");
            }
            Expect::Sweep => {
                let event = serde_json::from_str(&event_file(file)).unwrap();
                let dispatch = herald_dispatch::dispatch(&sdk, &config).await.unwrap();
                let answer = herald_dispatch::invoke(&dispatch, event, None)
                    .await
                    .unwrap();
                assert_eq!(
                    answer,
                    json!({"queued": 0, "overdue": 0, "given_up": 0, "recovered": 0}),
                    "events/{file}: the seeded delivery is not yet due"
                );
            }
        }
    }
}

/// An event that is neither an SQS batch nor the schedule's sweep is an error, not a batch of
/// nothing acknowledged.
#[tokio::test]
async fn the_dispatch_function_refuses_what_it_was_not_built_for() {
    let (sdk, config, _) = aws_config().await;
    let dispatch = herald_dispatch::dispatch(&sdk, &config).await.unwrap();
    let refused = herald_dispatch::invoke(&dispatch, json!({"Records": "not a list"}), None).await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn the_api_function_takes_its_admin_key_from_secrets_manager_or_does_not_start() {
    let (sdk, mut config, _) = aws_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = format!("herald-admin-{}", ulid::Ulid::new());
    let arn = secrets
        .create_secret()
        .name(&name)
        .secret_string("admin-from-the-secret-0123456789")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    config.admin_key = Some(herald_shared::secret::Secret::new(
        "admin-from-the-environment",
    ));
    config.admin_key_secret = Some(arn);
    let app = herald_api::app(&sdk, &config).await.unwrap();
    let tenant = |key: &'static str| {
        let app = app.clone();
        async move {
            use tower::ServiceExt;
            let request = http::Request::post("/v1/tenants")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"name":"from-secret"}"#))
                .unwrap();
            app.oneshot(request).await.unwrap().status().as_u16()
        }
    };
    assert_eq!(tenant("admin-from-the-secret-0123456789").await, 201);
    assert_eq!(
        tenant("admin-from-the-environment").await,
        401,
        "the secret's key takes the place of the environment's"
    );

    // A secret that cannot be read fails the cold start, naming the secret, not a value.
    config.admin_key_secret = Some(format!("{name}-missing"));
    let Err(error) = herald_api::app(&sdk, &config).await else {
        panic!("the api started without its admin key");
    };
    let text = error.to_string();
    assert!(text.contains(&format!("{name}-missing")), "{text}");
    assert!(text.contains("ResourceNotFoundException"), "{text}");

    // So does one holding no string.
    let empty = format!("{name}-empty");
    secrets
        .create_secret()
        .name(&empty)
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![1, 2, 3]))
        .send()
        .await
        .unwrap();
    config.admin_key_secret = Some(empty);
    let Err(error) = herald_api::app(&sdk, &config).await else {
        panic!("the api started with a secret holding no string");
    };
    assert!(
        error.to_string().contains("holds no string value"),
        "{error}"
    );
}

//! End to end through the handlers: webhooks created over the API, events posted to ingest,
//! queued, dispatched by the Lambda handler, delivered to real local receivers. Each scenario
//! runs over the in-memory backends and over DynamoDB/SQS on moto.

use herald_shared::delivery::DeliveryStatus;
use herald_shared::secret::Secret;
use herald_shared::signing;
use herald_shared::store::MemoryStore;
use herald_tests::faults::{Faults, FlakyStore};
use herald_tests::receiver::Receiver;
use herald_tests::stack::{Stack, TENANT};
use serde_json::{json, Value};

/// One event of each resource family (SPEC §2), with the standard payload it must produce.
fn families() -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    let mut add = |posted: Value, text: &str| {
        let mut expected = json!({
            "id": posted["id"], "type": posted["type"], "timestamp": "2026-11-22T10:00:00Z",
            "project": posted.get("project").cloned().unwrap_or(Value::Null),
            "environment_type": posted.get("environment_type").cloned().unwrap_or(Value::Null),
            "object": posted["object"], "data": posted.get("data").cloned().unwrap_or(json!({})), "text": text,
        });
        if let Some(result) = posted.get("result") {
            expected["result"] = result.clone();
        }
        out.push((posted, expected));
    };
    add(
        json!({"id": "evt-exp", "type": "experiments.succeeded", "occurred_at": "2026-11-22T10:00:00Z",
               "project": "Light detection", "object": {"kind": "experiment", "name": "cifar10", "id": "1"},
               "data": {"experiment": {"id": 1, "state": "COMPLETED", "duration": 18400}}}),
        "Experiment cifar10 succeeded in project Light detection",
    );
    add(
        json!({"id": "evt-grp", "type": "groups.failed", "occurred_at": "2026-11-22T10:00:00Z",
               "project": "mnist", "object": {"kind": "group", "name": "lr-sweep"}}),
        "Group lr-sweep failed in project mnist",
    );
    add(
        json!({"id": "evt-job", "type": "jobs.stopped", "occurred_at": "2026-11-22T11:00:00+01:00",
               "project": "mnist", "object": {"kind": "job", "name": "preprocess"}, "data": {"user": "admin"}}),
        "Job preprocess stopped in project mnist",
    );
    add(
        json!({"id": "evt-bld", "type": "builds.succeeded", "occurred_at": "2026-11-22T10:00:00Z",
               "object": {"kind": "build", "name": "trainer-image"}}),
        "Build trainer-image succeeded",
    );
    add(
        json!({"id": "evt-req", "type": "requests.completed", "occurred_at": "2026-11-22T10:00:00Z",
               "project": "fraud", "object": {"kind": "deployment", "name": "model-a", "version": "v1"},
               "data": {"request_id": "r-1"}, "result": {"score": 0.97}}),
        "Deployment model-a v1: request completed in project fraud",
    );
    add(
        json!({"id": "evt-dep", "type": "deployments.failed", "occurred_at": "2026-11-22T10:00:00Z",
               "project": "web-shop", "environment_type": "PRODUCTION",
               "object": {"kind": "environment", "name": "production"}, "text": "Deploy of web-shop failed",
               "data": {"url": "https://console.example.com/deployments/42"}}),
        "Deploy of web-shop failed",
    );
    out
}

async fn every_family_reaches_standard_and_slack_receivers(stack: Stack) {
    let standard_rx = Receiver::start(204).await;
    let slack_rx = Receiver::start(200).await;
    let standard = stack
        .create_webhook(json!({
            "url": standard_rx.url, "include_result": true,
            "events": ["experiments.done", "groups.*", "jobs.done", "builds.succeeded", "requests.finished", "deployments.failed"],
            "headers": [{"key": "Authorization", "value": "Token 123", "protected": true}, {"key": "X-Team", "value": "ml"}]
        }))
        .await;
    let slack = stack
        .create_webhook(json!({"url": slack_rx.url, "kind": "slack", "events": ["*"]}))
        .await;
    assert_eq!(
        standard["headers"][0]["value"],
        Value::Null,
        "protected values are not returned"
    );

    let families = families();
    for (posted, _) in &families {
        stack.post_event(posted.clone()).await;
    }
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(stack.drain().await.is_empty(), "no record fails");

    let got = standard_rx.wait_for(families.len()).await;
    assert_eq!(got.len(), families.len(), "exactly one delivery per event");
    let secret = Secret::new(standard["secret"].as_str().unwrap());
    for (_, expected) in &families {
        let req = got
            .iter()
            .find(|r| r.json()["id"] == expected["id"])
            .unwrap_or_else(|| panic!("{} not delivered", expected["id"]));
        assert_eq!(req.json(), *expected);
        assert_eq!(req.path, "/hook");
        assert_eq!(req.header("content-type"), "application/json");
        assert_eq!(
            req.header("user-agent"),
            herald_shared::http::client::USER_AGENT
        );
        assert_eq!(req.header("authorization"), "Token 123");
        assert_eq!(req.header("x-team"), "ml");
        assert_eq!(req.header("webhook-id"), expected["id"].as_str().unwrap());
        let ts: i64 = req.header("webhook-timestamp").parse().unwrap();
        assert!((ts - before).abs() <= 60);
        signing::verify(
            &secret,
            req.header("webhook-id"),
            ts,
            req.header("webhook-signature"),
            &req.body,
            ts,
            0,
        )
        .expect("signed with the webhook's secret");
    }

    let slack_got = slack_rx.wait_for(families.len()).await;
    assert_eq!(slack_got.len(), families.len());
    let slack_secret = Secret::new(slack["secret"].as_str().unwrap());
    let mut headers: Vec<String> = slack_got
        .iter()
        .map(|r| {
            let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
            signing::verify(
                &slack_secret,
                r.header("webhook-id"),
                ts,
                r.header("webhook-signature"),
                &r.body,
                ts,
                0,
            )
            .unwrap();
            assert!(
                r.headers.get("authorization").is_none(),
                "headers are per webhook"
            );
            r.json()["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    headers.sort();
    assert_eq!(
        headers,
        [
            "⏹\u{fe0f} job preprocess stopped",
            "✅ build trainer-image succeeded",
            "✅ deployment model-a request completed",
            "✅ experiment cifar10 succeeded",
            "❌ environment production failed",
            "❌ group lr-sweep failed",
        ]
    );
    let dep = slack_got
        .iter()
        .find(|r| r.header("webhook-id") == "evt-dep")
        .unwrap()
        .json();
    assert_eq!(dep["text"], "❌ Deploy of web-shop failed");
    assert!(dep["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["type"] == "actions"
            && b["elements"][0]["url"] == "https://console.example.com/deployments/42"));

    // Every delivery is on record as succeeded with its attempt.
    let page = stack
        .store
        .list_deliveries(TENANT, standard["id"].as_str().unwrap(), 100, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), families.len());
    for d in &page.items {
        assert_eq!(d.status, DeliveryStatus::Succeeded);
        assert_eq!(d.attempts.len(), 1);
        assert_eq!(d.attempts[0].status_code, Some(204));
    }
}

async fn events_outside_the_filters_reach_no_one(stack: Stack) {
    let prod_rx = Receiver::start(200).await;
    let pipeline_rx = Receiver::start(200).await;
    stack
        .create_webhook(json!({"url": prod_rx.url, "events": ["deployments.*"],
            "filters": {"project_names": ["prod-*", "Light detection"], "environment_types": ["PRODUCTION"]}}))
        .await;
    stack
        .create_webhook(
            json!({"url": pipeline_rx.url, "events": ["requests.finished"],
            "filters": {"object": {"kind": "pipeline", "name": "pipeline-1", "version": "v1"}}}),
        )
        .await;
    for miss in [
        json!({"type": "deployments.failed", "project": "staging-x", "environment_type": "PRODUCTION"}),
        json!({"type": "deployments.failed", "project": "prod-eu", "environment_type": "STAGING"}),
        json!({"type": "deployments.failed", "environment_type": "PRODUCTION"}),
        json!({"type": "requests.failed", "object": {"kind": "pipeline", "name": "pipeline-1", "version": "v2"}}),
        json!({"type": "requests.failed", "object": {"kind": "deployment", "name": "pipeline-1", "version": "v1"}}),
        json!({"type": "requests.started", "object": {"kind": "pipeline", "name": "pipeline-1", "version": "v1"}}),
        json!({"type": "experiments.failed", "project": "prod-eu", "environment_type": "PRODUCTION"}),
    ] {
        stack.post_event(miss).await;
    }
    assert!(stack.drain().await.is_empty());
    assert!(
        prod_rx.requests().is_empty(),
        "no filtered-out event reaches the project filter"
    );
    assert!(
        pipeline_rx.requests().is_empty(),
        "no filtered-out event reaches the object filter"
    );

    stack.post_event(json!({"id": "hit-1", "type": "deployments.succeeded", "project": "PROD-us", "environment_type": "PRODUCTION"})).await;
    stack.post_event(json!({"id": "hit-2", "type": "deployments.started", "project": "light DETECTION", "environment_type": "PRODUCTION"})).await;
    stack.post_event(json!({"id": "hit-3", "type": "requests.failed", "object": {"kind": "pipeline", "name": "pipeline-1", "version": "v1"}})).await;
    assert!(stack.drain().await.is_empty());
    let mut prod_ids: Vec<String> = prod_rx
        .wait_for(2)
        .await
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    prod_ids.sort();
    assert_eq!(prod_ids, ["hit-1", "hit-2"]);
    let pipeline = pipeline_rx.wait_for(1).await;
    assert_eq!(pipeline.len(), 1);
    assert_eq!(pipeline[0].header("webhook-id"), "hit-3");
}

async fn a_failing_receiver_yields_a_recorded_failed_attempt(stack: Stack) {
    let rx = Receiver::start(500).await;
    let webhook = stack
        .create_webhook(json!({"url": rx.url, "events": ["jobs.failed"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-500", "type": "jobs.failed"}))
        .await;
    assert!(
        stack.drain().await.is_empty(),
        "a receiver's error is not an internal failure"
    );
    assert_eq!(rx.wait_for(1).await.len(), 1);
    let page = stack
        .store
        .list_deliveries(TENANT, webhook["id"].as_str().unwrap(), 10, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "the event is accounted for, not lost");
    let d = &page.items[0];
    assert_eq!(&*d.event_id, "evt-500");
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.attempts[0].status_code, Some(500));
    assert_eq!(
        d.attempts[0].response_body.as_deref(),
        Some("receiver says hi")
    );
}

#[tokio::test]
async fn an_unrecorded_delivery_leaves_its_record_on_the_queue() {
    let queue = std::sync::Arc::new(herald_shared::queue::MemoryQueue::default());
    let faults = std::sync::Arc::new(Faults::default());
    Faults::set(&faults.fail_put_delivery, true);
    let store = FlakyStore {
        inner: std::sync::Arc::new(MemoryStore::new()),
        faults,
    };
    let stack = Stack::new(
        std::sync::Arc::new(store),
        queue.clone(),
        std::time::Duration::ZERO,
    )
    .await;
    let rx = Receiver::start(200).await;
    stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "builds.failed"})).await;
    let failures = stack.drain().await;
    assert_eq!(
        failures.len(),
        1,
        "the record whose delivery could not be recorded is retried"
    );
    assert_eq!(queue.depth(), 1, "its message stays on the queue");
}

macro_rules! on_both_backends {
    ($($scenario:ident),*) => {
        mod memory { $( #[tokio::test] async fn $scenario() { super::$scenario(herald_tests::stack::Stack::memory().await).await } )* }
        mod moto { $( #[tokio::test] async fn $scenario() { super::$scenario(herald_tests::stack::Stack::moto().await).await } )* }
    };
}

on_both_backends!(
    every_family_reaches_standard_and_slack_receivers,
    events_outside_the_filters_reach_no_one,
    a_failing_receiver_yields_a_recorded_failed_attempt
);

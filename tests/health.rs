//! A webhook's health, told and shown. Operational events (`herald_shared::operational`): each
//! change in a webhook's health, and each delivery that used its whole schedule, is told once
//! into the tenant's own pipeline, to the webhooks that subscribe, never to the webhook it is
//! about. Stats (`herald_shared::stats`): every attempt counted by outcome in its hour, one
//! write per batch and webhook. On both backends.

use herald_shared::config::{parse_schedule, Config};
use herald_tests::receiver::Receiver;
use herald_tests::stack::Stack;
use http::StatusCode;
use serde_json::{json, Value};

/// Five attempts, back to back.
fn schedule(c: &mut Config) {
    c.retry_schedule = parse_schedule("0s,0s,0s,0s,0s").unwrap();
}

fn id(webhook: &Value) -> &str {
    webhook["id"].as_str().unwrap()
}

/// The types of what `rx` received, in order.
fn types(rx: &Receiver) -> Vec<String> {
    rx.requests()
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A watcher subscribed to every operational event; a subject subscribed to everything, its
/// receiver down. The subject fails five times in a row (failing at the fourth, exhausted at
/// the fifth), answers 410 (disabled), is enabled again and succeeds (recovered): the watcher
/// is told each once, the subject none of its own, and handling everything again tells nothing.
async fn each_transition_is_told_once_and_never_to_its_webhook(stack: Stack) {
    let watched = Receiver::start(200).await;
    let down = Receiver::start(500).await;
    let watcher = stack
        .create_webhook(json!({"url": watched.url, "events": ["webhooks.*", "deliveries.*"]}))
        .await;
    let subject = stack
        .create_webhook(json!({"url": down.url, "name": "billing",
            "events": ["*", "webhooks.*", "deliveries.*"]}))
        .await;

    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    assert_eq!(down.requests().len(), 5, "the whole schedule");
    assert_eq!(
        types(&watched),
        ["webhooks.failing", "deliveries.exhausted"]
    );
    let failing = watched.requests()[0].json();
    assert_eq!(failing["object"]["id"], id(&subject));
    assert_eq!(failing["data"]["failures"], 4);
    let exhausted = watched.requests()[1].json();
    assert_eq!(exhausted["data"]["attempts"], 5);
    assert_eq!(exhausted["data"]["last_status_code"], 500);
    assert!(
        exhausted["text"].as_str().unwrap().contains("billing"),
        "{exhausted}"
    );

    down.set_status(410);
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    assert_eq!(
        types(&watched),
        [
            "webhooks.failing",
            "deliveries.exhausted",
            "webhooks.disabled"
        ]
    );
    assert!(watched.requests()[2].json()["data"]["reason"]
        .as_str()
        .unwrap()
        .contains("410"));

    down.set_status(200);
    let path = format!("/v1/webhooks/{}", id(&subject));
    let (status, _, _) = stack
        .call("PATCH", &path, Some(json!({"enabled": true})), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    stack.post_event(json!({"type": "jobs.failed"})).await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    assert!(stack.drain().await.is_empty());
    assert_eq!(
        types(&watched),
        [
            "webhooks.failing",
            "deliveries.exhausted",
            "webhooks.disabled",
            "webhooks.recovered"
        ],
        "each transition once: the second success tells nothing"
    );
    assert!(
        types(&down).iter().all(|t| t == "jobs.failed"),
        "the subject heard nothing about itself: {:?}",
        types(&down)
    );
    // Told as events: in the watcher's log, signed and retried as any other delivery.
    let (_, _, log) = stack
        .call(
            "GET",
            &format!("/v1/webhooks/{}/deliveries", id(&watcher)),
            None,
            None,
        )
        .await;
    assert_eq!(log["data"].as_array().unwrap().len(), 4, "{log}");
    assert!(watched
        .requests()
        .iter()
        .all(|r| !r.header("webhook-signature").is_empty()));
}

/// A tenant with no webhook subscribed to operational events gets none: the transitions write
/// no event and queue nothing.
async fn nothing_is_emitted_when_nobody_subscribes(stack: Stack) {
    let down = Receiver::start(500).await;
    let everything = Receiver::start(200).await;
    stack
        .create_webhook(json!({"url": down.url, "events": ["webhooks.*", "jobs.*"]}))
        .await;
    stack
        .create_webhook(json!({"url": everything.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    assert_eq!(down.requests().len(), 5);
    assert_eq!(
        types(&everything),
        ["jobs.failed"],
        "`*` covers the platforms' types, not Herald's"
    );
}

/// Each attempt is counted by outcome in its hour: a webhook whose receiver is down retries 4
/// times and fails once per event, one that answers 200 succeeds, a disabled one holds. The
/// window has every hour, the counts in the current one; a window Herald does not know is a
/// 422 naming `window`, and another tenant's webhook is not found.
async fn stats_count_every_attempt_by_outcome(stack: Stack) {
    let down = Receiver::start(500).await;
    let up = Receiver::start(200).await;
    let failing = stack
        .create_webhook(json!({"url": down.url, "events": ["*"]}))
        .await;
    let working = stack
        .create_webhook(json!({"url": up.url, "events": ["*"]}))
        .await;
    let disabled = stack
        .create_webhook(json!({"url": up.url, "events": ["*"], "enabled": false}))
        .await;
    for _ in 0..2 {
        stack.post_event(json!({"type": "jobs.failed"})).await;
    }
    assert!(stack.drain().await.is_empty());
    let stats = |webhook: &Value, window: &str| {
        let path = format!("/v1/webhooks/{}/stats{window}", id(webhook));
        let stack = &stack;
        async move { stack.call("GET", &path, None, None).await }
    };
    let (status, _, day) = stats(&failing, "").await;
    assert_eq!(status, StatusCode::OK, "{day}");
    assert_eq!(day["window"], "24h");
    assert_eq!(
        day["totals"],
        json!({"succeeded": 0, "retried": 8, "failed": 2, "held": 0})
    );
    assert_eq!(day["success_rate"], 0.0);
    let hours = day["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    assert_eq!(hours[23]["retried"], 8, "in the current hour: {day}");
    let (_, _, week) = stats(&failing, "?window=7d").await;
    assert_eq!(week["hours"].as_array().unwrap().len(), 168);
    assert_eq!(week["totals"], day["totals"]);
    let (_, _, ok) = stats(&working, "?window=24h").await;
    assert_eq!(
        (
            ok["totals"]["succeeded"].clone(),
            ok["success_rate"].clone()
        ),
        (json!(2), json!(1.0))
    );
    let (_, _, held) = stats(&disabled, "").await;
    assert_eq!(
        (held["totals"]["held"].clone(), held["success_rate"].clone()),
        (json!(2), Value::Null)
    );

    let (status, _, refused) = stats(&failing, "?window=30d").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "window");
    assert_eq!(refused["errors"][0]["valid"], json!(["24h", "7d"]));
    let (status, _, _) = stack
        .call(
            "GET",
            "/v1/webhooks/wh_01JDA8Q3Z5X8N2V7K4M6P9R1T5/stats",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod memory { $( #[tokio::test] async fn $scenario() {
            super::$scenario(herald_tests::stack::Stack::memory_with(super::schedule).await).await
        } )* }
        mod moto { $( #[tokio::test] async fn $scenario() {
            super::$scenario(herald_tests::stack::Stack::moto_with(super::schedule).await).await
        } )* }
    };
}

on_both_backends!(
    each_transition_is_told_once_and_never_to_its_webhook,
    nothing_is_emitted_when_nobody_subscribes,
    stats_count_every_attempt_by_outcome,
);

#[tokio::test]
async fn a_platform_cannot_post_an_operational_event() {
    let stack = Stack::memory().await;
    let (status, _, body) = stack
        .call(
            "POST",
            "/v1/events",
            Some(json!({"type": "webhooks.disabled"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "type");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("emitted by Herald"));
}

/// Counts are advisory: a throttled add loses that batch's counts, never its deliveries, and
/// the batch is not handed back (which would send its POSTs again).
#[tokio::test]
async fn a_throttled_count_loses_the_counts_never_the_batch() {
    use herald_shared::queue::MemoryQueue;
    use herald_shared::store::MemoryStore;
    use herald_tests::faults::{Faults, FlakyStore};
    use std::sync::Arc;
    let faults = Arc::new(Faults::default());
    let store = Arc::new(FlakyStore {
        inner: Arc::new(MemoryStore::new()),
        faults: faults.clone(),
    });
    let stack = Stack::with_config(
        herald_tests::stack::local_config(),
        store,
        Arc::new(MemoryQueue::default()),
        std::time::Duration::ZERO,
    )
    .await;
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let path = format!("/v1/webhooks/{}/stats", id(&wh));
    Faults::set(&faults.fail_counts, true);
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty(), "no record handed back");
    assert_eq!(rx.requests().len(), 1, "delivered once");
    let (_, _, lost) = stack.call("GET", &path, None, None).await;
    assert_eq!(lost["totals"]["succeeded"], 0, "{lost}");
    Faults::set(&faults.fail_counts, false);
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    let (_, _, counted) = stack.call("GET", &path, None, None).await;
    assert_eq!(counted["totals"]["succeeded"], 1, "{counted}");
    assert_eq!(rx.requests().len(), 2);
}

/// No count is written when the invocation's deadline leaves no room for one more call: the
/// batch's answer matters more than its counts. A dispatcher whose calls may take 5 s, handed
/// a batch with 1 s left, delivers and records it, and counts nothing; with time left it counts.
#[tokio::test]
async fn no_count_is_written_when_the_deadline_leaves_no_room() {
    use herald_shared::runtime;
    use herald_shared::service::dispatch::{Dispatcher, QueueRecord, Settings};
    use std::time::Duration;
    let stack = Stack::memory().await;
    let config = herald_tests::stack::local_config();
    let pressed = Dispatcher::new(
        stack.store.clone(),
        stack.queue.clone(),
        runtime::sender(&config),
        Settings {
            concurrency: 4,
            schedule: config.retry_schedule.clone(),
            disable_after: config.disable_after,
            lease: Duration::from_secs(70),
            job_budget: Duration::from_millis(10),
            call_timeout: Duration::from_secs(5),
            max_receives: 5,
        },
    );
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let path = format!("/v1/webhooks/{}/stats", id(&wh));
    /// Posts an event, hands its message to `dispatcher` as one batch with `deadline`, and
    /// answers the webhook's succeeded count.
    async fn handle_one(
        stack: &Stack,
        dispatcher: &Dispatcher,
        path: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Value {
        stack.post_event(json!({"type": "jobs.failed"})).await;
        let got = stack.queue.receive(10, Duration::ZERO).await.unwrap();
        let records: Vec<QueueRecord> = got.iter().map(QueueRecord::from).collect();
        let handled = dispatcher.handle(&records, deadline).await;
        assert!(handled.failed.is_empty(), "{:?}", handled.failed);
        for m in &got {
            stack.queue.delete(&m.receipt).await.unwrap();
        }
        let (_, _, stats) = stack.call("GET", path, None, None).await;
        stats["totals"]["succeeded"].clone()
    }
    let soon = tokio::time::Instant::now() + Duration::from_secs(1);
    assert_eq!(
        handle_one(&stack, &pressed, &path, Some(soon)).await,
        0,
        "no room: not counted"
    );
    assert_eq!(rx.requests().len(), 1, "but delivered");
    assert_eq!(
        handle_one(&stack, &pressed, &path, None).await,
        1,
        "with room: counted"
    );
}

//! Nothing lost (SPEC §4): retries on the schedule, idempotent dispatch under SQS redelivery
//! and crashes, auto-disable, the per-endpoint cap, and faults injected into the store, the
//! queue and DynamoDB itself. Retry schedules are compressed to seconds.

use herald_shared::config::{parse_schedule, Config};
use herald_shared::delivery::{delivery_id, Delivery, DeliveryStatus};
use herald_shared::error::Error;
use herald_shared::queue::{MemoryQueue, Message, Queue};
use herald_shared::service::dispatch::QueueRecord;
use herald_shared::service::ingest::{BatchStatus, PostStatus, CLAIM_STALE_AFTER};
use herald_shared::service::Ingest;
use herald_shared::store::{MemoryStore, Store};
use herald_tests::faults::{Faults, FlakyQueue, FlakyStore};
use herald_tests::moto::moto;
use herald_tests::receiver::{Receiver, Reply};
use herald_tests::stack::{local_config, Stack, KEY, TENANT};
use http::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

fn config(schedule: &str, change: impl FnOnce(&mut Config)) -> Config {
    let mut c = local_config();
    c.retry_schedule = parse_schedule(schedule).unwrap();
    change(&mut c);
    c
}

async fn memory(config: Config) -> Stack {
    Stack::with_config(
        config,
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryQueue::new(Duration::from_secs(1), 5)),
        Duration::ZERO,
    )
    .await
}

async fn on_moto(config: Config) -> Stack {
    let m = moto();
    Stack::with_config(
        config,
        Arc::new(m.store().await),
        Arc::new(m.queue_with(5, Duration::from_secs(2)).await),
        Duration::from_secs(1),
    )
    .await
}

/// The in-memory stack over a store whose operations fail on demand.
async fn flaky_memory(schedule: &str) -> (Stack, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let store = Arc::new(FlakyStore {
        inner: Arc::new(MemoryStore::new()),
        faults: faults.clone(),
    });
    let stack = Stack::with_config(
        config(schedule, |_| {}),
        store,
        Arc::new(MemoryQueue::new(Duration::from_secs(1), 5)),
        Duration::ZERO,
    )
    .await;
    (stack, faults)
}

/// The in-memory stack over a queue whose sends fail on demand.
async fn flaky_queue_memory(schedule: &str) -> (Stack, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let queue: Arc<dyn Queue> = Arc::new(FlakyQueue {
        inner: Arc::new(MemoryQueue::new(Duration::from_secs(1), 5)),
        faults: faults.clone(),
    });
    let stack = Stack::with_config(
        config(schedule, |_| {}),
        Arc::new(MemoryStore::new()),
        queue,
        Duration::ZERO,
    )
    .await;
    (stack, faults)
}

/// The one message on the queue, as the event source would hand it over.
async fn receive_one(stack: &Stack) -> Vec<herald_shared::queue::Received> {
    let got = stack
        .queue
        .receive(10, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "one message queued");
    got
}

/// Hands received messages to the dispatcher as one batch, as the event source would, and
/// deletes them: none may fail.
async fn handle_once(stack: &Stack, got: &[herald_shared::queue::Received]) {
    let records: Vec<QueueRecord> = got.iter().map(QueueRecord::from).collect();
    let handled = stack.dispatcher.handle(&records, None).await;
    assert!(handled.failed.is_empty(), "{:?}", handled.failed);
    for m in got {
        stack.queue.delete(&m.receipt).await.unwrap();
    }
}

/// Drives the queue until `count` deliveries of the webhook are final (bounded).
async fn settle(stack: &Stack, webhook_id: &str, count: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        stack.drain().await;
        let items = stack
            .store
            .list_deliveries(TENANT, webhook_id, 100, None)
            .await
            .unwrap()
            .items;
        let done = items.len() == count
            && items
                .iter()
                .all(|d| matches!(d.status, DeliveryStatus::Succeeded | DeliveryStatus::Failed));
        if done {
            return items;
        }
        let states: Vec<_> = items.iter().map(|d| (d.status, d.attempts.len())).collect();
        assert!(Instant::now() < deadline, "not settled: {states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn id(webhook: &Value) -> &str {
    webhook["id"].as_str().unwrap()
}

async fn fails_k_times_then_succeeds(stack: Stack) {
    let rx = Receiver::start(200).await;
    rx.script([
        Reply::Status(500),
        Reply::Close,
        Reply::Hang(Duration::from_millis(1500)),
    ]);
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["jobs.*"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-k", "type": "jobs.failed"}))
        .await;
    let d = &settle(&stack, id(&wh), 1).await[0];

    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(d.attempts.len(), 4, "delivered on attempt k+1");
    let codes: Vec<_> = d.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), None, None, Some(200)]);
    assert!(
        d.attempts[1].error.is_some(),
        "a closed connection is recorded"
    );
    assert!(
        d.attempts[2]
            .error
            .as_deref()
            .unwrap()
            .starts_with("timeout"),
        "{:?}",
        d.attempts[2]
    );
    assert_eq!(d.next_attempt_at, None);
    for pair in d.attempts.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= time::Duration::milliseconds(850),
            "attempts follow the schedule: {gap}"
        );
    }
    let got = rx.requests();
    assert_eq!(got.len(), 4);
    assert!(
        got.iter().all(|r| r.header("webhook-id") == "evt-k"),
        "webhook-id is stable across attempts"
    );
    assert!(got.iter().all(|r| r.body == got[0].body));
}

async fn never_succeeds_takes_exactly_the_schedule(stack: Stack) {
    let rx = Receiver::start(503).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "builds.failed"})).await;
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.attempts.len(), 3, "exactly the schedule's attempts");
    assert_eq!(d.next_attempt_at, None);
    // Nothing left in flight: no message comes back, no further attempt is made.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(stack.drain().await.is_empty());
    assert!(stack
        .queue
        .receive(10, Duration::from_millis(500))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(rx.requests().len(), 3);
}

async fn duplicate_ingest_delivers_once_per_webhook(stack: Stack) {
    let (a, b) = (Receiver::start(200).await, Receiver::start(200).await);
    for rx in [&a, &b] {
        stack
            .create_webhook(json!({"url": rx.url, "events": ["*"]}))
            .await;
    }
    let event = json!({"id": "dup-1", "type": "experiments.failed"});
    assert_eq!(stack.post_event(event.clone()).await["status"], "accepted");
    for _ in 0..2 {
        let (status, _, answer) = stack
            .call("POST", "/v1/events", Some(event.clone()), None)
            .await;
        assert_eq!(
            (status.as_u16(), answer["status"].as_str()),
            (200, Some("duplicate"))
        );
    }
    let (_, _, batch) = stack
        .call(
            "POST",
            "/v1/events/batch",
            Some(json!({"events": [event]})),
            None,
        )
        .await;
    assert_eq!(batch["data"][0]["status"], "duplicate");
    assert!(stack.drain().await.is_empty());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((a.requests().len(), b.requests().len()), (1, 1));
}

/// SQS may deliver a message twice, and a batch may be replayed: endpoints that answered 2xx
/// get nothing twice, and a duplicated retry message makes no extra attempt.
async fn redelivered_messages_send_nothing_twice(stack: Stack) {
    let (ok, flaky) = (Receiver::start(200).await, Receiver::start(200).await);
    flaky.script([Reply::Status(500)]);
    stack
        .create_webhook(json!({"url": ok.url, "events": ["*"]}))
        .await;
    let wh = stack
        .create_webhook(json!({"url": flaky.url, "events": ["*"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-twice", "type": "jobs.succeeded"}))
        .await;

    let replay = |messages: &[herald_shared::queue::Received]| {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| json!({"messageId": m.message_id, "receiptHandle": m.receipt, "body": m.body}))
            .collect();
        serde_json::from_value::<aws_lambda_events::event::sqs::SqsEvent>(
            json!({ "Records": records }),
        )
        .unwrap()
    };
    let first = receive_one(&stack).await;
    for _ in 0..3 {
        let response = herald_dispatch::handle(&stack.dispatcher, replay(&first), None).await;
        assert!(response.batch_item_failures.is_empty());
    }
    stack.queue.delete(&first[0].receipt).await.unwrap();
    assert_eq!(
        ok.requests().len(),
        1,
        "the 2xx endpoint got the event once"
    );
    assert_eq!(flaky.requests().len(), 1, "one failed attempt, not three");

    // The retry message, received twice, makes one attempt.
    let deadline = Instant::now() + Duration::from_secs(10);
    let retry = loop {
        let got = stack
            .queue
            .receive(10, Duration::from_millis(500))
            .await
            .unwrap();
        if !got.is_empty() {
            break got;
        }
        assert!(Instant::now() < deadline, "the retry was not queued");
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..2 {
        herald_dispatch::handle(&stack.dispatcher, replay(&retry), None).await;
    }
    stack.queue.delete(&retry[0].receipt).await.unwrap();
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!((d.status, d.attempts.len()), (DeliveryStatus::Succeeded, 2));
    assert_eq!(flaky.requests().len(), 2);
    assert_eq!(ok.requests().len(), 1);
}

/// SQS may hand one message to two consumers at once. Each attempt is leased with a
/// conditional write before its POST, so one of the two runs sends; the other's message comes
/// back later and finds the delivery done.
async fn one_message_handled_by_two_runs_at_once_is_sent_once(stack: Stack) {
    let rx = Receiver::start(200).await;
    rx.set_delay(Duration::from_millis(300));
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-race", "type": "jobs.succeeded"}))
        .await;
    let got = receive_one(&stack).await;
    let records: Vec<QueueRecord> = got.iter().map(QueueRecord::from).collect();
    let (one, two) = tokio::join!(
        stack.dispatcher.handle(&records, None),
        stack.dispatcher.handle(&records, None)
    );
    assert!(one.failed.is_empty() && two.failed.is_empty());
    stack.queue.delete(&got[0].receipt).await.unwrap();
    assert_eq!(rx.requests().len(), 1, "one POST between the two runs");
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!((d.status, d.attempts.len()), (DeliveryStatus::Succeeded, 1));
    // The deferred copy comes back within DEFER_MAX and sends nothing.
    tokio::time::sleep(Duration::from_secs(6)).await;
    stack.drain().await;
    assert_eq!(rx.requests().len(), 1, "the deferred copy sent nothing");
}

/// A run that dies after leasing an attempt, before recording it: the message is not dropped
/// while the lease is live; once it lapses another run makes the attempt.
async fn a_lease_left_by_a_dead_run_is_taken_over_when_it_lapses(stack: Stack) {
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-orphan", "type": "jobs.failed"}))
        .await;
    let got = receive_one(&stack).await;
    let message = Message::decode(&got[0].body).unwrap();
    let envelope = message.envelope();
    let now = OffsetDateTime::now_utc();
    let mut held = Delivery::new(
        delivery_id(envelope.envelope_id, id(&wh)),
        TENANT,
        "evt-orphan",
        "jobs.failed",
        id(&wh),
        now,
    );
    held.leased_until = Some(now + time::Duration::seconds(2));
    assert!(stack.store.lease_delivery(&held, now).await.unwrap());

    // Deferred, not failed.
    handle_once(&stack, &got).await;
    assert!(
        rx.requests().is_empty(),
        "nothing sent while the lease is live"
    );
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!((d.status, d.attempts.len()), (DeliveryStatus::Succeeded, 1));
    assert_eq!(d.leased_until, None);
    assert_eq!(rx.requests().len(), 1);
}

/// An event that matches a disabled webhook is not dropped: its delivery is kept `held` (one
/// write, nothing sent) and shown in the log, and the same message again writes nothing over
/// it. A redelivery is refused while the webhook is disabled; once it is enabled again, the
/// held delivery is redelivered and sent once.
async fn a_disabled_webhook_holds_what_it_matches(stack: Stack) {
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let path = format!("/v1/webhooks/{}", id(&wh));
    let (status, _, _) = stack
        .call("PATCH", &path, Some(json!({"enabled": false})), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    stack
        .post_event(json!({"id": "evt-held", "type": "jobs.failed"}))
        .await;
    let got = receive_one(&stack).await;
    let records: Vec<QueueRecord> = got.iter().map(QueueRecord::from).collect();
    for _ in 0..2 {
        let handled = stack.dispatcher.handle(&records, None).await;
        assert!(handled.failed.is_empty(), "{:?}", handled.failed);
    }
    stack.queue.delete(&got[0].receipt).await.unwrap();
    assert!(rx.requests().is_empty(), "nothing sent while disabled");
    let (_, _, log) = stack
        .call("GET", &format!("{path}/deliveries"), None, None)
        .await;
    let entries = log["data"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        1,
        "one held delivery, however often its message came"
    );
    assert_eq!(entries[0]["status"], "held");
    assert_eq!(entries[0]["attempts"], json!([]));
    let redeliver = format!(
        "/v1/deliveries/{}/redeliver",
        entries[0]["id"].as_str().unwrap()
    );
    let (status, _, _) = stack.call("POST", &redeliver, None, None).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "not while the webhook is disabled"
    );
    stack
        .call("PATCH", &path, Some(json!({"enabled": true})), None)
        .await;
    let (status, _, body) = stack.call("POST", &redeliver, None, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!((d.status, d.attempts.len()), (DeliveryStatus::Succeeded, 1));
    assert_eq!(rx.requests().len(), 1, "sent once, once enabled");
}

/// A retry whose webhook was disabled after its failed attempt is not failed but held, with its
/// attempt kept, and nothing more is sent.
#[tokio::test]
async fn a_retry_whose_webhook_was_disabled_meanwhile_is_held() {
    let stack = memory(config("0s,1s", |_| {})).await;
    let rx = Receiver::start(500).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    let (status, _, _) = stack
        .call(
            "PATCH",
            &format!("/v1/webhooks/{}", id(&wh)),
            Some(json!({"enabled": false})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(stack.drain().await.is_empty());
    let page = stack
        .store
        .list_deliveries(TENANT, id(&wh), 10, None)
        .await
        .unwrap();
    let d = &page.items[0];
    assert_eq!((d.status, d.attempts.len()), (DeliveryStatus::Held, 1));
    assert_eq!(
        (d.next_attempt_at, d.sweep_at),
        (None, None),
        "nothing due, nothing to sweep"
    );
    assert_eq!(rx.requests().len(), 1, "the retry sent nothing");
}

/// A window recovered, then recovered again: the first run gives every failed delivery a new
/// series (and the receiver, back up, takes each once); the second matches only deliveries not
/// succeeded, so it sends nothing again. A status that matches nothing queues nothing.
async fn a_window_recovered_twice_sends_nothing_twice(stack: Stack) {
    let rx = Receiver::start(500).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let since = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for n in 0..3 {
        stack
            .post_event(json!({"id": format!("evt-rec-{n}"), "type": "jobs.failed"}))
            .await;
    }
    let failed = settle(&stack, id(&wh), 3).await;
    assert!(failed.iter().all(|d| d.status == DeliveryStatus::Failed));
    rx.set_status(200);
    let recover = format!("/v1/webhooks/{}/recover", id(&wh));
    let window =
        json!({"since": since.format(&time::format_description::well_known::Rfc3339).unwrap()});
    let (status, headers, job) = stack
        .call("POST", &recover, Some(window.clone()), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(
        (&job["state"], &job["matched"], &job["queued"]),
        (&json!("done"), &json!(3), &json!(3)),
        "{job}"
    );
    let location = headers["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("/v1/recoveries/{}", job["id"].as_str().unwrap())
    );
    let recovered = settle(&stack, id(&wh), 3).await;
    assert!(recovered
        .iter()
        .all(|d| (d.status, d.attempts.len()) == (DeliveryStatus::Succeeded, 2)));
    assert_eq!(rx.requests().len(), 6, "3 failed, then each recovered once");
    let (status, _, again) = stack
        .call("POST", &recover, Some(window.clone()), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        (&again["scanned"], &again["queued"]),
        (&json!(3), &json!(0)),
        "{again}"
    );
    let mut held = window.clone();
    held["status"] = json!("held");
    let (_, _, none) = stack.call("POST", &recover, Some(held), None).await;
    assert_eq!(
        (&none["matched"], &none["queued"]),
        (&json!(0), &json!(0)),
        "{none}"
    );
    assert!(stack.drain().await.is_empty());
    assert_eq!(rx.requests().len(), 6, "the second run sent nothing");
    let (status, _, followed) = stack.call("GET", &location, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(followed["queued"], 3);
}

/// A receiver down for a window: its webhook is disabled, events keep coming and are held;
/// the receiver comes back, the webhook is enabled with `recover`, and every event of the
/// window is delivered once, in the log with its attempt.
async fn a_webhook_enabled_with_recover_delivers_what_it_held_once(stack: Stack) {
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let path = format!("/v1/webhooks/{}", id(&wh));
    stack
        .call("PATCH", &path, Some(json!({"enabled": false})), None)
        .await;
    for n in 0..4 {
        stack
            .post_event(json!({"id": format!("evt-down-{n}"), "type": "jobs.failed"}))
            .await;
    }
    assert!(stack.drain().await.is_empty());
    assert!(rx.requests().is_empty());
    let (status, _, refused) = stack
        .call("PATCH", &path, Some(json!({"recover": true})), None)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the webhook stays disabled: {refused}"
    );
    let (status, _, refused) = stack
        .call(
            "PATCH",
            &path,
            Some(json!({"enabled": false, "recover": true})),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a body that contradicts itself: {refused}"
    );
    assert_eq!(refused["errors"][0]["field"], "recover");
    let (status, _, patched) = stack
        .call(
            "PATCH",
            &path,
            Some(json!({"enabled": true, "recover": true})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["enabled"], true);
    assert_eq!(patched["recovery"]["status"], "held");
    assert_eq!(patched["recovery"]["queued"], 4, "{patched}");
    let delivered = settle(&stack, id(&wh), 4).await;
    assert!(delivered
        .iter()
        .all(|d| (d.status, d.attempts.len()) == (DeliveryStatus::Succeeded, 1)));
    let mut ids: Vec<String> = rx
        .requests()
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((rx.requests().len(), ids.len()), (4, 4), "each event once");
}

macro_rules! on_both_backends {
    ($($scenario:ident => $schedule:literal),* $(,)?) => {
        mod memory { $( #[tokio::test] async fn $scenario() {
            super::$scenario(super::memory(super::config($schedule, |c| c.delivery_timeout = std::time::Duration::from_millis(500))).await).await
        } )* }
        mod moto { $( #[tokio::test] async fn $scenario() {
            super::$scenario(super::on_moto(super::config($schedule, |c| c.delivery_timeout = std::time::Duration::from_millis(500))).await).await
        } )* }
    };
}

on_both_backends!(
    fails_k_times_then_succeeds => "0s,1s,1s,1s,1s",
    never_succeeds_takes_exactly_the_schedule => "0s,1s,1s",
    duplicate_ingest_delivers_once_per_webhook => "0s",
    redelivered_messages_send_nothing_twice => "0s,1s,1s",
    one_message_handled_by_two_runs_at_once_is_sent_once => "0s",
    a_lease_left_by_a_dead_run_is_taken_over_when_it_lapses => "0s",
    a_disabled_webhook_holds_what_it_matches => "0s",
    a_window_recovered_twice_sends_nothing_twice => "0s",
    a_webhook_enabled_with_recover_delivers_what_it_held_once => "0s",
);

#[tokio::test]
async fn retry_after_is_honoured_within_the_schedule() {
    let stack = memory(config("0s,1s,5s", |_| {})).await;
    let rx = Receiver::start(200).await;
    rx.script([Reply::RetryAfter(429, 2)]);
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!(d.attempts.len(), 2);
    let gap = d.attempts[1].at - d.attempts[0].at;
    assert!(
        gap >= time::Duration::milliseconds(1900),
        "waited as asked, not the scheduled 1 s: {gap}"
    );
}

#[tokio::test]
async fn gone_fails_the_delivery_and_disables_the_webhook_at_once() {
    let stack = memory(config("0s,1s,1s", |_| {})).await;
    let rx = Receiver::start(410).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!((d.status, d.attempts.len()), (DeliveryStatus::Failed, 1));
    let (_, _, view) = stack
        .call("GET", &format!("/v1/webhooks/{}", id(&wh)), None, None)
        .await;
    assert_eq!(view["enabled"], false);
    assert!(view["disabled_reason"].as_str().unwrap().contains("410"));
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    assert_eq!(
        rx.requests().len(),
        1,
        "a disabled webhook receives nothing"
    );
}

#[tokio::test]
async fn a_webhook_failing_for_the_whole_window_is_disabled_and_a_success_resets_it() {
    let stack = memory(config("0s", |c| {
        c.disable_after = Duration::from_millis(1500)
    }))
    .await;
    let rx = Receiver::start(500).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let stored = || async {
        stack
            .store
            .get_webhook(TENANT, id(&wh))
            .await
            .unwrap()
            .unwrap()
    };

    stack.post_event(json!({"type": "jobs.failed"})).await;
    stack.drain().await;
    assert!(
        stored().await.failing_since.is_some(),
        "the clock starts at the first failure"
    );
    rx.set_status(200);
    stack.post_event(json!({"type": "jobs.failed"})).await;
    stack.drain().await;
    assert_eq!(stored().await.failing_since, None, "one success resets it");

    rx.set_status(500);
    stack.post_event(json!({"type": "jobs.failed"})).await;
    stack.drain().await;
    assert!(
        stored().await.spec.enabled,
        "failing, but not for long enough yet"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    stack.drain().await;
    let w = stored().await;
    assert!(!w.spec.enabled);
    assert!(w
        .disabled_reason
        .unwrap()
        .starts_with("every delivery attempt failed since"));
    let (_, _, on) = stack
        .call(
            "PATCH",
            &format!("/v1/webhooks/{}", id(&wh)),
            Some(json!({"enabled": true})),
            None,
        )
        .await;
    assert_eq!(
        (on["enabled"].clone(), on["disabled_reason"].clone()),
        (json!(true), Value::Null)
    );
    // Re-enabling starts the clock afresh: the next failure does not disable it again.
    stack.post_event(json!({"type": "jobs.failed"})).await;
    stack.drain().await;
    let w = stored().await;
    assert!(
        w.spec.enabled,
        "re-enabled, then failed once: still enabled"
    );
    assert!(w.failing_since.is_some());
    // So does pointing it at another endpoint.
    let other = Receiver::start(500).await;
    stack
        .call(
            "PATCH",
            &format!("/v1/webhooks/{}", id(&wh)),
            Some(json!({"url": other.url})),
            None,
        )
        .await;
    assert_eq!(stored().await.failing_since, None);
}

#[tokio::test]
async fn a_health_change_never_undoes_an_edit_made_at_the_same_moment() {
    let (stack, faults) = flaky_memory("0s").await;
    let rx = Receiver::start(500).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    Faults::set(&faults.edit_before_webhook_update, true);
    stack.post_event(json!({"type": "jobs.failed"})).await;
    stack.drain().await;
    let w = stack
        .store
        .get_webhook(TENANT, id(&wh))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !faults.edit_before_webhook_update.load(Ordering::SeqCst),
        "the edit was made between the health read and its write"
    );
    assert_eq!(w.spec.description, herald_tests::faults::EDITED_MEANWHILE);
    assert!(
        w.failing_since.is_some(),
        "and the health change landed too"
    );
}

#[tokio::test]
async fn deliveries_to_one_url_are_capped() {
    let stack = memory(config("0s", |c| c.endpoint_concurrency = 3)).await;
    let rx = Receiver::start(200).await;
    rx.set_delay(Duration::from_millis(200));
    for _ in 0..12 {
        stack
            .create_webhook(json!({"url": rx.url, "events": ["*"]}))
            .await;
    }
    stack
        .post_event(json!({"type": "deployments.failed"}))
        .await;
    assert!(stack.drain().await.is_empty());
    assert_eq!(rx.requests().len(), 12);
    let peak = rx.max_in_flight();
    assert!(
        (2..=3).contains(&peak),
        "at most 3 in flight to one URL, and concurrent: {peak}"
    );
}

/// The dispatcher dies between two deliveries of a batch (its poller is aborted while a
/// delivery is stuck before it starts); after the visibility timeout a new one finishes the
/// work. Every pair arrives exactly once.
#[tokio::test]
async fn a_crash_midway_loses_nothing_and_duplicates_nothing() {
    let m = moto();
    let faults = Arc::new(Faults::default());
    faults.freeze_after_deliveries.store(15, Ordering::SeqCst);
    let store: Arc<dyn Store> = Arc::new(FlakyStore {
        inner: Arc::new(m.store().await),
        faults: faults.clone(),
    });
    let queue: Arc<dyn Queue> = Arc::new(m.queue_with(5, Duration::from_secs(2)).await);
    let stack = Stack::with_config(
        config("0s", |c| c.dispatch_concurrency = 1),
        store,
        queue.clone(),
        Duration::from_secs(1),
    )
    .await;
    let (a, b) = (Receiver::start(200).await, Receiver::start(200).await);
    let wa = stack
        .create_webhook(json!({"url": a.url, "events": ["*"]}))
        .await;
    let wb = stack
        .create_webhook(json!({"url": b.url, "events": ["*"]}))
        .await;
    let events: Vec<Value> = (0..20)
        .map(|i| json!({"id": format!("crash-{i}"), "type": "jobs.failed"}))
        .collect();
    let (status, _, _) = stack
        .call(
            "POST",
            "/v1/events/batch",
            Some(json!({"events": events})),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 200);

    let dispatcher = stack.dispatcher.clone();
    let crashed = tokio::spawn(herald_shared::runtime::poll(
        queue.clone(),
        dispatcher,
        std::future::pending(),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while faults.deliveries_recorded.load(Ordering::SeqCst) < 15 {
        assert!(Instant::now() < deadline, "the first run did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    crashed.abort();
    let _ = crashed.await;
    let sent_before = a.requests().len() + b.requests().len();
    assert_eq!(sent_before, 15, "the first run stopped between deliveries");

    faults.freeze_after_deliveries.store(0, Ordering::SeqCst);
    settle(&stack, id(&wa), 20).await;
    settle(&stack, id(&wb), 20).await;
    for rx in [&a, &b] {
        let mut ids: Vec<String> = rx
            .requests()
            .iter()
            .map(|r| r.header("webhook-id").to_string())
            .collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(
            (before, ids.len()),
            (20, 20),
            "every event once, none twice"
        );
    }
}

#[tokio::test]
async fn a_queue_outage_while_scheduling_a_retry_is_retried_not_lost() {
    let (stack, faults) = flaky_queue_memory("0s,1s").await;
    let rx = Receiver::start(200).await;
    rx.script([Reply::Status(500), Reply::Status(500)]);
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-q", "type": "jobs.failed"}))
        .await;
    Faults::set(&faults.fail_send, true);
    assert_eq!(
        stack.drain().await.len(),
        1,
        "the record is reported for retry"
    );
    let d = stack
        .store
        .list_deliveries(TENANT, id(&wh), 10, None)
        .await
        .unwrap()
        .items;
    assert!(
        d.is_empty() || d[0].status == DeliveryStatus::Pending,
        "no state claims a retry that was never queued"
    );
    assert!(
        d.iter().all(|d| d.leased_until.is_none()),
        "the lease is given back, so the returning message need not wait for it to lapse"
    );
    Faults::set(&faults.fail_send, false);
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(rx.requests().len(), 3);

    // Ingest: a queue outage answers 503 and releases the id, so the platform's retry works.
    Faults::set(&faults.fail_send, true);
    let (status, headers, problem) = stack
        .call(
            "POST",
            "/v1/events",
            Some(json!({"id": "evt-later", "type": "jobs.failed"})),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 503);
    assert_eq!(
        (
            headers["content-type"].to_str().unwrap(),
            headers["retry-after"].to_str().unwrap()
        ),
        ("application/problem+json", "5")
    );
    assert!(
        !problem.to_string().contains("injected"),
        "internal details stay in the logs"
    );
    Faults::set(&faults.fail_send, false);
    assert_eq!(
        stack
            .post_event(json!({"id": "evt-later", "type": "jobs.failed"}))
            .await["status"],
        "accepted"
    );
}

/// A retry whose delivery state cannot be read: the record is a batch item failure, nothing is
/// sent, and the retry happens once the store answers again.
#[tokio::test]
async fn a_store_outage_during_dispatch_is_a_batch_item_failure_then_delivered() {
    let (stack, faults) = flaky_memory("0s,0s").await;
    let rx = Receiver::start(200).await;
    rx.script([Reply::Status(500)]);
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    let first = receive_one(&stack).await;
    handle_once(&stack, &first).await;
    assert_eq!(
        rx.requests().len(),
        1,
        "the first attempt failed with a 500"
    );

    Faults::set(&faults.fail_get_delivery, true);
    assert_eq!(
        stack.drain().await.len(),
        1,
        "the retry is a batch item failure"
    );
    assert_eq!(
        rx.requests().len(),
        1,
        "nothing sent while the delivery state is unreadable"
    );
    Faults::set(&faults.fail_get_delivery, false);
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!((d.status, d.attempts.len()), (DeliveryStatus::Succeeded, 2));
    assert_eq!(rx.requests().len(), 2);
}

#[tokio::test]
async fn a_store_outage_while_leasing_sends_nothing_and_is_retried() {
    let (stack, faults) = flaky_memory("0s").await;
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    Faults::set(&faults.fail_lease, true);
    assert_eq!(stack.drain().await.len(), 1, "a batch item failure");
    assert!(rx.requests().is_empty(), "nothing sent without a lease");
    Faults::set(&faults.fail_lease, false);
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(rx.requests().len(), 1);
}

/// DynamoDB itself answering errors (a table that does not exist): ingest refuses with 503
/// without accepting, and dispatch reports the record.
#[tokio::test]
async fn dynamodb_errors_surface_as_503_and_batch_item_failures() {
    let m = moto();
    let sdk = m.sdk_config().await;
    let good = Arc::new(m.store().await);
    let queue: Arc<dyn Queue> = Arc::new(m.queue(5).await);
    let stack = Stack::with_config(
        config("0s", |_| {}),
        good,
        queue.clone(),
        Duration::from_secs(1),
    )
    .await;
    let missing: Arc<dyn Store> = Arc::new(herald_shared::store::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        "no-such-table",
    ));

    let ingest = herald_shared::service::Ingest::new(missing.clone(), queue.clone());
    let err = ingest
        .accept(TENANT, &json!({"type": "jobs.failed"}))
        .await
        .unwrap_err();
    assert!(matches!(err, herald_shared::Error::Store(_)), "{err:?}");
    assert!(
        queue
            .receive(10, Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty(),
        "nothing accepted"
    );

    stack.post_event(json!({"type": "jobs.failed"})).await;
    let config = local_config();
    let dispatcher = herald_shared::runtime::dispatcher(&config, missing, queue.clone());
    let messages = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    let records: Vec<_> = messages
        .iter()
        .map(herald_shared::service::QueueRecord::from)
        .collect();
    assert_eq!(
        dispatcher.handle(&records, None).await.failed,
        [messages[0].message_id.clone()]
    );
}

#[tokio::test]
async fn dead_letters_are_redriven_back_to_the_queue() {
    let m = moto();
    let queue = m.queue_with(1, Duration::from_secs(1)).await;
    let stack = Stack::with_config(
        config("0s", |_| {}),
        Arc::new(MemoryStore::new()),
        Arc::new(queue.clone()),
        Duration::from_secs(1),
    )
    .await;
    queue
        .send_text("not an envelope".into(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        stack.drain().await.len(),
        1,
        "an unreadable message is a batch item failure"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        queue
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "moved to the DLQ after maxReceiveCount"
    );

    let dlq = queue.dead_letter_queue_url().await.unwrap();
    assert!(dlq.ends_with("-dlq"));
    assert_eq!(queue.redrive_from(&dlq).await.unwrap(), 1);
    let back = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        back.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["not an envelope"]
    );
    assert_eq!(queue.redrive_from(&dlq).await.unwrap(), 0);
}

/// Takes what is queued now and runs it through the dispatcher as one batch.
async fn one_batch(stack: &Stack) -> herald_shared::service::dispatch::Handled {
    let messages = stack.queue.receive(10, Duration::ZERO).await.unwrap();
    assert!(!messages.is_empty(), "something queued");
    let records: Vec<_> = messages
        .iter()
        .map(herald_shared::service::QueueRecord::from)
        .collect();
    let handled = stack.dispatcher.handle(&records, None).await;
    for m in messages
        .iter()
        .filter(|m| !handled.failed.contains(&m.message_id))
    {
        stack.queue.delete(&m.receipt).await.unwrap();
    }
    handled
}

#[tokio::test]
async fn each_batch_reports_what_it_delivered_retried_and_failed() {
    let stack = memory(config("0s,1s", |_| {})).await;
    let ok = Receiver::start(204).await;
    let bad = Receiver::start(500).await;
    stack
        .create_webhook(json!({"url": ok.url, "events": ["*"]}))
        .await;
    stack
        .create_webhook(json!({"url": bad.url, "events": ["jobs.*"]}))
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    stack
        .post_event(json!({"type": "experiments.failed"}))
        .await;

    let first = one_batch(&stack).await;
    assert!(first.failed.is_empty());
    let m = &first.metrics;
    assert_eq!(
        (m.succeeded, m.retried, m.failed, m.records_failed),
        (2, 1, 0, 0)
    );
    let mut fan_out = m.fan_out.clone();
    fan_out.sort_by(f64::total_cmp);
    assert_eq!(fan_out, [1.0, 2.0], "webhooks matched per event");
    assert_eq!(m.duration_ms.len(), 3, "one duration per POST");
    assert_eq!(m.latency_ms.len(), 2, "one latency per success");
    assert!(m.latency_ms.iter().all(|l| *l >= 0.0 && *l < 60_000.0));

    // The retry is the schedule's last attempt: it fails for good and fans out to nothing new.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = one_batch(&stack).await;
    let m = &second.metrics;
    assert_eq!((m.succeeded, m.retried, m.failed), (0, 0, 1));
    assert!(m.fan_out.is_empty(), "a retry is not a new event");

    let line = &m.emf_lines("dispatch", time::OffsetDateTime::now_utc())[0];
    let doc: Value = serde_json::from_str(line).unwrap();
    assert_eq!(doc["DeliveriesFailed"], 1);
    assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Herald");
}

#[tokio::test]
async fn an_internal_failure_is_counted_as_a_failed_record() {
    let (stack, faults) = flaky_memory("0s").await;
    let rx = Receiver::start(200).await;
    stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    Faults::set(&faults.fail_lease, true);
    let handled = one_batch(&stack).await;
    assert_eq!(handled.failed.len(), 1);
    assert_eq!(handled.metrics.records_failed, 1);
    assert_eq!(handled.metrics.succeeded, 0);
}

/// Ingest over `store` and a queue that fails on demand (its messages readable through the
/// returned memory queue); `stale` is how old a pending claim must be to be taken over.
fn claims_ingest(
    store: Arc<dyn Store>,
    stale: time::Duration,
) -> (Arc<Ingest>, Arc<Faults>, Arc<MemoryQueue>) {
    let faults = Arc::new(Faults::default());
    let queue = Arc::new(MemoryQueue::default());
    let flaky = Arc::new(FlakyQueue {
        inner: queue.clone(),
        faults: faults.clone(),
    });
    let ingest = Ingest::new(store, flaky).with_stale_after(stale);
    (Arc::new(ingest), faults, queue)
}

/// The one message queued, checked to be the envelope the store keeps for the event.
async fn queued_once(store: &dyn Store, queue: &MemoryQueue, event_id: &str) {
    let got = queue.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1, "exactly one message queued");
    let stored = store.get_event(TENANT, event_id).await.unwrap().unwrap();
    assert_eq!(got[0].body, stored, "the stored envelope, same envelope id");
    let message = Message::decode(&got[0].body).unwrap();
    assert_eq!(&*message.envelope().event.id, event_id);
}

async fn a_second_post_while_the_first_send_stalls_then_fails_is_not_a_duplicate(
    store: Arc<dyn Store>,
) {
    let (ingest, faults, queue) = claims_ingest(store.clone(), CLAIM_STALE_AFTER);
    let body = json!({"id": "evt-stall", "type": "jobs.failed"});
    Faults::set(&faults.stall_send, true);
    Faults::set(&faults.fail_send, true);
    let first = tokio::spawn({
        let (ingest, body) = (ingest.clone(), body.clone());
        async move { ingest.accept(TENANT, &body).await }
    });
    faults.send_entered.notified().await;
    let second = ingest.accept(TENANT, &body).await;
    assert!(
        matches!(second, Err(Error::InFlight(_))),
        "while the first send is unconfirmed the retry must retry again, got {second:?}"
    );
    Faults::set(&faults.stall_send, false);
    faults.resume.notify_one();
    assert!(matches!(first.await.unwrap(), Err(Error::Queue(_))));
    Faults::set(&faults.fail_send, false);
    let third = ingest.accept(TENANT, &body).await.unwrap();
    assert_eq!(third.status, PostStatus::Accepted);
    queued_once(store.as_ref(), &queue, "evt-stall").await;
    assert_eq!(
        ingest.accept(TENANT, &body).await.unwrap().status,
        PostStatus::Duplicate
    );
    assert!(
        queue.receive(10, Duration::ZERO).await.unwrap().is_empty(),
        "the duplicate queued nothing"
    );
}

async fn a_post_killed_between_claim_and_confirmation_is_taken_over_by_its_retry(
    store: Arc<dyn Store>,
) {
    let (ingest, faults, queue) = claims_ingest(store.clone(), time::Duration::ZERO);
    let body = json!({"id": "evt-killed", "type": "jobs.failed"});
    Faults::set(&faults.hang_send, true);
    let cut = tokio::time::timeout(Duration::from_millis(200), ingest.accept(TENANT, &body)).await;
    assert!(
        cut.is_err(),
        "the first post never finished: its function was killed"
    );
    Faults::set(&faults.hang_send, false);
    // Until the claim is old enough to be presumed dead, a retry is told to retry later.
    let (patient, _, _) = claims_ingest(store.clone(), CLAIM_STALE_AFTER);
    assert!(matches!(
        patient.accept(TENANT, &body).await,
        Err(Error::InFlight(secs)) if (1..=30).contains(&secs)
    ));
    let retry = ingest.accept(TENANT, &body).await.unwrap();
    assert_eq!(retry.status, PostStatus::Accepted);
    queued_once(store.as_ref(), &queue, "evt-killed").await;
    assert_eq!(
        ingest.accept(TENANT, &body).await.unwrap().status,
        PostStatus::Duplicate
    );
}

/// The SDK retries a claim whose answer was lost after DynamoDB wrote it; the retry's
/// condition fails on that write. The post is accepted and queued once, alone and in a batch,
/// and a later post of the id is a duplicate.
async fn a_claim_retried_after_its_answer_was_lost_is_the_posts_own(store: Arc<dyn Store>) {
    let faults = Arc::new(Faults::default());
    let flaky: Arc<dyn Store> = Arc::new(FlakyStore {
        inner: store.clone(),
        faults: faults.clone(),
    });
    let queue = Arc::new(MemoryQueue::default());
    let ingest = Ingest::new(flaky, queue.clone());
    Faults::set(&faults.claim_answer_lost, true);
    let one = ingest
        .accept(TENANT, &json!({"id": "evt-lost", "type": "jobs.failed"}))
        .await
        .unwrap();
    assert_eq!(one.status, PostStatus::Accepted);
    queued_once(store.as_ref(), &queue, "evt-lost").await;
    let batch = ingest
        .accept_batch(
            TENANT,
            &json!({"events": [{"id": "evt-lost-2", "type": "jobs.failed"}]}),
        )
        .await
        .unwrap();
    assert_eq!(
        batch[0].status,
        BatchStatus::Accepted,
        "{:?}",
        batch[0].detail
    );
    queued_once(store.as_ref(), &queue, "evt-lost-2").await;
    Faults::set(&faults.claim_answer_lost, false);
    let again = ingest
        .accept(TENANT, &json!({"id": "evt-lost", "type": "jobs.failed"}))
        .await
        .unwrap();
    assert_eq!(again.status, PostStatus::Duplicate);
}

/// A queue that refuses every send: the post fails with the queue's error, a batch item is
/// `failed` without the queue's own words, and the id is released, so the platform's retry is
/// accepted once the queue is back.
async fn a_failed_enqueue_releases_the_claim(store: Arc<dyn Store>) {
    let (ingest, faults, queue) = claims_ingest(store.clone(), CLAIM_STALE_AFTER);
    let body = json!({"id": "evt-down", "type": "jobs.failed"});
    Faults::set(&faults.fail_send, true);
    assert!(matches!(
        ingest.accept(TENANT, &body).await,
        Err(Error::Queue(_))
    ));
    let items = ingest
        .accept_batch(TENANT, &json!({"events": [body.clone()]}))
        .await
        .unwrap();
    assert_eq!(items[0].status, BatchStatus::Failed);
    let detail = items[0].detail.as_deref().unwrap();
    assert!(
        !detail.contains("injected"),
        "no raw queue error in an answer: {detail}"
    );
    Faults::set(&faults.fail_send, false);
    assert_eq!(
        ingest.accept(TENANT, &body).await.unwrap().status,
        PostStatus::Accepted
    );
    queued_once(store.as_ref(), &queue, "evt-down").await;
}

/// A batch whose send is refused for one event and whose release of that event's claim fails
/// too: the post's one confirmation is not written, since the refused event's claim still names
/// the post and would read as confirmed. The platform's retry of the refused event is queued,
/// not answered `duplicate` (the event would be lost), and the accepted one is queued once.
async fn a_batch_whose_release_fails_confirms_none_of_its_claims(store: Arc<dyn Store>) {
    let faults = Arc::new(Faults::default());
    let queue = Arc::new(MemoryQueue::default());
    let ingest = Ingest::new(
        Arc::new(FlakyStore {
            inner: store.clone(),
            faults: faults.clone(),
        }),
        Arc::new(FlakyQueue {
            inner: queue.clone(),
            faults: faults.clone(),
        }),
    )
    .with_stale_after(time::Duration::ZERO);
    let refused = json!({"id": "evt-refused", "type": "jobs.failed"});
    let queued = json!({"id": "evt-queued", "type": "jobs.failed"});
    faults.refuse_next_sends.store(1, Ordering::SeqCst);
    Faults::set(&faults.fail_release, true);
    let items = ingest
        .accept_batch(TENANT, &json!({"events": [refused.clone(), queued]}))
        .await
        .unwrap();
    let statuses: Vec<_> = items.iter().map(|i| i.status).collect();
    assert_eq!(statuses, [BatchStatus::Failed, BatchStatus::Accepted]);
    Faults::set(&faults.fail_release, false);
    queued_once(store.as_ref(), &queue, "evt-queued").await;
    assert_eq!(
        ingest.accept(TENANT, &refused).await.unwrap().status,
        PostStatus::Accepted,
        "the refused event's retry is queued, not taken for a duplicate"
    );
    queued_once(store.as_ref(), &queue, "evt-refused").await;
}

macro_rules! claim_scenarios {
    ($($scenario:ident),* $(,)?) => {
        mod claims_in_memory { $( #[tokio::test] async fn $scenario() {
            super::$scenario(std::sync::Arc::new(herald_shared::store::MemoryStore::new())).await
        } )* }
        mod claims_on_moto { $( #[tokio::test] async fn $scenario() {
            super::$scenario(std::sync::Arc::new(herald_tests::moto::moto().store().await)).await
        } )* }
    };
}

claim_scenarios!(
    a_second_post_while_the_first_send_stalls_then_fails_is_not_a_duplicate,
    a_post_killed_between_claim_and_confirmation_is_taken_over_by_its_retry,
    a_claim_retried_after_its_answer_was_lost_is_the_posts_own,
    a_failed_enqueue_releases_the_claim,
    a_batch_whose_release_fails_confirms_none_of_its_claims,
);

#[tokio::test]
async fn a_send_that_never_answers_is_cut_by_the_sdk_timeout_and_its_retry_accepted() {
    // A listener that never accepts: connections wait in its backlog, requests go unanswered.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", hole.local_addr().unwrap());
    let sdk = lambda_sdk_at(&endpoint);
    let hanging = herald_shared::queue::SqsQueue::new(
        aws_sdk_sqs::Client::new(&sdk),
        format!("{endpoint}/000000000000/events"),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let body = json!({"id": "evt-hole", "type": "jobs.failed"});
    let ingest = Ingest::new(store.clone(), Arc::new(hanging));
    // The guard only turns a hang into a failure; the SDK's timeout is what ends the post.
    let answer = tokio::time::timeout(Duration::from_secs(30), ingest.accept(TENANT, &body))
        .await
        .expect("the SDK's operation timeout ends the post before any function timeout");
    assert!(matches!(answer, Err(Error::Queue(_))), "{answer:?}");
    let queue = Arc::new(MemoryQueue::default());
    let up = Ingest::new(store.clone(), queue.clone());
    assert_eq!(
        up.accept(TENANT, &body).await.unwrap().status,
        PostStatus::Accepted,
        "the released claim is taken over at once"
    );
    queued_once(store.as_ref(), &queue, "evt-hole").await;
    drop(hole);
}

/// What SQS refuses in a body (U+FFFE, U+FFFF) reaches the queue escaped and the receiver
/// intact; an event that serializes past what the queue and the event log hold is a 413.
async fn what_sqs_cannot_carry_is_escaped_or_refused_before_it_is_claimed(stack: Stack) {
    let rx = Receiver::start(200).await;
    stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let text = "half\u{FFFE}way\u{FFFF}";
    stack
        .post_event(
            json!({"id": "evt-nonchar", "type": "jobs.failed", "text": text,
            "data": {"k\u{FFFF}": ["\u{FFFE}", 1]}}),
        )
        .await;
    assert!(stack.drain().await.is_empty());
    let body = rx.requests()[0].json();
    assert_eq!(body["data"]["k\u{FFFF}"][0], "\u{FFFE}");
    assert_eq!(body["text"], text);

    // 1e15 is written out as 1000000000000000.0: 5 bytes sent, 19 queued.
    let big = format!(
        r#"{{"id": "evt-big", "type": "jobs.failed", "data": {{"n": [{}]}}}}"#,
        vec!["1e15"; 50_000].join(",")
    );
    assert!(big.len() <= 256 * 1024, "within the ingest body limit");
    let post = |path: &'static str, body: String| {
        stack.call_raw(
            "POST",
            path,
            Some("application/json"),
            body.into_bytes(),
            Some(KEY),
        )
    };
    let (status, _, problem) = post("/v1/events", big.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("once serialized"));
    let (status, _, items) = post("/v1/events/batch", format!(r#"{{"events": [{big}]}}"#)).await;
    assert_eq!(status, StatusCode::OK, "{items}");
    assert_eq!(items["data"][0]["status"], "invalid", "{items}");
    assert_eq!(
        stack.store.get_event(TENANT, "evt-big").await.unwrap(),
        None,
        "nothing claimed: a retry with less data is not a duplicate"
    );
}

#[tokio::test]
async fn what_sqs_cannot_carry_in_memory() {
    what_sqs_cannot_carry_is_escaped_or_refused_before_it_is_claimed(Stack::memory().await).await
}

#[tokio::test]
async fn what_sqs_cannot_carry_on_moto() {
    what_sqs_cannot_carry_is_escaped_or_refused_before_it_is_claimed(Stack::moto().await).await
}

/// A fake AWS endpoint that answers every call with one JSON-protocol error.
async fn refusing_aws(status: u16, kind: &'static str) -> aws_config::SdkConfig {
    let app = axum::Router::new().fallback(move || async move {
        (
            StatusCode::from_u16(status).unwrap(),
            [
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amzn-query-error", "InvalidMessageContents;Sender"),
            ],
            json!({"__type": kind, "message": "AWS's own words, not for callers"}).to_string(),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    lambda_sdk_at(&endpoint)
}

/// The SDK configuration a Lambda function builds (its timeouts included), sent to `endpoint`.
fn lambda_sdk_at(endpoint: &str) -> aws_config::SdkConfig {
    use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(herald_shared::aws::http::client())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "test",
        )))
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .timeout_config(herald_shared::runtime::lambda_sdk_timeouts())
        .build()
}

#[tokio::test]
async fn permanent_aws_refusals_are_4xx_never_a_retryable_503() {
    let body = json!({"id": "evt-refused", "type": "jobs.failed"});
    let sqs = refusing_aws(400, "com.amazonaws.sqs#InvalidMessageContents").await;
    let queue = herald_shared::queue::SqsQueue::new(
        aws_sdk_sqs::Client::new(&sqs),
        "http://127.0.0.1/000000000000/events",
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let stack = Stack::new(store, Arc::new(queue), Duration::ZERO).await;
    let (status, _, problem) = stack
        .call("POST", "/v1/events", Some(body.clone()), None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(!problem.to_string().contains("AWS's own words"));
    let (_, _, items) = stack
        .call(
            "POST",
            "/v1/events/batch",
            Some(json!({"events": [{"type": "jobs.failed"}]})),
            None,
        )
        .await;
    assert_eq!(items["data"][0]["status"], "invalid", "{items}");
    assert!(!items.to_string().contains("AWS's own words"), "{items}");

    let dynamodb = refusing_aws(400, "com.amazon.coral.validate#ValidationException").await;
    let store =
        herald_shared::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&dynamodb), "herald");
    let ingest = Ingest::new(Arc::new(store), Arc::new(MemoryQueue::default()));
    let refused = ingest.accept(TENANT, &body).await;
    assert!(matches!(refused, Err(Error::Refused(_))), "{refused:?}");
    let problem = herald_shared::web::problem::Problem::from(refused.unwrap_err());
    assert_eq!(problem.status, 422);
}

/// Throttling is not a refusal: a DynamoDB that keeps answering
/// `ProvisionedThroughputExceededException` (a hot partition) is retried by the SDK within its
/// timeouts, then answered 503 with nothing queued, so the platform retries the post later.
#[tokio::test]
async fn a_throttled_store_is_a_retryable_503_with_nothing_queued() {
    let dynamodb = refusing_aws(
        400,
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    )
    .await;
    let store =
        herald_shared::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&dynamodb), "herald");
    let queue = Arc::new(MemoryQueue::default());
    let ingest = Ingest::new(Arc::new(store), queue.clone());
    let throttled = ingest
        .accept(
            TENANT,
            &json!({"id": "evt-throttled", "type": "jobs.failed"}),
        )
        .await;
    assert!(matches!(throttled, Err(Error::Store(_))), "{throttled:?}");
    let problem = herald_shared::web::problem::Problem::from(throttled.unwrap_err());
    assert_eq!(problem.status, 503);
    assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
}

/// A redelivery writes only over the delivery it read: an attempt recorded in between stays
/// (409, nothing written), and a redelivery whose message could not be queued puts the
/// delivery back as it was instead of leaving it pending with no message to move it.
async fn a_redelivery_writes_only_over_what_it_read(
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    wait: Duration,
) {
    let faults = Arc::new(Faults::default());
    let stack = Stack::with_config(
        config("0s", |_| {}),
        Arc::new(FlakyStore {
            inner: store,
            faults: faults.clone(),
        }),
        Arc::new(FlakyQueue {
            inner: queue,
            faults: faults.clone(),
        }),
        wait,
    )
    .await;
    let rx = Receiver::start(500).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    let (_, _, page) = stack
        .call(
            "GET",
            &format!("/v1/webhooks/{}/deliveries", id(&wh)),
            None,
            None,
        )
        .await;
    let dl = page["data"][0]["id"].as_str().unwrap().to_string();
    let stored = || async {
        stack
            .store
            .get_delivery(TENANT, &dl)
            .await
            .unwrap()
            .unwrap()
    };
    let path = format!("/v1/deliveries/{dl}/redeliver");
    let redeliver = || stack.call("POST", &path, None, None);
    assert_eq!(stored().await.status, DeliveryStatus::Failed);

    Faults::set(&faults.attempt_before_delivery_replace, true);
    let (status, _, body) = redeliver().await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let seen = stored().await;
    assert_eq!(
        seen.attempts.len(),
        2,
        "the attempt recorded meanwhile stays"
    );
    assert_eq!(seen.status, DeliveryStatus::Failed);

    Faults::set(&faults.fail_send, true);
    let (status, _, body) = redeliver().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let reverted = stored().await;
    assert_eq!(
        reverted.status,
        DeliveryStatus::Failed,
        "not pending with no message"
    );
    assert_eq!(reverted.series_start, seen.series_start);
    assert_eq!(reverted.attempts.len(), 2);

    Faults::set(&faults.fail_send, false);
    let (status, _, body) = redeliver().await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(stack.drain().await.is_empty());
    assert_eq!(
        rx.requests().len(),
        2,
        "the first attempt and the redelivery's"
    );
    assert_eq!(stored().await.attempts.len(), 3);

    // A write whose answer was lost, retried by the SDK, finds itself: still queued.
    Faults::set(&faults.replace_answer_lost, true);
    let (status, _, body) = redeliver().await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(stack.drain().await.is_empty());
    assert_eq!(rx.requests().len(), 3);
    assert_eq!(stored().await.attempts.len(), 4);
}

#[tokio::test]
async fn a_redelivery_writes_only_over_what_it_read_in_memory() {
    a_redelivery_writes_only_over_what_it_read(
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryQueue::new(Duration::from_secs(1), 5)),
        Duration::ZERO,
    )
    .await;
}

#[tokio::test]
async fn a_redelivery_writes_only_over_what_it_read_on_moto() {
    let m = moto();
    a_redelivery_writes_only_over_what_it_read(
        Arc::new(m.store().await),
        Arc::new(herald_tests::moto::CheckedQueue {
            inner: m.queue(5).await,
        }),
        Duration::from_secs(1),
    )
    .await;
}

/// Lambda cuts an invocation off at its deadline, taking the POSTs in flight with it. A batch
/// started too close to its deadline starts no delivery: its records come back whole as
/// `batchItemFailures`, nothing is sent and nothing is leased.
#[tokio::test]
async fn no_delivery_starts_that_could_not_finish_before_the_deadline() {
    let receiver = Receiver::start(200).await;
    let stack = Stack::memory().await;
    stack
        .create_webhook(json!({"url": receiver.url, "events": ["jobs.failed"]}))
        .await;
    for n in 0..2 {
        stack
            .post_event(json!({"id": format!("evt-late-{n}"), "type": "jobs.failed"}))
            .await;
    }
    // Less than the delivery timeout alone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let failed = stack.drain_by(Some(deadline)).await;
    assert_eq!(failed.len(), 2, "both records come back: {failed:?}");
    assert!(receiver.requests().is_empty(), "nothing was sent");
    let (status, _, page) = stack.call("GET", "/v1/webhooks", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let webhook = page["data"][0]["id"].as_str().unwrap().to_string();
    let (_, _, log) = stack
        .call(
            "GET",
            &format!("/v1/webhooks/{webhook}/deliveries"),
            None,
            None,
        )
        .await;
    assert_eq!(log["data"], json!([]), "nothing was leased or recorded");
}

/// Handed back on its last receive, a record with jobs not started for lack of time would go to
/// the dead-letter queue without an attempt: it is sent again as a new message instead (its
/// receive count starts over) and reported done. Before its last receive it is handed back as
/// usual; and one due longer ago than the sweep's overdue mark is handed back even on its last,
/// so a record that never gets started still ends in the dead-letter queue.
#[tokio::test]
async fn a_record_not_started_on_its_last_receive_is_sent_again_not_dead_lettered() {
    let receiver = Receiver::start(200).await;
    let stack = Stack::memory().await;
    stack
        .create_webhook(json!({"url": receiver.url, "events": ["jobs.failed"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-last", "type": "jobs.failed"}))
        .await;
    let got = receive_one(&stack).await;
    let mut record = QueueRecord::from(&got[0]);
    let max = herald_shared::queue::MAX_RECEIVES;
    let soon = || tokio::time::Instant::now() + Duration::from_secs(1);
    record.receive_count = max - 1;
    let handled = stack
        .dispatcher
        .handle(&[record.clone()], Some(soon()))
        .await;
    assert_eq!(handled.failed, [record.message_id.clone()], "handed back");
    record.receive_count = max;
    let handled = stack
        .dispatcher
        .handle(&[record.clone()], Some(soon()))
        .await;
    assert!(
        handled.failed.is_empty(),
        "reported done: {:?}",
        handled.failed
    );
    assert_eq!(handled.metrics.not_started, 1);
    stack.queue.delete(&got[0].receipt).await.unwrap();
    let again = receive_one(&stack).await;
    assert_eq!(again[0].body, got[0].body, "the same message, sent again");
    assert_eq!(again[0].receive_count, 1, "its receive count starts over");
    assert!(
        receiver.requests().is_empty(),
        "nothing was sent to the receiver"
    );

    let Message::FanOut { mut envelope, .. } = Message::decode(&got[0].body).unwrap() else {
        panic!("a fan-out");
    };
    let two_hours_ago = envelope.envelope_id.timestamp_ms() - 2 * 3_600_000;
    envelope.envelope_id = ulid::Ulid::from_parts(two_hours_ago, 7);
    let stale = QueueRecord {
        message_id: "m-stale".into(),
        body: Message::fan_out(envelope).encode().into_string(),
        receive_count: max,
    };
    let handled = stack.dispatcher.handle(&[stale], Some(soon())).await;
    assert_eq!(
        handled.failed,
        ["m-stale"],
        "long overdue: handed back, to the DLQ"
    );
    stack.queue.delete(&again[0].receipt).await.unwrap();
    assert!(
        stack
            .queue
            .receive(10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "nothing sent for the overdue record"
    );
}

/// A job waits for its URL's share before it takes one of the container's slots, so deliveries
/// queued on a slow receiver do not hold the slots a fast one needs.
#[tokio::test]
async fn deliveries_queued_on_a_slow_receiver_leave_the_slots_to_others() {
    let slow = Receiver::start(200).await;
    slow.set_delay(Duration::from_secs(8));
    let fast = Receiver::start(200).await;
    let stack = Stack::memory_with(|c| {
        c.dispatch_concurrency = 2;
        c.endpoint_concurrency = 1;
    })
    .await;
    // Created first, so their jobs come first in the batch.
    for _ in 0..3 {
        stack
            .create_webhook(json!({"url": slow.url, "events": ["jobs.failed"]}))
            .await;
    }
    stack
        .create_webhook(json!({"url": fast.url, "events": ["jobs.failed"]}))
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    let dispatcher = stack.dispatcher.clone();
    let records: Vec<QueueRecord> = stack
        .queue
        .receive(10, Duration::ZERO)
        .await
        .unwrap()
        .iter()
        .map(QueueRecord::from)
        .collect();
    let batch = tokio::spawn(async move { dispatcher.handle(&records, None).await });
    fast.wait_for(1).await;
    assert!(
        slow.requests().is_empty(),
        "the fast receiver was posted to while the slow one still held its first request"
    );
    batch.abort();
}

/// A redelivery sends the content the delivery was made from, or nothing: after the dedupe
/// window a later post of the same event id replaces the kept event, and the redelivery of
/// the earlier delivery is refused rather than sent with the later content.
#[tokio::test]
async fn a_redelivery_never_sends_a_later_posts_content() {
    let stack = memory(config("0s", |_| {})).await;
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-again", "type": "builds.failed", "data": {"n": 1}}))
        .await;
    let delivered = settle(&stack, id(&wh), 1).await.remove(0);
    let later = OffsetDateTime::now_utc() + time::Duration::hours(25);
    let other = json!({"id": "evt-again", "type": "builds.failed", "data": {"n": 2}});
    let envelope = herald_shared::event::EventEnvelope {
        tenant_id: TENANT.into(),
        envelope_id: ulid::Ulid::new(),
        event: herald_shared::event::Event::parse(&other, later).unwrap(),
    };
    stack
        .store
        .claim_event(
            TENANT,
            "evt-again",
            Message::fan_out(envelope).encode().as_str(),
            "post-later",
            later + time::Duration::hours(24),
            later,
        )
        .await
        .unwrap();
    let path = format!("/v1/deliveries/{}/redeliver", delivered.id);
    let (status, _, problem) = stack.call("POST", &path, None, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("no longer kept"), "{detail}");
    stack.drain().await;
    assert_eq!(
        rx.requests().len(),
        1,
        "nothing sent with the later content"
    );
}

/// Leases the delivery `webhook` gets from `envelope`, as another run making its attempt would.
async fn held_by_another_run(
    stack: &Stack,
    envelope: &herald_shared::event::EventEnvelope,
    webhook: &Value,
    for_secs: i64,
) -> Delivery {
    let now = OffsetDateTime::now_utc();
    let mut held = Delivery::new(
        delivery_id(envelope.envelope_id, id(webhook)),
        TENANT,
        envelope.event.id.clone(),
        "jobs.failed",
        id(webhook),
        now,
    );
    held.leased_until = Some(now + time::Duration::seconds(for_secs));
    assert!(stack.store.lease_delivery(&held, now).await.unwrap());
    held
}

/// A fan-out whose deliveries another run holds puts back one attempt message per held
/// delivery, never the fan-out itself: the webhooks it delivered are not repeated, and copies
/// do not multiply while the other run is slow.
#[tokio::test]
async fn a_deferred_fan_out_puts_back_one_attempt_per_held_delivery() {
    let stack = memory(config("0s", |_| {})).await;
    let receivers = [
        Receiver::start(200).await,
        Receiver::start(200).await,
        Receiver::start(200).await,
    ];
    let mut webhooks = Vec::new();
    for rx in &receivers {
        let wh = stack
            .create_webhook(json!({"url": rx.url, "events": ["*"]}))
            .await;
        webhooks.push(wh);
    }
    stack
        .post_event(json!({"id": "evt-held", "type": "jobs.failed"}))
        .await;
    let got = receive_one(&stack).await;
    let fan_out = Message::decode(&got[0].body).unwrap();
    let mut held = Vec::new();
    for wh in &webhooks[..2] {
        held.push(
            held_by_another_run(&stack, fan_out.envelope(), wh, 2)
                .await
                .id,
        );
    }
    handle_once(&stack, &got).await;
    assert_eq!(
        receivers[2].requests().len(),
        1,
        "the free delivery is made"
    );
    assert!(receivers[0].requests().is_empty() && receivers[1].requests().is_empty());

    tokio::time::sleep(Duration::from_millis(2200)).await;
    let back = stack
        .queue
        .receive(10, Duration::from_secs(2))
        .await
        .unwrap();
    let mut named: Vec<_> = back
        .iter()
        .map(|m| match Message::decode(&m.body).unwrap() {
            Message::Attempt { attempt, .. } => (attempt.delivery_id, attempt.deferrals),
            Message::FanOut { .. } => panic!("the whole fan-out was put back"),
        })
        .collect();
    named.sort();
    let mut want: Vec<_> = held.iter().map(|id| (id.to_string(), 1)).collect();
    want.sort();
    assert_eq!(named, want, "one attempt per held delivery");

    // Once the leases lapse, the put-back attempts make the held deliveries, once each.
    for wh in &webhooks {
        settle(&stack, id(wh), 1).await;
    }
    for rx in &receivers {
        assert_eq!(rx.requests().len(), 1);
    }
}

/// An attempt put back for another run's lease more than `MAX_DEFERRALS` times fails its
/// record, which then climbs toward the dead-letter queue, instead of circling for ever.
#[tokio::test]
async fn an_attempt_put_back_too_often_fails_its_record_instead_of_circling() {
    use herald_shared::queue::NextAttempt;
    use herald_shared::service::dispatch::MAX_DEFERRALS;
    let stack = memory(config("0s", |_| {})).await;
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-circling", "type": "jobs.failed"}))
        .await;
    let got = receive_one(&stack).await;
    stack.queue.delete(&got[0].receipt).await.unwrap();
    let envelope = Message::decode(&got[0].body).unwrap().envelope().clone();
    let held = held_by_another_run(&stack, &envelope, &wh, 30).await;
    let put_back = |deferrals| QueueRecord {
        message_id: format!("m-{deferrals}"),
        body: Message::Attempt {
            envelope: envelope.clone(),
            attempt: NextAttempt {
                webhook_id: id(&wh).to_string(),
                delivery_id: held.id.to_string(),
                expect_attempts: 0,
                deferrals,
            },
            not_before: None,
        }
        .encode()
        .into_string(),
        receive_count: 1,
    };
    let last = stack
        .dispatcher
        .handle(&[put_back(MAX_DEFERRALS - 1)], None)
        .await;
    assert!(last.failed.is_empty(), "the last deferral allowed");
    let spent = stack
        .dispatcher
        .handle(&[put_back(MAX_DEFERRALS)], None)
        .await;
    assert_eq!(
        spent.failed,
        ["m-".to_string() + &MAX_DEFERRALS.to_string()]
    );
    assert!(rx.requests().is_empty());
}

/// An event posted without an id gets one Herald made, which no other post can carry yet: it
/// is kept in one write with no dedupe claim to take and confirm, and a post that later names
/// that id (learned from the answer) within the window is a duplicate. In a batch only the
/// events that name their ids are claimed.
#[tokio::test]
async fn only_events_that_name_their_id_are_claimed() {
    let (stack, faults) = flaky_memory("0s").await;
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let made = stack.post_event(json!({"type": "jobs.failed"})).await;
    assert_eq!(made["status"], "accepted");
    assert_eq!(
        faults.claims.load(Ordering::SeqCst),
        0,
        "no claim for a made id"
    );
    let id_made = made["id"].as_str().unwrap();
    let (status, _, again) = stack
        .call(
            "POST",
            "/v1/events",
            Some(json!({"id": id_made, "type": "jobs.failed"})),
            None,
        )
        .await;
    assert_eq!(
        (status, &again["status"]),
        (StatusCode::OK, &json!("duplicate"))
    );
    let (status, _, batch) = stack
        .call(
            "POST",
            "/v1/events/batch",
            Some(json!({"events": [
                {"type": "jobs.failed"},
                {"id": "evt-named", "type": "jobs.failed"},
                {"type": "jobs.failed"}
            ]})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<_> = batch["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["accepted", "accepted", "accepted"]);
    assert_eq!(
        faults.claims.load(Ordering::SeqCst),
        2,
        "the named repost and the batch's one named event"
    );
    let delivered = settle(&stack, id(&wh), 4).await;
    assert!(delivered
        .iter()
        .all(|d| d.status == DeliveryStatus::Succeeded));
    // Each is kept for redelivery.
    for d in &delivered {
        assert!(stack
            .store
            .get_event(TENANT, &d.event_id)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(rx.requests().len(), 4);
}

/// An event without an id that could not be kept, or not queued, is a retryable 503 and nothing
/// is delivered; the platform's retry is a new event.
#[tokio::test]
async fn an_event_without_an_id_not_kept_or_not_queued_is_a_503() {
    let faults = Arc::new(Faults::default());
    let store = Arc::new(FlakyStore {
        inner: Arc::new(MemoryStore::new()),
        faults: faults.clone(),
    });
    let queue: Arc<dyn Queue> = Arc::new(FlakyQueue {
        inner: Arc::new(MemoryQueue::new(Duration::from_secs(1), 5)),
        faults: faults.clone(),
    });
    let stack = Stack::with_config(config("0s", |_| {}), store, queue, Duration::ZERO).await;
    let rx = Receiver::start(200).await;
    stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let post = || {
        stack.call(
            "POST",
            "/v1/events",
            Some(json!({"type": "jobs.failed"})),
            None,
        )
    };

    Faults::set(&faults.fail_send, true);
    let (status, _, problem) = post().await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not queued: {problem}"
    );
    Faults::set(&faults.fail_send, false);

    // Every store call the post makes refused as throttled: keeping the event is one.
    faults.chaos(7, 100);
    let (status, _, problem) = post().await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not kept: {problem}"
    );
    assert_eq!(
        faults.struck.lock().unwrap().get("keep_event Throttled"),
        Some(&1)
    );
    *faults.chaos.lock().unwrap() = None;

    assert!(stack.drain().await.is_empty());
    assert!(rx.requests().is_empty(), "nothing delivered");
    let (status, _, _) = post().await;
    assert_eq!(status, StatusCode::ACCEPTED, "the retry is a new event");
    stack.drain().await;
    assert_eq!(rx.requests().len(), 1);
}

/// A record refused after the receiver's 2xx (a throttling burst past the SDK's own retries)
/// is tried again within the invocation, so the POST is not redone.
#[tokio::test]
async fn a_record_refused_after_a_2xx_is_tried_again_not_resent() {
    let (stack, faults) = flaky_memory("0s").await;
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-burst", "type": "jobs.failed"}))
        .await;
    faults.refuse_next_puts.store(2, Ordering::SeqCst);
    assert!(stack.drain().await.is_empty(), "nothing handed back");
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!((d.status, d.attempts.len()), (DeliveryStatus::Succeeded, 1));
    assert_eq!(faults.refuse_next_puts.load(Ordering::SeqCst), 0);
    assert_eq!(rx.requests().len(), 1, "posted once");
}

/// A retry that could not be queued at first is queued on a later try, so the failed attempt
/// is not redone.
#[tokio::test]
async fn a_retry_refused_by_the_queue_is_tried_again_not_redone() {
    let (stack, faults) = flaky_queue_memory("0s,1s").await;
    let rx = Receiver::start(200).await;
    rx.script([Reply::Status(500)]);
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-q2", "type": "jobs.failed"}))
        .await;
    faults.refuse_next_sends.store(2, Ordering::SeqCst);
    let d = &settle(&stack, id(&wh), 1).await[0];
    assert_eq!((d.status, d.attempts.len()), (DeliveryStatus::Succeeded, 2));
    assert_eq!(
        rx.requests().len(),
        2,
        "the failed attempt was not made twice"
    );
}

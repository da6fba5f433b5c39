//! The sweep (`service::sweep`): one message per attempt however long the schedule's waits, and
//! no delivery left `retrying` after its message is lost. The sweep runs at chosen times (the
//! template's schedule runs it every 5 minutes), so waits of hours are swept at once.

use herald_shared::config::parse_schedule;
use herald_shared::delivery::{Delivery, DeliveryStatus, OVERDUE_AFTER};
use herald_shared::event::{Event, EventEnvelope};
use herald_shared::queue::{MemoryQueue, Message, Queue};
use herald_shared::service::sweep::{Swept, MAX_SWEEPS, SWEEP_EVERY, SWEEP_LEAD};
use herald_shared::store::{MemoryStore, Store, SweepIndex};
use herald_tests::faults::{Faults, FlakyQueue};
use herald_tests::moto::{moto, CheckedQueue};
use herald_tests::receiver::{Receiver, Reply};
use herald_tests::stack::{local_config, Stack, TENANT};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

enum Backend {
    Memory,
    Moto,
}

/// A stack on `backend` with `schedule`, counting the messages its queue takes.
async fn stack(backend: Backend, schedule: &str) -> (Stack, Arc<Faults>) {
    let mut config = local_config();
    config.retry_schedule = parse_schedule(schedule).unwrap();
    config.delivery_timeout = Duration::from_millis(500);
    let faults = Arc::new(Faults::default());
    type Ports = (
        Arc<dyn Store>,
        Arc<dyn SweepIndex>,
        Arc<dyn Queue>,
        Duration,
    );
    let (store, index, inner, wait): Ports = match backend {
        Backend::Memory => {
            let store = Arc::new(MemoryStore::new());
            (
                store.clone(),
                store,
                Arc::new(MemoryQueue::new(Duration::from_secs(1), 5)),
                Duration::ZERO,
            )
        }
        Backend::Moto => {
            let m = moto();
            let store = Arc::new(m.store().await);
            (
                store.clone(),
                store,
                Arc::new(CheckedQueue {
                    inner: m.queue_with(5, Duration::from_secs(2)).await,
                }),
                Duration::from_secs(1),
            )
        }
    };
    let queue = Arc::new(FlakyQueue {
        inner,
        faults: faults.clone(),
    });
    let stack = Stack::with_config(config, store, queue, wait).await;
    (stack.with_sweep_index(index), faults)
}

async fn the_delivery(stack: &Stack, webhook: &Value) -> Delivery {
    let id = webhook["id"].as_str().unwrap();
    let page = stack
        .store
        .list_deliveries(TENANT, id, 10, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "one delivery");
    page.items.into_iter().next().unwrap()
}

/// Drains until the delivery has `attempts` attempts (bounded: the queued waits are a second).
async fn until_attempts(stack: &Stack, webhook: &Value, attempts: usize) -> Delivery {
    for _ in 0..100 {
        stack.drain().await;
        let delivery = the_delivery(stack, webhook).await;
        if delivery.attempts.len() >= attempts {
            assert_eq!(delivery.attempts.len(), attempts);
            return delivery;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("attempt {attempts} was not made");
}

/// Takes the one message waiting on the queue (after its delay) and deletes it unhandled: a
/// message lost to a purge, or a dead letter that expired.
async fn lose_the_message(stack: &Stack) {
    let until = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < until {
        let got = stack
            .queue
            .receive(10, Duration::from_millis(200))
            .await
            .unwrap();
        if !got.is_empty() {
            assert_eq!(got.len(), 1);
            stack.queue.delete(&got[0].receipt).await.unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no message to lose");
}

async fn sweep(stack: &Stack, at: OffsetDateTime) -> Swept {
    stack.sweeper().sweep(at).await.unwrap()
}

async fn a_failing_delivery_takes_one_message_per_attempt(backend: Backend) {
    // One wait a message carries (1 s), three longer than SQS's 900 s delay.
    let (stack, faults) = stack(backend, "0s,1s,20m,2h,10h").await;
    let rx = Receiver::start(503).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "builds.failed"})).await;
    let mut delivery = until_attempts(&stack, &wh, 2).await;
    for attempts in 3..=5 {
        let due = delivery.next_attempt_at.expect("an attempt is due");
        assert_eq!(delivery.sweep_at, Some(due), "the sweep carries the wait");
        let before = faults.messages_sent.load(Ordering::SeqCst);
        // Not yet within the sweep's lead: nothing is queued early.
        let early = sweep(&stack, due - SWEEP_LEAD - time::Duration::minutes(1)).await;
        assert_eq!(early, Swept::default());
        let swept = sweep(&stack, due).await;
        assert_eq!((swept.queued, swept.overdue), (1, 0));
        assert_eq!(faults.messages_sent.load(Ordering::SeqCst), before + 1);
        delivery = until_attempts(&stack, &wh, attempts).await;
    }
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!((delivery.sweep_at, delivery.next_attempt_at), (None, None));
    assert_eq!(rx.requests().len(), 5);
    assert_eq!(
        faults.messages_sent.load(Ordering::SeqCst),
        5,
        "the event, the short wait and one per swept wait: a message per attempt"
    );
    let later = OffsetDateTime::now_utc() + time::Duration::days(2);
    assert_eq!(sweep(&stack, later).await, Swept::default());
}

async fn an_attempt_whose_message_was_lost_is_queued_again_once(backend: Backend) {
    // A retry wait longer than the drain's own receive wait, so the retry is still on the queue
    // to be lost when the first attempt is recorded.
    let (stack, _) = stack(backend, "0s,5s").await;
    let rx = Receiver::start(200).await;
    rx.script([Reply::Status(500)]);
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "builds.failed"})).await;
    let retrying = until_attempts(&stack, &wh, 1).await;
    assert_eq!(retrying.status, DeliveryStatus::Retrying);
    lose_the_message(&stack).await;
    let due = retrying.next_attempt_at.unwrap();
    assert_eq!(retrying.sweep_at, Some(due + OVERDUE_AFTER));
    // A queued wait is left to its message until it is long overdue.
    assert_eq!(sweep(&stack, due).await, Swept::default());
    let swept = sweep(&stack, due + OVERDUE_AFTER).await;
    assert_eq!((swept.queued, swept.overdue, swept.given_up), (1, 1, 0));
    let delivered = until_attempts(&stack, &wh, 2).await;
    assert_eq!(delivered.status, DeliveryStatus::Succeeded);
    assert_eq!(delivered.sweep_at, None);
    let later = due + OVERDUE_AFTER * 3;
    assert_eq!(sweep(&stack, later).await, Swept::default());
    stack.drain().await;
    assert_eq!(rx.requests().len(), 2, "sent once more, and only once");
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod memory { $( #[tokio::test] async fn $scenario() {
            super::$scenario(super::Backend::Memory).await
        } )* }
        mod moto { $( #[tokio::test] async fn $scenario() {
            super::$scenario(super::Backend::Moto).await
        } )* }
    };
}

on_both_backends!(
    a_failing_delivery_takes_one_message_per_attempt,
    an_attempt_whose_message_was_lost_is_queued_again_once,
);

#[tokio::test]
async fn a_delivery_whose_queued_attempts_never_run_is_given_up() {
    let (stack, _) = stack(Backend::Memory, "0s,1s").await;
    let rx = Receiver::start(500).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack.post_event(json!({"type": "builds.failed"})).await;
    let retrying = until_attempts(&stack, &wh, 1).await;
    lose_the_message(&stack).await;
    let mut at = retrying.sweep_at.unwrap();
    for sweeps in 1..=MAX_SWEEPS {
        let swept = sweep(&stack, at).await;
        assert_eq!((swept.queued, swept.given_up), (1, 0), "sweep {sweeps}");
        lose_the_message(&stack).await;
        at = the_delivery(&stack, &wh).await.sweep_at.unwrap();
    }
    let swept = sweep(&stack, at).await;
    assert_eq!((swept.queued, swept.given_up), (0, 1));
    let failed = the_delivery(&stack, &wh).await;
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.attempts.len(), 2);
    let why = failed.attempts[1].error.as_deref().unwrap();
    assert!(
        why.starts_with("not attempted: no attempt followed"),
        "{why}"
    );
    assert_eq!(failed.sweep_at, None);
    assert_eq!(rx.requests().len(), 1, "nothing sent by giving up");
}

#[tokio::test]
async fn a_delivery_whose_event_was_replaced_is_given_up_not_sent_with_other_content() {
    let (stack, _) = stack(Backend::Memory, "0s,1s").await;
    let rx = Receiver::start(500).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    stack
        .post_event(json!({"id": "evt-replaced", "type": "builds.failed"}))
        .await;
    let retrying = until_attempts(&stack, &wh, 1).await;
    lose_the_message(&stack).await;
    // The same event id posted again after its dedupe window: the event log now holds the
    // later post's content.
    let later = OffsetDateTime::now_utc() + time::Duration::hours(25);
    let other = json!({"id": "evt-replaced", "type": "builds.failed", "data": {"later": true}});
    let envelope = EventEnvelope {
        tenant_id: TENANT.into(),
        envelope_id: ulid::Ulid::new(),
        event: Event::parse(&other, later).unwrap(),
    };
    let text = Message::fan_out(envelope).encode();
    stack
        .store
        .claim_event(
            TENANT,
            "evt-replaced",
            text.as_str(),
            "post-later",
            later + time::Duration::hours(24),
            later,
        )
        .await
        .unwrap();
    let swept = sweep(&stack, retrying.sweep_at.unwrap()).await;
    assert_eq!((swept.queued, swept.given_up), (0, 1));
    let failed = the_delivery(&stack, &wh).await;
    assert_eq!(failed.status, DeliveryStatus::Failed);
    let why = failed.attempts.last().unwrap().error.as_deref().unwrap();
    assert_eq!(why, "not attempted: the event is no longer kept");
    stack.drain().await;
    assert_eq!(rx.requests().len(), 1, "the later content is never sent");
}

#[test]
fn the_sweep_runs_often_enough_to_queue_each_wait_before_it_is_due() {
    let lead: Duration = SWEEP_LEAD.try_into().unwrap();
    assert!(SWEEP_EVERY * 2 <= lead, "a sweep may be late by one period");
    assert!(lead < herald_shared::queue::MAX_DELAY);
}

/// A recovery whose window is more than a page: the API's answer runs its first page (here one
/// page only) and the sweep runs the rest, from the delivery the job had reached, so every
/// delivery of the window is queued once and the job ends `done`.
#[tokio::test]
async fn the_sweep_moves_a_recovery_on_page_by_page() {
    use herald_shared::recovery::{Recovery, RecoveryState};
    use herald_shared::service::recovery::{advance, PAGE};
    let (stack, _) = stack(Backend::Memory, "0s").await;
    let rx = Receiver::start(500).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let since = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let total = PAGE + 20;
    for first in (0..total).step_by(60) {
        let events: Vec<Value> = (first..(first + 60).min(total))
            .map(|n| json!({"id": format!("evt-page-{n}"), "type": "jobs.failed"}))
            .collect();
        let (status, _, body) = stack
            .call(
                "POST",
                "/v1/events/batch",
                Some(json!({ "events": events })),
                None,
            )
            .await;
        assert_eq!(status, http::StatusCode::OK, "{body}");
    }
    while !stack.drain().await.is_empty() {}
    stack.drain().await;
    let webhook = wh["id"].as_str().unwrap();
    let now = OffsetDateTime::now_utc();
    let mut job = Recovery::new(TENANT, webhook, since, now, None, now);
    advance(
        stack.store.as_ref(),
        stack.queue.as_ref(),
        &mut job,
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(
        job.state,
        RecoveryState::Running,
        "one page, then the sweep's"
    );
    assert_eq!((job.scanned, job.queued), (PAGE as u64, PAGE as u64));
    let swept = stack
        .sweeper()
        .sweep(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(swept.recovered, 20, "the rest of the window");
    let done = stack
        .store
        .get_recovery(TENANT, &job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, RecoveryState::Done);
    assert_eq!((done.scanned, done.queued), (total as u64, total as u64));
    let again = stack
        .sweeper()
        .sweep(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(again.recovered, 0, "a done job is not moved again");
}

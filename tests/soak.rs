//! The soak test: many events through the local stack on DynamoDB/SQS (moto), to receivers
//! that randomly fail, hang past the timeout or close the connection. At the end every
//! (event, webhook) pair must be succeeded or failed after the whole schedule, nothing lost;
//! every POST a receiver got must be in the delivery log with the status it answered, so no
//! endpoint gets a pair again after Herald saw its 2xx, and no pair is processed twice.
//!
//! AWS's own failures are on throughout (`HERALD_SOAK_CHAOS` percent of store and queue calls,
//! 2 by default): calls throttled before they are made, and calls made whose answer is lost.
//! A throttled ingest entry is posted again, as a platform would. A receiver may see a pair
//! again only in the windows Herald names (an attempt's record refused after its POST, a retry
//! that could not be queued after it); the run counts those repeats by window, and any other
//! repeat fails it.
//!
//! `make test` runs 300 events; `make soak` runs 10,000 (`HERALD_SOAK_EVENTS`), with the seed
//! printed (`HERALD_SOAK_SEED` replays one).

use herald_shared::catalog::EVENT_TYPES;
use herald_shared::config::parse_schedule;
use herald_shared::delivery::{Delivery, DeliveryStatus};
use herald_shared::queue::Queue;
use herald_shared::store::Store;
use herald_tests::faults::{Faults, FlakyQueue, FlakyStore};
use herald_tests::moto::{moto, second_moto, SerialQueue};
use herald_tests::receiver::{Receiver, Reply};
use herald_tests::stack::{local_config, Stack, TENANT};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCHEDULE: &str = "0s,1s,1s,2s";
const WEBHOOKS: usize = 3;
const POLLERS: usize = 4;
/// Events posted per ingest batch, and how far ingestion may run ahead of final deliveries.
const CHUNK: usize = 50;
const WINDOW: usize = 150;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 70 % 2xx, 10 % 500, 8 % 503 with Retry-After, 6 % hang past the timeout, 6 % close.
fn faulty(seed: u64) -> impl FnMut() -> Reply + Send {
    let mut rng = StdRng::seed_from_u64(seed);
    move || match rng.random_range(0..100) {
        0..70 => Reply::Status(if rng.random_bool(0.5) { 200 } else { 204 }),
        70..80 => Reply::Status(500),
        80..88 => Reply::RetryAfter(503, 1),
        88..94 => Reply::Hang(Duration::from_millis(900)),
        _ => Reply::Close,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak() {
    let events: usize = env_or("HERALD_SOAK_EVENTS", 300);
    let seed: u64 = env_or("HERALD_SOAK_SEED", rand::random());
    let chaos: u32 = env_or("HERALD_SOAK_CHAOS", 2);
    let started = Instant::now();
    let m = moto();
    let faults = Arc::new(Faults::default());
    let store: Arc<dyn Store> = Arc::new(FlakyStore {
        inner: Arc::new(m.store().await),
        faults: faults.clone(),
    });
    // Visibility above the longest batch, as the template sets it (360 s for a 60 s function).
    // A message that reappears while its batch still runs, or one moto hands to two pollers,
    // finds its delivery leased and is deferred.
    let queue: Arc<dyn Queue> = Arc::new(FlakyQueue {
        inner: Arc::new(SerialQueue::new(
            second_moto().queue_with(5, Duration::from_secs(30)).await,
        )),
        faults: faults.clone(),
    });
    let mut config = local_config();
    config.retry_schedule = parse_schedule(SCHEDULE).unwrap();
    config.delivery_timeout = Duration::from_millis(500);
    config.rate_limit = 0;
    let stack =
        Stack::with_config(config, store.clone(), queue.clone(), Duration::from_secs(1)).await;

    let mut receivers = Vec::new();
    for (i, kind) in ["standard", "slack", "standard"]
        .into_iter()
        .enumerate()
        .take(WEBHOOKS)
    {
        let rx = Receiver::start(200).await;
        rx.choose(faulty(seed.wrapping_add(i as u64)));
        let wh = stack
            .create_webhook(json!({"url": rx.url, "kind": kind, "events": ["*"]}))
            .await;
        receivers.push((wh["id"].as_str().unwrap().to_string(), rx));
    }

    faults.chaos(seed, chaos);
    let pollers: Vec<_> = (0..POLLERS)
        .map(|_| {
            tokio::spawn(herald_shared::runtime::poll(
                queue.clone(),
                stack.dispatcher.clone(),
                std::future::pending(),
            ))
        })
        .collect();

    let mut rng = StdRng::seed_from_u64(seed);
    let pairs = events * WEBHOOKS;
    // Paced like a platform's steady stream, at most WINDOW events ahead of dispatch. moto's
    // SQS scans the whole queue (and recomputes its attributes) for every message sent or
    // received, so a deep backlog makes the emulator, not Herald, quadratic.
    let deadline = Instant::now() + Duration::from_secs(240 + events as u64 / 2);
    let progress = {
        let faults = faults.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let finals = faults.finals.lock().unwrap().len();
                let secs = started.elapsed().as_secs_f64();
                eprintln!("soak: {finals} of {pairs} deliveries final after {secs:.0} s");
            }
        })
    };
    for (n, chunk) in (0..events).collect::<Vec<_>>().chunks(CHUNK).enumerate() {
        let ahead = (n * CHUNK).saturating_sub(WINDOW) * WEBHOOKS;
        while faults.finals.lock().unwrap().len() < ahead {
            assert!(Instant::now() < deadline, "dispatch stalled (seed {seed})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let batch: Vec<_> = chunk
            .iter()
            .map(|i| {
                let t = &EVENT_TYPES[rng.random_range(0..EVENT_TYPES.len())];
                let object = json!({"kind": "deployment", "name": format!("model-{}", i % 7), "version": "v1"});
                json!({"id": format!("soak-{i}"), "type": t.name, "project": "soak", "object": object, "data": {"n": i}})
            })
            .collect();
        post_until_taken(&stack, batch, seed).await;
    }

    // Generous: the bound is there to end a stuck run, not to time it (moto is slow). Once
    // everything is posted, a minute without progress means something was lost: stop there.
    let (mut seen, mut moved) = (0, Instant::now());
    loop {
        let finals = faults.finals.lock().unwrap().len();
        if finals >= pairs {
            break;
        }
        if finals > seen {
            (seen, moved) = (finals, Instant::now());
        }
        assert!(
            // A record refused after its POST waits out its lease (the delivery timeout and
            // 60 s) before the attempt is redone.
            Instant::now() < deadline && moved.elapsed() < Duration::from_secs(150),
            "only {finals} of {pairs} deliveries final, no progress for {:.0} s (seed {seed})",
            moved.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Give stray in-flight work a moment, then stop the dispatchers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for p in pollers.iter().chain([&progress]) {
        p.abort();
    }

    let attempts_allowed = parse_schedule(SCHEDULE).unwrap().len();
    let (mut succeeded, mut failed, mut lost) = (0, 0, 0);
    // Sends the log does not account for (a pair processed twice, or anything after a recorded
    // 2xx); recorded codes that differ from what the receiver answered; and 2xx answers the
    // dispatcher never read (its timeout fired first): the at-least-once case no sender can
    // avoid, which must be logged as a failed attempt and retried, never as a success.
    let (mut unrecorded, mut mismatched, mut unseen_2xx) = (0, 0, 0);
    // Sends repeated in a window Herald names, by window.
    let windows = faults.repeat_windows.lock().unwrap().clone();
    let mut repeated: HashMap<&str, usize> = HashMap::new();
    let mut faults_seen: HashMap<&str, usize> = HashMap::new();
    let mut requests = 0;
    let finals = faults.finals.lock().unwrap().clone();
    for (webhook_id, rx) in &receivers {
        // The store holds what the dispatcher recorded: checked on the first page of each log.
        let page = store
            .list_deliveries(TENANT, webhook_id, 100, None)
            .await
            .unwrap();
        for stored in &page.items {
            assert_eq!(
                Some(stored),
                finals.get(&*stored.id),
                "the store agrees with the record"
            );
        }
        let by_event: HashMap<&str, &Delivery> = finals
            .values()
            .filter(|d| *d.webhook_id == **webhook_id)
            .map(|d| (&*d.event_id, d))
            .collect();
        let seen = rx.requests();
        requests += seen.len();
        // What the receiver answered to each pair, in arrival order.
        let mut answers: HashMap<&str, Vec<Option<u16>>> = HashMap::new();
        for r in &seen {
            let (kind, code) = match r.reply {
                Reply::Status(c) if c < 300 => ("2xx", Some(c)),
                Reply::Status(c) => ("500", Some(c)),
                Reply::RetryAfter(c, _) => ("503+Retry-After", Some(c)),
                // The dispatcher gives up on a hang at its timeout and reads no status.
                Reply::Hang(_) => ("hang", None),
                Reply::Close => ("close", None),
            };
            *faults_seen.entry(kind).or_default() += 1;
            answers
                .entry(r.header("webhook-id"))
                .or_default()
                .push(code);
        }
        for i in 0..events {
            let event_id = format!("soak-{i}");
            let got = answers.get(event_id.as_str()).map_or(&[][..], |v| v);
            let Some(d) = by_event.get(event_id.as_str()) else {
                lost += 1;
                continue;
            };
            match d.status {
                DeliveryStatus::Succeeded => succeeded += 1,
                DeliveryStatus::Failed if d.attempts.len() == attempts_allowed => failed += 1,
                _ => {
                    lost += 1;
                    continue;
                }
            }
            let extra = got.len().saturating_sub(d.attempts.len());
            let named = windows.get(&*d.id).map_or(&[][..], |w| &w[..]);
            for window in named.iter().take(extra) {
                *repeated.entry(window).or_default() += 1;
            }
            unrecorded += extra.saturating_sub(named.len());
            if extra > 0 {
                // A repeated send shifts the receiver's answers against the log's attempts.
                continue;
            }
            for (answer, attempt) in got.iter().zip(&d.attempts) {
                match (answer, attempt.status_code) {
                    (Some(a), Some(r)) if *a != r => mismatched += 1,
                    (Some(a), None) if (200..300).contains(a) => unseen_2xx += 1,
                    _ => {}
                }
            }
        }
    }
    let mut fault_list: Vec<_> = faults_seen.into_iter().collect();
    fault_list.sort();
    let mut repeated: Vec<_> = repeated.into_iter().collect();
    repeated.sort();
    let struck = faults.struck.lock().unwrap().clone();
    println!(
        "soak: AWS failures injected ({chaos} % each of throttled and answer lost): {struck:?}"
    );
    println!("soak: sends repeated, by the window Herald names: {repeated:?}");
    println!(
        "soak: seed {seed}, {events} events x {WEBHOOKS} webhooks = {pairs} deliveries, {requests} attempts \
         (replies {fault_list:?}); succeeded {succeeded}, failed after schedule {failed}; \
         lost {lost}, sends not in the log outside the named windows {unrecorded}, log/receiver mismatches {mismatched}, \
         2xx answered after the dispatcher's timeout (logged as failed attempts, retried) {unseen_2xx}; \
         wall {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        lost, 0,
        "every pair is succeeded or failed after the schedule (seed {seed})"
    );
    assert_eq!(
        unrecorded, 0,
        "every send is in the log or in a named window, nothing after a logged 2xx (seed {seed})"
    );
    assert_eq!(
        mismatched, 0,
        "the log agrees with what receivers answered (seed {seed})"
    );
    assert_eq!(succeeded + failed, pairs);
}

/// Posts a batch until every event is taken: accepted, or a duplicate of an earlier post that
/// was (a post whose answer said `failed`, throttled, is posted again as a platform would).
async fn post_until_taken(stack: &Stack, mut batch: Vec<serde_json::Value>, seed: u64) {
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, _, answer) = stack
            .call(
                "POST",
                "/v1/events/batch",
                Some(json!({"events": batch})),
                None,
            )
            .await;
        let again: Vec<_> = match status.as_u16() {
            200 => answer["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|item| {
                    let taken = item["status"] == "accepted" || item["status"] == "duplicate";
                    assert!(taken || item["status"] == "failed", "{item}");
                    !taken
                })
                .map(|item| batch[item["index"].as_u64().unwrap() as usize].clone())
                .collect(),
            // The whole batch refused for now (a throttled read of the key, say).
            503 => batch.clone(),
            other => panic!("batch answered {other}: {answer}"),
        };
        if again.is_empty() {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "events never taken (seed {seed}): {answer}"
        );
        batch = again;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

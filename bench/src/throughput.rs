//! Deliveries per second through the real dispatch handler (match, format, sign, POST, record)
//! over the in-memory store and queue, against a bare reqwest client posting the same bodies
//! and headers with the same concurrency to the same receiver: the practical limit here.

use crate::fixture::{self, CONCURRENCY};
use crate::receiver::Receiver;
use crate::stats::{own_cpu, process_cpu};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use herald_shared::format;
use herald_shared::queue::MemoryQueue;
use herald_shared::service::sender::signed_headers;
use herald_shared::store::{MemoryStore, Store};
use herald_shared::webhook::Kind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub deliveries: usize,
    pub wall: Duration,
    pub cpu: Duration,
    /// The receiver process's CPU over the same span: both share the machine's two cores.
    pub receiver_cpu: Duration,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.deliveries as f64 / self.wall.as_secs_f64()
    }
    pub fn cpu_us_per_delivery(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.deliveries as f64
    }
    pub fn receiver_cpu_us_per_delivery(&self) -> f64 {
        self.receiver_cpu.as_secs_f64() * 1e6 / self.deliveries as f64
    }
}

/// What the spawned tasks counted, together.
async fn total(tasks: Vec<tokio::task::JoinHandle<usize>>) -> usize {
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("a task finishes"))
        .sum()
}

/// Events per `handle` call: about 100 deliveries per batch, as an SQS batch of 10–100 would
/// bring at these fan-outs.
fn batch_events(fanout: usize) -> usize {
    (100 / fanout).max(1)
}

/// `pollers` batches in flight at once over one dispatcher, each poller a task of its own as
/// `herald dev` spawns them (the dispatcher's concurrency bound is shared by them); 1 is one
/// Lambda container, a batch at a time.
pub async fn herald(receiver: &Receiver, fanout: usize, deliveries: usize, pollers: usize) -> Run {
    let config = fixture::config();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::default());
    fixture::subscribe(store.as_ref(), &receiver.url, fanout, &config).await;
    let dispatcher = Arc::new(herald_shared::runtime::dispatcher(&config, store, queue));
    let events = deliveries.div_ceil(fanout);
    let per_batch = batch_events(fanout);
    // Warm the connection pool and the allocator outside the measurement.
    let warm = fixture::records(1_000_000..1_000_000 + per_batch);
    assert!(dispatcher.handle(&warm, None).await.failed.is_empty());

    let records = Arc::new(fixture::records(0..events));
    let next = Arc::new(AtomicUsize::new(0));
    let poller = || {
        let (dispatcher, records, next) = (dispatcher.clone(), records.clone(), next.clone());
        async move {
            let mut delivered = 0;
            while let Some(batch) = records
                .chunks(per_batch)
                .nth(next.fetch_add(1, Ordering::Relaxed))
            {
                let handled = dispatcher.handle(batch, None).await;
                assert!(handled.failed.is_empty(), "no internal failures");
                assert_eq!(
                    handled.metrics.failed + handled.metrics.retried,
                    0,
                    "every POST got 204"
                );
                delivered += handled.metrics.succeeded as usize;
            }
            delivered
        }
    };
    let (cpu, receiver_cpu, started) = (own_cpu(), process_cpu(receiver.pid()), Instant::now());
    let tasks: Vec<_> = (0..pollers.max(1))
        .map(|_| tokio::spawn(poller()))
        .collect();
    let delivered = total(tasks).await;
    let run = Run {
        deliveries: delivered,
        wall: started.elapsed(),
        cpu: own_cpu() - cpu,
        receiver_cpu: process_cpu(receiver.pid()) - receiver_cpu,
    };
    assert_eq!(delivered, events * fanout, "every delivery made");
    run
}

/// The same number of POSTs, same body and headers (formatted and signed once, up front), one
/// client with its connection pool, and the same parallelism: `streams` tasks (as many as
/// Herald's pollers) sharing the same number of requests in flight.
pub async fn bare(receiver: &Receiver, fanout: usize, deliveries: usize, streams: usize) -> Run {
    let config = fixture::config();
    let event = fixture::event(0);
    let webhook = fixture::webhook(0, &receiver.url, &["*"], &config);
    let body = Bytes::from(format::render(Kind::Standard, &event, false));
    let keys = herald_shared::signing::KeyCache::default();
    let headers = signed_headers(
        &keys,
        &webhook,
        &event,
        &body,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    // Parsed once, as Herald's dispatcher keeps each endpoint's checked URL.
    let urls: Vec<reqwest::Url> = (0..fanout)
        .map(|i| format!("{}/w/{i}", receiver.url).parse().unwrap())
        .collect();
    // Configured as Herald's delivery client is where it saves work (no request copies kept
    // for retries), so the baseline stays the practical limit.
    let client = reqwest::Client::builder()
        .retry(herald_shared::http::client::no_retries())
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let urls = Arc::new(urls);
    let post = {
        let (client, urls) = (client.clone(), urls.clone());
        // Each request gets its own copy of the headers, as Herald builds one map per delivery,
        // moved into the request as Herald's client does.
        move |i: usize| {
            let mut request = reqwest::Request::new(http::Method::POST, urls[i % fanout].clone());
            *request.headers_mut() = headers.clone();
            *request.body_mut() = Some(body.clone().into());
            client.execute(request)
        }
    };
    let warm = stream::iter(0..CONCURRENCY)
        .map(&post)
        .buffer_unordered(CONCURRENCY);
    warm.for_each(|r| async move { assert!(r.unwrap().status().is_success()) })
        .await;

    let streams = streams.clamp(1, CONCURRENCY);
    let (cpu, receiver_cpu, started) = (own_cpu(), process_cpu(receiver.pid()), Instant::now());
    let tasks: Vec<_> = (0..streams)
        .map(|t| {
            let post = post.clone();
            tokio::spawn(async move {
                stream::iter((t..deliveries).step_by(streams))
                    .map(&post)
                    .buffer_unordered(CONCURRENCY / streams)
                    .filter(|r| {
                        std::future::ready(r.as_ref().is_ok_and(|r| r.status().as_u16() == 204))
                    })
                    .count()
                    .await
            })
        })
        .collect();
    let ok = total(tasks).await;
    let run = Run {
        deliveries: ok,
        wall: started.elapsed(),
        cpu: own_cpu() - cpu,
        receiver_cpu: process_cpu(receiver.pid()) - receiver_cpu,
    };
    assert_eq!(ok, deliveries, "every POST answered 204");
    run
}

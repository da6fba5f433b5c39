//! The ingest handler (auth, validation, dedupe claim, enqueue) through the axum router, as
//! lambda_http calls it, over the in-memory store and queue: latency of one request at a time
//! and the rate one process sustains with 64 requests in flight.

use crate::fixture::{self, TENANT};
use crate::stats::{own_cpu, quantile};
use axum::body::Body;
use futures::stream::{self, StreamExt};
use herald_shared::queue::MemoryQueue;
use herald_shared::service::tenants;
use herald_shared::store::{MemoryStore, Store};
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

const KEY: &str = "bench-key-0123456789";

pub struct IngestRun {
    pub p50_us: f64,
    pub p99_us: f64,
    pub per_second: f64,
    pub cpu_us_per_event: f64,
}

fn request(n: usize) -> http::Request<Body> {
    let body = serde_json::to_vec(&fixture::event_json(n, 0)).unwrap();
    http::Request::post("/v1/events")
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

pub async fn run(sequential: usize, concurrent: usize) -> IngestRun {
    let config = fixture::config();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::default());
    tenants::ensure_tenant_with_key(store.as_ref(), TENANT, "bench", KEY)
        .await
        .unwrap();
    let app = herald_shared::web::ingest_router(herald_shared::runtime::ingest_state(
        &config, store, queue,
    ));

    let mut latencies = Vec::with_capacity(sequential);
    for n in 0..sequential {
        let started = Instant::now();
        let response = app.clone().oneshot(request(n)).await.unwrap();
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
        assert_eq!(response.status(), 202);
    }

    let (cpu, started) = (own_cpu(), Instant::now());
    let accepted = stream::iter(sequential..sequential + concurrent)
        .map(|n| app.clone().oneshot(request(n)))
        .buffer_unordered(64)
        .filter(|r| std::future::ready(r.as_ref().is_ok_and(|r| r.status() == 202)))
        .count()
        .await;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(accepted, concurrent, "every event accepted");
    IngestRun {
        p50_us: quantile(&mut latencies, 0.5),
        p99_us: quantile(&mut latencies, 0.99),
        per_second: concurrent as f64 / wall,
        cpu_us_per_event: (own_cpu() - cpu).as_secs_f64() * 1e6 / concurrent as f64,
    }
}

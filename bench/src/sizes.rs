//! Allocation sizes on the delivery path. The stream that runs a dispatch batch allocates each
//! job's future whole; glibc serves requests up to 1,032 bytes from its per-thread cache and
//! sends larger ones through its bins, so a job's future, with the 112 bytes the stream's task
//! adds, is held to that size.

use crate::fixture;
use herald_shared::queue::{MemoryQueue, Message};
use herald_shared::service::dispatch::job_future_bytes;
use herald_shared::store::MemoryStore;
use std::sync::Arc;

/// What glibc's per-thread cache serves without touching its bins.
pub const TCACHE_MAX: usize = 1032;
/// What the stream's task adds around each job's future.
pub const STREAM_TASK: usize = 112;

/// The size of one job's future, in bytes.
pub fn job_future() -> usize {
    let config = fixture::config();
    let dispatcher = herald_shared::runtime::dispatcher(
        &config,
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryQueue::default()),
    );
    let webhook = fixture::webhook(0, "http://127.0.0.1:9/hook", &["*"], &config);
    let message = Message::decode(&fixture::record(0).body).expect("the fixture's message decodes");
    job_future_bytes(&dispatcher, &message, &webhook)
}

/// The summary line, and whether the size is within the cache.
pub fn line() -> (String, bool) {
    let size = job_future();
    let fits = size + STREAM_TASK <= TCACHE_MAX;
    let text = format!(
        "sizes: a dispatch job's future is {size} B (+{STREAM_TASK} B of the stream's task; \
         glibc's per-thread cache serves up to {TCACHE_MAX} B): {}",
        if fits { "fits" } else { "OVER" }
    );
    (text, fits)
}

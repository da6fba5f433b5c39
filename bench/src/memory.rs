//! Peak memory of a dispatcher holding `in_flight` deliveries open at once (the receiver waits
//! before answering), measured in a fresh process so nothing else is counted.

use crate::fixture;
use crate::receiver::Receiver;
use crate::stats::peak_rss;
use herald_shared::queue::MemoryQueue;
use herald_shared::store::{MemoryStore, Store};
use std::sync::Arc;

/// Returns (peak RSS before the batch, peak RSS after it) in bytes.
pub async fn run(in_flight: usize) -> (u64, u64) {
    let receiver = Receiver::spawn(1000, false);
    let mut config = fixture::config();
    config.dispatch_concurrency = in_flight;
    config.endpoint_concurrency = in_flight;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    fixture::subscribe(store.as_ref(), &receiver.url, in_flight, &config).await;
    let dispatcher =
        herald_shared::runtime::dispatcher(&config, store, Arc::new(MemoryQueue::default()));
    let before = peak_rss();
    let handled = dispatcher.handle(&[fixture::record(0)], None).await;
    assert!(handled.failed.is_empty());
    assert_eq!(handled.metrics.succeeded as usize, in_flight);
    (before, peak_rss())
}

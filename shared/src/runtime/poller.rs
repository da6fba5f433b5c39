//! The local stack's drivers: the queue poller, which feeds the dispatcher as the SQS event
//! source does in Lambda, and the sweep's schedule, which the template's does.

use crate::service::dispatch::{Dispatcher, QueueRecord};
use crate::service::Sweeper;
use std::sync::Arc;

/// Feeds queue messages to the dispatcher the way the SQS event source mapping does in Lambda:
/// batches of up to 10, successful records deleted, failed ones left to reappear after the
/// visibility timeout. Runs until `shutdown` resolves.
pub async fn poll(
    queue: Arc<dyn crate::queue::Queue>,
    dispatcher: Arc<Dispatcher>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let wait = std::time::Duration::from_secs(1);
    tokio::pin!(shutdown);
    loop {
        let received = tokio::select! {
            _ = &mut shutdown => return,
            r = queue.receive(10, wait) => r,
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "queue receive failed; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let records: Vec<QueueRecord> = messages.iter().map(QueueRecord::from).collect();
        // No deadline: nothing cuts the local stack's run short.
        let failed = dispatcher.handle(&records, None).await.failed;
        for m in messages.iter().filter(|m| !failed.contains(&m.message_id)) {
            if let Err(e) = queue.delete(&m.receipt).await {
                // It will be received again; deliveries already made are skipped then.
                tracing::warn!(message_id = %m.message_id, error = %e, "could not delete handled message");
            }
        }
    }
}

/// Runs the sweep every `period` until `shutdown` resolves, as the template's schedule runs it.
pub async fn sweep_every(
    sweeper: Sweeper,
    period: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        if let Err(e) = sweeper.sweep(time::OffsetDateTime::now_utc()).await {
            tracing::warn!(error = %e, "sweep failed; the next one retries");
        }
    }
}

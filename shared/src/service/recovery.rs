//! Moving a recovery job through its webhook's log: a page at a time, newest first, each
//! delivery whose status it wants given a new attempt series (`restart`), the job's progress
//! stored after every page. The API runs the first pages as it answers; the sweep, every time
//! it runs, moves the running jobs on, so a window of millions is many invocations' work.
//!
//! Safe to repeat: a delivery that succeeded is wanted only when asked for by status, and one
//! restarted twice (two jobs over one window) has two messages naming the same attempt count,
//! of which dispatch makes one attempt.

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::recovery::{Recovery, RecoveryState};
use crate::service::restart::restart;
use crate::store::Store;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Deliveries read per page of the log.
pub const PAGE: usize = 100;
/// How long the API spends on a new job before it answers; the sweep takes over from there.
pub const ANSWER_BUDGET: Duration = Duration::from_secs(3);
/// How long one sweep spends moving recovery jobs on, all of them together.
pub const SWEEP_BUDGET: Duration = Duration::from_secs(20);
/// Running jobs one sweep looks at.
pub const JOBS_PER_SWEEP: usize = 20;

/// Runs pages of `job` until its window is done, it stops, or `budget` is spent (one page at
/// least, and a page once begun is finished), storing its progress after each page. An error leaves the job as last
/// stored, running: the next sweep takes it up again from the delivery it had reached.
pub async fn advance(
    store: &dyn Store,
    queue: &dyn Queue,
    job: &mut Recovery,
    budget: Duration,
) -> Result<()> {
    let started = Instant::now();
    while job.state == RecoveryState::Running {
        let webhook = match store.get_webhook(&job.tenant_id, &job.webhook_id).await? {
            Some(w) if w.spec.enabled => w,
            found => {
                let why = match found {
                    Some(_) => "the webhook was disabled; enable it and recover again",
                    None => "the webhook was deleted",
                };
                job.state = RecoveryState::Stopped;
                job.stopped = Some(why.into());
                job.updated_at = OffsetDateTime::now_utc();
                store.put_recovery(job).await?;
                break;
            }
        };
        let below = job.below();
        let page = store
            .list_deliveries(&job.tenant_id, &job.webhook_id, PAGE, Some(&below))
            .await?;
        let mut failure = None;
        for delivery in &page.items {
            if job.before_window(&delivery.id) {
                job.state = RecoveryState::Done;
                break;
            }
            if job.wants(delivery) {
                match restart(store, queue, delivery, &webhook).await {
                    Ok(_) => job.queued += 1,
                    Err(Error::Conflict(why)) => {
                        job.skipped += 1;
                        tracing::info!(recovery_id = %job.id, delivery_id = %delivery.id, reason = %why, "delivery not recovered");
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
                job.matched += 1;
            }
            job.scanned += 1;
            job.cursor = Some(delivery.id.to_string());
        }
        if failure.is_none() && !page.more && job.state == RecoveryState::Running {
            job.state = RecoveryState::Done;
        }
        job.updated_at = OffsetDateTime::now_utc();
        store.put_recovery(job).await?;
        if let Some(e) = failure {
            return Err(e);
        }
        if started.elapsed() >= budget {
            break;
        }
    }
    if job.state != RecoveryState::Running {
        tracing::info!(recovery_id = %job.id, state = ?job.state, scanned = job.scanned,
            queued = job.queued, skipped = job.skipped, "recovery ended");
    }
    Ok(())
}

/// Moves every running job on, within `SWEEP_BUDGET` together: what the sweep does after its
/// deliveries. The deliveries queued.
pub async fn advance_running(store: &dyn Store, queue: &dyn Queue) -> Result<u64> {
    let started = Instant::now();
    let mut queued = 0;
    for mut job in store.running_recoveries(JOBS_PER_SWEEP).await? {
        let left = SWEEP_BUDGET.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        let before = job.queued;
        if let Err(e) = advance(store, queue, &mut job, left).await {
            tracing::warn!(recovery_id = %job.id, error = %e, "a recovery page failed; the next sweep takes it up");
        }
        queued += job.queued - before;
    }
    Ok(queued)
}

//! The sweep: a scheduled look at the deliveries with something left to attempt, by their
//! `sweep_at`. It queues the attempts whose wait is longer than a queue message can carry
//! (shortly before they are due, so one message per attempt however long the schedule), and
//! the attempts long overdue because their message was lost (a purged queue, a dead letter
//! that expired), so no delivery stays `retrying` with nothing left to retry it.
//!
//! Then it moves the running recovery jobs on (`service::recovery`).
//!
//! Safe to repeat and to overlap with dispatch: each message it queues names the attempt count
//! it expects, so a second message for one attempt (the lost one found after all, two sweeps)
//! is dropped or waits out the first one's lease, and nothing is sent twice.

use crate::delivery::{sweep_time, Attempt, Delivery, DeliveryStatus};
use crate::error::Result;
use crate::queue::{Message, NextAttempt, Queue};
use crate::service::recovery;
use crate::service::source::source_envelope;
use crate::store::{Store, SweepIndex};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How far ahead of its due time the sweep queues a long wait: more than the sweep's period
/// (the template runs it every 5 minutes), less than the 900 s a message can be delayed.
pub const SWEEP_LEAD: time::Duration = time::Duration::minutes(10);
/// How often the template's schedule runs the sweep (`rate(5 minutes)`).
pub const SWEEP_EVERY: Duration = Duration::from_secs(300);
/// Sweeps that may queue a delivery without an attempt following before it is given up: a
/// message that keeps failing before its attempt (and keeps reaching the dead-letter queue) is
/// not queued for ever.
pub const MAX_SWEEPS: u8 = 3;
/// Deliveries read per page; a sweep reads pages until none is due or `MAX_PAGES` is reached.
const PAGE: usize = 100;
const MAX_PAGES: usize = 20;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Attempts queued: long waits coming due, and overdue attempts queued again.
    pub queued: usize,
    /// Of those, attempts long overdue: their message was lost.
    pub overdue: usize,
    /// Deliveries failed by the sweep: their event is no longer kept, or `MAX_SWEEPS` sweeps
    /// queued them without an attempt following.
    pub given_up: usize,
    /// Deliveries given a new attempt series by the recovery jobs it moved on.
    pub recovered: u64,
}

pub struct Sweeper {
    store: Arc<dyn Store>,
    index: Arc<dyn SweepIndex>,
    queue: Arc<dyn Queue>,
}

impl Sweeper {
    /// `index` is the same table as `store`, through the sweep's own port.
    pub fn new(store: Arc<dyn Store>, index: Arc<dyn SweepIndex>, queue: Arc<dyn Queue>) -> Self {
        Sweeper {
            store,
            index,
            queue,
        }
    }

    /// Queues every delivery due by `now + SWEEP_LEAD`. A delivery it handles moves its
    /// `sweep_at` past `now`, so the pages that follow hold the next ones.
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<Swept> {
        let mut swept = Swept::default();
        for _ in 0..MAX_PAGES {
            let due = self.index.due_for_sweep(now + SWEEP_LEAD, PAGE).await?;
            let full = due.len() == PAGE;
            let mut moved = 0;
            for delivery in due {
                if self.one(delivery, now, &mut swept).await? {
                    moved += 1;
                }
            }
            // A page none of whose deliveries moved would be read again as it is.
            if !full || moved == 0 {
                break;
            }
        }
        swept.recovered =
            recovery::advance_running(self.store.as_ref(), self.queue.as_ref()).await?;
        if swept != Swept::default() {
            tracing::info!(
                queued = swept.queued,
                overdue = swept.overdue,
                given_up = swept.given_up,
                recovered = swept.recovered,
                "sweep"
            );
        }
        Ok(swept)
    }

    /// Queues one delivery's next attempt, or gives it up; `true` when its record moved.
    async fn one(&self, read: Delivery, now: OffsetDateTime, swept: &mut Swept) -> Result<bool> {
        let Some(due) = read.next_attempt_at.filter(|_| {
            matches!(
                read.status,
                DeliveryStatus::Pending | DeliveryStatus::Retrying
            ) && read.sweep_at.is_some_and(|at| at <= now + SWEEP_LEAD)
        }) else {
            // The index lagged a write that settled it.
            return Ok(false);
        };
        // Looked at past its due time: a message carried the wait (or a sweep queued it), and
        // no attempt followed.
        let overdue = read.sweep_at.is_some_and(|at| at > due);
        if overdue && read.sweeps >= MAX_SWEEPS {
            let why = format!(
                "no attempt followed the last {MAX_SWEEPS} times the sweep queued this delivery"
            );
            return self.give_up(read, now, &why, swept).await;
        }
        let Some(envelope) = source_envelope(self.store.as_ref(), &read).await? else {
            return self
                .give_up(read, now, "the event is no longer kept", swept)
                .await;
        };
        let wait: Duration = (due - now).try_into().unwrap_or_default();
        let message = Message::Attempt {
            envelope,
            attempt: NextAttempt {
                webhook_id: read.webhook_id.to_string(),
                delivery_id: read.id.to_string(),
                expect_attempts: read.attempts.len(),
                deferrals: 0,
            },
            not_before: None,
        };
        // Queued before the record moves on: a sweep that dies in between queues it again,
        // and the second message finds the attempt made or leased.
        self.queue.send(message.encode(), wait).await?;
        swept.queued += 1;
        swept.overdue += usize::from(overdue);
        if overdue {
            tracing::warn!(delivery_id = %read.id, due = %due, "overdue attempt queued again");
        }
        let mut next = read.clone();
        next.sweep_at = Some(sweep_time(due.max(now), now));
        next.sweeps = read.sweeps.saturating_add(1);
        // Refused: an attempt ran or was recorded since the read, and the message is stale.
        self.store.replace_delivery(&next, &read, now).await
    }

    /// Fails a delivery that cannot be attempted, with the reason as its last attempt.
    async fn give_up(
        &self,
        read: Delivery,
        now: OffsetDateTime,
        why: &str,
        swept: &mut Swept,
    ) -> Result<bool> {
        let mut failed = read.clone();
        failed.record(
            Attempt {
                at: now,
                status_code: None,
                duration_ms: 0,
                error: Some(format!("not attempted: {why}")),
                response_body: None,
            },
            None,
        );
        let written = self.store.replace_delivery(&failed, &read, now).await?;
        if written {
            swept.given_up += 1;
            tracing::error!(delivery_id = %read.id, reason = why, "delivery given up by the sweep");
        }
        Ok(written)
    }
}

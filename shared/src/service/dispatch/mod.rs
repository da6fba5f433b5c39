//! Dispatch: for each queued event, match the tenant's enabled webhooks, format, sign, POST
//! (concurrently, bounded overall and per endpoint) and record the delivery; schedule a retry
//! message for each failed attempt that has attempts left.
//!
//! A record fails — and stays on the queue — only when something internal went wrong
//! (unreadable message, store or queue unavailable); a receiver's error is a recorded attempt.
//! Every step is safe to repeat: a delivery that succeeded is never attempted again, a retry
//! message whose expected attempt count is stale is dropped, and each attempt is leased with a
//! conditional write before the POST, so two runs handed the same message at once (SQS may)
//! make it once between them.

mod announce;
mod attempt;
mod counts;
mod fan_out;
mod health;

pub use attempt::attempt;

use crate::delivery::{
    delivery_id, queued_wait, verdict, Attempt, Delivery, DeliveryStatus, Verdict, OVERDUE_AFTER,
};
use crate::event::{Event, EventEnvelope};
use crate::format;
use crate::http::PostOutcome;
use crate::matching::webhook_matches;
use crate::metrics::BatchMetrics;
use crate::queue::{Message, NextAttempt, Queue, MAX_DELAY};
use crate::service::sender::Sender;
use crate::store::Store;
use crate::webhook::{Kind, Webhook};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How long past its delivery timeout a run holds an attempt: longer than the dispatch
/// function's timeout (so no live run loses its lease), shorter than the queue's visibility
/// timeout (so a message whose run died finds the lease lapsed when it comes back).
pub const LEASE_MARGIN: Duration = Duration::from_secs(60);
/// How long a message waits for a delivery another run holds, between looks.
const DEFER_MIN: Duration = Duration::from_secs(1);
const DEFER_MAX: Duration = Duration::from_secs(5);
/// Times one attempt may be put back for a delivery another run holds: enough looks to outlast
/// the longest lease (the largest delivery timeout and the margin) at `DEFER_MAX` each, and a
/// few more. Past it the record fails, so a lease that never lets it through ends in the
/// dead-letter queue rather than circling.
pub const MAX_DEFERRALS: u32 = ((crate::config::MAX_DELIVERY_TIMEOUT.as_secs()
    + LEASE_MARGIN.as_secs())
    / DEFER_MAX.as_secs()) as u32
    + 4;
/// Jobs a batch polls per concurrency slot: those waiting for a busy URL's share hold no slot.
const POLLED_PER_SLOT: usize = 8;

/// One queue message handed to dispatch: a record of the SQS event source's batch, or one the
/// local poller received. Its body is a `queue::Message` in its text form.
#[derive(Debug, Clone)]
pub struct QueueRecord {
    pub message_id: String,
    pub body: String,
    /// Times the queue has handed this message out, this one included (SQS's
    /// `ApproximateReceiveCount`); 0 when not known.
    pub receive_count: u32,
}

impl From<&crate::queue::Received> for QueueRecord {
    fn from(m: &crate::queue::Received) -> Self {
        QueueRecord {
            message_id: m.message_id.clone(),
            body: m.body.clone(),
            receive_count: m.receive_count,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Deliveries in flight at once per container.
    pub concurrency: usize,
    /// Delay before each attempt, counted from the previous one.
    pub schedule: Vec<Duration>,
    /// A webhook whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// How long a run holds a delivery while it makes an attempt.
    pub lease: Duration,
    /// The longest a job may take once started: its POST and the store and queue calls around
    /// it. A job that could not finish before the invocation's deadline is not started.
    pub job_budget: Duration,
    /// Receives of a message before the queue dead-letters it (its `maxReceiveCount`).
    pub max_receives: u32,
    /// The longest one store or queue call may take (the SDK's operation timeout): a write
    /// that follows a POST is tried again only while the deadline leaves room for it.
    pub call_timeout: Duration,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    sender: Arc<Sender>,
    settings: Settings,
    /// Deliveries in flight across every batch this container handles at once (the local
    /// stack runs several pollers over one dispatcher).
    slots: Arc<Semaphore>,
}

/// What a batch came to: the records to hand back to the queue, and what happened.
#[derive(Debug, Default)]
pub struct Handled {
    pub failed: Vec<String>,
    pub metrics: BatchMetrics,
}

/// What one job came to.
enum JobResult {
    /// Nothing to send: already delivered, taken by an earlier run, or stale.
    Skipped,
    /// The webhook is disabled: the delivery is kept, held, and nothing sent.
    Held,
    Attempted {
        verdict: Verdict,
        duration: Duration,
        /// From ingest accepting the event to now.
        since_accepted: Duration,
    },
    /// The store or queue failed; the record goes back to the queue.
    Internal,
    /// Not started: it could not have finished before the invocation's deadline. The record
    /// goes back to the queue, and the next receive makes it.
    NotStarted,
}

/// What a job comes to once its delivery has been read.
enum Plan {
    /// Make the next attempt of this delivery (new, or as stored). Boxed: a job's future holds
    /// the delivery across every await, and inline it would take the future past the size the
    /// allocator serves from its per-thread cache (`job_future_bytes`).
    Attempt(Box<Delivery>),
    /// Nothing to send: already delivered, stale, or redone by another message.
    Skip,
    /// Another run holds the delivery, which has this many attempts: look again after this
    /// long.
    Defer(Duration, usize),
}

/// Decides whether a loaded webhook receives an event.
type Matcher = fn(&Webhook, &Event) -> bool;

/// One (event, webhook) pair to deliver.
struct Job<'a> {
    record: usize,
    message: &'a Message,
    webhook: &'a Webhook,
    body: Bytes,
}

impl Job<'_> {
    fn envelope(&self) -> &EventEnvelope {
        self.message.envelope()
    }
}

fn jitter() -> f64 {
    rand::random::<f64>() * 2.0 - 1.0
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        sender: Arc<Sender>,
        settings: Settings,
    ) -> Self {
        Dispatcher {
            store,
            queue,
            sender,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings: Settings {
                concurrency: settings.concurrency.max(1),
                ..settings
            },
        }
    }

    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Handles a batch; reports the message ids that must be retried, and the batch's metrics.
    /// One batch: decode the records, hold back what is not due, fan each event out to its
    /// webhooks, run the jobs concurrently, and report the records that must come back.
    ///
    /// `deadline` is when the invocation is cut off (Lambda's); no job starts that could not
    /// finish by then, and the records of the jobs left come back as failures.
    pub async fn handle(&self, records: &[QueueRecord], deadline: Option<Instant>) -> Handled {
        let mut metrics = BatchMetrics::default();
        let mut failed = vec![false; records.len()];
        let mut messages = fan_out::decode(records, &mut failed);
        self.defer_not_due(&mut messages, &mut failed).await;
        let subscriptions = self.subscriptions(&messages).await;
        let targeted = self.targets(&messages, &mut failed).await;
        let jobs = fan_out::jobs(
            &messages,
            &subscriptions,
            &targeted,
            &mut failed,
            &mut metrics,
        );
        // Each job's future lives in the stream's own slot, not a box of its own. The closure
        // takes an index, not a `Job`: one over borrowed jobs trips the compiler's `Send`
        // inference where the handler is spawned. More jobs are polled than may post at once:
        // a job waits for its URL's share before it takes a slot, so jobs queued on a slow URL
        // leave the slots to the others.
        let outcomes: Vec<(usize, &Webhook, JobResult)> = stream::iter(0..jobs.len())
            .map(|i| self.run(&jobs[i], deadline))
            .buffer_unordered(self.settings.concurrency * POLLED_PER_SLOT)
            .collect()
            .await;
        let mut not_started = vec![false; records.len()];
        let mut counted = counts::Counted::default();
        for (record, webhook, result) in outcomes {
            counted.count(webhook, &result);
            if matches!(result, JobResult::NotStarted) {
                metrics.not_started += 1;
                not_started[record] = true;
            } else if tally(result, &mut metrics) {
                failed[record] = true;
            }
        }
        // A record that also failed otherwise comes back whole: its retry makes both.
        for (record, late) in not_started.into_iter().enumerate() {
            if late && !failed[record] {
                failed[record] = !self
                    .resend_unstarted(&records[record], &messages[record])
                    .await;
            }
        }
        self.add_counts(counted, deadline).await;
        let failed: Vec<String> = records
            .iter()
            .zip(failed)
            .filter(|(_, f)| *f)
            .map(|(r, _)| r.message_id.clone())
            .collect();
        metrics.records_failed = failed.len() as u64;
        Handled { failed, metrics }
    }

    async fn run<'j>(
        &self,
        job: &Job<'j>,
        deadline: Option<Instant>,
    ) -> (usize, &'j Webhook, JobResult) {
        let result = self.deliver_and_record(job, deadline).await;
        (job.record, job.webhook, result)
    }

    /// A record with jobs not started for lack of time goes back to the queue, and the next
    /// receive makes them. Handed back on its last receive it would go to the dead-letter queue
    /// without an attempt, so then it is sent again as a new message (its receive count starts
    /// over) and reported done: `true`. Only while it is due less than `OVERDUE_AFTER` ago, so a
    /// message that never gets started climbs to the dead-letter queue in the end rather than
    /// circling. `false`: hand it back.
    async fn resend_unstarted(&self, record: &QueueRecord, message: &Option<Message>) -> bool {
        let Some(message) = message else {
            return false;
        };
        if record.receive_count < self.settings.max_receives {
            return false;
        }
        let due = message
            .not_before()
            .unwrap_or_else(|| accepted_at(message.envelope()));
        if OffsetDateTime::now_utc() - due >= OVERDUE_AFTER {
            return false;
        }
        match self.queue.send(message.encode(), Duration::ZERO).await {
            Ok(()) => {
                tracing::warn!(
                    message_id = %record.message_id,
                    receives = record.receive_count,
                    "a record not started on its last receive was sent again"
                );
                true
            }
            Err(e) => {
                tracing::error!(message_id = %record.message_id, error = %e, "could not send an unstarted record again");
                false
            }
        }
    }
}

/// Counts one job's result in the batch's metrics; `true` when its record must come back.
fn tally(result: JobResult, metrics: &mut BatchMetrics) -> bool {
    let millis = |d: Duration| d.as_secs_f64() * 1000.0;
    match result {
        JobResult::Skipped => false,
        JobResult::Held => {
            metrics.held += 1;
            false
        }
        JobResult::Internal | JobResult::NotStarted => true,
        JobResult::Attempted {
            verdict,
            duration,
            since_accepted,
        } => {
            metrics.duration_ms.push(millis(duration));
            match verdict {
                Verdict::Succeeded => {
                    metrics.succeeded += 1;
                    metrics.latency_ms.push(millis(since_accepted));
                }
                Verdict::Retry(_) => metrics.retried += 1,
                Verdict::Failed | Verdict::Gone => metrics.failed += 1,
            }
            false
        }
    }
}

/// Tries of a write that follows a POST (the attempt's record, its retry's message): failing
/// it makes the attempt be redone, so the receiver would get the POST again. The SDK retries a
/// throttled call on its own first; these outlast a longer burst.
const AFTER_POST_TRIES: u32 = 3;
const AFTER_POST_BACKOFF: Duration = Duration::from_millis(100);

impl Dispatcher {
    /// Runs `call` until it succeeds, `AFTER_POST_TRIES` times at most, backing off between
    /// tries while `deadline` leaves room for one more. A refusal that cannot succeed
    /// (`Error::Refused`) is not tried again.
    async fn after_post<T, Fut>(
        &self,
        deadline: Option<Instant>,
        mut call: impl FnMut() -> Fut,
    ) -> Result<T, crate::Error>
    where
        Fut: std::future::Future<Output = Result<T, crate::Error>>,
    {
        let mut backoff = AFTER_POST_BACKOFF;
        let mut tries = 1;
        loop {
            let e = match call().await {
                Ok(done) => return Ok(done),
                Err(e) => e,
            };
            let room =
                deadline.is_none_or(|d| Instant::now() + backoff + self.settings.call_timeout <= d);
            if tries >= AFTER_POST_TRIES || !room || matches!(e, crate::Error::Refused(_)) {
                return Err(e);
            }
            tracing::warn!(error = %e, tries, "a write after a POST failed; trying again");
            tokio::time::sleep(backoff).await;
            backoff *= 3;
            tries += 1;
        }
    }
}

/// A store error that stops a job: logged, and the job's record goes back to the queue.
fn internal(webhook: &Webhook, what: &str, e: crate::Error) -> JobResult {
    tracing::error!(webhook_id = %webhook.id, error = %e, "could not {what}");
    JobResult::Internal
}

/// When ingest accepted the envelope (its ULID's time).
fn accepted_at(env: &EventEnvelope) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(env.envelope_id.timestamp_ms() as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The size of one job's future, which the stream running a batch allocates whole. `herald-bench
/// sizes` holds it against the allocator's per-thread cache: glibc serves requests up to 1,032
/// bytes from it, and the stream's task adds about 112 of its own.
pub fn job_future_bytes(dispatcher: &Dispatcher, message: &Message, webhook: &Webhook) -> usize {
    let job = Job {
        record: 0,
        message,
        webhook,
        body: Bytes::new(),
    };
    let future = dispatcher.run(&job, None);
    std::mem::size_of_val(&future)
}

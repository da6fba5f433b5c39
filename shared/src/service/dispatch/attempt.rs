//! One attempt of one delivery: plan it from what is stored, lease it, POST, record it, and queue the next one when the schedule says so.

use super::health::health_change;
use super::*;

/// The delivery a job makes: the one its attempt message names (borrowed: retries read it on
/// every attempt), or the one its fan-out makes.
fn job_delivery_id<'j>(job: &'j Job<'_>) -> std::borrow::Cow<'j, str> {
    match job.message.attempt() {
        Some(t) => std::borrow::Cow::Borrowed(t.delivery_id.as_str()),
        None => delivery_id(job.envelope().envelope_id, &job.webhook.id)
            .to_string()
            .into(),
    }
}

pub fn attempt(at: OffsetDateTime, outcome: &PostOutcome) -> Attempt {
    Attempt {
        at,
        status_code: outcome.status_code,
        duration_ms: outcome.duration.as_millis() as u64,
        error: outcome.error.as_ref().map(|e| e.to_string()),
        response_body: outcome.response_body.clone(),
    }
}

impl Dispatcher {
    /// What to do with a job, given the delivery as stored now.
    pub(super) fn plan(
        &self,
        job: &Job<'_>,
        stored: Option<Delivery>,
        now: OffsetDateTime,
    ) -> Plan {
        let env = job.envelope();
        match (job.message.attempt(), stored) {
            (None, None) => Plan::Attempt(Box::new(Delivery::new(
                delivery_id(env.envelope_id, &job.webhook.id),
                env.tenant_id.clone(),
                env.event.id.clone(),
                env.event.event_type.clone(),
                job.webhook.id.as_str(),
                now,
            ))),
            (Some(_), None) => Plan::Skip,
            // A held delivery moves on only by a redelivery, which makes it pending first.
            (_, Some(d))
                if matches!(d.status, DeliveryStatus::Succeeded | DeliveryStatus::Held) =>
            {
                Plan::Skip
            }
            // Another run is making an attempt. It may die before recording it, so the message
            // comes back rather than being dropped; by then the delivery has moved on, or the
            // lease has lapsed and this run takes over.
            (_, Some(d)) if d.leased_at(now) => Plan::Defer(
                d.leased_until
                    .map_or(DEFER_MAX, |until| {
                        (until - now).try_into().unwrap_or_default()
                    })
                    .clamp(DEFER_MIN, DEFER_MAX),
                d.attempts.len(),
            ),
            (None, Some(d)) if d.status == DeliveryStatus::Pending => Plan::Attempt(Box::new(d)),
            (None, Some(_)) => Plan::Skip,
            (Some(t), Some(d)) if d.attempts.len() == t.expect_attempts => {
                Plan::Attempt(Box::new(d))
            }
            // Fewer attempts than expected and no lease: the run that queued this message died
            // before recording its attempt; the message it was handling comes back and redoes
            // it. More attempts: this message is stale.
            (Some(_), Some(_)) => Plan::Skip,
        }
    }

    pub(super) async fn read_plan(&self, job: &Job<'_>) -> Result<Plan, crate::Error> {
        let env = job.envelope();
        let stored = self
            .store
            .get_delivery(&env.tenant_id, &job_delivery_id(job))
            .await?;
        Ok(self.plan(job, stored, OffsetDateTime::now_utc()))
    }

    /// After a lease was refused: the delivery was taken or moved on since it was read, so
    /// decide again from what is stored now.
    pub(super) async fn decide_again(&self, job: &Job<'_>, attempts: usize) -> JobResult {
        match self.read_plan(job).await {
            Ok(Plan::Skip) => JobResult::Skipped,
            Ok(Plan::Defer(wait, attempts)) => self.defer(job, wait, attempts).await,
            Ok(Plan::Attempt(_)) => self.defer(job, DEFER_MIN, attempts).await,
            Err(e) => internal(job.webhook, "read a delivery", e),
        }
    }

    /// Puts this job's attempt back on the queue for later: one attempt message for its
    /// delivery (which has `attempts` attempts), never the whole fan-out, so the other
    /// webhooks' jobs are not repeated. Bounded by `MAX_DEFERRALS`.
    pub(super) async fn defer(&self, job: &Job<'_>, wait: Duration, attempts: usize) -> JobResult {
        let env = job.envelope();
        let deferrals = job.message.attempt().map_or(0, |t| t.deferrals) + 1;
        if deferrals > MAX_DEFERRALS {
            tracing::error!(
                event_id = %env.event.id,
                webhook_id = %job.webhook.id,
                deferrals,
                "an attempt put back for another run's lease too often; its record fails"
            );
            return JobResult::Internal;
        }
        let deferred = Message::Attempt {
            envelope: env.clone(),
            attempt: NextAttempt {
                webhook_id: job.webhook.id.clone(),
                delivery_id: job_delivery_id(job).into_owned(),
                expect_attempts: attempts,
                deferrals,
            },
            not_before: None,
        };
        match self.queue.send(deferred.encode(), wait).await {
            Ok(()) => {
                tracing::info!(
                    event_id = %env.event.id,
                    webhook_id = %job.webhook.id,
                    wait_ms = wait.as_millis() as u64,
                    deferrals,
                    "delivery held by another run; attempt deferred"
                );
                JobResult::Skipped
            }
            Err(e) => {
                tracing::error!(event_id = %env.event.id, error = %e, "could not defer a message");
                JobResult::Internal
            }
        }
    }

    /// Whether a job started now could run past the deadline.
    fn too_late(&self, deadline: Option<Instant>) -> bool {
        deadline.is_some_and(|d| Instant::now() + self.settings.job_budget > d)
    }

    pub(super) async fn deliver_and_record(
        &self,
        job: &Job<'_>,
        deadline: Option<Instant>,
    ) -> JobResult {
        if self.too_late(deadline) {
            return JobResult::NotStarted;
        }
        if !job.webhook.spec.enabled {
            return Box::pin(self.hold(job)).await;
        }
        let env = job.envelope();
        let webhook = job.webhook;
        // The rare paths below (defer, decide again, queue a retry, change health) are boxed, so
        // a job's future, which the batch's stream allocates whole, stays within the sizes the
        // allocator serves from its per-thread cache (`job_future_bytes`, `herald-bench sizes`).
        // A first attempt is leased without reading: the lease's condition fails if the delivery
        // exists in any state but a fresh one, and only then is it read. One store call, not two.
        let planned = match job.message {
            Message::FanOut { .. } => Ok(self.plan(job, None, OffsetDateTime::now_utc())),
            Message::Attempt { .. } => self.read_plan(job).await,
        };
        let mut delivery = match planned {
            Ok(Plan::Attempt(d)) => d,
            Ok(Plan::Skip) => return JobResult::Skipped,
            Ok(Plan::Defer(wait, attempts)) => {
                return Box::pin(self.defer(job, wait, attempts)).await
            }
            Err(e) => return internal(webhook, "read a delivery", e),
        };
        let endpoint = self.sender.endpoint(&webhook.spec.url);
        let permit = endpoint.permit().await;
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the slots semaphore is never closed");
        // The waits above may have taken the time the job needed.
        if self.too_late(deadline) {
            return JobResult::NotStarted;
        }
        // The lease is taken once this run can post at once, so it covers only the attempt.
        let now = OffsetDateTime::now_utc();
        delivery.leased_until = Some(now + self.settings.lease);
        match self.store.lease_delivery(&delivery, now).await {
            Ok(true) => {}
            Ok(false) => return Box::pin(self.decide_again(job, delivery.attempts.len())).await,
            Err(e) => return internal(webhook, "lease a delivery", e),
        }
        let outcome = self
            .sender
            .send_to(&endpoint, webhook, &env.event, job.body.clone())
            .await;
        drop(permit);
        let now = OffsetDateTime::now_utc();
        let verdict = verdict(
            (&outcome).into(),
            delivery.attempts_in_series() + 1,
            &self.settings.schedule,
            jitter(),
        );
        let next = match verdict {
            Verdict::Retry(delay) => {
                match Box::pin(self.queue_retry(job, &mut delivery, delay, now, deadline)).await {
                    None => return JobResult::Internal,
                    due => due,
                }
            }
            _ => None,
        };
        delivery.record(attempt(now, &outcome), next);
        log_attempt(env, webhook, &delivery, &outcome);
        let recorded = Box::pin(self.after_post(deadline, || self.store.put_delivery(&delivery)));
        if let Err(e) = recorded.await {
            tracing::error!(delivery_id = %delivery.id, error = %e, "could not record delivery");
            return JobResult::Internal;
        }
        if let Some(change) = health_change(webhook, verdict) {
            Box::pin(self.change_health(webhook, change, now)).await;
        }
        // A delivery of an operational event tells no exhaustion of its own: two webhooks that
        // subscribe to each other's would otherwise trade events for as long as both fail.
        if matches!(verdict, Verdict::Failed)
            && delivery.attempts_in_series() >= self.settings.schedule.len()
            && !crate::catalog::is_operational(&env.event.event_type)
        {
            let exhausted = crate::operational::exhausted(webhook, &delivery, now);
            Box::pin(self.announce(&env.tenant_id, exhausted)).await;
        }
        JobResult::Attempted {
            verdict,
            duration: outcome.duration,
            since_accepted: (now - accepted_at(env)).try_into().unwrap_or_default(),
        }
    }

    /// Keeps the delivery of an event that matched a disabled webhook, held, in one write that
    /// makes it only where none exists (a repeated message, or one the webhook was disabled
    /// since, leaves what is stored alone).
    pub(super) async fn hold(&self, job: &Job<'_>) -> JobResult {
        let Plan::Attempt(mut delivery) = self.plan(job, None, OffsetDateTime::now_utc()) else {
            return JobResult::Skipped;
        };
        delivery.hold();
        match self.store.create_delivery(&delivery).await {
            Ok(true) => {
                tracing::info!(
                    delivery_id = %delivery.id,
                    webhook_id = %job.webhook.id,
                    event_id = %job.envelope().event.id,
                    "delivery held: the webhook is disabled"
                );
                JobResult::Held
            }
            Ok(false) => JobResult::Skipped,
            Err(e) => internal(job.webhook, "hold a delivery", e),
        }
    }

    /// Queues the next attempt of a delivery whose attempt failed; `None` when the queue
    /// refused it (the message then comes back and redoes this attempt).
    pub(super) async fn queue_retry(
        &self,
        job: &Job<'_>,
        delivery: &mut Delivery,
        delay: Duration,
        now: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Option<OffsetDateTime> {
        let due = now + delay;
        // A wait longer than a message can carry is queued by the sweep, from the record
        // (`Delivery::sweep_at`): one message per attempt, however long the wait.
        if !queued_wait(delay) {
            return Some(due);
        }
        // The retry is queued before the state says "retrying", so a crash in between
        // leaves a delivery that is retried, never one that waits for nothing.
        let retry = Message::Attempt {
            envelope: job.envelope().clone(),
            attempt: NextAttempt {
                webhook_id: job.webhook.id.clone(),
                delivery_id: delivery.id.to_string(),
                expect_attempts: delivery.attempts.len() + 1,
                deferrals: 0,
            },
            not_before: Some(due),
        };
        let encoded = retry.encode();
        let sent = self
            .after_post(deadline, || self.queue.send(encoded.clone(), delay))
            .await;
        if let Err(e) = sent {
            tracing::error!(delivery_id = %delivery.id, error = %e, "could not queue a retry");
            // Give the lease back so the redo need not wait for it to lapse. This run holds
            // it: nobody wrote since.
            delivery.leased_until = None;
            if let Err(e) = self.store.put_delivery(delivery).await {
                tracing::warn!(delivery_id = %delivery.id, error = %e, "could not release a lease");
            }
            return None;
        }
        Some(due)
    }
}

/// One line per attempt: its ids, what the receiver answered and what the delivery is now.
fn log_attempt(env: &EventEnvelope, webhook: &Webhook, delivery: &Delivery, outcome: &PostOutcome) {
    tracing::info!(
        tenant_id = %env.tenant_id,
        delivery_id = %delivery.id,
        webhook_id = %webhook.id,
        event_id = %env.event.id,
        attempt = delivery.attempts.len(),
        status = delivery.status.as_str(),
        status_code = outcome.status_code,
        duration_ms = outcome.duration.as_millis() as u64,
        error = outcome.error.as_ref().map(|e| e.to_string()),
        "delivery attempt"
    );
}

//! Fan-out: which (event, webhook) pairs a batch attempts, and the messages it holds back.

use super::*;

/// The records' messages; an unreadable one is `None` and its record failed, so it stays on
/// the queue and after maxReceiveCount lands in the DLQ for a human.
pub(super) fn decode(records: &[QueueRecord], failed: &mut [bool]) -> Vec<Option<Message>> {
    let mut messages = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        match Message::decode(&record.body) {
            Ok(message) => messages.push(Some(message)),
            Err(e) => {
                tracing::error!(message_id = %record.message_id, error = %e, "unreadable queue message");
                failed[i] = true;
                messages.push(None);
            }
        }
    }
    messages
}

/// One job per (event, webhook) pair to attempt: a fan-out's matching subscriptions, or a
/// retry's named webhook. Identical bodies for webhooks of one kind are formatted once per
/// (kind, include_result).
pub(super) fn jobs<'a>(
    messages: &'a [Option<Message>],
    subscriptions: &'a HashMap<&str, Option<Vec<Webhook>>>,
    targeted: &'a [Option<Vec<Webhook>>],
    failed: &mut [bool],
    metrics: &mut BatchMetrics,
) -> Vec<Job<'a>> {
    let mut jobs = Vec::new();
    let mut bodies: Vec<((Kind, bool), Bytes)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let Some(message) = message else { continue };
        let env = message.envelope();
        let (list, matches): (&Vec<Webhook>, Matcher) = match (message, &targeted[i]) {
            (Message::Attempt { .. }, Some(list)) => (list, |_, _| true),
            (Message::Attempt { .. }, None) => continue,
            (Message::FanOut { .. }, _) => match &subscriptions[&*env.tenant_id] {
                Some(list) => (list, webhook_matches),
                None => {
                    failed[i] = true;
                    continue;
                }
            },
        };
        bodies.clear();
        let before = jobs.len();
        for webhook in list.iter().filter(|w| matches(w, &env.event)) {
            let key = (webhook.spec.kind, webhook.spec.include_result);
            // A disabled webhook's job holds the delivery: nothing to send.
            let body = match bodies.iter().find(|(k, _)| *k == key) {
                _ if !webhook.spec.enabled => Bytes::new(),
                Some((_, b)) => b.clone(),
                None => {
                    let b = Bytes::from(format::render(key.0, &env.event, key.1));
                    bodies.push((key, b.clone()));
                    b
                }
            };
            jobs.push(Job {
                record: i,
                message,
                webhook,
                body,
            });
        }
        if let Message::FanOut { .. } = message {
            metrics.fan_out.push((jobs.len() - before) as f64);
        }
    }
    jobs
}

impl Dispatcher {
    /// Messages not yet due go back on the queue (chained waits, a delayed first attempt).
    pub(super) async fn defer_not_due(
        &self,
        messages: &mut [Option<Message>],
        failed: &mut [bool],
    ) {
        let now = OffsetDateTime::now_utc();
        for (i, slot) in messages.iter_mut().enumerate() {
            let Some(message) = slot.take() else { continue };
            let due = message.not_before().or_else(|| {
                let first = self.settings.schedule.first().copied().unwrap_or_default();
                let fresh = matches!(message, Message::FanOut { .. });
                (fresh && !first.is_zero()).then(|| accepted_at(message.envelope()) + first)
            });
            let Some(due) = due.filter(|d| *d > now + time::Duration::milliseconds(100)) else {
                *slot = Some(message);
                continue;
            };
            let wait: Duration = (due - now).try_into().unwrap_or_default();
            let deferred = message.due_at(due);
            if let Err(e) = self
                .queue
                .send(deferred.encode(), wait.min(MAX_DELAY))
                .await
            {
                tracing::error!(error = %e, "could not defer a message");
                failed[i] = true;
            }
        }
    }

    /// The enabled webhooks of each tenant with a fan-out in the batch, read once per tenant;
    /// `None` for a tenant whose read failed.
    pub(super) async fn subscriptions<'e>(
        &self,
        messages: &'e [Option<Message>],
    ) -> HashMap<&'e str, Option<Vec<Webhook>>> {
        let mut webhooks: HashMap<&str, Option<Vec<Webhook>>> = HashMap::new();
        let fan_outs = messages.iter().flatten().filter_map(|m| match m {
            Message::FanOut { envelope, .. } => Some(envelope),
            Message::Attempt { .. } => None,
        });
        for env in fan_outs {
            if !webhooks.contains_key(&*env.tenant_id) {
                let loaded = match self.store.subscribed_webhooks(&env.tenant_id).await {
                    Ok(list) => Some(list),
                    Err(e) => {
                        tracing::error!(tenant_id = %env.tenant_id, error = %e, "could not load webhooks");
                        None
                    }
                };
                webhooks.insert(&env.tenant_id, loaded);
            }
        }
        webhooks
    }

    /// Retries and redeliveries name their webhook; one that is gone ends them, one that is
    /// disabled holds their delivery.
    pub(super) async fn targets(
        &self,
        messages: &[Option<Message>],
        failed: &mut [bool],
    ) -> Vec<Option<Vec<Webhook>>> {
        let mut targeted: Vec<Option<Vec<Webhook>>> = Vec::with_capacity(messages.len());
        for (i, message) in messages.iter().enumerate() {
            let Some(Message::Attempt {
                envelope: env,
                attempt: target,
                ..
            }) = message
            else {
                targeted.push(None);
                continue;
            };
            match self
                .store
                .get_webhook(&env.tenant_id, &target.webhook_id)
                .await
            {
                Ok(Some(w)) if w.spec.enabled => targeted.push(Some(vec![w])),
                Ok(found) => {
                    if !self.abandon(&env.tenant_id, target, found.is_some()).await {
                        failed[i] = true;
                    }
                    targeted.push(None);
                }
                Err(e) => {
                    tracing::error!(webhook_id = %target.webhook_id, error = %e, "could not load webhook");
                    failed[i] = true;
                    targeted.push(None);
                }
            }
        }
        targeted
    }

    /// Ends a retry chain whose webhook was deleted (the delivery fails as it is) or disabled
    /// (the delivery is held, to be redelivered once the webhook is enabled).
    pub(super) async fn abandon(
        &self,
        tenant_id: &str,
        target: &NextAttempt,
        disabled: bool,
    ) -> bool {
        match self
            .store
            .get_delivery(tenant_id, &target.delivery_id)
            .await
        {
            Ok(Some(mut d))
                if d.status != DeliveryStatus::Succeeded
                    && d.attempts.len() == target.expect_attempts =>
            {
                if disabled {
                    d.hold();
                } else {
                    d.status = DeliveryStatus::Failed;
                    d.next_attempt_at = None;
                    d.sweep_at = None;
                }
                self.store.put_delivery(&d).await.is_ok()
            }
            Ok(_) => true,
            Err(_) => false,
        }
    }
}

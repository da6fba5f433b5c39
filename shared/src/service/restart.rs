//! A delivery's new attempt series, to its webhook as configured now: what a redelivery does,
//! and a recovery to each delivery it matches.

use crate::delivery::{sweep_time, Delivery, DeliveryStatus, MAX_ATTEMPTS};
use crate::error::{Error, Result};
use crate::queue::{Message, NextAttempt, Queue};
use crate::service::source::source_envelope;
use crate::store::Store;
use crate::webhook::Webhook;
use std::time::Duration;
use time::OffsetDateTime;

/// Starts a new series on `read` (the delivery as read) and queues its first attempt; the
/// delivery as written. A `Conflict` says why it cannot be: at its attempt limit, its event no
/// longer kept, or moved on since it was read. The caller checks the webhook is enabled.
pub async fn restart(
    store: &dyn Store,
    queue: &dyn Queue,
    read: &Delivery,
    webhook: &Webhook,
) -> Result<Delivery> {
    let mut delivery = read.clone();
    // A series of the longest schedule must fit what a delivery keeps.
    if !delivery.may_start_series(crate::config::MAX_SCHEDULE) {
        return Err(Error::Conflict(format!(
            "the delivery has {} attempts, and one keeps at most {MAX_ATTEMPTS}; post the event again under a new id to send it anew",
            delivery.attempts.len()
        )));
    }
    let envelope = source_envelope(store, &delivery)
        .await?
        .ok_or_else(|| {
            Error::Conflict(
                "the event this delivery was made from is no longer kept (expired, or replaced by a later post of its id)"
                    .into(),
            )
        })?;
    let message = Message::Attempt {
        envelope,
        attempt: NextAttempt {
            webhook_id: webhook.id.clone(),
            delivery_id: delivery.id.to_string(),
            expect_attempts: delivery.attempts.len(),
            deferrals: 0,
        },
        not_before: None,
    };
    let now = OffsetDateTime::now_utc();
    // A new series: the whole schedule is ahead of it.
    delivery.status = DeliveryStatus::Pending;
    delivery.series_start = delivery.attempts.len();
    delivery.next_attempt_at = Some(now);
    // Found by the sweep should the message be lost.
    delivery.sweep_at = Some(sweep_time(now, now));
    delivery.sweeps = 0;
    // Pending before the message exists: dispatch leases only a delivery that is not
    // final, so the other order could drop the message. Written only over what was read.
    // Refused, it may still be this write: the SDK retries a put whose answer was lost, and
    // the retry's condition fails on what the first try wrote.
    if !store.replace_delivery(&delivery, read, now).await?
        && store
            .get_delivery(&read.tenant_id, &read.id)
            .await?
            .as_ref()
            != Some(&delivery)
    {
        return Err(Error::Conflict(
            "the delivery changed while the redelivery was asked (an attempt is running or was just recorded); read it again"
                .into(),
        ));
    }
    if let Err(error) = queue.send(message.encode(), Duration::ZERO).await {
        // No message carries the redelivery: put back what was read, unless an attempt
        // has moved the delivery on since.
        if let Err(revert) = store.replace_delivery(read, &delivery, now).await {
            tracing::error!(tenant_id = %read.tenant_id, delivery_id = %read.id, error = %revert,
                "a redelivery that was not queued stays pending");
        }
        return Err(error);
    }
    Ok(delivery)
}

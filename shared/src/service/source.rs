//! The event a delivery was made from, as the event log keeps it: what a redelivery and a
//! swept attempt send, so a later attempt carries the content the first one did.

use crate::delivery::{is_delivery_of, Delivery};
use crate::error::{Error, Result};
use crate::event::EventEnvelope;
use crate::queue::Message;
use crate::store::Store;

/// The accepted envelope this delivery was made from, while the event log keeps it. `None`
/// once it is gone, or replaced by a later post of the same event id after the dedupe window:
/// the delivery's id names the acceptance it came from, and another's content is never sent
/// under it.
pub async fn source_envelope(
    store: &dyn Store,
    delivery: &Delivery,
) -> Result<Option<EventEnvelope>> {
    let Some(text) = store
        .get_event(&delivery.tenant_id, &delivery.event_id)
        .await?
    else {
        return Ok(None);
    };
    let message = Message::decode(&text)
        .map_err(|e| Error::Store(format!("unreadable stored event: {e}")))?;
    let envelope = message.envelope();
    Ok(
        is_delivery_of(&delivery.id, envelope.envelope_id, &delivery.webhook_id)
            .then(|| envelope.clone()),
    )
}

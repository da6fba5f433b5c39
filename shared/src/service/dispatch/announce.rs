//! Telling an operational event (`crate::operational`): into the tenant's own pipeline, as an
//! accepted event, only when one of its webhooks subscribes to it.

use super::*;
use crate::service::ingest::Ingest;

impl Dispatcher {
    /// Accepts `event` for the tenant as ingest accepts an unnamed post (kept, then queued), so
    /// fan-out, formats, signing, retries, the log and redelivery treat it as any other event.
    /// Nothing is written when no webhook but the one concerned would receive it: a tenant
    /// that subscribes to no operational event pays one read per transition, not a write.
    /// Advisory: the transition it tells is already stored, so a failure is logged, not raised.
    pub(super) async fn announce(&self, tenant_id: &str, event: Event) {
        let wanted = match self.store.subscribed_webhooks(tenant_id).await {
            Ok(webhooks) => webhooks.iter().any(|w| webhook_matches(w, &event)),
            Err(e) => {
                tracing::warn!(tenant_id, event_type = %event.event_type, error = %e, "could not read who subscribes to an operational event");
                return;
            }
        };
        if !wanted {
            return;
        }
        let event_type = event.event_type.clone();
        let ingest = Ingest::new(self.store.clone(), self.queue.clone());
        match ingest
            .accept_new(tenant_id, event, OffsetDateTime::now_utc())
            .await
        {
            Ok(accepted) => {
                tracing::info!(tenant_id, event_type = %event_type, event_id = %accepted.id, "operational event emitted")
            }
            Err(e) => {
                tracing::warn!(tenant_id, event_type = %event_type, error = %e, "could not emit an operational event")
            }
        }
    }
}

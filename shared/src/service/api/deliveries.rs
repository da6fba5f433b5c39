//! The delivery log, and redelivery.

use super::*;
use crate::service::restart::restart;

/// A delivery as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub webhook_id: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<crate::delivery::Attempt>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        DeliveryView {
            id: d.id.to_string(),
            event_id: d.event_id.to_string(),
            event_type: d.event_type.to_string(),
            webhook_id: d.webhook_id.to_string(),
            status: d.status,
            attempts: d.attempts.clone(),
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
        }
    }
}

/// The most a page of the delivery log carries, in JSON bytes: well under the 6 MB a Lambda
/// response may be. A page of large deliveries stops short of its limit and says there is more.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// How many of `deliveries`, from the first, fit `budget` bytes as the API writes them; at
/// least one, so a page always moves on.
fn within_bytes(deliveries: &[Delivery], budget: usize) -> usize {
    use bytes::BufMut;
    let mut used = 0;
    for (i, d) in deliveries.iter().enumerate() {
        // Written as the route's `Json` answer writes a delivery (into a `BytesMut` writer), so
        // this measure shares that serializer's code rather than adding a copy of it.
        let mut json = bytes::BytesMut::new().writer();
        used += serde_json::to_writer(&mut json, &DeliveryView::from(d))
            .map_or(0, |()| json.get_ref().len())
            + 1;
        if used > budget {
            return i.max(1);
        }
    }
    deliveries.len()
}

impl Api {
    pub async fn list_deliveries(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Listing<DeliveryView>> {
        let limit = page_limit(limit)?;
        let before = cursor.map(|c| decode_cursor(c, "dl_")).transpose()?;
        self.webhook(tenant_id, webhook_id).await?;
        let mut page = self
            .store
            .list_deliveries(tenant_id, webhook_id, limit, before.as_deref())
            .await?;
        let fits = within_bytes(&page.items, MAX_PAGE_BYTES);
        if fits < page.items.len() {
            page.items.truncate(fits);
            page.more = true;
        }
        Ok(Listing::from_page(
            &page,
            |d| &d.id,
            |d| DeliveryView::from(d),
        ))
    }

    pub async fn get_delivery(&self, tenant_id: &str, id: &str) -> Result<Delivery> {
        self.store
            .get_delivery(tenant_id, id)
            .await?
            .ok_or(Error::NotFound("delivery"))
    }

    /// Queues a new attempt of a delivery (to its webhook as it is configured now).
    pub async fn redeliver(&self, tenant_id: &str, id: &str) -> Result<Delivery> {
        let read = self.get_delivery(tenant_id, id).await?;
        let webhook = self
            .store
            .get_webhook(tenant_id, &read.webhook_id)
            .await?
            .ok_or_else(|| Error::Conflict("the delivery's webhook has been deleted".into()))?;
        if !webhook.spec.enabled {
            return Err(Error::Conflict(
                "the webhook is disabled; enable it first".into(),
            ));
        }
        let delivery = restart(self.store.as_ref(), self.queue.as_ref(), &read, &webhook).await?;
        tracing::info!(tenant_id, delivery_id = id, "redelivery queued");
        Ok(delivery)
    }
}

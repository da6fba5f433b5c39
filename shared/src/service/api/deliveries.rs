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

/// Log pages of `MAX_PAGE` a listing filtered by status reads at most before it answers: a
/// status that few deliveries are in answers a short (even empty) page and a cursor to go on
/// from, rather than reading the whole log in one request.
pub const FILTER_SCAN_PAGES: usize = 5;

/// A delivery status asked for in a query string.
fn status_param(status: &str) -> Result<DeliveryStatus> {
    DeliveryStatus::parse(status).ok_or_else(|| {
        Error::Validation(vec![crate::FieldError::new(
            "status",
            "must be a delivery status",
        )
        .with_valid(DeliveryStatus::names())])
    })
}

impl Api {
    /// A page of the webhook's log, newest first; with `status`, only deliveries in it.
    pub async fn list_deliveries(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        limit: Option<&str>,
        cursor: Option<&str>,
        status: Option<&str>,
    ) -> Result<Listing<DeliveryView>> {
        let limit = page_limit(limit)?;
        let before = cursor.map(|c| decode_cursor(c, "dl_")).transpose()?;
        let status = status.map(status_param).transpose()?;
        self.webhook(tenant_id, webhook_id).await?;
        let (mut items, mut resume) = match status {
            None => {
                let page = self
                    .store
                    .list_deliveries(tenant_id, webhook_id, limit, before.as_deref())
                    .await?;
                let last = page.items.last().map(|d| d.id.to_string());
                (page.items, last.filter(|_| page.more))
            }
            Some(status) => {
                self.deliveries_in(tenant_id, webhook_id, status, limit, before)
                    .await?
            }
        };
        let fits = within_bytes(&items, MAX_PAGE_BYTES);
        if fits < items.len() {
            items.truncate(fits);
            resume = items.last().map(|d| d.id.to_string());
        }
        Ok(Listing {
            data: items.iter().map(DeliveryView::from).collect(),
            next_cursor: resume.as_deref().map(encode_cursor),
        })
    }

    /// Up to `limit` of the webhook's deliveries in `status`, older than `before`, read from at
    /// most `FILTER_SCAN_PAGES` pages of the log; and, when the log goes on past them, the id of
    /// the last delivery read, matched or not, which the next page starts after.
    async fn deliveries_in(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        status: DeliveryStatus,
        limit: usize,
        mut before: Option<String>,
    ) -> Result<(Vec<Delivery>, Option<String>)> {
        let mut items = Vec::new();
        for _ in 0..FILTER_SCAN_PAGES {
            let page = self
                .store
                .list_deliveries(tenant_id, webhook_id, MAX_PAGE, before.as_deref())
                .await?;
            let mut rest = page.items.into_iter();
            for d in rest.by_ref() {
                before = Some(d.id.to_string());
                if d.status == status {
                    items.push(d);
                    if items.len() == limit {
                        break;
                    }
                }
            }
            let left = rest.len() > 0 || page.more;
            if items.len() == limit || !left {
                return Ok((items, before.filter(|_| left)));
            }
        }
        Ok((items, before))
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

//! Deliveries: one item each, with the attributes their conditional writes read, and the `GSI1` log per webhook.

use super::*;
use crate::store::DeliveryStore;

impl DynamoStore {
    /// The whole delivery record, with the attributes lease conditions read kept outside `doc`.
    fn delivery_put(&self, delivery: &Delivery) -> PutItemFluentBuilder {
        let expires = delivery.created_at.unix_timestamp() + DELIVERY_RETENTION_SECS;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(format!("D#{}", delivery.id)))
            .item("SK", s("D"))
            .item("GSI1PK", s(format!("W#{}", delivery.webhook_id)))
            .item("GSI1SK", s(format!("D#{}", delivery.id)))
            .item("tenant_id", s(&*delivery.tenant_id))
            .item("status", s(delivery.status.as_str()))
            .item("attempt_count", n(delivery.attempts.len() as i64))
            .item("expires_at", n(expires))
            .item("doc", to_doc(delivery));
        let put = match delivery.sweep_at {
            Some(at) => put
                .item("sweep_pk", s(sweep_shard(&delivery.id)))
                .item("sweep_at", n(unix_ms(at))),
            None => put,
        };
        match delivery.leased_until {
            Some(until) => put.item("leased_until", n(unix_ms(until))),
            None => put,
        }
    }
}

/// The sweep index partition of a delivery: a stable hash of its id.
fn sweep_shard(id: &str) -> String {
    let hash = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("S#{}", hash % SWEEP_SHARDS)
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn put_delivery(&self, delivery: &Delivery) -> Result<()> {
        self.delivery_put(delivery)
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn lease_delivery(&self, delivery: &Delivery, now: OffsetDateTime) -> Result<bool> {
        let put = self
            .delivery_put(delivery)
            .condition_expression(
                "attribute_not_exists(PK) OR (tenant_id = :tenant AND attempt_count = :count \
                 AND #status <> :succeeded AND #status <> :failed \
                 AND (attribute_not_exists(leased_until) OR leased_until <= :now))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":tenant", s(&*delivery.tenant_id))
            .expression_attribute_values(":count", n(delivery.attempts.len() as i64))
            .expression_attribute_values(":succeeded", s(DeliveryStatus::Succeeded.as_str()))
            .expression_attribute_values(":failed", s(DeliveryStatus::Failed.as_str()))
            .expression_attribute_values(":now", n(unix_ms(now)))
            .send()
            .await;
        written(put)
    }

    async fn replace_delivery(
        &self,
        delivery: &Delivery,
        read: &Delivery,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let put = self
            .delivery_put(delivery)
            .condition_expression(
                "tenant_id = :tenant AND attempt_count = :count AND #status = :status \
                 AND (attribute_not_exists(leased_until) OR leased_until <= :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":tenant", s(&*read.tenant_id))
            .expression_attribute_values(":count", n(read.attempts.len() as i64))
            .expression_attribute_values(":status", s(read.status.as_str()))
            .expression_attribute_values(":now", n(unix_ms(now)))
            .send()
            .await;
        written(put)
    }

    async fn get_delivery(&self, tenant_id: &str, id: &str) -> Result<Option<Delivery>> {
        let Some(item) = self.get(format!("D#{id}"), "D").await? else {
            return Ok(None);
        };
        let delivery: Delivery = doc(&item)?;
        Ok((*delivery.tenant_id == *tenant_id).then_some(delivery))
    }

    async fn due_for_sweep(&self, before: OffsetDateTime, limit: usize) -> Result<Vec<Delivery>> {
        let shards = (0..SWEEP_SHARDS).map(|shard| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(SWEEP_INDEX)
                .key_condition_expression("sweep_pk = :pk AND sweep_at <= :before")
                .expression_attribute_values(":pk", s(format!("S#{shard}")))
                .expression_attribute_values(":before", n(unix_ms(before)))
                .limit(limit as i32)
                .send()
        });
        let mut keys = Vec::new();
        for page in futures::future::join_all(shards).await {
            for item in page.map_err(store_err)?.items.unwrap_or_default() {
                let at = item
                    .get("sweep_at")
                    .and_then(|v| v.as_n().ok()?.parse::<i64>().ok());
                if let (Some(Ok(pk)), Some(at)) = (item.get("PK").map(|v| v.as_s()), at) {
                    keys.push((at, pk.clone()));
                }
            }
        }
        keys.sort_unstable();
        keys.truncate(limit);
        // The index holds keys only: each delivery is read whole, and as it is now.
        let reads = keys.into_iter().map(|(_, pk)| self.get(pk, "D"));
        let mut due = Vec::new();
        for item in futures::future::join_all(reads).await {
            if let Some(item) = item? {
                due.push(doc::<Delivery>(&item)?);
            }
        }
        Ok(due)
    }

    async fn list_deliveries(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Page<Delivery>> {
        let gsi_pk = format!("W#{webhook_id}");
        let start = before.map(|b| {
            HashMap::from([
                ("PK".to_string(), s(format!("D#{b}"))),
                ("SK".to_string(), s("D")),
                ("GSI1PK".to_string(), s(&gsi_pk)),
                ("GSI1SK".to_string(), s(format!("D#{b}"))),
            ])
        });
        let (items, more_in_table) = self
            .query(
                || {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .index_name(GSI1)
                        .key_condition_expression("GSI1PK = :pk")
                        .expression_attribute_values(":pk", s(&gsi_pk))
                        .scan_index_forward(false)
                },
                limit + 1,
                start,
            )
            .await?;
        let mut deliveries = items
            .iter()
            .map(doc)
            .collect::<Result<Vec<Delivery>>>()?
            .into_iter()
            .filter(|d| *d.tenant_id == *tenant_id)
            .collect::<Vec<_>>();
        let more = deliveries.len() > limit || (deliveries.len() == limit && more_in_table);
        deliveries.truncate(limit);
        Ok(Page {
            items: deliveries,
            more,
        })
    }
}

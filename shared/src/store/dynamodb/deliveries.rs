//! Deliveries: one item each, with the attributes their conditional writes read and, while an
//! attempt is left, the keys of `SWEEP`. A delivery whose id names its webhook is kept under
//! the webhook's log partition (`W#<webhook>#<shard>`, sorted by id): the table is the log, and
//! no index entry is written for it. One whose id names none (made before ids named their
//! webhook) is kept by id, `D#<id>`, and listed through the keys-only `LOG` index.

use super::*;
use crate::delivery::webhook_of;
use crate::store::{DeliveryStore, SweepIndex};

impl DynamoStore {
    /// The whole delivery record, with the attributes lease conditions read kept outside `doc`.
    fn delivery_put(&self, delivery: &Delivery) -> PutItemFluentBuilder {
        let expires = delivery.created_at.unix_timestamp() + DELIVERY_RETENTION_SECS;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(delivery_key(&delivery.id)));
        let put = match webhook_of(&delivery.id) {
            Some(_) => put,
            None => put
                .item(
                    "log_pk",
                    s(log_partition(&delivery.webhook_id, &delivery.id)),
                )
                .item("log_sk", s(&*delivery.id)),
        };
        let put = put
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

/// A stable hash of a delivery id, which picks its partition in each sharded index.
fn id_hash(id: &str) -> u32 {
    id.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
}

fn sweep_shard(id: &str) -> String {
    format!("S#{}", id_hash(id) % SWEEP_SHARDS)
}

fn log_shard(webhook_id: &str, shard: u32) -> String {
    format!("W#{webhook_id}#{shard}")
}

fn log_partition(webhook_id: &str, id: &str) -> String {
    log_shard(webhook_id, id_hash(id) % LOG_SHARDS)
}

/// The table key of a delivery item, as partition and sort key: under its webhook's log
/// partition when its id names the webhook, by id otherwise.
fn delivery_keys(id: &str) -> (String, String) {
    match webhook_of(id) {
        Some(webhook) => (log_partition(&webhook, id), id.to_string()),
        None => (format!("D#{id}"), "D".to_string()),
    }
}

fn delivery_key(id: &str) -> Item {
    let (pk, sk) = delivery_keys(id);
    HashMap::from([("PK".to_string(), s(pk)), ("SK".to_string(), s(sk))])
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

    async fn create_delivery(&self, delivery: &Delivery) -> Result<bool> {
        let put = self
            .delivery_put(delivery)
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        written(put)
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
        let (pk, sk) = delivery_keys(id);
        let Some(item) = self.get(pk, &sk).await? else {
            return Ok(None);
        };
        let delivery: Delivery = doc(&item)?;
        Ok((*delivery.tenant_id == *tenant_id).then_some(delivery))
    }

    async fn list_deliveries(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Page<Delivery>> {
        // Each shard's newest `limit + 1` ids, merged: the page's ids and whether more exist.
        // A shard holds the deliveries kept in it (the table's own partition, its sort key the
        // id) and lists those kept by id (the `LOG` index's partition of the same name). One
        // query after another through the one query helper, as the sweep reads its index.
        let sources = [(None, "PK", "SK"), (Some(LOG_INDEX), "log_pk", "log_sk")];
        let mut ids = Vec::new();
        for shard in 0..LOG_SHARDS {
            for (index, pk_name, sk_name) in sources {
                let (items, _) = self
                    .query(
                        || {
                            let query = self
                                .client
                                .query()
                                .table_name(&self.table)
                                .set_index_name(index.map(String::from))
                                .projection_expression("#sk")
                                .expression_attribute_names("#pk", pk_name)
                                .expression_attribute_names("#sk", sk_name)
                                .expression_attribute_values(":pk", s(log_shard(webhook_id, shard)))
                                .scan_index_forward(false);
                            match before {
                                Some(b) => query
                                    .key_condition_expression("#pk = :pk AND #sk < :before")
                                    .expression_attribute_values(":before", s(b)),
                                None => query.key_condition_expression("#pk = :pk"),
                            }
                        },
                        limit + 1,
                        None,
                    )
                    .await?;
                for item in items {
                    if let Some(Ok(id)) = item.get(sk_name).map(|v| v.as_s()) {
                        ids.push(id.clone());
                    }
                }
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let more = ids.len() > limit;
        ids.truncate(limit);
        let items = self
            .batch_get(ids.iter().map(|id| delivery_key(id)).collect())
            .await?;
        let mut deliveries = items
            .iter()
            .map(doc)
            .collect::<Result<Vec<Delivery>>>()?
            .into_iter()
            .filter(|d| *d.tenant_id == *tenant_id)
            .collect::<Vec<_>>();
        deliveries.sort_unstable_by(|a, b| b.id.cmp(&a.id));
        Ok(Page {
            items: deliveries,
            more,
        })
    }
}

#[async_trait]
impl SweepIndex for DynamoStore {
    async fn due_for_sweep(&self, before: OffsetDateTime, limit: usize) -> Result<Vec<Delivery>> {
        // The shards one after another, through the one query helper: a few milliseconds more
        // every five minutes, and no second copy of the SDK's query code in every binary.
        let mut keys = Vec::new();
        for shard in 0..SWEEP_SHARDS {
            let (items, _) = self
                .query(
                    || {
                        self.client
                            .query()
                            .table_name(&self.table)
                            .index_name(SWEEP_INDEX)
                            .key_condition_expression("sweep_pk = :pk AND sweep_at <= :before")
                            .expression_attribute_values(":pk", s(format!("S#{shard}")))
                            .expression_attribute_values(":before", n(unix_ms(before)))
                    },
                    limit,
                    None,
                )
                .await?;
            for item in items {
                let at = item
                    .get("sweep_at")
                    .and_then(|v| v.as_n().ok()?.parse::<i64>().ok());
                if let (Some(pk), Some(sk), Some(at)) = (item.get("PK"), item.get("SK"), at) {
                    let key = HashMap::from([
                        ("PK".to_string(), pk.clone()),
                        ("SK".to_string(), sk.clone()),
                    ]);
                    keys.push((at, key));
                }
            }
        }
        keys.sort_unstable_by_key(|(at, _)| *at);
        keys.truncate(limit);
        // The index holds keys only: each delivery is read whole, and as it is now.
        let items = self
            .batch_get(keys.into_iter().map(|(_, key)| key).collect())
            .await?;
        let mut due = items.iter().map(doc).collect::<Result<Vec<Delivery>>>()?;
        due.sort_unstable_by_key(|d| d.sweep_at);
        Ok(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhooks_log_and_the_sweep_spread_over_every_shard() {
        let ids: Vec<String> = (0..64u64)
            .map(|i| format!("dl_{}", ulid::Ulid::from_parts(1_796_000_000_000 + i, 7)))
            .collect();
        let logs: std::collections::BTreeSet<_> =
            ids.iter().map(|id| log_partition("wh_a", id)).collect();
        assert_eq!(logs.len(), LOG_SHARDS as usize, "{logs:?}");
        let sweeps: std::collections::BTreeSet<_> = ids.iter().map(|id| sweep_shard(id)).collect();
        assert_eq!(sweeps.len(), SWEEP_SHARDS as usize, "{sweeps:?}");
    }
}

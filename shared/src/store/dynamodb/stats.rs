//! A webhook's counts per hour: one small item an hour (`S#<tenant>#<webhook>` / the hour),
//! added to with `ADD`, so concurrent batches never overwrite each other's counts.

use super::*;
use crate::stats::{Counts, STATS_RETENTION};
use crate::store::StatsStore;

fn partition(tenant_id: &str, webhook_id: &str) -> String {
    format!("S#{tenant_id}#{webhook_id}")
}

/// An hour as a sort key: its epoch seconds, zero-padded so text order is time order.
fn sort_key(hour: OffsetDateTime) -> String {
    format!("{:012}", hour.unix_timestamp())
}

fn count(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[async_trait]
impl StatsStore for DynamoStore {
    async fn add_counts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        hour: OffsetDateTime,
        counts: &Counts,
    ) -> Result<()> {
        let expires = (hour + STATS_RETENTION).unix_timestamp();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(partition(tenant_id, webhook_id)))
            .key("SK", s(sort_key(hour)))
            .update_expression(
                "ADD succeeded :s, retried :r, failed :f, held :h SET expires_at = :e",
            )
            .expression_attribute_values(":s", n(counts.succeeded as i64))
            .expression_attribute_values(":r", n(counts.retried as i64))
            .expression_attribute_values(":f", n(counts.failed as i64))
            .expression_attribute_values(":h", n(counts.held as i64))
            .expression_attribute_values(":e", n(expires))
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn counts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, Counts)>> {
        let (items, _) = self
            .query(
                || {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("PK = :pk AND SK >= :since")
                        .expression_attribute_values(":pk", s(partition(tenant_id, webhook_id)))
                        .expression_attribute_values(":since", s(sort_key(since)))
                },
                // An hour an item: a week's window is 168 at most.
                1000,
                None,
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let hour = item.get("SK")?.as_s().ok()?.parse::<i64>().ok()?;
                let hour = OffsetDateTime::from_unix_timestamp(hour).ok()?;
                let counts = Counts {
                    succeeded: count(item, "succeeded"),
                    retried: count(item, "retried"),
                    failed: count(item, "failed"),
                    held: count(item, "held"),
                };
                Some((hour, counts))
            })
            .collect())
    }
}

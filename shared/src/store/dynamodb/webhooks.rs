//! Webhooks under their tenant, and the tenant's webhook count that holds the limit.

use super::*;
use crate::store::WebhookStore;

/// The sort key of a tenant's webhook count (beside its webhooks, outside their `WH#` range).
const WEBHOOK_COUNT: &str = "COUNT#WH";

fn webhook_item(webhook: &Webhook) -> Item {
    HashMap::from([
        ("PK".to_string(), s(format!("T#{}", webhook.tenant_id))),
        ("SK".to_string(), s(format!("WH#{}", webhook.id))),
        (
            "enabled".to_string(),
            AttributeValue::Bool(webhook.spec.enabled),
        ),
        ("revision".to_string(), n(webhook.revision as i64)),
        ("doc".to_string(), to_doc(webhook)),
    ])
}

fn number_of(item: &Item, name: &str) -> Result<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Store(format!("item without a number {name}")))
}

impl DynamoStore {
    /// The put of a webhook item, `revision` kept beside `doc` for the conditions that read it.
    fn webhook_put(&self, webhook: &Webhook) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(webhook_item(webhook)))
    }

    /// The tenant's webhook count, `None` before its first create under counting. Seeded from
    /// the webhooks themselves (a conditional put, so two seeds agree) when absent.
    async fn webhook_count(&self, tenant_id: &str) -> Result<i64> {
        if let Some(item) = self.get(format!("T#{tenant_id}"), WEBHOOK_COUNT).await? {
            return number_of(&item, "n");
        }
        let count = self.count_webhooks(tenant_id).await? as i64;
        let seed = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(format!("T#{tenant_id}")))
            .item("SK", s(WEBHOOK_COUNT))
            .item("n", n(count))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        if written(seed)? {
            Ok(count)
        } else {
            let item = self.get(format!("T#{tenant_id}"), WEBHOOK_COUNT).await?;
            number_of(&item.unwrap_or_default(), "n")
        }
    }

    /// The count item's change by `by`, under `condition` when given.
    fn count_change(&self, tenant_id: &str, by: i64, condition: Option<(&str, i64)>) -> Update {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(format!("T#{tenant_id}")))
            .key("SK", s(WEBHOOK_COUNT))
            .update_expression("ADD n :by")
            .expression_attribute_values(":by", n(by));
        if let Some((expression, max)) = condition {
            update = update
                .condition_expression(expression)
                .expression_attribute_values(":max", n(max));
        }
        update.build().expect("table, key and expression are set")
    }
}

#[async_trait]
impl WebhookStore for DynamoStore {
    async fn create_webhook(&self, webhook: &Webhook, max: usize) -> Result<bool> {
        // The count and the webhook in one transaction: concurrent creates cannot both pass
        // the limit, and a failed create leaves the count as it was.
        self.webhook_count(&webhook.tenant_id).await?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(webhook_item(webhook)))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("table and item are set");
        let created = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .update(self.count_change(&webhook.tenant_id, 1, Some(("n < :max", max))))
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match created {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se))
                if se.err().code() == Some("TransactionCanceledException") =>
            {
                let reasons = match se.err() {
                    TransactWriteItemsError::TransactionCanceledException(e) => {
                        e.cancellation_reasons().to_vec()
                    }
                    _ => Vec::new(),
                };
                let failed = |i: usize| {
                    reasons
                        .get(i)
                        .and_then(|r| r.code())
                        .is_some_and(|c| c == "ConditionalCheckFailed")
                };
                if failed(1) {
                    Err(Error::Conflict(format!("webhook {} exists", webhook.id)))
                } else if failed(0) {
                    Ok(false)
                } else {
                    Err(Error::Store(format!(
                        "webhook create cancelled: {:?}",
                        reasons.iter().map(|r| r.code()).collect::<Vec<_>>()
                    )))
                }
            }
            Err(e) => Err(store_err(e)),
        }
    }

    async fn get_webhook(&self, tenant_id: &str, id: &str) -> Result<Option<Webhook>> {
        self.get(format!("T#{tenant_id}"), &format!("WH#{id}"))
            .await?
            .map(|item| doc(&item))
            .transpose()
    }

    async fn update_webhook(&self, webhook: &Webhook) -> Result<bool> {
        let next = Webhook {
            revision: webhook.revision + 1,
            ..webhook.clone()
        };
        // Items written before revisions were counted have no attribute: they are revision 0.
        let condition = if webhook.revision == 0 {
            "attribute_exists(PK) AND (attribute_not_exists(revision) OR revision = :read)"
        } else {
            "revision = :read"
        };
        let put = self
            .webhook_put(&next)
            .condition_expression(condition)
            .expression_attribute_values(":read", n(webhook.revision as i64))
            .send()
            .await;
        written(put)
    }

    async fn count_webhooks(&self, tenant_id: &str) -> Result<usize> {
        let mut count = 0usize;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :wh)")
                .expression_attribute_values(":pk", s(format!("T#{tenant_id}")))
                .expression_attribute_values(":wh", s("WH#"))
                .select(Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_err)?;
            count += out.count as usize;
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(count),
            }
        }
    }

    async fn list_webhooks(
        &self,
        tenant_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Webhook>> {
        let pk = format!("T#{tenant_id}");
        let start = after.map(|a| {
            HashMap::from([
                ("PK".to_string(), s(&pk)),
                ("SK".to_string(), s(format!("WH#{a}"))),
            ])
        });
        let (items, more_in_table) = self
            .query(
                || {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("PK = :pk AND begins_with(SK, :wh)")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":wh", s("WH#"))
                        .consistent_read(true)
                },
                limit + 1,
                start,
            )
            .await?;
        let mut webhooks = items.iter().map(doc).collect::<Result<Vec<Webhook>>>()?;
        let more = webhooks.len() > limit || (webhooks.len() == limit && more_in_table);
        webhooks.truncate(limit);
        Ok(Page {
            items: webhooks,
            more,
        })
    }

    async fn subscribed_webhooks(&self, tenant_id: &str) -> Result<Vec<Webhook>> {
        let pk = format!("T#{tenant_id}");
        let (items, _) = self
            .query(
                || {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("PK = :pk AND begins_with(SK, :wh)")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":wh", s("WH#"))
                },
                usize::MAX,
                None,
            )
            .await?;
        items.iter().map(doc).collect()
    }

    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<bool> {
        // The count exists from here on (seeded if need be), so taking one off it is exact.
        self.webhook_count(tenant_id).await?;
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(format!("T#{tenant_id}")))
            .key("SK", s(format!("WH#{id}")))
            .condition_expression("attribute_exists(PK)")
            .build()
            .expect("table and key are set");
        let deleted = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(
                TransactWriteItem::builder()
                    .update(self.count_change(tenant_id, -1, None))
                    .build(),
            )
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(true),
            // The webhook's own condition is the only one: it was not there.
            Err(SdkError::ServiceError(se))
                if se.err().code() == Some("TransactionCanceledException") =>
            {
                Ok(false)
            }
            Err(e) => Err(store_err(e)),
        }
    }
}

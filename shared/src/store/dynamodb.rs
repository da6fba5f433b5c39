//! The DynamoDB store: one table, generic keys (README "DynamoDB key design").
//!
//! | item            | PK                      | SK          | GSI1PK          | GSI1SK      |
//! |-----------------|-------------------------|-------------|-----------------|-------------|
//! | tenant          | `T#<tenant>`            | `TENANT`    |                 |             |
//! | webhook         | `T#<tenant>`            | `WH#<id>`   |                 |             |
//! | API key         | `K#<sha256 of key>`     | `KEY`       |                 |             |
//! | key by id       | `T#<tenant>`            | `KEY#<id>`  |                 |             |
//! | delivery        | `D#<id>`                | `D`         | `W#<webhook>`   | `D#<id>`    |
//! | accepted event  | `E#<tenant>#<event id>` | `E`         |                 |             |
//!
//! Webhooks and deliveries are stored whole as JSON in `doc`; `expires_at` (epoch seconds) is the
//! table's TTL attribute. A delivery also keeps `attempt_count` and `leased_until` (epoch ms)
//! as attributes, for the conditional write that leases an attempt.

use super::{ApiKey, Page, Store, Tenant};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Error, Result};
use crate::webhook::Webhook;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType,
    Select, TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use time::OffsetDateTime;

/// How long delivery records are kept (SPEC §4: listed for 30 days).
const DELIVERY_RETENTION_SECS: i64 = 30 * 86_400;
/// Accepted events are kept as long as their deliveries, so any delivery can be redelivered.
const EVENT_RETENTION_SECS: i64 = DELIVERY_RETENTION_SECS;
pub const GSI1: &str = "GSI1";

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn store_err<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> Error {
    let detail = crate::aws_error::detail(&e);
    tracing::warn!(error = %detail, "dynamodb call failed");
    Error::Store(detail)
}

/// A conditional write's answer: `true` when written, `false` when its condition failed.
fn written<T, E, R>(result: std::result::Result<T, SdkError<E, R>>) -> Result<bool>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(se))
            if se.err().code() == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(store_err(e)),
    }
}

fn doc<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T> {
    let text = item
        .get("doc")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| Error::Store("item without doc".into()))?;
    serde_json::from_str(text).map_err(|e| Error::Store(format!("unreadable item: {e}")))
}

fn to_doc<T: serde::Serialize>(value: &T) -> AttributeValue {
    s(serde_json::to_string(value).expect("domain types serialize"))
}

/// Milliseconds since the epoch: how lease times are compared in conditions.
fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

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
        match delivery.leased_until {
            Some(until) => put.item("leased_until", n(unix_ms(until))),
            None => put,
        }
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (with GSI1 and TTL) when it does not exist: for the local stack and
    /// tests. In AWS the SAM template owns the table.
    pub async fn ensure_table(&self) -> Result<()> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => {}
            Err(e) => return Err(store_err(e)),
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("complete attribute definition")
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .expect("complete key schema")
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("PK"))
            .attribute_definitions(attr("SK"))
            .attribute_definitions(attr("GSI1PK"))
            .attribute_definitions(attr("GSI1SK"))
            .key_schema(key("PK", KeyType::Hash))
            .key_schema(key("SK", KeyType::Range))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(GSI1)
                    .key_schema(key("GSI1PK", KeyType::Hash))
                    .key_schema(key("GSI1SK", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .expect("complete index"),
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another process created it first.
            Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
            Err(e) => return Err(store_err(e)),
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("expires_at")
                    .build()
                    .expect("complete TTL specification"),
            )
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", s(pk))
            .key("SK", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err)?;
        Ok(out.item)
    }

    /// Writes a webhook item if `condition` holds; `false` when it does not.
    async fn put_webhook(&self, webhook: &Webhook, condition: &str) -> Result<bool> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(format!("T#{}", webhook.tenant_id)))
            .item("SK", s(format!("WH#{}", webhook.id)))
            .item("enabled", AttributeValue::Bool(webhook.enabled))
            .item("doc", to_doc(webhook))
            .condition_expression(condition)
            .send()
            .await;
        written(put)
    }

    /// Runs a query page by page until `want` items or the end, so 1 MB pages never shorten a
    /// listing. Returns the items and whether the table holds more.
    async fn query(
        &self,
        build: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        want: usize,
        mut start: Option<Item>,
    ) -> Result<(Vec<Item>, bool)> {
        let mut items = Vec::new();
        loop {
            let out = build()
                .set_exclusive_start_key(start.take())
                .limit((want - items.len()).min(1000) as i32)
                .send()
                .await
                .map_err(store_err)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(lek) if items.len() < want => start = Some(lek),
                Some(_) => return Ok((items, true)),
                None => return Ok((items, false)),
            }
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(format!("T#{}", tenant.id)))
            .item("SK", s("TENANT"))
            .item("doc", to_doc(tenant))
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn put_api_key(&self, key: &ApiKey) -> Result<()> {
        // Two items written together: by hash (authentication) and by id under the tenant
        // (revocation), so neither can exist without the other.
        let by_hash = Put::builder()
            .table_name(&self.table)
            .item("PK", s(format!("K#{}", key.hash)))
            .item("SK", s("KEY"))
            .item("key_id", s(&key.id))
            .item("tenant_id", s(&key.tenant_id))
            .item("created_at", n(key.created_at.unix_timestamp()))
            .build()
            .expect("table and item are set");
        let by_id = Put::builder()
            .table_name(&self.table)
            .item("PK", s(format!("T#{}", key.tenant_id)))
            .item("SK", s(format!("KEY#{}", key.id)))
            .item("hash", s(&key.hash))
            .item("created_at", n(key.created_at.unix_timestamp()))
            .build()
            .expect("table and item are set");
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(by_hash).build())
            .transact_items(TransactWriteItem::builder().put(by_id).build())
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn delete_api_key(&self, tenant_id: &str, key_id: &str) -> Result<bool> {
        let Some(item) = self
            .get(format!("T#{tenant_id}"), &format!("KEY#{key_id}"))
            .await?
        else {
            return Ok(false);
        };
        let hash = item
            .get("hash")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| Error::Store("key item without hash".into()))?;
        let delete = |pk: String, sk: String| {
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .key("PK", s(pk))
                        .key("SK", s(sk))
                        .build()
                        .expect("table and key are set"),
                )
                .build()
        };
        self.client
            .transact_write_items()
            .transact_items(delete(format!("K#{hash}"), "KEY".into()))
            .transact_items(delete(format!("T#{tenant_id}"), format!("KEY#{key_id}")))
            .send()
            .await
            .map_err(store_err)?;
        Ok(true)
    }

    async fn tenant_for_key(&self, key_hash: &str) -> Result<Option<String>> {
        Ok(self
            .get(format!("K#{key_hash}"), "KEY")
            .await?
            .and_then(|item| item.get("tenant_id")?.as_s().ok().cloned()))
    }

    async fn create_webhook(&self, webhook: &Webhook) -> Result<()> {
        if self
            .put_webhook(webhook, "attribute_not_exists(PK)")
            .await?
        {
            Ok(())
        } else {
            Err(Error::Conflict(format!("webhook {} exists", webhook.id)))
        }
    }

    async fn get_webhook(&self, tenant_id: &str, id: &str) -> Result<Option<Webhook>> {
        self.get(format!("T#{tenant_id}"), &format!("WH#{id}"))
            .await?
            .map(|item| doc(&item))
            .transpose()
    }

    async fn update_webhook(&self, webhook: &Webhook) -> Result<bool> {
        self.put_webhook(webhook, "attribute_exists(PK)").await
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

    async fn enabled_webhooks(&self, tenant_id: &str) -> Result<Vec<Webhook>> {
        let pk = format!("T#{tenant_id}");
        let (items, _) = self
            .query(
                || {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("PK = :pk AND begins_with(SK, :wh)")
                        .filter_expression("enabled = :true")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":wh", s("WH#"))
                        .expression_attribute_values(":true", AttributeValue::Bool(true))
                },
                usize::MAX,
                None,
            )
            .await?;
        items.iter().map(doc).collect()
    }

    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(format!("T#{tenant_id}")))
            .key("SK", s(format!("WH#{id}")))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_err)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

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

    async fn get_delivery(&self, tenant_id: &str, id: &str) -> Result<Option<Delivery>> {
        let Some(item) = self.get(format!("D#{id}"), "D").await? else {
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

    async fn claim_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        envelope: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        // The dedupe window is checked by value: TTL deletion lags, and the item outlives the
        // window anyway (it holds the event for redelivery).
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(format!("E#{tenant_id}#{event_id}")))
            .item("SK", s("E"))
            .item("envelope", s(envelope))
            .item("dedupe_until", n(until.unix_timestamp()))
            .item("expires_at", n(now.unix_timestamp() + EVENT_RETENTION_SECS))
            .condition_expression("attribute_not_exists(PK) OR dedupe_until <= :now")
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        written(put)
    }

    async fn get_event(&self, tenant_id: &str, event_id: &str) -> Result<Option<String>> {
        Ok(self
            .get(format!("E#{tenant_id}#{event_id}"), "E")
            .await?
            .and_then(|item| item.get("envelope")?.as_s().ok().cloned()))
    }

    async fn release_event_id(&self, tenant_id: &str, event_id: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(format!("E#{tenant_id}#{event_id}")))
            .key("SK", s("E"))
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }
}

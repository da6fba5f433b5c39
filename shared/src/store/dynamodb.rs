//! The DynamoDB store: one table, generic keys (docs/operations.md, "DynamoDB key design").
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
//! An accepted event's claim is pending (its enqueue not confirmed) until an item
//! `E#<tenant>#<event id>` / `C` with the claim's `dedupe_until` exists; `claimed_ms` is when
//! the pending claim was last taken.
//!
//! Webhooks and deliveries are stored whole as JSON in `doc`; `expires_at` (epoch seconds) is the
//! table's TTL attribute. A delivery also keeps `attempt_count` and `leased_until` (epoch ms)
//! as attributes, for the conditional write that leases an attempt.
//!
//! A key's record is its `K#` item (`tenant_id`, `key_id`, `name`, `scopes`, `created_at`,
//! `last_used`): authentication reads it, and it is the one item a day's first use updates.
//! The `KEY#` item under the tenant is an index from id to hash, for listing and revocation.

use super::{ApiKey, Claim, Page, Store, Tenant};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Error, Result};
use crate::scope::Scopes;
use crate::webhook::Webhook;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put,
    ScalarAttributeType, Select, TimeToLiveSpecification, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use time::{Date, OffsetDateTime};

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
    // DynamoDB's word for a request it will never take as it is (an item over 400 KB, a key
    // over its size): retrying cannot help, so it is not a 503.
    match e.code() {
        Some("ValidationException") => Error::Refused("the store"),
        _ => Error::Store(detail),
    }
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

/// The sort key of a tenant's webhook count (beside its webhooks, outside their `WH#` range).
const WEBHOOK_COUNT: &str = "COUNT#WH";

fn webhook_item(webhook: &Webhook) -> Item {
    HashMap::from([
        ("PK".to_string(), s(format!("T#{}", webhook.tenant_id))),
        ("SK".to_string(), s(format!("WH#{}", webhook.id))),
        ("enabled".to_string(), AttributeValue::Bool(webhook.enabled)),
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

/// Milliseconds since the epoch: how lease and claim times are compared in conditions.
fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn event_pk(tenant_id: &str, event_id: &str) -> String {
    format!("E#{tenant_id}#{event_id}")
}

/// A day as keys store it.
fn day_text(day: Date) -> Result<String> {
    day.format(super::DAY)
        .map_err(|e| Error::Store(format!("unwritable day: {e}")))
}

/// A key's record from its `K#<hash>` item. An item written before keys had names and scopes
/// has neither attribute: it reads as unnamed and holding every scope, as such a key could do
/// everything when it was made (SECURITY.md, "Keys stored before scopes"). A `scopes` attribute
/// that is there but unreadable grants nothing.
fn api_key_from(hash: &str, item: &Item) -> Result<ApiKey> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    let missing = |name: &str| Error::Store(format!("key item without {name}"));
    let created_at = item
        .get("created_at")
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or_else(|| missing("created_at"))?;
    let scopes = match item.get("scopes") {
        None => Scopes::ALL,
        Some(value) => value
            .as_l()
            .map(|names| {
                Scopes::from_stored(
                    names
                        .iter()
                        .filter_map(|n| n.as_s().ok().map(String::as_str)),
                )
            })
            .unwrap_or(Scopes::NONE),
    };
    Ok(ApiKey {
        id: text("key_id").ok_or_else(|| missing("key_id"))?.clone(),
        tenant_id: text("tenant_id")
            .ok_or_else(|| missing("tenant_id"))?
            .clone(),
        hash: hash.to_string(),
        name: text("name").cloned().unwrap_or_default(),
        scopes,
        created_at,
        last_used: text("last_used").and_then(|d| Date::parse(d, super::DAY).ok()),
    })
}

/// The hash a `KEY#<id>` index item points at.
fn index_hash(item: &Item) -> Result<String> {
    item.get("hash")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| Error::Store("key item without hash".into()))
}

/// Reads of one BatchGetItem call at most (DynamoDB's limit).
const BATCH_GET_MAX: usize = 100;

impl DynamoStore {
    /// The keys behind `index` (`KEY#<id>` items), in its order. An entry whose hash now names
    /// another key, or none, is left out: that key is listed under its own entry.
    async fn keys_of_index(&self, tenant_id: &str, index: &[Item]) -> Result<Vec<ApiKey>> {
        let mut wanted = Vec::with_capacity(index.len());
        for item in index {
            let id = item
                .get("SK")
                .and_then(|v| v.as_s().ok())
                .and_then(|sk| sk.strip_prefix("KEY#"))
                .ok_or_else(|| Error::Store("key index item without an id".into()))?;
            wanted.push((id.to_string(), index_hash(item)?));
        }
        // BatchGetItem refuses a request naming one item twice, and stale entries can share
        // a hash with the live one.
        let mut hashes: Vec<&str> = wanted.iter().map(|(_, hash)| hash.as_str()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let mut found: HashMap<String, ApiKey> = HashMap::new();
        for chunk in hashes.chunks(BATCH_GET_MAX) {
            let mut keys: Vec<Item> = chunk
                .iter()
                .map(|hash| {
                    HashMap::from([
                        ("PK".to_string(), s(format!("K#{hash}"))),
                        ("SK".to_string(), s("KEY")),
                    ])
                })
                .collect();
            // Unprocessed keys are asked for again; an answer that makes no progress a few
            // times over is a store failure the caller may retry.
            let mut stalled = 0;
            while !keys.is_empty() {
                let asked = keys.len();
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .expect("keys are set");
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(store_err)?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let Some(hash) = item
                        .get("PK")
                        .and_then(|v| v.as_s().ok())
                        .and_then(|pk| pk.strip_prefix("K#"))
                    else {
                        continue;
                    };
                    let key = api_key_from(hash, &item)?;
                    found.insert(key.hash.clone(), key);
                }
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if keys.len() >= asked {
                    stalled += 1;
                    if stalled == 3 {
                        return Err(Error::Store("key reads made no progress".into()));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 << stalled)).await;
                }
            }
        }
        Ok(wanted
            .into_iter()
            .filter_map(|(id, hash)| {
                found
                    .get(&hash)
                    .filter(|k| k.id == id && k.tenant_id == tenant_id)
                    .cloned()
            })
            .collect())
    }

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

    /// An update of an accepted event's item (its claim state).
    fn event_update(&self, tenant_id: &str, event_id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(event_pk(tenant_id, event_id)))
            .key("SK", s("E"))
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
        // (listing and revocation), so neither can exist without the other.
        let by_hash = Put::builder()
            .table_name(&self.table)
            .item("PK", s(format!("K#{}", key.hash)))
            .item("SK", s("KEY"))
            .item("key_id", s(&key.id))
            .item("tenant_id", s(&key.tenant_id))
            .item("name", s(&key.name))
            .item(
                "scopes",
                AttributeValue::L(key.scopes.names().into_iter().map(s).collect()),
            )
            .item("created_at", n(key.created_at.unix_timestamp()));
        let by_hash = match key.last_used {
            Some(day) => by_hash.item("last_used", s(day_text(day)?)),
            None => by_hash,
        }
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

    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        self.get(format!("K#{key_hash}"), "KEY")
            .await?
            .map(|item| api_key_from(key_hash, &item))
            .transpose()
    }

    async fn get_api_key(&self, tenant_id: &str, key_id: &str) -> Result<Option<ApiKey>> {
        let Some(index) = self
            .get(format!("T#{tenant_id}"), &format!("KEY#{key_id}"))
            .await?
        else {
            return Ok(None);
        };
        let hash = index_hash(&index)?;
        Ok(self
            .api_key(&hash)
            .await?
            .filter(|k| k.tenant_id == tenant_id && k.id == key_id))
    }

    async fn list_api_keys(
        &self,
        tenant_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<ApiKey>> {
        let pk = format!("T#{tenant_id}");
        let index_key = |id: &str| {
            HashMap::from([
                ("PK".to_string(), s(&pk)),
                ("SK".to_string(), s(format!("KEY#{id}"))),
            ])
        };
        let mut keys = Vec::new();
        let mut start = after.map(index_key);
        loop {
            let (index, more_in_table) = self
                .query(
                    || {
                        self.client
                            .query()
                            .table_name(&self.table)
                            .key_condition_expression("PK = :pk AND begins_with(SK, :key)")
                            .expression_attribute_values(":pk", s(&pk))
                            .expression_attribute_values(":key", s("KEY#"))
                            .consistent_read(true)
                    },
                    limit + 1 - keys.len(),
                    start.take(),
                )
                .await?;
            let last = index.last().cloned();
            keys.extend(self.keys_of_index(tenant_id, &index).await?);
            match last {
                // An index entry whose key was replaced is skipped, so a page may need more.
                Some(last) if more_in_table && keys.len() <= limit => start = Some(last),
                _ => {
                    let more = keys.len() > limit;
                    keys.truncate(limit);
                    return Ok(Page { items: keys, more });
                }
            }
        }
    }

    async fn touch_api_key(&self, key_hash: &str, day: Date) -> Result<()> {
        let today = day_text(day)?;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(format!("K#{key_hash}")))
            .key("SK", s("KEY"))
            .update_expression("SET last_used = :day")
            // A revoked key is not recreated, and a later day is never moved back.
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(last_used) OR last_used < :day)",
            )
            .expression_attribute_values(":day", s(today))
            .send()
            .await;
        written(update).map(|_| ())
    }

    async fn delete_api_key(&self, tenant_id: &str, key_id: &str) -> Result<bool> {
        let Some(index) = self
            .get(format!("T#{tenant_id}"), &format!("KEY#{key_id}"))
            .await?
        else {
            return Ok(false);
        };
        let hash = index_hash(&index)?;
        let index_item = (format!("T#{tenant_id}"), format!("KEY#{key_id}"));
        let ours = self
            .api_key(&hash)
            .await?
            .is_some_and(|k| k.tenant_id == tenant_id && k.id == key_id);
        if !ours {
            // A stale entry: its hash now names another key, or none. Only the entry goes; the
            // key it points at is not this one to revoke.
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("PK", s(index_item.0))
                .key("SK", s(index_item.1))
                .send()
                .await
                .map_err(store_err)?;
            return Ok(false);
        }
        let by_hash = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(format!("K#{hash}")))
            .key("SK", s("KEY"))
            .condition_expression("key_id = :id")
            .expression_attribute_values(":id", s(key_id))
            .build()
            .expect("table and key are set");
        let by_id = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(index_item.0))
            .key("SK", s(index_item.1))
            .build()
            .expect("table and key are set");
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(by_hash).build())
            .transact_items(TransactWriteItem::builder().delete(by_id).build())
            .send()
            .await
            .map_err(store_err)?;
        Ok(true)
    }

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
    ) -> Result<Claim> {
        // The dedupe window is checked by value: TTL deletion lags, and the item outlives the
        // window anyway (it holds the event for redelivery).
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(event_pk(tenant_id, event_id)))
            .item("SK", s("E"))
            .item("envelope", s(envelope))
            .item("dedupe_until", n(until.unix_timestamp()))
            .item("claimed_ms", n(unix_ms(now)))
            .item("expires_at", n(now.unix_timestamp() + EVENT_RETENTION_SECS))
            .condition_expression("attribute_not_exists(PK) OR dedupe_until <= :now")
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        if written(put)? {
            return Ok(Claim::Won);
        }
        // A live claim: read it and its confirmation (rare: duplicates only), in one query.
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(event_pk(tenant_id, event_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err)?
            .items
            .unwrap_or_default();
        let sk = |item: &&Item| item.get("SK").and_then(|v| v.as_s().ok()).cloned();
        let number = |item: &Item, name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let Some(claim) = items.iter().find(|i| sk(i).as_deref() == Some("E")) else {
            // Released and expired in between: the post retries as a fresh one.
            return Err(Error::InFlight(1));
        };
        let window = number(claim, "dedupe_until");
        let confirmed = items
            .iter()
            .find(|i| sk(i).as_deref() == Some("C"))
            .is_some_and(|c| number(c, "dedupe_until") == window);
        // Claims written before claims had states carry no `claimed_ms`: they were confirmed.
        Ok(match number(claim, "claimed_ms") {
            Some(ms) if !confirmed => Claim::Pending {
                envelope: claim
                    .get("envelope")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .ok_or_else(|| Error::Store("event item without envelope".into()))?,
                claimed_at: from_unix_ms(ms),
                until: window
                    .and_then(|w| OffsetDateTime::from_unix_timestamp(w).ok())
                    .unwrap_or(now),
            },
            _ => Claim::Confirmed,
        })
    }

    async fn confirm_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        until: OffsetDateTime,
    ) -> Result<()> {
        // An item of its own, a tenth the claim's size: confirming rewrites no envelope. It
        // names its claim by the claim's window, and expires with the window.
        self.client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(event_pk(tenant_id, event_id)))
            .item("SK", s("C"))
            .item("dedupe_until", n(until.unix_timestamp()))
            .item("expires_at", n(until.unix_timestamp()))
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn take_over_event(
        &self,
        tenant_id: &str,
        event_id: &str,
        seen: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let update = self
            .event_update(tenant_id, event_id)
            .update_expression("SET claimed_ms = :now")
            .condition_expression("claimed_ms = :seen")
            .expression_attribute_values(":now", n(unix_ms(now)))
            .expression_attribute_values(":seen", n(unix_ms(seen)))
            .send()
            .await;
        written(update)
    }

    async fn get_event(&self, tenant_id: &str, event_id: &str) -> Result<Option<String>> {
        Ok(self
            .get(event_pk(tenant_id, event_id), "E")
            .await?
            .and_then(|item| item.get("envelope")?.as_s().ok().cloned()))
    }

    async fn release_event_id(&self, tenant_id: &str, event_id: &str) -> Result<()> {
        let update = self
            .event_update(tenant_id, event_id)
            .update_expression("SET claimed_ms = :epoch")
            .condition_expression("attribute_exists(claimed_ms)")
            .expression_attribute_values(":epoch", n(0))
            .send()
            .await;
        written(update).map(drop)
    }
}

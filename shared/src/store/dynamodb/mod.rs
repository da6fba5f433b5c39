//! The DynamoDB store: one table, generic keys (docs/operations.md, "DynamoDB key design").
//!
//! | item            | PK                      | SK          | log_pk                 | log_sk  |
//! |-----------------|-------------------------|-------------|------------------------|---------|
//! | tenant          | `T#<tenant>`            | `TENANT`    |                        |         |
//! | webhook         | `T#<tenant>`            | `WH#<id>`   |                        |         |
//! | API key         | `K#<sha256 of key>`     | `KEY`       |                        |         |
//! | key by id       | `T#<tenant>`            | `KEY#<id>`  |                        |         |
//! | delivery        | `W#<webhook>#<shard>`   | `<id>`      |                        |         |
//! | delivery (old)  | `D#<id>`                | `D`         | `W#<webhook>#<shard>`  | `<id>`  |
//! | accepted event  | `E#<tenant>#<event id>` | `E`         |                        |         |
//! | post confirmed  | `P#<tenant>#<post id>`  | `P`         |                        |         |
//! | recovery job    | `RC`                    | `<tenant>#<id>` |                    |         |
//! | hour's counts   | `S#<tenant>#<webhook>`  | `<hour's epoch s>` |                 |         |
//!
//! A webhook's log is the table: a delivery id names its webhook (`delivery::webhook_of`), so
//! its item is kept under the webhook's partition for the id's shard (`LOG_SHARDS` of them, by
//! the id's hash), sorted by id, and costs no index write. A delivery whose id names no webhook
//! (made before ids named it) is kept by id and carries `log_pk`/`log_sk`, the keys of the
//! keys-only index `LOG`, whose partitions have the same names; a page of the log reads both.
//!
//! A delivery with something left to attempt also carries `sweep_pk` (`S#<shard>`, the
//! delivery id's hash over `SWEEP_SHARDS`) and `sweep_at` (epoch ms): the keys of the sparse,
//! keys-only index `SWEEP` that the sweep reads. A delivery that succeeds or fails for good
//! drops them, and leaves the index.
//!
//! An accepted event's claim is pending (its enqueue not confirmed) until the post it names
//! (`claimed_by`) is confirmed by a `P#<tenant>#<post id>` item, or an item
//! `E#<tenant>#<event id>` / `C` with the claim's `dedupe_until` exists (as confirmations were
//! written before posts were); `claimed_ms` is when the pending claim was last taken.
//!
//! Webhooks and deliveries are stored whole as JSON in `doc`; `expires_at` (epoch seconds) is the
//! table's TTL attribute. A delivery also keeps `attempt_count` and `leased_until` (epoch ms)
//! as attributes, for the conditional write that leases an attempt.
//!
//! A key's record is its `K#` item (`tenant_id`, `key_id`, `name`, `scopes`, `created_at`,
//! `last_used`): authentication reads it, and it is the one item a day's first use updates.
//! The `KEY#` item under the tenant is an index from id to hash, for listing and revocation.

mod deliveries;
mod events;
mod keys;
mod recoveries;
mod schema;
mod stats;
mod webhooks;

use super::{ApiKey, Claim, Page, Tenant};
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
/// The delivery log's index, for deliveries kept by id: each webhook's, newest first, over
/// `LOG_SHARDS` partitions.
pub const LOG_INDEX: &str = "LOG";
/// Partitions of one webhook's log: a busy webhook's deliveries spread over them, each well
/// under a partition's 1,000 writes a second (2 a first attempt: its lease and its record); a
/// page of the log reads them all and merges.
const LOG_SHARDS: u32 = 4;
/// The most keys one BatchGetItem takes.
const BATCH_GET_KEYS: usize = 100;
/// The sweep's index: deliveries by the time the sweep should look at them.
pub const SWEEP_INDEX: &str = "SWEEP";
/// Partitions of the sweep's index: the retries of one busy failing endpoint spread over
/// them, each well under a partition's 1,000 writes a second.
const SWEEP_SHARDS: u32 = 4;

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
    let detail = crate::aws::error::detail(&e);
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

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
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

    /// The items at `keys`, read consistently, in no particular order (missing ones left out),
    /// a BatchGetItem per 100 keys. Unprocessed keys are asked for again; an answer that makes
    /// no progress a few times over is a store failure the caller may retry.
    async fn batch_get(&self, mut keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        let mut stalled = 0;
        while !keys.is_empty() {
            let rest = keys.split_off(keys.len().min(BATCH_GET_KEYS));
            let asked = keys.len();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::replace(&mut keys, rest)))
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
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            let unprocessed = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if unprocessed.len() >= asked {
                stalled += 1;
                if stalled == 3 {
                    return Err(Error::Store("batch reads made no progress".into()));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << stalled)).await;
            }
            keys.extend(unprocessed);
        }
        Ok(found)
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

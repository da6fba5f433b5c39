//! Tenants and their keys: a key's `K#<hash>` record and its `KEY#<id>` index item.

use super::*;
use crate::store::TenantStore;

/// A day as keys store it.
fn day_text(day: Date) -> Result<String> {
    day.format(crate::store::DAY)
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
        last_used: text("last_used").and_then(|d| Date::parse(d, crate::store::DAY).ok()),
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
            for key in self.keys_by_hash(chunk).await? {
                found.insert(key.hash.clone(), key);
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

    /// The `K#` records of `hashes` (at most a BatchGetItem's worth), read consistently.
    async fn keys_by_hash(&self, hashes: &[&str]) -> Result<Vec<ApiKey>> {
        let mut found = Vec::with_capacity(hashes.len());
        let keys: Vec<Item> = hashes
            .iter()
            .map(|hash| {
                HashMap::from([
                    ("PK".to_string(), s(format!("K#{hash}"))),
                    ("SK".to_string(), s("KEY")),
                ])
            })
            .collect();
        for item in self.batch_get(keys).await? {
            let Some(hash) = item
                .get("PK")
                .and_then(|v| v.as_s().ok())
                .and_then(|pk| pk.strip_prefix("K#"))
            else {
                continue;
            };
            found.push(api_key_from(hash, &item)?);
        }
        Ok(found)
    }
}

#[async_trait]
impl TenantStore for DynamoStore {
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
}

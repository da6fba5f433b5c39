//! Tenants and API keys. Keys are random, shown once, and stored as SHA-256 hashes.

use crate::error::Result;
use crate::scope::Scopes;
use crate::secret::hash_key;
use crate::store::{ApiKey, Store, Tenant};
use time::{Date, OffsetDateTime};

/// What the first key of a tenant is called: the key `POST /v1/tenants` answers, and the local
/// stack's `HERALD_API_KEY`. It holds every scope.
pub const FIRST_KEY_NAME: &str = "first key";

/// Makes sure `tenant_id` exists and accepts `key` with every scope: how the local stack and
/// tests set up the tenant behind `HERALD_API_KEY`. Idempotent: a key already stored for the
/// tenant keeps its id and its last use.
pub async fn ensure_tenant_with_key(
    store: &dyn Store,
    tenant_id: &str,
    name: &str,
    key: &str,
) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    store
        .put_tenant(&Tenant {
            id: tenant_id.to_string(),
            name: name.to_string(),
            created_at: now,
        })
        .await?;
    let hash = hash_key(key);
    let existing = store
        .api_key(&hash)
        .await?
        .filter(|k| k.tenant_id == tenant_id);
    if existing.as_ref().is_some_and(|k| k.scopes == Scopes::ALL) {
        return Ok(());
    }
    let record = match existing {
        Some(k) => ApiKey {
            scopes: Scopes::ALL,
            ..k
        },
        None => ApiKey {
            id: crate::ids::prefixed("key"),
            tenant_id: tenant_id.to_string(),
            hash,
            name: FIRST_KEY_NAME.to_string(),
            scopes: Scopes::ALL,
            created_at: now,
            last_used: None,
        },
    };
    store.put_api_key(&record).await
}

/// The stored key behind a presented one, `None` when there is none. The first request of a
/// UTC day records that day as the key's last use; later ones that day write nothing. Failing
/// to record it does not fail the request: the day is for people, not for access.
pub async fn authenticate(
    store: &dyn Store,
    presented: &str,
    today: Date,
) -> Result<Option<ApiKey>> {
    let Some(key) = store.api_key(&hash_key(presented)).await? else {
        return Ok(None);
    };
    if key.last_used != Some(today) {
        if let Err(e) = store.touch_api_key(&key.hash, today).await {
            tracing::warn!(key_id = %key.id, error = %e, "the key's last use was not recorded");
        }
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TenantStore;

    fn day(d: u8) -> Date {
        Date::from_calendar_date(2026, time::Month::December, d).unwrap()
    }

    #[tokio::test]
    async fn a_key_records_its_last_day_of_use() {
        let store = crate::store::MemoryStore::new();
        ensure_tenant_with_key(&store, "tn_a", "a", "the-key")
            .await
            .unwrap();
        let stored = || async { store.api_key(&hash_key("the-key")).await.unwrap().unwrap() };
        assert_eq!(stored().await.last_used, None);
        let seen = authenticate(&store, "the-key", day(2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (seen.tenant_id.as_str(), seen.scopes),
            ("tn_a", Scopes::ALL)
        );
        assert_eq!(stored().await.last_used, Some(day(2)));
        authenticate(&store, "the-key", day(3)).await.unwrap();
        assert_eq!(
            stored().await.last_used,
            Some(day(3)),
            "a new day is recorded"
        );
        authenticate(&store, "the-key", day(2)).await.unwrap();
        assert_eq!(stored().await.last_used, Some(day(3)), "never moved back");
        assert!(authenticate(&store, "another", day(3))
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn ensuring_the_first_key_again_keeps_it() {
        let store = crate::store::MemoryStore::new();
        ensure_tenant_with_key(&store, "tn_a", "a", "the-key")
            .await
            .unwrap();
        authenticate(&store, "the-key", day(2)).await.unwrap();
        let first = store.api_key(&hash_key("the-key")).await.unwrap().unwrap();
        ensure_tenant_with_key(&store, "tn_a", "a", "the-key")
            .await
            .unwrap();
        assert_eq!(
            store.api_key(&hash_key("the-key")).await.unwrap().unwrap(),
            first
        );
        assert_eq!(first.name, FIRST_KEY_NAME);
        let listed = store.list_api_keys("tn_a", 10, None).await.unwrap();
        assert_eq!(listed.items, [first]);
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! The store contract against the in-memory store and against DynamoDB on moto.

use herald_shared::store::MemoryStore;
use herald_tests::contract::{key_contract, store_contract};
use herald_tests::moto::moto;

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    store_contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn dynamodb_store_keeps_the_contract() {
    let store = moto().store().await;
    store_contract(&store).await;
}

#[tokio::test]
async fn memory_store_keeps_the_key_contract() {
    key_contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn dynamodb_store_keeps_the_key_contract() {
    key_contract(&moto().store().await).await;
}

#[tokio::test]
async fn ensure_table_is_idempotent() {
    let store = moto().store().await;
    store
        .ensure_table()
        .await
        .expect("second ensure is a no-op");
}

/// Keys written before names and scopes existed: a `K#` item with `tenant_id`, `key_id` and
/// `created_at` only. They read as unnamed and holding every scope (SECURITY.md, "Keys stored
/// before scopes"), and they are listed, so an owner can find and revoke one. An index entry
/// whose hash names another key (the local stack used to re-register its key under a new id on
/// each start) is neither listed nor able to revoke that key.
#[tokio::test]
async fn dynamodb_reads_keys_stored_before_scopes() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use herald_shared::scope::Scopes;
    use herald_shared::store::TenantStore;
    let store = moto().store().await;
    let client = aws_sdk_dynamodb::Client::new(&moto().sdk_config().await);
    let s = |v: &str| AttributeValue::S(v.into());
    let put = |pairs: &[(&str, AttributeValue)]| {
        let mut put = client.put_item().table_name(store.table());
        for (name, value) in pairs {
            put = put.item(*name, value.clone());
        }
        put.send()
    };
    let created = AttributeValue::N("1700000000".into());
    put(&[
        ("PK", s("K#oldhash")),
        ("SK", s("KEY")),
        ("key_id", s("key_old")),
        ("tenant_id", s("tn_old")),
        ("created_at", created.clone()),
    ])
    .await
    .unwrap();
    for id in ["key_old", "key_older"] {
        put(&[
            ("PK", s("T#tn_old")),
            ("SK", s(&format!("KEY#{id}"))),
            ("hash", s("oldhash")),
            ("created_at", created.clone()),
        ])
        .await
        .unwrap();
    }

    let key = store.api_key("oldhash").await.unwrap().expect("readable");
    assert_eq!(
        (key.id.as_str(), key.tenant_id.as_str(), key.name.as_str()),
        ("key_old", "tn_old", "")
    );
    assert_eq!(key.scopes, Scopes::ALL);
    assert_eq!(key.created_at.unix_timestamp(), 1_700_000_000);
    assert_eq!(key.last_used, None);
    let listed = store.list_api_keys("tn_old", 10, None).await.unwrap();
    assert_eq!(
        listed.items,
        std::slice::from_ref(&key),
        "listed once, under its own id"
    );
    assert!(
        !store.delete_api_key("tn_old", "key_older").await.unwrap(),
        "a stale entry revokes nothing"
    );
    assert_eq!(store.api_key("oldhash").await.unwrap(), Some(key));
    assert!(store.delete_api_key("tn_old", "key_old").await.unwrap());
    assert_eq!(store.api_key("oldhash").await.unwrap(), None);
    assert!(store
        .list_api_keys("tn_old", 10, None)
        .await
        .unwrap()
        .items
        .is_empty());
}

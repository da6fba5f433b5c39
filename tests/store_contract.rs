//! The store contract against the in-memory store and against DynamoDB on moto.

use herald_shared::store::MemoryStore;
use herald_tests::contract::store_contract;
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
async fn ensure_table_is_idempotent() {
    let store = moto().store().await;
    store
        .ensure_table()
        .await
        .expect("second ensure is a no-op");
}

//! Recovery jobs: one partition for all of them (`RC`, sorted by tenant and id), few and small,
//! with `running` set while pages are left, for the sweep's query.

use super::*;
use crate::recovery::{Recovery, RecoveryState, RECOVERY_RETENTION};
use crate::store::RecoveryStore;

const PARTITION: &str = "RC";

fn sort_key(tenant_id: &str, id: &str) -> String {
    format!("{tenant_id}#{id}")
}

#[async_trait]
impl RecoveryStore for DynamoStore {
    async fn put_recovery(&self, recovery: &Recovery) -> Result<()> {
        let expires = (recovery.created_at + RECOVERY_RETENTION).unix_timestamp();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(PARTITION))
            .item("SK", s(sort_key(&recovery.tenant_id, &recovery.id)))
            .item(
                "running",
                AttributeValue::Bool(recovery.state == RecoveryState::Running),
            )
            .item("expires_at", n(expires))
            .item("doc", to_doc(recovery))
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn get_recovery(&self, tenant_id: &str, id: &str) -> Result<Option<Recovery>> {
        let Some(item) = self.get(PARTITION.into(), &sort_key(tenant_id, id)).await? else {
            return Ok(None);
        };
        let recovery: Recovery = doc(&item)?;
        Ok((recovery.tenant_id == tenant_id).then_some(recovery))
    }

    async fn running_recoveries(&self, limit: usize) -> Result<Vec<Recovery>> {
        let (items, _) = self
            .query(
                || {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("PK = :pk")
                        .filter_expression("running = :true")
                        .expression_attribute_values(":pk", s(PARTITION))
                        .expression_attribute_values(":true", AttributeValue::Bool(true))
                        .consistent_read(true)
                },
                limit,
                None,
            )
            .await?;
        items.iter().map(doc).collect()
    }
}

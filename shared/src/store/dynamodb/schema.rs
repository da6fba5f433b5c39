//! The table's shape, created when missing (the local stack and the tests; in AWS the SAM
//! template owns the table).

use super::*;

impl DynamoStore {
    /// Creates the table (with the log's and the sweep's indexes, and TTL) when it does not exist: for the local stack and
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
        let attr_of = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .expect("complete attribute definition")
        };
        let attr = |name: &str| attr_of(name, ScalarAttributeType::S);
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
            .attribute_definitions(attr("log_pk"))
            .attribute_definitions(attr("log_sk"))
            .attribute_definitions(attr("sweep_pk"))
            .attribute_definitions(attr_of("sweep_at", ScalarAttributeType::N))
            .key_schema(key("PK", KeyType::Hash))
            .key_schema(key("SK", KeyType::Range))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(LOG_INDEX)
                    .key_schema(key("log_pk", KeyType::Hash))
                    .key_schema(key("log_sk", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()
                    .expect("complete index"),
            )
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(SWEEP_INDEX)
                    .key_schema(key("sweep_pk", KeyType::Hash))
                    .key_schema(key("sweep_at", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()
                    .expect("complete sweep index"),
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
}

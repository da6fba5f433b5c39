//! The ingest Lambda: `POST /v1/events` and `/v1/events/batch` behind API Gateway.

use herald_shared::config::{Config, Mode};
use herald_shared::runtime;
use std::sync::Arc;

/// Builds the ingest router over DynamoDB (dedupe claims, keys) and SQS.
pub async fn app(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<axum::Router, herald_shared::Error> {
    let store = Arc::new(runtime::dynamo_store(sdk, config));
    let queue = Arc::new(runtime::sqs_queue(sdk, config).await?);
    let dispatcher = Arc::new(runtime::dispatcher(config, store.clone()));
    Ok(herald_shared::web::ingest_router(runtime::app_state(
        config, store, queue, dispatcher,
    )))
}

pub fn config() -> Result<Config, herald_shared::config::ConfigError> {
    Config::from_env(Mode::Lambda)
}

//! The ingest Lambda: `POST /v1/events` and `/v1/events/batch` behind API Gateway.

use herald_shared::config::{Config, Mode};
use herald_shared::{runtime, web};

/// The router this function serves, over DynamoDB and SQS.
pub async fn app(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<axum::Router, herald_shared::Error> {
    let (store, queue) = runtime::aws_ports(sdk, config).await?;
    Ok(web::ingest_router(runtime::ingest_state(
        config, store, queue,
    )))
}

pub fn config() -> Result<Config, herald_shared::config::ConfigError> {
    Config::from_env(Mode::Lambda)
}

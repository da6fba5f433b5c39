//! The api Lambda: webhook management, event catalog and health behind API Gateway.

use herald_shared::config::{Config, Mode};
use herald_shared::secret::Secret;
use herald_shared::{runtime, web};

/// The router this function serves, over DynamoDB and SQS. With `HERALD_ADMIN_KEY_SECRET` set,
/// the admin key is read from Secrets Manager first: a secret that cannot be read fails the
/// cold start (and Lambda retries it at the next invocation) rather than serving without admin.
pub async fn app(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<axum::Router, herald_shared::Error> {
    let mut config = config.clone();
    if let Some(id) = &config.admin_key_secret {
        config.admin_key = Some(admin_key(sdk, id).await?);
    }
    let (store, queue) = runtime::aws_ports(sdk, &config).await?;
    let sender = runtime::sender(&config);
    Ok(web::api_router(runtime::api_state(
        &config, store, queue, sender,
    )))
}

/// The admin key held as the secret `id`'s string value. Errors name the secret and the
/// service's error code, never a value.
pub async fn admin_key(
    sdk: &aws_config::SdkConfig,
    id: &str,
) -> Result<Secret, herald_shared::Error> {
    let failed = |why: String| {
        herald_shared::Error::Store(format!("admin key secret `{id}` could not be read: {why}"))
    };
    let answer = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| {
            let code = aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(&e)
                .unwrap_or("no answer")
                .to_string();
            failed(code)
        })?;
    match answer.secret_string() {
        Some(key) if !key.trim().is_empty() => Ok(Secret::new(key.trim().to_string())),
        _ => Err(failed("it holds no string value".into())),
    }
}

pub fn config() -> Result<Config, herald_shared::config::ConfigError> {
    Config::from_env(Mode::Lambda)
}

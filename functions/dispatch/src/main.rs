use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_shared::runtime::init_tracing(true);
    let config = herald_dispatch::config()?;
    let sdk = herald_shared::runtime::lambda_sdk_config();
    let dispatch = herald_dispatch::dispatch(&sdk, &config).await?;
    let dispatch = &dispatch;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = herald_dispatch::deadline_of(&event.context);
        Ok::<Value, Error>(herald_dispatch::invoke(dispatch, event.payload, Some(deadline)).await?)
    }))
    .await
}

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_shared::runtime::init_tracing(true);
    let config = herald_dispatch::config()?;
    let sdk = herald_shared::runtime::lambda_sdk_config();
    let dispatcher = herald_dispatch::dispatcher(&sdk, &config).await?;
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = herald_dispatch::deadline_of(&event.context);
        Ok::<SqsBatchResponse, Error>(
            herald_dispatch::handle(dispatcher, event.payload, Some(deadline)).await,
        )
    }))
    .await
}

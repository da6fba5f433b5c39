//! The dispatch Lambda: SQS batches of accepted events → signed deliveries, answering with
//! `batchItemFailures` so only the records that failed internally come back.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use herald_shared::config::{Config, Mode};
use herald_shared::runtime;
use herald_shared::service::{Dispatcher, QueueRecord};

/// Runs one SQS event through the dispatcher, starting no delivery that could not finish
/// before `deadline` (the invocation's, from Lambda's context).
pub async fn handle(
    dispatcher: &Dispatcher,
    event: SqsEvent,
    deadline: Option<tokio::time::Instant>,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut records = Vec::with_capacity(event.records.len());
    for message in event.records {
        match (message.message_id, message.body) {
            (Some(message_id), Some(body)) => records.push(QueueRecord { message_id, body }),
            // Without an id the record cannot be reported; without a body there is nothing to do.
            (Some(message_id), None) => {
                tracing::error!(%message_id, "SQS record without a body");
                response.add_failure(message_id);
            }
            (None, _) => tracing::error!("SQS record without a message id"),
        }
    }
    let handled = dispatcher.handle(&records, deadline).await;
    handled.metrics.emit("dispatch");
    for id in handled.failed {
        response.add_failure(id);
    }
    response
}

/// Lambda's deadline (wall-clock milliseconds) as an instant of this process's clock.
pub fn deadline_of(context: &lambda_runtime::Context) -> tokio::time::Instant {
    let left = context
        .deadline()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::time::Instant::now() + left
}

/// The dispatcher over DynamoDB and SQS (for retries) with the shared delivery client, built
/// once per container.
pub async fn dispatcher(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<Dispatcher, herald_shared::Error> {
    let (store, queue) = runtime::aws_ports(sdk, config).await?;
    Ok(runtime::dispatcher(config, store, queue))
}

pub fn config() -> Result<Config, herald_shared::config::ConfigError> {
    Config::from_env(Mode::Lambda)
}

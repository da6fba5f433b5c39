//! The dispatch Lambda: SQS batches of accepted events → signed deliveries, answering with
//! `batchItemFailures` so only the records that failed internally come back; and, invoked by
//! the template's schedule with `{"sweep": true}`, the sweep (`service::sweep`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use herald_shared::config::{Config, Mode};
use herald_shared::runtime;
use herald_shared::service::{Dispatcher, QueueRecord, Sweeper};
use serde_json::{json, Value};

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
        let receive_count = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        match (message.message_id, message.body) {
            (Some(message_id), Some(body)) => records.push(QueueRecord {
                message_id,
                body,
                receive_count,
            }),
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

/// What the function does, built once per container over DynamoDB and SQS.
pub struct Dispatch {
    pub dispatcher: Dispatcher,
    pub sweeper: Sweeper,
}

pub async fn dispatch(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<Dispatch, herald_shared::Error> {
    let table = std::sync::Arc::new(runtime::dynamo_store(sdk, config));
    let queue: std::sync::Arc<dyn herald_shared::queue::Queue> =
        std::sync::Arc::new(runtime::sqs_queue(sdk, config).await?);
    Ok(Dispatch {
        dispatcher: runtime::dispatcher(config, table.clone(), queue.clone()),
        sweeper: Sweeper::new(table.clone(), table, queue),
    })
}

/// One invocation: a batch from the queue's event source, or the schedule's `{"sweep": true}`.
/// A sweep that fails is an error, so the invocation counts in the errors alarm; the next
/// scheduled one retries it.
pub async fn invoke(
    dispatch: &Dispatch,
    event: Value,
    deadline: Option<tokio::time::Instant>,
) -> Result<Value, herald_shared::Error> {
    if event.get("sweep").is_some() {
        let swept = dispatch
            .sweeper
            .sweep(time::OffsetDateTime::now_utc())
            .await?;
        return Ok(json!({
            "queued": swept.queued,
            "overdue": swept.overdue,
            "given_up": swept.given_up,
            "recovered": swept.recovered,
        }));
    }
    let batch: SqsEvent = serde_json::from_value(event)
        .map_err(|e| herald_shared::Error::Store(format!("not an SQS event: {e}")))?;
    let response = handle(&dispatch.dispatcher, batch, deadline).await;
    Ok(serde_json::to_value(response).expect("a batch response serializes"))
}

pub fn config() -> Result<Config, herald_shared::config::ConfigError> {
    Config::from_env(Mode::Lambda)
}

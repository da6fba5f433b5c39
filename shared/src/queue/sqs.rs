//! The SQS queue. Batches are cut to SQS's limits (10 entries, 256 KiB) here, not by callers.

use super::{Encoded, Queue, Received};
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use std::time::Duration;

const MAX_BATCH_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// SQS's longest delay; longer waits are chained by the caller.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

/// SQS's codes for a message it will never take as it is (a character or size it refuses).
const REFUSALS: [&str; 3] = [
    "InvalidMessageContents",
    "InvalidParameterValue",
    "MessageTooLong",
];

fn queue_err<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> Error {
    let detail = crate::aws::error::detail(&e);
    tracing::warn!(error = %detail, "sqs call failed");
    match e.code() {
        Some(code) if REFUSALS.contains(&code) => Error::Refused("the queue"),
        _ => Error::Queue(detail),
    }
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates `name` and its dead-letter queue `name-dlq` (after `max_receives`) if absent:
    /// for the local stack and tests. In AWS the SAM template owns the queues.
    pub async fn ensure(
        client: Client,
        name: &str,
        max_receives: u32,
        visibility: Duration,
    ) -> Result<SqsQueue> {
        let dlq_url = client
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .map_err(queue_err)?
            .queue_url
            .ok_or_else(|| Error::Queue("create_queue returned no URL".into()))?;
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(queue_err)?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| Error::Queue("dead-letter queue has no ARN".into()))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receives.to_string(),
        })
        .to_string();
        let url = client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility.as_secs().to_string(),
            )
            .attributes(
                QueueAttributeName::MaximumMessageSize,
                super::MAX_MESSAGE_BYTES.to_string(),
            )
            .send()
            .await
            .map_err(queue_err)?
            .queue_url
            .ok_or_else(|| Error::Queue("create_queue returned no URL".into()))?;
        Ok(SqsQueue::new(client, url))
    }
}

impl SqsQueue {
    /// The dead-letter queue named by this queue's redrive policy.
    pub async fn dead_letter_queue_url(&self) -> Result<String> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(queue_err)?
            .attributes
            .unwrap_or_default();
        let policy = attributes
            .get(&QueueAttributeName::RedrivePolicy)
            .ok_or_else(|| Error::Queue(format!("{} has no redrive policy", self.url)))?;
        let arn = serde_json::from_str::<serde_json::Value>(policy)
            .ok()
            .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_string))
            .ok_or_else(|| Error::Queue("unreadable redrive policy".into()))?;
        let name = arn.rsplit(':').next().unwrap_or_default();
        self.client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(queue_err)?
            .queue_url
            .ok_or_else(|| Error::Queue(format!("no URL for {name}")))
    }

    /// Moves every message of the dead-letter queue `dlq_url` back to this queue. Each is
    /// deleted from the DLQ only once it is sent here, so a failure midway loses nothing (at
    /// worst a message is in both). Returns how many were moved.
    pub async fn redrive_from(&self, dlq_url: &str) -> Result<usize> {
        let mut moved = 0;
        loop {
            let messages = self
                .client
                .receive_message()
                .queue_url(dlq_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(queue_err)?
                .messages
                .unwrap_or_default();
            if messages.is_empty() {
                return Ok(moved);
            }
            for m in messages {
                let (Some(body), Some(receipt)) = (m.body, m.receipt_handle) else {
                    continue;
                };
                self.send_text(body, Duration::ZERO).await?;
                self.client
                    .delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(queue_err)?;
                moved += 1;
            }
        }
    }
}

impl SqsQueue {
    /// Sends `body` as it is: a message Herald made, or one moved back from the dead-letter
    /// queue as it was.
    pub async fn send_text(&self, body: String, delay: Duration) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            // Rounded up: a message must never become visible before it is due.
            .delay_seconds(delay.min(MAX_DELAY).as_millis().div_ceil(1000) as i32)
            .send()
            .await
            .map_err(queue_err)?;
        Ok(())
    }

    async fn send_texts(&self, bodies: &[String]) -> Result<Vec<Result<()>>> {
        // Cut into chunks of 10 entries or 256 KiB, whichever comes first, sent at once: a
        // batch of 100 events takes one round trip, not ten, within ingest's deadline.
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < bodies.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < bodies.len()
                && end - start < MAX_BATCH_ENTRIES
                && (end == start || bytes + bodies[end].len() <= MAX_BATCH_BYTES)
            {
                bytes += bodies[end].len();
                end += 1;
            }
            chunks.push(start..end);
            start = end;
        }
        let sent = futures::future::join_all(chunks.iter().map(|range| {
            let entries = range
                .clone()
                .map(|i| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&bodies[i])
                        .build()
                        .expect("id and body are set")
                })
                .collect();
            self.client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
        }))
        .await;
        let mut results: Vec<Result<()>> = (0..bodies.len()).map(|_| Ok(())).collect();
        for (range, outcome) in chunks.into_iter().zip(sent) {
            match outcome {
                Ok(out) => {
                    for failed in out.failed {
                        let Ok(i) = failed.id.parse::<usize>() else {
                            continue;
                        };
                        tracing::warn!(code = %failed.code, message = ?failed.message, "sqs refused a batch entry");
                        results[i] = Err(if failed.sender_fault {
                            Error::Refused("the queue")
                        } else {
                            Error::Queue(failed.code)
                        });
                    }
                }
                Err(e) => {
                    let err = queue_err(e);
                    for r in &mut results[range] {
                        *r = Err(match &err {
                            Error::Refused(what) => Error::Refused(what),
                            other => Error::Queue(other.to_string()),
                        });
                    }
                }
            }
        }
        Ok(results)
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, message: Encoded, delay: Duration) -> Result<()> {
        self.send_text(message.into_string(), delay).await
    }

    async fn send_batch(&self, messages: Vec<Encoded>) -> Result<Vec<Result<()>>> {
        let bodies: Vec<String> = messages.into_iter().map(Encoded::into_string).collect();
        self.send_texts(&bodies).await
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(queue_err)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(Received {
                    message_id: m.message_id?,
                    receipt: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                    receive_count,
                })
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(queue_err)?;
        Ok(())
    }
}

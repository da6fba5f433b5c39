//! The queue port between ingest and dispatch (SQS in AWS, in memory locally).

pub mod memory;
pub mod sqs;

pub use memory::MemoryQueue;
pub use sqs::SqsQueue;

use crate::error::Result;
use async_trait::async_trait;
use std::time::Duration;

/// A received message, to be deleted once handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    pub receive_count: u32,
}

#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, body: String, delay: Duration) -> Result<()>;
    /// Sends many messages; one result per body, in order, so callers know exactly which failed.
    async fn send_batch(&self, bodies: Vec<String>) -> Result<Vec<Result<(), String>>>;
    /// Up to `max` messages (at most 10), waiting up to `wait` for the first.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>>;
    async fn delete(&self, receipt: &str) -> Result<()>;
}

//! The queue port between ingest and dispatch (SQS in AWS, in memory locally).

pub mod memory;
mod message;
pub mod sqs;

pub use memory::MemoryQueue;
pub use message::{Encoded, Message, NextAttempt};
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

/// How long a received message stays hidden before it is handed out again: the events queue's
/// `VisibilityTimeout` in the template, and the local stack's queues. Longer than the longest
/// delivery lease (the 60 s maximum delivery timeout and `dispatch::LEASE_MARGIN`), so a message
/// whose run died comes back to a lapsed lease; 6 times the dispatch function's timeout, as AWS
/// recommends for an event source.
pub const VISIBILITY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(360);
/// Receives before a message moves to the dead-letter queue: the template's default
/// `MaxReceiveCount`, and the local stack's.
pub const MAX_RECEIVES: u32 = 5;

/// SQS's longest message delay: a longer wait is not carried by a message but left to the
/// sweep (`service::sweep`), which queues it shortly before it is due.
pub const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(900);

/// The largest message body SQS takes: the queues' `MaximumMessageSize`, pinned by the template.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Whether SQS carries `c` in a message body: its documented set is #x9, #xA, #xD,
/// #x20 to #xD7FF, #xE000 to #xFFFD and #x10000 to #x10FFFF.
pub fn carried(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// What SQS would refuse in `body`, in Herald's words; `None` when it takes it. The in-memory
/// queue and the tests' checking wrapper over moto refuse exactly this, as SQS does.
pub fn refusal(body: &str) -> Option<String> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Some(format!(
            "a body of {} bytes, over SQS's {MAX_MESSAGE_BYTES}",
            body.len()
        ));
    }
    body.chars()
        .find(|c| !carried(*c))
        .map(|c| format!("U+{:04X}, a character SQS does not carry", c as u32))
}

/// Refuses what SQS refuses, as the SQS adapter answers SQS's own refusals: the in-memory
/// queue, and the tests' wrapper over moto, see what AWS would do.
pub fn check(body: &str) -> Result<()> {
    match refusal(body) {
        Some(why) => {
            tracing::warn!(reason = %why, "message refused");
            Err(crate::error::Error::Refused("the queue"))
        }
        None => Ok(()),
    }
}

/// JSON text with every character SQS does not carry written as a `\uXXXX` escape. In JSON
/// such characters can stand only inside strings (the structure is ASCII, and serde_json
/// escapes controls), so the result decodes to the same value.
pub fn json_for_sqs(text: String) -> String {
    if text.chars().all(carried) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if carried(c) {
            out.push(c);
        } else {
            // Only BMP characters are refused (controls, U+FFFE, U+FFFF): one escape each.
            out.push_str(&format!("\\u{:04x}", c as u32));
        }
    }
    out
}

/// The queue between ingest and dispatch. It takes [`Message`]s in their one text form
/// ([`Encoded`]); what it hands out is text, as SQS hands it to the dispatch function, and dispatch
/// reads it back with [`Message::decode`] (a body from anywhere else, say a hand-sent one, is
/// refused there and left to the dead-letter queue).
#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, message: Encoded, delay: Duration) -> Result<()>;
    /// Sends many messages, due now; one result per message, in order, so callers know exactly
    /// which failed.
    async fn send_batch(&self, messages: Vec<Encoded>) -> Result<Vec<Result<()>>>;
    /// Up to `max` messages (at most 10), waiting up to `wait` for the first.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>>;
    async fn delete(&self, receipt: &str) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_character_set() {
        for c in [
            '\t',
            '\n',
            '\r',
            ' ',
            '\u{D7FF}',
            '\u{E000}',
            '\u{FFFD}',
            '\u{10000}',
            '😀',
        ] {
            assert!(carried(c), "{c:?}");
        }
        for c in ['\u{0}', '\u{8}', '\u{B}', '\u{1F}', '\u{FFFE}', '\u{FFFF}'] {
            assert!(!carried(c), "{c:?}");
        }
        assert_eq!(refusal("ok"), None);
        assert!(refusal("a\u{FFFF}").unwrap().contains("U+FFFF"));
        assert!(refusal(&"x".repeat(MAX_MESSAGE_BYTES + 1)).is_some());
        assert_eq!(refusal(&"x".repeat(MAX_MESSAGE_BYTES)), None);
    }

    #[test]
    fn escaped_json_decodes_to_the_same_value() {
        let value = serde_json::json!({"text": "a\u{FFFE}b\u{FFFF}", "k\u{FFFF}": [1e15]});
        let text = json_for_sqs(serde_json::to_string(&value).unwrap());
        assert_eq!(refusal(&text), None);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
        let plain = r#"{"a":"b"}"#.to_string();
        assert_eq!(json_for_sqs(plain.clone()), plain);
    }
}

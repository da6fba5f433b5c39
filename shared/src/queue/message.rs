//! What the queue carries, and its one text form: every message Herald queues is encoded here
//! and every message dispatch reads is decoded here.

use crate::event::{Event, EventEnvelope};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use ulid::Ulid;

/// One queue message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// An accepted event, for every webhook of its tenant that subscribes to it.
    FanOut {
        envelope: EventEnvelope,
        not_before: Option<OffsetDateTime>,
    },
    /// The next attempt of one delivery: a retry, or a redelivery.
    Attempt {
        envelope: EventEnvelope,
        attempt: NextAttempt,
        not_before: Option<OffsetDateTime>,
    },
}

/// The delivery a message attempts, and the attempt count it expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextAttempt {
    pub webhook_id: String,
    pub delivery_id: String,
    /// How many attempts the delivery had when this message was sent. A message whose count
    /// no longer matches is a duplicate or overtaken, and is dropped, so SQS redelivery never
    /// makes an extra attempt.
    #[serde(default)]
    pub expect_attempts: usize,
    /// How many times this attempt was put back because another run held the delivery:
    /// bounded (`dispatch::MAX_DEFERRALS`), so a lease that never lets it through cannot keep it
    /// circling.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferrals: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A message in its text form, as the queue takes it: only [`Message::encode`] makes one, so
/// a message is serialized once however many places read its text (ingest's claim and its
/// send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded(String);

impl Encoded {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The text form: the envelope's fields, `target` naming an attempt's delivery, and
/// `not_before`. A fan-out due now is exactly its envelope, which is what the event log keeps.
#[derive(Serialize)]
struct Outgoing<'a> {
    tenant_id: &'a str,
    envelope_id: Ulid,
    event: &'a Event,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a NextAttempt>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    not_before: Option<OffsetDateTime>,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(deserialize_with = "crate::ids::deserialize_shared")]
    tenant_id: Arc<str>,
    #[serde(deserialize_with = "crate::ids::deserialize_ulid")]
    envelope_id: Ulid,
    event: Event,
    #[serde(default)]
    target: Option<NextAttempt>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    not_before: Option<OffsetDateTime>,
}

impl Message {
    /// A fan-out of `envelope`, due now.
    pub fn fan_out(envelope: EventEnvelope) -> Self {
        Message::FanOut {
            envelope,
            not_before: None,
        }
    }

    pub fn envelope(&self) -> &EventEnvelope {
        match self {
            Message::FanOut { envelope, .. } | Message::Attempt { envelope, .. } => envelope,
        }
    }

    /// The delivery an attempt names; `None` for a fan-out.
    pub fn attempt(&self) -> Option<&NextAttempt> {
        match self {
            Message::FanOut { .. } => None,
            Message::Attempt { attempt, .. } => Some(attempt),
        }
    }

    /// Not to be handled before this time: waits longer than SQS's 900 s delay are chained by
    /// sending the message again until it is due.
    pub fn not_before(&self) -> Option<OffsetDateTime> {
        match self {
            Message::FanOut { not_before, .. } | Message::Attempt { not_before, .. } => *not_before,
        }
    }

    /// The same message, due at `due`.
    pub fn due_at(mut self, due: OffsetDateTime) -> Self {
        match &mut self {
            Message::FanOut { not_before, .. } | Message::Attempt { not_before, .. } => {
                *not_before = Some(due)
            }
        }
        self
    }

    /// JSON, with the characters SQS does not carry written as escapes
    /// ([`super::json_for_sqs`]), so every message Herald makes is one SQS takes.
    pub fn encode(&self) -> Encoded {
        let envelope = self.envelope();
        let outgoing = Outgoing {
            tenant_id: &envelope.tenant_id,
            envelope_id: envelope.envelope_id,
            event: &envelope.event,
            target: self.attempt(),
            not_before: self.not_before(),
        };
        Encoded(super::json_for_sqs(
            serde_json::to_string(&outgoing).expect("messages serialize"),
        ))
    }

    pub fn decode(text: &str) -> Result<Message, serde_json::Error> {
        let m: Incoming = serde_json::from_str(text)?;
        let envelope = EventEnvelope {
            tenant_id: m.tenant_id,
            envelope_id: m.envelope_id,
            event: m.event,
        };
        Ok(match m.target {
            None => Message::FanOut {
                envelope,
                not_before: m.not_before,
            },
            Some(attempt) => Message::Attempt {
                envelope,
                attempt,
                not_before: m.not_before,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> EventEnvelope {
        let now = OffsetDateTime::now_utc();
        EventEnvelope {
            tenant_id: "tn_1".into(),
            envelope_id: Ulid::new(),
            event: Event::parse(
                &json!({"id": "e1", "type": "jobs.failed", "data": {"k": "a\u{FFFF}"}}),
                now,
            )
            .unwrap(),
        }
    }

    #[test]
    fn every_message_decodes_to_itself_and_is_one_sqs_takes() {
        let due = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let messages = [
            Message::fan_out(envelope()),
            Message::fan_out(envelope()).due_at(due),
            Message::Attempt {
                envelope: envelope(),
                attempt: NextAttempt {
                    webhook_id: "wh_1".into(),
                    delivery_id: "dl_1".into(),
                    expect_attempts: 2,
                    deferrals: 0,
                },
                not_before: Some(due),
            },
            Message::Attempt {
                envelope: envelope(),
                attempt: NextAttempt {
                    webhook_id: "wh_1".into(),
                    delivery_id: "dl_1".into(),
                    expect_attempts: 0,
                    deferrals: 3,
                },
                not_before: None,
            },
        ];
        for message in messages {
            let text = message.encode().into_string();
            assert_eq!(super::super::refusal(&text), None, "{text}");
            assert_eq!(Message::decode(&text).unwrap(), message);
        }
    }

    #[test]
    fn a_fan_out_due_now_carries_the_envelope_alone() {
        let text = Message::fan_out(envelope()).encode();
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text.as_str()).unwrap();
        let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["envelope_id", "event", "tenant_id"]);
    }
}

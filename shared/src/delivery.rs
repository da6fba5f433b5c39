//! Deliveries: one per (event acceptance, webhook), with every attempt made.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use ulid::Ulid;

/// How much of a receiver's answer is kept in the log.
pub const RESPONSE_SNIPPET_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Retrying,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub tenant_id: String,
    pub event_id: String,
    pub event_type: String,
    pub webhook_id: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Delivery {
    pub fn new(
        id: String,
        tenant_id: &str,
        event_id: &str,
        event_type: &str,
        webhook_id: &str,
        now: OffsetDateTime,
    ) -> Self {
        Delivery {
            id,
            tenant_id: tenant_id.to_string(),
            event_id: event_id.to_string(),
            event_type: event_type.to_string(),
            webhook_id: webhook_id.to_string(),
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            next_attempt_at: Some(now),
            created_at: now,
        }
    }

    /// Records an attempt. With `retries_left` false a failure is final; the retry schedule that
    /// decides `next_attempt_at` lives with the dispatcher.
    pub fn record(&mut self, attempt: Attempt, next_attempt_at: Option<OffsetDateTime>) {
        self.status = if attempt.succeeded() {
            DeliveryStatus::Succeeded
        } else if next_attempt_at.is_some() {
            DeliveryStatus::Retrying
        } else {
            DeliveryStatus::Failed
        };
        self.next_attempt_at = if self.status == DeliveryStatus::Retrying {
            next_attempt_at
        } else {
            None
        };
        self.attempts.push(attempt);
    }
}

/// The delivery id of (acceptance, webhook): deterministic so a redelivered queue message finds
/// the delivery it already made, and time-ordered like every other Herald id.
pub fn delivery_id(envelope_id: Ulid, webhook_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(envelope_id.to_bytes());
    h.update(webhook_id.as_bytes());
    let digest = h.finalize();
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let ulid = Ulid::from_parts(envelope_id.timestamp_ms(), u128::from_be_bytes(random));
    format!("dl_{ulid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(status_code: Option<u16>, error: Option<&str>) -> Attempt {
        Attempt {
            at: OffsetDateTime::UNIX_EPOCH,
            status_code,
            duration_ms: 1,
            error: error.map(str::to_string),
            response_body: None,
        }
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let env = Ulid::new();
        assert_eq!(delivery_id(env, "wh_a"), delivery_id(env, "wh_a"));
        assert_ne!(delivery_id(env, "wh_a"), delivery_id(env, "wh_b"));
        assert_ne!(delivery_id(env, "wh_a"), delivery_id(Ulid::new(), "wh_a"));
        assert!(delivery_id(env, "wh_a").starts_with("dl_"));
    }

    #[test]
    fn state_follows_attempts() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut d = Delivery::new("dl_1".into(), "t", "e", "jobs.failed", "wh", now);
        assert_eq!(d.status, DeliveryStatus::Pending);
        d.record(attempt(Some(500), None), Some(now));
        assert_eq!(d.status, DeliveryStatus::Retrying);
        assert_eq!(d.next_attempt_at, Some(now));
        d.record(attempt(None, Some("timeout")), None);
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(d.next_attempt_at, None);
        let mut ok = Delivery::new("dl_2".into(), "t", "e", "jobs.failed", "wh", now);
        ok.record(attempt(Some(204), None), Some(now));
        assert_eq!(ok.status, DeliveryStatus::Succeeded);
        assert_eq!(ok.attempts.len(), 1);
    }
}

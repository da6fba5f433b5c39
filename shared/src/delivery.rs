//! Deliveries: one per (event acceptance, webhook), with every attempt made.

use crate::http::{DeliveryError, PostOutcome};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use ulid::Ulid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Retrying,
    Succeeded,
    Failed,
    /// Its webhook was disabled when the event (or its next attempt) came: kept, not sent,
    /// until it is redelivered once the webhook is enabled again.
    Held,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::Held,
    ];

    pub fn parse(name: &str) -> Option<DeliveryStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn names() -> Vec<String> {
        Self::ALL.iter().map(|s| s.as_str().to_string()).collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Held => "held",
        }
    }
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    // Shared, not owned: a delivery is copied whole into the store at its lease and again at
    // its record, and these never change once it exists.
    pub id: Arc<str>,
    pub tenant_id: Arc<str>,
    pub event_id: Arc<str>,
    pub event_type: Arc<str>,
    pub webhook_id: Arc<str>,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Index of the first attempt of the current series: a redelivery starts a new series,
    /// with the whole schedule ahead of it.
    #[serde(default)]
    pub series_start: usize,
    /// While an attempt is in flight: until when the run making it holds the delivery. SQS may
    /// hand one message to two consumers at once; the second leaves a leased delivery alone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub leased_until: Option<OffsetDateTime>,
    /// When the sweep looks at this delivery next: the due time of a wait longer than the
    /// queue can hold, or a time past a queued attempt's due time by which it is long overdue
    /// (its message was lost). `None` once nothing is left to attempt.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub sweep_at: Option<OffsetDateTime>,
    /// Sweeps that queued this delivery since its last attempt; bounded, so a delivery whose
    /// messages never lead to an attempt is given up rather than queued for ever.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sweeps: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

// Clone by hand for `clone_from`, which the derive leaves allocating: the in-memory store puts
// each attempt's record over the leased copy and reuses its strings.
impl Clone for Attempt {
    fn clone(&self) -> Self {
        Attempt {
            at: self.at,
            status_code: self.status_code,
            duration_ms: self.duration_ms,
            error: self.error.clone(),
            response_body: self.response_body.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.at = source.at;
        self.status_code = source.status_code;
        self.duration_ms = source.duration_ms;
        self.error.clone_from(&source.error);
        self.response_body.clone_from(&source.response_body);
    }
}

impl Clone for Delivery {
    fn clone(&self) -> Self {
        Delivery {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            webhook_id: self.webhook_id.clone(),
            status: self.status,
            attempts: self.attempts.clone(),
            next_attempt_at: self.next_attempt_at,
            created_at: self.created_at,
            series_start: self.series_start,
            leased_until: self.leased_until,
            sweep_at: self.sweep_at,
            sweeps: self.sweeps,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.id.clone_from(&source.id);
        self.tenant_id.clone_from(&source.tenant_id);
        self.event_id.clone_from(&source.event_id);
        self.event_type.clone_from(&source.event_type);
        self.webhook_id.clone_from(&source.webhook_id);
        self.status = source.status;
        self.attempts.clone_from(&source.attempts);
        self.next_attempt_at = source.next_attempt_at;
        self.created_at = source.created_at;
        self.series_start = source.series_start;
        self.leased_until = source.leased_until;
        self.sweep_at = source.sweep_at;
        self.sweeps = source.sweeps;
    }
}

impl Delivery {
    pub fn new(
        id: Arc<str>,
        tenant_id: impl Into<Arc<str>>,
        event_id: impl Into<Arc<str>>,
        event_type: impl Into<Arc<str>>,
        webhook_id: impl Into<Arc<str>>,
        now: OffsetDateTime,
    ) -> Self {
        Delivery {
            id,
            tenant_id: tenant_id.into(),
            event_id: event_id.into(),
            event_type: event_type.into(),
            webhook_id: webhook_id.into(),
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            next_attempt_at: Some(now),
            created_at: now,
            series_start: 0,
            leased_until: None,
            sweep_at: None,
            sweeps: 0,
        }
    }

    /// Attempts made in the current series.
    pub fn attempts_in_series(&self) -> usize {
        self.attempts.len().saturating_sub(self.series_start)
    }

    /// Whether a run holds the delivery at `now`.
    pub fn leased_at(&self, now: OffsetDateTime) -> bool {
        self.leased_until.is_some_and(|until| until > now)
    }

    /// Records an attempt and gives the lease back. Without `next_attempt_at` a failure is
    /// final; the retry schedule that decides it lives with the dispatcher.
    pub fn record(&mut self, attempt: Attempt, next_attempt_at: Option<OffsetDateTime>) {
        self.leased_until = None;
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
        self.sweeps = 0;
        self.sweep_at = self.next_attempt_at.map(|due| sweep_time(due, attempt.at));
        self.attempts.push(attempt);
        let older = self.attempts.len().saturating_sub(KEPT_BODIES);
        for old in &mut self.attempts[..older] {
            old.response_body = None;
        }
    }

    /// Holds the delivery while its webhook is disabled: nothing is due, nothing to sweep.
    pub fn hold(&mut self) {
        self.status = DeliveryStatus::Held;
        self.next_attempt_at = None;
        self.leased_until = None;
        self.sweep_at = None;
        self.sweeps = 0;
    }

    /// Whether a new series of up to `schedule` attempts (a redelivery) still fits
    /// `MAX_ATTEMPTS`.
    pub fn may_start_series(&self, schedule: usize) -> bool {
        self.attempts.len() + schedule <= MAX_ATTEMPTS
    }
}

/// The most attempts one delivery keeps: a redelivery that could take it past this is refused
/// (`Delivery::may_start_series`). With the response snippets of the last `KEPT_BODIES`
/// attempts only, a delivery stays under about 100 KB, far inside DynamoDB's 400 KB item.
pub const MAX_ATTEMPTS: usize = 100;
/// Attempts that keep their response snippet; older ones keep status, duration and error.
pub const KEPT_BODIES: usize = 10;

/// How long past its due time a queued attempt may stay unmade before the sweep presumes its
/// message lost (a purged queue, a dead letter expired) and queues the attempt again.
pub const OVERDUE_AFTER: time::Duration = time::Duration::hours(1);

/// Whether a wait is carried by a queue message (SQS delays a message 900 s at most); a longer
/// one is the sweep's to queue shortly before it is due.
pub fn queued_wait(wait: Duration) -> bool {
    wait <= crate::queue::MAX_DELAY
}

/// When the sweep looks next at a delivery due at `due`, as of `now`: at `due` itself when no
/// message carries the wait, and once the attempt is long overdue when one does.
pub fn sweep_time(due: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
    let wait: Duration = (due - now).try_into().unwrap_or_default();
    if queued_wait(wait) {
        due + OVERDUE_AFTER
    } else {
        due
    }
}

/// What an attempt's outcome means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Succeeded,
    /// Try again after this delay.
    Retry(Duration),
    /// The schedule is spent, or retrying cannot help.
    Failed,
    /// The endpoint answered 410: the delivery fails and the webhook is disabled at once.
    Gone,
}

/// What the receiver answered, as the retry policy reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status_code: Option<u16>,
    /// Refused by the SSRF guard: retrying would only be refused again.
    pub blocked: bool,
    pub retry_after: Option<Duration>,
}

impl From<&PostOutcome> for Answer {
    /// The transport's facts, interpreted: a status counts only when the request got an HTTP
    /// answer, and a refusal by the SSRF guard is told apart from every other failure.
    fn from(post: &PostOutcome) -> Self {
        Answer {
            status_code: if post.error.is_none() {
                post.status_code
            } else {
                None
            },
            blocked: matches!(post.error, Some(DeliveryError::Blocked(_))),
            retry_after: post.retry_after,
        }
    }
}

/// The retry policy (SPEC §4). `attempts` is how many attempts the series has made, this one
/// included; `schedule[i]` is the delay before attempt i+1. Timeouts, connection errors and
/// every non-2xx status retry (receivers misconfigure) except 410. `Retry-After` on 429/503
/// lengthens the wait, up to the schedule's longest delay. `jitter` in [-1, 1] scales ±10 %.
pub fn verdict(outcome: Answer, attempts: usize, schedule: &[Duration], jitter: f64) -> Verdict {
    match outcome.status_code {
        Some(code) if (200..300).contains(&code) => return Verdict::Succeeded,
        Some(410) => return Verdict::Gone,
        _ => {}
    }
    if outcome.blocked || attempts >= schedule.len() {
        return Verdict::Failed;
    }
    let scheduled = schedule[attempts].mul_f64(1.0 + 0.1 * jitter.clamp(-1.0, 1.0));
    let honoured = match (outcome.status_code, outcome.retry_after) {
        (Some(429 | 503), Some(asked)) => {
            let longest = schedule.iter().max().copied().unwrap_or_default();
            scheduled.max(asked.min(longest))
        }
        _ => scheduled,
    };
    Verdict::Retry(honoured)
}

/// The delivery id of (acceptance, webhook): deterministic so a redelivered queue message finds
/// the delivery it already made, and time-ordered like every other Herald id. `dl_`, a ULID of
/// the acceptance's time, then the webhook's own ULID, so the id names where the delivery is
/// kept (under its webhook's log, [`webhook_of`]). A webhook id that is not `wh_` and a ULID
/// gets the id without it.
pub fn delivery_id(envelope_id: Ulid, webhook_id: &str) -> Arc<str> {
    let digest = id_digest(envelope_id, webhook_id);
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest.as_ref()[..10]);
    let ulid = Ulid::from_parts(envelope_id.timestamp_ms(), u128::from_be_bytes(random));
    // Written on the stack and copied once into its shared string: this runs per delivery.
    let mut text = [0; DELIVERY_ID_LEN];
    text[..3].copy_from_slice(b"dl_");
    let mut digits = [0; ulid::ULID_LEN];
    text[3..SHORT_ID_LEN].copy_from_slice(ulid.array_to_str(&mut digits).as_bytes());
    let len = match webhook_ulid(webhook_id) {
        Some(w) => {
            text[SHORT_ID_LEN..].copy_from_slice(w.as_bytes());
            DELIVERY_ID_LEN
        }
        None => SHORT_ID_LEN,
    };
    Arc::from(std::str::from_utf8(&text[..len]).expect("ULID text is ASCII"))
}

/// `dl_` and the acceptance's ULID: the whole of a delivery id whose webhook is not named in
/// it (made before ids named it, or for a webhook id that is not a ULID).
const SHORT_ID_LEN: usize = 3 + ulid::ULID_LEN;
const DELIVERY_ID_LEN: usize = SHORT_ID_LEN + ulid::ULID_LEN;

/// The ULID part of a `wh_` id.
fn webhook_ulid(webhook_id: &str) -> Option<&str> {
    webhook_id
        .strip_prefix("wh_")
        .filter(|u| u.len() == ulid::ULID_LEN && Ulid::from_string(u).is_ok())
}

/// The webhook a delivery id names (`wh_` and the ULID at its end); `None` for an id that
/// names none.
pub fn webhook_of(delivery_id: &str) -> Option<String> {
    let tail = delivery_id
        .strip_prefix("dl_")
        .filter(|_| delivery_id.len() == DELIVERY_ID_LEN)?
        .get(ulid::ULID_LEN..)?;
    Ulid::from_string(tail).ok().map(|_| format!("wh_{tail}"))
}

/// Whether `id` is the delivery of (acceptance, webhook): the id [`delivery_id`] makes, or the
/// shorter one it made before ids named their webhook.
pub fn is_delivery_of(id: &str, envelope_id: Ulid, webhook_id: &str) -> bool {
    let made = delivery_id(envelope_id, webhook_id);
    *made == *id || made.get(..SHORT_ID_LEN) == Some(id)
}

/// SHA-256 of the envelope id's bytes then the webhook id's. Hashed in one call from the stack
/// when they fit (a streaming context allocates its state on the heap); both ways agree.
fn id_digest(envelope_id: Ulid, webhook_id: &str) -> aws_lc_rs::digest::Digest {
    use aws_lc_rs::digest;
    let mut input = [0u8; 128];
    let len = 16 + webhook_id.len();
    if len <= input.len() {
        input[..16].copy_from_slice(&envelope_id.to_bytes());
        input[16..len].copy_from_slice(webhook_id.as_bytes());
        return digest::digest(&digest::SHA256, &input[..len]);
    }
    let mut h = digest::Context::new(&digest::SHA256);
    h.update(&envelope_id.to_bytes());
    h.update(webhook_id.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest attempt the client can record: a whole snippet of control bytes (escaped to
    /// six characters each in JSON) and a long error.
    fn largest_attempt(at: OffsetDateTime) -> Attempt {
        Attempt {
            at,
            status_code: Some(500),
            duration_ms: u64::MAX,
            error: Some("e".repeat(200)),
            response_body: Some("\u{1}".repeat(crate::http::client::RESPONSE_SNIPPET_BYTES)),
        }
    }

    #[test]
    fn a_delivery_at_its_attempt_limit_stays_far_inside_an_item() {
        let now = OffsetDateTime::now_utc();
        let mut d = Delivery::new("dl_x".into(), "tn_a", "evt", "jobs.failed", "wh_a", now);
        for _ in 0..MAX_ATTEMPTS {
            d.record(largest_attempt(now), Some(now));
        }
        let kept = d
            .attempts
            .iter()
            .filter(|a| a.response_body.is_some())
            .count();
        assert_eq!(kept, KEPT_BODIES);
        assert!(
            d.attempts[MAX_ATTEMPTS - 1].response_body.is_some(),
            "the newest keep theirs"
        );
        let bytes = serde_json::to_vec(&d).unwrap().len();
        assert!(bytes < 120 * 1024, "{bytes} bytes");
        assert!(!d.may_start_series(1));
        d.attempts.truncate(MAX_ATTEMPTS - 8);
        assert!(d.may_start_series(8));
        assert!(!d.may_start_series(9));
    }

    #[test]
    fn delivery_ids_hash_the_same_input_whatever_its_length() {
        let envelope = Ulid::from_parts(1_795_428_000_000, 42);
        for len in [1, 29, 112, 113, 500] {
            let webhook_id = "w".repeat(len);
            let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            h.update(&envelope.to_bytes());
            h.update(webhook_id.as_bytes());
            assert_eq!(
                id_digest(envelope, &webhook_id).as_ref(),
                h.finish().as_ref(),
                "{len}"
            );
        }
    }

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
    fn clone_from_copies_every_field() {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let mut source = Delivery::new("dl_a".into(), "tn_a", "evt_a", "jobs.failed", "wh_a", at);
        source.status = DeliveryStatus::Retrying;
        source.attempts = vec![attempt(Some(500), None), attempt(None, Some("timeout"))];
        source.attempts[0].response_body = Some("busy".into());
        source.next_attempt_at = Some(at + time::Duration::minutes(5));
        source.series_start = 1;
        source.leased_until = Some(at + time::Duration::minutes(1));
        let mut target = Delivery::new(
            "dl_b".into(),
            "tn_b",
            "evt_b",
            "jobs.succeeded",
            "wh_b",
            OffsetDateTime::UNIX_EPOCH,
        );
        target.attempts = vec![attempt(Some(200), None); 3];
        target.clone_from(&source);
        assert_eq!(target, source);
        assert_eq!(source.clone(), source);
    }

    fn outcome(status_code: Option<u16>) -> Answer {
        Answer {
            status_code,
            blocked: false,
            retry_after: None,
        }
    }

    fn schedule() -> Vec<Duration> {
        crate::config::parse_schedule(crate::config::DEFAULT_RETRY_SCHEDULE).unwrap()
    }

    #[test]
    fn the_default_schedule_spans_about_27_6_hours() {
        let total: Duration = schedule().iter().sum();
        assert_eq!(schedule().len(), 8);
        assert_eq!(
            total.as_secs(),
            5 + 300 + 1800 + 7200 + 18000 + 36000 + 36000
        );
    }

    #[test]
    fn verdicts_follow_the_spec() {
        let s = schedule();
        assert_eq!(verdict(outcome(Some(204)), 1, &s, 0.0), Verdict::Succeeded);
        assert_eq!(verdict(outcome(Some(410)), 1, &s, 0.0), Verdict::Gone);
        for code in [
            None,
            Some(500),
            Some(503),
            Some(429),
            Some(408),
            Some(400),
            Some(404),
            Some(301),
        ] {
            assert_eq!(
                verdict(outcome(code), 1, &s, 0.0),
                Verdict::Retry(Duration::from_secs(5)),
                "{code:?}"
            );
        }
        assert_eq!(
            verdict(outcome(Some(500)), 2, &s, 0.0),
            Verdict::Retry(Duration::from_secs(300))
        );
        assert_eq!(
            verdict(outcome(Some(500)), 7, &s, 0.0),
            Verdict::Retry(Duration::from_secs(36000))
        );
        assert_eq!(
            verdict(outcome(Some(500)), 8, &s, 0.0),
            Verdict::Failed,
            "8 attempts, then failed"
        );
        let blocked = Answer {
            status_code: None,
            blocked: true,
            retry_after: None,
        };
        assert_eq!(verdict(blocked, 1, &s, 0.0), Verdict::Failed);
    }

    #[test]
    fn jitter_is_ten_percent_at_most() {
        let s = schedule();
        assert_eq!(
            verdict(outcome(Some(500)), 2, &s, 1.0),
            Verdict::Retry(Duration::from_secs(330))
        );
        assert_eq!(
            verdict(outcome(Some(500)), 2, &s, -1.0),
            Verdict::Retry(Duration::from_secs(270))
        );
        assert_eq!(
            verdict(outcome(Some(500)), 2, &s, 7.0),
            Verdict::Retry(Duration::from_secs(330))
        );
    }

    #[test]
    fn retry_after_lengthens_within_the_schedule() {
        let s = schedule();
        let asked = |secs, code| Answer {
            status_code: Some(code),
            blocked: false,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            verdict(asked(60, 429), 1, &s, 0.0),
            Verdict::Retry(Duration::from_secs(60))
        );
        assert_eq!(
            verdict(asked(1, 503), 1, &s, 0.0),
            Verdict::Retry(Duration::from_secs(5)),
            "never shorter"
        );
        assert_eq!(
            verdict(asked(999_999, 503), 1, &s, 0.0),
            Verdict::Retry(Duration::from_secs(36000)),
            "capped"
        );
        assert_eq!(
            verdict(asked(60, 500), 1, &s, 0.0),
            Verdict::Retry(Duration::from_secs(5)),
            "only on 429/503"
        );
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
    fn an_id_names_its_webhook_when_the_webhook_id_is_a_ulid() {
        let env = Ulid::new();
        let webhook = format!("wh_{}", Ulid::new());
        let id = delivery_id(env, &webhook);
        assert_eq!(id.len(), 55);
        assert_eq!(webhook_of(&id), Some(webhook.clone()));
        assert!(is_delivery_of(&id, env, &webhook));
        assert!(
            is_delivery_of(&id[..29], env, &webhook),
            "the id made before ids named their webhook"
        );
        assert!(!is_delivery_of(&id, Ulid::new(), &webhook));
        let short = delivery_id(env, "wh_a");
        assert_eq!((short.len(), webhook_of(&short)), (29, None));
        assert_eq!(webhook_of(&id[..29]), None);
        assert_eq!(
            webhook_of(&format!("dl_{}{}", Ulid::new(), "!".repeat(26))),
            None
        );
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

//! Recoveries: a new attempt series for every delivery of one webhook accepted in a window (and
//! of one status, or every one not succeeded), as a job that moves through the webhook's log a
//! page at a time, newest first, so a window of millions is never one invocation's work.

use crate::delivery::{Delivery, DeliveryStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use ulid::Ulid;

/// How long a recovery job is kept after it was asked for, like the deliveries it recovers.
pub const RECOVERY_RETENTION: time::Duration = time::Duration::days(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecoveryState {
    /// Pages of the window are left; the sweep moves it on.
    Running,
    /// The whole window was looked at.
    Done,
    /// Stopped before the end: its webhook was deleted or disabled (`stopped` says which).
    Stopped,
}

/// A recovery job as stored; the API shows it as `service::api::RecoveryView`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// `rc_` and a ULID.
    pub id: String,
    pub webhook_id: String,
    pub tenant_id: String,
    /// Deliveries of events accepted from `since` (included) to `until` (excluded).
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// Only deliveries in this status; `None`: every one not succeeded.
    pub status: Option<DeliveryStatus>,
    pub state: RecoveryState,
    /// Deliveries of the window looked at so far.
    pub scanned: u64,
    /// Of those, the ones whose status matched.
    pub matched: u64,
    /// Of those, the ones given a new attempt series.
    pub queued: u64,
    /// Matched but not queued, each with its reason in the log: an attempt running, a delivery
    /// at its attempt limit, its event no longer kept.
    pub skipped: u64,
    /// Why it stopped, when `state` is `stopped`.
    #[serde(default)]
    pub stopped: Option<String>,
    /// The last delivery id looked at: the next page starts below it.
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Recovery {
    pub fn new(
        tenant_id: &str,
        webhook_id: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
        status: Option<DeliveryStatus>,
        now: OffsetDateTime,
    ) -> Self {
        Recovery {
            id: crate::ids::prefixed("rc"),
            webhook_id: webhook_id.into(),
            tenant_id: tenant_id.into(),
            since,
            until,
            status,
            state: RecoveryState::Running,
            scanned: 0,
            matched: 0,
            queued: 0,
            skipped: 0,
            stopped: None,
            cursor: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether a delivery's status is one this recovery restarts.
    pub fn wants(&self, delivery: &Delivery) -> bool {
        match self.status {
            Some(status) => delivery.status == status,
            None => delivery.status != DeliveryStatus::Succeeded,
        }
    }

    /// The id below which the next page of the log starts: the cursor, or the first id of a
    /// delivery accepted at `until`.
    pub fn below(&self) -> String {
        self.cursor
            .clone()
            .unwrap_or_else(|| first_id_at(self.until))
    }

    /// Whether a delivery id (newest first, so every later one too) is older than the window.
    pub fn before_window(&self, delivery_id: &str) -> bool {
        *delivery_id < *first_id_at(self.since)
    }
}

/// The smallest delivery id of an event accepted at `at`: delivery ids are `dl_` and a ULID of
/// the acceptance's time, so they sort by it.
fn first_id_at(at: OffsetDateTime) -> String {
    let ms = (at.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    format!("dl_{}", Ulid::from_parts(ms, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::delivery_id;

    #[test]
    fn the_window_is_read_by_the_acceptance_time_in_the_ids() {
        let t = OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap();
        let job = Recovery::new("tn", "wh", t, t + time::Duration::seconds(10), None, t);
        let at = |s: i64| {
            let ms = ((t + time::Duration::seconds(s)).unix_timestamp_nanos() / 1_000_000) as u64;
            delivery_id(Ulid::from_parts(ms, 42), &format!("wh_{}", Ulid::new()))
        };
        assert!(*at(9) < *job.below(), "inside the window, below its end");
        assert!(*at(10) >= *job.below(), "at the end: outside");
        assert!(!job.before_window(&at(0)), "the start is inside");
        assert!(job.before_window(&at(-1)));
    }

    #[test]
    fn the_default_is_every_delivery_not_succeeded() {
        let now = OffsetDateTime::now_utc();
        let mut d = Delivery::new("dl_a".into(), "tn", "e", "jobs.failed", "wh", now);
        let all = Recovery::new("tn", "wh", now, now, None, now);
        let held = Recovery::new("tn", "wh", now, now, Some(DeliveryStatus::Held), now);
        for (status, by_default, when_held) in [
            (DeliveryStatus::Failed, true, false),
            (DeliveryStatus::Held, true, true),
            (DeliveryStatus::Succeeded, false, false),
        ] {
            d.status = status;
            assert_eq!((all.wants(&d), held.wants(&d)), (by_default, when_held));
        }
    }
}

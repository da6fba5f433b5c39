//! A webhook's health as numbers: its attempts by outcome, per hour. Dispatch counts a batch's
//! attempts per (webhook, hour) and adds them in one write each, so the counts cost a write per
//! batch and webhook, not one per delivery; the API reads the hours of a window back.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// How long an hour's counts are kept: the longest window asked for, and a day more.
pub const STATS_RETENTION: Duration = Duration::days(8);

/// What one hour's attempts to a webhook came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    /// Attempts answered 2xx.
    pub succeeded: u64,
    /// Attempts that failed with another one scheduled.
    pub retried: u64,
    /// Attempts that failed for good (the schedule's last, a 410, an address the guard refused).
    pub failed: u64,
    /// Deliveries held while the webhook was disabled.
    pub held: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.succeeded += other.succeeded;
        self.retried += other.retried;
        self.failed += other.failed;
        self.held += other.held;
    }

    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }

    /// Attempts made (held deliveries made none).
    pub fn attempts(&self) -> u64 {
        self.succeeded + self.retried + self.failed
    }

    /// Succeeded attempts over attempts made; `None` when none were made.
    pub fn success_rate(&self) -> Option<f64> {
        let attempts = self.attempts();
        (attempts > 0).then(|| self.succeeded as f64 / attempts as f64)
    }
}

/// The windows the API shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Day,
    Week,
}

impl Window {
    pub const NAMES: [&'static str; 2] = ["24h", "7d"];

    pub fn parse(name: &str) -> Option<Window> {
        match name {
            "24h" => Some(Window::Day),
            "7d" => Some(Window::Week),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
        }
    }

    pub fn hours(self) -> i64 {
        match self {
            Window::Day => 24,
            Window::Week => 24 * 7,
        }
    }

    /// The first hour of the window that ends with the hour of `now`.
    pub fn first_hour(self, now: OffsetDateTime) -> OffsetDateTime {
        hour_of(now) - Duration::hours(self.hours() - 1)
    }
}

/// The start of the UTC hour `at` falls in.
pub fn hour_of(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(at)
}

/// Every hour of `window` ending at the hour of `now`, oldest first, with the counts stored
/// for it (zero for an hour without any).
pub fn hours(
    window: Window,
    now: OffsetDateTime,
    stored: &[(OffsetDateTime, Counts)],
) -> Vec<(OffsetDateTime, Counts)> {
    let first = window.first_hour(now);
    (0..window.hours())
        .map(|i| {
            let hour = first + Duration::hours(i);
            let counts = stored.iter().filter(|(h, _)| *h == hour).fold(
                Counts::default(),
                |mut sum, (_, c)| {
                    sum.add(c);
                    sum
                },
            );
            (hour, counts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_window_has_every_hour_oldest_first_with_zeros_between() {
        let now = datetime!(2026-12-04 19:41:07 UTC);
        let stored = [
            (
                datetime!(2026-12-04 19:00 UTC),
                Counts {
                    succeeded: 3,
                    failed: 1,
                    ..Counts::default()
                },
            ),
            (
                datetime!(2026-12-03 20:00 UTC),
                Counts {
                    retried: 2,
                    ..Counts::default()
                },
            ),
            // Outside the window: not shown.
            (
                datetime!(2026-12-03 19:00 UTC),
                Counts {
                    succeeded: 9,
                    ..Counts::default()
                },
            ),
        ];
        let day = hours(Window::Day, now, &stored);
        assert_eq!(day.len(), 24);
        assert_eq!(day[0].0, datetime!(2026-12-03 20:00 UTC));
        assert_eq!(day[0].1.retried, 2);
        assert_eq!(day[23].0, datetime!(2026-12-04 19:00 UTC));
        assert_eq!(day[23].1.succeeded, 3);
        assert!(day[1..23].iter().all(|(_, c)| c.is_empty()));
        assert_eq!(hours(Window::Week, now, &stored).len(), 168);
    }

    #[test]
    fn the_success_rate_counts_attempts_not_held_deliveries() {
        let c = Counts {
            succeeded: 3,
            retried: 1,
            failed: 0,
            held: 5,
        };
        assert_eq!(c.success_rate(), Some(0.75));
        let held_only = Counts {
            held: 2,
            ..Counts::default()
        };
        assert_eq!(held_only.success_rate(), None);
        assert_eq!(Window::parse("7d"), Some(Window::Week));
        assert_eq!(Window::parse("30d"), None);
        assert_eq!(
            hour_of(datetime!(2026-12-04 19:59:59.9 +01:00)),
            datetime!(2026-12-04 18:00 UTC)
        );
    }
}

//! A webhook's health over a window: its attempts by outcome per hour, and the success rate.

use super::*;
use crate::stats::{self, Counts, Window};

/// One hour of a webhook's attempts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HourStats {
    /// The hour's start (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub hour: OffsetDateTime,
    pub succeeded: u64,
    pub retried: u64,
    pub failed: u64,
    pub held: u64,
}

/// What `GET /v1/webhooks/{id}/stats` answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatsView {
    pub webhook_id: String,
    /// `24h` or `7d`.
    pub window: String,
    /// Every hour of the window, oldest first, the current one last (zeros included).
    pub hours: Vec<HourStats>,
    pub totals: Counts,
    /// Succeeded attempts over attempts made in the window; null when none were made.
    pub success_rate: Option<f64>,
}

impl Api {
    pub async fn webhook_stats(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        window: Option<&str>,
    ) -> Result<StatsView> {
        let window = match window {
            None => Window::Day,
            Some(name) => Window::parse(name).ok_or_else(|| {
                Error::Validation(vec![FieldError::new("window", "must be 24h or 7d")
                    .with_valid(Window::NAMES.iter().map(|n| n.to_string()).collect())])
            })?,
        };
        self.webhook(tenant_id, webhook_id).await?;
        let now = OffsetDateTime::now_utc();
        let stored = self
            .store
            .counts(tenant_id, webhook_id, window.first_hour(now))
            .await?;
        let mut totals = Counts::default();
        let hours = stats::hours(window, now, &stored)
            .into_iter()
            .map(|(hour, c)| {
                totals.add(&c);
                HourStats {
                    hour,
                    succeeded: c.succeeded,
                    retried: c.retried,
                    failed: c.failed,
                    held: c.held,
                }
            })
            .collect();
        Ok(StatsView {
            webhook_id: webhook_id.to_string(),
            window: window.name().to_string(),
            hours,
            success_rate: totals.success_rate(),
            totals,
        })
    }
}

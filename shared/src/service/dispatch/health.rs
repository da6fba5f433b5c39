//! A webhook's health: failing since when and how many times in a row, disabled after failing for the
//! whole window, reset by a success; each transition told as an operational event.

use super::*;
use crate::operational::{self, FAILING_AFTER};

/// How often a health change is applied again when the webhook was written meanwhile.
pub(super) const HEALTH_WRITE_TRIES: usize = 3;

/// How an attempt's verdict changes its webhook's health, if it does.
pub(super) type HealthChange = fn(&mut Webhook, OffsetDateTime, Duration) -> bool;

/// Auto-disable and the failing count: a 410 disables at once; failures since `failing_since`
/// for longer than `disable_after` disable; failures in a row are counted up to
/// `FAILING_AFTER`; one success clears the clock and the count. Written only on transitions, so
/// the common success changes nothing and reads nothing, and a long failing streak writes
/// nothing between its `FAILING_AFTER`th failure and the end of the disable window.
pub(super) fn health_change(seen: &Webhook, verdict: Verdict) -> Option<HealthChange> {
    match verdict {
        Verdict::Succeeded if seen.failing_since.is_some() || seen.failures > 0 => {
            Some(|w, _, _| {
                let changed = w.failing_since.is_some() || w.failures > 0;
                w.failing_since = None;
                w.failures = 0;
                changed
            })
        }
        Verdict::Succeeded => None,
        Verdict::Gone => Some(|w, now, _| {
            count_failure(w);
            w.spec.enabled = false;
            w.disabled_reason = Some("the endpoint answered 410 Gone".into());
            w.updated_at = now;
            true
        }),
        Verdict::Retry(_) | Verdict::Failed => Some(|w, now, after| {
            let counted = count_failure(w);
            match w.failing_since {
                None => {
                    w.failing_since = Some(now);
                    true
                }
                Some(since) if now - since >= after && w.spec.enabled => {
                    w.spec.enabled = false;
                    w.disabled_reason = Some(format!(
                        "every delivery attempt failed since {}",
                        since
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                    ));
                    w.updated_at = now;
                    true
                }
                Some(_) => counted,
            }
        }),
    }
}

/// Counts one more failure in a row, up to `FAILING_AFTER`: `true` when the count moved.
fn count_failure(w: &mut Webhook) -> bool {
    if w.failures >= FAILING_AFTER {
        return false;
    }
    w.failures += 1;
    true
}

impl Dispatcher {
    /// Applies a health change to the webhook as stored now (see [`health_change`]). The write
    /// is conditioned on the revision read, so a PATCH or a rotation made meanwhile is never
    /// overwritten: the change is applied again to the fresh copy instead.
    pub(super) async fn change_health(
        &self,
        seen: &Webhook,
        change: HealthChange,
        now: OffsetDateTime,
    ) {
        for _ in 0..HEALTH_WRITE_TRIES {
            let mut fresh = match self.store.get_webhook(&seen.tenant_id, &seen.id).await {
                Ok(Some(w)) => w,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(webhook_id = %seen.id, error = %e, "could not read webhook health");
                    return;
                }
            };
            // Health is judged for the endpoint the attempt went to; a webhook moved elsewhere
            // since has a clock of its own.
            let before = fresh.clone();
            if fresh.spec.url != seen.spec.url
                || !change(&mut fresh, now, self.settings.disable_after)
            {
                return;
            }
            match self.store.update_webhook(&fresh).await {
                Ok(true) => {
                    if !fresh.spec.enabled && before.spec.enabled {
                        tracing::warn!(webhook_id = %fresh.id, reason = ?fresh.disabled_reason, "webhook disabled");
                    }
                    for event in operational::health_events(&before, &fresh, now) {
                        self.announce(&fresh.tenant_id, event).await;
                    }
                    return;
                }
                Ok(false) => continue,
                Err(e) => {
                    // Health is advisory: the delivery itself is recorded, so the record is done.
                    tracing::warn!(webhook_id = %seen.id, error = %e, "could not update webhook health");
                    return;
                }
            }
        }
    }
}

//! A batch's attempts counted per webhook and added to its hour (`crate::stats`): one write
//! per webhook the batch reached, not one per delivery.

use super::*;
use crate::stats::{hour_of, Counts};

/// What a batch's jobs came to, per (tenant, webhook).
#[derive(Default)]
pub(super) struct Counted<'a>(HashMap<(&'a str, &'a str), Counts>);

impl<'a> Counted<'a> {
    pub(super) fn count(&mut self, webhook: &'a Webhook, result: &JobResult) {
        let outcome: fn(&mut Counts) -> &mut u64 = match result {
            JobResult::Held => |c| &mut c.held,
            JobResult::Attempted { verdict, .. } => match verdict {
                Verdict::Succeeded => |c| &mut c.succeeded,
                Verdict::Retry(_) => |c| &mut c.retried,
                Verdict::Failed | Verdict::Gone => |c| &mut c.failed,
            },
            JobResult::Skipped | JobResult::Internal | JobResult::NotStarted => return,
        };
        *outcome(self.0.entry((&webhook.tenant_id, &webhook.id)).or_default()) += 1;
    }
}

impl Dispatcher {
    /// Adds each webhook's counts to the current hour, the writes at once. Advisory, like
    /// health: a failed write is logged and its counts are lost, never a reason to hand the
    /// batch back (that would repeat its POSTs). Skipped when the deadline leaves no room for
    /// a call, so counting never makes the invocation time out.
    pub(super) async fn add_counts(&self, counted: Counted<'_>, deadline: Option<Instant>) {
        if counted.0.is_empty()
            || deadline.is_some_and(|d| Instant::now() + self.settings.call_timeout > d)
        {
            return;
        }
        let hour = hour_of(OffsetDateTime::now_utc());
        let writes = counted
            .0
            .iter()
            .map(|((tenant_id, webhook_id), counts)| async move {
                if let Err(e) = self
                    .store
                    .add_counts(tenant_id, webhook_id, hour, counts)
                    .await
                {
                    tracing::warn!(webhook_id, error = %e, "could not add a batch's counts");
                }
            });
        futures::future::join_all(writes).await;
    }
}

//! Recovery jobs: a new attempt series for a webhook's deliveries of a window
//! (`POST /v1/webhooks/{id}/recover`), and their progress (`GET /v1/recoveries/{id}`).

use super::*;
use crate::event::timestamp;
use crate::fields::{describe, refused, rule, text, Fields, Rule};
use crate::recovery::{Recovery, RecoveryState, RECOVERY_RETENTION};
use crate::service::recovery::{advance, ANSWER_BUDGET};

/// The fields of a recovery request.
pub const RECOVER_FIELDS: [&str; 3] = ["since", "until", "status"];

/// A recovery job as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecoveryView {
    /// `rc_` and a ULID.
    pub id: String,
    pub webhook_id: String,
    /// Deliveries of events accepted from `since` (included) to `until` (excluded).
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// The status recovered; absent: every delivery not succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<DeliveryStatus>,
    /// `running` while pages of the window are left (the sweep moves it on every 5 minutes),
    /// `done`, or `stopped` (see `stopped`).
    pub state: RecoveryState,
    /// Deliveries of the window looked at so far.
    pub scanned: u64,
    /// Of those, the ones whose status matched.
    pub matched: u64,
    /// Of those, the ones given a new attempt series.
    pub queued: u64,
    /// Matched but not queued: an attempt running, at the attempt limit, or the event no
    /// longer kept.
    pub skipped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Recovery> for RecoveryView {
    fn from(r: &Recovery) -> Self {
        RecoveryView {
            id: r.id.clone(),
            webhook_id: r.webhook_id.clone(),
            since: r.since,
            until: r.until,
            status: r.status,
            state: r.state,
            scanned: r.scanned,
            matched: r.matched,
            queued: r.queued,
            skipped: r.skipped,
            stopped: r.stopped.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A delivery status, by name.
fn status() -> impl Rule<Output = DeliveryStatus> {
    rule(
        || json!({"type": "string", "enum": DeliveryStatus::names()}),
        |value| {
            let name = text(value)?;
            DeliveryStatus::parse(name).ok_or_else(|| {
                refused("must be a delivery status").with_valid(DeliveryStatus::names())
            })
        },
    )
}

type Window = (
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<DeliveryStatus>,
);

fn read(f: &mut Fields<'_>) -> Window {
    let since = f.required(
        "since",
        refused("is required: the start of the window, an RFC 3339 timestamp"),
        timestamp().about("Deliveries of events accepted from this time (RFC 3339)."),
    );
    let until = f.optional(
        "until",
        timestamp().about("…to this time, excluded (RFC 3339); default now."),
    );
    let status = f.optional(
        "status",
        status().about("Only deliveries in this status; default every one not succeeded."),
    );
    (since, until, status)
}

/// The request body's JSON Schema, from the reader that validates it.
pub fn recover_schema() -> Value {
    describe(&RECOVER_FIELDS, read)
}

impl Api {
    /// Starts a recovery job over the webhook's deliveries of a window and runs its first
    /// pages before answering; the sweep moves it on from there.
    pub async fn recover(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        body: &Value,
    ) -> Result<Recovery> {
        let Some(object) = body.as_object() else {
            return Err(Error::BadRequest(
                "the body must be {\"since\": ..., \"until\"?: ..., \"status\"?: ...}".into(),
            ));
        };
        let mut f = Fields::new(object, &RECOVER_FIELDS);
        let (since, until, status) = read(&mut f);
        f.finish()?;
        let now = OffsetDateTime::now_utc();
        let since = since.expect("a body without refusals has `since`");
        let until = until.unwrap_or(now);
        if until <= since {
            return Err(Error::field("until", "must be after `since`"));
        }
        self.start_recovery(tenant_id, webhook_id, since, until, status, now)
            .await
    }

    /// A recovery job of `webhook_id` for the window, stored before any work and run for
    /// `ANSWER_BUDGET`. A page that fails leaves it running, for the sweep.
    pub(super) async fn start_recovery(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
        status: Option<DeliveryStatus>,
        now: OffsetDateTime,
    ) -> Result<Recovery> {
        let webhook = self.webhook(tenant_id, webhook_id).await?;
        if !webhook.spec.enabled {
            return Err(Error::Conflict(
                "the webhook is disabled; enable it first (PATCH {\"enabled\": true, \"recover\": true} does both)".into(),
            ));
        }
        // Nothing older than the log keeps can match.
        let since = since.max(now - RECOVERY_RETENTION);
        let mut job = Recovery::new(tenant_id, webhook_id, since, until, status, now);
        self.store.put_recovery(&job).await?;
        if let Err(e) = advance(
            self.store.as_ref(),
            self.queue.as_ref(),
            &mut job,
            ANSWER_BUDGET,
        )
        .await
        {
            tracing::warn!(recovery_id = %job.id, error = %e, "a recovery page failed; the sweep takes it up");
        }
        tracing::info!(tenant_id, webhook_id, recovery_id = %job.id, queued = job.queued, "recovery started");
        Ok(job)
    }

    pub async fn get_recovery(&self, tenant_id: &str, id: &str) -> Result<Recovery> {
        self.store
            .get_recovery(tenant_id, id)
            .await?
            .ok_or(Error::NotFound("recovery"))
    }
}

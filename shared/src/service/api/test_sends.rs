//! Test sends: a catalog sample, formatted and signed like a delivery, sent now and reported.

use super::*;
use crate::operational;

/// What a test send did (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    pub delivered: bool,
    pub event_type: String,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

fn event_type_for(
    requested: Option<&Value>,
    webhook_events: &[String],
) -> Result<&'static catalog::EventType> {
    match requested {
        None | Some(Value::Null) => webhook_events
            .first()
            .and_then(|p| {
                catalog::EVENT_TYPES
                    .iter()
                    .chain(catalog::OPERATIONAL_TYPES)
                    .find(|t| pattern_matches(p, t.name))
            })
            .ok_or_else(|| Error::field("event_type", "the webhook subscribes to no event type")),
        Some(Value::String(name)) => catalog::find_any(name).ok_or_else(|| {
            Error::Validation(vec![FieldError::new(
                "event_type",
                format!("unknown event type `{name}`"),
            )
            .with_valid(catalog::all_type_names())])
        }),
        Some(_) => Err(Error::field("event_type", "must be a string")),
    }
}

impl Api {
    /// Sends the catalog sample of `event_type` (or of the webhook's first subscription) to a
    /// saved webhook, synchronously, formatted and signed like any delivery.
    pub async fn test_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        body: &Value,
    ) -> Result<TestResult> {
        if !(body.is_object() || body.is_null()) {
            return Err(Error::BadRequest(
                "the body must be {\"event_type\": ...}, or none".into(),
            ));
        }
        if let Some(extra) = body
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "event_type"))
        {
            return Err(Error::Validation(vec![FieldError::new(
                extra.clone(),
                "unknown field",
            )
            .with_valid(vec!["event_type".into()])]));
        }
        let webhook = self.webhook(tenant_id, id).await?;
        let event_type = event_type_for(body.get("event_type"), &webhook.spec.events)?;
        Ok(self.send_test(&webhook, event_type).await)
    }

    /// Tests a webhook configuration before it is saved (UbiOps' test panel). The body is a
    /// create body, plus an optional `event_type`. It is signed with a throwaway secret.
    pub async fn test_unsaved(&self, tenant_id: &str, body: &Value) -> Result<TestResult> {
        let mut spec_body = body.clone();
        let requested = spec_body
            .as_object_mut()
            .and_then(|o| o.remove("event_type"));
        let spec = WebhookSpec::parse(&spec_body, &self.rules)?;
        let event_type = event_type_for(requested.as_ref(), &spec.events)?;
        let now = OffsetDateTime::now_utc();
        // Enabled whatever the body says: a test is sent on request.
        // A secret the body brings signs the test, so the receiver can check it is set up.
        let secret = spec.secret.clone().unwrap_or_else(signing::generate_secret);
        let webhook = Webhook::new("wh_unsaved".into(), tenant_id, spec, secret, now);
        Ok(self.send_test(&webhook, event_type).await)
    }

    async fn send_test(&self, webhook: &Webhook, event_type: &catalog::EventType) -> TestResult {
        let event = if catalog::is_operational(event_type.name) {
            Event {
                test: true,
                ..operational::sample_event(event_type.name)
            }
        } else {
            Event::sample(event_type, OffsetDateTime::now_utc())
        };
        let body = Bytes::from(format::render(
            webhook.spec.kind,
            &event,
            webhook.spec.include_result,
        ));
        let outcome = self.sender.send(webhook, &event, body).await;
        tracing::info!(webhook_id = %webhook.id, status_code = outcome.status_code, "test event sent");
        TestResult {
            delivered: outcome.error.is_none()
                && outcome.status_code.is_some_and(|c| (200..300).contains(&c)),
            event_type: event_type.name.to_string(),
            status_code: outcome.status_code,
            duration_ms: outcome.duration.as_millis() as u64,
            response_body: outcome.response_body,
            error: outcome.error.map(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_event_type_defaults_to_first_subscription() {
        assert_eq!(
            event_type_for(None, &["jobs.done".into()]).unwrap().name,
            "jobs.succeeded"
        );
        assert_eq!(
            event_type_for(None, &["requests.finished".into()])
                .unwrap()
                .name,
            "requests.completed"
        );
        assert_eq!(
            event_type_for(Some(&json!("builds.failed")), &["*".into()])
                .unwrap()
                .name,
            "builds.failed"
        );
        assert!(event_type_for(Some(&json!("builds.exploded")), &["*".into()]).is_err());
        assert_eq!(
            event_type_for(None, &["deliveries.*".into()]).unwrap().name,
            "deliveries.exhausted",
            "an operational subscription tests with its sample"
        );
    }
}

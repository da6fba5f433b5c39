//! Herald's operational events (`catalog::OPERATIONAL_TYPES`): a change in a webhook's health, or
//! a delivery that used its whole schedule, told as an event in the tenant's own pipeline, so any
//! of its webhooks (a Slack one included) can subscribe and every kind formats it.
//!
//! Each event comes from one stored transition: a health write that took the webhook from one
//! state to the next (conditioned on the revision it read, so it lands once), or the record of a
//! delivery's last attempt (conditioned on its lease). So each state change is told at most once.
//! The webhook concerned is the event's `object`, and matching never sends it its own events.

use crate::delivery::Delivery;
use crate::event::{Event, ObjectRef};
use crate::webhook::Webhook;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Failed attempts in a row after which a webhook is reported failing. Counted on the webhook up
/// to this and no further, so a failing streak costs at most this many health writes before the
/// disable window's.
pub const FAILING_AFTER: u32 = 4;

pub const FAILING: &str = "webhooks.failing";
pub const DISABLED: &str = "webhooks.disabled";
pub const RECOVERED: &str = "webhooks.recovered";
pub const EXHAUSTED: &str = "deliveries.exhausted";

/// The operational events a health write from `before` to `after` tells, in order: a webhook
/// that reached its fourth failure in a row is failing, one Herald turned off is disabled, and
/// a success that cleared a failing count is recovered.
pub fn health_events(before: &Webhook, after: &Webhook, now: OffsetDateTime) -> Vec<Event> {
    let mut out = Vec::new();
    let failing_since = after.failing_since.or(before.failing_since);
    if before.failures < FAILING_AFTER && after.failures >= FAILING_AFTER {
        out.push(about(
            after,
            FAILING,
            format!(
                "Webhook {} is failing: its last {FAILING_AFTER} delivery attempts failed",
                name(after)
            ),
            [
                ("failures", json!(after.failures)),
                ("failing_since", time(failing_since)),
            ],
            now,
        ));
    }
    if before.spec.enabled && !after.spec.enabled {
        let reason = after.disabled_reason.clone().unwrap_or_default();
        out.push(about(
            after,
            DISABLED,
            format!("Webhook {} was disabled: {reason}", name(after)),
            [
                ("reason", json!(reason)),
                ("failing_since", time(failing_since)),
            ],
            now,
        ));
    }
    if before.failures >= FAILING_AFTER && after.failures == 0 {
        out.push(about(
            after,
            RECOVERED,
            format!("Webhook {} is delivering again", name(after)),
            [
                ("failing_since", time(before.failing_since)),
                ("recovered_at", time(Some(now))),
            ],
            now,
        ));
    }
    out
}

/// The event told when `delivery` failed its last scheduled attempt.
pub fn exhausted(webhook: &Webhook, delivery: &Delivery, now: OffsetDateTime) -> Event {
    let last = delivery.attempts.last();
    about(
        webhook,
        EXHAUSTED,
        format!(
            "Delivery {} of {} event {} to webhook {} failed after {} attempts",
            delivery.id,
            delivery.event_type,
            delivery.event_id,
            name(webhook),
            delivery.attempts_in_series()
        ),
        [
            ("delivery_id", json!(delivery.id.as_ref())),
            ("event_id", json!(delivery.event_id.as_ref())),
            ("event_type", json!(delivery.event_type.as_ref())),
            ("attempts", json!(delivery.attempts_in_series())),
            ("last_status_code", json!(last.and_then(|a| a.status_code))),
            ("last_error", json!(last.and_then(|a| a.error.as_deref()))),
        ],
        now,
    )
}

/// Whether `event` is an operational event about `webhook`: one it must not receive, so a
/// failing webhook's events cannot feed its own failures.
pub fn is_about(event: &Event, webhook: &Webhook) -> bool {
    crate::catalog::is_operational(&event.event_type)
        && event
            .object
            .as_ref()
            .and_then(|o| o.id.as_deref())
            .is_some_and(|id| id == webhook.id)
}

/// A sample of each operational type, as the catalog shows it.
pub fn sample(event_type: &str) -> Value {
    serde_json::to_value(sample_event(event_type)).unwrap_or(Value::Null)
}

/// The event [`sample`] shows: what a test send of an operational type sends.
pub fn sample_event(event_type: &str) -> Event {
    let mut webhook = sample_webhook();
    webhook.failing_since = Some(OffsetDateTime::UNIX_EPOCH);
    webhook.failures = FAILING_AFTER;
    let mut before = webhook.clone();
    let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_779);
    let told = match event_type {
        FAILING => {
            before.failures = FAILING_AFTER - 1;
            health_events(&before, &webhook, now).pop()
        }
        DISABLED => {
            webhook.spec.enabled = false;
            webhook.disabled_reason = Some("the endpoint answered 410 Gone".into());
            health_events(&before, &webhook, now).pop()
        }
        RECOVERED => {
            webhook.failures = 0;
            webhook.failing_since = None;
            health_events(&before, &webhook, now).pop()
        }
        _ => None,
    };
    told.unwrap_or_else(|| {
        let mut delivery = Delivery::new(
            "dl_01JDA8Q3Z5X8N2V7K4M6P9R1T3".into(),
            webhook.tenant_id.as_str(),
            "evt_01JDA8Q3Z5X8N2V7K4M6P9R1T4",
            "experiments.failed",
            webhook.id.as_str(),
            now,
        );
        delivery.attempts.push(crate::delivery::Attempt {
            at: now,
            status_code: Some(503),
            duration_ms: 120,
            error: None,
            response_body: None,
        });
        exhausted(&webhook, &delivery, now)
    })
}

/// The webhook the samples are about.
fn sample_webhook() -> Webhook {
    use crate::webhook::{Kind, WebhookSpec};
    let spec = WebhookSpec {
        name: "ml-alerts".into(),
        description: String::new(),
        url: "https://hooks.example.com/herald".into(),
        kind: Kind::Standard,
        events: vec!["experiments.*".into()],
        filters: Default::default(),
        headers: Vec::new(),
        include_result: false,
        metadata: Default::default(),
        enabled: true,
        secret: None,
    };
    let secret = crate::secret::Secret::new("whsec_sample");
    Webhook::new(
        "wh_01JDA8Q3Z5X8N2V7K4M6P9R1T5".into(),
        "tn_sample",
        spec,
        secret,
        OffsetDateTime::UNIX_EPOCH,
    )
}

fn about<const N: usize>(
    webhook: &Webhook,
    event_type: &'static str,
    text: String,
    facts: [(&str, Value); N],
    now: OffsetDateTime,
) -> Event {
    let mut data = Map::new();
    data.insert("webhook_id".into(), json!(webhook.id));
    data.insert("webhook_name".into(), json!(webhook.spec.name));
    data.extend(facts.into_iter().map(|(k, v)| (k.to_string(), v)));
    Event {
        id: crate::ids::prefixed("evt").into(),
        event_type: event_type.into(),
        occurred_at: now,
        project: None,
        environment_type: None,
        object: Some(ObjectRef {
            kind: "webhook".into(),
            name: name(webhook).to_string(),
            version: None,
            id: Some(webhook.id.clone()),
        }),
        data: data.into(),
        result: None,
        text,
        test: false,
    }
}

/// How a person knows the webhook: its name, or its id when it has none. Never its URL, which
/// may carry a credential (a Slack incoming-webhook URL is one).
fn name(webhook: &Webhook) -> &str {
    if webhook.spec.name.is_empty() {
        &webhook.id
    } else {
        &webhook.spec.name
    }
}

fn time(at: Option<OffsetDateTime>) -> Value {
    at.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::Kind;

    fn types(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.event_type.as_ref()).collect()
    }

    #[test]
    fn each_transition_is_told_once() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let at = |failures: u32, enabled: bool| {
            let mut w = sample_webhook();
            w.failures = failures;
            w.failing_since = (failures > 0).then_some(now);
            w.spec.enabled = enabled;
            w.disabled_reason = (!enabled).then(|| "the endpoint answered 410 Gone".into());
            w
        };
        // (failures, enabled) before, after, and what the write tells.
        type Case = ((u32, bool), (u32, bool), &'static [&'static str]);
        let cases: [Case; 9] = [
            ((0, true), (1, true), &[]),
            ((2, true), (3, true), &[]),
            ((3, true), (4, true), &[FAILING]),
            ((4, true), (4, true), &[]),
            ((4, true), (4, false), &[DISABLED]),
            ((3, true), (4, false), &[FAILING, DISABLED]),
            ((1, true), (1, false), &[DISABLED]),
            ((4, true), (0, true), &[RECOVERED]),
            // A success before the webhook was reported failing tells nothing.
            ((2, true), (0, true), &[]),
        ];
        for ((f0, e0), (f1, e1), told) in cases {
            let events = health_events(&at(f0, e0), &at(f1, e1), now);
            assert_eq!(types(&events), told, "{f0}/{e0} to {f1}/{e1}");
        }
        let disabled = &health_events(&at(4, true), &at(4, false), now)[0];
        assert_eq!(
            disabled.data.get("reason"),
            Some(&json!("the endpoint answered 410 Gone"))
        );
        assert!(disabled.text.contains("410 Gone"));
    }

    #[test]
    fn an_event_names_its_webhook_but_never_its_url() {
        for t in crate::catalog::OPERATIONAL_TYPES {
            let s = sample(t.name);
            assert_eq!(s["type"], t.name);
            assert_eq!(s["object"]["kind"], "webhook");
            assert_eq!(s["object"]["id"], "wh_01JDA8Q3Z5X8N2V7K4M6P9R1T5");
            assert_eq!(s["data"]["webhook_id"], "wh_01JDA8Q3Z5X8N2V7K4M6P9R1T5");
            assert!(!s.to_string().contains("hooks.example.com"), "{s}");
        }
        assert_eq!(sample(EXHAUSTED)["data"]["last_status_code"], 503);
    }

    #[test]
    fn every_kind_formats_every_operational_type() {
        for t in crate::catalog::OPERATIONAL_TYPES {
            let event = sample_event(t.name);
            for kind in Kind::ALL {
                let body = crate::format::render(kind, &event, false);
                let body: Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|e| panic!("{kind:?} {}: {e}", t.name));
                assert!(body.is_object(), "{kind:?} {}", t.name);
                if matches!(
                    kind,
                    Kind::Standard | Kind::Slack | Kind::Discord | Kind::Teams
                ) {
                    assert!(
                        body.to_string().contains("ml-alerts"),
                        "{kind:?} {} names the webhook: {body}",
                        t.name
                    );
                }
            }
        }
    }
}

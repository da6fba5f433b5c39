//! Qovery-compatible bodies: the envelope of Qovery's STANDARD webhooks (seeds/qovery-webhooks.md,
//! "Standard Webhook Payload Structure"), so a receiver written for Qovery works unchanged:
//!
//! ```json
//! {"created_at": "ISO-8601", "event_type": "DEPLOYMENT_FAILURE", "payload_type": "DEPLOYMENT",
//!  "payload_id": "…", "payload": {"id": "…", "current_status": "…", "desired_status": "…",
//!    "organization": {}, "project": {}, "environment": {}, "applications": [], "databases": [],
//!    "containers": [], "jobs": [], "logs": []}}
//! ```
//!
//! | Qovery field | filled from |
//! |---|---|
//! | `created_at` | `occurred_at` (RFC 3339) |
//! | `event_type` | the status: started → `DEPLOYMENT_STARTED`, succeeded/completed → `DEPLOYMENT_SUCCESSFUL`, failed → `DEPLOYMENT_FAILURE`, stopped/cancelled → `DEPLOYMENT_CANCELLED` (the seed's four) |
//! | `payload_type` | always `DEPLOYMENT`, the only type the seed documents |
//! | `payload_id` | the event's `id`: unique per event, so receivers can deduplicate on it |
//! | `payload.id` | `object.id`, else `data.payload.id`, else the event's `id` |
//! | `payload.current_status` | `data.payload.current_status`, else Qovery's state for the status: `DEPLOYING`, `DEPLOYED`, `DEPLOYMENT_ERROR`, `STOPPED`, `CANCELED` |
//! | `payload.desired_status` | `data.payload.desired_status`, else `STOPPED` for stopped events and `DEPLOYED` for the rest |
//! | `payload.organization` | `data.payload.organization` when an object, else `{}` (Herald has no organizations) |
//! | `payload.project` | `{"id": data.payload.project.id, "name": project}` (the name from `data.payload.project.name` when the event has no project; each null when unknown) |
//! | `payload.environment` | `{"id", "name"}` of an `environment` object (else `data.payload.environment`'s), and `"mode"`: `environment_type` (Qovery's environment modes are Herald's environment types), else `data.payload.environment.mode`; each null when unknown |
//! | `payload.applications`, `databases`, `containers`, `jobs`, `logs` | the same arrays in `data.payload`, else `[]` |
//!
//! A Qovery event passes through with its own details; any other event gets Herald's values and
//! empty defaults. The event type always follows the event's type, never `data`. The text, the
//! result and the link are not sent: Qovery's envelope has no field for them.

use super::parts::{self, Status, Timestamp};
use super::Formatter;
use crate::event::Event;
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

pub struct Qovery;

#[derive(Serialize)]
struct Payload<'a> {
    created_at: Timestamp<'a>,
    event_type: &'static str,
    payload_type: &'static str,
    payload_id: &'a str,
    payload: Deployment<'a>,
}

#[derive(Serialize)]
struct Deployment<'a> {
    id: &'a str,
    current_status: &'a str,
    desired_status: &'a str,
    organization: Cow<'a, Map<String, Value>>,
    project: Project<'a>,
    environment: Environment<'a>,
    applications: &'a [Value],
    databases: &'a [Value],
    containers: &'a [Value],
    jobs: &'a [Value],
    logs: &'a [Value],
}

#[derive(Serialize)]
struct Project<'a> {
    id: Option<&'a str>,
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct Environment<'a> {
    id: Option<&'a str>,
    name: Option<&'a str>,
    mode: Option<&'a str>,
}

fn payload(event: &Event) -> Payload<'_> {
    let details = event.data.get("payload").and_then(Value::as_object);
    let data = |k: &str| details.and_then(|d| d.get(k));
    let text = |k: &str| data(k).and_then(Value::as_str);
    let inner = |k: &str, field: &str| data(k).and_then(|o| o.get(field)).and_then(Value::as_str);
    let list = |k: &str| {
        data(k)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
    };
    let environment = event.object.as_ref().filter(|o| o.kind == "environment");
    let (event_type, current, desired) = crate::catalog::qovery_states(Status::of(event));
    Payload {
        created_at: Timestamp(&event.occurred_at),
        event_type,
        payload_type: "DEPLOYMENT",
        payload_id: &event.id,
        payload: Deployment {
            id: event
                .object
                .as_ref()
                .and_then(|o| o.id.as_deref())
                .or(text("id"))
                .unwrap_or(&event.id),
            current_status: text("current_status").unwrap_or(current),
            desired_status: text("desired_status").unwrap_or(desired),
            organization: data("organization")
                .and_then(Value::as_object)
                .map_or(Cow::Owned(Map::new()), Cow::Borrowed),
            project: Project {
                id: inner("project", "id"),
                name: event.project.as_deref().or(inner("project", "name")),
            },
            environment: Environment {
                id: environment
                    .and_then(|o| o.id.as_deref())
                    .or(inner("environment", "id")),
                name: environment
                    .map(|o| o.name.as_str())
                    .or(inner("environment", "name")),
                mode: event
                    .environment_type
                    .map(|e| e.as_str())
                    .or(inner("environment", "mode")),
            },
            applications: list("applications"),
            databases: list("databases"),
            containers: list("containers"),
            jobs: list("jobs"),
            logs: list("logs"),
        },
    }
}

impl Formatter for Qovery {
    fn format(&self, event: &Event, _include_result: bool, out: &mut Vec<u8>) {
        parts::write_json(out, &payload(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use crate::format::render;
    use crate::webhook::Kind;
    use serde_json::json;
    use time::OffsetDateTime;

    fn qovery(body: Value) -> Value {
        let e = Event::parse(&body, OffsetDateTime::UNIX_EPOCH).unwrap();
        serde_json::from_slice(&render(Kind::Qovery, &e, true)).unwrap()
    }

    #[test]
    fn event_types_are_the_seeds_four() {
        for (t, event_type, current, desired) in [
            (
                "deployments.started",
                "DEPLOYMENT_STARTED",
                "DEPLOYING",
                "DEPLOYED",
            ),
            (
                "deployments.succeeded",
                "DEPLOYMENT_SUCCESSFUL",
                "DEPLOYED",
                "DEPLOYED",
            ),
            (
                "deployments.failed",
                "DEPLOYMENT_FAILURE",
                "DEPLOYMENT_ERROR",
                "DEPLOYED",
            ),
            (
                "deployments.cancelled",
                "DEPLOYMENT_CANCELLED",
                "CANCELED",
                "DEPLOYED",
            ),
        ] {
            let body = qovery(catalog::sample(catalog::find(t).unwrap()));
            assert_eq!(body["event_type"], event_type);
            assert_eq!(body["payload"]["current_status"], current, "{t}");
            assert_eq!(body["payload"]["desired_status"], desired, "{t}");
            assert_eq!(body["payload"]["organization"]["name"], "Acme");
            assert_eq!(body["payload"]["applications"][0]["name"], "front-end");
            assert_eq!(body["payload"]["environment"]["mode"], "PRODUCTION");
        }
    }

    #[test]
    fn a_qovery_event_keeps_its_own_states() {
        let mut sample = catalog::sample(catalog::find("deployments.started").unwrap());
        let payload = &mut sample["data"]["payload"];
        payload["current_status"] = json!("BUILDING");
        payload["desired_status"] = json!("STOPPED");
        let body = qovery(sample);
        assert_eq!(body["event_type"], "DEPLOYMENT_STARTED");
        assert_eq!(body["payload"]["current_status"], "BUILDING");
        assert_eq!(body["payload"]["desired_status"], "STOPPED");
    }

    #[test]
    fn a_bare_event_gets_herald_values_and_empty_defaults() {
        let body = qovery(
            json!({"id": "evt_1", "type": "jobs.stopped", "occurred_at": "2026-11-22T10:00:00Z"}),
        );
        assert_eq!(
            body,
            json!({
                "created_at": "2026-11-22T10:00:00Z",
                "event_type": "DEPLOYMENT_CANCELLED",
                "payload_type": "DEPLOYMENT",
                "payload_id": "evt_1",
                "payload": {
                    "id": "evt_1", "current_status": "STOPPED", "desired_status": "STOPPED",
                    "organization": {}, "project": {"id": null, "name": null},
                    "environment": {"id": null, "name": null, "mode": null},
                    "applications": [], "databases": [], "containers": [], "jobs": [], "logs": []
                }
            })
        );
    }

    #[test]
    fn details_of_the_wrong_type_are_not_passed_through() {
        let body = qovery(json!({"type": "deployments.failed", "project": "shop",
            "data": {"payload": {"current_status": 3, "organization": "Acme", "applications": {"a": 1},
                                 "project": {"id": 7}}}}));
        let p = &body["payload"];
        assert_eq!(p["current_status"], "DEPLOYMENT_ERROR");
        assert_eq!(p["organization"], json!({}));
        assert_eq!(p["applications"], json!([]));
        assert_eq!(p["project"], json!({"id": null, "name": "shop"}));
    }
}

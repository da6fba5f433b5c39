//! Determined-compatible bodies: the shape of Determined's experiment webhooks (its test payload,
//! seeds/determined-webhooks.rst), so a receiver written for Determined works unchanged:
//!
//! ```json
//! {"event_id": "…", "event_type": "experiment_completed", "timestamp": 1662562300,
//!  "event_data": {"experiment": {"id": 1, "state": "COMPLETED", "name": "…", "duration": 18400,
//!    "resource_pool": "…", "slots": 24, "workspace": {"name": "…", "id": 1},
//!    "project": {"name": "…", "id": 12}}}}
//! ```
//!
//! | Determined field | filled from |
//! |---|---|
//! | `event_id` | the event's `id` (Herald ids are not UUIDs, but as unique and stable) |
//! | `event_type` | `experiment_<state>` for `experiments.*`, `task_<state>` for every other resource, lowercased: `experiment_completed`, `experiment_error` |
//! | `timestamp` | `occurred_at`, in unix seconds |
//! | `event_data` | `{"experiment": {...}}` for `experiments.*`; `{"task": {...}}`, the same fields, otherwise |
//! | `.id` | `object.id` when it is an integer, else `data.<experiment\|task>.id`, else null |
//! | `.state` | the status: started → `RUNNING`, succeeded/completed → `COMPLETED`, failed → `ERROR`, stopped/cancelled → `CANCELED` (Determined's names) |
//! | `.name` | `object.name`, else `data.<…>.name`, else the resource (`build`) |
//! | `.duration`, `.slots` | `data.<…>.duration`, `data.<…>.slots` when integers, else null |
//! | `.resource_pool` | `data.<…>.resource_pool` when a string, else null |
//! | `.workspace` | `data.<…>.workspace` when it has a string `name`, else null |
//! | `.project` | `{"name": project, "id": data.<…>.project.id}` (the id null unless an integer); with no `project`, `data.<…>.project` as for `workspace`, else null |
//!
//! The state always follows the event's type, never `data`: it is the trigger Determined's
//! receivers switch on. Determined's payload has no place for the text, the result or a link, so
//! they are not sent (`include_result` has no effect), nor is the test flag.

use super::parts::{self, Status};
use super::Formatter;
use crate::event::Event;
use serde::Serialize;
use serde_json::Value;

pub struct Determined;

#[derive(Serialize)]
struct Payload<'a> {
    event_id: &'a str,
    event_type: String,
    timestamp: i64,
    event_data: EventData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum EventData<'a> {
    Experiment(Subject<'a>),
    Task(Subject<'a>),
}

#[derive(Serialize)]
struct Subject<'a> {
    id: Option<i64>,
    state: &'static str,
    name: &'a str,
    duration: Option<i64>,
    resource_pool: Option<&'a str>,
    slots: Option<i64>,
    workspace: Option<NameId<'a>>,
    project: Option<NameId<'a>>,
}

#[derive(Serialize)]
struct NameId<'a> {
    name: &'a str,
    id: Option<i64>,
}

impl<'a> NameId<'a> {
    fn from_data(value: Option<&'a Value>) -> Option<Self> {
        let value = value?;
        Some(NameId {
            name: value.get("name")?.as_str()?,
            id: value.get("id").and_then(Value::as_i64),
        })
    }
}

fn state(status: Status) -> &'static str {
    match status {
        Status::Started | Status::Other => "RUNNING",
        Status::Succeeded => "COMPLETED",
        Status::Failed => "ERROR",
        Status::Stopped | Status::Cancelled => "CANCELED",
    }
}

fn payload(event: &Event) -> Payload<'_> {
    let (resource, _) = parts::resource_status(event);
    let experiment = resource == "experiments";
    let key = if experiment { "experiment" } else { "task" };
    let details = event.data.get(key).and_then(Value::as_object);
    let data = |k: &str| details.and_then(|d| d.get(k));
    let int = |k: &str| data(k).and_then(Value::as_i64);
    let state = state(Status::of(event));
    let subject = Subject {
        id: event
            .object
            .as_ref()
            .and_then(|o| o.id.as_deref()?.parse().ok())
            .or_else(|| int("id")),
        state,
        name: event
            .object
            .as_ref()
            .map(|o| o.name.as_str())
            .or_else(|| data("name").and_then(Value::as_str))
            .unwrap_or_else(|| resource.trim_end_matches('s')),
        duration: int("duration"),
        resource_pool: data("resource_pool").and_then(Value::as_str),
        slots: int("slots"),
        workspace: NameId::from_data(data("workspace")),
        project: match &event.project {
            Some(name) => Some(NameId {
                name,
                id: data("project")
                    .and_then(|p| p.get("id"))
                    .and_then(Value::as_i64),
            }),
            None => NameId::from_data(data("project")),
        },
    };
    Payload {
        event_id: &event.id,
        event_type: format!("{key}_{}", state.to_ascii_lowercase()),
        timestamp: event.occurred_at.unix_timestamp(),
        event_data: if experiment {
            EventData::Experiment(subject)
        } else {
            EventData::Task(subject)
        },
    }
}

impl Formatter for Determined {
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

    fn determined(event: &Event) -> Value {
        serde_json::from_slice(&render(Kind::Determined, event, true)).unwrap()
    }

    #[test]
    fn the_seed_test_payload_round_trips() {
        // The seed's test payload, posted to Herald as Determined would describe it.
        let seed = json!({
            "event_id": "1ac7d0b2-a4af-458b-a099-2326240088f6",
            "event_type": "experiment_completed",
            "timestamp": 1662562300,
            "event_data": {"experiment": {
                "id": 1, "state": "COMPLETED", "name": "cifar10_pytorch_const profiler",
                "duration": 18400, "resource_pool": "A100 Production", "slots": 24,
                "workspace": {"name": "Autonomous Vehicles", "id": 1},
                "project": {"name": "Light detection", "id": 12}
            }}
        });
        let e = Event::parse(
            &json!({"id": "1ac7d0b2-a4af-458b-a099-2326240088f6", "type": "experiments.succeeded",
                    "occurred_at": "2022-09-07T14:51:40Z", "project": "Light detection",
                    "object": {"kind": "experiment", "name": "cifar10_pytorch_const profiler", "id": "1"},
                    "data": {"experiment": seed["event_data"]["experiment"]}}),
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(determined(&e), seed);
    }

    #[test]
    fn states_follow_the_type_and_other_resources_are_tasks() {
        for (t, event_type, state) in [
            ("experiments.failed", "experiment_error", "ERROR"),
            ("experiments.started", "experiment_running", "RUNNING"),
            ("experiments.stopped", "experiment_canceled", "CANCELED"),
            ("jobs.succeeded", "task_completed", "COMPLETED"),
            ("requests.completed", "task_completed", "COMPLETED"),
            ("deployments.cancelled", "task_canceled", "CANCELED"),
        ] {
            let body = determined(&Event::sample(
                catalog::find(t).unwrap(),
                OffsetDateTime::UNIX_EPOCH,
            ));
            assert_eq!(body["event_type"], event_type, "{t}");
            let key = event_type.split('_').next().unwrap();
            assert_eq!(body["event_data"][key]["state"], state, "{t}");
        }
    }

    #[test]
    fn an_event_without_details_fills_nulls() {
        let e = Event::parse(
            &json!({"type": "builds.failed"}),
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(
            determined(&e)["event_data"],
            json!({"task": {"id": null, "state": "ERROR", "name": "build", "duration": null,
                            "resource_pool": null, "slots": null, "workspace": null, "project": null}})
        );
    }
}

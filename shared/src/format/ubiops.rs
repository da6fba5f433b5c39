//! UbiOps-compatible bodies: the fields of UbiOps' request webhooks (seeds/ubiops-webhooks.txt,
//! "Webhook payload"), so a receiver written for UbiOps works unchanged:
//!
//! ```json
//! {"event": "deployment_request_completed", "deployment_id": "…", "deployment_name": "…",
//!  "deployment_version_id": "…", "deployment_version_name": "…", "request_id": "…",
//!  "status": "completed", "result": "…", "text": "…"}
//! ```
//!
//! A pipeline's keys say `pipeline_` where a deployment's say `deployment_` (the seed's
//! `pipeline_request_started`). UbiOps runs an experiment as a version of its
//! `training-base-deployment` named after the experiment, each run a request ("Using webhooks for
//! training runs"), and so does this format.
//!
//! | UbiOps field | filled from |
//! |---|---|
//! | `event` | `<pipeline\|deployment>_request_<event>`: started → `started`, succeeded/completed → `completed`, failed → `failed`, stopped/cancelled → `finished` (UbiOps' "regardless of the state" event) |
//! | `…_id` | `object.id`, else `data.…_id`; for an experiment `data.deployment_id`; else null |
//! | `…_name` | `object.name`, else `data.…_name`; for an experiment `training-base-deployment`; else null |
//! | `…_version_id` | `data.…_version_id`; for an experiment `object.id` first; else null |
//! | `…_version_name` | `object.version`, else `data.…_version_name`; for an experiment `object.name`; else null |
//! | `request_id` | `data.request_id`, else null |
//! | `status` | started → `processing` (UbiOps' status when a request starts), succeeded/completed → `completed`, failed → `failed`, stopped/cancelled → `cancelled` |
//! | `result` | `result`, only when the webhook includes results (ingest never carries one over 16 kB, UbiOps' rule) |
//! | `text` | `text` |
//!
//! Objects that are neither pipelines nor experiments (a job, an environment) take the deployment
//! keys. The event name and status always follow the event's type, never `data`. The project and
//! the link are not sent: UbiOps' payload has no field for them (the text names the project).

use super::parts::{self, Status};
use super::Formatter;
use crate::event::Event;
use serde::Serialize;
use serde_json::Value;

pub struct Ubiops;

/// The deployment UbiOps runs experiments on; an experiment is one of its versions.
const TRAINING_DEPLOYMENT: &str = "training-base-deployment";

#[derive(Serialize)]
struct Payload<'a> {
    event: String,
    #[serde(flatten)]
    object: Object<'a>,
    request_id: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    text: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Object<'a> {
    Deployment {
        deployment_id: Option<&'a str>,
        deployment_name: Option<&'a str>,
        deployment_version_id: Option<&'a str>,
        deployment_version_name: Option<&'a str>,
    },
    Pipeline {
        pipeline_id: Option<&'a str>,
        pipeline_name: Option<&'a str>,
        pipeline_version_id: Option<&'a str>,
        pipeline_version_name: Option<&'a str>,
    },
}

/// UbiOps' webhook event and request status for a Herald status.
fn event_and_status(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Started | Status::Other => ("started", "processing"),
        Status::Succeeded => ("completed", "completed"),
        Status::Failed => ("failed", "failed"),
        Status::Stopped | Status::Cancelled => ("finished", "cancelled"),
    }
}

fn payload(event: &Event, include_result: bool) -> Payload<'_> {
    let data = |k: &str| event.data.get(k).and_then(Value::as_str);
    let object = event.object.as_ref();
    let kind = object.map_or("deployment", |o| o.kind.as_str());
    let (prefix, object) = match kind {
        "pipeline" => (
            "pipeline",
            Object::Pipeline {
                pipeline_id: object.and_then(|o| o.id.as_deref()).or(data("pipeline_id")),
                pipeline_name: object.map(|o| o.name.as_str()).or(data("pipeline_name")),
                pipeline_version_id: data("pipeline_version_id"),
                pipeline_version_name: object
                    .and_then(|o| o.version.as_deref())
                    .or(data("pipeline_version_name")),
            },
        ),
        "experiment" => (
            "deployment",
            Object::Deployment {
                deployment_id: data("deployment_id"),
                deployment_name: Some(TRAINING_DEPLOYMENT),
                deployment_version_id: object
                    .and_then(|o| o.id.as_deref())
                    .or(data("deployment_version_id")),
                deployment_version_name: object.map(|o| o.name.as_str()),
            },
        ),
        _ => (
            "deployment",
            Object::Deployment {
                deployment_id: object
                    .and_then(|o| o.id.as_deref())
                    .or(data("deployment_id")),
                deployment_name: object.map(|o| o.name.as_str()).or(data("deployment_name")),
                deployment_version_id: data("deployment_version_id"),
                deployment_version_name: object
                    .and_then(|o| o.version.as_deref())
                    .or(data("deployment_version_name")),
            },
        ),
    };
    let (name, status) = event_and_status(Status::of(event));
    Payload {
        event: format!("{prefix}_request_{name}"),
        object,
        request_id: data("request_id"),
        status,
        result: event.result.as_ref().filter(|_| include_result),
        text: &event.text,
    }
}

impl Formatter for Ubiops {
    fn format(&self, event: &Event, include_result: bool, out: &mut Vec<u8>) {
        parts::write_json(out, &payload(event, include_result));
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

    fn ubiops(body: Value, include_result: bool) -> Value {
        let e = Event::parse(&body, OffsetDateTime::UNIX_EPOCH).unwrap();
        serde_json::from_slice(&render(Kind::Ubiops, &e, include_result)).unwrap()
    }

    #[test]
    fn the_seed_example_payload_round_trips() {
        let mut sample = catalog::sample(catalog::find("requests.completed").unwrap());
        sample["text"] = json!("Deployment request 9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b finished for deployment model-a v1 in project fraud-detection");
        let body = ubiops(sample, true);
        assert_eq!(
            body,
            json!({
                "event": "deployment_request_completed",
                "deployment_id": "7b1c3f0e-2d4a-4e55-9a61-0c7d9b2e4f10",
                "deployment_name": "model-a",
                "deployment_version_id": "c2f5a8d1-6b3e-4f7a-8c9d-1e2f3a4b5c6d",
                "deployment_version_name": "v1",
                "request_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                "status": "completed",
                "result": {"score": 0.97, "label": "legit"},
                "text": "Deployment request 9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b finished for deployment model-a v1 in project fraud-detection"
            })
        );
    }

    #[test]
    fn events_and_statuses_are_ubiops_names() {
        for (t, event, status) in [
            ("requests.started", "pipeline_request_started", "processing"),
            (
                "requests.completed",
                "pipeline_request_completed",
                "completed",
            ),
            ("requests.failed", "pipeline_request_failed", "failed"),
            ("jobs.stopped", "pipeline_request_finished", "cancelled"),
        ] {
            let body = ubiops(
                json!({"type": t, "object": {"kind": "pipeline", "name": "pipeline-1", "version": "v1"}}),
                false,
            );
            assert_eq!(
                (body["event"].as_str(), body["status"].as_str()),
                (Some(event), Some(status))
            );
            assert_eq!(body["pipeline_name"], "pipeline-1");
            assert_eq!(body["pipeline_version_name"], "v1");
            assert!(body.get("deployment_name").is_none());
        }
    }

    #[test]
    fn an_experiment_is_a_version_of_the_training_deployment() {
        let body = ubiops(
            json!({"type": "requests.failed", "data": {"request_id": "run-7"},
                   "object": {"kind": "experiment", "name": "fraud-training", "id": "4c1f"}}),
            false,
        );
        assert_eq!(body["event"], "deployment_request_failed");
        assert_eq!(body["deployment_name"], TRAINING_DEPLOYMENT);
        assert_eq!(body["deployment_version_name"], "fraud-training");
        assert_eq!(body["deployment_version_id"], "4c1f");
        assert_eq!(body["deployment_id"], Value::Null);
        assert_eq!(body["request_id"], "run-7");
    }

    #[test]
    fn result_only_when_included() {
        let e = json!({"type": "requests.completed", "result": {"y": 1},
                       "object": {"kind": "deployment", "name": "model-a"}});
        assert!(ubiops(e.clone(), false).get("result").is_none());
        assert_eq!(ubiops(e, true)["result"], json!({"y": 1}));
    }
}

//! The event catalog (SPEC §2): every type a platform may post, what it means, a realistic sample
//! built from the seed platforms' documented payloads, and the subscription patterns over them.

use serde_json::{json, Value};

/// Herald's statuses as the formats tell them apart (`completed` is a request's success).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Started,
    Succeeded,
    Failed,
    Stopped,
    Cancelled,
    /// No catalog type has another status; kept so a new one degrades to a neutral rendering.
    Other,
}

impl Status {
    pub fn parse(status: &str) -> Status {
        match status {
            "started" => Status::Started,
            "succeeded" | "completed" => Status::Succeeded,
            "failed" => Status::Failed,
            "stopped" => Status::Stopped,
            "cancelled" => Status::Cancelled,
            // Herald's operational statuses, as the formats colour them.
            "failing" | "exhausted" => Status::Failed,
            "recovered" => Status::Succeeded,
            "disabled" => Status::Stopped,
            _ => Status::Other,
        }
    }
}

/// Qovery's event type, the deployment's state after it and the state that was asked for, for
/// a status: what Qovery-shaped bodies fall back to, and what the `deployments.*` samples send.
pub fn qovery_states(status: Status) -> (&'static str, &'static str, &'static str) {
    match status {
        Status::Started | Status::Other => ("DEPLOYMENT_STARTED", "DEPLOYING", "DEPLOYED"),
        Status::Succeeded => ("DEPLOYMENT_SUCCESSFUL", "DEPLOYED", "DEPLOYED"),
        Status::Failed => ("DEPLOYMENT_FAILURE", "DEPLOYMENT_ERROR", "DEPLOYED"),
        Status::Stopped => ("DEPLOYMENT_CANCELLED", "STOPPED", "STOPPED"),
        Status::Cancelled => ("DEPLOYMENT_CANCELLED", "CANCELED", "DEPLOYED"),
    }
}

/// Statuses that end a resource's lifecycle; `<resource>.done` matches any of them.
pub const TERMINAL_STATUSES: [&str; 5] =
    ["succeeded", "failed", "stopped", "cancelled", "completed"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub resource: &'static str,
    pub status: &'static str,
    pub description: &'static str,
}

impl EventType {
    pub fn is_terminal(&self) -> bool {
        TERMINAL_STATUSES.contains(&self.status)
    }
}

macro_rules! event_types {
    ($($resource:literal . $status:literal => $description:literal),* $(,)?) => {
        &[$(EventType {
            name: concat!($resource, ".", $status),
            resource: $resource,
            status: $status,
            description: $description,
        }),*]
    };
}

pub static EVENT_TYPES: &[EventType] = event_types![
    "experiments"."started" => "An experiment started running.",
    "experiments"."succeeded" => "An experiment completed successfully (Determined: COMPLETED).",
    "experiments"."failed" => "An experiment failed (Determined: ERROR).",
    "experiments"."stopped" => "An experiment was stopped before it finished.",
    "groups"."started" => "An experiment group (hyperparameter search) started.",
    "groups"."succeeded" => "Every experiment of a group finished and the group succeeded.",
    "groups"."failed" => "An experiment group failed.",
    "groups"."stopped" => "An experiment group was stopped.",
    "jobs"."started" => "A job started running.",
    "jobs"."succeeded" => "A job succeeded.",
    "jobs"."failed" => "A job failed.",
    "jobs"."stopped" => "A job was stopped.",
    "builds"."started" => "An image build started.",
    "builds"."succeeded" => "An image build succeeded.",
    "builds"."failed" => "An image build failed.",
    "builds"."stopped" => "An image build was stopped.",
    "requests"."started" => "A request to a deployment, pipeline or experiment started processing.",
    "requests"."completed" => "A request completed successfully.",
    "requests"."failed" => "A request failed.",
    "deployments"."started" => "An environment deployment started.",
    "deployments"."succeeded" => "An environment deployment succeeded.",
    "deployments"."failed" => "An environment deployment failed.",
    "deployments"."cancelled" => "An environment deployment was cancelled.",
];

/// The types Herald emits itself, about webhooks and their deliveries (`crate::operational`):
/// a platform cannot post them, `*` does not cover them (a webhook subscribes by name or by
/// `webhooks.*` / `deliveries.*`), and a webhook never receives one about itself.
pub static OPERATIONAL_TYPES: &[EventType] = event_types![
    "webhooks"."failing" => "A webhook's fourth attempt in a row failed.",
    "webhooks"."disabled" => "Herald disabled a webhook (410 Gone, or failing for the whole disable window); `data.reason` says which.",
    "webhooks"."recovered" => "A webhook reported failing delivered again.",
    "deliveries"."exhausted" => "A delivery failed its last scheduled attempt.",
];

/// The resources of [`OPERATIONAL_TYPES`].
pub const OPERATIONAL_RESOURCES: [&str; 2] = ["webhooks", "deliveries"];

/// The resources, in catalog order.
pub const RESOURCES: [&str; 6] = [
    "experiments",
    "groups",
    "jobs",
    "builds",
    "requests",
    "deployments",
];

/// Object kinds a `requests.*` event may name (UbiOps ties requests to one of these).
pub const REQUEST_OBJECT_KINDS: [&str; 3] = ["deployment", "pipeline", "experiment"];

/// A type a platform may post.
pub fn find(name: &str) -> Option<&'static EventType> {
    EVENT_TYPES.iter().find(|t| t.name == name)
}

/// One of the types Herald emits itself.
pub fn find_operational(name: &str) -> Option<&'static EventType> {
    OPERATIONAL_TYPES.iter().find(|t| t.name == name)
}

/// Any type a webhook may receive: a platform's or Herald's.
pub fn find_any(name: &str) -> Option<&'static EventType> {
    find(name).or_else(|| find_operational(name))
}

/// Every type a webhook may receive, the platforms' first.
pub fn all_type_names() -> Vec<String> {
    EVENT_TYPES
        .iter()
        .chain(OPERATIONAL_TYPES)
        .map(|t| t.name.to_string())
        .collect()
}

/// Whether an event's type is one Herald emits itself.
pub fn is_operational(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(resource, _)| OPERATIONAL_RESOURCES.contains(&resource))
}

pub fn type_names() -> Vec<String> {
    EVENT_TYPES.iter().map(|t| t.name.to_string()).collect()
}

/// The composite patterns with what they stand for, as served in the catalog.
pub fn composite_patterns() -> Vec<(String, String)> {
    let mut out = vec![(
        "*".to_string(),
        "Every event type a platform posts (not Herald's operational events).".to_string(),
    )];
    for resource in RESOURCES {
        out.push((format!("{resource}.*"), format!("Every {resource} event.")));
        out.push((
            format!("{resource}.done"),
            format!("Any terminal {resource} event (succeeded, failed, stopped, cancelled or completed)."),
        ));
    }
    out.push((
        "requests.finished".to_string(),
        "A request that completed or failed (UbiOps' \"request finished\").".to_string(),
    ));
    for resource in OPERATIONAL_RESOURCES {
        out.push((
            format!("{resource}.*"),
            format!("Every operational {resource} event Herald emits."),
        ));
    }
    out
}

/// Everything a webhook may subscribe to: exact types (a platform's and Herald's) and composites.
pub fn valid_patterns() -> Vec<String> {
    let mut out = all_type_names();
    out.extend(composite_patterns().into_iter().map(|(p, _)| p));
    out
}

pub fn is_valid_pattern(pattern: &str) -> bool {
    if pattern == "*" || find_any(pattern).is_some() || pattern == "requests.finished" {
        return true;
    }
    match pattern.split_once('.') {
        Some((resource, "*" | "done")) if RESOURCES.contains(&resource) => true,
        Some((resource, "*")) => OPERATIONAL_RESOURCES.contains(&resource),
        _ => false,
    }
}

/// The body a platform would POST for this type: used in the catalog and for test deliveries.
/// Shapes follow the seeds: Determined's experiment, UbiOps' request, Qovery's deployment envelope.
pub fn sample(event_type: &EventType) -> Value {
    let status = event_type.status;
    match event_type.resource {
        "experiments" => {
            let state = match status {
                "started" => "RUNNING",
                "succeeded" => "COMPLETED",
                "failed" => "ERROR",
                _ => "CANCELED",
            };
            json!({
                "type": event_type.name,
                "project": "Light detection",
                "object": {"kind": "experiment", "name": "cifar10_pytorch_const profiler", "id": "1"},
                "data": {
                    "experiment": {
                        "id": 1,
                        "state": state,
                        "name": "cifar10_pytorch_const profiler",
                        "duration": 18400,
                        "resource_pool": "A100 Production",
                        "slots": 24,
                        "workspace": {"name": "Autonomous Vehicles", "id": 1},
                        "project": {"name": "Light detection", "id": 12}
                    },
                    "url": "https://ml.example.com/det/experiments/1/overview"
                }
            })
        }
        "groups" | "jobs" | "builds" => {
            let (kind, name) = match event_type.resource {
                "groups" => ("group", "lr-sweep"),
                "jobs" => ("job", "preprocess-images"),
                _ => ("build", "trainer-image"),
            };
            json!({
                "type": event_type.name,
                "project": "mnist",
                "object": {"kind": kind, "name": name, "id": "42"},
                "data": {
                    "id": 42,
                    "uuid": "f4b0d5e2a3c94a3e9b8f2c1d0e9a8b7c",
                    "name": name,
                    "project": "mnist",
                    "user": "admin",
                    "status": status,
                    "created_at": "2026-11-22T09:30:00Z",
                    "finished_at": if event_type.is_terminal() { json!("2026-11-22T10:00:00Z") } else { Value::Null },
                    "url": format!("https://polyaxon.example.com/ui/admin/mnist/{}/42", event_type.resource)
                }
            })
        }
        "requests" => json!({
            "type": event_type.name,
            "project": "fraud-detection",
            "object": {"kind": "deployment", "name": "model-a", "version": "v1", "id": "7b1c3f0e-2d4a-4e55-9a61-0c7d9b2e4f10"},
            "data": {
                "event": format!("deployment_request_{status}"),
                "deployment_id": "7b1c3f0e-2d4a-4e55-9a61-0c7d9b2e4f10",
                "deployment_name": "model-a",
                "deployment_version_id": "c2f5a8d1-6b3e-4f7a-8c9d-1e2f3a4b5c6d",
                "deployment_version_name": "v1",
                "request_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                "status": status
            },
            "result": if status == "completed" { json!({"score": 0.97, "label": "legit"}) } else { Value::Null },
        }),
        _ => {
            let (event_type_name, current, desired) = qovery_states(Status::parse(status));
            json!({
                "type": event_type.name,
                "project": "web-shop",
                "environment_type": "PRODUCTION",
                "object": {"kind": "environment", "name": "production", "id": "5c0b1e4a-8f2d-4b6e-9a3c-7d1e0f2a4b6c"},
                "data": {
                    "event_type": event_type_name,
                    "payload_type": "DEPLOYMENT",
                    "payload": {
                        "id": "5c0b1e4a-8f2d-4b6e-9a3c-7d1e0f2a4b6c",
                        "current_status": current,
                        "desired_status": desired,
                        "organization": {"id": "0f1e2d3c-4b5a-4968-8776-655443322110", "name": "Acme"},
                        "project": {"id": "1a2b3c4d-5e6f-4071-8293-a4b5c6d7e8f9", "name": "web-shop"},
                        "environment": {"id": "5c0b1e4a-8f2d-4b6e-9a3c-7d1e0f2a4b6c", "name": "production", "mode": "PRODUCTION"},
                        "applications": [{"id": "2b3c4d5e-6f70-4182-93a4-b5c6d7e8f90a", "name": "front-end", "commit_id": "a1b2c3d"}],
                        "databases": [],
                        "containers": [],
                        "jobs": [],
                        "logs": []
                    },
                    "url": "https://console.qovery.com/organization/0f1e2d3c/project/1a2b3c4d/environment/5c0b1e4a/deployments"
                }
            })
        }
    }
    .as_object()
    .map(|m| {
        // Drop nulls so samples read like what a platform would really send.
        Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect())
    })
    .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_covers_spec_table() {
        assert_eq!(EVENT_TYPES.len(), 23);
        for r in ["experiments", "groups", "jobs", "builds"] {
            for s in ["started", "succeeded", "failed", "stopped"] {
                assert!(find(&format!("{r}.{s}")).is_some(), "{r}.{s}");
            }
        }
        for s in ["started", "completed", "failed"] {
            assert!(find(&format!("requests.{s}")).is_some());
        }
        for s in ["started", "succeeded", "failed", "cancelled"] {
            assert!(find(&format!("deployments.{s}")).is_some());
        }
        assert!(find("requests.succeeded").is_none());
        for t in OPERATIONAL_TYPES {
            assert!(
                find(t.name).is_none(),
                "{} is Herald's, not a platform's",
                t.name
            );
            assert!(is_operational(t.name) && find_operational(t.name).is_some());
        }
        assert!(EVENT_TYPES.iter().all(|t| !is_operational(t.name)));
    }

    #[test]
    fn patterns() {
        for p in [
            "*",
            "experiments.*",
            "jobs.done",
            "requests.finished",
            "deployments.failed",
            "webhooks.*",
            "webhooks.failing",
            "deliveries.*",
            "deliveries.exhausted",
        ] {
            assert!(is_valid_pattern(p), "{p}");
        }
        for p in [
            "",
            "experiments",
            "experiment.done",
            "jobs.finished",
            "*.failed",
            "deployments.**",
            "requests.succeeded",
            "webhooks.done",
            "webhooks.started",
            "deliveries.failed",
        ] {
            assert!(!is_valid_pattern(p), "{p}");
        }
        assert!(valid_patterns().iter().all(|p| is_valid_pattern(p)));
    }

    #[test]
    fn samples_name_their_type_and_drop_nulls() {
        for t in EVENT_TYPES {
            let s = sample(t);
            assert_eq!(s["type"], t.name);
            assert!(s.as_object().unwrap().values().all(|v| !v.is_null()));
        }
        let det = sample(find("experiments.succeeded").unwrap());
        assert_eq!(det["data"]["experiment"]["state"], "COMPLETED");
        let failed = sample(find("experiments.failed").unwrap());
        assert_eq!(failed["data"]["experiment"]["state"], "ERROR");
        let ubi = sample(find("requests.completed").unwrap());
        assert_eq!(ubi["data"]["event"], "deployment_request_completed");
        let qovery = sample(find("deployments.failed").unwrap());
        assert_eq!(qovery["data"]["event_type"], "DEPLOYMENT_FAILURE");
    }

    #[test]
    fn deployment_samples_send_qovery_states() {
        for (t, event_type, current, desired) in [
            ("started", "DEPLOYMENT_STARTED", "DEPLOYING", "DEPLOYED"),
            ("succeeded", "DEPLOYMENT_SUCCESSFUL", "DEPLOYED", "DEPLOYED"),
            (
                "failed",
                "DEPLOYMENT_FAILURE",
                "DEPLOYMENT_ERROR",
                "DEPLOYED",
            ),
            ("cancelled", "DEPLOYMENT_CANCELLED", "CANCELED", "DEPLOYED"),
        ] {
            let s = sample(find(&format!("deployments.{t}")).unwrap());
            assert_eq!(s["data"]["event_type"], event_type, "{t}");
            let payload = &s["data"]["payload"];
            assert_eq!(payload["current_status"], current, "{t}");
            assert_eq!(payload["desired_status"], desired, "{t}");
        }
    }
}

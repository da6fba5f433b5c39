//! Golden bodies for every webhook kind, rendered from realistic events of each seed platform
//! (`golden/events/`), and the compatibility contract of the platform-shaped kinds.
//!
//! A golden file is the body a receiver gets, as JSON. After a deliberate format change, rewrite
//! them with `HERALD_UPDATE_GOLDEN=1 cargo test -p herald-shared --test formats` and review the
//! diff against the receiver's documentation before committing it.

use herald_shared::catalog;
use herald_shared::event::Event;
use herald_shared::format::render;
use herald_shared::webhook::Kind;
use serde_json::Value;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The fixture events, by file stem, in name order.
fn events() -> Vec<(String, Event)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(golden_dir().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let body: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let event = Event::parse(&body, OffsetDateTime::UNIX_EPOCH)
                .unwrap_or_else(|e| panic!("{}: {e:?}", p.display()));
            (p.file_stem().unwrap().to_string_lossy().into_owned(), event)
        })
        .collect()
}

fn body(kind: Kind, event: &Event, include_result: bool) -> Value {
    serde_json::from_slice(&render(kind, event, include_result)).unwrap_or_else(|e| {
        panic!("{} body is not JSON: {e}", kind.as_str());
    })
}

#[test]
fn every_kind_matches_its_golden_bodies() {
    let update = std::env::var_os("HERALD_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let events = events();
    assert!(events.len() >= 4, "fixtures are missing");
    let mut mismatches = Vec::new();
    for kind in Kind::ALL {
        let dir = golden_dir().join(kind.as_str());
        for (name, event) in &events {
            let got = body(kind, event, true);
            let path = dir.join(format!("{name}.json"));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                let mut text = serde_json::to_string_pretty(&got).unwrap();
                text.push('\n');
                std::fs::write(&path, text).unwrap();
                continue;
            }
            let expected: Option<Value> = std::fs::read(&path)
                .ok()
                .map(|b| serde_json::from_slice(&b).unwrap());
            if expected.as_ref() != Some(&got) {
                mismatches.push(format!(
                    "{}: expected {}\n  got {}",
                    path.display(),
                    expected.map_or("(no file)".into(), |e| e.to_string()),
                    got
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} golden bodies differ (HERALD_UPDATE_GOLDEN=1 rewrites them; review the diff):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_kind_formats_every_catalog_sample_as_json() {
    for kind in Kind::ALL {
        for t in catalog::EVENT_TYPES {
            let e = Event::sample(t, OffsetDateTime::UNIX_EPOCH);
            for include_result in [false, true] {
                assert!(
                    body(kind, &e, include_result).is_object(),
                    "{kind:?} {}",
                    t.name
                );
            }
        }
    }
}

/// Every event a compatibility test looks at: the fixtures and every catalog sample, with and
/// without a result.
fn compat_cases() -> Vec<(String, Event, bool)> {
    let mut cases: Vec<(String, Event)> = events();
    for t in catalog::EVENT_TYPES {
        cases.push((
            t.name.to_string(),
            Event::sample(t, OffsetDateTime::UNIX_EPOCH),
        ));
    }
    cases
        .into_iter()
        .flat_map(|(name, e)| [(name.clone(), e.clone(), false), (name, e, true)])
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn sorted(mut keys: Vec<&str>) -> Vec<&str> {
    keys.sort_unstable();
    keys
}

fn string_or_null(v: &Value) -> bool {
    v.is_string() || v.is_null()
}

fn int_or_null(v: &Value) -> bool {
    v.is_i64() || v.is_null()
}

/// seeds/determined-webhooks.rst, "Test Webhook": the payload's keys and their types.
#[test]
fn determined_bodies_have_the_seed_shape() {
    for (name, e, include_result) in compat_cases() {
        let b = body(Kind::Determined, &e, include_result);
        assert_eq!(
            keys(&b),
            sorted(vec!["event_id", "event_type", "timestamp", "event_data"]),
            "{name}"
        );
        assert!(
            b["event_id"].is_string() && b["timestamp"].is_i64(),
            "{name}: {b}"
        );
        let data = &b["event_data"];
        let [key] = keys(data)[..] else {
            panic!("{name}: event_data has one subject: {data}")
        };
        assert!(key == "experiment" || key == "task", "{name}: {key}");
        assert_eq!(
            key == "experiment",
            e.event_type.starts_with("experiments."),
            "{name}"
        );
        let s = &data[key];
        assert_eq!(
            keys(s),
            sorted(vec![
                "id",
                "state",
                "name",
                "duration",
                "resource_pool",
                "slots",
                "workspace",
                "project"
            ]),
            "{name}"
        );
        let state = s["state"].as_str().unwrap();
        assert!(
            ["RUNNING", "COMPLETED", "ERROR", "CANCELED"].contains(&state),
            "{name}: {state}"
        );
        assert_eq!(
            b["event_type"],
            format!("{key}_{}", state.to_lowercase()),
            "{name}"
        );
        assert!(s["name"].is_string(), "{name}");
        for k in ["id", "duration", "slots"] {
            assert!(int_or_null(&s[k]), "{name}: {k} = {}", s[k]);
        }
        assert!(string_or_null(&s["resource_pool"]), "{name}");
        for k in ["workspace", "project"] {
            if !s[k].is_null() {
                assert_eq!(keys(&s[k]), ["id", "name"], "{name}: {k}");
                assert!(
                    s[k]["name"].is_string() && int_or_null(&s[k]["id"]),
                    "{name}: {k}"
                );
            }
        }
        assert_eq!(b["timestamp"], e.occurred_at.unix_timestamp(), "{name}");
    }
}

/// seeds/ubiops-webhooks.txt, "Webhook payload": the keys of a deployment's or a pipeline's
/// payload, `result` only when included, and the request events and statuses.
#[test]
fn ubiops_bodies_have_the_seed_shape() {
    for (name, e, include_result) in compat_cases() {
        let b = body(Kind::Ubiops, &e, include_result);
        let event = b["event"].as_str().unwrap();
        let (object, rest) = event.split_once("_request_").unwrap();
        assert!(
            object == "deployment" || object == "pipeline",
            "{name}: {event}"
        );
        assert!(
            ["started", "completed", "failed", "finished"].contains(&rest),
            "{name}: {event}"
        );
        let mut expected = vec!["event", "request_id", "status", "text"];
        let object_keys =
            ["id", "name", "version_id", "version_name"].map(|k| format!("{object}_{k}"));
        expected.extend(object_keys.iter().map(String::as_str));
        if include_result && e.result.is_some() {
            expected.push("result");
        }
        assert_eq!(keys(&b), sorted(expected), "{name}");
        for k in object_keys.iter().map(String::as_str).chain(["request_id"]) {
            assert!(string_or_null(&b[k]), "{name}: {k}");
        }
        let status = b["status"].as_str().unwrap();
        assert!(
            ["processing", "completed", "failed", "cancelled"].contains(&status),
            "{name}"
        );
        assert_eq!(b["text"], e.text.as_str(), "{name}");
        if include_result {
            assert_eq!(b.get("result"), e.result.as_ref(), "{name}");
        }
    }
}

/// Deployment states of Qovery's API (its `StateEnum`) that a deployment event can leave behind or
/// ask for; Qovery has no `RUNNING`.
const QOVERY_STATES: [&str; 11] = [
    "QUEUED",
    "BUILDING",
    "DEPLOYING",
    "DEPLOYED",
    "DEPLOYMENT_ERROR",
    "READY",
    "STOP_QUEUED",
    "STOPPING",
    "STOPPED",
    "STOP_ERROR",
    "CANCELED",
];

/// seeds/qovery-webhooks.md, "Standard Webhook Payload Structure": the envelope's and the
/// payload's keys, the four event types and `DEPLOYMENT`.
#[test]
fn qovery_bodies_have_the_seed_shape() {
    for (name, e, include_result) in compat_cases() {
        let b = body(Kind::Qovery, &e, include_result);
        assert_eq!(
            keys(&b),
            sorted(vec![
                "created_at",
                "event_type",
                "payload_type",
                "payload_id",
                "payload"
            ]),
            "{name}"
        );
        let created_at = b["created_at"].as_str().unwrap();
        let parsed = OffsetDateTime::parse(
            created_at,
            &time::format_description::well_known::Iso8601::DEFAULT,
        )
        .unwrap();
        assert_eq!(parsed, e.occurred_at, "{name}");
        assert!([
            "DEPLOYMENT_STARTED",
            "DEPLOYMENT_CANCELLED",
            "DEPLOYMENT_SUCCESSFUL",
            "DEPLOYMENT_FAILURE"
        ]
        .contains(&b["event_type"].as_str().unwrap()));
        assert_eq!(b["payload_type"], "DEPLOYMENT");
        assert_eq!(b["payload_id"], &*e.id, "{name}");
        let p = &b["payload"];
        assert_eq!(
            keys(p),
            sorted(vec![
                "id",
                "current_status",
                "desired_status",
                "organization",
                "project",
                "environment",
                "applications",
                "databases",
                "containers",
                "jobs",
                "logs"
            ]),
            "{name}"
        );
        assert!(p["id"].is_string(), "{name}");
        for k in ["current_status", "desired_status"] {
            let state = p[k].as_str().unwrap_or_default();
            assert!(QOVERY_STATES.contains(&state), "{name}: {k} = {}", p[k]);
        }
        for k in ["organization", "project", "environment"] {
            assert!(p[k].is_object(), "{name}: {k}");
        }
        for k in ["applications", "databases", "containers", "jobs", "logs"] {
            assert!(p[k].is_array(), "{name}: {k}");
        }
    }
}

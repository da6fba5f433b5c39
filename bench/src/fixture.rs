//! What every benchmark delivers: a tenant, webhooks at a receiver, and ~1 KiB events.

use herald_shared::config::Config;
use herald_shared::event::{Event, EventEnvelope};
use herald_shared::queue::Message;
use herald_shared::service::QueueRecord;
use herald_shared::store::Store;
use herald_shared::url_policy::TargetPolicy;
use herald_shared::webhook::{Webhook, WebhookSpec};
use serde_json::{json, Value};
use std::time::Duration;
use time::OffsetDateTime;

pub const TENANT: &str = "tn_bench";
/// Deliveries in flight per dispatcher, for Herald and the bare client alike.
pub const CONCURRENCY: usize = 64;

/// The local stack's configuration with loopback targets and one attempt per delivery. The
/// per-endpoint cap is lifted to the overall bound, so fan-out 1 (one URL) is not held to 10.
pub fn config() -> Config {
    let mut config = Config::local();
    config.target_policy = TargetPolicy::Loopback;
    config.dispatch_concurrency = CONCURRENCY;
    config.endpoint_concurrency = CONCURRENCY;
    config.retry_schedule = vec![Duration::ZERO];
    config.rate_limit = 0;
    config
}

/// An event body of about 1 KiB once formatted (standard kind).
pub fn event_json(n: usize, t0_ns: u128) -> Value {
    json!({
        "id": format!("bench-{n}"),
        "type": "experiments.failed",
        "project": "Light detection",
        "object": {"kind": "experiment", "name": "cifar10_pytorch_const profiler", "id": n.to_string()},
        "data": {
            "t0_ns": t0_ns,
            "experiment": {"id": n, "state": "ERROR", "name": "cifar10_pytorch_const profiler",
                "duration": 18400, "resource_pool": "A100 Production", "slots": 24,
                "workspace": {"name": "Autonomous Vehicles", "id": 1},
                "project": {"name": "Light detection", "id": 12}},
            "log_tail": "x".repeat(420),
        }
    })
}

pub fn event(n: usize) -> Event {
    Event::parse(&event_json(n, 0), OffsetDateTime::now_utc()).expect("a valid event")
}

/// The fixture event with another `project`.
pub fn event_in(n: usize, project: &str) -> Event {
    let mut body = event_json(n, 0);
    body["project"] = project.into();
    Event::parse(&body, OffsetDateTime::now_utc()).expect("a valid event")
}

/// A queue record as ingest would enqueue it.
pub fn record(n: usize) -> QueueRecord {
    record_of(n, event(n))
}

fn record_of(n: usize, event: Event) -> QueueRecord {
    let message = Message::fan_out(EventEnvelope {
        tenant_id: TENANT.into(),
        envelope_id: ulid::Ulid::new(),
        event,
    });
    QueueRecord {
        message_id: format!("m-{n}"),
        body: message.encode().into_string(),
        receive_count: 1,
    }
}

/// Queue records for the events numbered `range`, as [`record`] builds them but from one
/// template: each is two allocations, so building thousands of them up front leaves no freed
/// garbage scattered through the heap for the measured run's allocations to work around.
pub fn records(range: std::ops::Range<usize>) -> Vec<QueueRecord> {
    records_from(record(0), range)
}

/// [`records`] of the fixture event in `project`.
pub fn records_in(project: &str, range: std::ops::Range<usize>) -> Vec<QueueRecord> {
    records_from(record_of(0, event_in(0, project)), range)
}

fn records_from(template: QueueRecord, range: std::ops::Range<usize>) -> Vec<QueueRecord> {
    let template = template.body;
    // Cut around the envelope id and the event id, the two parts that differ per record.
    let start = template.find("\"envelope_id\":\"").expect("an envelope id") + 15;
    let (before, rest) = template.split_at(start);
    let (mid, tail) = rest[ulid::ULID_LEN..]
        .split_once("\"bench-0\"")
        .expect("the event id");
    range
        .map(|n| {
            let mut ulid = [0; ulid::ULID_LEN];
            let mut body = String::with_capacity(template.len() + 10);
            body.push_str(before);
            body.push_str(ulid::Ulid::new().array_to_str(&mut ulid));
            body.push_str(mid);
            body.push_str(&format!("\"bench-{n:010}\""));
            body.push_str(tail);
            QueueRecord {
                message_id: format!("m-{n}"),
                body,
                receive_count: 1,
            }
        })
        .collect()
}

pub fn webhook(i: usize, url: &str, events: &[&str], config: &Config) -> Webhook {
    webhook_from(i, json!({"url": url, "events": events}), config)
}

/// A webhook from a create body, validated as the API would.
pub fn webhook_from(i: usize, body: Value, config: &Config) -> Webhook {
    let spec = WebhookSpec::parse(&body, &herald_shared::runtime::url_rules(config))
        .expect("a valid webhook");
    Webhook::new(
        format!("wh_bench{i:06}"),
        TENANT,
        spec,
        herald_shared::signing::generate_secret(),
        OffsetDateTime::now_utc(),
    )
}

/// `count` webhooks subscribed to everything, each at its own path of `base`.
pub async fn subscribe(store: &dyn Store, base: &str, count: usize, config: &Config) {
    for i in 0..count {
        let w = webhook(i, &format!("{base}/w/{i}"), &["*"], config);
        store
            .create_webhook(&w, usize::MAX)
            .await
            .expect("webhook stored");
    }
}

//! What operators see: the Lambda log format (JSON lines carrying request, tenant, event and
//! delivery ids) and the EMF metric line the dispatch function writes per batch.

use herald_shared::runtime::json_logs;
use herald_tests::logs::Captured;
use herald_tests::receiver::Receiver;
use herald_tests::stack::{Stack, TENANT};
use serde_json::{json, Value};

/// The first line whose message is `message` and whose fields (or span fields) hold `key`.
fn find<'a>(lines: &'a [Value], message: &str, key: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["fields"]["message"] == message && field(l, key).is_some())
        .unwrap_or_else(|| panic!("no {message:?} line with {key}: {lines:#?}"))
}

/// A field of the event itself, else of the innermost span that has it.
fn field<'a>(line: &'a Value, key: &str) -> Option<&'a Value> {
    line["fields"].get(key).or_else(|| {
        line["spans"]
            .as_array()?
            .iter()
            .rev()
            .find_map(|s| s.get(key))
    })
}

#[tokio::test]
async fn logs_are_json_lines_naming_request_tenant_event_and_delivery() {
    let logs = Captured::default();
    let writer = logs.clone();
    let filter = "info".parse().unwrap();
    let _guard = tracing::subscriber::set_default(json_logs(filter, move || writer.clone()));

    let stack = Stack::memory().await;
    let rx = Receiver::start(200).await;
    let webhook = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let accepted = stack
        .post_event(json!({"id": "evt-logged", "type": "jobs.failed"}))
        .await;
    assert_eq!(accepted["status"], "accepted");
    assert!(stack.drain().await.is_empty());
    let (status, _, _) = stack
        .call("GET", "/v1/webhooks", None, Some("not-a-key"))
        .await;
    assert_eq!(status.as_u16(), 401);

    let lines = logs.json_lines();
    let request = find(&lines, "request answered", "tenant_id");
    assert_eq!(field(request, "tenant_id").unwrap(), TENANT);
    assert_eq!(field(request, "method").unwrap(), "POST");
    assert!(request["fields"]["duration_ms"].is_u64());
    assert!(request["fields"]["status"].is_u64());

    let refused = lines
        .iter()
        .find(|l| l["fields"]["message"] == "request answered" && l["fields"]["status"] == 401)
        .expect("a refused request is logged");
    assert!(
        field(refused, "tenant_id").is_none(),
        "no tenant for a bad key"
    );

    let ingest = find(&lines, "event accepted", "event_id");
    assert_eq!(ingest["fields"]["event_id"], "evt-logged");
    assert_eq!(field(ingest, "tenant_id").unwrap(), TENANT);

    let attempt = find(&lines, "delivery attempt", "delivery_id");
    assert_eq!(attempt["fields"]["event_id"], "evt-logged");
    assert_eq!(attempt["fields"]["webhook_id"], webhook["id"]);
    assert!(attempt["fields"]["delivery_id"]
        .as_str()
        .unwrap()
        .starts_with("dl_"));
    assert_eq!(attempt["fields"]["status_code"], 200);
    assert_eq!(attempt["fields"]["tenant_id"], TENANT);
}

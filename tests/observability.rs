//! What operators see: the Lambda log format (JSON lines carrying request, tenant, event and
//! delivery ids) and the EMF metric line the dispatch function writes per batch.

use herald_shared::runtime::json_logs;
use herald_tests::logs::Captured;
use herald_tests::receiver::Receiver;
use herald_tests::stack::{Stack, KEY, TENANT};
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

/// `RUST_LOG` at trace, and every dependency target named at trace too, with the DynamoDB store
/// and SQS on moto: saving a webhook with a protected header and a secret of its own, test
/// sends, deliveries, reading and rotating the secret and minting a key put none of the
/// secrets, the protected value or the keys in a log line. (The SDK logs request and response
/// bodies at trace, DynamoDB items included.)
#[tokio::test]
async fn no_rust_log_setting_puts_a_secret_in_the_logs_with_the_dynamodb_store() {
    let logs = Captured::default();
    let writer = logs.clone();
    let filter = "trace,aws_smithy_runtime=trace,aws_smithy_runtime::client::orchestrator=trace,\
        aws_sigv4=trace,aws_runtime=trace,aws_sdk_dynamodb=trace,aws_sdk_sqs=trace,\
        aws_smithy_runtime_api=trace,hyper=trace,hyper_util=trace,reqwest=trace,rustls=trace"
        .parse()
        .unwrap();
    let _guard = tracing::subscriber::set_default(json_logs(filter, move || writer.clone()));
    tracing::trace!(target: "herald_tests::observability", "trace lines are on");

    let stack = Stack::moto().await;
    let rx = Receiver::start(200).await;
    let own_secret = "whsec_c2VjcmV0LW9mLXRoZS13ZWJob29rLW93bmVy";
    let protected = "Token pr0tected-header-value";
    let webhook = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"], "secret": own_secret,
            "headers": [{"key": "Authorization", "value": protected, "protected": true}]}))
        .await;
    let id = webhook["id"].as_str().unwrap();
    let (status, _, _) = stack
        .call("POST", &format!("/v1/webhooks/{id}/test"), None, None)
        .await;
    assert_eq!(status.as_u16(), 200);
    stack
        .post_event(json!({"id": "evt-trace-1", "type": "jobs.failed"}))
        .await;
    assert!(stack.drain().await.is_empty());
    let (_, _, read) = stack
        .call("GET", &format!("/v1/webhooks/{id}/secret"), None, None)
        .await;
    assert_eq!(read["secret"], own_secret);
    let (_, _, rotated) = stack
        .call(
            "POST",
            &format!("/v1/webhooks/{id}/secret/rotate"),
            None,
            None,
        )
        .await;
    let rotated = rotated["secret"].as_str().unwrap().to_string();
    stack
        .post_event(json!({"id": "evt-trace-2", "type": "jobs.failed"}))
        .await;
    assert!(stack.drain().await.is_empty());
    let (_, _, key) = stack.call("POST", "/v1/keys", None, None).await;
    let key = key["key"].as_str().unwrap().to_string();
    assert_eq!(rx.requests().len(), 3, "the test send and two deliveries");
    assert_eq!(rx.requests()[0].header("authorization"), protected);

    let text = logs.text();
    assert!(
        text.contains("trace lines are on")
            && text.contains(id)
            && text.contains("delivery attempt"),
        "the capture works at trace level"
    );
    let signature = rx.requests()[2].header("webhook-signature").to_string();
    for secret in [
        own_secret,
        own_secret.trim_start_matches("whsec_"),
        rotated.as_str(),
        rotated.trim_start_matches("whsec_"),
        "pr0tected-header-value",
        KEY,
        key.as_str(),
        signature
            .split(' ')
            .next()
            .unwrap()
            .trim_start_matches("v1,"),
    ] {
        assert!(
            !text.contains(secret),
            "a secret reached the logs: {secret}"
        );
    }
}

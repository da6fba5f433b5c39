//! The metering proxy between `herald dev` and moto: forwards every request, and hands each
//! request and answer to the [`Meter`]. What the meter cannot see in the traffic (the item an
//! update left, a table created before the proxy) it reads from moto directly, unmetered.

use super::meter::{self, Meter};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// An authorization moto routes to DynamoDB in us-east-1 (the stack's region).
const UNSIGNED: &str = "AWS4-HMAC-SHA256 Credential=bench/20261204/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

pub struct Proxy {
    pub meter: Arc<Mutex<Meter>>,
    client: reqwest::Client,
    upstream: String,
}

/// Serves the proxy in front of `upstream`; the address to point `herald dev` at.
pub async fn start(meter: Arc<Mutex<Meter>>, upstream: &str) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let endpoint = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let proxy = Arc::new(Proxy {
        meter,
        client: reqwest::Client::new(),
        upstream: upstream.to_string(),
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(endpoint)
}

impl Proxy {
    /// A DynamoDB call straight to moto, with the authorization of the request that prompted
    /// it: moto picks the service, region and account from its credential scope, and checks
    /// no signature.
    async fn dynamodb(&self, op: &str, body: Value, authorization: Option<&HeaderValue>) -> Value {
        let fallback = HeaderValue::from_static(UNSIGNED);
        let request = self
            .client
            .post(&self.upstream)
            .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
            .header("content-type", "application/x-amz-json-1.0")
            .header("authorization", authorization.unwrap_or(&fallback))
            .body(body.to_string());
        match request.send().await {
            Ok(answer) => parse(&answer.bytes().await.unwrap_or_default()),
            Err(_) => Value::Null,
        }
    }
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let arrived = Instant::now();
    let target = headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let sqs = target.strip_prefix("AmazonSQS.");
    if let Some(action) = sqs {
        proxy
            .meter
            .lock()
            .unwrap()
            .sqs_request(action, &parse(&body), arrived);
    }
    let mut request = proxy
        .client
        .request(method, format!("{}{uri}", proxy.upstream));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.body(body.clone()).send().await else {
        return (StatusCode::BAD_GATEWAY, HeaderMap::new(), Bytes::new());
    };
    let status = answer.status();
    let mut out = HeaderMap::new();
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            out.insert(name, value.clone());
        }
    }
    let reply = answer.bytes().await.unwrap_or_default();
    if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
        metered(&proxy, op, &headers, &body, &reply, status.is_success()).await;
    } else if sqs == Some("ReceiveMessage") {
        proxy
            .meter
            .lock()
            .unwrap()
            .sqs_received(&parse(&reply), Instant::now());
    }
    (
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        out,
        reply,
    )
}

async fn metered(
    proxy: &Proxy,
    op: &str,
    headers: &HeaderMap,
    body: &[u8],
    reply: &[u8],
    ok: bool,
) {
    let req = parse(body);
    let auth = headers.get("authorization");
    let unknown: Vec<String> = {
        let m = proxy.meter.lock().unwrap();
        meter::tables(op, &req)
            .into_iter()
            .filter(|t| !m.knows(t))
            .collect()
    };
    for table in unknown {
        let described = proxy
            .dynamodb("DescribeTable", json!({"TableName": table}), auth)
            .await;
        proxy
            .meter
            .lock()
            .unwrap()
            .learn(&table, &described["Table"]);
    }
    let mut read_back = Vec::new();
    if ok {
        // Another write to the same item may land between the update and this read: the
        // item read back is then that later one, which bills the same within a write unit.
        for (table, key) in meter::updates(op, &req) {
            let got = proxy
                .dynamodb(
                    "GetItem",
                    json!({"TableName": table, "Key": key, "ConsistentRead": true}),
                    auth,
                )
                .await;
            read_back.push(got["Item"].as_object().cloned());
        }
    }
    proxy
        .meter
        .lock()
        .unwrap()
        .dynamodb(op, &req, &parse(reply), ok, read_back);
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_tests::moto::Moto;

    async fn call(endpoint: &str, op: &str, body: Value) -> Value {
        let answer = reqwest::Client::new()
            .post(endpoint)
            .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
            .header("content-type", "application/x-amz-json-1.0")
            .header("authorization", UNSIGNED)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body = answer.bytes().await.unwrap();
        assert!(
            status.is_success(),
            "{op}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        parse(&body)
    }

    /// Through moto: the index comes from the CreateTable that passed through the proxy, and
    /// each update is billed on the item moto holds after it, which its answer does not carry.
    #[tokio::test(flavor = "multi_thread")]
    async fn updates_are_billed_on_the_item_read_back_against_the_learned_index() {
        let moto = Moto::start(&herald_tests::venv_bin("moto_server")).unwrap();
        let meter = Arc::new(Mutex::new(Meter::default()));
        let endpoint = start(meter.clone(), &moto.endpoint).await.unwrap();
        let s = |v: &str| json!({"S": v});
        call(
            &endpoint,
            "CreateTable",
            json!({
                "TableName": "t", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "id", "AttributeType": "S"},
                    {"AttributeName": "state", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{
                    "IndexName": "ByState",
                    "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}}],
            }),
        )
        .await;
        meter.lock().unwrap().on = true;
        call(
            &endpoint,
            "PutItem",
            json!({"TableName": "t",
            "Item": {"id": s("1"), "body": s(&"x".repeat(3000))}}),
        )
        .await;
        let update = |expression: &str, values: Value| {
            json!({"TableName": "t", "Key": {"id": s("1")}, "UpdateExpression": expression,
                "ExpressionAttributeNames": {"#s": "state"}, "ExpressionAttributeValues": values})
        };
        // Into the index, and the item shrinks: billed on the 3 KB before it.
        call(
            &endpoint,
            "UpdateItem",
            update("SET #s = :s REMOVE body", json!({":s": s("new")})),
        )
        .await;
        {
            let m = meter.lock().unwrap();
            let u = &m.dynamodb["UpdateItem"];
            assert_eq!((u.wru, u.index["ByState"]), (3.0, 1.0));
        }
        // The index key moves: its entry is deleted and put again.
        call(
            &endpoint,
            "UpdateItem",
            update("SET #s = :s", json!({":s": s("done")})),
        )
        .await;
        // Only an attribute INCLUDE does not project changes: no index write.
        call(
            &endpoint,
            "UpdateItem",
            update(
                "SET #s = :s, extra = :o",
                json!({":s": s("done"), ":o": s("y")}),
            ),
        )
        .await;
        let m = meter.lock().unwrap();
        let u = &m.dynamodb["UpdateItem"];
        assert_eq!(u.calls, 3);
        assert_eq!(u.wru, 3.0 + 1.0 + 1.0);
        assert_eq!(u.index["ByState"], 1.0 + 2.0);
        // The item {id, state, extra} and its entry {id, state}, each with the overhead.
        assert_eq!(
            m.stored(),
            (2 + 1 + 5 + 4 + 5 + 1 + 100, 2 + 1 + 5 + 4 + 100)
        );
    }
}

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
    /// A DynamoDB call straight to moto, signed as the request that prompted it was.
    async fn dynamodb(&self, op: &str, body: Value, authorization: Option<&HeaderValue>) -> Value {
        let mut request = self
            .client
            .post(&self.upstream)
            .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.to_string());
        if let Some(auth) = authorization {
            request = request.header("authorization", auth);
        }
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

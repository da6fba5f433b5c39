//! The cost meter: `herald dev` on DynamoDB and SQS served by moto, with a metering proxy in
//! between that reads every request and answer and bills them as AWS does (COST.md): write
//! units per 1 KB of the whole item on every write, again for each index copy, double in
//! transactions, charged for refused conditional writes; read units per 4 KB; SQS requests per
//! 64 KB; storage as the items left at the end, with their index copies and overhead.

use crate::stack::{self, Load};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use herald_tests::moto::Moto;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// List prices, us-east-1 (COST.md).
const WRU: f64 = 0.625e-6;
const RRU: f64 = 0.125e-6;
const SQS_REQUEST: f64 = 0.40e-6;
const GB_MONTH: f64 = 0.25;
const API_REQUEST: f64 = 1.00e-6;
/// DynamoDB's per-item overhead in storage, and in each index copy.
const ITEM_OVERHEAD: u64 = 100;
/// The index that copies an item when it carries the index's key (projection ALL).
const INDEX_KEY: &str = "GSI1PK";

#[derive(Default)]
struct Meter {
    /// Per operation: calls, write units, read units.
    dynamodb: BTreeMap<String, (u64, f64, f64)>,
    sqs: BTreeMap<String, u64>,
    /// The size of every item written so far and whether it has an index copy, by key.
    items: HashMap<String, (u64, bool)>,
    on: bool,
}

/// An attribute value's billed size (DynamoDB's item size rules).
fn value_size(v: &Value) -> u64 {
    let Some((kind, v)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => v.as_str().map_or(0, |s| s.len() as u64),
        "N" => v
            .as_str()
            .map_or(0, |s| s.trim_start_matches('-').len() as u64 / 2 + 1),
        "B" => v.as_str().map_or(0, |s| s.len() as u64 * 3 / 4),
        "BOOL" | "NULL" => 1,
        "L" => {
            3 + v
                .as_array()
                .map_or(0, |l| l.iter().map(|e| 1 + value_size(e)).sum())
        }
        "M" => 3 + v.as_object().map_or(0, |m| item_size(m) + m.len() as u64),
        "SS" | "NS" | "BS" => v.as_array().map_or(0, |l| {
            l.iter()
                .map(|e| e.as_str().map_or(0, str::len) as u64)
                .sum()
        }),
        _ => 0,
    }
}

fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter()
        .map(|(name, v)| name.len() as u64 + value_size(v))
        .sum()
}

fn key_of(table: &str, key: &Map<String, Value>) -> String {
    format!(
        "{table}|{}|{}",
        key.get("PK").map(Value::to_string).unwrap_or_default(),
        key.get("SK").map(Value::to_string).unwrap_or_default()
    )
}

fn units(bytes: u64, per: u64) -> f64 {
    bytes.div_ceil(per).max(1) as f64
}

impl Meter {
    /// Write units of one put (`item`) or update/delete (`None`) of `key`, applied to the
    /// items' sizes when `done`.
    fn write(
        &mut self,
        key: String,
        item: Option<&Map<String, Value>>,
        delete: bool,
        done: bool,
    ) -> f64 {
        let old = self.items.get(&key).copied();
        let (size, indexed) = match item {
            Some(item) => (item_size(item), item.contains_key(INDEX_KEY)),
            None => old.unwrap_or((1, false)),
        };
        let billed = size.max(old.map_or(0, |(s, _)| s));
        let copies = 1.0 + f64::from(u8::from(indexed || old.is_some_and(|(_, i)| i)));
        if done {
            if delete {
                self.items.remove(&key);
            } else {
                self.items.insert(key, (size, indexed));
            }
        }
        units(billed, 1024) * copies
    }

    fn dynamodb(&mut self, op: &str, req: &Value, resp: &Value, ok: bool) {
        let table = req["TableName"].as_str().unwrap_or_default().to_string();
        // A refused conditional write is charged; other errors are not metered.
        let refused = resp["__type"]
            .as_str()
            .is_some_and(|t| t.ends_with("ConditionalCheckFailedException"));
        if !ok && !refused {
            return;
        }
        let empty = Map::new();
        let obj = |v: &Value| v.as_object().cloned().unwrap_or_default();
        let (writes, reads) = match op {
            "PutItem" => {
                let item = obj(&req["Item"]);
                (
                    self.write(key_of(&table, &item), Some(&item), false, ok),
                    0.0,
                )
            }
            "UpdateItem" => (
                self.write(key_of(&table, &obj(&req["Key"])), None, false, ok),
                0.0,
            ),
            "DeleteItem" => (
                self.write(key_of(&table, &obj(&req["Key"])), None, true, ok),
                0.0,
            ),
            "TransactWriteItems" => {
                let mut total = 0.0;
                for op in req["TransactItems"].as_array().unwrap_or(&Vec::new()) {
                    let (kind, body) = op.as_object().and_then(|o| o.iter().next()).unwrap();
                    let t = body["TableName"].as_str().unwrap_or_default();
                    let w = match kind.as_str() {
                        "Put" => {
                            let item = obj(&body["Item"]);
                            self.write(key_of(t, &item), Some(&item), false, ok)
                        }
                        "Delete" => self.write(key_of(t, &obj(&body["Key"])), None, true, ok),
                        _ => self.write(key_of(t, &obj(&body["Key"])), None, false, ok),
                    };
                    total += 2.0 * w;
                }
                (total, 0.0)
            }
            "BatchWriteItem" => {
                let mut total = 0.0;
                for (t, ops) in req["RequestItems"].as_object().unwrap_or(&empty) {
                    for op in ops.as_array().unwrap_or(&Vec::new()) {
                        total += match op.get("PutRequest") {
                            Some(put) => {
                                let item = obj(&put["Item"]);
                                self.write(key_of(t, &item), Some(&item), false, ok)
                            }
                            None => self.write(
                                key_of(t, &obj(&op["DeleteRequest"]["Key"])),
                                None,
                                true,
                                ok,
                            ),
                        };
                    }
                }
                (total, 0.0)
            }
            "GetItem" => {
                let size = resp["Item"].as_object().map_or(0, item_size);
                let half = if req["ConsistentRead"] == true {
                    1.0
                } else {
                    0.5
                };
                (0.0, units(size, 4096) * half)
            }
            "Query" | "Scan" => {
                let size: u64 = resp["Items"].as_array().map_or(0, |l| {
                    l.iter().filter_map(Value::as_object).map(item_size).sum()
                });
                let half = if req["ConsistentRead"] == true {
                    1.0
                } else {
                    0.5
                };
                (0.0, units(size, 4096) * half)
            }
            "BatchGetItem" => {
                let mut total = 0.0;
                for items in resp["Responses"].as_object().unwrap_or(&empty).values() {
                    for item in items.as_array().unwrap_or(&Vec::new()) {
                        total += units(item.as_object().map_or(0, item_size), 4096);
                    }
                }
                (0.0, total)
            }
            // Table set-up and description.
            _ => return,
        };
        if self.on {
            let row = self.dynamodb.entry(op.to_string()).or_default();
            row.0 += 1;
            row.1 += writes;
            row.2 += reads;
        }
    }

    fn sqs(&mut self, action: &str, body_len: usize) {
        if self.on {
            *self.sqs.entry(action.to_string()).or_default() +=
                body_len.div_ceil(64 * 1024).max(1) as u64;
        }
    }
}

type Shared = (Arc<Mutex<Meter>>, reqwest::Client, String);

async fn proxy(
    State((meter, client, upstream)): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut forward = client.request(method, format!("{upstream}{uri}"));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    let Ok(answer) = forward.body(body.clone()).send().await else {
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
    let target = headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default();
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap_or(Value::Null);
    let mut m = meter.lock().unwrap();
    if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
        m.dynamodb(op, &parse(&body), &parse(&reply), status.is_success());
    } else if let Some(action) = target.strip_prefix("AmazonSQS.") {
        m.sqs(action, body.len());
    }
    (
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        out,
        reply,
    )
}

/// One metered run: `events` events to `fanout` webhooks, `batch` events per POST.
pub async fn run(
    herald: &Path,
    venv: &Path,
    events: usize,
    fanout: usize,
    batch: usize,
) -> Result<String, String> {
    let moto = Moto::start(&venv.join("bin/moto_server"))?;
    let meter = Arc::new(Mutex::new(Meter::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let endpoint = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let app = axum::Router::new().fallback(proxy).with_state((
        meter.clone(),
        reqwest::Client::new(),
        moto.endpoint.clone(),
    ));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let load = Load {
        aws: Some(&endpoint),
        events,
        fanout,
        connections: 8,
        batch,
    };
    stack::run_with(herald, load, || meter.lock().unwrap().on = true).await?;
    let m = meter.lock().unwrap();
    let deliveries = (events * fanout) as f64;
    let per = |x: f64| x / deliveries;
    let mut lines = vec![format!(
        "cost: {events} events x {fanout} webhooks, {batch} per POST, {} deliveries",
        events * fanout
    )];
    let (mut wru, mut rru) = (0.0, 0.0);
    for (op, (calls, w, r)) in &m.dynamodb {
        lines.push(format!(
            "  dynamodb {op}: {:.3} calls, {:.3} WRU, {:.3} RRU per delivery",
            per(*calls as f64),
            per(*w),
            per(*r)
        ));
        wru += w;
        rru += r;
    }
    let mut sqs = 0;
    for (action, requests) in &m.sqs {
        lines.push(format!(
            "  sqs {action}: {:.3} requests per delivery",
            per(*requests as f64)
        ));
        sqs += requests;
    }
    let stored: u64 = m
        .items
        .values()
        .map(|(size, indexed)| (size + ITEM_OVERHEAD) * (1 + u64::from(*indexed)))
        .sum();
    let posts = events.div_ceil(batch.max(1)) as f64;
    let million = 1e6;
    let storage = per(stored as f64) / 1e9 * GB_MONTH;
    let total = per(wru) * WRU
        + per(rru) * RRU
        + per(sqs as f64) * SQS_REQUEST
        + storage
        + per(posts) * API_REQUEST;
    lines.push(format!(
        "  per delivery: {:.3} WRU, {:.3} RRU, {:.3} SQS requests, {:.0} bytes kept (a month, index copies and overhead included), {:.3} API requests",
        per(wru),
        per(rru),
        per(sqs as f64),
        per(stored as f64),
        per(posts)
    ));
    lines.push(format!(
        "  per million deliveries: DynamoDB writes ${:.2}, reads ${:.2}, storage ${:.2}, SQS ${:.2}, API Gateway ${:.2}; total ${:.2} (Lambda not metered; SQS receives are herald dev's poller, not Lambda's event source)",
        per(wru) * WRU * million,
        per(rru) * RRU * million,
        storage * million,
        per(sqs as f64) * SQS_REQUEST * million,
        per(posts) * API_REQUEST * million,
        total * million
    ));
    Ok(lines.join("\n"))
}

//! What the metering proxy has seen: every DynamoDB and SQS request and answer, reduced to
//! what AWS would bill for them, and the items the table holds, so each write is billed on the
//! item before and after it.

use super::dynamodb::{self, bill, item_size, units, Item, Schema};
use super::prices::ITEM_OVERHEAD;
use super::sqs;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// One DynamoDB operation's tally.
#[derive(Clone, Debug, Default)]
pub struct Operation {
    pub calls: u64,
    /// The table's write units.
    pub wru: f64,
    /// Write units of each index.
    pub index: BTreeMap<String, f64>,
    pub rru: f64,
}

/// One batch `herald dev`'s poller received: when its answer went back, and how long until its
/// first message was deleted (the dispatcher is done with the batch by then).
struct Batch {
    received: Instant,
    ms: Option<f64>,
}

#[derive(Default)]
pub struct Meter {
    /// Set once the webhooks exist: what comes before is set-up, not delivery.
    pub on: bool,
    schemas: HashMap<String, Schema>,
    /// Every item written, by table and key, as the table holds it now.
    items: HashMap<(String, String), Item>,
    pub dynamodb: BTreeMap<String, Operation>,
    /// SQS sends, in billed requests, by action.
    pub sent: BTreeMap<String, u64>,
    /// SQS sends, in messages put on the queue, by action: what a delivery's retries take,
    /// whether they went one by one or in batches.
    pub messages: BTreeMap<String, u64>,
    /// The body size of every message received, in order.
    pub received: Vec<u64>,
    /// `herald dev`'s own poller's calls by action: counted to show what was replaced.
    pub local: BTreeMap<String, u64>,
    receipts: HashMap<String, usize>,
    batches: Vec<Batch>,
    last_activity: Option<Instant>,
}

/// One write inside a request.
enum Write<'a> {
    Put(&'a Item),
    Update(&'a Item),
    Delete(&'a Item),
    Check(&'a Item),
}

fn obj(v: &Value) -> Option<&Item> {
    v.as_object()
}

/// The (table, key) of every update in a request: the items to read back once it succeeded,
/// since an update's answer does not carry the item it left.
pub fn updates(op: &str, req: &Value) -> Vec<(String, Value)> {
    let table = |v: &Value| v["TableName"].as_str().unwrap_or_default().to_string();
    match op {
        "UpdateItem" => vec![(table(req), req["Key"].clone())],
        "TransactWriteItems" => req["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.get("Update"))
            .map(|u| (table(u), u["Key"].clone()))
            .collect(),
        _ => Vec::new(),
    }
}

/// The tables a request writes to.
pub fn tables(op: &str, req: &Value) -> Vec<String> {
    let name = |v: &Value| v["TableName"].as_str().map(String::from);
    match op {
        "PutItem" | "UpdateItem" | "DeleteItem" => name(req).into_iter().collect(),
        "TransactWriteItems" => req["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_object()?.values().next().and_then(name))
            .collect(),
        "BatchWriteItem" => req["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys().cloned())
            .collect(),
        _ => Vec::new(),
    }
}

impl Meter {
    /// The tables' schemas as learned, by table name.
    pub fn schemas(&self) -> impl Iterator<Item = (&String, &Schema)> {
        self.schemas.iter()
    }

    pub fn knows(&self, table: &str) -> bool {
        self.schemas.contains_key(table)
    }

    /// Learns a table's keys and indexes from its `CreateTable` request or description.
    pub fn learn(&mut self, table: &str, definition: &Value) {
        if let Some(schema) = Schema::from_definition(definition) {
            self.schemas.insert(table.to_string(), schema);
        }
    }

    fn touch(&mut self) {
        self.last_activity = Some(Instant::now());
    }

    /// Nothing billed for `quiet`, and every batch received has been handled.
    pub fn idle(&self, quiet: Duration) -> bool {
        self.batches.iter().all(|b| b.ms.is_some())
            && self.last_activity.is_none_or(|t| t.elapsed() >= quiet)
    }

    /// Bills one write and applies it to the items held. `read_back` is the item an applied
    /// update left.
    fn write(
        &mut self,
        table: &str,
        write: Write,
        applied: bool,
        transactional: bool,
        read_back: Option<Item>,
    ) -> dynamodb::WriteCost {
        let schema = self.schemas.get(table).cloned().unwrap_or_default();
        let key_item = match write {
            Write::Put(i) | Write::Update(i) | Write::Delete(i) | Write::Check(i) => i,
        };
        let at = (table.to_string(), schema.key_of(key_item));
        let before = self.items.get(&at).cloned();
        let after = match write {
            Write::Put(item) => Some(item.clone()),
            Write::Update(_) if applied => read_back,
            Write::Check(_) => before.clone(),
            Write::Update(_) | Write::Delete(_) => None,
        };
        let cost = bill(
            &schema,
            before.as_ref(),
            after.as_ref(),
            transactional,
            applied,
        );
        if applied {
            match after {
                Some(item) => self.items.insert(at, item),
                None => self.items.remove(&at),
            };
        }
        cost
    }

    /// One DynamoDB call. `read_back` holds, in the order of [`updates`], the items its
    /// updates left (read after it succeeded).
    pub fn dynamodb(
        &mut self,
        op: &str,
        req: &Value,
        resp: &Value,
        ok: bool,
        read_back: Vec<Option<Item>>,
    ) {
        if op == "CreateTable" && ok {
            self.learn(req["TableName"].as_str().unwrap_or_default(), req);
            return;
        }
        // A refused conditional write is charged; other errors are not.
        let refused = resp["__type"]
            .as_str()
            .is_some_and(|t| t.ends_with("ConditionalCheckFailedException"));
        if !ok && !refused {
            return;
        }
        let mut read_back = read_back.into_iter();
        let mut cost = Vec::new();
        let table = req["TableName"].as_str().unwrap_or_default();
        let empty = Item::new();
        let key = |v: &Value| obj(&v["Key"]).cloned().unwrap_or_default();
        let mut reads = 0.0;
        match op {
            "PutItem" => {
                let item = obj(&req["Item"]).unwrap_or(&empty).clone();
                cost.push(self.write(table, Write::Put(&item), ok, false, None));
            }
            "UpdateItem" => {
                let k = key(req);
                let back = read_back.next().flatten();
                cost.push(self.write(table, Write::Update(&k), ok, false, back));
            }
            "DeleteItem" => {
                let k = key(req);
                cost.push(self.write(table, Write::Delete(&k), ok, false, None));
            }
            "TransactWriteItems" => {
                for w in req["TransactItems"].as_array().into_iter().flatten() {
                    let Some((kind, body)) = w.as_object().and_then(|o| o.iter().next()) else {
                        continue;
                    };
                    let t = body["TableName"].as_str().unwrap_or_default();
                    let c = match kind.as_str() {
                        "Put" => {
                            let item = obj(&body["Item"]).unwrap_or(&empty).clone();
                            self.write(t, Write::Put(&item), ok, true, None)
                        }
                        "Update" => {
                            let back = read_back.next().flatten();
                            self.write(t, Write::Update(&key(body)), ok, true, back)
                        }
                        "Delete" => self.write(t, Write::Delete(&key(body)), ok, true, None),
                        _ => self.write(t, Write::Check(&key(body)), ok, true, None),
                    };
                    cost.push(c);
                }
            }
            "BatchWriteItem" => {
                for (t, ops) in req["RequestItems"].as_object().into_iter().flatten() {
                    for w in ops.as_array().into_iter().flatten() {
                        let c = match obj(&w["PutRequest"]["Item"]) {
                            Some(item) => self.write(t, Write::Put(&item.clone()), ok, false, None),
                            None => {
                                let k =
                                    obj(&w["DeleteRequest"]["Key"]).cloned().unwrap_or_default();
                                self.write(t, Write::Delete(&k), ok, false, None)
                            }
                        };
                        cost.push(c);
                    }
                }
            }
            "GetItem" => reads = read_units(req, resp["Item"].as_object().map_or(0, item_size)),
            "Query" | "Scan" => {
                let size = resp["Items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                    .map(item_size)
                    .sum();
                reads = read_units(req, size);
            }
            "BatchGetItem" => {
                // Each item is read on its own, strongly consistent unless asked otherwise.
                for items in resp["Responses"]
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.values())
                {
                    for item in items.as_array().into_iter().flatten() {
                        reads += units(item.as_object().map_or(0, item_size), 4096);
                    }
                }
            }
            // Table set-up and description.
            _ => return,
        }
        if !self.on {
            return;
        }
        if !cost.is_empty() {
            self.touch();
        }
        let row = self.dynamodb.entry(op.to_string()).or_default();
        row.calls += 1;
        row.rru += reads;
        for c in cost {
            row.wru += c.base;
            for (index, w) in c.index {
                *row.index.entry(index).or_default() += w;
            }
        }
    }

    /// An SQS request, as it arrives (a delete's arrival ends its batch's dispatch).
    pub fn sqs_request(&mut self, action: &str, req: &Value, at: Instant) {
        if !self.on {
            return;
        }
        match action {
            "SendMessage" | "SendMessageBatch" => {
                *self.sent.entry(action.to_string()).or_default() +=
                    sqs::chunks(sqs::sent_payload(action, req));
                *self.messages.entry(action.to_string()).or_default() +=
                    sqs::sent_messages(action, req);
                self.touch();
                return;
            }
            "DeleteMessage" => self.deleted(req["ReceiptHandle"].as_str(), at),
            "DeleteMessageBatch" => {
                for e in req["Entries"].as_array().into_iter().flatten() {
                    self.deleted(e["ReceiptHandle"].as_str(), at);
                }
            }
            // ReceiveMessage is counted on its answer.
            "ReceiveMessage" => return,
            _ => {}
        }
        *self.local.entry(action.to_string()).or_default() += 1;
    }

    fn deleted(&mut self, receipt: Option<&str>, at: Instant) {
        self.touch();
        let Some(batch) = receipt.and_then(|r| self.receipts.remove(r)) else {
            return;
        };
        let b = &mut self.batches[batch];
        if b.ms.is_none() {
            b.ms = Some(at.duration_since(b.received).as_secs_f64() * 1000.0);
        }
    }

    /// A `ReceiveMessage` answer, as it goes back to the poller.
    pub fn sqs_received(&mut self, answer: &Value, at: Instant) {
        if !self.on {
            return;
        }
        let messages = answer["Messages"].as_array().map_or(&[][..], Vec::as_slice);
        let name = if messages.is_empty() {
            "ReceiveMessage (empty)"
        } else {
            "ReceiveMessage"
        };
        *self.local.entry(name.to_string()).or_default() += 1;
        if messages.is_empty() {
            return;
        }
        let batch = self.batches.len();
        self.batches.push(Batch {
            received: at,
            ms: None,
        });
        for m in messages {
            self.received
                .push(m["Body"].as_str().map_or(0, str::len) as u64);
            if let Some(r) = m["ReceiptHandle"].as_str() {
                self.receipts.insert(r.to_string(), batch);
            }
        }
    }

    /// Messages sent, whatever the action.
    pub fn messages_sent(&self) -> u64 {
        self.messages.values().sum()
    }

    /// How long each local batch took to dispatch, in milliseconds.
    pub fn batch_ms(&self) -> Vec<f64> {
        self.batches.iter().filter_map(|b| b.ms).collect()
    }

    /// Bytes kept at the end: (items, index entries), each with its overhead.
    pub fn stored(&self) -> (u64, u64) {
        let empty = Schema::default();
        let (mut items, mut entries) = (0, 0);
        for ((table, _), item) in &self.items {
            items += item_size(item) + ITEM_OVERHEAD;
            let schema = self.schemas.get(table).unwrap_or(&empty);
            entries += schema
                .entries(item)
                .map(|(_, size)| size + ITEM_OVERHEAD)
                .sum::<u64>();
        }
        (items, entries)
    }
}

/// Read units of `size` bytes read by `req`: per 4 KB, half when eventually consistent.
fn read_units(req: &Value, size: u64) -> f64 {
    let consistent = req["ConsistentRead"] == true;
    units(size, 4096) * if consistent { 1.0 } else { 0.5 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meter() -> Meter {
        let mut m = Meter {
            on: true,
            ..Meter::default()
        };
        m.dynamodb(
            "CreateTable",
            &json!({
                "TableName": "t",
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{
                    "IndexName": "ByState",
                    "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }],
            }),
            &json!({}),
            true,
            vec![],
        );
        m
    }

    fn put(m: &mut Meter, item: Value) {
        m.dynamodb(
            "PutItem",
            &json!({"TableName": "t", "Item": item}),
            &json!({}),
            true,
            vec![],
        );
    }

    #[test]
    fn the_index_is_learned_from_create_table_and_an_update_is_billed_on_its_read_back() {
        let mut m = meter();
        put(
            &mut m,
            json!({"id": {"S": "1"}, "body": {"S": "x".repeat(3000)}}),
        );
        assert_eq!(m.dynamodb["PutItem"].wru, 3.0);
        assert!(
            m.dynamodb["PutItem"].index.is_empty(),
            "no state: not in the index"
        );
        // The update's answer says nothing; the read back shows it shrank the item and gave
        // it the index key: billed on the larger (before) size, one index entry put.
        let req = json!({"TableName": "t", "Key": {"id": {"S": "1"}}});
        assert_eq!(updates("UpdateItem", &req).len(), 1);
        let after = json!({"id": {"S": "1"}, "state": {"S": "done"}});
        m.dynamodb(
            "UpdateItem",
            &req,
            &json!({}),
            true,
            vec![after.as_object().cloned()],
        );
        assert_eq!(m.dynamodb["UpdateItem"].wru, 3.0);
        assert_eq!(m.dynamodb["UpdateItem"].index["ByState"], 1.0);
        let (items, entries) = m.stored();
        assert_eq!(items, 2 + 1 + 5 + 4 + ITEM_OVERHEAD);
        assert_eq!(entries, 2 + 1 + 5 + 4 + ITEM_OVERHEAD);
    }

    #[test]
    fn a_transaction_is_doubled_and_a_refused_write_charged() {
        let mut m = meter();
        let req = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"id": {"S": "1"}, "state": {"S": "a"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"id": {"S": "0"}}}},
        ]});
        m.dynamodb("TransactWriteItems", &req, &json!({}), true, vec![]);
        assert_eq!(m.dynamodb["TransactWriteItems"].wru, 4.0);
        assert_eq!(m.dynamodb["TransactWriteItems"].index["ByState"], 1.0);
        let refused =
            json!({"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"});
        let again = json!({"TableName": "t", "Item": {"id": {"S": "1"}}});
        m.dynamodb("PutItem", &again, &refused, false, vec![]);
        assert_eq!(m.dynamodb["PutItem"].wru, 1.0);
        assert!(m.dynamodb["PutItem"].index.is_empty());
        m.dynamodb(
            "PutItem",
            &again,
            &json!({"__type": "ValidationException"}),
            false,
            vec![],
        );
        assert_eq!(
            m.dynamodb["PutItem"].calls, 1,
            "other errors are not billed"
        );
    }

    #[test]
    fn deliveries_are_timed_from_the_receive_to_the_first_delete() {
        let mut m = meter();
        let t0 = Instant::now();
        let answer = json!({"Messages": [
            {"Body": "abc", "ReceiptHandle": "r1"}, {"Body": "de", "ReceiptHandle": "r2"}]});
        m.sqs_received(&answer, t0);
        assert!(!m.idle(Duration::ZERO));
        m.sqs_request(
            "DeleteMessage",
            &json!({"ReceiptHandle": "r2"}),
            t0 + Duration::from_millis(30),
        );
        m.sqs_request(
            "DeleteMessage",
            &json!({"ReceiptHandle": "r1"}),
            t0 + Duration::from_millis(50),
        );
        assert_eq!(m.batch_ms(), [30.0]);
        assert_eq!(m.received, [3, 2]);
        assert_eq!(m.local["DeleteMessage"], 2);
        assert!(
            m.sent.is_empty(),
            "the poller's calls are not billed as sent"
        );
        assert!(m.idle(Duration::ZERO));
    }

    #[test]
    fn sends_are_counted_in_messages_apart_from_the_requests_they_bill() {
        let mut m = meter();
        let entries: Vec<Value> = (0..10)
            .map(|i| json!({"Id": i.to_string(), "MessageBody": "fan-out"}))
            .collect();
        let now = Instant::now();
        m.sqs_request("SendMessageBatch", &json!({"Entries": entries}), now);
        m.sqs_request("SendMessage", &json!({"MessageBody": "retry"}), now);
        m.sqs_request("SendMessage", &json!({"MessageBody": "retry"}), now);
        assert_eq!(m.messages_sent(), 12);
        assert_eq!(m.messages["SendMessageBatch"], 10);
        assert_eq!(m.sent.values().sum::<u64>(), 3, "three requests billed");
        m.on = false;
        m.sqs_request("SendMessage", &json!({"MessageBody": "set-up"}), now);
        assert_eq!(
            m.messages_sent(),
            12,
            "nothing counted before the meter is on"
        );
    }
}

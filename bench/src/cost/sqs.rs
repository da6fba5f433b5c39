//! SQS as Lambda's event source mapping bills it. `herald dev`'s poller receives, deletes and
//! long-polls on its own schedule, so its calls are not what AWS would charge; the mapping's
//! are computed from the messages the run actually received.

use super::prices::SQS_CHUNK;
use serde_json::Value;

/// Requests billed for `payload` bytes sent or received in one call.
pub fn chunks(payload: u64) -> u64 {
    payload.div_ceil(SQS_CHUNK).max(1)
}

/// The payload of a `SendMessage` or `SendMessageBatch` request: its message bodies and
/// attributes (the queue URL and the request's framing are not billed).
pub fn sent_payload(action: &str, request: &Value) -> u64 {
    let message = |m: &Value| {
        let body = m["MessageBody"].as_str().map_or(0, str::len) as u64;
        let attributes: u64 = m["MessageAttributes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, v)| {
                let text = |f: &str| v[f].as_str().map_or(0, str::len) as u64;
                name.len() as u64 + text("DataType") + text("StringValue") + text("BinaryValue")
            })
            .sum();
        body + attributes
    };
    match action {
        "SendMessageBatch" => request["Entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(message)
            .sum(),
        _ => message(request),
    }
}

/// Messages a `SendMessage` or `SendMessageBatch` request puts on the queue: one per batch
/// entry, so a batch of ten is ten messages however few requests it bills.
pub fn sent_messages(action: &str, request: &Value) -> u64 {
    match action {
        "SendMessageBatch" => request["Entries"].as_array().map_or(0, Vec::len) as u64,
        _ => 1,
    }
}

/// What the event source mapping would have sent SQS for the messages received.
#[derive(Debug, PartialEq)]
pub struct Mapping {
    /// Batches handed to the function: one `ReceiveMessage` and one invocation each.
    pub batches: u64,
    /// `ReceiveMessage` requests, per 64 KB chunk of each batch's messages.
    pub receives: u64,
    /// One `DeleteMessageBatch` per batch (it carries only receipt handles).
    pub deletes: u64,
}

/// The mapping's requests for messages of `sizes` bytes, received in order in full batches of
/// `batch_size`, as a steady load fills them.
pub fn mapping(sizes: &[u64], batch_size: usize) -> Mapping {
    let batches: Vec<&[u64]> = sizes.chunks(batch_size.max(1)).collect();
    Mapping {
        batches: batches.len() as u64,
        receives: batches.iter().map(|b| chunks(b.iter().sum())).sum(),
        deletes: batches.len() as u64,
    }
}

/// The mapping's pollers, which long-poll the queue whether or not anything is sent. AWS starts
/// an SQS event source mapping with five.
pub const POLLERS: u64 = 5;
/// The longest long poll SQS allows, which the mapping uses.
pub const LONG_POLL_SECONDS: u64 = 20;
/// Seconds in the 30-day month the fixed cost is stated for.
pub const MONTH_SECONDS: u64 = 30 * 24 * 3600;

/// Empty receives a month from an idle queue: a fixed cost, whatever the volume.
pub fn empty_receives_a_month() -> u64 {
    POLLERS * MONTH_SECONDS / LONG_POLL_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_are_billed_per_64_kb_chunk() {
        assert_eq!(chunks(0), 1);
        assert_eq!(chunks(64 * 1024), 1);
        assert_eq!(chunks(64 * 1024 + 1), 2);
        assert_eq!(chunks(256 * 1024), 4);
    }

    #[test]
    fn a_batch_send_is_billed_on_its_messages_together() {
        let entry = |n: usize| json!({"Id": "1", "MessageBody": "x".repeat(n)});
        let batch = json!({"QueueUrl": "q", "Entries": [entry(40_000), entry(40_000)]});
        let payload = sent_payload("SendMessageBatch", &batch);
        assert_eq!(payload, 80_000);
        assert_eq!(chunks(payload), 2);
        let one = json!({"QueueUrl": "q", "MessageBody": "abc",
            "MessageAttributes": {"k": {"DataType": "String", "StringValue": "vv"}}});
        assert_eq!(sent_payload("SendMessage", &one), 3 + 1 + 6 + 2);
    }

    #[test]
    fn a_batch_send_is_one_message_per_entry_and_a_single_send_one() {
        let entries: Vec<Value> = (0..7)
            .map(|i| json!({"Id": i.to_string(), "MessageBody": "m"}))
            .collect();
        let batch = json!({"QueueUrl": "q", "Entries": entries});
        assert_eq!(sent_messages("SendMessageBatch", &batch), 7);
        assert_eq!(chunks(sent_payload("SendMessageBatch", &batch)), 1);
        let one = json!({"QueueUrl": "q", "MessageBody": "m", "DelaySeconds": 2});
        assert_eq!(sent_messages("SendMessage", &one), 1);
    }

    #[test]
    fn the_mapping_receives_and_deletes_once_per_batch() {
        let m = mapping(&[1000; 25], 10);
        assert_eq!(
            m,
            Mapping {
                batches: 3,
                receives: 3,
                deletes: 3
            }
        );
        // A batch over 64 KB is received in more chunks, but still deleted once.
        let m = mapping(&[30_000; 10], 10);
        assert_eq!((m.batches, m.receives, m.deletes), (1, 5, 1));
        assert_eq!(mapping(&[], 10).batches, 0);
    }

    #[test]
    fn idle_pollers_cost_the_same_every_month() {
        assert_eq!(empty_receives_a_month(), 5 * 2_592_000 / 20);
    }
}

//! A metered run priced: the counts per delivery, each part's dollars per million deliveries
//! from the price table, and the totals behind API Gateway and behind a function URL.

use super::dynamodb::Projection;
use super::lambda::{gb_seconds, Deployed};
use super::meter::Meter;
use super::prices::*;
use super::{sqs, Scenario};

/// What one run measured.
pub struct Measured<'a> {
    pub scenario: &'a Scenario,
    pub deployed: &'a Deployed,
    pub post_bytes: &'a [usize],
    /// Each ingest request's billed milliseconds.
    pub ingest_ms: Vec<f64>,
    pub meter: &'a Meter,
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The report: `cost <scenario>: $X.XX per million deliveries`, then the parts, indented.
pub fn lines(run: &Measured) -> Vec<String> {
    let Scenario {
        name,
        events,
        fanout,
        batch,
    } = run.scenario;
    let m = run.meter;
    let deliveries = (events * fanout) as f64;
    let per = |x: f64| x / deliveries;
    // Dollars per million deliveries of `count` units per delivery at `price` each.
    let dollars = |count: f64, price: f64| count * price * 1e6;
    let mut parts = Vec::new();

    let (mut wru, mut index_wru, mut rru) = (0.0, 0.0, 0.0);
    for (op, o) in &m.dynamodb {
        // Folded from +0.0: an empty f64 sum is -0.0, which would print as such.
        let index = o.index.values().fold(0.0, |a, b| a + b);
        let by_index = o
            .index
            .iter()
            .map(|(name, w)| format!("{name} {:.3}", per(*w)))
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!(
            "dynamodb {op}: {:.3} calls, {:.3} WRU, {:.3} RRU{}",
            per(o.calls as f64),
            per(o.wru),
            per(o.rru),
            if by_index.is_empty() {
                String::new()
            } else {
                format!(", index writes {:.3} WRU ({by_index})", per(index))
            }
        ));
        wru += o.wru;
        index_wru += index;
        rru += o.rru;
    }
    // Each run's table has a fresh random name: only its shape is worth printing.
    for schema in m.schemas().map(|(_, schema)| schema) {
        let indexes = schema
            .indexes
            .iter()
            .map(|i| {
                let projection = match &i.projection {
                    Projection::All => "ALL".to_string(),
                    Projection::KeysOnly => "KEYS_ONLY".to_string(),
                    Projection::Include(a) => format!("INCLUDE {}", a.join(" ")),
                };
                format!("{} ({}; {projection})", i.name, i.keys.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!(
            "dynamodb table key ({}) and indexes {indexes}, as its CreateTable set them up",
            schema.keys.join(", ")
        ));
    }
    let writes = dollars(per(wru + index_wru), WRU);
    parts.push(format!(
        "dynamodb writes: {:.3} WRU table + {:.3} WRU index = {:.3} WRU: ${writes:.3}",
        per(wru),
        per(index_wru),
        per(wru + index_wru)
    ));
    let reads = dollars(per(rru), RRU);
    parts.push(format!("dynamodb reads: {:.3} RRU: ${reads:.3}", per(rru)));
    let (items, entries) = m.stored();
    let kept = per((items + entries) as f64);
    let storage = kept / 1e9 * GB_MONTH * 1e6;
    parts.push(format!(
        "dynamodb storage: {kept:.0} bytes kept a month ({:.0} in items, {:.0} in index entries, {ITEM_OVERHEAD} B overhead each): ${storage:.3}",
        per(items as f64),
        per(entries as f64)
    ));

    let mapping = sqs::mapping(&m.received, run.deployed.batch_size);
    let sent: u64 = m.sent.values().sum();
    let sqs_requests = per((sent + mapping.receives + mapping.deletes) as f64);
    let sqs_cost = dollars(sqs_requests, SQS_REQUEST);
    let sends = m
        .sent
        .iter()
        .map(|(action, n)| format!("{action} {:.3}", per(*n as f64)))
        .collect::<Vec<_>>()
        .join(", ");
    parts.push(format!(
        "sqs: {sends}, ReceiveMessage {:.3}, DeleteMessageBatch {:.3} = {sqs_requests:.3} requests: ${sqs_cost:.3} (receives and deletes as the event source mapping makes them: one each per batch of up to {}, for the {} messages received)",
        per(mapping.receives as f64),
        per(mapping.deletes as f64),
        run.deployed.batch_size,
        m.received.len()
    ));

    let posts = run.post_bytes.len() as f64;
    let ingest_gbs = gb_seconds(&run.ingest_ms, run.deployed.ingest_mb);
    let batch_ms = m.batch_ms();
    let dispatch_gbs = gb_seconds(&batch_ms, run.deployed.dispatch_mb);
    let invocations = per(posts + mapping.batches as f64);
    let lambda_cost = dollars(invocations, LAMBDA_REQUEST)
        + dollars(per(ingest_gbs + dispatch_gbs), LAMBDA_GB_SECOND);
    parts.push(format!(
        "lambda ingest: {:.4} invocations (one per POST), {:.7} GB-s ({} MB; {} requests, mean {:.1} ms billed, from herald dev's access log: request to answer, rounded up to the ms)",
        per(posts),
        per(ingest_gbs),
        run.deployed.ingest_mb,
        run.ingest_ms.len(),
        mean(&run.ingest_ms)
    ));
    parts.push(format!(
        "lambda dispatch: {:.4} invocations (one per mapping batch), {:.7} GB-s ({} MB; the sum of the {} batches herald dev's poller handled, mean {:.1} messages and {:.1} ms each, timed by the proxy from the ReceiveMessage answer to the batch's first DeleteMessage, each rounded up to the ms)",
        per(mapping.batches as f64),
        per(dispatch_gbs),
        run.deployed.dispatch_mb,
        batch_ms.len(),
        m.received.len() as f64 / batch_ms.len().max(1) as f64,
        mean(&batch_ms)
    ));
    parts.push(format!(
        "lambda: {invocations:.4} invocations, {:.7} GB-s (arm64): ${lambda_cost:.3}",
        per(ingest_gbs + dispatch_gbs)
    ));
    let api_requests: f64 = run
        .post_bytes
        .iter()
        .map(|b| (*b as u64).div_ceil(HTTP_API_CHUNK).max(1) as f64)
        .sum();
    let api = dollars(per(api_requests), HTTP_API_REQUEST);
    parts.push(format!(
        "api gateway HTTP API: {:.4} requests ({} POSTs of up to {} B): ${api:.3}",
        per(api_requests),
        run.post_bytes.len(),
        run.post_bytes.iter().max().unwrap_or(&0)
    ));

    let url = writes + reads + storage + sqs_cost + lambda_cost;
    let total = url + api;
    let mut out = vec![format!("cost {name}: ${total:.2} per million deliveries")];
    out.push(format!(
        "  {events} events x {fanout} webhooks, {batch} per POST: {deliveries} deliveries; per delivery, and $ per million deliveries:"
    ));
    out.extend(parts.into_iter().map(|p| format!("  {p}")));
    if *batch <= 1 {
        out.push(format!("  total behind API Gateway HTTP API: ${total:.2}"));
        out.push(format!(
            "  total behind a Lambda function URL (no per-request charge beyond the invocation): ${url:.2}"
        ));
    }
    out.push(format!(
        "  EventBridge API destinations, for comparison: ${:.2} (no signing, no log, no redelivery)",
        dollars(1.0, EVENTBRIDGE_API_DESTINATION)
    ));
    let empty = sqs::empty_receives_a_month();
    out.push(format!(
        "  fixed, not per delivery: {empty} empty receives a month ({} mapping pollers long-polling {} s each on an idle queue): ${:.2} a month",
        sqs::POLLERS,
        sqs::LONG_POLL_SECONDS,
        empty as f64 * SQS_REQUEST
    ));
    let local = m
        .local
        .iter()
        .map(|(action, n)| format!("{action} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    out.push(format!(
        "  not billed: herald dev's own poller calls, replaced by the mapping's above: {local}"
    ));
    out
}

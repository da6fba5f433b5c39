//! A metered run priced: the counts per delivery, each part's dollars per million deliveries
//! from the price table, and the totals behind API Gateway and behind a function URL.

use super::dynamodb::Projection;
use super::lambda::{gb_seconds, Deployed};
use super::meter::Meter;
use super::prices::*;
use super::sqs;

/// What one run measured, whichever scenario drove it: the pricing is the same for all.
pub struct Measured<'a> {
    pub deployed: &'a Deployed,
    pub meter: &'a Meter,
    /// What every figure is divided by.
    pub deliveries: usize,
    pub post_bytes: &'a [usize],
    /// Each ingest request's billed milliseconds.
    pub ingest_ms: Vec<f64>,
    /// How those were timed, for the printout.
    pub ingest_timing: &'a str,
    /// Dispatch function time spent outside the mapping's batches, in milliseconds, and what
    /// it was: billed at the dispatch function's memory like the batches.
    pub other_dispatch: Option<(Vec<f64>, String)>,
}

/// A run priced, part by part.
pub struct Priced {
    /// One line per part: the count per delivery and its dollars per million deliveries.
    pub parts: Vec<String>,
    /// Everything but API Gateway: the total behind a Lambda function URL.
    pub url: f64,
    /// API Gateway HTTP API's share.
    pub api: f64,
}

impl Priced {
    /// The total behind API Gateway HTTP API.
    pub fn total(&self) -> f64 {
        self.url + self.api
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Dollars per million deliveries of `count` units per delivery at `price` each.
pub fn dollars(count: f64, price: f64) -> f64 {
    count * price * 1e6
}

/// Prices every part of a run from the meter's counts and the price table.
pub fn price(run: &Measured) -> Priced {
    let m = run.meter;
    let deliveries = run.deliveries.max(1) as f64;
    let per = |x: f64| x / deliveries;
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
    let messages = m
        .messages
        .iter()
        .map(|(action, n)| format!("{action} {:.3}", per(*n as f64)))
        .collect::<Vec<_>>()
        .join(", ");
    parts.push(format!(
        "sqs messages sent: {:.3} ({messages}; messages put on the queue, not requests)",
        per(m.messages_sent() as f64)
    ));
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
    let other_ms = run.other_dispatch.as_ref().map_or(&[][..], |(ms, _)| ms);
    let dispatch_gbs = gb_seconds(&batch_ms, run.deployed.dispatch_mb);
    let other_gbs = if other_ms.is_empty() {
        0.0
    } else {
        gb_seconds(other_ms, run.deployed.dispatch_mb)
    };
    let invocations = per(posts + mapping.batches as f64);
    let lambda_cost = dollars(invocations, LAMBDA_REQUEST)
        + dollars(per(ingest_gbs + dispatch_gbs + other_gbs), LAMBDA_GB_SECOND);
    parts.push(format!(
        "lambda ingest: {:.4} invocations (one per POST), {:.7} GB-s ({} MB; requests: {}, mean {:.1} ms billed, {})",
        per(posts),
        per(ingest_gbs),
        run.deployed.ingest_mb,
        run.ingest_ms.len(),
        mean(&run.ingest_ms),
        run.ingest_timing
    ));
    parts.push(format!(
        "lambda dispatch: {:.4} invocations (one per mapping batch), {:.7} GB-s ({} MB; the sum of the {} batches the local poller handled, mean {:.1} messages and {:.1} ms each, timed by the proxy from the ReceiveMessage answer to the batch's first DeleteMessage, each rounded up to the ms)",
        per(mapping.batches as f64),
        per(dispatch_gbs),
        run.deployed.dispatch_mb,
        batch_ms.len(),
        m.received.len() as f64 / batch_ms.len().max(1) as f64,
        mean(&batch_ms)
    ));
    if let Some((ms, what)) = &run.other_dispatch {
        parts.push(format!(
            "lambda dispatch, besides the batches: {:.7} GB-s ({what}; {:.1} ms in all)",
            per(other_gbs),
            ms.iter().sum::<f64>()
        ));
    }
    parts.push(format!(
        "lambda: {invocations:.4} invocations, {:.7} GB-s (arm64): ${lambda_cost:.3}",
        per(ingest_gbs + dispatch_gbs + other_gbs)
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

    Priced {
        parts,
        url: writes + reads + storage + sqs_cost + lambda_cost,
        api,
    }
}

/// How a report is laid out around its parts.
pub struct Layout<'a> {
    pub name: &'a str,
    /// What the run was, after the headline.
    pub shape: String,
    /// Lines of this scenario's own, after the parts.
    pub notes: Vec<String>,
    /// Whether a function URL's total differs enough to be worth printing (one event per POST).
    pub both_totals: bool,
    /// Fixed costs of this scenario's own, whatever the volume, besides the mapping's polls.
    pub fixed: Vec<String>,
}

/// The report: `cost <scenario>: $X.XX per million deliveries`, then the parts, indented.
pub fn lines(layout: Layout, priced: &Priced, meter: &Meter) -> Vec<String> {
    let total = priced.total();
    let mut out = vec![format!(
        "cost {}: ${total:.2} per million deliveries",
        layout.name
    )];
    out.push(format!("  {}", layout.shape));
    out.extend(priced.parts.iter().map(|p| format!("  {p}")));
    out.extend(layout.notes.iter().map(|n| format!("  {n}")));
    if layout.both_totals {
        out.push(format!("  total behind API Gateway HTTP API: ${total:.2}"));
        out.push(format!(
            "  total behind a Lambda function URL (no per-request charge beyond the invocation): ${:.2}",
            priced.url
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
    out.extend(
        layout
            .fixed
            .iter()
            .map(|f| format!("  fixed, not per delivery: {f}")),
    );
    let local = meter
        .local
        .iter()
        .map(|(action, n)| format!("{action} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    out.push(format!(
        "  not billed: the local poller's own calls, replaced by the mapping's above: {local}"
    ));
    out
}

//! Dispatch metrics as CloudWatch Embedded Metric Format (EMF): one JSON line per batch on
//! stdout, which CloudWatch Logs turns into metrics with no API call from the function.
//!
//! Names (namespace `Herald`, dimension `Function`):
//! - `DeliveriesSucceeded`, `DeliveriesFailed` (after the whole schedule, or 410),
//!   `DeliveriesRetried` (an attempt failed and a retry is queued) — counts;
//! - `DeliveryDuration` — milliseconds each POST took;
//! - `DeliveryLatency` — milliseconds from ingest accepting the event to its successful delivery;
//! - `FanOut` — webhooks matched by each newly received event;
//! - `RecordsFailed` — batch items handed back to SQS for an internal failure.

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

pub const NAMESPACE: &str = "Herald";

/// EMF accepts at most 100 values per metric in one document; longer lists take more lines.
const MAX_VALUES: usize = 100;

const COUNTS: [&str; 6] = [
    "DeliveriesSucceeded",
    "DeliveriesFailed",
    "DeliveriesRetried",
    "RecordsFailed",
    "JobsNotStarted",
    "DeliveriesHeld",
];

/// What one dispatch batch did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchMetrics {
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub records_failed: u64,
    /// Jobs left for the next receive: they could not have finished before the deadline.
    pub not_started: u64,
    /// Deliveries kept, not sent, because their webhook is disabled.
    pub held: u64,
    pub duration_ms: Vec<f64>,
    pub latency_ms: Vec<f64>,
    pub fan_out: Vec<f64>,
}

impl BatchMetrics {
    /// The EMF lines for this batch (none when nothing happened).
    pub fn emf_lines(&self, function: &str, at: OffsetDateTime) -> Vec<String> {
        let counts = [
            self.succeeded,
            self.failed,
            self.retried,
            self.records_failed,
            self.not_started,
            self.held,
        ];
        let series = [
            ("DeliveryDuration", "Milliseconds", &self.duration_ms),
            ("DeliveryLatency", "Milliseconds", &self.latency_ms),
            ("FanOut", "Count", &self.fan_out),
        ];
        if counts.iter().all(|c| *c == 0) && series.iter().all(|(_, _, v)| v.is_empty()) {
            return Vec::new();
        }
        let chunks = series
            .iter()
            .map(|(_, _, values)| values.len().div_ceil(MAX_VALUES))
            .max()
            .unwrap_or(0)
            .max(1);
        let timestamp = (at.unix_timestamp_nanos() / 1_000_000) as i64;
        let mut lines = Vec::new();
        for chunk in 0..chunks {
            let mut fields = Map::new();
            let mut definitions = Vec::new();
            if chunk == 0 {
                for (name, value) in COUNTS.iter().zip(counts) {
                    definitions.push(json!({"Name": name, "Unit": "Count"}));
                    fields.insert((*name).into(), value.into());
                }
            }
            for (name, unit, values) in series {
                let start = chunk * MAX_VALUES;
                if start >= values.len() {
                    continue;
                }
                let end = (start + MAX_VALUES).min(values.len());
                definitions.push(json!({"Name": name, "Unit": unit}));
                fields.insert(name.into(), Value::from(&values[start..end]));
            }
            fields.insert("Function".into(), function.into());
            fields.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Function"]],
                        "Metrics": definitions,
                    }],
                }),
            );
            lines.push(Value::Object(fields).to_string());
        }
        lines
    }

    /// Writes the EMF lines to stdout, where the Lambda runtime sends them to CloudWatch Logs.
    pub fn emit(&self, function: &str) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for line in self.emf_lines(function, OffsetDateTime::now_utc()) {
            // A metric line that cannot be written is not worth failing a batch for.
            let _ = writeln!(out, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).expect("an EMF line is JSON")
    }

    /// Every metric a directive names has a value of the right shape at the top level, and the
    /// dimension it names is present: what CloudWatch requires to accept the document.
    fn assert_valid_emf(doc: &Value) {
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert!(doc["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
        for dims in directive["Dimensions"].as_array().unwrap() {
            for d in dims.as_array().unwrap() {
                assert!(doc[d.as_str().unwrap()].is_string(), "dimension {d} set");
            }
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            let value = &doc[metric["Name"].as_str().unwrap()];
            let ok = value.is_number()
                || value
                    .as_array()
                    .is_some_and(|a| a.len() <= MAX_VALUES && a.iter().all(Value::is_number));
            assert!(ok, "{metric} has a number or up to 100 numbers: {value}");
        }
    }

    fn names(doc: &Value) -> Vec<String> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_batch_is_one_line_with_the_documented_metrics() {
        let m = BatchMetrics {
            succeeded: 3,
            failed: 1,
            retried: 2,
            records_failed: 1,
            not_started: 4,
            held: 5,
            duration_ms: vec![12.0, 30.5, 8.0, 500.0, 7.0, 9.0],
            latency_ms: vec![40.0, 60.0, 35.0],
            fan_out: vec![6.0],
        };
        let lines = m.emf_lines("dispatch", OffsetDateTime::now_utc());
        assert_eq!(lines.len(), 1);
        let doc = parse(&lines[0]);
        assert_valid_emf(&doc);
        assert_eq!(
            names(&doc),
            [
                "DeliveriesSucceeded",
                "DeliveriesFailed",
                "DeliveriesRetried",
                "RecordsFailed",
                "JobsNotStarted",
                "DeliveriesHeld",
                "DeliveryDuration",
                "DeliveryLatency",
                "FanOut"
            ]
        );
        assert_eq!(doc["DeliveriesSucceeded"], 3);
        assert_eq!(doc["DeliveriesRetried"], 2);
        assert_eq!(doc["RecordsFailed"], 1);
        assert_eq!(doc["JobsNotStarted"], 4);
        assert_eq!(doc["DeliveriesHeld"], 5);
        assert_eq!(doc["FanOut"], json!([6.0]));
        assert_eq!(doc["Function"], "dispatch");
        let units: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Unit"].as_str().unwrap())
            .collect();
        assert_eq!(units[6], "Milliseconds");
    }

    #[test]
    fn long_series_are_split_at_100_values_and_counted_once() {
        let m = BatchMetrics {
            succeeded: 250,
            duration_ms: (0..250).map(f64::from).collect(),
            latency_ms: (0..250).map(f64::from).collect(),
            fan_out: vec![250.0],
            ..Default::default()
        };
        let lines = m.emf_lines("dispatch", OffsetDateTime::now_utc());
        assert_eq!(lines.len(), 3);
        let docs: Vec<Value> = lines.iter().map(|l| parse(l)).collect();
        let mut durations = Vec::new();
        for doc in &docs {
            assert_valid_emf(doc);
            durations.extend(doc["DeliveryDuration"].as_array().unwrap().clone());
        }
        assert_eq!(durations.len(), 250, "every value reported once");
        assert_eq!(docs[0]["DeliveriesSucceeded"], 250);
        assert!(docs[1].get("DeliveriesSucceeded").is_none(), "counts once");
        assert!(docs[2].get("FanOut").is_none());
    }

    #[test]
    fn an_idle_batch_writes_nothing() {
        let lines = BatchMetrics::default().emf_lines("dispatch", OffsetDateTime::now_utc());
        assert!(lines.is_empty());
    }
}

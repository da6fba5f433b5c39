//! Lambda as the template deploys it: each function's memory and the dispatch batch size read
//! from template.yaml, and durations taken from the run, billed per started millisecond.

use herald_tests::template::Template;
use std::path::Path;

/// What the meter needs from template.yaml.
pub struct Deployed {
    pub ingest_mb: u64,
    pub dispatch_mb: u64,
    /// The event source mapping's `BatchSize` (the `DispatchBatchSize` parameter's default).
    pub batch_size: usize,
}

impl Deployed {
    pub fn read(path: &Path) -> Result<Deployed, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Deployed::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn from_yaml(text: &str) -> Result<Deployed, String> {
        let t = Template(yaml_serde::from_str(text).map_err(|e| e.to_string())?);
        Ok(Deployed {
            ingest_mb: memory(&t, "IngestFunction"),
            dispatch_mb: memory(&t, "DispatchFunction"),
            batch_size: t.number(
                &t.function("DispatchFunction").0["Events"]["EventsQueue"]["Properties"]
                    ["BatchSize"],
            ) as usize,
        })
    }
}

/// A function's `MemorySize`, or the Globals' when it sets none.
fn memory(t: &Template, function: &str) -> u64 {
    let own = &t.function(function).0["MemorySize"];
    t.number(if own.is_null() {
        &t.globals()["MemorySize"]
    } else {
        own
    })
}

/// GB-seconds of invocations that ran `ms` each (fractional milliseconds, as measured) in a
/// function of `memory_mb`: Lambda rounds each invocation up to the next millisecond.
pub fn gb_seconds(ms: &[f64], memory_mb: u64) -> f64 {
    let billed_ms: f64 = ms.iter().map(|d| d.ceil().max(1.0)).sum();
    billed_ms / 1000.0 * memory_mb as f64 / 1024.0
}

/// Each ingest request's handling time from `herald dev`'s access log (`request answered ...
/// duration_ms=N` on POST /v1/events*). The log truncates to whole milliseconds, so a request
/// logged as N ran for at least N and less than N + 1: billed N + 1, as the value returned.
pub fn ingest_ms(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("request answered") && l.contains("method=POST"))
        .filter(|l| l.contains("path=/v1/events ") || l.contains("path=/v1/events/batch "))
        .filter_map(|l| {
            let (_, rest) = l.split_once("duration_ms=")?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<f64>().ok().map(|ms| ms + 1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_the_functions_own_or_the_globals_and_the_batch_size_a_parameters_default() {
        let yaml = "
Parameters:
  DispatchBatchSize:
    Type: Number
    Default: 7
Globals:
  Function:
    MemorySize: 128
Resources:
  IngestFunction:
    Type: AWS::Serverless::Function
    Properties: {}
  DispatchFunction:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: 512
      Events:
        EventsQueue:
          Type: SQS
          Properties:
            BatchSize: !Ref DispatchBatchSize
";
        let d = Deployed::from_yaml(yaml).unwrap();
        assert_eq!((d.ingest_mb, d.dispatch_mb, d.batch_size), (128, 512, 7));
    }

    #[test]
    fn the_projects_template_reads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        assert!(Deployed::read(&root).is_ok());
    }

    #[test]
    fn invocations_are_billed_per_started_millisecond() {
        // 0.2 ms and 1.5 ms bill 1 and 2 ms: 3 ms at 1 GB, 1.5 ms at 512 MB.
        assert!((gb_seconds(&[0.2, 1.5], 1024) - 0.003).abs() < 1e-12);
        assert!((gb_seconds(&[0.2, 1.5], 512) - 0.0015).abs() < 1e-12);
    }

    #[test]
    fn ingest_durations_are_read_from_the_access_log() {
        let log = "\
2026-12-04T01:24:28Z  INFO request{method=POST path=/v1/events tenant_id=\"tn_dev\"}: herald_shared::web: request answered status=202 duration_ms=0
2026-12-04T01:24:28Z  INFO request{method=POST path=/v1/webhooks tenant_id=\"tn_dev\"}: herald_shared::web: request answered status=201 duration_ms=7
2026-12-04T01:24:29Z  INFO request{method=POST path=/v1/events/batch tenant_id=\"tn_dev\"}: herald_shared::web: request answered status=200 duration_ms=12
2026-12-04T01:24:29Z  INFO request{method=GET path=/v1/health}: herald_shared::web: request answered status=200 duration_ms=3";
        assert_eq!(ingest_ms(log), [1.0, 13.0]);
    }
}

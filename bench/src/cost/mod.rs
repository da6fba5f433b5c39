//! The cost meter: `herald dev` on DynamoDB and SQS served by moto, with a metering proxy in
//! between that bills every request as AWS would (COST.md). DynamoDB from the items before and
//! after each write and the indexes the table was created with; SQS as Lambda's event source
//! mapping would call it; Lambda from the template's memory and the durations of the run.

mod dynamodb;
mod failing;
mod lambda;
mod meter;
mod prices;
mod proxy;
mod quiet;
mod report;
mod sqs;

use crate::stack::{self, Load};
use herald_tests::moto::Moto;
use meter::Meter;
use report::{Layout, Measured};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One metered run's shape.
pub struct Scenario {
    pub name: String,
    pub events: usize,
    pub fanout: usize,
    /// Events per POST (1: `/v1/events`; more: `/v1/events/batch`).
    pub batch: usize,
    /// The events name their ids, so each takes a dedupe claim; without, Herald makes them.
    pub named_ids: bool,
    /// The webhooks are disabled: every delivery is held, not sent.
    pub held: bool,
    /// With `held`: then each webhook is enabled with `recover`, and every held delivery is
    /// recovered and sent. The row is the whole life of such a delivery; less the held row, it
    /// is what the recovery cost.
    pub recovered: bool,
}

impl Scenario {
    pub fn new(events: usize, fanout: usize, batch: usize) -> Scenario {
        Scenario {
            name: format!("fanout{fanout}-{}", batch_name(batch)),
            events,
            fanout,
            batch,
            named_ids: true,
            held: false,
            recovered: false,
        }
    }

    /// The same, to disabled webhooks: what a held delivery costs.
    pub fn held(self) -> Scenario {
        Scenario {
            name: format!("{}-held", self.name),
            held: true,
            ..self
        }
    }

    /// The same, held, then recovered: what a recovered delivery costs.
    pub fn recovered(self) -> Scenario {
        Scenario {
            name: format!("{}-recovered", self.name),
            held: true,
            recovered: true,
            ..self
        }
    }

    /// The same, with events that name no id.
    pub fn without_ids(self) -> Scenario {
        Scenario {
            name: format!("{}-noid", self.name),
            named_ids: false,
            ..self
        }
    }
}

fn batch_name(batch: usize) -> String {
    if batch <= 1 {
        "post".into()
    } else {
        format!("batch{batch}")
    }
}

/// The project's scenarios: fan-out 1 and 10, batches of 100 events and one event per POST,
/// batches of events that name no id, batches held for a disabled webhook, and the same
/// recovered.
/// A few hundred deliveries each: every rule is per request or per item, so more only
/// takes longer on moto.
pub fn scenarios() -> Vec<Scenario> {
    let mut all: Vec<Scenario> = [(300, 1, 100), (300, 1, 1), (200, 10, 100), (40, 10, 1)]
        .into_iter()
        .map(|(events, fanout, batch)| Scenario::new(events, fanout, batch))
        .collect();
    // Events without ids: kept in one write each, with no claim to take and confirm.
    all.push(Scenario::new(300, 1, 100).without_ids());
    // Events matching a disabled webhook: each delivery held.
    all.push(Scenario::new(300, 1, 100).held());
    // The same, then recovered once the webhook is enabled again.
    all.push(Scenario::new(300, 1, 100).recovered());
    all
}

pub use failing::NAME as FAILING_SCHEDULE;

/// Meters the failing-schedule scenario (`failing.rs`): one delivery failing through the
/// whole default schedule, the pipeline in process.
pub async fn run_failing(venv: &Path, template: &Path) -> Result<String, String> {
    let deployed = lambda::Deployed::read(template)?;
    failing::run(venv, &deployed)
        .await
        .map_err(|e| format!("cost {}: {e}", failing::NAME))
}

/// Meters every scenario in turn; the report of each, or why it could not run.
pub async fn run_all(
    herald: &Path,
    venv: &Path,
    template: &Path,
    scenarios: &[Scenario],
) -> Vec<Result<String, String>> {
    let mut reports = Vec::new();
    for s in scenarios {
        let report = match lambda::Deployed::read(template) {
            Ok(deployed) => run(herald, venv, &deployed, s).await,
            Err(e) => Err(e),
        };
        reports.push(report.map_err(|e| format!("cost {}: {e}", s.name)));
    }
    reports
}

/// One metered run.
async fn run(
    herald: &Path,
    venv: &Path,
    deployed: &lambda::Deployed,
    scenario: &Scenario,
) -> Result<String, String> {
    let moto = Moto::start(&venv.join("bin/moto_server"))?;
    let meter = Arc::new(Mutex::new(Meter::default()));
    let endpoint = proxy::start(meter.clone(), &moto.endpoint).await?;
    let log = std::env::temp_dir().join(format!("herald-cost-{}.log", ulid::Ulid::new()));
    let settled = || meter.lock().unwrap().idle(Duration::from_secs(2));
    let load = Load {
        aws: Some(&endpoint),
        events: scenario.events,
        fanout: scenario.fanout,
        connections: 8,
        batch: scenario.batch,
        named_ids: scenario.named_ids,
        disabled: scenario.held,
        recover: scenario.recovered,
        log: Some(&log),
        settled: Some(&settled),
    };
    let run = stack::run_with(herald, load, || meter.lock().unwrap().on = true).await;
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let run = run?;
    let m = meter.lock().unwrap();
    if scenario.held && !scenario.recovered {
        // Nothing arrives to say the deliveries are done: each holds with one conditional put,
        // and the claims' puts and the posts' confirmations are the rest.
        let posts = scenario.events.div_ceil(scenario.batch.max(1));
        let puts = m.dynamodb.get("PutItem").map_or(0, |o| o.calls) as usize;
        let want = scenario.events * (1 + scenario.fanout) + posts;
        if puts != want {
            return Err(format!(
                "{puts} PutItem calls, {want} expected: a claim per event, a confirmation per POST and a held delivery per webhook and event"
            ));
        }
    }
    let ingest_ms = lambda::ingest_ms(&logged);
    if ingest_ms.len() != run.post_bytes.len() {
        return Err(format!(
            "{} ingest requests in herald dev's log for {} POSTs",
            ingest_ms.len(),
            run.post_bytes.len()
        ));
    }
    let measured = Measured {
        deployed,
        meter: &m,
        deliveries: scenario.events * scenario.fanout,
        post_bytes: &run.post_bytes,
        ingest_ms,
        ingest_timing: "from herald dev's access log: request to answer, rounded up to the ms",
        other_dispatch: None,
    };
    let layout = Layout {
        name: &scenario.name,
        shape: format!(
            "{} events x {} webhooks, {} per POST: {} deliveries; per delivery, and $ per million deliveries:",
            scenario.events,
            scenario.fanout,
            scenario.batch,
            measured.deliveries
        ),
        notes: Vec::new(),
        both_totals: scenario.batch <= 1,
        fixed: Vec::new(),
    };
    Ok(report::lines(layout, &report::price(&measured), &m).join("\n"))
}

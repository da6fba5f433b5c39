//! The `failing-schedule` scenario: deliveries to a receiver that always answers 500, driven
//! through the whole default retry schedule. `herald dev` cannot be told what time it is, so
//! the pipeline runs in process (the tests' `Stack`) on moto behind the metering proxy, and
//! the waits SQS cannot carry are reached by calling the sweep at their due time, as the
//! template's schedule would call it then.

use super::lambda::{gb_seconds, Deployed};
use super::meter::Meter;
use super::prices::{LAMBDA_GB_SECOND, LAMBDA_REQUEST, RRU, SQS_REQUEST};
use super::quiet::Quiet;
use super::report::{self, dollars, Layout, Measured};
use super::{proxy, sqs};
use crate::fixture;
use herald_shared::config::{parse_schedule, DEFAULT_RETRY_SCHEDULE};
use herald_shared::delivery::{Delivery, DeliveryStatus};
use herald_shared::queue::{SqsQueue, MAX_DELAY};
use herald_shared::service::sweep::{Swept, SWEEP_EVERY};
use herald_shared::store::{DeliveryStore, DynamoStore};
use herald_tests::moto::Moto;
use herald_tests::receiver::Receiver;
use herald_tests::stack::{local_config, Stack, TENANT};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

pub const NAME: &str = "failing-schedule";
/// Deliveries per run, so the per-delivery figures are averages; posted as one batch to one
/// webhook.
const EVENTS: usize = 10;
/// The target for queue messages per delivery failing through the default schedule,
/// and its goal.
const TARGET_MESSAGES: f64 = 20.0;
const GOAL_MESSAGES: f64 = 10.0;
/// The longest a run may take to make one round of attempts: the queued waits are seconds.
const ROUND: Duration = Duration::from_secs(120);

/// The default schedule with each wait an SQS delay carries (at most 900 s: 5 s and 5 min)
/// shortened to 1 s, 2 s, …, so the run takes seconds. They stay in the class that costs a
/// delayed message; the longer waits, which the sweep carries, are kept as they are.
pub fn schedule() -> Vec<Duration> {
    let mut queued = 0;
    parse_schedule(DEFAULT_RETRY_SCHEDULE)
        .expect("the default schedule parses")
        .into_iter()
        .map(|wait| {
            if wait.is_zero() || wait > MAX_DELAY {
                wait
            } else {
                queued += 1;
                Duration::from_secs(queued)
            }
        })
        .collect()
}

/// An SDK configuration whose DynamoDB and SQS calls go to `endpoint`, as the tests' moto
/// harness builds one.
async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(herald_shared::aws::http::client())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "bench", "bench", None, None, "moto",
        ))
        .load()
        .await
}

/// What the drive through the schedule saw, beside the meter's counts.
struct Drive {
    deliveries: Vec<Delivery>,
    /// How long each sweep that queued attempts took, in milliseconds.
    sweep_ms: Vec<f64>,
    /// What each of them queued.
    swept: Vec<Swept>,
}

pub async fn run(venv: &Path, deployed: &Deployed) -> Result<String, String> {
    let moto = Moto::start(&venv.join("bin/moto_server"))?;
    let meter = Arc::new(Mutex::new(Meter::default()));
    let endpoint = proxy::start(meter.clone(), &moto.endpoint).await?;
    let metered = sdk_config(&endpoint).await;
    let name = format!("herald-{}", ulid::Ulid::new().to_string().to_lowercase());
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&metered), name.clone());
    store.ensure_table().await.map_err(|e| e.to_string())?;
    // The run's own look at the deliveries goes straight to moto: it is no part of the bill.
    let observer = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk_config(&moto.endpoint).await),
        name.clone(),
    );
    let queue = SqsQueue::ensure(
        aws_sdk_sqs::Client::new(&metered),
        &name,
        5,
        Duration::from_secs(60),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut config = local_config();
    config.retry_schedule = schedule();
    let store = Arc::new(store);
    let stack = Stack::with_config(
        config,
        store.clone(),
        Arc::new(queue),
        Duration::from_secs(1),
    )
    .await
    .with_sweep_index(store);
    let rx = Receiver::start(500).await;
    let webhook = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let webhook_id = webhook["id"].as_str().unwrap_or_default().to_string();

    let quiet = Quiet::stdout();
    meter.lock().unwrap().on = true;
    let events: Vec<Value> = (0..EVENTS).map(|n| fixture::event_json(n, 0)).collect();
    let body = json!({ "events": events });
    let post_bytes = [body.to_string().len()];
    let posted = Instant::now();
    let (status, _, answer) = stack
        .call("POST", "/v1/events/batch", Some(body), None)
        .await;
    // Billed per started millisecond, as Lambda would the ingest function's invocation.
    let ingest_ms = vec![posted.elapsed().as_secs_f64() * 1000.0];
    let accepted = answer["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] == "accepted")
        .count();
    if !status.is_success() || accepted != EVENTS {
        return Err(format!(
            "{accepted} of {EVENTS} events accepted: {status} {answer}"
        ));
    }

    let drive = drive(&stack, &observer, &webhook_id).await?;
    let idle = idle_sweep(&stack, &meter).await?;
    drop(quiet);
    let sent = rx.requests().len();
    let m = meter.lock().unwrap();
    let idle_extra: Vec<f64> = drive
        .sweep_ms
        .iter()
        .map(|ms| ms - idle.ms)
        .filter(|extra| *extra > 0.0)
        .collect();
    let measured = Measured {
        deployed,
        meter: &m,
        deliveries: EVENTS,
        post_bytes: &post_bytes,
        ingest_ms,
        ingest_timing: "the router called in process, timed around the call, rounded up to the ms",
        other_dispatch: Some((
            idle_extra,
            format!(
                "the {} sweeps that queued attempts, {:.1} ms each on average, less the {:.1} ms of an idle sweep, which the fixed line bills",
                drive.sweep_ms.len(),
                drive.sweep_ms.iter().sum::<f64>() / drive.sweep_ms.len().max(1) as f64,
                idle.ms
            ),
        )),
    };
    let priced = report::price(&measured);
    let layout = Layout {
        name: NAME,
        shape: shape(),
        notes: notes(&m, deployed, &drive, sent),
        both_totals: false,
        fixed: vec![idle.fixed_line(deployed)],
    };
    Ok(report::lines(layout, &priced, &m).join("\n"))
}

fn shape() -> String {
    let waits = schedule()
        .iter()
        .map(|w| short(*w))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "{EVENTS} events x 1 webhook answering 500, one POST of {EVENTS}: {EVENTS} deliveries failing through the default schedule {DEFAULT_RETRY_SCHEDULE} ({} attempts), run as {waits}: its two queued waits (SQS delays, as any wait up to 900 s) shortened to seconds, the longer ones reached by calling the sweep at the deliveries' next_attempt_at, as the template's 5-minute schedule would at that time; per delivery, and $ per million deliveries:",
        schedule().len()
    )
}

/// A wait as the schedule writes it: `0s`, `30m`, `2h`.
fn short(wait: Duration) -> String {
    match wait.as_secs() {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The scenario's own lines: the target, the attempts, the sweeps, and what a quiet
/// queue would add.
fn notes(m: &Meter, deployed: &Deployed, drive: &Drive, sent: usize) -> Vec<String> {
    let per = |x: f64| x / EVENTS as f64;
    let messages = per(m.messages_sent() as f64);
    let verdict = if messages <= GOAL_MESSAGES {
        "goal met"
    } else if messages <= TARGET_MESSAGES {
        "target met, goal not"
    } else {
        "target not met"
    };
    let attempts: usize = drive.deliveries.iter().map(|d| d.attempts.len()).sum();
    let queued: usize = drive.swept.iter().map(|s| s.queued).sum();
    let batched = sqs::mapping(&m.received, deployed.batch_size);
    let alone = sqs::mapping(&m.received, 1);
    let more_requests = (alone.receives + alone.deletes) - (batched.receives + batched.deletes);
    let more_invocations = alone.batches - batched.batches;
    let quiet = dollars(per(more_requests as f64), SQS_REQUEST)
        + dollars(per(more_invocations as f64), LAMBDA_REQUEST);
    vec![
        format!(
            "queue messages per delivery failing through the schedule: {messages:.3}, against the target of at most {TARGET_MESSAGES} (goal {GOAL_MESSAGES}): {verdict}"
        ),
        format!(
            "attempts: {:.3} per delivery ({sent} POSTs answered 500), every delivery failed",
            per(attempts as f64)
        ),
        format!(
            "sweeps: {} dispatch invocations with work ({:.3} per delivery), queuing {queued} attempts ({:.3} per delivery); their invocations are among the schedule's, in the fixed line, their DynamoDB and SQS calls metered above",
            drive.swept.len(),
            per(drive.swept.len() as f64),
            per(queued as f64)
        ),
        format!(
            "on a quiet queue, where each attempt is a batch of its own: {:.3} mapping batches per delivery instead of {:.3}, +${quiet:.2} per million in receives, deletes and invocations (their GB-s not metered)",
            per(alone.batches as f64),
            per(batched.batches as f64)
        ),
    ]
}

/// Drains the queue until every delivery has `attempts` attempts; the deliveries as they are
/// then.
async fn settle(
    stack: &Stack,
    observer: &DynamoStore,
    webhook_id: &str,
    attempts: usize,
) -> Result<Vec<Delivery>, String> {
    let started = Instant::now();
    loop {
        stack.drain().await;
        let page = observer
            .list_deliveries(TENANT, webhook_id, 100, None)
            .await
            .map_err(|e| e.to_string())?;
        let made: Vec<usize> = page.items.iter().map(|d| d.attempts.len()).collect();
        if made.iter().any(|n| *n > attempts) {
            return Err(format!("more attempts than expected: {made:?}"));
        }
        if made.len() == EVENTS && made.iter().all(|n| *n == attempts) {
            return Ok(page.items);
        }
        if started.elapsed() > ROUND {
            return Err(format!("attempt {attempts} not made: {made:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Takes every delivery through the schedule: the queued waits run out on their own; each
/// longer one is reached by one sweep.
async fn drive(stack: &Stack, observer: &DynamoStore, webhook_id: &str) -> Result<Drive, String> {
    let schedule = schedule();
    let queued = schedule.iter().take_while(|w| **w <= MAX_DELAY).count();
    let mut deliveries = settle(stack, observer, webhook_id, queued).await?;
    let (mut sweep_ms, mut swept) = (Vec::new(), Vec::new());
    for attempts in queued + 1..=schedule.len() {
        if let Some(d) = deliveries
            .iter()
            .find(|d| d.sweep_at.is_none() || d.sweep_at != d.next_attempt_at)
        {
            return Err(format!(
                "delivery {} waits for attempt {attempts} without the sweep carrying it",
                d.id
            ));
        }
        // The latest of the due times, so every delivery is due and queued without a delay:
        // the same message and record write an earlier sweep would make, with the rest of
        // the wait as its delay, but no real minutes waited.
        let due = deliveries
            .iter()
            .filter_map(|d| d.next_attempt_at)
            .max()
            .ok_or("no attempt due")?;
        let started = Instant::now();
        let s = stack
            .sweeper()
            .sweep(due)
            .await
            .map_err(|e| e.to_string())?;
        sweep_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if s.queued != EVENTS || s.overdue + s.given_up > 0 {
            return Err(format!("the sweep at {due} did {s:?}"));
        }
        swept.push(s);
        deliveries = settle(stack, observer, webhook_id, attempts).await?;
    }
    if let Some(d) = deliveries
        .iter()
        .find(|d| d.status != DeliveryStatus::Failed)
    {
        return Err(format!(
            "delivery {} ended {:?}, not failed",
            d.id, d.status
        ));
    }
    Ok(Drive {
        deliveries,
        sweep_ms,
        swept,
    })
}

/// A sweep that finds nothing, as most of the schedule's are: what the schedule costs whatever
/// the load.
struct IdleSweep {
    ms: f64,
    rru: f64,
    calls: u64,
}

/// Sweeps once more with nothing left to sweep, metered apart: its reads are the schedule's
/// fixed cost, not the deliveries'.
async fn idle_sweep(stack: &Stack, meter: &Mutex<Meter>) -> Result<IdleSweep, String> {
    let before = meter.lock().unwrap().dynamodb.clone();
    let started = Instant::now();
    let swept = stack
        .sweeper()
        .sweep(OffsetDateTime::now_utc())
        .await
        .map_err(|e| e.to_string())?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if swept != Swept::default() {
        return Err(format!("a sweep after the schedule did {swept:?}"));
    }
    let mut m = meter.lock().unwrap();
    let during = std::mem::replace(&mut m.dynamodb, before);
    let total = |ops: &std::collections::BTreeMap<String, super::meter::Operation>| {
        ops.values()
            .fold((0.0, 0), |(rru, calls), o| (rru + o.rru, calls + o.calls))
    };
    let ((rru, calls), (rru_before, calls_before)) = (total(&during), total(&m.dynamodb));
    Ok(IdleSweep {
        ms,
        rru: rru - rru_before,
        calls: calls - calls_before,
    })
}

impl IdleSweep {
    fn fixed_line(&self, deployed: &Deployed) -> String {
        let month = sqs::MONTH_SECONDS / SWEEP_EVERY.as_secs();
        let gbs = gb_seconds(&[self.ms], deployed.dispatch_mb);
        let dollars = month as f64 * (LAMBDA_REQUEST + gbs * LAMBDA_GB_SECOND + self.rru * RRU);
        format!(
            "{month} sweeps a month (every {} s), each a dispatch invocation of {:.1} ms at {} MB and {} DynamoDB calls for {:.1} RRU when nothing is due (measured once after the run): ${dollars:.4} a month",
            SWEEP_EVERY.as_secs(),
            self.ms,
            deployed.dispatch_mb,
            self.calls,
            self.rru
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::event::EventEnvelope;
    use herald_shared::queue::{Message, Queue};

    /// The scenario's figure is messages, not requests: through the proxy with the SDK the run
    /// uses, a batch of ten fan-outs and a single retry are eleven messages in two requests.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_batch_counts_each_of_its_messages_and_a_retry_one() {
        let moto = Moto::start(&herald_tests::venv_bin("moto_server")).unwrap();
        let meter = Arc::new(Mutex::new(Meter::default()));
        let endpoint = proxy::start(meter.clone(), &moto.endpoint).await.unwrap();
        let sdk = sdk_config(&endpoint).await;
        let queue = SqsQueue::ensure(aws_sdk_sqs::Client::new(&sdk), "count", 5, ROUND)
            .await
            .unwrap();
        let message = |n| {
            Message::fan_out(EventEnvelope {
                tenant_id: TENANT.into(),
                envelope_id: ulid::Ulid::new(),
                event: fixture::event(n),
            })
            .encode()
        };
        meter.lock().unwrap().on = true;
        let sent = queue
            .send_batch((0..10).map(message).collect())
            .await
            .unwrap();
        assert!(sent.iter().all(Result::is_ok));
        queue
            .send(message(10), Duration::from_secs(1))
            .await
            .unwrap();
        let m = meter.lock().unwrap();
        assert_eq!(m.messages_sent(), 11);
        assert_eq!(
            (m.messages["SendMessageBatch"], m.messages["SendMessage"]),
            (10, 1)
        );
        assert_eq!(m.sent.values().sum::<u64>(), 2, "two requests billed");
    }

    #[test]
    fn waits_print_as_the_schedule_writes_them() {
        let shown: Vec<String> = schedule().into_iter().map(short).collect();
        assert_eq!(shown.join(","), "0s,1s,2s,30m,2h,5h,10h,10h");
    }

    #[test]
    fn only_the_waits_a_message_carries_are_shortened() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(
            schedule(),
            [
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(30 * 60),
                h(2),
                h(5),
                h(10),
                h(10),
            ]
        );
    }
}

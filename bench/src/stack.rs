//! End to end as a user drives it: the release `herald dev` (in memory, or on DynamoDB/SQS
//! served by moto), events POSTed over HTTP to /v1/events by `connections` concurrent clients,
//! delivered to the receiver process. Latency is from each POST to the receiver reading it.

use crate::fixture;
use crate::receiver::{now_ns, Receiver};
use crate::stats::{process_cpu, quantile};
use futures::stream::{self, StreamExt};
use herald_tests::port::free_port;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "bench-key-0123456789";

pub struct StackRun {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_s_per_1000: f64,
    /// The size of each POST of events, in bytes.
    pub post_bytes: Vec<usize>,
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one run posts, and where its AWS calls go.
pub struct Load<'a> {
    /// DynamoDB and SQS at this endpoint (moto, or the cost meter in front of it); `None`: in memory.
    pub aws: Option<&'a str>,
    pub events: usize,
    pub fanout: usize,
    pub connections: usize,
    /// Events per POST: 1 posts to `/v1/events`, more to `/v1/events/batch`.
    pub batch: usize,
    /// Each event names its own id (Herald takes a dedupe claim for it); `false`: the events
    /// carry none, and Herald makes them.
    pub named_ids: bool,
    /// The webhooks are created disabled: every delivery is held, none arrives, and the run
    /// ends once `settled` says the work is done.
    pub disabled: bool,
    /// With `disabled`: once the holds are done (`settled`), every webhook is enabled with
    /// `recover`, and the run waits for every held delivery to arrive.
    pub recover: bool,
    /// Where `herald dev`'s log goes (uncoloured); `None`: nowhere.
    pub log: Option<&'a Path>,
    /// Once every delivery arrived, the stack is kept until this says the work that follows
    /// the deliveries (their records, the deletes) is done, for at most 30 s.
    pub settled: Option<&'a dyn Fn() -> bool>,
}

pub async fn run(herald: &Path, load: Load<'_>) -> Result<StackRun, String> {
    run_with(herald, load, || {}).await
}

/// As [`run`], calling `ready` once the webhooks exist and just before the first event is posted.
pub async fn run_with(
    herald: &Path,
    load: Load<'_>,
    ready: impl FnOnce(),
) -> Result<StackRun, String> {
    let Load {
        aws,
        events,
        fanout,
        connections,
        batch,
        named_ids,
        disabled,
        recover,
        log,
        settled,
    } = load;
    let event = |n| {
        let mut event = fixture::event_json(n, now_ns());
        if !named_ids {
            event.as_object_mut().expect("an object").remove("id");
        }
        event
    };
    let receiver = Receiver::spawn(0, true);
    let port = free_port();
    let mut command = Command::new(herald);
    command
        .args(["dev", "--port", &port.to_string()])
        .env("HERALD_API_KEY", KEY)
        .env("HERALD_TARGET_POLICY", "loopback")
        .env("HERALD_RATE_LIMIT", "0")
        .env("HERALD_RETRY_SCHEDULE", "0s")
        .env("HERALD_ENDPOINT_CONCURRENCY", "64")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(match log {
            Some(path) => std::fs::File::create(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .into(),
            None => Stdio::null(),
        })
        .stderr(Stdio::null());
    if let Some(endpoint) = aws {
        let name = format!(
            "herald-bench-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        command
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("HERALD_TABLE_NAME", &name)
            .env("HERALD_QUEUE_NAME", &name);
    } else {
        command.env_remove("AWS_ENDPOINT_URL");
    }
    let stack = Killed(
        command
            .spawn()
            .map_err(|e| format!("{}: {e}", herald.display()))?,
    );
    let pid = stack.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = client.get(format!("{base}/v1/health")).send().await;
        if up.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if Instant::now() > deadline {
            return Err("herald dev did not come up".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut webhooks = Vec::with_capacity(fanout);
    for i in 0..fanout {
        let created = client
            .post(format!("{base}/v1/webhooks"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "url": format!("{}/w/{i}", receiver.url),
                    "events": ["*"],
                    "enabled": !disabled,
                })
                .to_string(),
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if created.status() != 201 {
            return Err(format!("webhook not created: {}", created.status()));
        }
        let created: serde_json::Value = created.json().await.map_err(|e| e.to_string())?;
        webhooks.push(created["id"].as_str().unwrap_or_default().to_string());
    }

    let expected = if disabled && !recover {
        0
    } else {
        events * fanout
    };
    let cpu = process_cpu(pid);
    let started = Instant::now();
    ready();
    let batch = batch.max(1);
    let accepted = stream::iter((0..events).step_by(batch))
        .map(|first| {
            let last = (first + batch).min(events);
            let (path, body) = if batch == 1 {
                ("events", event(first))
            } else {
                let list: Vec<_> = (first..last).map(event).collect();
                ("events/batch", serde_json::json!({ "events": list }))
            };
            let body = body.to_string();
            let bytes = body.len();
            let sent = client
                .post(format!("{base}/v1/{path}"))
                .bearer_auth(KEY)
                .header("content-type", "application/json")
                .body(body)
                .send();
            async move { (accepted_in(sent.await, last - first).await, bytes) }
        })
        .buffer_unordered(connections)
        .fold(
            (0, None, Vec::new()),
            |(sum, first_refusal, mut sizes), ((n, refusal), bytes)| {
                sizes.push(bytes);
                std::future::ready((sum + n, first_refusal.or(refusal), sizes))
            },
        )
        .await;
    let (accepted, refusal, post_bytes) = accepted;
    if accepted != events {
        return Err(format!(
            "{accepted} of {events} events accepted; the first refusal: {}",
            refusal.unwrap_or_default()
        ));
    }
    if recover {
        wait_for(settled).await;
        for id in &webhooks {
            let patched = client
                .patch(format!("{base}/v1/webhooks/{id}"))
                .bearer_auth(KEY)
                .header("content-type", "application/json")
                .body(r#"{"enabled": true, "recover": true}"#)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if patched.status() != 200 {
                return Err(format!("webhook not recovered: {}", patched.status()));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120 + expected as u64 / 10);
    let (count, mut latencies) = loop {
        let (count, latencies) = receiver.stats(&client).await;
        if count as usize >= expected {
            break (count, latencies);
        }
        if Instant::now() > deadline {
            return Err(format!("{count} of {expected} deliveries arrived"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    let cpu = (process_cpu(pid) - cpu).as_secs_f64();
    if count as usize != expected {
        return Err(format!("{count} deliveries for {expected} expected"));
    }
    wait_for(settled).await;
    Ok(StackRun {
        per_second: expected.max(1) as f64 / wall,
        p50_ms: quantile(&mut latencies, 0.5) / 1000.0,
        p99_ms: quantile(&mut latencies, 0.99) / 1000.0,
        cpu_s_per_1000: cpu * 1000.0 / expected.max(1) as f64,
        post_bytes,
    })
}

/// Waits, 30 s at most, until `settled` says the work is done.
async fn wait_for(settled: Option<&dyn Fn() -> bool>) {
    if let Some(settled) = settled {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !settled() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// How many events one POST's answer accepted (202 for one, each `accepted` item of a batch),
/// and what the first refused one got.
async fn accepted_in(
    answer: reqwest::Result<reqwest::Response>,
    posted: usize,
) -> (usize, Option<String>) {
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return (0, Some(e.to_string())),
    };
    let status = answer.status().as_u16();
    let body = answer.bytes().await.unwrap_or_default();
    let text = || {
        String::from_utf8_lossy(&body)
            .chars()
            .take(500)
            .collect::<String>()
    };
    match status {
        202 if posted == 1 => (1, None),
        200 if posted > 1 => {
            let items = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["data"].as_array().cloned())
                .unwrap_or_default();
            let accepted = items.iter().filter(|i| i["status"] == "accepted").count();
            let refused = items.iter().find(|i| i["status"] != "accepted");
            (
                accepted,
                refused
                    .map(|i| i.to_string())
                    .or_else(|| (accepted != posted).then(text)),
            )
        }
        _ => (0, Some(format!("{status}: {}", text()))),
    }
}

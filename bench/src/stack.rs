//! End to end as a user drives it: the release `herald dev` (in memory, or on DynamoDB/SQS
//! served by moto), events POSTed over HTTP to /v1/events by `connections` concurrent clients,
//! delivered to the receiver process. Latency is from each POST to the receiver reading it.

use crate::fixture;
use crate::receiver::{now_ns, Receiver};
use crate::stats::{process_cpu, quantile};
use futures::stream::{self, StreamExt};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "bench-key-0123456789";

pub struct StackRun {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_s_per_1000: f64,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A moto server from the project's venv, for the DynamoDB/SQS variant.
pub struct Moto {
    _child: Killed,
    pub endpoint: String,
}

impl Moto {
    pub fn start(venv: &Path) -> Result<Moto, String> {
        let port = free_port();
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("moto_server (run `make test` once to create .venv): {e}"))?;
        let child = Killed(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("moto did not start".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Moto {
            _child: child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }
}

pub async fn run(
    herald: &Path,
    moto: Option<&Moto>,
    events: usize,
    fanout: usize,
    connections: usize,
) -> Result<StackRun, String> {
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
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(m) = moto {
        let name = format!(
            "herald-bench-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        command
            .env("AWS_ENDPOINT_URL", &m.endpoint)
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
    for i in 0..fanout {
        let created = client
            .post(format!("{base}/v1/webhooks"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"url": format!("{}/w/{i}", receiver.url), "events": ["*"]})
                    .to_string(),
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if created.status() != 201 {
            return Err(format!("webhook not created: {}", created.status()));
        }
    }

    let expected = events * fanout;
    let cpu = process_cpu(pid);
    let started = Instant::now();
    let accepted = stream::iter(0..events)
        .map(|n| {
            client
                .post(format!("{base}/v1/events"))
                .bearer_auth(KEY)
                .header("content-type", "application/json")
                .body(fixture::event_json(n, now_ns()).to_string())
                .send()
        })
        .buffer_unordered(connections)
        .filter(|r| std::future::ready(r.as_ref().is_ok_and(|r| r.status() == 202)))
        .count()
        .await;
    if accepted != events {
        return Err(format!("{accepted} of {events} events accepted"));
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
    Ok(StackRun {
        per_second: expected as f64 / wall,
        p50_ms: quantile(&mut latencies, 0.5) / 1000.0,
        p99_ms: quantile(&mut latencies, 0.99) / 1000.0,
        cpu_s_per_1000: cpu * 1000.0 / expected as f64,
    })
}

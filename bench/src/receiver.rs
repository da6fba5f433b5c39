//! The webhook receiver the benchmarks post to: a separate process, so its CPU is not counted
//! as Herald's. Answers 204 (after `delay`, to hold deliveries in flight), and when asked
//! records each delivery's latency from the `t0_ns` its event carries.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Default)]
struct Seen {
    delay: Duration,
    latency: bool,
    count: Arc<Mutex<u64>>,
    latencies_us: Arc<Mutex<Vec<f64>>>,
}

pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// Finds `"t0_ns":<digits>` without parsing the whole body: the receiver must stay cheap.
fn t0_ns(body: &[u8]) -> Option<u128> {
    let key = b"\"t0_ns\":";
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

async fn take(State(seen): State<Seen>, body: Bytes) -> StatusCode {
    if seen.latency {
        if let Some(t0) = t0_ns(&body) {
            let us = now_ns().saturating_sub(t0) as f64 / 1000.0;
            seen.latencies_us.lock().unwrap().push(us);
        }
    }
    if !seen.delay.is_zero() {
        tokio::time::sleep(seen.delay).await;
    }
    *seen.count.lock().unwrap() += 1;
    StatusCode::NO_CONTENT
}

async fn stats(State(seen): State<Seen>) -> Json<serde_json::Value> {
    let count = *seen.count.lock().unwrap();
    let latencies = seen.latencies_us.lock().unwrap().clone();
    Json(serde_json::json!({"count": count, "latencies_us": latencies}))
}

/// Serves until killed; prints `listening <addr>` first.
pub async fn serve(delay: Duration, latency: bool) {
    let seen = Seen {
        delay,
        latency,
        ..Default::default()
    };
    let app = Router::new()
        .route("/_stats", get(stats))
        .fallback(post(take))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

/// A receiver process, killed on drop.
pub struct Receiver {
    child: Child,
    pub url: String,
}

impl Receiver {
    pub fn spawn(delay_ms: u64, latency: bool) -> Receiver {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["receiver", "--delay-ms", &delay_ms.to_string()])
            .stdout(Stdio::piped());
        if latency {
            command.arg("--latency");
        }
        let mut child = command.spawn().expect("receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .expect("receiver address");
        Receiver {
            child,
            url: format!("http://{addr}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn stats(&self, client: &reqwest::Client) -> (u64, Vec<f64>) {
        let bytes = client
            .get(format!("{}/_stats", self.url))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let latencies = v["latencies_us"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x.as_f64())
            .collect();
        (v["count"].as_u64().unwrap(), latencies)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_send_time_in_a_body() {
        let body = br#"{"type":"jobs.failed","data":{"t0_ns": 1795428000123456789,"x":1}}"#;
        assert_eq!(super::t0_ns(body), Some(1795428000123456789));
        assert_eq!(super::t0_ns(b"{}"), None);
    }
}

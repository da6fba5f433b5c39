//! The receiver examples in `examples/receivers/` (Python `standardwebhooks`, Node built-ins,
//! Rust) accept Herald's real deliveries and answer 401 to tampered, stale or unsigned ones.

use herald_shared::secret::Secret;
use herald_shared::signing::{self, KeyCache};
use herald_tests::receiver::Receiver;
use herald_tests::stack::Stack;
use herald_tests::{venv_bin, workspace_root};
use serde_json::json;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const EVENT_TYPE: &str = "deployments.succeeded";

/// A delivery's timestamp, signature (`None`: no header) and body, as posted to a receiver.
#[derive(Clone)]
struct Replay {
    timestamp: String,
    signature: Option<String>,
    body: Vec<u8>,
}

/// One example receiver listening on a loopback port.
struct Example {
    name: &'static str,
    url: String,
    /// What a child process printed after its first line (`None`: in this process).
    stdout: Option<Arc<Mutex<Vec<String>>>>,
    _child: Option<Child>,
}

impl Example {
    /// Starts `program args… 0` (port 0: any free one) and reads the URL from its first line,
    /// `listening on http://…`.
    async fn spawn(name: &'static str, program: &str, args: &[&str], secret: &Secret) -> Example {
        let mut child = Command::new(program)
            .args(args)
            .arg("0")
            .env("HERALD_WEBHOOK_SECRET", secret.expose())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound if program == "node" => panic!(
                    "node is missing: the Node receiver example needs Node.js 18+ on PATH \
                     (Debian: apt-get install -y nodejs)"
                ),
                _ => panic!("{name} receiver: cannot run {program}: {e}"),
            });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{name} receiver did not start within 20 s"))
            .unwrap()
            .unwrap_or_else(|| panic!("{name} receiver exited before listening"));
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name} receiver printed {first:?}"))
            .to_string();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let sink = stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Example {
            name,
            url,
            stdout: Some(stdout),
            _child: Some(child),
        }
    }

    /// The Rust example's own router, served in this process.
    async fn rust(secret: &Secret) -> Example {
        let app = herald_example_receiver::app(secret.expose().to_string());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Example {
            name: "rust",
            url,
            stdout: None,
            _child: None,
        }
    }

    /// Waits (bounded) for the child to print `line`.
    async fn printed(&self, line: &str) -> bool {
        let Some(stdout) = &self.stdout else {
            return true;
        };
        for _ in 0..200 {
            if stdout.lock().unwrap().iter().any(|l| l == line) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    /// Posts `replay` as the delivery `id`; the status answered.
    async fn post(&self, id: &str, replay: &Replay) -> u16 {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", &replay.timestamp)
            .body(replay.body.clone());
        if let Some(signature) = &replay.signature {
            request = request.header("webhook-signature", signature);
        }
        let response = request.send().await.unwrap_or_else(|e| {
            panic!("{} receiver at {}: {e}", self.name, self.url);
        });
        response.status().as_u16()
    }
}

async fn examples(secret: &Secret) -> Vec<Example> {
    let python = venv_bin("python");
    let root = workspace_root().join("examples/receivers");
    let script = |path: &str| root.join(path).to_str().unwrap().to_string();
    vec![
        Example::spawn(
            "python",
            python.to_str().unwrap(),
            &[&script("python/receiver.py")],
            secret,
        )
        .await,
        Example::spawn("node", "node", &[&script("node/receiver.mjs")], secret).await,
        Example::rust(secret).await,
    ]
}

#[tokio::test]
async fn example_receivers_accept_herald_deliveries() {
    let secret = signing::generate_secret();
    let examples = examples(&secret).await;
    let stack = Stack::memory().await;
    let mut webhooks = Vec::new();
    for example in &examples {
        let webhook = stack
            .create_webhook(
                json!({"url": example.url, "events": ["deployments.*"], "secret": secret.expose()}),
            )
            .await;
        webhooks.push(webhook["id"].as_str().unwrap().to_string());
    }
    stack
        .post_event(json!({"type": EVENT_TYPE, "project": "web-shop", "text": "ünïcödé ✓"}))
        .await;
    assert!(stack.drain().await.is_empty());
    for (example, webhook) in examples.iter().zip(&webhooks) {
        let path = format!("/v1/webhooks/{webhook}/deliveries");
        let (_, _, log) = stack.call("GET", &path, None, None).await;
        let delivery = log["data"][0]["id"].as_str().unwrap();
        let path = format!("/v1/deliveries/{delivery}");
        let (_, _, delivery) = stack.call("GET", &path, None, None).await;
        assert_eq!(
            (
                delivery["status"].as_str(),
                delivery["attempts"][0]["status_code"].as_u64()
            ),
            (Some("succeeded"), Some(204)),
            "{} receiver: {delivery}",
            example.name
        );
        assert!(
            example.printed(EVENT_TYPE).await,
            "{} receiver printed the event type",
            example.name
        );
    }
}

#[tokio::test]
async fn example_receivers_refuse_tampered_stale_and_unsigned_requests() {
    let secret = signing::generate_secret();
    let examples = examples(&secret).await;
    // A real delivery, captured: every request below is it or a variant of it.
    let stack = Stack::memory().await;
    let rx = Receiver::start(200).await;
    stack
        .create_webhook(json!({"url": rx.url, "events": ["*"], "secret": secret.expose()}))
        .await;
    stack
        .post_event(json!({"type": EVENT_TYPE, "project": "web-shop"}))
        .await;
    assert!(stack.drain().await.is_empty());
    let req = &rx.wait_for(1).await[0];
    let id = req.header("webhook-id");
    let sent: i64 = req.header("webhook-timestamp").parse().unwrap();
    let body = req.body.to_vec();
    let keys = KeyCache::default();
    let sign = |secrets: &[&Secret], timestamp: i64, body: Vec<u8>| Replay {
        timestamp: timestamp.to_string(),
        signature: Some(
            keys.signature_header(secrets.iter().copied(), id, timestamp, &body)
                .unwrap(),
        ),
        body,
    };
    let as_sent = Replay {
        timestamp: sent.to_string(),
        signature: Some(req.header("webhook-signature").to_string()),
        body: body.clone(),
    };
    let mut tampered = body.clone();
    tampered.push(b' ');
    let stranger = signing::generate_secret();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let cases = [
        ("the delivery as sent", as_sent.clone(), 204),
        // As during a rotation: another secret's signature beside the receiver's.
        (
            "two signatures, one matching",
            sign(&[&stranger, &secret], sent, body.clone()),
            204,
        ),
        (
            "a changed body",
            Replay {
                body: tampered,
                ..as_sent.clone()
            },
            401,
        ),
        (
            "another secret's signature",
            sign(&[&stranger], sent, body.clone()),
            401,
        ),
        (
            "a timestamp 6 minutes old",
            sign(&[&secret], now - 6 * 60, body.clone()),
            401,
        ),
        (
            "no signature",
            Replay {
                signature: None,
                ..as_sent
            },
            401,
        ),
    ];
    for example in &examples {
        for (what, replay, expected) in &cases {
            assert_eq!(
                example.post(id, replay).await,
                *expected,
                "{} receiver, {what}",
                example.name
            );
        }
    }
}

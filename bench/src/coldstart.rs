//! Cold start: each release `bootstrap` started against a minimal Lambda Runtime API (the
//! three routes a function uses), timed from process start to its first request for work
//! (init), then to its answer to one sample event (first invocation).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Seen {
    ready: Option<Instant>,
    answered: Option<Instant>,
    error: Option<String>,
    served: bool,
}

#[derive(Clone)]
struct Emulator {
    event: Arc<String>,
    seen: Arc<Mutex<Seen>>,
}

async fn next(State(e): State<Emulator>) -> (HeaderMap, String) {
    let first = {
        let mut seen = e.seen.lock().unwrap();
        seen.ready.get_or_insert_with(Instant::now);
        !std::mem::replace(&mut seen.served, true)
    };
    if !first {
        // One invocation per run: later polls wait until the process is killed.
        std::future::pending::<()>().await;
    }
    let mut headers = HeaderMap::new();
    let deadline = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 30_000;
    headers.insert("lambda-runtime-aws-request-id", "bench-1".parse().unwrap());
    headers.insert("lambda-runtime-deadline-ms", deadline.into());
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench"
            .parse()
            .unwrap(),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793".parse().unwrap(),
    );
    (headers, e.event.to_string())
}

async fn response(State(e): State<Emulator>, Path(_id): Path<String>) -> StatusCode {
    e.seen
        .lock()
        .unwrap()
        .answered
        .get_or_insert_with(Instant::now);
    StatusCode::ACCEPTED
}

async fn error(State(e): State<Emulator>, body: String) -> StatusCode {
    e.seen.lock().unwrap().error = Some(body);
    StatusCode::ACCEPTED
}

pub struct ColdStart {
    pub init: Duration,
    pub first_invocation: Duration,
}

/// Starts `bootstrap` once with `event` as its first invocation.
pub async fn run(bootstrap: &std::path::Path, event: String) -> Result<ColdStart, String> {
    let emulator = Emulator {
        event: Arc::new(event),
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(emulator.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let started = Instant::now();
    let mut child = Command::new(bootstrap)
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", api.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "bench"),
            ("AWS_SECRET_ACCESS_KEY", "bench"),
            // Nothing listens there; nothing is called during init or these invocations.
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("HERALD_TABLE_NAME", "herald-bench"),
            (
                "HERALD_QUEUE_URL",
                "http://127.0.0.1:9/123456789012/herald-bench",
            ),
            ("HERALD_ADMIN_KEY", "bench-admin-key-0123456789"),
            ("RUST_LOG", "info"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bootstrap.display()))?;
    let deadline = started + Duration::from_secs(10);
    let result = loop {
        {
            let seen = emulator.seen.lock().unwrap();
            if let Some(e) = &seen.error {
                break Err(format!("{}: {e}", bootstrap.display()));
            }
            if let (Some(ready), Some(answered)) = (seen.ready, seen.answered) {
                break Ok(ColdStart {
                    init: ready - started,
                    first_invocation: answered - ready,
                });
            }
        }
        if Instant::now() > deadline {
            break Err(format!("{} did not answer in 10 s", bootstrap.display()));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    result
}

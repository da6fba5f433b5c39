//! Real local HTTP receivers: each records every request and answers by a script of faults,
//! then a default status.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// A 429 or 503 with `Retry-After: secs`.
    RetryAfter(u16, u64),
    /// Wait, then answer 503 (meant to outlast the client's timeout).
    Hang(Duration),
    /// Drop the connection without an answer.
    Close,
}

#[derive(Debug, Clone)]
pub struct Captured {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub reply: Reply,
}

impl Captured {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The receiver answered 2xx (Herald saw a success).
    pub fn succeeded(&self) -> bool {
        matches!(self.reply, Reply::Status(code) if (200..300).contains(&code))
    }
}

struct Shared {
    requests: Mutex<Vec<Captured>>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    script: Mutex<VecDeque<Reply>>,
    chooser: Mutex<Option<Box<dyn FnMut() -> Reply + Send>>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    location: Mutex<Option<String>>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
}

async fn answer(shared: Arc<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = shared.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let scripted = shared.script.lock().unwrap().pop_front();
    let reply = scripted
        .or_else(|| {
            shared
                .chooser
                .lock()
                .unwrap()
                .as_mut()
                .map(|choose| choose())
        })
        .unwrap_or(Reply::Status(shared.status.load(Ordering::SeqCst)));
    shared.requests.lock().unwrap().push(Captured {
        path: uri.path().to_string(),
        headers,
        body,
        reply,
    });
    let response = match reply {
        Reply::Status(code) => {
            (StatusCode::from_u16(code).unwrap(), "receiver says hi").into_response()
        }
        Reply::RetryAfter(code, secs) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), "slow down").into_response();
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
            r
        }
        Reply::Hang(wait) => {
            tokio::time::sleep(wait).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Reply::Close => {
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            // Unwinding out of the handler makes hyper drop the connection unanswered;
            // resume_unwind skips the panic hook, so nothing is printed.
            std::panic::resume_unwind(Box::new("receiver closes the connection"));
        }
    };
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

impl Receiver {
    /// Starts a receiver on a free loopback port answering `status`.
    pub async fn start(status: u16) -> Receiver {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            status: AtomicU16::new(status),
            delay_ms: AtomicU64::new(0),
            script: Mutex::new(VecDeque::new()),
            chooser: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            location: Mutex::new(None),
        });
        let s = shared.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            answer(s.clone(), uri, headers, body)
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, shared }
    }

    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Adds `Location: url` to plain answers (for redirects).
    pub fn set_location(&self, url: &str) {
        *self.shared.location.lock().unwrap() = Some(url.to_string());
    }

    /// Makes every answer wait `delay` first.
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The next answers, in order, before the chooser or the default status.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Decides every unscripted answer (random faults in the soak test).
    pub fn choose(&self, chooser: impl FnMut() -> Reply + Send + 'static) {
        *self.shared.chooser.lock().unwrap() = Some(Box::new(chooser));
    }

    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` requests arrived, then returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Captured> {
        for _ in 0..200 {
            if self.shared.requests.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let got = self.requests();
        assert!(
            got.len() >= n,
            "expected {n} requests at {}, got {}",
            self.url,
            got.len()
        );
        got
    }
}

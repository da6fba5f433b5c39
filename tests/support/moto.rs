//! One moto server per test binary, on a free loopback port, killed with the test process.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Moto {
    pub endpoint: String,
}

static MOTO: OnceLock<Moto> = OnceLock::new();
static SECOND: OnceLock<Moto> = OnceLock::new();

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts moto on first use.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(start)
}

/// A second, independent moto server. moto answers one request at a time per process (a global
/// lock and Python's GIL), so a load test that puts its queue here and its table on `moto()`
/// gets twice the emulator throughput on two cores.
pub fn second_moto() -> &'static Moto {
    SECOND.get_or_init(start)
}

/// The child is spawned from a thread that lives as long as the test process, with
/// PR_SET_PDEATHSIG, so it dies when the tests end, even on a panic.
fn start() -> Moto {
    {
        let bin = super::venv_bin("moto_server");
        let port = free_port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut command = Command::new(bin);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe and touches only the child.
            unsafe {
                use std::os::unix::process::CommandExt;
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = command.spawn();
            let ok = child.is_ok();
            tx.send(child.map(|_| ()).map_err(|e| e.to_string())).ok();
            if ok {
                loop {
                    std::thread::park();
                }
            }
        });
        rx.recv()
            .expect("moto thread reports")
            .unwrap_or_else(|e| panic!("moto_server did not start: {e}"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { endpoint }
    }
}

impl Moto {
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(herald_shared::aws::http::client())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await
    }

    /// A fresh, empty table for one test.
    pub async fn store(&self) -> herald_shared::store::DynamoStore {
        let sdk = self.sdk_config().await;
        let table = format!("herald-{}", ulid::Ulid::new().to_string().to_lowercase());
        let store =
            herald_shared::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
        store.ensure_table().await.expect("table created");
        store
    }

    /// A fresh queue (with its DLQ) for one test.
    pub async fn queue(&self, max_receives: u32) -> herald_shared::queue::SqsQueue {
        self.queue_with(max_receives, std::time::Duration::from_secs(60))
            .await
    }

    /// A fresh queue whose visibility timeout is `visibility`.
    pub async fn queue_with(
        &self,
        max_receives: u32,
        visibility: std::time::Duration,
    ) -> herald_shared::queue::SqsQueue {
        let sdk = self.sdk_config().await;
        let name = format!("herald-{}", ulid::Ulid::new().to_string().to_lowercase());
        herald_shared::queue::SqsQueue::ensure(
            aws_sdk_sqs::Client::new(&sdk),
            &name,
            max_receives,
            visibility,
        )
        .await
        .expect("queue created")
    }
}

/// An SQS queue on moto whose sends and deletes never overlap. moto 5.2.5's
/// `Queue.delete_message` rebuilds the message list without the lock `add_message` appends under
/// (moto/sqs/models.py, `delete_message`), so a message sent while another is being deleted can
/// vanish. Real SQS has no such race; long runs (the soak) would count it as Herald losing an
/// event. Receives stay concurrent.
pub struct SerialQueue {
    inner: herald_shared::queue::SqsQueue,
    writes: tokio::sync::Mutex<()>,
}

impl SerialQueue {
    pub fn new(inner: herald_shared::queue::SqsQueue) -> Self {
        SerialQueue {
            inner,
            writes: tokio::sync::Mutex::new(()),
        }
    }
}

#[async_trait::async_trait]
impl herald_shared::queue::Queue for SerialQueue {
    async fn send(
        &self,
        body: String,
        delay: std::time::Duration,
    ) -> herald_shared::error::Result<()> {
        let _one = self.writes.lock().await;
        self.inner.send(body, delay).await
    }
    async fn send_batch(
        &self,
        bodies: Vec<String>,
    ) -> herald_shared::error::Result<Vec<herald_shared::error::Result<()>>> {
        let _one = self.writes.lock().await;
        self.inner.send_batch(bodies).await
    }
    async fn receive(
        &self,
        max: usize,
        wait: std::time::Duration,
    ) -> herald_shared::error::Result<Vec<herald_shared::queue::Received>> {
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &str) -> herald_shared::error::Result<()> {
        let _one = self.writes.lock().await;
        self.inner.delete(receipt).await
    }
}

/// A queue that refuses what SQS refuses and moto takes: bodies over the queue's 1 MiB and
/// characters outside SQS's set (`queue::refusal`), answered as the SQS adapter answers SQS's
/// own refusals. Wraps moto's queue wherever a test stands for real SQS.
pub struct CheckedQueue<Q> {
    pub inner: Q,
}

#[async_trait::async_trait]
impl<Q: herald_shared::queue::Queue> herald_shared::queue::Queue for CheckedQueue<Q> {
    async fn send(
        &self,
        body: String,
        delay: std::time::Duration,
    ) -> herald_shared::error::Result<()> {
        herald_shared::queue::check(&body)?;
        self.inner.send(body, delay).await
    }
    async fn send_batch(
        &self,
        bodies: Vec<String>,
    ) -> herald_shared::error::Result<Vec<herald_shared::error::Result<()>>> {
        let refused: Vec<_> = bodies
            .iter()
            .map(|b| herald_shared::queue::check(b))
            .collect();
        let passed: Vec<String> = bodies
            .into_iter()
            .zip(&refused)
            .filter(|(_, r)| r.is_ok())
            .map(|(b, _)| b)
            .collect();
        let mut sent = self.inner.send_batch(passed).await?.into_iter();
        Ok(refused
            .into_iter()
            .map(|r| r.and_then(|()| sent.next().unwrap_or(Ok(()))))
            .collect())
    }
    async fn receive(
        &self,
        max: usize,
        wait: std::time::Duration,
    ) -> herald_shared::error::Result<Vec<herald_shared::queue::Received>> {
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &str) -> herald_shared::error::Result<()> {
        self.inner.delete(receipt).await
    }
}

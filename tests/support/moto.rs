//! moto servers on free loopback ports: one per test binary (and a second for load tests),
//! shared and killed with the process, or one its owner stops by dropping it (the bench).

use super::port::{free_port, listens_within};
use herald_shared::queue::Encoded;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Moto {
    pub endpoint: String,
    /// The thread holding the child: it kills the child once the sender is dropped.
    holder: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();
static SECOND: OnceLock<Moto> = OnceLock::new();

/// Starts moto on first use.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(shared)
}

/// A second, independent moto server. moto answers one request at a time per process (a global
/// lock and Python's GIL), so a load test that puts its queue here and its table on `moto()`
/// gets twice the emulator throughput on two cores.
pub fn second_moto() -> &'static Moto {
    SECOND.get_or_init(shared)
}

/// A server for the whole test binary, from the project's venv. Statics are never dropped, so
/// it lives until the process ends.
fn shared() -> Moto {
    Moto::start(&super::venv_bin("moto_server"))
        .unwrap_or_else(|e| panic!("moto_server did not start: {e}"))
}

impl Moto {
    /// Starts `bin` (a venv's `moto_server`) and waits until it listens. The child is spawned
    /// by a thread that waits for this value to be dropped, then kills it; with
    /// PR_SET_PDEATHSIG the child also dies with that thread, so with the process, even on a
    /// panic or an abort.
    pub fn start(bin: &Path) -> Result<Moto, String> {
        let port = free_port();
        let (started_tx, started) = mpsc::channel();
        let (stop, stopped) = mpsc::channel::<()>();
        let bin: PathBuf = bin.into();
        let shown = bin.display().to_string();
        let holder = std::thread::spawn(move || {
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
            match command.spawn() {
                Ok(mut child) => {
                    started_tx.send(Ok(())).ok();
                    // Err once the owner's sender is gone: nothing is ever sent.
                    let _ = stopped.recv();
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(e) => {
                    started_tx.send(Err(e.to_string())).ok();
                }
            }
        });
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            holder: Some((stop, holder)),
        };
        started
            .recv()
            .map_err(|e| e.to_string())
            .and_then(|spawned| spawned)
            .map_err(|e| format!("{shown}: {e} (`make venv` installs it)"))?;
        if !listens_within(port, Duration::from_secs(60)) {
            return Err(format!("{shown} did not listen on {port} within 60 s"));
        }
        Ok(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some((stop, holder)) = self.holder.take() {
            drop(stop);
            let _ = holder.join();
        }
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
        message: Encoded,
        delay: std::time::Duration,
    ) -> herald_shared::error::Result<()> {
        let _one = self.writes.lock().await;
        self.inner.send(message, delay).await
    }
    async fn send_batch(
        &self,
        messages: Vec<Encoded>,
    ) -> herald_shared::error::Result<Vec<herald_shared::error::Result<()>>> {
        let _one = self.writes.lock().await;
        self.inner.send_batch(messages).await
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
        message: Encoded,
        delay: std::time::Duration,
    ) -> herald_shared::error::Result<()> {
        herald_shared::queue::check(message.as_str())?;
        self.inner.send(message, delay).await
    }
    async fn send_batch(
        &self,
        messages: Vec<Encoded>,
    ) -> herald_shared::error::Result<Vec<herald_shared::error::Result<()>>> {
        let refused: Vec<_> = messages
            .iter()
            .map(|m| herald_shared::queue::check(m.as_str()))
            .collect();
        let passed: Vec<Encoded> = messages
            .into_iter()
            .zip(&refused)
            .filter(|(_, r)| r.is_ok())
            .map(|(m, _)| m)
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

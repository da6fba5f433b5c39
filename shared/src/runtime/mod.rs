//! Wiring shared by every host (the three Lambdas and `herald dev`): logging, AWS clients,
//! and the services built once per process from the configuration.

mod poller;

pub use poller::{poll, sweep_every};

use crate::config::Config;
use crate::error::Result;
use crate::http::DeliveryClient;
use crate::queue::{Queue, SqsQueue};
use crate::service::dispatch::Settings;
use crate::service::sender::Sender;
use crate::service::{Api, Dispatcher, Ingest};
use crate::store::{DynamoStore, Store};
use crate::web::auth::Auth;
use crate::web::{ApiState, IngestState};
use crate::webhook::UrlRules;
use std::sync::Arc;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The log filter from `RUST_LOG` (`info`, `herald_shared=debug,info`, ...); `info` when unset
/// or unreadable. Target directives only: no regex engine in the binaries for span filters.
/// Whatever it says, [`dependency_cap`] applies too.
pub fn log_filter() -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// Below `info`, only Herald's own targets log. The crates that handle requests log what they
/// carry at debug and trace: the AWS SDK its request and response bodies, operation inputs and
/// outputs and raw error responses (DynamoDB items hold signing secrets and protected header
/// values), lambda_runtime the raw invocation event (an API Gateway event holds the caller's key
/// and the body), and hyper, reqwest, rustls, h2 and axum the bytes they move. This filter is
/// layered beside the `RUST_LOG` one, and a subscriber logs only what both enable, so no
/// directive, however specific, lifts it. An allow-list, so a crate added later is held too.
pub fn dependency_cap() -> Targets {
    Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("herald", tracing::Level::TRACE)
}

/// Logs as JSON lines (CloudWatch) or human text (terminal), filtered by `RUST_LOG`.
pub fn init_tracing(json: bool) {
    let filter = log_filter();
    let _ = if json {
        tracing::subscriber::set_global_default(json_logs(filter, std::io::stdout))
            .map_err(|e| e.to_string())
    } else {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .finish()
            .with(filter)
            .with(dependency_cap())
            .try_init()
            .map_err(|e| e.to_string())
    };
}

/// The Lambda log format: one JSON object per line, with the fields of the current span and of
/// its parents (the runtime's invocation span carries the request id). No timestamp: CloudWatch
/// stamps each line. `filter` decides (the fmt builder's own `info` ceiling is lifted, so
/// `RUST_LOG=debug` means debug), within [`dependency_cap`].
pub fn json_logs<W>(filter: Targets, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_ansi(false)
        .without_time()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(writer)
        .with_max_level(tracing::Level::TRACE)
        .finish()
        .with(filter)
        .with(dependency_cap())
}

/// The AWS SDK configuration from the default provider chain (environment, profiles, SSO, web
/// identity, instance metadata): what the CLI and `herald dev --aws` use. Requests go through
/// the process's SDK HTTP client (`aws::http::client`), as in the Lambdas.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::aws::http::client())
        .load()
        .await
}

/// The AWS SDK configuration of a Lambda function, from what Lambda sets: the region
/// (`AWS_REGION`), the execution role's credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), and `AWS_ENDPOINT_URL` when present. The
/// default chain's other providers (profiles, SSO, STS, instance metadata) never apply there,
/// and leaving them out keeps their code out of the binaries. Requests go through reqwest
/// (`aws::http::client`), not the SDK's own hyper client.
pub fn lambda_sdk_config() -> aws_config::SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let credentials = aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
        aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
    );
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(crate::aws::http::client())
        .credentials_provider(credentials)
        .region(
            var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .map(aws_config::Region::new),
        );
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    builder.timeout_config(lambda_sdk_timeouts()).build()
}

/// The bound on one DynamoDB or SQS call in a Lambda, retries included, and on each attempt.
/// An ingest post makes at most five calls in a row (claim, read the claim, take it over,
/// send, confirm or release), so it ends within 7.5 s, inside the functions' 10 s timeout,
/// and never leaves its claim to a kill. DynamoDB and SQS answer in milliseconds: an attempt
/// taking a second is a network fault or a throttled partition, and is retried.
pub const SDK_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);
pub const SDK_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1000);

/// The store and queue calls one delivery job may make in a row around its POST: read the
/// delivery, lease it, queue the retry, record it, change the webhook's health.
pub const JOB_CALLS: u32 = 5;

pub fn lambda_sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(SDK_OPERATION_TIMEOUT)
        .operation_attempt_timeout(SDK_ATTEMPT_TIMEOUT)
        .build()
}

pub fn dynamo_store(sdk: &aws_config::SdkConfig, config: &Config) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table_name)
}

/// The events queue: `HERALD_QUEUE_URL` when set (Lambda), else `HERALD_QUEUE_NAME` created
/// with its DLQ when absent (local stack against an emulator or a sandbox account).
pub async fn sqs_queue(sdk: &aws_config::SdkConfig, config: &Config) -> Result<SqsQueue> {
    let client = aws_sdk_sqs::Client::new(sdk);
    match &config.queue_url {
        Some(url) => Ok(SqsQueue::new(client, url)),
        None => {
            SqsQueue::ensure(
                client,
                &config.queue_name,
                config.max_receives,
                crate::queue::VISIBILITY_TIMEOUT,
            )
            .await
        }
    }
}

pub fn url_rules(config: &Config) -> UrlRules {
    UrlRules {
        policy: config.target_policy,
        require_https: config.require_https,
        ports: config.allowed_ports.clone().map(Arc::new),
    }
}

/// What every route needs to tie a request to a tenant.
pub fn auth(config: &Config, store: Arc<dyn Store>) -> Auth {
    Auth {
        store,
        admin_key: config.admin_key.clone(),
        limiter: crate::web::auth::TenantLimiter::new(config.rate_limit).map(Arc::new),
    }
}

/// The ingest routes' state: authentication and ingest, nothing that sends.
pub fn ingest_state(config: &Config, store: Arc<dyn Store>, queue: Arc<dyn Queue>) -> IngestState {
    IngestState {
        auth: auth(config, store.clone()),
        ingest: Arc::new(Ingest::new(store, queue)),
    }
}

/// The management routes' state. `sender` makes test sends; the local stack shares it with
/// its dispatcher, so the whole process has one delivery client.
pub fn api_state(
    config: &Config,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    sender: Arc<Sender>,
) -> ApiState {
    ApiState {
        auth: auth(config, store.clone()),
        api: Arc::new(Api::new(
            store,
            queue,
            sender,
            url_rules(config),
            config.max_webhooks,
        )),
    }
}

/// The delivery client, behind the deployment's URL rules, and what it keeps between sends.
pub fn sender(config: &Config) -> Arc<Sender> {
    Arc::new(Sender::new(
        DeliveryClient::new(url_rules(config), config.delivery_timeout),
        config.endpoint_concurrency,
    ))
}

/// The dispatcher of the dispatch function, with a sender of its own.
pub fn dispatcher(config: &Config, store: Arc<dyn Store>, queue: Arc<dyn Queue>) -> Dispatcher {
    dispatcher_with(config, store, queue, sender(config))
}

fn dispatcher_with(
    config: &Config,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    sender: Arc<Sender>,
) -> Dispatcher {
    Dispatcher::new(
        store,
        queue,
        sender,
        Settings {
            concurrency: config.dispatch_concurrency,
            schedule: config.retry_schedule.clone(),
            disable_after: config.disable_after,
            lease: config.delivery_timeout + crate::service::dispatch::LEASE_MARGIN,
            job_budget: config.delivery_timeout + JOB_CALLS * SDK_OPERATION_TIMEOUT,
            call_timeout: SDK_OPERATION_TIMEOUT,
            max_receives: config.max_receives,
        },
    )
}

/// The whole pipeline in one process, as `herald dev` and the tests run it: one router for
/// ingest and management, and the dispatcher that queue pollers drive, sharing one sender.
pub fn local_stack(
    config: &Config,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
) -> (axum::Router, Arc<Dispatcher>) {
    let sender = sender(config);
    let dispatcher = Arc::new(dispatcher_with(
        config,
        store.clone(),
        queue.clone(),
        sender.clone(),
    ));
    // One rate limiter for both route sets: a tenant's budget is per process, as in one Lambda.
    let ingest = ingest_state(config, store.clone(), queue.clone());
    let api = ApiState {
        auth: ingest.auth.clone(),
        ..api_state(config, store, queue, sender)
    };
    let router = crate::web::router(ingest, api);
    (router, dispatcher)
}

/// The table and the queue of a deployment, as the Lambdas reach them.
pub async fn aws_ports(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<(Arc<dyn Store>, Arc<dyn Queue>)> {
    let store: Arc<dyn Store> = Arc::new(dynamo_store(sdk, config));
    let queue: Arc<dyn Queue> = Arc::new(sqs_queue(sdk, config).await?);
    Ok((store, queue))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `json_logs` writes while `f` runs, with `rust_log` as the filter.
    fn logged(rust_log: &str, f: impl FnOnce()) -> String {
        let lines = Lines::default();
        let writer = lines.clone();
        let filter: Targets = rust_log.parse().unwrap();
        tracing::subscriber::with_default(json_logs(filter, move || writer.clone()), f);
        let bytes = lines.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// Emits, for each dependency target, a trace and a debug line carrying a "secret" and an
    /// info line without one, as the crates themselves log.
    macro_rules! dependency_lines {
        ($($target:literal),*) => {{
            $(
                tracing::trace!(target: $target, body = concat!("secret from ", $target), "transmitting request");
                tracing::debug!(target: $target, output = concat!("secret from ", $target), "received");
                tracing::info!(target: $target, concat!("info from ", $target));
            )*
            [$($target),*]
        }};
    }

    #[test]
    fn rust_log_reaches_herald_but_never_lifts_the_dependency_cap() {
        let every_target_at_trace = "trace,aws_smithy_runtime=trace,\
            aws_smithy_runtime::client::orchestrator=trace,aws_sigv4=trace,aws_runtime=trace,\
            aws_sdk_dynamodb=trace,lambda_runtime=trace,lambda_runtime::layers::api_response=trace,\
            hyper=trace,hyper_util=trace,reqwest=trace,rustls=trace,h2=trace,axum=trace";
        let mut targets = Vec::new();
        let text = logged(every_target_at_trace, || {
            tracing::trace!(target: "herald_shared::store::dynamodb", "herald trace line");
            tracing::debug!(target: "herald_cli::dev", "herald debug line");
            targets.extend(dependency_lines!(
                "aws_smithy_runtime::client::orchestrator",
                "aws_smithy_runtime_api::client::interceptors",
                "aws_sigv4::http_request::sign",
                "aws_runtime::content_encoding",
                "aws_sdk_dynamodb::operation::put_item",
                "aws_config::meta::credentials",
                "lambda_runtime::layers::api_response",
                "lambda_http::request",
                "hyper::proto::h1::io",
                "hyper_util::client::legacy::pool",
                "reqwest::connect",
                "rustls::client::hs",
                "h2::codec::framed_write",
                "axum::rejection",
                "tower_http::trace",
                "a_crate_added_later::client"
            ));
        });
        assert!(
            text.contains("herald trace line") && text.contains("herald debug line"),
            "{text}"
        );
        assert!(!text.contains("secret from"), "{text}");
        for target in targets {
            assert!(
                text.contains(&format!("info from {target}")),
                "{target}: {text}"
            );
        }
    }

    #[test]
    fn rust_log_still_quietens() {
        let text = logged("warn", || {
            tracing::info!(target: "herald_shared::web", "an info line");
            tracing::warn!(target: "herald_shared::web", "a warning");
            tracing::info!(target: "aws_smithy_runtime", "an sdk info line");
        });
        assert!(text.contains("a warning"), "{text}");
        assert!(!text.contains("info line"), "{text}");
    }
}

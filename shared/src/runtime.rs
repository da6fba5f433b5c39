//! Wiring shared by every host (the three Lambdas and `herald dev`): logging, AWS clients,
//! and the services built once per process from the configuration.

use crate::config::Config;
use crate::error::Result;
use crate::http::Outbound;
use crate::queue::{Queue, SqsQueue};
use crate::service::dispatch::Settings;
use crate::service::{Api, Dispatcher, Ingest};
use crate::store::{DynamoStore, Store};
use crate::web::AppState;
use crate::webhook::UrlRules;
use std::sync::Arc;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The log filter from `RUST_LOG` (`info`, `herald_shared=debug,info`, ...); `info` when unset
/// or unreadable. Target directives only: no regex engine in the binaries for span filters.
pub fn log_filter() -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// Logs as JSON lines (CloudWatch) or human text (terminal), filtered by `RUST_LOG`.
pub fn init_tracing(json: bool) {
    let filter = log_filter();
    let _ = if json {
        tracing::subscriber::set_global_default(json_logs(filter, std::io::stdout))
            .map_err(|e| e.to_string())
    } else {
        tracing_subscriber::fmt()
            .finish()
            .with(filter)
            .try_init()
            .map_err(|e| e.to_string())
    };
}

/// The Lambda log format: one JSON object per line, with the fields of the current span and of
/// its parents (the runtime's invocation span carries the request id). No timestamp: CloudWatch
/// stamps each line.
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
        .finish()
        .with(filter)
}

/// The AWS SDK configuration from the default provider chain (environment, profiles, SSO, web
/// identity, instance metadata): what the CLI and `herald dev --aws` use. Requests go through
/// the process's SDK HTTP client (`aws_http::client`), as in the Lambdas.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::aws_http::client())
        .load()
        .await
}

/// The AWS SDK configuration of a Lambda function, from what Lambda sets: the region
/// (`AWS_REGION`), the execution role's credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), and `AWS_ENDPOINT_URL` when present. The
/// default chain's other providers (profiles, SSO, STS, instance metadata) never apply there,
/// and leaving them out keeps their code out of the binaries. Requests go through reqwest
/// (`aws_http::client`), not the SDK's own hyper client.
pub fn lambda_sdk_config() -> aws_config::SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let credentials = aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
        aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
    );
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(crate::aws_http::client())
        .credentials_provider(credentials)
        .region(
            var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .map(aws_config::Region::new),
        );
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    builder.build()
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
                5,
                std::time::Duration::from_secs(60),
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

/// The routers' state. `dispatcher` sends test events; the local stack shares it with its
/// queue pollers so the whole process has one HTTP client.
pub fn app_state(
    config: &Config,
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    dispatcher: Arc<Dispatcher>,
) -> AppState {
    AppState {
        ingest: Arc::new(Ingest::new(store.clone(), queue.clone())),
        api: Arc::new(Api::new(
            store.clone(),
            queue,
            dispatcher,
            url_rules(config),
            config.max_webhooks,
        )),
        admin_key: config.admin_key.clone(),
        limiter: crate::web::auth::TenantLimiter::new(config.rate_limit).map(Arc::new),
        store,
    }
}

pub fn dispatcher(config: &Config, store: Arc<dyn Store>, queue: Arc<dyn Queue>) -> Dispatcher {
    Dispatcher::new(
        store,
        queue,
        Outbound::new(url_rules(config), config.delivery_timeout),
        Settings {
            concurrency: config.dispatch_concurrency,
            per_endpoint: config.endpoint_concurrency,
            schedule: config.retry_schedule.clone(),
            disable_after: config.disable_after,
            lease: config.delivery_timeout + crate::service::dispatch::LEASE_MARGIN,
        },
    )
}

/// The routers' state over DynamoDB and SQS: what the ingest and api Lambdas serve.
pub async fn aws_app_state(sdk: &aws_config::SdkConfig, config: &Config) -> Result<AppState> {
    let store: Arc<dyn Store> = Arc::new(dynamo_store(sdk, config));
    let queue: Arc<dyn Queue> = Arc::new(sqs_queue(sdk, config).await?);
    let dispatcher = Arc::new(dispatcher(config, store.clone(), queue.clone()));
    Ok(app_state(config, store, queue, dispatcher))
}

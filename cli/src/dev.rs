//! `herald dev`: the whole pipeline in one process, with the same router and dispatcher as the
//! Lambdas. In memory by default; DynamoDB/SQS with `--aws` or when `AWS_ENDPOINT_URL` is set.

use crate::host_check::{self, AllowedHosts};
use herald_shared::config::{Config, Mode};
use herald_shared::queue::{MemoryQueue, Queue};
use herald_shared::runtime;
use herald_shared::service::{tenants, Sweeper};
use herald_shared::store::{MemoryStore, Store, SweepIndex};
use std::sync::Arc;

/// The tenant behind `HERALD_API_KEY` in the local stack.
pub const DEV_TENANT: &str = "tn_dev";
/// How often the local stack sweeps: more often than the template's 5 minutes, so a lost
/// message's attempt is found while someone is watching; well inside `SWEEP_LEAD`.
const LOCAL_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(clap::Args)]
pub struct Args {
    /// Address or name to listen on. Requests must be addressed (`Host`) to it or to a
    /// loopback name or address; any other host is refused, as a DNS-rebinding page's would be.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Use DynamoDB and SQS (at AWS_ENDPOINT_URL, e.g. a moto server) instead of memory.
    #[arg(long)]
    aws: bool,
    /// Concurrent queue pollers feeding the dispatcher.
    #[arg(long, default_value_t = 4)]
    pollers: usize,
}

pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env(Mode::Local)?;
    let aws = args.aws || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    type Ports = (Arc<dyn Store>, Arc<dyn SweepIndex>, Arc<dyn Queue>, String);
    let (store, index, queue, backend): Ports = if aws {
        let sdk = runtime::aws_sdk_config().await;
        let store = Arc::new(runtime::dynamo_store(&sdk, &config));
        store.ensure_table().await?;
        let queue = runtime::sqs_queue(&sdk, &config).await?;
        let backend = format!(
            "DynamoDB table {} and SQS queue {}",
            config.table_name,
            queue.url()
        );
        (store.clone(), store, Arc::new(queue), backend)
    } else {
        let store = Arc::new(MemoryStore::new());
        (
            store.clone(),
            store,
            Arc::new(MemoryQueue::default()),
            "in-memory store and queue".to_string(),
        )
    };
    tenants::ensure_tenant_with_key(store.as_ref(), DEV_TENANT, "dev", config.api_key.expose())
        .await?;

    let sweeper = Sweeper::new(store.clone(), index, queue.clone());
    let (app, dispatcher) = runtime::local_stack(&config, store, queue.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut pollers = Vec::new();
    for _ in 0..args.pollers.max(1) {
        let mut stop = stop_rx.clone();
        pollers.push(tokio::spawn(runtime::poll(
            queue.clone(),
            dispatcher.clone(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        )));
    }

    let mut stop = stop_rx.clone();
    pollers.push(tokio::spawn(runtime::sweep_every(
        sweeper,
        LOCAL_SWEEP_EVERY,
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
    )));

    let allowed = Arc::new(AllowedHosts::new(&args.host));
    let app = app.layer(axum::middleware::from_fn_with_state(
        allowed,
        host_check::check,
    ));
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    print_welcome(&base, config.api_key.expose(), &backend, &config);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    let _ = stop_tx.send(true);
    for p in pollers {
        let _ = p.await;
    }
    Ok(())
}

fn print_welcome(base: &str, key: &str, backend: &str, config: &Config) {
    let policy = match config.target_policy {
        herald_shared::url_policy::TargetPolicy::Private => "loopback and private targets allowed",
        herald_shared::url_policy::TargetPolicy::Public => "public targets only",
        herald_shared::url_policy::TargetPolicy::Loopback => "loopback targets only",
    };
    println!(
        r#"
Herald is listening on {base} ({backend}; {policy}).
Tenant key: {key} (every scope: ingest, read, manage, admin)
Web console: {base}/ (enter the tenant key there)

1. In another terminal, start a receiver that prints each delivery:
     cargo run -q -p herald-cli -- receive --port 9000

2. Subscribe it to experiment outcomes (the answer includes the signing secret, shown once):
     curl -s -X POST {base}/v1/webhooks \
       -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \
       -d '{{"url": "http://127.0.0.1:9000/hooks", "events": ["experiments.done"]}}'

3. Post an event as a platform would:
     curl -s -X POST {base}/v1/events \
       -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \
       -d '{{"type": "experiments.succeeded", "project": "Light detection",
            "object": {{"kind": "experiment", "name": "cifar10"}}, "data": {{"accuracy": 0.93}}}}'

   The receiver prints the signed request. Restart it with --secret whsec_... to verify signatures.

4. More: GET {base}/v1/event-types, GET {base}/v1/webhooks (same Authorization header). Ctrl-C stops.
"#
    );
}

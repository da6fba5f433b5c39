//! `herald webhooks …`: the webhook routes of the API, one subcommand each.

use crate::client::{CliError, Client};
use crate::output::{self, cell, Format};
use serde_json::{json, Value};

#[derive(clap::Subcommand)]
pub enum Command {
    /// List the tenant's webhooks.
    List,
    /// Show one webhook.
    Get { id: String },
    /// Create a webhook; the answer holds its signing secret, shown once.
    Create(CreateArgs),
    /// Delete a webhook.
    Delete { id: String },
    /// Enable a webhook (clears the reason it was disabled).
    Enable {
        id: String,
        /// Also queue every delivery it held while disabled (a recovery job).
        #[arg(long)]
        recover: bool,
    },
    /// Disable a webhook: nothing is sent to it until it is enabled again.
    Disable { id: String },
    /// A webhook's attempts by outcome per hour, and its success rate.
    Stats {
        id: String,
        /// `24h` or `7d`.
        #[arg(long, default_value = "24h")]
        window: String,
    },
    /// Send a test event now and show what the receiver answered.
    Test {
        id: String,
        /// The catalog event type to send (default: the webhook's first).
        #[arg(long = "type")]
        event_type: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// The receiver's URL (`--url` is the API's).
    endpoint: Option<String>,
    /// Event types or patterns, repeated or comma-separated (`experiments.done,jobs.*`).
    #[arg(long = "event", value_delimiter = ',')]
    events: Vec<String>,
    /// standard, slack, discord, teams, determined, ubiops or qovery.
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// Only events of projects matching these names (`*` and `?` wildcards).
    #[arg(long = "project", value_delimiter = ',')]
    projects: Vec<String>,
    /// A whole create body as JSON, or `@file.json`; flags given beside it override its fields.
    #[arg(long)]
    body: Option<String>,
}

pub async fn run(client: &Client, format: Format, command: Command) -> Result<(), CliError> {
    match command {
        Command::List => {
            let webhooks = client.list_all("/v1/webhooks").await?;
            match format {
                Format::Json => output::json(&Value::Array(webhooks)),
                Format::Table => output::table(
                    &["ID", "NAME", "KIND", "ENABLED", "EVENTS", "URL"],
                    &webhooks
                        .iter()
                        .map(|w| {
                            vec![
                                cell(&w["id"]),
                                cell(&w["name"]),
                                cell(&w["kind"]),
                                cell(&w["enabled"]),
                                cell(&w["events"]),
                                cell(&w["url"]),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Command::Get { id } => show(format, &client.get(&path(&id)).await?),
        Command::Create(args) => {
            let created = client.post("/v1/webhooks", &create_body(args)?).await?;
            show(format, &created);
            if format == Format::Table {
                println!("secret     {}  (shown once)", cell(&created["secret"]));
            }
        }
        Command::Delete { id } => {
            client.delete(&path(&id)).await?;
            if format == Format::Table {
                println!("deleted {id}");
            }
        }
        Command::Enable { id, recover } => {
            let body = match recover {
                true => json!({"enabled": true, "recover": true}),
                false => json!({"enabled": true}),
            };
            let webhook = client.patch(&path(&id), &body).await?;
            show(format, &webhook);
            if let (Format::Table, Some(job)) = (format, webhook.get("recovery")) {
                crate::deliveries::show_recovery(job);
            }
        }
        Command::Disable { id } => {
            let webhook = client.patch(&path(&id), &json!({"enabled": false})).await?;
            show(format, &webhook);
        }
        Command::Stats { id, window } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("window", &window);
            let stats = client
                .get(&format!("{}/stats?{}", path(&id), query.finish()))
                .await?;
            match format {
                Format::Json => output::json(&stats),
                Format::Table => {
                    let totals = &stats["totals"];
                    let rate = stats["success_rate"]
                        .as_f64()
                        .map_or("no attempts".to_string(), |r| format!("{:.1} %", r * 100.0));
                    output::record(&[
                        ("window", cell(&stats["window"])),
                        ("success_rate", rate),
                        ("succeeded", cell(&totals["succeeded"])),
                        ("retried", cell(&totals["retried"])),
                        ("failed", cell(&totals["failed"])),
                        ("held", cell(&totals["held"])),
                    ]);
                    let rows: Vec<Vec<String>> = stats["hours"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|h| {
                            ["succeeded", "retried", "failed", "held"]
                                .iter()
                                .any(|k| h[*k].as_u64().unwrap_or(0) > 0)
                        })
                        .map(|h| {
                            ["hour", "succeeded", "retried", "failed", "held"]
                                .iter()
                                .map(|k| cell(&h[*k]))
                                .collect()
                        })
                        .collect();
                    output::table(&["hour", "succeeded", "retried", "failed", "held"], &rows);
                }
            }
        }
        Command::Test { id, event_type } => {
            let body = match event_type {
                Some(t) => json!({"event_type": t}),
                None => json!({}),
            };
            let result = client.post(&format!("{}/test", path(&id)), &body).await?;
            match format {
                Format::Json => output::json(&result),
                Format::Table => output::record(&[
                    ("delivered", cell(&result["delivered"])),
                    ("event_type", cell(&result["event_type"])),
                    ("status_code", cell(&result["status_code"])),
                    ("duration_ms", cell(&result["duration_ms"])),
                    ("error", cell(&result["error"])),
                    ("response", cell(&result["response_body"])),
                ]),
            }
            if result["delivered"] != true {
                return Err(CliError::Failed(
                    "the receiver did not accept the test".into(),
                ));
            }
        }
    }
    Ok(())
}

fn path(id: &str) -> String {
    format!("/v1/webhooks/{id}")
}

fn create_body(args: CreateArgs) -> Result<Value, CliError> {
    let mut body = match args.body {
        Some(text) => crate::read_json_arg(&text)?,
        None => json!({}),
    };
    let Some(obj) = body.as_object_mut() else {
        return Err(CliError::Usage("--body must be a JSON object".into()));
    };
    if let Some(url) = args.endpoint {
        obj.insert("url".into(), json!(url));
    }
    if !args.events.is_empty() {
        obj.insert("events".into(), json!(args.events));
    }
    if let Some(kind) = args.kind {
        obj.insert("kind".into(), json!(kind));
    }
    if let Some(name) = args.name {
        obj.insert("name".into(), json!(name));
    }
    if !args.projects.is_empty() {
        obj.insert("filters".into(), json!({"project_names": args.projects}));
    }
    Ok(body)
}

fn show(format: Format, w: &Value) {
    match format {
        Format::Json => output::json(w),
        Format::Table => {
            let headers = w["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    let value = if h["protected"] == true {
                        "•••".to_string()
                    } else {
                        cell(&h["value"])
                    };
                    format!("{}: {value}", cell(&h["key"]))
                })
                .collect::<Vec<_>>()
                .join("; ");
            output::record(&[
                ("id", cell(&w["id"])),
                ("name", cell(&w["name"])),
                ("url", cell(&w["url"])),
                ("kind", cell(&w["kind"])),
                ("events", cell(&w["events"])),
                ("filters", w["filters"].to_string()),
                (
                    "headers",
                    if headers.is_empty() {
                        "-".into()
                    } else {
                        headers
                    },
                ),
                ("enabled", cell(&w["enabled"])),
                ("disabled", cell(&w["disabled_reason"])),
                ("updated_at", cell(&w["updated_at"])),
            ]);
        }
    }
}

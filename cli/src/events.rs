//! `herald events send` and `herald event-types`.

use crate::client::{CliError, Client};
use crate::output::{self, cell, Format};
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Post one event to the ingest API, as a platform would.
    Send(SendArgs),
}

#[derive(clap::Args)]
pub struct SendArgs {
    /// The catalog type, e.g. `experiments.failed`.
    #[arg(long = "type")]
    event_type: String,
    /// The event's `data`: JSON, or `@file.json`.
    #[arg(long)]
    data: Option<String>,
    #[arg(long)]
    project: Option<String>,
    /// PRODUCTION, STAGING, DEVELOPMENT or PREVIEW.
    #[arg(long)]
    environment_type: Option<String>,
    /// The object the event is about, as `kind/name[/version]`.
    #[arg(long)]
    object: Option<String>,
    #[arg(long)]
    text: Option<String>,
    /// An id of your own: the same id within 24 h is not delivered twice.
    #[arg(long)]
    id: Option<String>,
}

pub async fn send(client: &Client, format: Format, args: SendArgs) -> Result<(), CliError> {
    let mut event = json!({"type": args.event_type});
    let obj = event.as_object_mut().expect("an object literal");
    if let Some(data) = args.data {
        obj.insert("data".into(), crate::read_json_arg(&data)?);
    }
    for (key, value) in [
        ("project", args.project),
        ("environment_type", args.environment_type),
        ("text", args.text),
        ("id", args.id),
    ] {
        if let Some(v) = value {
            obj.insert(key.into(), json!(v));
        }
    }
    if let Some(object) = args.object {
        let mut parts = object.splitn(3, '/');
        let (Some(kind), Some(name)) = (parts.next(), parts.next()) else {
            return Err(CliError::Usage(
                "--object is kind/name or kind/name/version".into(),
            ));
        };
        let mut o = json!({"kind": kind, "name": name});
        if let Some(version) = parts.next() {
            o["version"] = json!(version);
        }
        obj.insert("object".into(), o);
    }
    let answer = client.post("/v1/events", &event).await?;
    match format {
        Format::Json => output::json(&answer),
        Format::Table => println!("{} {}", cell(&answer["status"]), cell(&answer["id"])),
    }
    Ok(())
}

pub async fn types(client: &Client, format: Format) -> Result<(), CliError> {
    let catalog = client.get("/v1/event-types").await?;
    match format {
        Format::Json => output::json(&catalog),
        Format::Table => {
            let types = catalog["data"].as_array().cloned().unwrap_or_default();
            output::table(
                &["TYPE", "DESCRIPTION"],
                &types
                    .iter()
                    .map(|t| vec![cell(&t["type"]), cell(&t["description"])])
                    .collect::<Vec<_>>(),
            );
            if let Some(patterns) = catalog["patterns"].as_array() {
                println!();
                output::table(
                    &["PATTERN", "DESCRIPTION"],
                    &patterns
                        .iter()
                        .map(|p| vec![cell(&p["pattern"]), cell(&p["description"])])
                        .collect::<Vec<_>>(),
                );
            }
        }
    }
    Ok(())
}

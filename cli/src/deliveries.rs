//! `herald deliveries …`: the delivery log, redelivery and recovery.

use crate::client::{CliError, Client};
use crate::output::{self, cell, Format};
use serde_json::Value;

#[derive(clap::Subcommand)]
pub enum Command {
    /// A webhook's deliveries, newest first.
    List {
        /// The webhook whose log to read.
        #[arg(long)]
        webhook: String,
        /// At most this many (1-100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only deliveries in this status: pending, retrying, succeeded, failed or held (a
        /// page reads at most 500 of the log, so it may show fewer than `--limit`).
        #[arg(long)]
        status: Option<String>,
    },
    /// One delivery with every attempt.
    Get { id: String },
    /// Queue a new attempt of a delivery, with the same `webhook-id`.
    Redeliver { id: String },
    /// Queue a new attempt series for every delivery of a webhook whose event was accepted in
    /// a window: by default every one not succeeded. The first pages are done at once, the
    /// sweep does the rest (`herald deliveries recovery ID` follows it).
    Recover {
        #[arg(long)]
        webhook: String,
        /// The window's start, RFC 3339 (`2026-12-01T00:00:00Z`).
        #[arg(long)]
        since: String,
        /// The window's end, excluded; default now.
        #[arg(long)]
        until: Option<String>,
        /// Only deliveries in this status: pending, retrying, succeeded, failed or held.
        #[arg(long)]
        status: Option<String>,
    },
    /// A recovery job's progress.
    Recovery { id: String },
}

/// A recovery job as a table shows it.
pub fn show_recovery(job: &Value) {
    output::record(&[
        ("recovery", cell(&job["id"])),
        ("state", cell(&job["state"])),
        (
            "window",
            format!("{} to {}", cell(&job["since"]), cell(&job["until"])),
        ),
        ("status", cell(&job["status"])),
        (
            "progress",
            format!(
                "{} looked at, {} matched, {} queued, {} skipped",
                cell(&job["scanned"]),
                cell(&job["matched"]),
                cell(&job["queued"]),
                cell(&job["skipped"])
            ),
        ),
    ]);
}

pub async fn run(client: &Client, format: Format, command: Command) -> Result<(), CliError> {
    match command {
        Command::List {
            webhook,
            limit,
            status,
        } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &limit.to_string());
            if let Some(status) = &status {
                query.append_pair("status", status);
            }
            let page = client
                .get(&format!(
                    "/v1/webhooks/{webhook}/deliveries?{}",
                    query.finish()
                ))
                .await?;
            let items = page["data"].as_array().cloned().unwrap_or_default();
            match format {
                Format::Json => output::json(&Value::Array(items)),
                Format::Table => output::table(
                    &[
                        "ID",
                        "EVENT TYPE",
                        "STATUS",
                        "ATTEMPTS",
                        "LAST CODE",
                        "CREATED",
                    ],
                    &items
                        .iter()
                        .map(|d| {
                            let attempts = d["attempts"].as_array().cloned().unwrap_or_default();
                            let last = attempts.last().cloned().unwrap_or(Value::Null);
                            vec![
                                cell(&d["id"]),
                                cell(&d["event_type"]),
                                cell(&d["status"]),
                                attempts.len().to_string(),
                                cell(&last["status_code"]),
                                cell(&d["created_at"]),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Command::Get { id } => {
            let d = client.get(&format!("/v1/deliveries/{id}")).await?;
            match format {
                Format::Json => output::json(&d),
                Format::Table => {
                    output::record(&[
                        ("id", cell(&d["id"])),
                        (
                            "event",
                            format!("{} {}", cell(&d["event_id"]), cell(&d["event_type"])),
                        ),
                        ("webhook", cell(&d["webhook_id"])),
                        ("status", cell(&d["status"])),
                        ("next_attempt_at", cell(&d["next_attempt_at"])),
                    ]);
                    println!();
                    output::table(
                        &["AT", "CODE", "MS", "ERROR"],
                        &d["attempts"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|a| {
                                vec![
                                    cell(&a["at"]),
                                    cell(&a["status_code"]),
                                    cell(&a["duration_ms"]),
                                    cell(&a["error"]),
                                ]
                            })
                            .collect::<Vec<_>>(),
                    );
                }
            }
        }
        Command::Recover {
            webhook,
            since,
            until,
            status,
        } => {
            let mut body = serde_json::json!({ "since": since });
            if let Some(until) = until {
                body["until"] = until.into();
            }
            if let Some(status) = status {
                body["status"] = status.into();
            }
            let job = client
                .post(&format!("/v1/webhooks/{webhook}/recover"), &body)
                .await?;
            match format {
                Format::Json => output::json(&job),
                Format::Table => show_recovery(&job),
            }
        }
        Command::Recovery { id } => {
            let job = client.get(&format!("/v1/recoveries/{id}")).await?;
            match format {
                Format::Json => output::json(&job),
                Format::Table => show_recovery(&job),
            }
        }
        Command::Redeliver { id } => {
            let answer = client
                .post_empty(&format!("/v1/deliveries/{id}/redeliver"))
                .await?;
            match format {
                Format::Json => output::json(&answer),
                Format::Table => println!("redelivery of {id} queued"),
            }
        }
    }
    Ok(())
}

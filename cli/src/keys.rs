//! `herald keys …`: the tenant's API keys. The key in use needs the `admin` scope, and can only
//! make keys within its own scopes.

use crate::client::{CliError, Client};
use crate::output::{self, cell, Format};
use serde_json::{json, Value};

#[derive(clap::Subcommand)]
pub enum Command {
    /// The tenant's keys: name, scopes, created, last used (never the keys themselves).
    List,
    /// Make a key; it is printed once and cannot be shown again.
    Create {
        /// What the key is for, shown in the list.
        #[arg(long)]
        name: String,
        /// What it may do, repeated or comma-separated: ingest (post events), read (GET
        /// routes), manage (change webhooks and deliveries, secrets), admin (keys).
        #[arg(
            long = "scope",
            value_delimiter = ',',
            required = true,
            value_parser = ["ingest", "read", "manage", "admin"]
        )]
        scopes: Vec<String>,
    },
    /// Revoke a key: it is refused from now on.
    Revoke { id: String },
}

pub async fn run(client: &Client, format: Format, command: Command) -> Result<(), CliError> {
    match command {
        Command::List => {
            let keys = client.list_all("/v1/keys").await?;
            match format {
                Format::Json => output::json(&Value::Array(keys)),
                Format::Table => output::table(
                    &["ID", "NAME", "SCOPES", "CREATED", "LAST USED"],
                    &keys
                        .iter()
                        .map(|k| {
                            vec![
                                cell(&k["id"]),
                                cell(&k["name"]),
                                cell(&k["scopes"]),
                                cell(&k["created_at"]),
                                cell(&k["last_used"]),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        Command::Create { name, scopes } => {
            let made = client
                .post("/v1/keys", &json!({"name": name, "scopes": scopes}))
                .await?;
            match format {
                Format::Json => output::json(&made),
                Format::Table => {
                    output::record(&[
                        ("id", cell(&made["id"])),
                        ("name", cell(&made["name"])),
                        ("scopes", cell(&made["scopes"])),
                        ("created_at", cell(&made["created_at"])),
                        ("key", format!("{}  (shown once)", cell(&made["key"]))),
                    ]);
                }
            }
        }
        Command::Revoke { id } => {
            client.delete(&format!("/v1/keys/{id}")).await?;
            match format {
                Format::Json => output::json(&json!({"id": id, "revoked": true})),
                Format::Table => println!("key {id} revoked"),
            }
        }
    }
    Ok(())
}

//! `herald`: the local stack, and a client of any Herald API (`--url`, `HERALD_URL`,
//! `HERALD_API_KEY`).

mod apply;
mod client;
mod deliveries;
mod dev;
mod dlq;
mod events;
mod host_check;
mod keys;
mod output;
mod receive;
mod verify;
mod webhooks;

use clap::{Parser, Subcommand};
use client::{CliError, Client, Target};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Herald webhook notifications",
    after_help = "Exit codes: 0 done; 1 the API refused or failed (its problem is printed); \
                  2 bad command line or file, nothing sent; 3 the API could not be reached; \
                  4 a check did not pass (verify, webhooks test)."
)]
struct Cli {
    #[command(flatten)]
    target: Target,
    /// `table` for people, `json` for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t)]
    output: output::Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run ingest, api and dispatch in one process (on 127.0.0.1 unless --host).
    Dev(dev::Args),
    /// Manage webhooks.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::Command,
    },
    /// Post events.
    Events {
        #[command(subcommand)]
        command: events::Command,
    },
    /// Read the delivery log and redeliver.
    Deliveries {
        #[command(subcommand)]
        command: deliveries::Command,
    },
    /// The tenant's API keys and their scopes.
    Keys {
        #[command(subcommand)]
        command: keys::Command,
    },
    /// The event catalog: types and subscription patterns.
    EventTypes,
    /// Make the tenant's managed webhooks equal to a file (`--dry-run` prints the plan).
    Apply(apply::ApplyArgs),
    /// Write the managed webhooks in the format `apply` reads.
    Export(apply::ExportArgs),
    /// Check the signature of a captured delivery read on stdin.
    Verify(verify::Args),
    /// Run a local receiver that prints (and optionally verifies) every delivery.
    Receive(receive::Args),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Dead-letter queue tools.
    Dlq {
        #[command(subcommand)]
        command: dlq::Command,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // `herald webhooks list | head` should end quietly, as other Unix tools do, not panic.
    #[cfg(unix)]
    // SAFETY: restoring the default action of a signal before any thread writes to stdout.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    herald_shared::runtime::init_tracing(false);
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let format = cli.output;
    let other = |e: Box<dyn std::error::Error>| CliError::Transport(e.to_string());
    match cli.command {
        Command::Dev(args) => dev::run(args).await.map_err(other),
        Command::Receive(args) => receive::run(args).await.map_err(other),
        Command::Dlq { command } => dlq::run(command).await.map_err(other),
        Command::Openapi => {
            print!("{}", herald_shared::web::openapi::document());
            Ok(())
        }
        Command::Verify(args) => verify::run(args),
        Command::Webhooks { command } => {
            webhooks::run(&Client::new(&cli.target)?, format, command).await
        }
        Command::Events {
            command: events::Command::Send(args),
        } => events::send(&Client::new(&cli.target)?, format, args).await,
        Command::Deliveries { command } => {
            deliveries::run(&Client::new(&cli.target)?, format, command).await
        }
        Command::Keys { command } => keys::run(&Client::new(&cli.target)?, format, command).await,
        Command::EventTypes => events::types(&Client::new(&cli.target)?, format).await,
        Command::Apply(args) => apply::apply(&Client::new(&cli.target)?, format, args).await,
        Command::Export(args) => apply::export(&Client::new(&cli.target)?, args).await,
    }
}

/// A JSON argument given inline, as `@file.json`, or as `-` for stdin.
pub fn read_json_arg(text: &str) -> Result<serde_json::Value, CliError> {
    let (source, content) = match text {
        "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| CliError::Usage(format!("stdin: {e}")))?;
            ("stdin".to_string(), s)
        }
        t if t.starts_with('@') => (
            t[1..].to_string(),
            std::fs::read_to_string(&t[1..])
                .map_err(|e| CliError::Usage(format!("{}: {e}", &t[1..])))?,
        ),
        t => ("the argument".to_string(), t.to_string()),
    };
    serde_json::from_str(&content)
        .map_err(|e| CliError::Usage(format!("{source} is not JSON: {e}")))
}

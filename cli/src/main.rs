//! `herald`: the local stack and tools around a Herald deployment.

mod dev;
mod dlq;
mod receive;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "herald", version, about = "Herald webhook notifications")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run ingest, api and dispatch in one process on 127.0.0.1.
    Dev(dev::Args),
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
    herald_shared::runtime::init_tracing(false);
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Receive(args) => receive::run(args).await,
        Command::Dlq { command } => dlq::run(command).await,
        Command::Openapi => {
            print!("{}", herald_shared::web::openapi::document());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e}");
            ExitCode::FAILURE
        }
    }
}

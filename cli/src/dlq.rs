//! `herald dlq redrive`: move messages that kept failing back to the events queue, once what
//! made them fail is fixed.

use herald_shared::queue::SqsQueue;
use herald_shared::runtime;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Move every message of the dead-letter queue back to the events queue.
    Redrive {
        /// The events queue.
        #[arg(long, env = "HERALD_QUEUE_URL")]
        queue_url: String,
        /// The dead-letter queue; by default the one in the events queue's redrive policy.
        #[arg(long)]
        dlq_url: Option<String>,
    },
}

pub async fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Redrive { queue_url, dlq_url } => {
            let sdk = runtime::aws_sdk_config().await;
            let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url);
            let dlq_url = match dlq_url {
                Some(url) => url,
                None => queue.dead_letter_queue_url().await?,
            };
            let moved = queue.redrive_from(&dlq_url).await?;
            println!("moved {moved} message(s) from {dlq_url} to {}", queue.url());
            Ok(())
        }
    }
}

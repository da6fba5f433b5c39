//! Handlers as pure orchestration over the ports: no HTTP, no AWS types.

pub mod api;
pub mod dispatch;
pub mod ingest;
pub mod recovery;
pub mod restart;
pub mod sender;
pub mod source;
pub mod sweep;
pub mod tenants;

pub use api::Api;
pub use dispatch::{Dispatcher, QueueRecord};
pub use ingest::Ingest;
pub use sender::Sender;
pub use sweep::Sweeper;

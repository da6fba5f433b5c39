//! What Herald needs of AWS beside the DynamoDB and SQS adapters: the SDK's HTTP client, and
//! AWS errors reduced to what may be logged or answered.

pub(crate) mod error;
pub mod http;

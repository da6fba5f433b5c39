//! The one price table: us-east-1 list prices, as COST.md quotes them. Every dollar figure the
//! meter prints is one of these times a count it measured.

/// DynamoDB on-demand, per write request unit.
pub const WRU: f64 = 0.625e-6;
/// DynamoDB on-demand, per read request unit.
pub const RRU: f64 = 0.125e-6;
/// DynamoDB Standard storage, per GB-month.
pub const GB_MONTH: f64 = 0.25;
/// SQS standard, per request (each 64 KB chunk of a request's payload is one).
pub const SQS_REQUEST: f64 = 0.40e-6;
/// Lambda, per invocation.
pub const LAMBDA_REQUEST: f64 = 0.20e-6;
/// Lambda on arm64 (the template's architecture), per GB-second.
pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
/// API Gateway HTTP API, per request (each 512 KB of a request is one).
pub const HTTP_API_REQUEST: f64 = 1.00e-6;
/// EventBridge API destinations, per event delivered ($1.00 per million events and $0.20 per
/// million invocations): the managed alternative, for comparison only.
pub const EVENTBRIDGE_API_DESTINATION: f64 = 1.20e-6;

/// DynamoDB's per-item overhead in storage, in the table and again in each index entry.
pub const ITEM_OVERHEAD: u64 = 100;
/// SQS bills a request per this much payload.
pub const SQS_CHUNK: u64 = 64 * 1024;
/// API Gateway HTTP API bills a request per this much request.
pub const HTTP_API_CHUNK: u64 = 512 * 1024;

//! Domain errors. They carry no HTTP types: `web::problem` maps them to RFC 9457 answers.

use serde::Serialize;

/// One invalid field of a request body, named by its JSON path (`object.kind`, `events[2]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// The accepted values, when the field takes one of a known set (event types, enums).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<Vec<String>>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            valid: None,
        }
    }

    pub fn with_valid(mut self, valid: Vec<String>) -> Self {
        self.valid = Some(valid);
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not JSON, or not the JSON shape the route takes.
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// Well-formed JSON with invalid fields.
    #[error("{} invalid field(s)", .0.len())]
    Validation(Vec<FieldError>),
    #[error("missing or invalid API key")]
    Unauthorized,
    /// A valid key without the scope the request needs; `errors` names the body field at fault
    /// when there is one (the `scopes` of a new key).
    /// Boxed, so the rare refusal does not widen every `Result` on the delivery path.
    #[error("forbidden: {}", .0.detail)]
    Forbidden(Box<Forbidden>),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The first post of an event id holds its claim and has not confirmed its enqueue yet:
    /// the caller retries after this many seconds, when it has or is known to have failed.
    #[error("the first post of this event id is still being queued; retry in {0} s")]
    InFlight(u64),
    /// The serialized event is larger than what the queue and the event log can hold.
    #[error("the event is {size} bytes once serialized; at most {limit}")]
    EventTooLarge { size: usize, limit: usize },
    /// DynamoDB or SQS refused the request as it is (a validation error, a character or size it
    /// cannot carry): sending it again cannot succeed. The text is Herald's, never AWS's.
    #[error("refused by {0}")]
    Refused(&'static str),
    /// The store could not be reached or answered an error; the caller may retry.
    #[error("store unavailable: {0}")]
    Store(String),
    /// The queue could not be reached or answered an error; the caller may retry.
    #[error("queue unavailable: {0}")]
    Queue(String),
}

impl Error {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }
}

#[derive(Debug)]
pub struct Forbidden {
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl Error {
    pub fn forbidden(detail: String, errors: Vec<FieldError>) -> Self {
        Error::Forbidden(Box::new(Forbidden { detail, errors }))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

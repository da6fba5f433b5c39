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
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// Too many request headers, or too large ones.
    #[error("request headers too large: {0}")]
    HeadersTooLarge(String),
    /// The tenant is over its request rate; retry after this many seconds.
    #[error("rate limit exceeded; retry in {0} s")]
    RateLimited(u64),
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

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! RFC 9457 problem details: the one way errors leave the HTTP API.

use crate::error::{Error, FieldError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    pub retry_after: Option<u64>,
    #[serde(skip)]
    pub www_authenticate: bool,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            kind,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            www_authenticate: false,
        }
    }

    pub fn not_found() -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "urn:herald:problem:not-found",
            "Not found",
            "no such route",
        )
    }

    pub fn method_not_allowed() -> Self {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "urn:herald:problem:method-not-allowed",
            "Method not allowed",
            "this route does not take that method",
        )
    }
}

/// The refusals of the HTTP layer itself, before any operation runs: they are the web's, not
/// the domain's, so they are made here rather than carried by [`Error`].
impl Problem {
    pub fn payload_too_large(limit: usize) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "urn:herald:problem:too-large",
            "Payload too large",
            format!("the body must be at most {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "urn:herald:problem:media-type",
            "Unsupported media type",
            "send the body as Content-Type: application/json",
        )
    }

    /// Too many request headers, or too large ones.
    pub fn headers_too_large(detail: String) -> Self {
        Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "urn:herald:problem:headers-too-large",
            "Request header fields too large",
            detail,
        )
    }

    /// The tenant is over its request rate; it may retry after `secs` seconds.
    pub fn rate_limited(secs: u64) -> Self {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "urn:herald:problem:rate-limited",
            "Too many requests",
            format!("this tenant is over its request rate; retry in {secs} s"),
        );
        p.retry_after = Some(secs);
        p
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        match e {
            Error::BadRequest(detail) => Problem::new(
                StatusCode::BAD_REQUEST,
                "urn:herald:problem:malformed",
                "Malformed request",
                detail,
            ),
            Error::Validation(errors) => {
                let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                let detail = format!("invalid field(s): {}", names.join(", "));
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "urn:herald:problem:validation",
                    "Invalid request",
                    detail,
                );
                p.errors = errors;
                p
            }
            Error::Unauthorized => {
                let mut p = Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "urn:herald:problem:unauthorized",
                    "Unauthorized",
                    "send a valid API key as `Authorization: Bearer <key>`",
                );
                p.www_authenticate = true;
                p
            }
            Error::Forbidden(f) => {
                let crate::error::Forbidden { detail, errors } = *f;
                let mut p = Problem::new(
                    StatusCode::FORBIDDEN,
                    "urn:herald:problem:forbidden",
                    "Forbidden",
                    detail,
                );
                p.errors = errors;
                p
            }
            Error::NotFound(what) => Problem::new(
                StatusCode::NOT_FOUND,
                "urn:herald:problem:not-found",
                "Not found",
                format!("no such {what}"),
            ),
            Error::Conflict(detail) => Problem::new(
                StatusCode::CONFLICT,
                "urn:herald:problem:conflict",
                "Conflict",
                detail,
            ),
            Error::InFlight(secs) => {
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "urn:herald:problem:in-flight",
                    "Event still being queued",
                    format!(
                        "an earlier post of this event id has not finished queueing it; retry in \
                         {secs} s (it is then either queued, and answered `duplicate`, or taken over)"
                    ),
                );
                p.retry_after = Some(secs);
                p
            }
            Error::EventTooLarge { size, limit } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "urn:herald:problem:too-large",
                "Payload too large",
                format!(
                    "the event is {size} bytes once serialized (numbers are written out in full, \
                     strings escaped), at most {limit}: send less data"
                ),
            ),
            Error::Refused(what) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "urn:herald:problem:refused",
                "Refused by storage",
                format!(
                    "{what} refused this request as it is, so retrying cannot succeed: check its \
                     sizes and characters"
                ),
            ),
            // Internal details stay in the logs; the caller learns it may retry.
            Error::Store(_) | Error::Queue(_) => {
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "urn:herald:problem:unavailable",
                    "Service unavailable",
                    "storage is temporarily unavailable; nothing was saved, retry shortly",
                );
                p.retry_after = Some(5);
                p
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).expect("problems serialize");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

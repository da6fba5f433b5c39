//! The JSON body extractor: content type, size and syntax errors all become problems.

use crate::error::Error;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

pub struct JsonBody(pub Value);

fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json);
        if !json {
            return Err(Error::UnsupportedMediaType);
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(64 * 1024);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| Error::PayloadTooLarge(limit))?;
        if bytes.len() > limit {
            return Err(Error::PayloadTooLarge(limit));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Error::BadRequest(format!("the body is not valid JSON: {e}")))
    }
}

/// A JSON body that may be absent: no body (and no Content-Type) reads as `{}`.
pub struct OptionalJsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_type = req.headers().contains_key(CONTENT_TYPE);
        let has_body = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|l| l != "0");
        if !has_type {
            let limit = req
                .extensions()
                .get::<BodyLimit>()
                .map(|l| l.0)
                .unwrap_or(64 * 1024);
            let bytes = Bytes::from_request(req, state)
                .await
                .map_err(|_| Error::PayloadTooLarge(limit))?;
            if bytes.is_empty() || !has_body {
                return Ok(OptionalJsonBody(Value::Object(Default::default())));
            }
            return Err(Error::UnsupportedMediaType);
        }
        JsonBody::from_request(req, state)
            .await
            .map(|JsonBody(v)| OptionalJsonBody(v))
    }
}

/// The body limit of a router, set as an extension so errors can quote it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

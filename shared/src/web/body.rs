//! The JSON body extractors: content type, size and syntax errors all become problems.

use super::problem::Problem;
use crate::error::Error;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

/// The body limit of a router, set as an extension so errors can quote it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub struct JsonBody(pub Value);

/// A JSON body that may be absent: no body (and no Content-Type) reads as `{}`.
pub struct OptionalJsonBody(pub Value);

fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Reads the body up to the router's limit.
async fn read_limited<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Problem> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map(|l| l.0)
        .unwrap_or(64 * 1024);
    match Bytes::from_request(req, state).await {
        Ok(bytes) if bytes.len() <= limit => Ok(bytes),
        _ => Err(Problem::payload_too_large(limit)),
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json);
        if !json {
            return Err(Problem::unsupported_media_type());
        }
        let bytes = read_limited(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Error::BadRequest(format!("the body is not valid JSON: {e}")).into())
    }
}

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.headers().contains_key(CONTENT_TYPE) {
            return JsonBody::from_request(req, state)
                .await
                .map(|JsonBody(v)| OptionalJsonBody(v));
        }
        if read_limited(req, state).await?.is_empty() {
            Ok(OptionalJsonBody(Value::Object(Default::default())))
        } else {
            Err(Problem::unsupported_media_type())
        }
    }
}

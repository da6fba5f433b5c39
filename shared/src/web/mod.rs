//! The axum routers. The same router serves in Lambda (through lambda_http) and in `herald dev`.

pub mod auth;
pub mod body;
pub mod console;
pub mod openapi;
pub mod problem;
mod routes;

use crate::error::Error;
use crate::service::api::{DeliveryView, NewKey, NewTenant, RecoveryView, StatsView, TestResult};
use crate::service::ingest::{Accepted, PostStatus};
use crate::service::{Api, Ingest};
use crate::webhook::WebhookView;
use auth::{need, Admin, Auth, Caller};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use body::{BodyLimit, JsonBody, OptionalJsonBody};
use problem::Problem;
use routes::{deliveries::*, events::*, keys::*, meta::*, webhooks::*};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Request header limits: generous for any real client, small enough that a flood of headers
/// costs little before it is refused.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
pub const MAX_HEADERS_TOTAL_BYTES: usize = 32 * 1024;

/// Ingest takes events up to 256 KiB (SPEC §2); the management API far less.
pub const INGEST_BODY_LIMIT: usize = 256 * 1024;
pub const API_BODY_LIMIT: usize = 64 * 1024;

/// The ingest routes' state: authentication and ingest.
#[derive(Clone)]
pub struct IngestState {
    pub auth: Auth,
    pub ingest: Arc<Ingest>,
}

/// The management routes' state: authentication and the management API.
#[derive(Clone)]
pub struct ApiState {
    pub auth: Auth,
    pub api: Arc<Api>,
}

impl AsRef<Auth> for IngestState {
    fn as_ref(&self) -> &Auth {
        &self.auth
    }
}

impl AsRef<Auth> for ApiState {
    fn as_ref(&self) -> &Auth {
        &self.auth
    }
}

/// The routes of the ingest function: `/v1/events*`.
pub fn ingest_router(state: IngestState) -> Router {
    with_fallbacks(ingest_routes().with_state(state))
}

/// The routes of the api function: everything but `/v1/events*`, and the web console at `/`.
pub fn api_router(state: ApiState) -> Router {
    with_fallbacks(api_routes().with_state(state))
}

/// Both, as the local stack serves them.
pub fn router(ingest: IngestState, api: ApiState) -> Router {
    with_fallbacks(
        ingest_routes()
            .with_state(ingest)
            .merge(api_routes().with_state(api)),
    )
}

fn with_fallbacks(routes: Router) -> Router {
    routes
        .fallback(|| async { Problem::not_found() })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(axum::middleware::from_fn(limit_headers))
        .layer(axum::middleware::from_fn(access_log))
}

/// One span per request, and one log line when it is answered: method, path, status, time,
/// and the tenant once a key is checked (the auth extractor records it into this span). In
/// Lambda the runtime's own span adds the invocation's request id to every line. Headers and
/// bodies are never logged: they carry keys, secrets and protected header values.
async fn access_log(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        tenant_id = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "request answered"
        )
    });
    response
}

/// Refuses requests with too many or too large headers (431) before any handler runs.
async fn limit_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let headers = req.headers();
    let mut total = 0;
    for (name, value) in headers {
        let size = name.as_str().len() + value.len();
        if size > MAX_HEADER_BYTES {
            return Problem::headers_too_large(format!(
                "`{name}` is over {MAX_HEADER_BYTES} bytes"
            ))
            .into_response();
        }
        total += size;
    }
    if headers.len() > MAX_HEADERS {
        return Problem::headers_too_large(format!(
            "{} headers, at most {MAX_HEADERS}",
            headers.len()
        ))
        .into_response();
    }
    if total > MAX_HEADERS_TOTAL_BYTES {
        return Problem::headers_too_large(format!(
            "{total} bytes of headers, at most {MAX_HEADERS_TOTAL_BYTES}"
        ))
        .into_response();
    }
    next.run(req).await
}

fn limited<S: Clone + Send + Sync + 'static>(router: Router<S>, limit: usize) -> Router<S> {
    router
        .layer(DefaultBodyLimit::max(limit))
        .layer(Extension(BodyLimit(limit)))
}

fn ingest_routes() -> Router<IngestState> {
    limited(
        Router::new()
            .route("/v1/events", post(post_event))
            .route("/v1/events/batch", post(post_batch)),
        INGEST_BODY_LIMIT,
    )
}

fn api_routes() -> Router<ApiState> {
    limited(
        Router::new()
            .route("/v1/health", get(health))
            .route("/v1/openapi.json", get(openapi_json))
            .route("/v1/event-types", get(event_types))
            .route("/v1/webhooks", post(create_webhook).get(list_webhooks))
            .route("/v1/webhooks/test", post(test_unsaved))
            .route(
                "/v1/webhooks/{id}",
                get(get_webhook)
                    .put(replace_webhook)
                    .patch(patch_webhook)
                    .delete(delete_webhook),
            )
            .route("/v1/webhooks/{id}/secret", get(get_secret))
            .route("/v1/webhooks/{id}/secret/rotate", post(rotate_secret))
            .route("/v1/webhooks/{id}/test", post(test_webhook))
            .route("/v1/webhooks/{id}/deliveries", get(list_deliveries))
            .route("/v1/webhooks/{id}/stats", get(webhook_stats))
            .route("/v1/deliveries/{id}", get(get_delivery))
            .route("/v1/deliveries/{id}/redeliver", post(redeliver))
            .route("/v1/webhooks/{id}/recover", post(recover))
            .route("/v1/recoveries/{id}", get(get_recovery))
            .route("/v1/tenants", post(create_tenant))
            .route("/v1/keys", post(create_key).get(list_keys))
            .route("/v1/keys/{id}", delete(delete_key)),
        API_BODY_LIMIT,
    )
    .merge(console::routes())
}

/// A path id; a malformed path is a 400 problem, not axum's plain-text rejection. An id longer
/// than any Herald makes ([`MAX_ID_LEN`]) names nothing: it is a 404 before any store call,
/// where DynamoDB would refuse a key that long.
pub struct Id(pub String);

/// Herald's ids are a prefix and a ULID or a hash (`wh_` and 26 characters, `dl_` and 52).
pub const MAX_ID_LEN: usize = 64;

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e: PathRejection| Error::BadRequest(format!("invalid path: {e}")))?;
        if id.len() > MAX_ID_LEN {
            let path = parts.uri.path();
            return Err(Error::NotFound(if path.starts_with("/v1/deliveries/") {
                "delivery"
            } else if path.starts_with("/v1/recoveries/") {
                "recovery"
            } else if path.starts_with("/v1/keys/") {
                "key"
            } else {
                "webhook"
            }));
        }
        Ok(Id(id))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of the delivery log: [`ListParams`] and a status to filter by.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListParams {
    /// Items per page, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only deliveries in this status. A page reads at most 500 deliveries of the log, so it
    /// may hold fewer than `limit` (none, even) and still have a `next_cursor`.
    #[param(value_type = Option<crate::delivery::DeliveryStatus>)]
    status: Option<String>,
}

fn list_params<P>(params: Result<Query<P>, QueryRejection>) -> Result<P, Error> {
    params
        .map(|Query(p)| p)
        .map_err(|e| Error::BadRequest(format!("invalid query string: {e}")))
}

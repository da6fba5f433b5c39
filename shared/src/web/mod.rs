//! The axum routers. The same router serves in Lambda (through lambda_http) and in `herald dev`.

pub mod auth;
pub mod body;
pub mod console;
pub mod openapi;
pub mod problem;

use crate::error::Error;
use crate::service::api::{DeliveryView, NewKey, NewTenant, TestResult};
use crate::service::ingest::{Accepted, Outcome};
use crate::service::{Api, Ingest};
use crate::store::Store;
use crate::webhook::WebhookView;
use auth::{need, Admin, Caller};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use body::{BodyLimit, JsonBody, OptionalJsonBody};
use problem::Problem;
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

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub ingest: Arc<Ingest>,
    pub api: Arc<Api>,
    pub admin_key: Option<crate::secret::Secret>,
    pub limiter: Option<Arc<auth::TenantLimiter>>,
}

/// The routes of the ingest function: `/v1/events*`.
pub fn ingest_router(state: AppState) -> Router {
    with_fallbacks(ingest_routes()).with_state(state)
}

/// The routes of the api function: everything but `/v1/events*`, and the web console at `/`.
pub fn api_router(state: AppState) -> Router {
    with_fallbacks(api_routes()).with_state(state)
}

/// Both, as the local stack serves them.
pub fn router(state: AppState) -> Router {
    with_fallbacks(ingest_routes().merge(api_routes())).with_state(state)
}

fn with_fallbacks(routes: Router<AppState>) -> Router<AppState> {
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
            return Error::HeadersTooLarge(format!("`{name}` is over {MAX_HEADER_BYTES} bytes"))
                .into_response();
        }
        total += size;
    }
    if headers.len() > MAX_HEADERS {
        return Error::HeadersTooLarge(format!("{} headers, at most {MAX_HEADERS}", headers.len()))
            .into_response();
    }
    if total > MAX_HEADERS_TOTAL_BYTES {
        return Error::HeadersTooLarge(format!(
            "{total} bytes of headers, at most {MAX_HEADERS_TOTAL_BYTES}"
        ))
        .into_response();
    }
    next.run(req).await
}

fn limited(router: Router<AppState>, limit: usize) -> Router<AppState> {
    router
        .layer(DefaultBodyLimit::max(limit))
        .layer(Extension(BodyLimit(limit)))
}

fn ingest_routes() -> Router<AppState> {
    limited(
        Router::new()
            .route("/v1/events", post(post_event))
            .route("/v1/events/batch", post(post_batch)),
        INGEST_BODY_LIMIT,
    )
}

fn api_routes() -> Router<AppState> {
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
            .route("/v1/deliveries/{id}", get(get_delivery))
            .route("/v1/deliveries/{id}/redeliver", post(redeliver))
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

/// Herald's ids are a prefix and a ULID or a hash (`wh_` and 26 characters, `dl_` and 26).
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

fn list_params(params: Result<Query<ListParams>, QueryRejection>) -> Result<ListParams, Error> {
    params
        .map(|Query(p)| p)
        .map_err(|e| Error::BadRequest(format!("invalid query string: {e}")))
}

#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = openapi::EventInput,
    security(("bearer" = ["ingest"])),
    responses((status = 202, description = "Accepted and queued", body = Accepted),
              (status = 200, description = "The same id was accepted within 24 h: not delivered again", body = Accepted),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 413, response = openapi::TooLarge), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid), (status = 503, response = openapi::Unavailable)))]
async fn post_event(
    State(state): State<AppState>,
    caller: Caller<need::Ingest>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    let accepted = state.ingest.accept(&caller.tenant_id, &body).await?;
    let status = match accepted.status {
        Outcome::Accepted => StatusCode::ACCEPTED,
        Outcome::Duplicate => StatusCode::OK,
    };
    Ok((status, Json(accepted)).into_response())
}

#[utoipa::path(post, path = "/v1/events/batch", tag = "events", request_body = openapi::BatchInput,
    security(("bearer" = ["ingest"])),
    responses((status = 200, description = "One result per event, in order", body = openapi::BatchAnswer),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 413, response = openapi::TooLarge), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid)))]
async fn post_batch(
    State(state): State<AppState>,
    caller: Caller<need::Ingest>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    let items = state.ingest.accept_batch(&caller.tenant_id, &body).await?;
    Ok(Json(json!({ "data": items })).into_response())
}

#[utoipa::path(get, path = "/v1/health", tag = "meta", security(()),
    responses((status = 200, description = "The service answers", body = openapi::Health)))]
async fn health() -> Response {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})).into_response()
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::COMMITTED,
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/event-types", tag = "meta",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The event catalog and subscription patterns", body = openapi::EventTypes),
              (status = 401, response = openapi::Unauthorized)))]
async fn event_types(State(state): State<AppState>, _caller: Caller<need::Read>) -> Response {
    Json(state.api.event_types()).into_response()
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = openapi::WebhookInput,
    security(("bearer" = ["manage"])),
    responses((status = 201, description = "Created; `secret` is shown in this answer only", body = WebhookView,
               headers(("location" = String, description = "The webhook's URL"))),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 409, response = openapi::Conflict), (status = 413, response = openapi::TooLarge),
              (status = 415, response = openapi::MediaType), (status = 422, response = openapi::Invalid)))]
async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller<need::Manage>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    let webhook = state.api.create_webhook(&caller.tenant_id, &body).await?;
    let location = format!("/v1/webhooks/{}", webhook.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(webhook),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(ListParams),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "A page of webhooks, oldest first", body = openapi::WebhookList),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 422, response = openapi::Invalid)))]
async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller<need::Read>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, Error> {
    let params = list_params(params)?;
    let listing = state
        .api
        .list_webhooks(
            &caller.tenant_id,
            params.limit.as_deref(),
            params.cursor.as_deref(),
        )
        .await?;
    Ok(Json(listing).into_response())
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The webhook", body = WebhookView),
              (status = 401, response = openapi::Unauthorized), (status = 404, response = openapi::NotFound)))]
async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller<need::Read>,
    Id(id): Id,
) -> Result<Response, Error> {
    Ok(Json(state.api.get_webhook(&caller.tenant_id, &id).await?).into_response())
}

#[utoipa::path(put, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = ["manage"])),
    request_body(content = openapi::WebhookInput, description = "Replaces every field; a protected header sent without `value` keeps its stored value"),
    responses((status = 200, description = "The updated webhook", body = WebhookView),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 413, response = openapi::TooLarge),
              (status = 415, response = openapi::MediaType), (status = 422, response = openapi::Invalid)))]
async fn replace_webhook(
    State(state): State<AppState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    Ok(Json(
        state
            .api
            .replace_webhook(&caller.tenant_id, &id, &body)
            .await?,
    )
    .into_response())
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = ["manage"])),
    request_body(content = openapi::WebhookPatch, description = "A JSON merge patch (RFC 7396); `{\"enabled\": true}` re-enables and clears `disabled_reason`"),
    responses((status = 200, description = "The updated webhook", body = WebhookView),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 413, response = openapi::TooLarge),
              (status = 415, response = openapi::MediaType), (status = 422, response = openapi::Invalid)))]
async fn patch_webhook(
    State(state): State<AppState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    Ok(Json(
        state
            .api
            .patch_webhook(&caller.tenant_id, &id, &body)
            .await?,
    )
    .into_response())
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = ["manage"])),
    responses((status = 204, description = "Deleted"),
              (status = 401, response = openapi::Unauthorized), (status = 404, response = openapi::NotFound)))]
async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
) -> Result<Response, Error> {
    state.api.delete_webhook(&caller.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/secret", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = ["manage"])),
    responses((status = 200, description = "The current signing secret", body = openapi::SecretAnswer),
              (status = 401, response = openapi::Unauthorized), (status = 404, response = openapi::NotFound)))]
async fn get_secret(
    State(state): State<AppState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
) -> Result<Response, Error> {
    let secret = state.api.secret(&caller.tenant_id, &id).await?;
    Ok(Json(json!({"secret": secret.expose()})).into_response())
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/secret/rotate", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = ["manage"])),
    responses((status = 200, description = "The new secret; the previous one keeps signing for 24 h", body = openapi::SecretAnswer),
              (status = 401, response = openapi::Unauthorized), (status = 404, response = openapi::NotFound)))]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
) -> Result<Response, Error> {
    let secret = state.api.rotate_secret(&caller.tenant_id, &id).await?;
    Ok(Json(json!({"secret": secret.expose()})).into_response())
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = ["manage"])),
    request_body(content = Option<openapi::TestInput>, description = "Optional; the event type to send (default: the webhook's first)"),
    responses((status = 200, description = "What the receiver did", body = TestResult),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid)))]
async fn test_webhook(
    State(state): State<AppState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, Error> {
    Ok(Json(
        state
            .api
            .test_webhook(&caller.tenant_id, &id, &body)
            .await?,
    )
    .into_response())
}

#[utoipa::path(post, path = "/v1/webhooks/test", tag = "webhooks", request_body = openapi::UnsavedTestInput,
    security(("bearer" = ["manage"])),
    responses((status = 200, description = "What the receiver did", body = TestResult),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 413, response = openapi::TooLarge), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid)))]
async fn test_unsaved(
    State(state): State<AppState>,
    caller: Caller<need::Manage>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    Ok(Json(state.api.test_unsaved(&caller.tenant_id, &body).await?).into_response())
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "deliveries", params(("id" = String, Path), ListParams),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "A page of the webhook's deliveries, newest first", body = openapi::DeliveryList),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 422, response = openapi::Invalid)))]
async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller<need::Read>,
    Id(id): Id,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, Error> {
    let params = list_params(params)?;
    let listing = state
        .api
        .list_deliveries(
            &caller.tenant_id,
            &id,
            params.limit.as_deref(),
            params.cursor.as_deref(),
        )
        .await?;
    Ok(Json(listing).into_response())
}

#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "deliveries", params(("id" = String, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The delivery with its attempts", body = DeliveryView),
              (status = 401, response = openapi::Unauthorized), (status = 404, response = openapi::NotFound)))]
async fn get_delivery(
    State(state): State<AppState>,
    caller: Caller<need::Read>,
    Id(id): Id,
) -> Result<Response, Error> {
    let delivery = state.api.get_delivery(&caller.tenant_id, &id).await?;
    Ok(Json(DeliveryView::from(&delivery)).into_response())
}

#[utoipa::path(post, path = "/v1/deliveries/{id}/redeliver", tag = "deliveries", params(("id" = String, Path)),
    security(("bearer" = ["manage"])),
    responses((status = 202, description = "A new attempt is queued", body = DeliveryView),
              (status = 401, response = openapi::Unauthorized), (status = 404, response = openapi::NotFound),
              (status = 409, response = openapi::Conflict), (status = 503, response = openapi::Unavailable)))]
async fn redeliver(
    State(state): State<AppState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
) -> Result<Response, Error> {
    let delivery = state.api.redeliver(&caller.tenant_id, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::from(&delivery))).into_response())
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = openapi::TenantInput,
    security(("admin" = [])),
    responses((status = 201, description = "The tenant and its first key, shown once", body = NewTenant),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid)))]
async fn create_tenant(
    State(state): State<AppState>,
    _admin: Admin,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    Ok((
        StatusCode::CREATED,
        Json(state.api.create_tenant(&body).await?),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(ListParams),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "A page of the tenant's keys, oldest first: never a key or its hash", body = openapi::KeyList),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 422, response = openapi::Invalid)))]
async fn list_keys(
    State(state): State<AppState>,
    caller: Caller<need::Admin>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, Error> {
    let params = list_params(params)?;
    let listing = state
        .api
        .list_keys(
            &caller.tenant_id,
            params.limit.as_deref(),
            params.cursor.as_deref(),
        )
        .await?;
    Ok(Json(listing).into_response())
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys",
    security(("bearer" = ["admin"])),
    request_body(content = Option<openapi::KeyInput>, description = "Optional; without `scopes` the new key gets the scopes of the key asking"),
    responses((status = 201, description = "A new key for the caller's tenant, shown once", body = NewKey),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 403, description = "The key lacks `admin`, or asked for scopes beyond its own (`errors` names `scopes`)", body = Problem, content_type = "application/problem+json"),
              (status = 413, response = openapi::TooLarge), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid)))]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller<need::Admin>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, Error> {
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .api
                .create_key(&caller.tenant_id, caller.scopes, &body)
                .await?,
        ),
    )
        .into_response())
}

#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204, description = "Revoked"),
              (status = 401, response = openapi::Unauthorized),
              (status = 403, description = "The key lacks `admin`, or the key to revoke holds scopes it lacks", body = Problem, content_type = "application/problem+json"),
              (status = 404, response = openapi::NotFound)))]
async fn delete_key(
    State(state): State<AppState>,
    caller: Caller<need::Admin>,
    Id(id): Id,
) -> Result<Response, Error> {
    state
        .api
        .delete_key(&caller.tenant_id, caller.scopes, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

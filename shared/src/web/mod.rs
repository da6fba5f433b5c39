//! The axum routers. The same router serves in Lambda (through lambda_http) and in `herald dev`.

pub mod auth;
pub mod body;
pub mod problem;

use crate::error::Error;
use crate::service::ingest::Outcome;
use crate::service::{Api, Ingest};
use crate::store::Store;
use auth::Caller;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use body::{BodyLimit, JsonBody};
use problem::Problem;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Ingest takes events up to 256 KiB (SPEC §2); the management API far less.
pub const INGEST_BODY_LIMIT: usize = 256 * 1024;
pub const API_BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub ingest: Arc<Ingest>,
    pub api: Arc<Api>,
}

/// The routes of the ingest function: `/v1/events*`.
pub fn ingest_router(state: AppState) -> Router {
    with_fallbacks(ingest_routes()).with_state(state)
}

/// The routes of the api function: everything but `/v1/events*`.
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
            .route("/v1/event-types", get(event_types))
            .route("/v1/webhooks", post(create_webhook).get(list_webhooks))
            .route("/v1/webhooks/{id}", get(get_webhook).delete(delete_webhook)),
        API_BODY_LIMIT,
    )
}

async fn post_event(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    let accepted = state.ingest.accept(&caller.tenant_id, &body).await?;
    let status = match accepted.status {
        Outcome::Accepted => StatusCode::ACCEPTED,
        Outcome::Duplicate => StatusCode::OK,
    };
    Ok((status, Json(accepted)).into_response())
}

async fn post_batch(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    let items = state.ingest.accept_batch(&caller.tenant_id, &body).await?;
    Ok(Json(json!({ "data": items })).into_response())
}

async fn health() -> Response {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})).into_response()
}

async fn event_types(State(state): State<AppState>, _caller: Caller) -> Response {
    Json(state.api.event_types()).into_response()
}

async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
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

#[derive(Deserialize)]
struct ListParams {
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Error> {
    let Query(params) =
        params.map_err(|e| Error::BadRequest(format!("invalid query string: {e}")))?;
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

async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    Ok(Json(state.api.get_webhook(&caller.tenant_id, &id).await?).into_response())
}

async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    state.api.delete_webhook(&caller.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

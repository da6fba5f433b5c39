//! Health, the OpenAPI document and the event catalog.

use super::super::*;

#[utoipa::path(get, path = "/v1/health", tag = "meta", security(()),
    responses((status = 200, description = "The service answers", body = openapi::Health)))]
pub(crate) async fn health() -> Response {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})).into_response()
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi_json() -> Response {
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
pub(crate) async fn event_types(
    State(state): State<ApiState>,
    _caller: Caller<need::Read>,
) -> Response {
    Json(state.api.event_types()).into_response()
}

//! Webhooks, their secrets and test sends.

use super::super::*;

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = ref("#/components/schemas/WebhookInput"),
    security(("bearer" = ["manage"])),
    responses((status = 201, description = "Created; `secret` is shown in this answer only", body = WebhookView,
               headers(("location" = String, description = "The webhook's URL"))),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 409, response = openapi::Conflict), (status = 413, response = openapi::TooLarge),
              (status = 415, response = openapi::MediaType), (status = 422, response = openapi::Invalid)))]
pub(crate) async fn create_webhook(
    State(state): State<ApiState>,
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
pub(crate) async fn list_webhooks(
    State(state): State<ApiState>,
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
pub(crate) async fn get_webhook(
    State(state): State<ApiState>,
    caller: Caller<need::Read>,
    Id(id): Id,
) -> Result<Response, Error> {
    Ok(Json(state.api.get_webhook(&caller.tenant_id, &id).await?).into_response())
}

/// The window of `GET /v1/webhooks/{id}/stats`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// `24h` (default) or `7d`.
    #[param(value_type = Option<String>, pattern = "^(24h|7d)$")]
    window: Option<String>,
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/stats", tag = "webhooks", params(("id" = String, Path), StatsParams),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The webhook's attempts by outcome per hour over the window, and its success rate", body = StatsView),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 422, response = openapi::Invalid)))]
pub(crate) async fn webhook_stats(
    State(state): State<ApiState>,
    caller: Caller<need::Read>,
    Id(id): Id,
    params: Result<Query<StatsParams>, QueryRejection>,
) -> Result<Response, Error> {
    let params = list_params(params)?;
    let stats = state
        .api
        .webhook_stats(&caller.tenant_id, &id, params.window.as_deref())
        .await?;
    Ok(Json(stats).into_response())
}

#[utoipa::path(put, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = ["manage"])),
    request_body(content = ref("#/components/schemas/WebhookInput"), description = "Replaces every field; a protected header sent without `value` keeps its stored value"),
    responses((status = 200, description = "The updated webhook", body = WebhookView),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 413, response = openapi::TooLarge),
              (status = 415, response = openapi::MediaType), (status = 422, response = openapi::Invalid)))]
pub(crate) async fn replace_webhook(
    State(state): State<ApiState>,
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
    request_body(content = ref("#/components/schemas/WebhookPatch"), description = "A JSON merge patch (RFC 7396); `{\"enabled\": true}` re-enables and clears `disabled_reason`; with `\"recover\": true` it also starts the recovery of every delivery the webhook held"),
    responses((status = 200, description = "The updated webhook; with `recover`, its `recovery` job (RecoveryView) beside its fields", body = WebhookView),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 409, response = openapi::Conflict),
              (status = 413, response = openapi::TooLarge),
              (status = 415, response = openapi::MediaType), (status = 422, response = openapi::Invalid)))]
pub(crate) async fn patch_webhook(
    State(state): State<ApiState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    let (webhook, recovery) = state
        .api
        .patch_webhook_recovering(&caller.tenant_id, &id, &body)
        .await?;
    let Some(recovery) = recovery else {
        return Ok(Json(webhook).into_response());
    };
    let mut answer = serde_json::to_value(webhook).expect("views serialize");
    answer["recovery"] =
        serde_json::to_value(RecoveryView::from(&recovery)).expect("views serialize");
    Ok(Json(answer).into_response())
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = ["manage"])),
    responses((status = 204, description = "Deleted"),
              (status = 401, response = openapi::Unauthorized), (status = 404, response = openapi::NotFound)))]
pub(crate) async fn delete_webhook(
    State(state): State<ApiState>,
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
pub(crate) async fn get_secret(
    State(state): State<ApiState>,
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
pub(crate) async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
) -> Result<Response, Error> {
    let secret = state.api.rotate_secret(&caller.tenant_id, &id).await?;
    Ok(Json(json!({"secret": secret.expose()})).into_response())
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = ["manage"])),
    request_body(content = ref("#/components/schemas/TestInput"), description = "Optional; the event type to send (default: the webhook's first)"),
    responses((status = 200, description = "What the receiver did", body = TestResult),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid)))]
pub(crate) async fn test_webhook(
    State(state): State<ApiState>,
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

#[utoipa::path(post, path = "/v1/webhooks/test", tag = "webhooks", request_body = ref("#/components/schemas/UnsavedTestInput"),
    security(("bearer" = ["manage"])),
    responses((status = 200, description = "What the receiver did", body = TestResult),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 413, response = openapi::TooLarge), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid)))]
pub(crate) async fn test_unsaved(
    State(state): State<ApiState>,
    caller: Caller<need::Manage>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    Ok(Json(state.api.test_unsaved(&caller.tenant_id, &body).await?).into_response())
}

//! Tenants (the admin key) and API keys.

use super::super::*;

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = ref("#/components/schemas/TenantInput"),
    security(("admin" = [])),
    responses((status = 201, description = "The tenant and its first key, shown once", body = NewTenant),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid)))]
pub(crate) async fn create_tenant(
    State(state): State<ApiState>,
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
pub(crate) async fn list_keys(
    State(state): State<ApiState>,
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
    request_body(content = ref("#/components/schemas/KeyInput"), description = "Optional; without `scopes` the new key gets the scopes of the key asking"),
    responses((status = 201, description = "A new key for the caller's tenant, shown once", body = NewKey),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 403, description = "The key lacks `admin`, or asked for scopes beyond its own (`errors` names `scopes`)", body = Problem, content_type = "application/problem+json"),
              (status = 413, response = openapi::TooLarge), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid)))]
pub(crate) async fn create_key(
    State(state): State<ApiState>,
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
pub(crate) async fn delete_key(
    State(state): State<ApiState>,
    caller: Caller<need::Admin>,
    Id(id): Id,
) -> Result<Response, Error> {
    state
        .api
        .delete_key(&caller.tenant_id, caller.scopes, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

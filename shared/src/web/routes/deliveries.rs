//! The delivery log, redelivery and recovery jobs.

use super::super::*;

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "deliveries", params(("id" = String, Path), DeliveryListParams),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "A page of the webhook's deliveries, newest first", body = openapi::DeliveryList),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 422, response = openapi::Invalid)))]
pub(crate) async fn list_deliveries(
    State(state): State<ApiState>,
    caller: Caller<need::Read>,
    Id(id): Id,
    params: Result<Query<DeliveryListParams>, QueryRejection>,
) -> Result<Response, Error> {
    let params = list_params(params)?;
    let listing = state
        .api
        .list_deliveries(
            &caller.tenant_id,
            &id,
            params.limit.as_deref(),
            params.cursor.as_deref(),
            params.status.as_deref(),
        )
        .await?;
    Ok(Json(listing).into_response())
}

#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "deliveries", params(("id" = String, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The delivery with its attempts", body = DeliveryView),
              (status = 401, response = openapi::Unauthorized), (status = 404, response = openapi::NotFound)))]
pub(crate) async fn get_delivery(
    State(state): State<ApiState>,
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
pub(crate) async fn redeliver(
    State(state): State<ApiState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
) -> Result<Response, Error> {
    let delivery = state.api.redeliver(&caller.tenant_id, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::from(&delivery))).into_response())
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/recover", tag = "deliveries", params(("id" = String, Path)),
    request_body = ref("#/components/schemas/RecoverInput"),
    security(("bearer" = ["manage"])),
    responses((status = 202, description = "A recovery job: a new attempt series for each delivery of the window it matches. Its first pages are done as it answers; `GET /v1/recoveries/{id}` follows the rest", body = RecoveryView,
               headers(("location" = String, description = "The job's URL"))),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 404, response = openapi::NotFound), (status = 409, response = openapi::Conflict),
              (status = 413, response = openapi::TooLarge), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid), (status = 503, response = openapi::Unavailable)))]
pub(crate) async fn recover(
    State(state): State<ApiState>,
    caller: Caller<need::Manage>,
    Id(id): Id,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    let job = state.api.recover(&caller.tenant_id, &id, &body).await?;
    let location = format!("/v1/recoveries/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(RecoveryView::from(&job)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/recoveries/{id}", tag = "deliveries", params(("id" = String, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The recovery job and its progress", body = RecoveryView),
              (status = 401, response = openapi::Unauthorized), (status = 404, response = openapi::NotFound)))]
pub(crate) async fn get_recovery(
    State(state): State<ApiState>,
    caller: Caller<need::Read>,
    Id(id): Id,
) -> Result<Response, Error> {
    let job = state.api.get_recovery(&caller.tenant_id, &id).await?;
    Ok(Json(RecoveryView::from(&job)).into_response())
}

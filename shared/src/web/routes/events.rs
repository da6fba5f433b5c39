//! Ingest: one event, or a batch.

use super::super::*;

#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = ref("#/components/schemas/EventInput"),
    security(("bearer" = ["ingest"])),
    responses((status = 202, description = "Accepted and queued", body = Accepted),
              (status = 200, description = "The same id was accepted within 24 h: not delivered again", body = Accepted),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 413, response = openapi::TooLarge), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid), (status = 503, response = openapi::Unavailable)))]
pub(crate) async fn post_event(
    State(state): State<IngestState>,
    caller: Caller<need::Ingest>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    let accepted = state.ingest.accept(&caller.tenant_id, &body).await?;
    let status = match accepted.status {
        PostStatus::Accepted => StatusCode::ACCEPTED,
        PostStatus::Duplicate => StatusCode::OK,
    };
    Ok((status, Json(accepted)).into_response())
}

#[utoipa::path(post, path = "/v1/events/batch", tag = "events", request_body = ref("#/components/schemas/BatchInput"),
    security(("bearer" = ["ingest"])),
    responses((status = 200, description = "One result per event, in order", body = openapi::BatchAnswer),
              (status = 400, response = openapi::Malformed), (status = 401, response = openapi::Unauthorized),
              (status = 413, response = openapi::TooLarge), (status = 415, response = openapi::MediaType),
              (status = 422, response = openapi::Invalid)))]
pub(crate) async fn post_batch(
    State(state): State<IngestState>,
    caller: Caller<need::Ingest>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    let items = state.ingest.accept_batch(&caller.tenant_id, &body).await?;
    Ok(Json(json!({ "data": items })).into_response())
}

//! The OpenAPI 3.1 document, generated from the handlers' annotations and the domain types.
//! Request bodies are validated by hand (for field-level errors), so their schemas are
//! described here by schema-only types; enumerations come from the catalog.

use crate::catalog;
use crate::delivery::{Attempt, DeliveryStatus};
use crate::error::FieldError;
use crate::event::{EnvironmentType, ObjectRef};
use crate::scope::Scope;
use crate::service::api::{DeliveryView, KeyView, NewKey, NewTenant, TestResult};
use crate::service::ingest::{Accepted, BatchItem, BatchStatus, PostStatus};
use crate::web::problem::Problem;
use crate::webhook::{Filters, HeaderView, Kind, ObjectFilter, WebhookView};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::OnceLock;
use time::OffsetDateTime;
use utoipa::{OpenApi, ToResponse, ToSchema};

/// An event as a platform posts it. Only `type` is required.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"type": "experiments.succeeded", "project": "Light detection",
    "object": {"kind": "experiment", "name": "cifar10"}, "data": {"accuracy": 0.93}}))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct EventInput {
    /// Idempotency key and Standard Webhooks message id; generated when absent.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_:-]+$")]
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    /// RFC 3339; default now.
    occurred_at: Option<OffsetDateTime>,
    #[schema(min_length = 1, max_length = 256)]
    project: Option<String>,
    environment_type: Option<EnvironmentType>,
    object: Option<ObjectRef>,
    #[schema(value_type = Option<Object>)]
    data: Option<Value>,
    /// Sent only to webhooks with `include_result`, and only if at most 16 KiB.
    #[schema(value_type = Option<Object>)]
    result: Option<Value>,
    /// A human description; generated from type, object and project when absent.
    #[schema(min_length = 1, max_length = 4096)]
    text: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct BatchInput {
    #[schema(min_items = 1, max_items = 100)]
    events: Vec<EventInput>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchAnswer {
    data: Vec<BatchItem>,
}

/// A header sent with every delivery. A protected value is write-only.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct HeaderInput {
    /// An HTTP token; not hop-by-hop, `Host`, `Content-Length`, `Content-Type` or `webhook-*`.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
    )]
    key: String,
    /// Omit it on PUT/PATCH to keep a stored protected value.
    #[schema(max_length = 4096, pattern = "^[\\x20-\\x7E\\t]*$")]
    value: Option<String>,
    protected: Option<bool>,
}

/// A webhook to create or replace. Only `url` and `events` are required.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"url": "http://localhost:9000/hooks", "events": ["experiments.done"], "kind": "slack",
    "filters": {"project_names": ["Light*"]}, "headers": [{"key": "Authorization", "value": "Token 123", "protected": true}]}))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct WebhookInput {
    /// `http(s)`, no credentials, a target the deployment's policy allows.
    #[schema(max_length = 2048, pattern = "^https?://")]
    url: String,
    #[schema(min_items = 1, max_items = 50)]
    events: Vec<String>,
    #[schema(min_length = 1, max_length = 128)]
    name: Option<String>,
    #[schema(max_length = 1024)]
    description: Option<String>,
    kind: Option<Kind>,
    filters: Option<Filters>,
    #[schema(max_items = 20)]
    headers: Option<Vec<HeaderInput>>,
    include_result: Option<bool>,
    enabled: Option<bool>,
    /// Up to 16 string labels (keys ≤ 64, values ≤ 256 characters). `herald apply` marks the
    /// webhooks it manages with `managed-by`.
    metadata: Option<std::collections::BTreeMap<String, String>>,
    /// A signing secret to use instead of a generated one: `whsec_` and the base64 of 24 to 64
    /// bytes. On update, a new secret signs beside the old one for 24 h. Never returned here.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/=]+$")]
    secret: Option<String>,
}

/// The fields to change (RFC 7396 merge patch).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct WebhookPatch {
    #[schema(max_length = 2048, pattern = "^https?://")]
    url: Option<String>,
    #[schema(min_items = 1, max_items = 50)]
    events: Option<Vec<String>>,
    #[schema(min_length = 1, max_length = 128)]
    name: Option<String>,
    #[schema(max_length = 1024)]
    description: Option<String>,
    kind: Option<Kind>,
    filters: Option<Filters>,
    #[schema(max_items = 20)]
    headers: Option<Vec<HeaderInput>>,
    include_result: Option<bool>,
    enabled: Option<bool>,
    /// Up to 16 string labels (keys ≤ 64, values ≤ 256 characters). `herald apply` marks the
    /// webhooks it manages with `managed-by`.
    metadata: Option<std::collections::BTreeMap<String, String>>,
    /// A signing secret to use instead of a generated one: `whsec_` and the base64 of 24 to 64
    /// bytes. On update, a new secret signs beside the old one for 24 h. Never returned here.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/=]+$")]
    secret: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct TestInput {
    event_type: Option<String>,
}

/// An unsaved webhook configuration (a create body) plus the event type to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UnsavedTestInput {
    /// `http(s)`, no credentials, a target the deployment's policy allows.
    #[schema(max_length = 2048, pattern = "^https?://")]
    url: String,
    #[schema(min_items = 1, max_items = 50)]
    events: Vec<String>,
    #[schema(min_length = 1, max_length = 128)]
    name: Option<String>,
    #[schema(max_length = 1024)]
    description: Option<String>,
    kind: Option<Kind>,
    filters: Option<Filters>,
    #[schema(max_items = 20)]
    headers: Option<Vec<HeaderInput>>,
    include_result: Option<bool>,
    enabled: Option<bool>,
    /// Up to 16 string labels (keys ≤ 64, values ≤ 256 characters). `herald apply` marks the
    /// webhooks it manages with `managed-by`.
    metadata: Option<std::collections::BTreeMap<String, String>>,
    /// A signing secret to use instead of a generated one: `whsec_` and the base64 of 24 to 64
    /// bytes. On update, a new secret signs beside the old one for 24 h. Never returned here.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/=]+$")]
    secret: Option<String>,
    event_type: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct TenantInput {
    #[schema(min_length = 1, max_length = 128)]
    name: String,
}

/// A key to create. Without `scopes` it gets those of the key asking; it can never get more.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct KeyInput {
    /// A label for people; default empty.
    #[schema(min_length = 1, max_length = 128)]
    name: Option<String>,
    #[schema(min_items = 1)]
    scopes: Option<Vec<Scope>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct KeyList {
    data: Vec<KeyView>,
    next_cursor: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct WebhookList {
    data: Vec<WebhookView>,
    next_cursor: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DeliveryList {
    data: Vec<DeliveryView>,
    next_cursor: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SecretAnswer {
    /// `whsec_` and the base64 of the HMAC key.
    secret: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Health {
    status: String,
    version: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventTypeInfo {
    #[schema(rename = "type")]
    event_type: String,
    resource: String,
    status: String,
    terminal: bool,
    description: String,
    #[schema(value_type = Object)]
    sample: Value,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PatternInfo {
    pattern: String,
    description: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventTypes {
    data: Vec<EventTypeInfo>,
    patterns: Vec<PatternInfo>,
}

macro_rules! problem_responses {
    ($($name:ident => $description:literal),* $(,)?) => {$(
        #[derive(ToResponse)]
        #[response(description = $description, content_type = "application/problem+json")]
        #[allow(dead_code)]
        pub struct $name(Problem);
    )*};
}

problem_responses! {
    Malformed => "The body is not JSON, or a query or path is malformed",
    Unauthorized => "Missing or invalid API key",
    Forbidden => "The key lacks the scope this operation needs (its `security` names it)",
    NotFound => "No such resource for this tenant",
    Conflict => "The request conflicts with the current state",
    TooLarge => "The body is larger than the route accepts",
    MediaType => "The body is not application/json",
    Invalid => "Invalid fields; `errors` names each one",
    Unavailable => "Storage or the queue is unavailable; retry",
    TooMany => "The tenant is over its request rate; retry after `Retry-After` seconds",
    HeadersTooLarge => "Too many request headers, or too large ones",
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald", description = "Webhook notifications for ML and deployment platforms."),
    paths(
        super::routes::events::post_event, super::routes::events::post_batch, super::routes::meta::health, super::routes::meta::openapi_json, super::routes::meta::event_types,
        super::routes::webhooks::create_webhook, super::routes::webhooks::list_webhooks, super::routes::webhooks::get_webhook, super::routes::webhooks::replace_webhook,
        super::routes::webhooks::patch_webhook, super::routes::webhooks::delete_webhook, super::routes::webhooks::get_secret, super::routes::webhooks::rotate_secret,
        super::routes::webhooks::test_webhook, super::routes::webhooks::test_unsaved, super::routes::deliveries::list_deliveries, super::routes::deliveries::get_delivery,
        super::routes::deliveries::redeliver, super::routes::keys::create_tenant, super::routes::keys::list_keys, super::routes::keys::create_key, super::routes::keys::delete_key,
    ),
    components(
        schemas(EventInput, BatchInput, BatchAnswer, HeaderInput, WebhookInput, WebhookPatch, TestInput,
            UnsavedTestInput, TenantInput, WebhookList, DeliveryList, SecretAnswer, Health, EventTypes,
            EventTypeInfo, PatternInfo, Accepted, PostStatus, BatchItem, BatchStatus, FieldError, Problem, WebhookView,
            HeaderView, Kind, Filters, ObjectFilter, EnvironmentType, ObjectRef, DeliveryView, Attempt,
            DeliveryStatus, TestResult, NewKey, NewTenant, KeyInput, KeyList, KeyView, Scope),
        responses(Malformed, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, MediaType, Invalid, Unavailable, TooMany, HeadersTooLarge),
    ),
    tags((name = "events", description = "Platforms post lifecycle events"),
         (name = "webhooks", description = "Subscriptions, secrets and test sends"),
         (name = "deliveries", description = "The delivery log and redelivery"),
         (name = "tenants", description = "Tenants (the operator's admin key)"),
         (name = "keys", description = "A tenant's API keys and their scopes"),
         (name = "meta", description = "Health, catalog and this document")),
)]
struct ApiDoc;

/// Fills in what the annotations cannot say: the catalog's enumerations, the version, and
/// the security schemes (tenant key by default, admin key where noted).
fn finish(mut doc: Value) -> Value {
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let schemas = &mut doc["components"]["schemas"];
    schemas["EventInput"]["properties"]["type"]["enum"] = json!(catalog::type_names());
    for name in ["WebhookInput", "UnsavedTestInput"] {
        schemas[name]["properties"]["events"]["items"]["enum"] = json!(catalog::valid_patterns());
    }
    schemas["WebhookPatch"]["properties"]["events"]["items"] =
        json!({"type": "string", "enum": catalog::valid_patterns()});
    for name in ["TestInput", "UnsavedTestInput"] {
        schemas[name]["properties"]["event_type"]["enum"] = json!(catalog::type_names());
    }
    // Every operation that takes a tenant key needs a scope (403 without it) and is rate
    // limited per tenant.
    for path in doc["paths"].as_object_mut().expect("paths").values_mut() {
        for operation in path.as_object_mut().expect("a path item").values_mut() {
            let keyed = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if keyed {
                operation["responses"]["429"] = json!({"$ref": "#/components/responses/TooMany"});
                let responses = operation["responses"].as_object_mut().expect("responses");
                responses
                    .entry("403")
                    .or_insert_with(|| json!({"$ref": "#/components/responses/Forbidden"}));
            }
            operation["responses"]["431"] =
                json!({"$ref": "#/components/responses/HeadersTooLarge"});
        }
    }
    // Links let clients and stateful testers follow a created webhook to its routes.
    let by_id = json!({"id": "$response.body#/id"});
    let mut links = serde_json::Map::new();
    for (name, operation) in [
        ("GetWebhook", "get_webhook"),
        ("ReplaceWebhook", "replace_webhook"),
        ("PatchWebhook", "patch_webhook"),
        ("DeleteWebhook", "delete_webhook"),
        ("GetSecret", "get_secret"),
        ("RotateSecret", "rotate_secret"),
        ("TestWebhook", "test_webhook"),
        ("ListDeliveries", "list_deliveries"),
    ] {
        links.insert(
            name.into(),
            json!({"operationId": operation, "parameters": by_id}),
        );
    }
    doc["paths"]["/v1/webhooks"]["post"]["responses"]["201"]["links"] = Value::Object(links);
    doc["paths"]["/v1/keys"]["post"]["responses"]["201"]["links"] =
        json!({"DeleteKey": {"operationId": "delete_key", "parameters": by_id}});
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "description": "A tenant API key. Each operation names the scope it needs: `ingest` (posting events), `read` (GET routes), `manage` (changing webhooks and deliveries, secrets) or `admin` (keys)"},
        "admin": {"type": "http", "scheme": "bearer", "description": "HERALD_ADMIN_KEY"}
    });
    doc["security"] = json!([{"bearer": []}]);
    doc
}

/// The committed `openapi.json`, which `/v1/openapi.json` serves: the functions carry the text,
/// not utoipa's generator. `committed_openapi_json_is_current` holds it equal to `document()`.
pub const COMMITTED: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json"));

/// The document generated from the code, as `herald openapi` prints it (`make openapi` commits
/// it as `openapi.json`).
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
        let mut text = serde_json::to_string_pretty(&finish(doc)).expect("JSON serializes");
        text.push('\n');
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_openapi_json_is_current() {
        assert!(
            COMMITTED == document(),
            "openapi.json differs from the code's document: run `make openapi` and commit it"
        );
    }

    #[test]
    fn every_route_is_documented() {
        let doc: Value = serde_json::from_str(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(operations, 22);
        assert_eq!(
            paths["/v1/health"]["get"]["security"],
            json!([{}]),
            "health needs no key"
        );
        for (path, method, scope) in [
            ("/v1/events", "post", "ingest"),
            ("/v1/webhooks", "get", "read"),
            ("/v1/webhooks/{id}/secret", "get", "manage"),
            ("/v1/keys", "get", "admin"),
        ] {
            let operation = &paths[path][method];
            assert_eq!(
                operation["security"],
                json!([{"bearer": [scope]}]),
                "{method} {path}"
            );
            assert!(operation["responses"]["403"].is_object(), "{method} {path}");
        }
        assert_eq!(
            doc["components"]["schemas"]["EventInput"]["properties"]["type"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            23
        );
    }
}

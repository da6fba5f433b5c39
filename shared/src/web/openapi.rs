//! The OpenAPI 3.1 document, generated from the handlers' annotations and the domain types.
//! Request bodies are validated field by field (for field-level errors): their schemas are the
//! ones the validators' readers describe (`Event::schema`, `WebhookSpec::schema`), put among
//! the components here; answers are described by the types that serialize them.

use crate::catalog;
use crate::delivery::{Attempt, DeliveryStatus};
use crate::error::FieldError;
use crate::event::{EnvironmentType, Event};
use crate::fields::{nullable, NOT_BLANK};
use crate::recovery::RecoveryState;
use crate::scope::Scope;
use crate::service::api::{
    recover_schema, DeliveryView, HourStats, KeyView, NewKey, NewTenant, RecoveryView, StatsView,
    TestResult, MAX_KEY_NAME,
};
use crate::service::ingest::{Accepted, BatchItem, BatchStatus, PostStatus, MAX_BATCH};
use crate::stats::Counts;
use crate::web::problem::Problem;
use crate::webhook::{Filters, HeaderView, Kind, ObjectFilter, WebhookSpec, WebhookView};
use serde_json::{json, Value};
use std::sync::OnceLock;
use utoipa::{OpenApi, ToResponse, ToSchema};

/// The request bodies' schemas, by component name. Event and webhook bodies are described by
/// the readers that validate them. The bodies the service layer reads itself (a batch's list, a
/// test send's event type, a tenant, a key) are described here from the same limits.
fn request_schemas() -> Vec<(&'static str, Value)> {
    let mut event = Event::schema();
    event["description"] = json!("An event as a platform posts it. Only `type` is required.");
    event["example"] = json!({"type": "experiments.succeeded", "project": "Light detection",
        "object": {"kind": "experiment", "name": "cifar10"}, "data": {"accuracy": 0.93}});
    let mut webhook = WebhookSpec::schema();
    webhook["description"] =
        json!("A webhook to create or replace. Only `url` and `events` are required.");
    webhook["example"] = json!({"url": "http://localhost:9000/hooks", "events": ["experiments.done"],
        "kind": "slack", "filters": {"project_names": ["Light*"]},
        "headers": [{"key": "Authorization", "value": "Token 123", "protected": true}]});
    let mut patch = WebhookSpec::patch_schema();
    patch["description"] = json!("The fields to change (RFC 7396 merge patch).");
    patch["properties"]["recover"] = nullable(json!({"type": "boolean",
        "description": "With the webhook enabled (by this patch or already): start the recovery of every delivery it held over the last 30 days. Not stored. Beside `\"enabled\": false` it is a 422; on a webhook that stays disabled, a 409."}));
    // `recover` never goes with disabling.
    patch["if"] = json!({"properties": {"recover": {"const": true}}, "required": ["recover"]});
    patch["then"] = json!({"properties": {"enabled": {"not": {"const": false}}}});
    let mut recover = recover_schema();
    recover["description"] = json!("A recovery's window and status.");
    recover["example"] = json!({"since": "2026-12-01T00:00:00Z", "status": "failed"});
    let test_event_type = nullable(json!({"type": "string", "enum": catalog::all_type_names(),
        "description": "The event type whose sample to send; default: the first the webhook subscribes to."}));
    let mut unsaved = WebhookSpec::schema();
    unsaved["description"] =
        json!("An unsaved webhook configuration (a create body) plus the event type to send.");
    unsaved["properties"]["event_type"] = test_event_type.clone();
    vec![
        ("EventInput", event),
        (
            "BatchInput",
            json!({
                "type": "object",
                "required": ["events"],
                "additionalProperties": false,
                "properties": {"events": {
                    "type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                    // An item that is not a valid event is answered `invalid` in its place, so
                    // the batch takes any item.
                    "items": {"anyOf": [{"$ref": component("EventInput")}, {}]},
                    "description": "Events (EventInput), each validated on its own: one that is not valid is answered `invalid`, its fields named `events[i].field`.",
                }},
            }),
        ),
        ("WebhookInput", webhook),
        ("WebhookPatch", patch),
        ("RecoverInput", recover),
        ("UnsavedTestInput", unsaved),
        (
            "TestInput",
            json!({"type": "object", "additionalProperties": false,
                "properties": {"event_type": test_event_type}}),
        ),
        (
            "TenantInput",
            // `create_tenant` takes a name of 1 to 128 characters, not all white space.
            json!({"type": "object", "additionalProperties": false, "required": ["name"],
                "properties": {"name": {"type": "string", "maxLength": 128, "pattern": NOT_BLANK}}}),
        ),
        (
            "KeyInput",
            json!({"type": "object", "additionalProperties": false,
            "description": "A key to create. Without `scopes` it gets those of the key asking; it can never get more.",
            "properties": {
                "name": nullable(json!({"type": "string", "maxLength": MAX_KEY_NAME, "pattern": NOT_BLANK,
                    "description": "A label for people; default empty."})),
                "scopes": nullable(json!({"type": "array", "minItems": 1,
                    "items": {"$ref": component("Scope")}})),
            }}),
        ),
    ]
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchAnswer {
    data: Vec<BatchItem>,
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
    /// The types a platform posts.
    data: Vec<EventTypeInfo>,
    /// Herald's operational events about webhooks and deliveries: subscribed to, never posted.
    operational: Vec<EventTypeInfo>,
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
        super::routes::webhooks::test_webhook, super::routes::webhooks::test_unsaved, super::routes::deliveries::list_deliveries, super::routes::deliveries::get_delivery, super::routes::webhooks::webhook_stats,
        super::routes::deliveries::redeliver, super::routes::deliveries::recover, super::routes::deliveries::get_recovery, super::routes::keys::create_tenant, super::routes::keys::list_keys, super::routes::keys::create_key, super::routes::keys::delete_key,
    ),
    components(
        schemas(BatchAnswer, WebhookList, DeliveryList, SecretAnswer, Health, EventTypes,
            EventTypeInfo, PatternInfo, Accepted, PostStatus, BatchItem, BatchStatus, FieldError, Problem, WebhookView,
            HeaderView, Kind, Filters, ObjectFilter, EnvironmentType, DeliveryView, Attempt,
            DeliveryStatus, TestResult, NewKey, NewTenant, KeyList, KeyView, Scope, RecoveryView, RecoveryState, StatsView, HourStats, Counts),
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

/// The request bodies a route reads with `OptionalJsonBody`.
const OPTIONAL_BODIES: [&str; 2] = ["TestInput", "KeyInput"];

fn component(name: &str) -> String {
    format!("#/components/schemas/{name}")
}

/// The listings, the prefix of the ids they page through, and how many ULIDs follow it (a
/// delivery id names its acceptance and its webhook; one made before ids named the webhook,
/// the acceptance only).
const LISTINGS: [(&str, &str, &[usize]); 3] = [
    ("/v1/webhooks", "wh", &[1]),
    ("/v1/webhooks/{id}/deliveries", "dl", &[1, 2]),
    ("/v1/keys", "key", &[1]),
];

/// The cursors a listing of `prefix` ids gives out, `encode_cursor` of an id (the prefix, `_`
/// and a ULID): unpadded base64url, one character class a character. Every text it matches
/// decodes to the prefix and as many ASCII characters, which the listing takes as a cursor.
fn cursor_pattern(prefix: &str, ulids: &[usize]) -> String {
    let shapes: Vec<String> = ulids.iter().map(|&n| cursor_shape(prefix, n)).collect();
    match shapes.as_slice() {
        [one] => format!("^{one}$"),
        many => format!("^(?:{})$", many.join("|")),
    }
}

/// The pattern of a cursor of `prefix`, `_` and `ulids` ULIDs, without anchors.
fn cursor_shape(prefix: &str, ulids: usize) -> String {
    const ULID_DIGITS: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    const BASE64URL: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let head = format!("{prefix}_");
    let bytes: Vec<&[u8]> = head
        .as_bytes()
        .chunks(1)
        .chain(std::iter::repeat_n(ULID_DIGITS, ulids * ulid::ULID_LEN))
        .collect();
    let mut pattern = String::new();
    for start in (0..bytes.len() * 8).step_by(6) {
        // The six bits start in one byte and may end in the next; past the last, they are 0.
        let first = start / 8;
        let next: &[u8] = bytes.get(first + 1).copied().unwrap_or(&[0]);
        let shift = 10 - (start - first * 8);
        let mut chars = std::collections::BTreeSet::new();
        for &a in bytes[first] {
            for &b in next {
                let word = (u16::from(a) << 8) | u16::from(b);
                chars.insert(BASE64URL[usize::from((word >> shift) & 63)]);
            }
        }
        let class: String = chars
            .iter()
            .map(|&c| match c {
                b'-' => "\\-".to_string(),
                c => char::from(c).to_string(),
            })
            .collect();
        if chars.len() == 1 {
            pattern.push_str(&class);
        } else {
            pattern.push_str(&format!("[{class}]"));
        }
    }
    pattern
}

/// A body a route can do without (`OptionalJsonBody`) may also be JSON `null`; the others are
/// required.
fn mark_required(body: &mut Value) {
    let schema = &mut body["content"]["application/json"]["schema"];
    if OPTIONAL_BODIES
        .iter()
        .any(|name| schema["$ref"] == component(name))
    {
        *schema = json!({"anyOf": [{"type": "null"}, schema.take()]});
    } else {
        body["required"] = json!(true);
    }
}

/// Fills in what the annotations cannot say: the request bodies' schemas, the cursors, the
/// version, and the security schemes (tenant key by default, admin key where noted).
fn finish(mut doc: Value) -> Value {
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    for (name, schema) in request_schemas() {
        doc["components"]["schemas"][name] = schema;
    }
    for (path, prefix, ulids) in LISTINGS {
        let parameters = doc["paths"][path]["get"]["parameters"]
            .as_array_mut()
            .expect("a listing's parameters");
        for parameter in parameters.iter_mut().filter(|p| p["name"] == "cursor") {
            parameter["schema"] =
                json!({"type": "string", "pattern": cursor_pattern(prefix, ulids)});
        }
    }
    for path in doc["paths"].as_object_mut().expect("paths").values_mut() {
        for operation in path.as_object_mut().expect("a path item").values_mut() {
            if let Some(body) = operation.get_mut("requestBody") {
                mark_required(body);
            }
            // Every operation that takes a tenant key needs a scope (403 without it) and is
            // rate limited per tenant.
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
        ("WebhookStats", "webhook_stats"),
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
    use crate::fields::patterns::{matches, matching};
    use crate::service::api::{decode_cursor, encode_cursor};
    use proptest::prelude::*;

    fn schemas() -> Value {
        let doc: Value = serde_json::from_str(document()).unwrap();
        doc["components"]["schemas"].clone()
    }

    /// The component as the document has it, less what is there for readers only.
    fn as_read(schemas: &Value, name: &str) -> Value {
        let mut schema = schemas[name].clone();
        let keywords = schema.as_object_mut().unwrap();
        keywords.remove("description");
        keywords.remove("example");
        schema
    }

    #[test]
    fn request_bodies_are_described_by_the_readers_that_validate_them() {
        let schemas = schemas();
        assert_eq!(as_read(&schemas, "EventInput"), Event::schema());
        assert_eq!(as_read(&schemas, "WebhookInput"), WebhookSpec::schema());
        let mut patch = as_read(&schemas, "WebhookPatch");
        patch["properties"]
            .as_object_mut()
            .unwrap()
            .remove("recover");
        for rule in ["if", "then"] {
            patch.as_object_mut().unwrap().remove(rule);
        }
        assert_eq!(patch, WebhookSpec::patch_schema());
        assert_eq!(as_read(&schemas, "RecoverInput"), recover_schema());
        let mut unsaved = as_read(&schemas, "UnsavedTestInput");
        unsaved["properties"]
            .as_object_mut()
            .unwrap()
            .remove("event_type");
        assert_eq!(unsaved, WebhookSpec::schema());
    }

    #[test]
    fn bodies_a_route_does_without_are_optional_and_the_others_required() {
        let doc: Value = serde_json::from_str(document()).unwrap();
        let body = |path: &str, method: &str| doc["paths"][path][method]["requestBody"].clone();
        assert_eq!(body("/v1/events", "post")["required"], json!(true));
        let key = body("/v1/keys", "post");
        assert!(key.get("required").is_none());
        assert_eq!(
            key["content"]["application/json"]["schema"]["anyOf"][0],
            json!({"type": "null"})
        );
    }

    proptest! {
        #[test]
        fn every_cursor_a_listing_gives_out_matches_its_pattern(
            listing in prop::sample::select(LISTINGS.to_vec())
        ) {
            let (_, prefix, ulids) = listing;
            let id = match prefix {
                "dl" => crate::delivery::delivery_id(ulid::Ulid::new(), &crate::ids::prefixed("wh")).to_string(),
                _ => crate::ids::prefixed(prefix),
            };
            for id in [id.clone(), id[..prefix.len() + 1 + ulid::ULID_LEN].to_string()] {
                let cursor = encode_cursor(&id);
                prop_assert!(matches(&cursor_pattern(prefix, ulids), &cursor), "{}", cursor);
            }
        }

        #[test]
        fn every_cursor_the_pattern_matches_is_taken(
            (prefix, cursor) in prop::sample::select(LISTINGS.to_vec())
                .prop_flat_map(|(_, prefix, ulids)| (Just(prefix), matching(&cursor_pattern(prefix, ulids))))
        ) {
            prop_assert!(decode_cursor(&cursor, &format!("{prefix}_")).is_ok(), "{}", cursor);
        }
    }

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
        assert_eq!(operations, 25);
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

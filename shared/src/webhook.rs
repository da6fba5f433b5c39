//! Webhooks (SPEC §3): the stored resource, its public view, and validation of what users send.

use crate::catalog;
use crate::error::{Error, FieldError};
use crate::event::EnvironmentType;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub const MAX_URL_LEN: usize = 2048;
pub const MAX_NAME_LEN: usize = 128;
pub const MAX_DESCRIPTION_LEN: usize = 1024;
pub const MAX_EVENTS: usize = 50;
pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_VALUE_LEN: usize = 4096;
/// Patterns in `filters.project_names`. Matching is linear in each pattern whatever its
/// wildcards (`matching::project_matches`), so these bound the work per event and webhook:
/// at most 20 × 128 pattern characters against a project name of at most 256.
pub const MAX_PROJECT_NAMES: usize = 20;
/// Characters in one `filters.project_names` pattern.
pub const MAX_PROJECT_PATTERN_LEN: usize = 128;
pub const MAX_METADATA: usize = 16;
pub const MAX_METADATA_KEY_LEN: usize = 64;
pub const MAX_METADATA_VALUE_LEN: usize = 256;

/// Free-form labels for the webhook's owner (`herald apply` marks the webhooks it manages here).
pub type Metadata = BTreeMap<String, String>;

/// The payload format: `standard` (Herald's JSON), `slack` (an incoming-webhook message),
/// `discord` (an execute-webhook message), `teams` (an Adaptive Card for a Teams Workflows
/// webhook), or the shape of a platform's own webhooks, for receivers written for it:
/// `determined`, `ubiops`, `qovery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Standard,
    Slack,
    Discord,
    Teams,
    Determined,
    Ubiops,
    Qovery,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Standard,
        Kind::Slack,
        Kind::Discord,
        Kind::Teams,
        Kind::Determined,
        Kind::Ubiops,
        Kind::Qovery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Standard => "standard",
            Kind::Slack => "slack",
            Kind::Discord => "discord",
            Kind::Teams => "teams",
            Kind::Determined => "determined",
            Kind::Ubiops => "ubiops",
            Kind::Qovery => "qovery",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// All given filters must match; within a list any entry may.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub project_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_types: Vec<EnvironmentType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub key: String,
    pub value: Secret,
    #[serde(default)]
    pub protected: bool,
}

/// A signing secret; after a rotation the previous one keeps signing until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    pub secret: Secret,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A webhook as stored: secrets included. Never serialized into an API answer: see [`WebhookView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub url: String,
    pub kind: Kind,
    pub events: Vec<String>,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub headers: Vec<Header>,
    #[serde(default)]
    pub include_result: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: Metadata,
    pub enabled: bool,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed (cleared by a success): drives auto-disable.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    pub secrets: Vec<SigningSecret>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Counts the writes to this webhook: every update is conditioned on the revision its
    /// writer read, so two writers (a PATCH and a health change, say) never undo each other.
    #[serde(default)]
    pub revision: u64,
}

impl Webhook {
    /// A new webhook of `tenant_id` configured by `spec`, signed with `secret`.
    pub fn new(
        id: String,
        tenant_id: &str,
        spec: WebhookSpec,
        secret: Secret,
        now: OffsetDateTime,
    ) -> Self {
        Webhook {
            id,
            tenant_id: tenant_id.to_string(),
            name: spec.name,
            description: spec.description,
            url: spec.url,
            kind: spec.kind,
            events: spec.events,
            filters: spec.filters,
            headers: spec.headers,
            include_result: spec.include_result,
            metadata: spec.metadata,
            enabled: spec.enabled,
            disabled_reason: None,
            failing_since: None,
            secrets: vec![SigningSecret {
                secret,
                expires_at: None,
            }],
            created_at: now,
            updated_at: now,
            revision: 0,
        }
    }

    /// The secrets that sign at `now`: the current one and any rotated one not yet expired.
    pub fn active_secrets(&self, now: OffsetDateTime) -> impl Iterator<Item = &Secret> {
        self.secrets
            .iter()
            .filter(move |s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| &s.secret)
    }
}

/// A header as the API shows it: protected values are never returned.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HeaderView {
    pub key: String,
    pub value: Option<String>,
    pub protected: bool,
}

/// A webhook as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub url: String,
    pub kind: Kind,
    pub events: Vec<String>,
    pub filters: Filters,
    pub headers: Vec<HeaderView>,
    pub include_result: bool,
    pub metadata: Metadata,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Present only in the answer to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id.clone(),
            name: w.name.clone(),
            description: w.description.clone(),
            url: w.url.clone(),
            kind: w.kind,
            events: w.events.clone(),
            filters: w.filters.clone(),
            headers: w
                .headers
                .iter()
                .map(|h| HeaderView {
                    key: h.key.clone(),
                    value: (!h.protected).then(|| h.value.expose().to_string()),
                    protected: h.protected,
                })
                .collect(),
            include_result: w.include_result,
            metadata: w.metadata.clone(),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone(),
            created_at: w.created_at,
            updated_at: w.updated_at,
            secret: None,
        }
    }
}

/// The user-settable part of a webhook, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    pub name: String,
    pub description: String,
    pub url: String,
    pub kind: Kind,
    pub events: Vec<String>,
    pub filters: Filters,
    pub headers: Vec<Header>,
    pub include_result: bool,
    pub metadata: Metadata,
    pub enabled: bool,
    /// A signing secret the user brings; without one Herald generates it.
    pub secret: Option<Secret>,
}

pub use crate::http::guard::UrlRules;

/// Every field a user may set on a webhook.
pub const SPEC_FIELDS: [&str; 11] = [
    "name",
    "description",
    "url",
    "kind",
    "events",
    "filters",
    "headers",
    "include_result",
    "metadata",
    "enabled",
    "secret",
];

impl WebhookSpec {
    /// Validates a create body. Only `url` and `events` are required (as in Polyaxon).
    pub fn parse(body: &Value, rules: &UrlRules) -> Result<WebhookSpec, Error> {
        let Some(obj) = body.as_object() else {
            return Err(Error::BadRequest(
                "the webhook must be a JSON object".into(),
            ));
        };
        let mut errors = Vec::new();
        for key in obj.keys() {
            if !SPEC_FIELDS.contains(&key.as_str()) {
                errors.push(
                    FieldError::new(key.clone(), "unknown field")
                        .with_valid(SPEC_FIELDS.iter().map(|f| f.to_string()).collect()),
                );
            }
        }

        let url = match obj.get("url") {
            Some(Value::String(s)) => match rules.check(s) {
                Ok(_) => Some(s.clone()),
                Err(e) => {
                    errors.push(FieldError::new("url", e.to_string()));
                    None
                }
            },
            None | Some(Value::Null) => {
                errors.push(FieldError::new("url", "is required"));
                None
            }
            Some(_) => {
                errors.push(FieldError::new("url", "must be a string"));
                None
            }
        };

        let events = parse_events(obj.get("events"), &mut errors);

        let name = match obj.get("name") {
            None | Some(Value::Null) => url.as_deref().map(default_name).unwrap_or_default(),
            Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_NAME_LEN => {
                s.trim().to_string()
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "name",
                    format!("must be a non-empty string of at most {MAX_NAME_LEN} characters"),
                ));
                String::new()
            }
        };
        let description = match obj.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) if s.chars().count() <= MAX_DESCRIPTION_LEN => s.clone(),
            Some(_) => {
                errors.push(FieldError::new(
                    "description",
                    format!("must be a string of at most {MAX_DESCRIPTION_LEN} characters"),
                ));
                String::new()
            }
        };
        let kind = match obj.get("kind") {
            None | Some(Value::Null) => Kind::Standard,
            Some(Value::String(s)) => Kind::ALL
                .into_iter()
                .find(|k| k.as_str().eq_ignore_ascii_case(s))
                .unwrap_or_else(|| {
                    errors.push(
                        FieldError::new("kind", format!("unknown kind `{s}`"))
                            .with_valid(Kind::ALL.iter().map(|k| k.as_str().into()).collect()),
                    );
                    Kind::Standard
                }),
            Some(_) => {
                errors.push(FieldError::new("kind", "must be a string"));
                Kind::Standard
            }
        };
        let filters = match obj.get("filters") {
            None | Some(Value::Null) => Filters::default(),
            Some(Value::Object(f)) => parse_filters(f, &mut errors),
            Some(_) => {
                errors.push(FieldError::new("filters", "must be an object"));
                Filters::default()
            }
        };
        let headers = parse_headers(obj.get("headers"), &mut errors);
        let include_result = bool_field(obj, "include_result", false, &mut errors);
        let enabled = bool_field(obj, "enabled", true, &mut errors);
        let metadata = parse_metadata(obj.get("metadata"), &mut errors);
        let secret = match obj.get("secret") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => crate::signing::parse_secret(s)
                .map_err(|_| {
                    errors.push(FieldError::new(
                        "secret",
                        "must be whsec_ followed by the base64 of 24 to 64 random bytes",
                    ))
                })
                .ok(),
            Some(_) => {
                errors.push(FieldError::new("secret", "must be a string"));
                None
            }
        };

        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        Ok(WebhookSpec {
            name,
            description,
            url: url.expect("a missing url is a validation error"),
            kind,
            events,
            filters,
            headers,
            include_result,
            metadata,
            enabled,
            secret,
        })
    }
}

fn parse_metadata(value: Option<&Value>, errors: &mut Vec<FieldError>) -> Metadata {
    let map = match value {
        None | Some(Value::Null) => return Metadata::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            errors.push(FieldError::new(
                "metadata",
                "must be an object of string values",
            ));
            return Metadata::new();
        }
    };
    if map.len() > MAX_METADATA {
        errors.push(FieldError::new(
            "metadata",
            format!("at most {MAX_METADATA} entries"),
        ));
    }
    let mut metadata = Metadata::new();
    for (key, value) in map {
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_LEN {
            errors.push(FieldError::new(
                format!("metadata.{key}"),
                format!("keys are 1 to {MAX_METADATA_KEY_LEN} characters"),
            ));
            continue;
        }
        match value.as_str() {
            Some(v) if v.chars().count() <= MAX_METADATA_VALUE_LEN => {
                metadata.insert(key.clone(), v.to_string());
            }
            _ => errors.push(FieldError::new(
                format!("metadata.{key}"),
                format!("must be a string of at most {MAX_METADATA_VALUE_LEN} characters"),
            )),
        }
    }
    metadata
}

/// `https://hooks.slack.com/services/…` → `hooks.slack.com`.
fn default_name(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "webhook".into())
        .chars()
        .take(MAX_NAME_LEN)
        .collect()
}

fn bool_field(
    obj: &Map<String, Value>,
    field: &str,
    default: bool,
    errors: &mut Vec<FieldError>,
) -> bool {
    match obj.get(field) {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new(field, "must be true or false"));
            default
        }
    }
}

fn parse_events(value: Option<&Value>, errors: &mut Vec<FieldError>) -> Vec<String> {
    let Some(Value::Array(items)) = value else {
        errors.push(
            FieldError::new(
                "events",
                "is required: a non-empty list of event types or patterns",
            )
            .with_valid(catalog::valid_patterns()),
        );
        return Vec::new();
    };
    if items.is_empty() || items.len() > MAX_EVENTS {
        errors.push(FieldError::new(
            "events",
            format!("must list 1 to {MAX_EVENTS} event types or patterns"),
        ));
    }
    let mut events: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(p) if catalog::is_valid_pattern(p) => {
                if !events.iter().any(|e| e == p) {
                    events.push(p.to_string());
                }
            }
            Some(p) => errors.push(
                FieldError::new(
                    format!("events[{i}]"),
                    format!("unknown event type or pattern `{p}`"),
                )
                .with_valid(catalog::valid_patterns()),
            ),
            None => errors.push(FieldError::new(format!("events[{i}]"), "must be a string")),
        }
    }
    events
}

fn parse_filters(f: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Filters {
    let mut filters = Filters::default();
    for key in f.keys() {
        if !["project_names", "environment_types", "object"].contains(&key.as_str()) {
            errors.push(
                FieldError::new(format!("filters.{key}"), "unknown filter").with_valid(vec![
                    "project_names".into(),
                    "environment_types".into(),
                    "object".into(),
                ]),
            );
        }
    }
    match f.get("project_names") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.len() <= MAX_PROJECT_NAMES => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if !s.is_empty() && s.chars().count() <= MAX_PROJECT_PATTERN_LEN => {
                        filters.project_names.push(s.to_string())
                    }
                    _ => errors.push(FieldError::new(
                        format!("filters.project_names[{i}]"),
                        format!("must be a non-empty string of at most {MAX_PROJECT_PATTERN_LEN} characters"),
                    )),
                }
            }
        }
        Some(_) => errors.push(FieldError::new(
            "filters.project_names",
            format!(
                "must be a list of at most {MAX_PROJECT_NAMES} names (wildcards * and ? allowed)"
            ),
        )),
    }
    match f.get("environment_types") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str().and_then(EnvironmentType::parse) {
                    Some(e) => filters.environment_types.push(e),
                    None => errors.push(
                        FieldError::new(
                            format!("filters.environment_types[{i}]"),
                            "unknown environment type",
                        )
                        .with_valid(EnvironmentType::names()),
                    ),
                }
            }
        }
        Some(_) => errors.push(
            FieldError::new("filters.environment_types", "must be a list")
                .with_valid(EnvironmentType::names()),
        ),
    }
    match f.get("object") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            let mut object = ObjectFilter::default();
            for (key, value) in o {
                let slot = match key.as_str() {
                    "kind" => &mut object.kind,
                    "name" => &mut object.name,
                    "version" => &mut object.version,
                    _ => {
                        errors.push(FieldError::new(
                            format!("filters.object.{key}"),
                            "unknown field",
                        ));
                        continue;
                    }
                };
                match value {
                    Value::Null => {}
                    Value::String(s) if !s.is_empty() && s.chars().count() <= 256 => {
                        *slot = Some(s.clone())
                    }
                    _ => errors.push(FieldError::new(
                        format!("filters.object.{key}"),
                        "must be a non-empty string of at most 256 characters",
                    )),
                }
            }
            if object != ObjectFilter::default() {
                filters.object = Some(object);
            }
        }
        Some(_) => errors.push(FieldError::new(
            "filters.object",
            "must be an object with kind, name and/or version",
        )),
    }
    filters
}

/// Headers Herald sets itself or that would break HTTP framing.
fn header_name_forbidden(name: &str) -> bool {
    const HOP_BY_HOP: [&str; 10] = [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    ];
    let lower = name.to_ascii_lowercase();
    HOP_BY_HOP.contains(&lower.as_str())
        || lower == "host"
        || lower == "content-length"
        || lower == "content-type"
        || lower.starts_with("webhook-")
}

fn parse_headers(value: Option<&Value>, errors: &mut Vec<FieldError>) -> Vec<Header> {
    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_HEADERS => items,
        Some(_) => {
            errors.push(FieldError::new(
                "headers",
                format!("must be a list of at most {MAX_HEADERS} headers"),
            ));
            return Vec::new();
        }
    };
    let mut headers: Vec<Header> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(h) = item.as_object() else {
            errors.push(FieldError::new(
                format!("headers[{i}]"),
                "must be an object with key and value",
            ));
            continue;
        };
        let key = match h.get("key").and_then(Value::as_str) {
            Some(k)
                if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || k.is_empty()
                    || k.len() > 256 =>
            {
                errors.push(FieldError::new(
                    format!("headers[{i}].key"),
                    "is not a valid HTTP header name",
                ));
                None
            }
            Some(k) if header_name_forbidden(k) => {
                errors.push(FieldError::new(
                    format!("headers[{i}].key"),
                    format!("`{k}` is set by Herald or is hop-by-hop and cannot be configured"),
                ));
                None
            }
            Some(k) if headers.iter().any(|h| h.key.eq_ignore_ascii_case(k)) => {
                errors.push(FieldError::new(
                    format!("headers[{i}].key"),
                    format!("`{k}` is given twice"),
                ));
                None
            }
            Some(k) => Some(k.to_string()),
            None => {
                errors.push(FieldError::new(format!("headers[{i}].key"), "is required"));
                None
            }
        };
        let value = match h.get("value").and_then(Value::as_str) {
            Some(v) if v.len() > MAX_HEADER_VALUE_LEN => {
                errors.push(FieldError::new(
                    format!("headers[{i}].value"),
                    format!("must be at most {MAX_HEADER_VALUE_LEN} bytes"),
                ));
                None
            }
            Some(v) if http::HeaderValue::from_str(v).is_err() => {
                errors.push(FieldError::new(
                    format!("headers[{i}].value"),
                    "must be visible ASCII without CR or LF",
                ));
                None
            }
            Some(v) => Some(v.to_string()),
            None => {
                errors.push(FieldError::new(
                    format!("headers[{i}].value"),
                    "is required",
                ));
                None
            }
        };
        let protected = match h.get("protected") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                errors.push(FieldError::new(
                    format!("headers[{i}].protected"),
                    "must be true or false",
                ));
                false
            }
        };
        if let (Some(key), Some(value)) = (key, value) {
            headers.push(Header {
                key,
                value: Secret::new(value),
                protected,
            });
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::guard::TargetPolicy;
    use serde_json::json;

    fn rules() -> UrlRules {
        UrlRules::new(TargetPolicy::Public)
    }

    fn errors(body: Value) -> Vec<FieldError> {
        match WebhookSpec::parse(&body, &rules()) {
            Err(Error::Validation(e)) => e,
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let s = WebhookSpec::parse(
            &json!({"url": "https://hooks.example.com/x", "events": ["experiments.done", "experiments.done"]}),
            &rules(),
        )
        .unwrap();
        assert_eq!(s.name, "hooks.example.com");
        assert_eq!(s.kind, Kind::Standard);
        assert!(s.enabled);
        assert_eq!(s.events, ["experiments.done"], "duplicates collapse");
    }

    #[test]
    fn unknown_pattern_is_named_with_valid_list() {
        let e =
            errors(json!({"url": "https://a.example/x", "events": ["jobs.done", "jobs.exploded"]}));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].field, "events[1]");
        assert!(e[0]
            .valid
            .as_ref()
            .unwrap()
            .contains(&"requests.finished".to_string()));
    }

    #[test]
    fn bad_urls_are_rejected() {
        for url in [
            "ftp://a.example/x",
            "https://user:pw@a.example/x",
            "not a url",
            "http://127.0.0.1/x",
            "http://169.254.169.254/latest",
            "http://2130706433/",
        ] {
            let e = errors(json!({"url": url, "events": ["*"]}));
            assert_eq!(e[0].field, "url", "{url}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_LEN));
        assert_eq!(
            errors(json!({"url": long, "events": ["*"]}))[0].field,
            "url"
        );
        let strict = UrlRules {
            require_https: true,
            ..rules()
        };
        assert!(WebhookSpec::parse(
            &json!({"url": "http://a.example/x", "events": ["*"]}),
            &strict
        )
        .is_err());
    }

    #[test]
    fn forbidden_and_malformed_headers() {
        let e = errors(
            json!({"url": "https://a.example/x", "events": ["*"], "headers": [
                {"key": "Host", "value": "x"},
                {"key": "webhook-signature", "value": "x"},
                {"key": "Transfer-Encoding", "value": "x"},
                {"key": "X-Ok", "value": "a\r\nb"},
                {"key": "Bad Name", "value": "x"},
                {"key": "Authorization", "value": "Token 1", "protected": true},
                {"key": "authorization", "value": "Token 2"}
            ]}),
        );
        let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "headers[0].key",
                "headers[1].key",
                "headers[2].key",
                "headers[3].value",
                "headers[4].key",
                "headers[6].key"
            ]
        );
    }

    #[test]
    fn filters_are_validated() {
        let e = errors(
            json!({"url": "https://a.example/x", "events": ["*"], "filters": {
                "project_names": ["ok", ""], "environment_types": ["PRODUCTION", "prod"], "object": {"kind": "pipeline", "size": 1}, "team": []
            }}),
        );
        let mut fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "filters.environment_types[1]",
                "filters.object.size",
                "filters.project_names[1]",
                "filters.team"
            ]
        );
    }

    #[test]
    fn project_name_patterns_are_bounded_in_number_and_length() {
        let body = |names: Vec<String>| json!({"url": "https://a.example/x", "events": ["*"], "filters": {"project_names": names}});
        let longest = format!("*{}", "é".repeat(MAX_PROJECT_PATTERN_LEN - 1));
        let most = vec![longest.clone(); MAX_PROJECT_NAMES];
        assert!(WebhookSpec::parse(&body(most), &rules()).is_ok());
        let one_more = vec!["prod-*".to_string(); MAX_PROJECT_NAMES + 1];
        let e = errors(body(one_more));
        assert_eq!(e[0].field, "filters.project_names");
        assert!(e[0].message.contains("at most 20"), "{}", e[0].message);
        let too_long = vec!["ok".to_string(), format!("{longest}?")];
        let e = errors(body(too_long));
        assert_eq!(e[0].field, "filters.project_names[1]");
        assert!(
            e[0].message.contains("at most 128 characters"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn view_hides_protected_values_and_secrets() {
        let now = OffsetDateTime::now_utc();
        let w = Webhook {
            id: "wh_1".into(),
            tenant_id: "t".into(),
            name: "n".into(),
            description: String::new(),
            url: "https://a.example".into(),
            kind: Kind::Slack,
            events: vec!["*".into()],
            filters: Filters::default(),
            headers: vec![
                Header {
                    key: "Authorization".into(),
                    value: Secret::new("Token 123"),
                    protected: true,
                },
                Header {
                    key: "X-Team".into(),
                    value: Secret::new("ml"),
                    protected: false,
                },
            ],
            include_result: false,
            metadata: Default::default(),
            enabled: true,
            disabled_reason: None,
            failing_since: None,
            secrets: vec![SigningSecret {
                secret: Secret::new("whsec_abc"),
                expires_at: None,
            }],
            created_at: now,
            updated_at: now,
            revision: 3,
        };
        let view = serde_json::to_value(WebhookView::from(&w)).unwrap();
        assert_eq!(view["headers"][0]["value"], Value::Null);
        assert_eq!(view["headers"][1]["value"], "ml");
        let text = view.to_string();
        assert!(!text.contains("Token 123") && !text.contains("whsec_abc"));
    }
}

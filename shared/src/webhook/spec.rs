//! Validating a webhook's configuration: a rule per field, every refusal collected.

use super::*;
use crate::fields::{refused, text, Fields, Rule};

impl WebhookSpec {
    /// Validates a create body. Only `url` and `events` are required (as in Polyaxon).
    pub fn parse(body: &Value, rules: &UrlRules) -> Result<WebhookSpec, Error> {
        let Some(obj) = body.as_object() else {
            return Err(Error::BadRequest(
                "the webhook must be a JSON object".into(),
            ));
        };
        let mut f = Fields::new(obj, &SPEC_FIELDS);
        let url = f.required("url", refused("is required"), |v| {
            let url = text(v)?;
            rules.check(url).map_err(|e| refused(e.to_string()))?;
            Ok(url.to_string())
        });
        let events = events(&mut f);
        let name = f
            .optional("name", name)
            .unwrap_or_else(|| url.as_deref().map(default_name).unwrap_or_default());
        let description = f.optional("description", description).unwrap_or_default();
        let kind = f.optional("kind", kind).unwrap_or(Kind::Standard);
        let filters = match f.get("filters") {
            None => Filters::default(),
            Some(Value::Object(o)) => filters(o, &mut f),
            Some(_) => {
                f.refuse("filters", refused("must be an object"));
                Filters::default()
            }
        };
        let headers = headers(&mut f);
        let include_result = f.optional("include_result", boolean).unwrap_or(false);
        let enabled = f.optional("enabled", boolean).unwrap_or(true);
        let metadata = metadata(&mut f);
        let secret = f.optional("secret", |v| {
            crate::signing::parse_secret(text(v)?).map_err(|_| {
                refused("must be whsec_ followed by the base64 of 24 to 64 random bytes")
            })
        });
        f.finish()?;
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

fn name(value: &Value) -> Rule<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() && s.chars().count() <= MAX_NAME_LEN => {
            Ok(s.trim().to_string())
        }
        _ => Err(refused(format!(
            "must be a non-empty string of at most {MAX_NAME_LEN} characters"
        ))),
    }
}

fn description(value: &Value) -> Rule<String> {
    match value {
        Value::String(s) if s.chars().count() <= MAX_DESCRIPTION_LEN => Ok(s.clone()),
        _ => Err(refused(format!(
            "must be a string of at most {MAX_DESCRIPTION_LEN} characters"
        ))),
    }
}

fn kind(value: &Value) -> Rule<Kind> {
    let name = text(value)?;
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            refused(format!("unknown kind `{name}`"))
                .with_valid(Kind::ALL.iter().map(|k| k.as_str().into()).collect())
        })
}

fn boolean(value: &Value) -> Rule<bool> {
    value
        .as_bool()
        .ok_or_else(|| refused("must be true or false"))
}

fn metadata(f: &mut Fields<'_>) -> Metadata {
    let map = match f.get("metadata") {
        None => return Metadata::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            f.refuse("metadata", refused("must be an object of string values"));
            return Metadata::new();
        }
    };
    if map.len() > MAX_METADATA {
        f.refuse(
            "metadata",
            refused(format!("at most {MAX_METADATA} entries")),
        );
    }
    let mut metadata = Metadata::new();
    for (key, value) in map {
        let entry = format!("metadata.{key}");
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_LEN {
            f.refuse(
                &entry,
                refused(format!("keys are 1 to {MAX_METADATA_KEY_LEN} characters")),
            );
            continue;
        }
        match value.as_str() {
            Some(v) if v.chars().count() <= MAX_METADATA_VALUE_LEN => {
                metadata.insert(key.clone(), v.to_string());
            }
            _ => f.refuse(
                &entry,
                refused(format!(
                    "must be a string of at most {MAX_METADATA_VALUE_LEN} characters"
                )),
            ),
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

fn events(f: &mut Fields<'_>) -> Vec<String> {
    let Some(Value::Array(items)) = f.get("events") else {
        f.refuse(
            "events",
            refused("is required: a non-empty list of event types or patterns")
                .with_valid(catalog::valid_patterns()),
        );
        return Vec::new();
    };
    if items.is_empty() || items.len() > MAX_EVENTS {
        f.refuse(
            "events",
            refused(format!(
                "must list 1 to {MAX_EVENTS} event types or patterns"
            )),
        );
    }
    let mut events: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(p) if catalog::is_valid_pattern(p) => {
                if !events.iter().any(|e| e == p) {
                    events.push(p.to_string());
                }
            }
            Some(p) => f.refuse(
                &format!("events[{i}]"),
                refused(format!("unknown event type or pattern `{p}`"))
                    .with_valid(catalog::valid_patterns()),
            ),
            None => f.refuse(&format!("events[{i}]"), refused("must be a string")),
        }
    }
    events
}

const FILTERS: [&str; 3] = ["project_names", "environment_types", "object"];

fn filters(o: &Map<String, Value>, f: &mut Fields<'_>) -> Filters {
    for key in o.keys().filter(|k| !FILTERS.contains(&k.as_str())) {
        f.refuse(
            &format!("filters.{key}"),
            refused("unknown filter").with_valid(FILTERS.iter().map(|k| k.to_string()).collect()),
        );
    }
    let present = |name: &str| o.get(name).filter(|v| !v.is_null());
    Filters {
        project_names: present("project_names")
            .map(|v| project_names(v, f))
            .unwrap_or_default(),
        environment_types: present("environment_types")
            .map(|v| environment_types(v, f))
            .unwrap_or_default(),
        object: present("object").and_then(|v| object_filter(v, f)),
    }
}

fn project_names(value: &Value, f: &mut Fields<'_>) -> Vec<String> {
    let Some(items) = value.as_array().filter(|i| i.len() <= MAX_PROJECT_NAMES) else {
        f.refuse(
            "filters.project_names",
            refused(format!(
                "must be a list of at most {MAX_PROJECT_NAMES} names (wildcards * and ? allowed)"
            )),
        );
        return Vec::new();
    };
    let mut names = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= MAX_PROJECT_PATTERN_LEN => {
                names.push(s.to_string())
            }
            _ => f.refuse(
                &format!("filters.project_names[{i}]"),
                refused(format!(
                    "must be a non-empty string of at most {MAX_PROJECT_PATTERN_LEN} characters"
                )),
            ),
        }
    }
    names
}

fn environment_types(value: &Value, f: &mut Fields<'_>) -> Vec<EnvironmentType> {
    let Some(items) = value.as_array() else {
        f.refuse(
            "filters.environment_types",
            refused("must be a list").with_valid(EnvironmentType::names()),
        );
        return Vec::new();
    };
    let mut types = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str().and_then(EnvironmentType::parse) {
            Some(e) => types.push(e),
            None => f.refuse(
                &format!("filters.environment_types[{i}]"),
                refused("unknown environment type").with_valid(EnvironmentType::names()),
            ),
        }
    }
    types
}

/// The object filter; `None` when it names nothing.
fn object_filter(value: &Value, f: &mut Fields<'_>) -> Option<ObjectFilter> {
    let Some(o) = value.as_object() else {
        f.refuse(
            "filters.object",
            refused("must be an object with kind, name and/or version"),
        );
        return None;
    };
    let mut object = ObjectFilter::default();
    for (key, value) in o {
        let field = format!("filters.object.{key}");
        let slot = match key.as_str() {
            "kind" => &mut object.kind,
            "name" => &mut object.name,
            "version" => &mut object.version,
            _ => {
                f.refuse(&field, refused("unknown field"));
                continue;
            }
        };
        match value {
            Value::Null => {}
            Value::String(s) if !s.is_empty() && s.chars().count() <= 256 => {
                *slot = Some(s.clone())
            }
            _ => f.refuse(
                &field,
                refused("must be a non-empty string of at most 256 characters"),
            ),
        }
    }
    (object != ObjectFilter::default()).then_some(object)
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

fn headers(f: &mut Fields<'_>) -> Vec<Header> {
    let items = match f.get("headers") {
        None => return Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_HEADERS => items,
        Some(_) => {
            f.refuse(
                "headers",
                refused(format!("must be a list of at most {MAX_HEADERS} headers")),
            );
            return Vec::new();
        }
    };
    let mut headers: Vec<Header> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(h) = item.as_object() else {
            f.refuse(
                &format!("headers[{i}]"),
                refused("must be an object with key and value"),
            );
            continue;
        };
        let key = header_key(h.get("key"), &headers);
        let value = header_value(h.get("value"));
        let protected = match h.get("protected") {
            None | Some(Value::Null) => Ok(false),
            Some(v) => boolean(v),
        };
        // A header whose key and value pass is kept even when `protected` does not, so a later
        // header of the same name is still caught as a repeat.
        if let (Ok(key), Ok(value)) = (&key, &value) {
            headers.push(Header {
                key: key.clone(),
                value: Secret::new(value.clone()),
                protected: *protected.as_ref().unwrap_or(&false),
            });
        }
        for (part, why) in [
            ("key", key.err()),
            ("value", value.err()),
            ("protected", protected.err()),
        ] {
            if let Some(why) = why {
                f.refuse(&format!("headers[{i}].{part}"), why);
            }
        }
    }
    headers
}

fn header_key(value: Option<&Value>, earlier: &[Header]) -> Rule<String> {
    let key = value
        .and_then(Value::as_str)
        .ok_or_else(|| refused("is required"))?;
    if http::HeaderName::from_bytes(key.as_bytes()).is_err() || key.is_empty() || key.len() > 256 {
        return Err(refused("is not a valid HTTP header name"));
    }
    if header_name_forbidden(key) {
        return Err(refused(format!(
            "`{key}` is set by Herald or is hop-by-hop and cannot be configured"
        )));
    }
    if earlier.iter().any(|h| h.key.eq_ignore_ascii_case(key)) {
        return Err(refused(format!("`{key}` is given twice")));
    }
    Ok(key.to_string())
}

fn header_value(value: Option<&Value>) -> Rule<String> {
    let value = value
        .and_then(Value::as_str)
        .ok_or_else(|| refused("is required"))?;
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(refused(format!(
            "must be at most {MAX_HEADER_VALUE_LEN} bytes"
        )));
    }
    if http::HeaderValue::from_str(value).is_err() {
        return Err(refused("must be visible ASCII without CR or LF"));
    }
    Ok(value.to_string())
}

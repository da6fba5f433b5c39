//! The rules of a webhook's `filters`: project name patterns, environment types, the object.

use super::*;
use crate::fields::{self, refused, rule, Refused, Rule};
use serde_json::json;

pub(super) const FILTERS: [&str; 3] = ["project_names", "environment_types", "object"];

pub(super) fn filters() -> impl Rule<Output = Filters> {
    fields::object(&FILTERS, "must be an object", |f| Filters {
        project_names: f
            .optional("project_names", project_names())
            .unwrap_or_default(),
        environment_types: f
            .optional("environment_types", environment_types())
            .unwrap_or_default(),
        object: f.optional("object", object_filter()).flatten(),
    })
    .unknown_as("unknown filter")
    .about("All given filters must match; within a list any entry may.")
}

fn project_names() -> impl Rule<Output = Vec<String>> {
    rule(
        || {
            json!({
                "type": "array",
                "maxItems": MAX_PROJECT_NAMES,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_PROJECT_PATTERN_LEN},
                "description": "Project names, matched case-insensitively; `*` and `?` are wildcards.",
            })
        },
        |value| {
            let Some(items) = value.as_array().filter(|i| i.len() <= MAX_PROJECT_NAMES) else {
                return Err(refused(format!(
                    "must be a list of at most {MAX_PROJECT_NAMES} names (wildcards * and ? allowed)"
                )));
            };
            let mut why = Refused::none();
            let mut names = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if !s.is_empty() && s.chars().count() <= MAX_PROJECT_PATTERN_LEN => {
                        names.push(s.to_string())
                    }
                    _ => why.add(
                        &format!("[{i}]"),
                        refused(format!(
                            "must be a non-empty string of at most {MAX_PROJECT_PATTERN_LEN} characters"
                        )),
                    ),
                }
            }
            why.or(names)
        },
    )
}

fn environment_types() -> impl Rule<Output = Vec<EnvironmentType>> {
    rule(
        || json!({"type": "array", "items": {"type": "string", "enum": EnvironmentType::names()}}),
        |value| {
            let Some(items) = value.as_array() else {
                return Err(refused("must be a list").with_valid(EnvironmentType::names()));
            };
            let mut why = Refused::none();
            let mut types = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.as_str().and_then(EnvironmentType::parse) {
                    Some(e) => types.push(e),
                    None => why.add(
                        &format!("[{i}]"),
                        refused("unknown environment type").with_valid(EnvironmentType::names()),
                    ),
                }
            }
            why.or(types)
        },
    )
}

const OBJECT_FILTER_FIELDS: [&str; 3] = ["kind", "name", "version"];

/// The object filter; `None` when it names nothing.
fn object_filter() -> impl Rule<Output = Option<ObjectFilter>> {
    fields::object(
        &OBJECT_FILTER_FIELDS,
        "must be an object with kind, name and/or version",
        |f| {
            let object = ObjectFilter {
                kind: f.optional("kind", filter_value()),
                name: f.optional("name", filter_value()),
                version: f.optional("version", filter_value()),
            };
            (object != ObjectFilter::default()).then_some(object)
        },
    )
}

fn filter_value() -> impl Rule<Output = String> {
    rule(
        || json!({"type": "string", "minLength": 1, "maxLength": 256}),
        |value| match value {
            Value::String(s) if !s.is_empty() && s.chars().count() <= 256 => Ok(s.clone()),
            _ => Err(refused(
                "must be a non-empty string of at most 256 characters",
            )),
        },
    )
}

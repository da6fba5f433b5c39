//! Events as platforms post them (SPEC §2): parsing with field-level errors, defaults, and the
//! envelope that travels on the queue.

use crate::catalog::{self, EventType, REQUEST_OBJECT_KINDS};
use crate::error::Error;
use crate::fields::{self, refused, rule, string, text, Fields, Rule};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::sync::{Arc, OnceLock};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use ulid::Ulid;

/// A `result` larger than this is never sent (UbiOps' 16 kB rule), so ingest does not carry it.
pub const MAX_RESULT_BYTES: usize = 16 * 1024;
const MAX_ID_LEN: usize = 128;
const MAX_NAME_LEN: usize = 256;
const MAX_TEXT_LEN: usize = 4096;
/// The years, in UTC, an `occurred_at` may name, so that every receiver can read it: Discord's API
/// parses timestamps with Python's `datetime`, which has no year 0, and Determined-shaped bodies
/// carry Unix seconds, which would be negative before 1970.
const OCCURRED_YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;
const FIELDS: [&str; 9] = [
    "id",
    "type",
    "occurred_at",
    "project",
    "environment_type",
    "object",
    "data",
    "result",
    "text",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnvironmentType {
    Production,
    Development,
    Staging,
    Preview,
}

impl EnvironmentType {
    pub const ALL: [EnvironmentType; 4] = [
        EnvironmentType::Production,
        EnvironmentType::Development,
        EnvironmentType::Staging,
        EnvironmentType::Preview,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentType::Production => "PRODUCTION",
            EnvironmentType::Development => "DEVELOPMENT",
            EnvironmentType::Staging => "STAGING",
            EnvironmentType::Preview => "PREVIEW",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    pub fn names() -> Vec<String> {
        Self::ALL.iter().map(|e| e.as_str().to_string()).collect()
    }
}

/// What the event is about: a deployment version, a pipeline, an experiment, an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A validated event. `type` is always a catalog type (one a platform posts, or one of Herald's
/// operational types, `crate::operational`) and `text` is always set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    // Shared: each delivery's record keeps the event's id and type.
    #[serde(deserialize_with = "crate::ids::deserialize_shared")]
    pub id: Arc<str>,
    #[serde(rename = "type", deserialize_with = "crate::ids::deserialize_shared")]
    pub event_type: Arc<str>,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub environment_type: Option<EnvironmentType>,
    #[serde(default)]
    pub object: Option<ObjectRef>,
    #[serde(default)]
    pub data: Data,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    pub text: String,
    /// Set on test deliveries only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// An event's `data`: the JSON text of an object, as it travels on the queue. Dispatch copies
/// the text into standard bodies and parses it only for formats that read its fields (once per
/// event), so the common delivery never builds, walks or frees a tree of it.
#[derive(Clone)]
pub struct Data {
    raw: Box<RawValue>,
    fields: OnceLock<Map<String, Value>>,
}

impl Data {
    /// The object's JSON text.
    pub fn raw(&self) -> &RawValue {
        &self.raw
    }

    /// The object's fields, parsed on first use.
    pub fn fields(&self) -> &Map<String, Value> {
        // The text is an object: checked when it was built or read.
        self.fields
            .get_or_init(|| serde_json::from_str(self.raw.get()).unwrap_or_default())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields().get(key)
    }

    pub fn iter(&self) -> serde_json::map::Iter<'_> {
        self.fields().iter()
    }

    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }
}

impl Default for Data {
    fn default() -> Self {
        Data::from(Map::new())
    }
}

impl From<Map<String, Value>> for Data {
    fn from(fields: Map<String, Value>) -> Self {
        let raw = serde_json::value::to_raw_value(&fields).expect("a JSON map serializes");
        Data {
            raw,
            fields: OnceLock::from(fields),
        }
    }
}

impl FromIterator<(String, Value)> for Data {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Data::from(Map::from_iter(iter))
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.raw.get())
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        if !raw.get().trim_start().starts_with('{') {
            return Err(serde::de::Error::custom("data must be a JSON object"));
        }
        Ok(Data {
            raw,
            fields: OnceLock::new(),
        })
    }
}

/// One accepted event of one tenant, as the queue's messages and the event log carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventEnvelope {
    pub tenant_id: Arc<str>,
    /// Unique per acceptance, so a delivery id derived from it never collides with an earlier
    /// acceptance of the same event id (after the dedupe window).
    pub envelope_id: Ulid,
    pub event: Event,
}

impl Event {
    pub fn catalog_type(&self) -> Option<&'static EventType> {
        catalog::find(&self.event_type)
    }

    /// Validates a posted body. Collects every invalid field rather than stopping at the first.
    pub fn parse(body: &Value, now: OffsetDateTime) -> Result<Event, Error> {
        let Some(obj) = body.as_object() else {
            return Err(Error::BadRequest("the event must be a JSON object".into()));
        };
        let mut f = Fields::new(obj, &FIELDS);
        let event = read(&mut f, now);
        f.finish()?;
        Ok(event.expect("a body without refusals reads as an event"))
    }

    /// The JSON Schema of the bodies [`Event::parse`] takes.
    pub fn schema() -> Value {
        fields::describe(&FIELDS, |f| read(f, OffsetDateTime::UNIX_EPOCH))
    }

    /// A test event: the catalog sample of `event_type`, marked `test`.
    pub fn sample(event_type: &EventType, now: OffsetDateTime) -> Event {
        let mut event = Event::parse(&catalog::sample(event_type), now)
            .expect("catalog samples are valid events");
        event.test = true;
        event
    }
}

/// An event's fields, read (or described) in order; `now` stands in for a missing `occurred_at`.
fn read(f: &mut Fields<'_>, now: OffsetDateTime) -> Option<Event> {
    let id = f.optional(
        "id",
        event_id()
            .about("Idempotency key and Standard Webhooks message id; generated when absent."),
    );
    let event_type = f.required(
        "type",
        refused("is required").with_valid(catalog::type_names()),
        event_type(),
    );
    let occurred_at = f
        .optional("occurred_at", occurred_at().about("RFC 3339; default now."))
        .unwrap_or(now);
    let project = f.optional("project", string(MAX_NAME_LEN));
    let environment_type = f.optional("environment_type", environment_type());
    let object = f.optional("object", object_ref()).flatten();
    f.across(requests_need_an_object, |f| {
        if event_type.is_some_and(|t| t.resource == "requests") {
            request_object(f, object.as_ref());
        }
    });
    let data = f.optional("data", data()).unwrap_or_default();
    let result = f.optional("result", result()).flatten();
    let text = f.optional(
        "text",
        string(MAX_TEXT_LEN)
            .about("A human description; generated from type, object and project when absent."),
    );
    let event_type = event_type?;
    let text = text.unwrap_or_else(|| describe(event_type, object.as_ref(), project.as_deref()));
    Some(Event {
        id: id.unwrap_or_else(|| crate::ids::prefixed("evt")).into(),
        event_type: event_type.name.into(),
        occurred_at,
        project,
        environment_type,
        object,
        data,
        result,
        text,
        test: false,
    })
}

pub fn valid_event_id(s: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-'))
}

fn event_id() -> impl Rule<Output = String> {
    rule(
        || json!({"type": "string", "pattern": format!("^[A-Za-z0-9_:-]{{1,{MAX_ID_LEN}}}$")}),
        |value| match value {
            Value::String(s) if valid_event_id(s) => Ok(s.clone()),
            _ => Err(refused(
                "must be 1-128 characters of A-Z, a-z, 0-9, '_', ':' or '-'",
            )),
        },
    )
}

fn event_type() -> impl Rule<Output = &'static EventType> {
    rule(
        || json!({"type": "string", "enum": catalog::type_names()}),
        |value| {
            let name = text(value)?;
            catalog::find(name).ok_or_else(|| {
                let why = if catalog::find_operational(name).is_some() {
                    format!("`{name}` is emitted by Herald itself and cannot be posted")
                } else {
                    format!("unknown event type `{name}`")
                };
                refused(why).with_valid(catalog::type_names())
            })
        },
    )
}

/// The dates an `occurred_at` may be written with: years 1970 to 9999, and on the first and last
/// day of them only in UTC, as [`occurred_at`] takes them (the format checks the rest).
const OCCURRED_AT_PATTERN: &str =
    "^(?:(?:197[1-9]|19[89][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-\
     |1970-(?:0[2-9]|1[0-2]|01-(?:0[2-9]|[12][0-9]|3[01]))\
     |9999-(?:0[0-9]|1[01]|12-(?:[0-2][0-9]|30))\
     |(?:1970-01-01|9999-12-31)[Tt][^+-]*(?:[Zz]|[+-]00:00)$)";

/// An RFC 3339 timestamp as every field of the API takes one (an event's `occurred_at`, a
/// recovery's window).
pub(crate) fn timestamp() -> impl Rule<Output = OffsetDateTime> {
    occurred_at()
}

/// Normalised to UTC so every payload's timestamp reads the same way. On 1970-01-01 and
/// 9999-12-31 only a UTC time is taken: an offset moves a time by less than a day, so every
/// other date in range stays in range in UTC, and the rule stays one a pattern can say.
fn occurred_at() -> impl Rule<Output = OffsetDateTime> {
    rule(
        || json!({"type": "string", "format": "date-time", "pattern": OCCURRED_AT_PATTERN}),
        |value| {
            let text = text(value)?;
            // RFC 3339 lets a space stand for the `T` by agreement; JSON Schema's date-time does not.
            let at = text
                .get(10..11)
                .filter(|t| t.eq_ignore_ascii_case("t"))
                .and_then(|_| OffsetDateTime::parse(text, &Rfc3339).ok())
                .ok_or_else(|| {
                    refused("must be an RFC 3339 timestamp such as 2026-11-22T10:00:00Z")
                })?;
            let edge = matches!(
                (at.year(), at.month() as u8, at.day()),
                (1970, 1, 1) | (9999, 12, 31)
            );
            if !OCCURRED_YEARS.contains(&at.year()) || (edge && !at.offset().is_utc()) {
                return Err(refused(
                    "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z, \
                     and in UTC on those two days",
                ));
            }
            Ok(at.to_offset(time::UtcOffset::UTC))
        },
    )
}

fn environment_type() -> impl Rule<Output = EnvironmentType> {
    rule(
        || json!({"type": "string", "enum": EnvironmentType::names()}),
        |value| match value {
            Value::String(s) => EnvironmentType::parse(s).ok_or_else(|| {
                refused(format!("unknown environment type `{s}`"))
                    .with_valid(EnvironmentType::names())
            }),
            _ => Err(refused("must be a string").with_valid(EnvironmentType::names())),
        },
    )
}

fn data() -> impl Rule<Output = Data> {
    rule(
        || json!({"type": "object"}),
        |value| match value {
            Value::Object(d) => Ok(Data::from(d.clone())),
            _ => Err(refused("must be a JSON object")),
        },
    )
}

/// Any JSON value; `None` above [`MAX_RESULT_BYTES`], which is never sent, so never carried:
/// keeps queue messages small.
fn result() -> impl Rule<Output = Option<Value>> {
    rule(
        || json!({"description": "Any JSON value. Sent only to webhooks with `include_result`, and only if at most 16 KiB."}),
        |value| {
            let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
            Ok((size <= MAX_RESULT_BYTES).then(|| value.clone()))
        },
    )
}

const OBJECT_FIELDS: [&str; 4] = ["kind", "name", "version", "id"];

fn object_ref() -> impl Rule<Output = Option<ObjectRef>> {
    fields::object(
        &OBJECT_FIELDS,
        "must be an object with kind and name",
        |f| {
            let kind = f.required("kind", refused("is required"), string(MAX_NAME_LEN));
            let name = f.required("name", refused("is required"), string(MAX_NAME_LEN));
            let version = f.optional("version", string(MAX_NAME_LEN));
            let id = f.optional("id", string(MAX_NAME_LEN));
            Some(ObjectRef {
                kind: kind?,
                name: name?,
                version,
                id,
            })
        },
    )
    .about(
        "What the event is about: a deployment version, a pipeline, an experiment, an environment.",
    )
}

/// A `requests.*` event names what received the request: a deployment, pipeline or experiment.
fn request_object(f: &mut Fields<'_>, object: Option<&ObjectRef>) {
    match object {
        None if !f.has_refusal("object") => f.refuse(
            "object",
            refused("is required for requests events: name the deployment, pipeline or experiment"),
        ),
        Some(o) if !REQUEST_OBJECT_KINDS.contains(&o.kind.as_str()) => f.refuse(
            "object.kind",
            refused(format!("`{}` cannot receive requests", o.kind))
                .with_valid(REQUEST_OBJECT_KINDS.iter().map(|k| k.to_string()).collect()),
        ),
        _ => {}
    }
}

/// [`request_object`] as JSON Schema.
fn requests_need_an_object() -> Value {
    let requests: Vec<&str> = catalog::EVENT_TYPES
        .iter()
        .filter(|t| t.resource == "requests")
        .map(|t| t.name)
        .collect();
    json!({
        "if": {"properties": {"type": {"enum": requests}}, "required": ["type"]},
        "then": {
            "required": ["object"],
            "properties": {"object": {"type": "object", "properties": {"kind": {"enum": REQUEST_OBJECT_KINDS}}}},
        },
    })
}

/// The human line used when the platform sends no `text`, e.g.
/// "Deployment model-a v1: request completed in project fraud-detection".
pub fn describe(t: &EventType, object: Option<&ObjectRef>, project: Option<&str>) -> String {
    let mut text = String::with_capacity(64);
    match object {
        Some(o) => {
            text.push_str(&capitalize(&o.kind));
            text.push(' ');
            text.push_str(&o.name);
            if let Some(v) = &o.version {
                text.push(' ');
                text.push_str(v);
            }
        }
        None => text.push_str(&capitalize(t.resource.trim_end_matches('s'))),
    }
    if t.resource == "requests" {
        text.push_str(": request ");
    } else {
        text.push(' ');
    }
    text.push_str(t.status);
    if let Some(p) = project {
        text.push_str(" in project ");
        text.push_str(p);
    }
    text
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn minimal_event_gets_defaults() {
        let e = Event::parse(&json!({"type": "experiments.failed"}), NOW).unwrap();
        assert!(
            e.id.starts_with("evt_") && e.id.len() == 30,
            "a ULID is generated"
        );
        assert_eq!(e.occurred_at, NOW);
        assert_eq!(e.text, "Experiment failed");
        assert!(e.data.is_empty());
    }

    #[test]
    fn full_event_round_trips() {
        let body = json!({
            "id": "evt_1:a-b", "type": "requests.completed", "occurred_at": "2026-11-22T09:00:00+01:00",
            "project": "fraud", "environment_type": "STAGING",
            "object": {"kind": "pipeline", "name": "pipeline-1", "version": "v1"},
            "data": {"request_id": "r1"}, "result": {"score": 1}
        });
        let e = Event::parse(&body, NOW).unwrap();
        assert_eq!(&*e.id, "evt_1:a-b");
        assert_eq!(e.occurred_at, datetime!(2026-11-22 08:00 UTC));
        assert_eq!(
            e.occurred_at.offset(),
            time::UtcOffset::UTC,
            "normalised to UTC"
        );
        assert_eq!(e.environment_type, Some(EnvironmentType::Staging));
        assert_eq!(
            e.text,
            "Pipeline pipeline-1 v1: request completed in project fraud"
        );
        assert_eq!(e.result, Some(json!({"score": 1})));
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.data.get("request_id"), Some(&json!("r1")));
    }

    #[test]
    fn queued_data_must_be_an_object() {
        let queued = |data: &str| {
            serde_json::from_str::<Event>(&format!(
                r#"{{"id":"e","type":"jobs.failed","occurred_at":"2026-11-22T10:00:00Z","text":"t","data":{data}}}"#
            ))
        };
        assert_eq!(
            queued(r#" {"a": [1, 2.5]}"#).unwrap().data.get("a"),
            Some(&json!([1, 2.5]))
        );
        for bad in ["[1]", "\"x\"", "null", "3"] {
            let err = queued(bad).unwrap_err().to_string();
            assert!(err.contains("data must be a JSON object"), "{bad}: {err}");
        }
        let absent: Event = serde_json::from_str(
            r#"{"id":"e","type":"jobs.failed","occurred_at":"2026-11-22T10:00:00Z","text":"t"}"#,
        )
        .unwrap();
        assert!(absent.data.is_empty());
        assert_eq!(absent.data.raw().get(), "{}");
    }

    #[test]
    fn unknown_type_lists_valid_types() {
        let err = Event::parse(&json!({"type": "experiments.exploded"}), NOW).unwrap_err();
        let Error::Validation(errors) = err else {
            panic!()
        };
        assert_eq!(errors[0].field, "type");
        assert!(errors[0]
            .valid
            .as_ref()
            .unwrap()
            .contains(&"experiments.failed".to_string()));
    }

    #[test]
    fn every_bad_field_is_named() {
        let body = json!({
            "id": "has.dot", "type": 3, "occurred_at": "yesterday", "project": "",
            "environment_type": "prod", "object": {"kind": "x"}, "data": [1], "text": 5, "colour": "red"
        });
        let mut got = fields(Event::parse(&body, NOW).unwrap_err());
        got.sort();
        assert_eq!(
            got,
            [
                "colour",
                "data",
                "environment_type",
                "id",
                "object.name",
                "occurred_at",
                "project",
                "text",
                "type"
            ]
        );
    }

    #[test]
    fn occurred_at_is_held_to_years_1970_to_9999_in_utc() {
        let parse = |t: &str| Event::parse(&json!({"type": "jobs.failed", "occurred_at": t}), NOW);
        for t in [
            "1970-01-01T00:00:00Z",
            "2026-11-22T10:00:00+01:00",
            "9999-12-31T23:59:59.999Z",
        ] {
            assert!(parse(t).is_ok(), "{t}");
        }
        for t in [
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            // In range as written, not in UTC.
            "1970-01-01T00:30:00+01:00",
            "9999-12-31T23:00:00-05:00",
        ] {
            let Err(Error::Validation(errors)) = parse(t) else {
                panic!("{t} was accepted")
            };
            assert_eq!(errors.len(), 1, "{t}");
            assert_eq!(errors[0].field, "occurred_at", "{t}");
            assert!(
                errors[0].message.contains("1970"),
                "{t}: {}",
                errors[0].message
            );
        }
    }

    #[test]
    fn requests_need_a_request_capable_object() {
        assert_eq!(
            fields(Event::parse(&json!({"type": "requests.failed"}), NOW).unwrap_err()),
            ["object"]
        );
        let body =
            json!({"type": "requests.failed", "object": {"kind": "environment", "name": "prod"}});
        assert_eq!(
            fields(Event::parse(&body, NOW).unwrap_err()),
            ["object.kind"]
        );
    }

    #[test]
    fn oversized_result_is_not_carried() {
        let big = "x".repeat(MAX_RESULT_BYTES + 1);
        let e = Event::parse(&json!({"type": "jobs.succeeded", "result": big}), NOW).unwrap();
        assert_eq!(e.result, None);
    }

    #[test]
    fn non_object_body_is_a_bad_request() {
        assert!(matches!(
            Event::parse(&json!([1]), NOW),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn every_catalog_sample_is_a_valid_test_event() {
        for t in catalog::EVENT_TYPES {
            let e = Event::sample(t, NOW);
            assert!(e.test);
            assert_eq!(&*e.event_type, t.name);
        }
    }

    #[test]
    fn the_schema_names_every_field_and_requires_type() {
        let schema = Event::schema();
        let mut properties: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        properties.sort_unstable();
        let mut known = FIELDS.to_vec();
        known.sort_unstable();
        assert_eq!(properties, known);
        assert_eq!(schema["required"], json!(["type"]));
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(
            schema["properties"]["object"]["additionalProperties"],
            json!(false),
            "the object is closed, as its reader is"
        );
    }

    #[test]
    fn a_space_for_the_t_is_refused_as_json_schema_refuses_it() {
        let parse = |t: &str| Event::parse(&json!({"type": "jobs.failed", "occurred_at": t}), NOW);
        assert!(parse("2026-11-22t10:00:00z").is_ok());
        assert_eq!(
            fields(parse("2026-11-22 10:00:00Z").unwrap_err()),
            ["occurred_at"]
        );
    }

    /// Dates near the ends of the range, and any other.
    fn timestamp() -> impl Strategy<Value = String> {
        let year = prop_oneof![Just(1969), Just(1970), Just(9999), 0..=9999i32];
        let month = prop_oneof![Just(1u8), Just(12u8), 1..=12u8];
        let day = prop_oneof![Just(1u8), Just(31u8), 1..=31u8];
        let offset = prop_oneof![
            Just("Z".to_string()),
            Just("+00:00".to_string()),
            Just("-00:00".to_string()),
            (any::<bool>(), 0..24u8, 0..60u8).prop_map(|(ahead, h, m)| format!(
                "{}{h:02}:{m:02}",
                if ahead { '+' } else { '-' }
            )),
        ];
        (year, month, day, 0..24u8, 0..60u8, offset)
            .prop_filter("a day of its month", |(y, mo, d, ..)| {
                time::Month::try_from(*mo)
                    .ok()
                    .is_some_and(|m| time::Date::from_calendar_date(*y, m, *d).is_ok())
            })
            .prop_map(|(y, mo, d, h, mi, offset)| {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:00{offset}")
            })
    }

    proptest! {
        #[test]
        fn ids_accepted_iff_charset_and_length(id in "[A-Za-z0-9_:.\\- ]{0,140}") {
            let ok = !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || "_:-".contains(c));
            let parsed = Event::parse(&json!({"type": "jobs.failed", "id": id}), NOW);
            prop_assert_eq!(parsed.is_ok(), ok);
            let pattern = event_id().schema()["pattern"].as_str().unwrap().to_string();
            prop_assert_eq!(crate::fields::patterns::matches(&pattern, &id), ok);
        }

        /// The format (RFC 3339) holds for every text here: the pattern says the rest.
        #[test]
        fn occurred_at_pattern_takes_what_the_rule_takes(text in timestamp()) {
            prop_assert_eq!(
                occurred_at().read(&json!(text)).is_ok(),
                crate::fields::patterns::matches(OCCURRED_AT_PATTERN, &text),
                "{}", text
            );
        }

        #[test]
        fn parse_never_panics(body in any::<String>()) {
            if let Ok(v) = serde_json::from_str::<Value>(&body) {
                let _ = Event::parse(&v, NOW);
            }
        }
    }
}

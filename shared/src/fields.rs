//! Reading a JSON object's fields for validation, and describing them as JSON Schema. Every
//! refused field is collected and none stops the reading, so one answer names them all.
//!
//! Each field's rule is a value that reads the field's JSON value (what it makes of it, or why it
//! refuses it) and describes the values it takes. An object's reader is one function over
//! [`Fields`]: run over a body it reads it, run by [`describe`] it names each field it reads with
//! its rule's schema. The validators and the OpenAPI document are the same code, so what the
//! document says a body may hold is what the API takes.

use crate::error::{Error, FieldError};
use serde_json::{json, Map, Value};
use std::marker::PhantomData;

/// Why a rule refused a value: one refusal or several, each named by its path below the value
/// (empty for the value itself, `.kind` or `[2].key` for a part of it), with the accepted values
/// when they are a known set. The reader puts the field's name before each path.
#[derive(Debug)]
pub struct Refused(Vec<FieldError>);

pub fn refused(message: impl Into<String>) -> Refused {
    Refused(vec![FieldError::new("", message)])
}

impl Refused {
    /// Nothing refused yet: where a rule over the parts of a value gathers their refusals.
    pub fn none() -> Self {
        Refused(Vec::new())
    }

    /// The accepted values, on the refusal last added.
    pub fn with_valid(mut self, valid: Vec<String>) -> Self {
        if let Some(last) = self.0.last_mut() {
            last.valid = Some(valid);
        }
        self
    }

    /// Adds `why`, the refusal of the part of the value at `path` (`[2]`, `.key`).
    pub fn add(&mut self, path: &str, why: Refused) {
        self.0.extend(why.under(path));
    }

    /// Each refusal, its path put under `path`.
    fn under(self, path: &str) -> impl Iterator<Item = FieldError> + '_ {
        self.0.into_iter().map(move |mut e| {
            e.field.insert_str(0, path);
            e
        })
    }

    /// `value` when nothing was refused, else these refusals.
    pub fn or<T>(self, value: T) -> Read<T> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

/// What a rule makes of a value, or why it refuses it.
pub type Read<T> = Result<T, Refused>;

/// A field's rule: it reads a JSON value and describes, as JSON Schema, exactly the values it
/// takes. The reader takes `null` for an absent field, so a rule never reads `null` and its
/// schema need not admit it.
pub trait Rule {
    type Output;

    fn read(&self, value: &Value) -> Read<Self::Output>;

    fn schema(&self) -> Value;

    /// The rule, its schema carrying a description for readers of the document.
    fn about(self, text: &'static str) -> About<Self>
    where
        Self: Sized,
    {
        About { rule: self, text }
    }
}

/// A rule from the function that reads and the schema of what it takes.
pub fn rule<T, S, F>(schema: S, read: F) -> Described<S, F, T>
where
    S: Fn() -> Value,
    F: Fn(&Value) -> Read<T>,
{
    Described {
        schema,
        read,
        output: PhantomData,
    }
}

pub struct Described<S, F, T> {
    schema: S,
    read: F,
    output: PhantomData<fn() -> T>,
}

impl<S, F, T> Rule for Described<S, F, T>
where
    S: Fn() -> Value,
    F: Fn(&Value) -> Read<T>,
{
    type Output = T;

    fn read(&self, value: &Value) -> Read<T> {
        (self.read)(value)
    }

    fn schema(&self) -> Value {
        (self.schema)()
    }
}

pub struct About<R> {
    rule: R,
    text: &'static str,
}

impl<R: Rule> Rule for About<R> {
    type Output = R::Output;

    fn read(&self, value: &Value) -> Read<R::Output> {
        self.rule.read(value)
    }

    fn schema(&self) -> Value {
        let mut schema = self.rule.schema();
        schema["description"] = json!(self.text);
        schema
    }
}

/// The fields of one JSON object, and what has been refused so far; or, while [`describe`]
/// runs, the schema of each field read.
pub struct Fields<'a> {
    /// `None` while describing.
    object: Option<&'a Map<String, Value>>,
    errors: Vec<FieldError>,
    properties: Map<String, Value>,
    required: Vec<Value>,
    across: Vec<Value>,
}

impl<'a> Fields<'a> {
    /// The fields of a body; a key outside `known` is refused, with the known ones as valid.
    pub fn new(object: &'a Map<String, Value>, known: &[&str]) -> Self {
        let valid: Vec<String> = known.iter().map(|f| f.to_string()).collect();
        Self::reading(object, known, || {
            refused("unknown field").with_valid(valid.clone())
        })
    }

    /// The fields of an object inside another; a key outside `known` is refused.
    pub fn nested(object: &'a Map<String, Value>, known: &[&str]) -> Self {
        Self::reading(object, known, || refused("unknown field"))
    }

    fn reading(
        object: &'a Map<String, Value>,
        known: &[&str],
        unknown: impl Fn() -> Refused,
    ) -> Self {
        let mut fields = Fields {
            object: Some(object),
            ..Self::describing()
        };
        for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
            fields.refuse(key, unknown());
        }
        fields
    }

    fn describing() -> Self {
        Fields {
            object: None,
            errors: Vec::new(),
            properties: Map::new(),
            required: Vec::new(),
            across: Vec::new(),
        }
    }

    /// `field` read by `rule`; `None` when it is absent or null, or refused (and recorded).
    pub fn optional<R: Rule>(&mut self, field: &str, rule: R) -> Option<R::Output> {
        let Some(object) = self.object else {
            self.properties
                .insert(field.to_string(), nullable(rule.schema()));
            return None;
        };
        let value = object.get(field).filter(|v| !v.is_null())?;
        match rule.read(value) {
            Ok(v) => Some(v),
            Err(why) => {
                self.refuse(field, why);
                None
            }
        }
    }

    /// As [`Fields::optional`], and an absent or null field is refused for `missing`.
    pub fn required<R: Rule>(
        &mut self,
        field: &str,
        missing: Refused,
        rule: R,
    ) -> Option<R::Output> {
        let Some(object) = self.object else {
            self.properties.insert(field.to_string(), rule.schema());
            self.required.push(json!(field));
            return None;
        };
        if object.get(field).is_none_or(Value::is_null) {
            self.refuse(field, missing);
            return None;
        }
        self.optional(field, rule)
    }

    /// A rule across fields: `check` runs when reading (it refuses with [`Fields::refuse`]);
    /// `schema`, a JSON Schema the object also meets, describes it.
    pub fn across(&mut self, schema: impl FnOnce() -> Value, check: impl FnOnce(&mut Self)) {
        if self.object.is_some() {
            check(self);
        } else {
            self.across.push(schema());
        }
    }

    /// Records a refusal of `field` found outside its own rule (a rule across fields).
    pub fn refuse(&mut self, field: &str, why: Refused) {
        self.errors.extend(why.under(field));
    }

    /// Whether a field, or one inside it, has been refused.
    pub fn has_refusal(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field.starts_with(field))
    }

    /// `Ok` when nothing was refused, else every refusal in the order it was found.
    pub fn finish(self) -> Result<(), Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.errors))
        }
    }

    /// The refusals of a nested object's fields, as the refusal of the object: `.field` each.
    pub fn refusals(self) -> Refused {
        Refused(Refused(self.errors).under(".").collect())
    }
}

/// The JSON Schema of the objects `read` reads: closed to the fields it reads, each described
/// by its rule, those it requires listed, and its rules across fields. `known`, the list a reader
/// refuses other keys by, must name exactly the fields `read` reads.
pub fn describe<T>(known: &[&str], read: impl FnOnce(&mut Fields<'_>) -> T) -> Value {
    let mut f = Fields::describing();
    read(&mut f);
    let mut read_fields: Vec<&str> = f.properties.keys().map(String::as_str).collect();
    let mut known = known.to_vec();
    read_fields.sort_unstable();
    known.sort_unstable();
    assert_eq!(
        read_fields, known,
        "an object's known fields are the fields its reader reads"
    );
    let mut schema = json!({
        "type": "object",
        "properties": f.properties,
        "additionalProperties": false,
    });
    if !f.required.is_empty() {
        schema["required"] = Value::Array(f.required);
    }
    if !f.across.is_empty() {
        schema["allOf"] = Value::Array(f.across);
    }
    schema
}

/// `schema`, and `null`, which the reader takes for an absent field.
pub fn nullable(mut schema: Value) -> Value {
    // Keywords that hold for `null` too (`not`, `$ref`, ...) cannot take a `null` type beside
    // them: the schema is wrapped instead.
    const TYPE_BOUND: [&str; 16] = [
        "type",
        "required",
        "uniqueItems",
        "enum",
        "description",
        "pattern",
        "format",
        "minLength",
        "maxLength",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "additionalProperties",
        "propertyNames",
        "maxProperties",
    ];
    let Some(keywords) = schema.as_object() else {
        return schema;
    };
    if !keywords.contains_key("type") || keywords.keys().any(|k| !TYPE_BOUND.contains(&k.as_str()))
    {
        return if keywords.keys().all(|k| k == "description") {
            schema
        } else {
            json!({"anyOf": [schema, {"type": "null"}]})
        };
    }
    schema["type"] = match schema["type"].take() {
        Value::Array(mut types) => {
            types.push(json!("null"));
            Value::Array(types)
        }
        one => json!([one, "null"]),
    };
    if let Some(Value::Array(values)) = schema.get_mut("enum") {
        values.push(Value::Null);
    }
    schema
}

/// A nested object: `read` reads its fields as a body's are, and a key outside `known` is
/// refused; anything but an object is refused for `not_object`.
pub fn object<T, F>(known: &'static [&'static str], not_object: &'static str, read: F) -> Object<F>
where
    F: Fn(&mut Fields<'_>) -> T,
{
    Object {
        known,
        not_object,
        unknown: None,
        read,
    }
}

pub struct Object<F> {
    known: &'static [&'static str],
    not_object: &'static str,
    /// A message for unknown keys that lists the known ones; `unknown field` by default.
    unknown: Option<&'static str>,
    read: F,
}

impl<F> Object<F> {
    /// Unknown keys are refused for `message`, with the known ones as valid.
    pub fn unknown_as(mut self, message: &'static str) -> Self {
        self.unknown = Some(message);
        self
    }
}

impl<T, F> Rule for Object<F>
where
    F: Fn(&mut Fields<'_>) -> T,
{
    type Output = T;

    fn read(&self, value: &Value) -> Read<T> {
        let Value::Object(o) = value else {
            return Err(refused(self.not_object));
        };
        let mut f = match self.unknown {
            None => Fields::nested(o, self.known),
            Some(message) => {
                let valid: Vec<String> = self.known.iter().map(|k| k.to_string()).collect();
                Fields::reading(o, self.known, || refused(message).with_valid(valid.clone()))
            }
        };
        let out = (self.read)(&mut f);
        f.refusals().or(out)
    }

    fn schema(&self) -> Value {
        describe(self.known, &self.read)
    }
}

/// A string holds a character other than white space (as Rust's `str::trim` knows it).
pub const NOT_BLANK: &str = "[^\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";

/// A string with a character other than white space, of at most `max` characters.
pub fn string(max: usize) -> impl Rule<Output = String> {
    rule(
        move || json!({"type": "string", "maxLength": max, "pattern": NOT_BLANK}),
        move |value| match value {
            Value::String(s) if s.trim().is_empty() => Err(refused("must not be empty")),
            Value::String(s) if s.chars().count() <= max => Ok(s.clone()),
            Value::String(_) => Err(refused(format!("must be at most {max} characters"))),
            _ => Err(refused("must be a string")),
        },
    )
}

/// `true` or `false`.
pub fn boolean() -> impl Rule<Output = bool> {
    rule(
        || json!({"type": "boolean"}),
        |value| {
            value
                .as_bool()
                .ok_or_else(|| refused("must be true or false"))
        },
    )
}

/// A string, for a rule that reads it further.
pub fn text(value: &Value) -> Read<&str> {
    value.as_str().ok_or_else(|| refused("must be a string"))
}

/// A pattern matching `word` in any letter case: JSON Schema's patterns take no flags.
pub fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else if "^$\\.*+?()[]{}|/".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// For tests that hold a schema's patterns to its rule: whether a pattern matches a text, and
/// texts an anchored pattern matches.
#[cfg(test)]
pub mod patterns {
    use proptest::strategy::{BoxedStrategy, Strategy};

    pub fn matches(pattern: &str, text: &str) -> bool {
        regex_lite::Regex::new(pattern)
            .expect("a pattern regex-lite reads")
            .is_match(text)
    }

    pub fn matching(pattern: &str) -> BoxedStrategy<String> {
        let inner = pattern
            .strip_prefix('^')
            .and_then(|p| p.strip_suffix('$'))
            .expect("an anchored pattern");
        proptest::string::string_regex(inner)
            .expect("a pattern proptest reads")
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::patterns::matches;
    use super::*;
    use serde_json::json;

    const KNOWN: [&str; 3] = ["a", "b", "inner"];

    fn inner() -> impl Rule<Output = Option<String>> {
        object(&["x"], "must be an object", |f| {
            f.required("x", refused("is required"), string(1))
        })
    }

    fn fields(f: &mut Fields<'_>) {
        f.required("a", refused("is required"), string(3));
        f.optional(
            "b",
            rule(
                || json!({"type": "string"}),
                |v| text(v).map(str::to_string),
            ),
        );
        f.optional("inner", inner());
    }

    fn fields_of(value: &Value) -> Vec<(String, String)> {
        let mut f = Fields::new(value.as_object().unwrap(), &KNOWN);
        fields(&mut f);
        match f.finish() {
            Err(Error::Validation(errors)) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            _ => Vec::new(),
        }
    }

    #[test]
    fn every_refusal_is_collected_in_order_with_its_field() {
        let got = fields_of(&json!({"z": 1, "a": "long", "b": 2, "inner": {"y": 0}}));
        let want = [
            ("z", "unknown field"),
            ("a", "must be at most 3 characters"),
            ("b", "must be a string"),
            ("inner.y", "unknown field"),
            ("inner.x", "is required"),
        ];
        assert_eq!(
            got,
            want.map(|(f, m)| (f.to_string(), m.to_string())).to_vec()
        );
        assert!(fields_of(&json!({"a": "ok", "b": null, "inner": {"x": "y"}})).is_empty());
        assert_eq!(fields_of(&json!({"a": " "}))[0].1, "must not be empty");
        assert_eq!(fields_of(&json!({}))[0], ("a".into(), "is required".into()));
        assert_eq!(
            fields_of(&json!({"a": "ok", "inner": [1]}))[0],
            ("inner".into(), "must be an object".into())
        );
    }

    #[test]
    fn the_reader_describes_the_object_it_reads() {
        assert_eq!(
            describe(&KNOWN, fields),
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["a"],
                "properties": {
                    "a": {"type": "string", "maxLength": 3, "pattern": NOT_BLANK},
                    "b": {"type": ["string", "null"]},
                    "inner": {
                        "type": ["object", "null"],
                        "additionalProperties": false,
                        "required": ["x"],
                        "properties": {"x": {"type": "string", "maxLength": 1, "pattern": NOT_BLANK}},
                    },
                },
            })
        );
    }

    #[test]
    #[should_panic(expected = "the fields its reader reads")]
    fn a_known_field_the_reader_skips_is_caught() {
        describe(&["a", "b", "inner", "forgotten"], fields);
    }

    #[test]
    fn null_joins_a_schema_without_changing_what_else_it_takes() {
        assert_eq!(
            nullable(json!({"type": "string", "enum": ["a"]})),
            json!({"type": ["string", "null"], "enum": ["a", null]})
        );
        assert_eq!(nullable(json!({})), json!({}));
        let not = json!({"type": "string", "not": {"pattern": "^a$"}});
        assert_eq!(
            nullable(not.clone()),
            json!({"anyOf": [not, {"type": "null"}]})
        );
    }

    #[test]
    fn the_not_blank_pattern_is_what_trim_leaves() {
        for c in (0..=0x3000u32).filter_map(char::from_u32) {
            assert_eq!(
                matches(NOT_BLANK, &c.to_string()),
                !c.is_whitespace(),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn any_case_matches_every_letter_case_and_nothing_else() {
        let pattern = format!("^{}$", any_case("keep-alive"));
        for s in ["keep-alive", "KEEP-ALIVE", "Keep-Alive"] {
            assert!(matches(&pattern, s), "{s}");
        }
        for s in ["keep_alive", "keepalive", "keep-alive-x"] {
            assert!(!matches(&pattern, s), "{s}");
        }
    }
}

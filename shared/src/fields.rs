//! Reading a JSON object's fields for validation. Every refused field is collected and none
//! stops the reading, so one answer names them all; each field's rule is a small function of
//! its JSON value that says what it makes of it or why it refuses it.

use crate::error::{Error, FieldError};
use serde_json::{Map, Value};

/// Why a rule refused a value: a message, and the accepted values when they are a known set.
/// The reader adds the field's name.
#[derive(Debug)]
pub struct Refused {
    message: String,
    valid: Option<Vec<String>>,
}

pub fn refused(message: impl Into<String>) -> Refused {
    Refused {
        message: message.into(),
        valid: None,
    }
}

impl Refused {
    pub fn with_valid(mut self, valid: Vec<String>) -> Self {
        self.valid = Some(valid);
        self
    }
}

/// A rule's answer.
pub type Rule<T> = Result<T, Refused>;

/// The fields of one JSON object, and what has been refused so far.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    /// Put before each field's name: `object.` for the fields of an event's `object`.
    prefix: String,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// The object's fields; a key outside `known` is refused, with the known ones as valid.
    pub fn new(object: &'a Map<String, Value>, known: &[&str]) -> Self {
        let valid: Vec<String> = known.iter().map(|f| f.to_string()).collect();
        Self::reading(object, String::new(), known, Some(valid))
    }

    /// The fields of an object inside another, named `prefix.field`; a key outside `known` is
    /// refused.
    pub fn nested(object: &'a Map<String, Value>, prefix: &str, known: &[&str]) -> Self {
        Self::reading(object, format!("{prefix}."), known, None)
    }

    fn reading(
        object: &'a Map<String, Value>,
        prefix: String,
        known: &[&str],
        valid: Option<Vec<String>>,
    ) -> Self {
        let mut fields = Fields {
            object,
            prefix,
            errors: Vec::new(),
        };
        for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
            let mut why = refused("unknown field");
            why.valid = valid.clone();
            fields.refuse(key, why);
        }
        fields
    }

    fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// The value of `field`, `None` when it is absent or null.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|v| !v.is_null())
    }

    /// `field` read by `rule`; `None` when it is absent or null, or refused (and recorded).
    pub fn optional<T>(
        &mut self,
        field: &str,
        rule: impl FnOnce(&'a Value) -> Rule<T>,
    ) -> Option<T> {
        let value = self.get(field)?;
        match rule(value) {
            Ok(v) => Some(v),
            Err(why) => {
                self.refuse(field, why);
                None
            }
        }
    }

    /// As [`Fields::optional`], and an absent or null field is refused for `missing`.
    pub fn required<T>(
        &mut self,
        field: &str,
        missing: Refused,
        rule: impl FnOnce(&'a Value) -> Rule<T>,
    ) -> Option<T> {
        if self.get(field).is_none() {
            self.refuse(field, missing);
            return None;
        }
        self.optional(field, rule)
    }

    /// Records a refusal of `field` found outside its own rule (a rule across fields).
    pub fn refuse(&mut self, field: &str, why: Refused) {
        let name = self.name(field);
        self.errors.push(FieldError {
            field: name,
            message: why.message,
            valid: why.valid,
        });
    }

    /// Takes the refusals of an inner object's fields.
    pub fn absorb(&mut self, inner: Fields<'_>) {
        self.errors.extend(inner.errors);
    }

    /// Whether a field, or one inside it, has been refused.
    pub fn has_refusal(&self, field: &str) -> bool {
        let name = self.name(field);
        self.errors.iter().any(|e| e.field.starts_with(&name))
    }

    /// `Ok` when nothing was refused, else every refusal in the order it was found.
    pub fn finish(self) -> Result<(), Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.errors))
        }
    }
}

/// A non-empty string of at most `max` characters.
pub fn string(max: usize) -> impl FnOnce(&Value) -> Rule<String> {
    move |value| match value {
        Value::String(s) if s.trim().is_empty() => Err(refused("must not be empty")),
        Value::String(s) if s.chars().count() <= max => Ok(s.clone()),
        Value::String(_) => Err(refused(format!("must be at most {max} characters"))),
        _ => Err(refused("must be a string")),
    }
}

/// A string, for a rule that reads it further.
pub fn text(value: &Value) -> Rule<&str> {
    value.as_str().ok_or_else(|| refused("must be a string"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: &Value) -> Result<(), Error> {
        let obj = value.as_object().unwrap();
        let mut f = Fields::new(obj, &["a", "b", "inner"]);
        f.required("a", refused("is required"), string(3));
        f.optional("b", text);
        if let Some(Value::Object(o)) = f.get("inner") {
            let mut inner = Fields::nested(o, "inner", &["x"]);
            inner.required("x", refused("is required"), string(1));
            f.absorb(inner);
        }
        f.finish()
    }

    fn fields_of(value: &Value) -> Vec<(String, String)> {
        match read(value) {
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
    }
}

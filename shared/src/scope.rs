//! What a tenant key may do. Each route needs one scope; a key holds a set of them, fixed when
//! the key is made. Scopes do not imply one another: a `manage` key without `read` cannot list.

use crate::error::{Error, FieldError, Result};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `POST /v1/events` and `/v1/events/batch`: what a platform's producers hold.
    Ingest,
    /// The GET routes of webhooks, deliveries and the catalog.
    Read,
    /// Changing webhooks and deliveries: create, update, delete, test, redeliver, and secrets
    /// (reading one included).
    Manage,
    /// Keys: list, create (within the creating key's own scopes) and revoke.
    Admin,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 4] = [Scope::Ingest, Scope::Read, Scope::Manage, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Manage => "manage",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes. It serializes as the list of their names, in [`Scope::ALL`] order.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub const NONE: Scopes = Scopes(0);
    /// What the first key of a tenant holds.
    pub const ALL: Scopes = Scopes(0b1111);

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn with(self, scope: Scope) -> Scopes {
        Scopes(self.0 | scope.bit())
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes of `self` that `other` lacks.
    pub fn beyond(self, other: Scopes) -> Scopes {
        Scopes(self.0 & !other.0)
    }

    pub fn is_within(self, other: Scopes) -> bool {
        self.beyond(other).is_empty()
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    /// The scopes as stored. A name this version does not know (written by a newer one) grants
    /// nothing: reading fails closed.
    pub fn from_stored<'a>(names: impl IntoIterator<Item = &'a str>) -> Scopes {
        names
            .into_iter()
            .filter_map(Scope::parse)
            .fold(Scopes::NONE, Scopes::with)
    }

    /// The `scopes` member of a request body: a non-empty array of scope names.
    pub fn parse_field(value: &Value) -> Result<Scopes> {
        let valid = || Scope::ALL.iter().map(|s| s.as_str().to_string()).collect();
        let Value::Array(items) = value else {
            return Err(Error::Validation(vec![FieldError::new(
                "scopes",
                "must be an array of scope names",
            )
            .with_valid(valid())]));
        };
        let mut scopes = Scopes::NONE;
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.as_str().and_then(Scope::parse) {
                Some(scope) => scopes = scopes.with(scope),
                None => errors.push(
                    FieldError::new(format!("scopes[{i}]"), "is not a scope").with_valid(valid()),
                ),
            }
        }
        if items.is_empty() {
            errors.push(
                FieldError::new("scopes", "must name at least one scope").with_valid(valid()),
            );
        }
        if errors.is_empty() {
            Ok(scopes)
        } else {
            Err(Error::Validation(errors))
        }
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Scopes::NONE, Scopes::with)
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.names().join(", "))
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_compare_by_inclusion() {
        let read_admin: Scopes = [Scope::Read, Scope::Admin].into_iter().collect();
        assert!(Scopes::NONE.is_within(read_admin));
        assert!(read_admin.is_within(Scopes::ALL));
        assert!(!Scopes::ALL.is_within(read_admin));
        assert_eq!(Scopes::ALL.beyond(read_admin).names(), ["ingest", "manage"]);
        assert_eq!(
            serde_json::to_value(read_admin).unwrap(),
            json!(["read", "admin"])
        );
        assert_eq!(read_admin.to_string(), "read, admin");
    }

    #[test]
    fn stored_names_fail_closed() {
        assert_eq!(
            Scopes::from_stored(["read", "superuser", "ingest"]),
            [Scope::Ingest, Scope::Read].into_iter().collect()
        );
        assert_eq!(Scopes::from_stored([]), Scopes::NONE);
    }

    #[test]
    fn request_scopes_name_each_bad_entry() {
        assert_eq!(
            Scopes::parse_field(&json!(["manage", "read", "manage"])).unwrap(),
            [Scope::Read, Scope::Manage].into_iter().collect()
        );
        let fields = |v: Value| match Scopes::parse_field(&v) {
            Err(Error::Validation(errors)) => {
                errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            fields(json!(["read", "root", 3])),
            ["scopes[1]", "scopes[2]"]
        );
        assert_eq!(fields(json!([])), ["scopes"]);
        assert_eq!(fields(json!("read")), ["scopes"]);
    }
}

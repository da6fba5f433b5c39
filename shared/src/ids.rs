//! Herald's ids: ULIDs, monotonic within a process so ids made in the same millisecond still
//! sort in creation order (listings page by id).

use std::sync::Mutex;
use ulid::{Generator, Ulid};

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

pub fn ulid() -> Ulid {
    let mut guard = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let generator = guard.get_or_insert_with(Generator::new);
    // Overflow needs 2^80 ids in one millisecond; fall back to a fresh random ULID.
    generator.generate().unwrap_or_else(|_| Ulid::new())
}

/// `wh_01J…`, `key_01J…`.
pub fn prefixed(prefix: &str) -> String {
    format!("{prefix}_{}", ulid())
}

/// Reads a ULID from its text in place: `Ulid`'s own `Deserialize` copies the text into a
/// `String` first, once per queue message.
pub fn deserialize_ulid<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Ulid, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = Ulid;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a ULID")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Ulid, E> {
            Ulid::from_string(v).map_err(E::custom)
        }
    }
    d.deserialize_str(Text)
}

/// Reads a string straight into a shared one: `Arc<str>`'s own `Deserialize` builds a `String`
/// and copies it.
pub fn deserialize_shared<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::sync::Arc<str>, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = std::sync::Arc<str>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.into())
        }
    }
    d.deserialize_str(Text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ulids_read_from_text_as_ulid_reads_them() {
        let id = super::ulid();
        let text = serde_json::to_string(&id).unwrap();
        let mut de = serde_json::Deserializer::from_str(&text);
        assert_eq!(super::deserialize_ulid(&mut de).unwrap(), id);
        for bad in [r#""not-a-ulid""#, "12"] {
            let mut de = serde_json::Deserializer::from_str(bad);
            assert!(super::deserialize_ulid(&mut de).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_increase() {
        let ids: Vec<String> = (0..1000).map(|_| super::prefixed("wh")).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}

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

/// Reads a value from a string in place, through `parse`: serde's own impls for `Ulid` and
/// `Arc<str>` copy the text into a `String` first, once per queue message.
fn from_text<'de, D: serde::Deserializer<'de>, T, E: std::fmt::Display>(
    d: D,
    parse: fn(&str) -> Result<T, E>,
) -> Result<T, D::Error> {
    struct Text<T, E>(fn(&str) -> Result<T, E>);
    impl<T, E: std::fmt::Display> serde::de::Visitor<'_> for Text<T, E> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<Er: serde::de::Error>(self, v: &str) -> Result<T, Er> {
            (self.0)(v).map_err(Er::custom)
        }
    }
    d.deserialize_str(Text(parse))
}

pub fn deserialize_ulid<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Ulid, D::Error> {
    from_text(d, Ulid::from_string)
}

pub fn deserialize_shared<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::sync::Arc<str>, D::Error> {
    from_text(d, |v| Ok::<_, std::convert::Infallible>(v.into()))
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

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

#[cfg(test)]
mod tests {
    #[test]
    fn ids_increase() {
        let ids: Vec<String> = (0..1000).map(|_| super::prefixed("wh")).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}

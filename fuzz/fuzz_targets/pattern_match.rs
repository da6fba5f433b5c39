//! Pattern and project-name matching never panic, the type pattern `*` matches every type but
//! Herald's operational ones, the project pattern `*` matches every name, and a project pattern
//! without wildcards is case-insensitive equality, character by character.
#![no_main]

use herald_shared::catalog::is_operational;
use herald_shared::matching::{pattern_matches, project_matches};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = pattern_matches(a, b);
    let _ = project_matches(a, b);
    assert_eq!(pattern_matches("*", b), !is_operational(b));
    assert!(project_matches("*", b));
    if !a.contains(['*', '?']) {
        assert_eq!(project_matches(a, b), unicode_case_equal(a, b));
    }
});

/// Case-insensitive equality as the matcher defines it (per character).
fn unicode_case_equal(a: &str, b: &str) -> bool {
    a.chars().count() == b.chars().count()
        && a.chars().zip(b.chars()).all(|(x, y)| x == y || x.to_lowercase().eq(y.to_lowercase()))
}

//! Which webhooks an event reaches: subscription patterns and filters (SPEC §2–3). Pure functions.

use crate::catalog;
use crate::event::Event;
use crate::webhook::{Filters, Webhook};

/// Does `pattern` (exact type, `<resource>.done`, `requests.finished`, `<resource>.*`, `*`)
/// cover `event_type`?
/// `*` covers every type a platform posts, not Herald's operational ones, which a webhook
/// subscribes to by name or by `webhooks.*` / `deliveries.*`.
pub fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    if pattern == event_type {
        return true;
    }
    if pattern == "*" {
        return !catalog::is_operational(event_type);
    }
    let Some((p_resource, p_status)) = pattern.split_once('.') else {
        return false;
    };
    let Some((resource, status)) = event_type.split_once('.') else {
        return false;
    };
    if p_resource != resource {
        return false;
    }
    match p_status {
        "*" => true,
        "done" => catalog::TERMINAL_STATUSES.contains(&status),
        "finished" => resource == "requests" && matches!(status, "completed" | "failed"),
        _ => false,
    }
}

/// Case-insensitive project-name match with `*` (any run of characters) and `?` (any one
/// character), over the whole name; characters compare as their lowercase forms do.
///
/// Linear in the name and in the pattern, whatever the wildcards: the pattern runs as a
/// bit-parallel automaton ([`Glob`]) that reads the name once, so no pattern makes matching
/// backtrack (a backtracking matcher takes time proportional to the product of the lengths for
/// `*aaa…ab` against `aaa…a`).
pub fn project_matches(pattern: &str, project: &str) -> bool {
    Glob::new(pattern).matches(project)
}

/// A `*`/`?` pattern as a nondeterministic automaton run bit-parallel (Shift-And, with a
/// self-loop for each `*`). The pattern's non-`*` characters are its tokens; state `j` means
/// "the first `j` tokens matched", and a `*` in the gap before token `j` lets state `j` take
/// any character and stay. Reading one character moves every live state at once: those whose
/// token accepts it advance (a shift), those in a `*` gap stay. The pattern matches when state
/// `tokens` is live at the end. Work: O(m log m) to build, then per character of the name one
/// binary search among the pattern's distinct characters and ⌈(m + 1) / 64⌉ word operations.
struct Glob {
    tokens: usize,
    /// Words per state set: bit `j` of the set is state `j`, for `j` in `0..=tokens`.
    words: usize,
    /// Rows of `words` words: the `?` tokens, the gaps holding a `*`, then one row per entry
    /// of `chars`: the tokens that are that character.
    masks: Vec<u64>,
    /// The pattern's distinct literal characters, folded, sorted.
    chars: Vec<char>,
}

/// A character as case-insensitive comparison sees it: two characters are equal when their
/// lowercase forms are. Every character whose lowercase form is one character stands for that
/// character; the only one whose lowercase form is longer (U+0130, `İ`, to `i̇`) shares it
/// with no other, so it stands for itself.
fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

fn set_bit(row: &mut [u64], j: usize) {
    row[j / 64] |= 1 << (j % 64);
}

impl Glob {
    fn new(pattern: &str) -> Glob {
        let mut chars: Vec<char> = pattern
            .chars()
            .filter(|c| !matches!(c, '*' | '?'))
            .map(fold)
            .collect();
        chars.sort_unstable();
        chars.dedup();
        let tokens = pattern.chars().filter(|c| *c != '*').count();
        let words = (tokens + 1).div_ceil(64);
        let mut masks = vec![0u64; (2 + chars.len()) * words];
        let mut j = 0;
        for c in pattern.chars() {
            let row = match c {
                '*' => 1,
                '?' => 0,
                // Always found: `chars` holds every literal of the pattern, folded.
                c => 2 + chars.binary_search(&fold(c)).unwrap_or_default(),
            };
            set_bit(&mut masks[row * words..(row + 1) * words], j);
            if c != '*' {
                j += 1;
            }
        }
        Glob {
            tokens,
            words,
            masks,
            chars,
        }
    }

    fn row(&self, i: usize) -> &[u64] {
        &self.masks[i * self.words..(i + 1) * self.words]
    }

    fn matches(&self, text: &str) -> bool {
        let mut small = [0u64; 4];
        let mut large = Vec::new();
        let state: &mut [u64] = if self.words <= small.len() {
            &mut small[..self.words]
        } else {
            large.resize(self.words, 0);
            &mut large
        };
        state[0] = 1;
        let (any, star) = (self.row(0), self.row(1));
        for c in text.chars() {
            let literal = self
                .chars
                .binary_search(&fold(c))
                .ok()
                .map(|i| self.row(2 + i));
            let (mut carry, mut live) = (0, 0);
            for (k, word) in state.iter_mut().enumerate() {
                let advancing = *word & (any[k] | literal.map_or(0, |l| l[k]));
                let next = (advancing << 1) | carry | (*word & star[k]);
                // No token sits past state `tokens`, so nothing carries out of the last word.
                carry = advancing >> 63;
                live |= next;
                *word = next;
            }
            if live == 0 {
                return false;
            }
        }
        (state[self.tokens / 64] >> (self.tokens % 64)) & 1 == 1
    }
}

/// All given filters must match (AND), any entry of a list may (OR); an event lacking the
/// filtered attribute does not match that filter.
pub fn filters_match(filters: &Filters, event: &Event) -> bool {
    if !filters.project_names.is_empty() {
        let Some(project) = event.project.as_deref() else {
            return false;
        };
        if !filters
            .project_names
            .iter()
            .any(|p| project_matches(p, project))
        {
            return false;
        }
    }
    if !filters.environment_types.is_empty() {
        match event.environment_type {
            Some(env) if filters.environment_types.contains(&env) => {}
            _ => return false,
        }
    }
    if let Some(wanted) = &filters.object {
        let Some(object) = &event.object else {
            return false;
        };
        if wanted.kind.as_ref().is_some_and(|k| k != &object.kind)
            || wanted.name.as_ref().is_some_and(|n| n != &object.name)
            || wanted
                .version
                .as_ref()
                .is_some_and(|v| object.version.as_ref() != Some(v))
        {
            return false;
        }
    }
    true
}

/// Does `webhook` subscribe to `event` (its types and filters)? Whether it is enabled is not
/// asked: a disabled webhook that subscribes holds the delivery instead of receiving it.
/// A webhook never receives an operational event about itself.
pub fn webhook_matches(webhook: &Webhook, event: &Event) -> bool {
    webhook
        .spec
        .events
        .iter()
        .any(|p| pattern_matches(p, &event.event_type))
        && filters_match(&webhook.spec.filters, event)
        && !crate::operational::is_about(event, webhook)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{EVENT_TYPES, RESOURCES, TERMINAL_STATUSES};
    use crate::event::{EnvironmentType, ObjectRef};
    use crate::webhook::ObjectFilter;
    use proptest::prelude::*;
    use time::OffsetDateTime;

    fn event(event_type: &str) -> Event {
        Event {
            id: "e".into(),
            event_type: event_type.into(),
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            project: None,
            environment_type: None,
            object: None,
            data: Default::default(),
            result: None,
            text: String::new(),
            test: false,
        }
    }

    #[test]
    fn every_composite_pattern_against_the_whole_catalog() {
        for t in EVENT_TYPES {
            assert!(pattern_matches("*", t.name));
            assert!(pattern_matches(t.name, t.name));
            for r in RESOURCES {
                assert_eq!(
                    pattern_matches(&format!("{r}.*"), t.name),
                    t.resource == r,
                    "{r}.* vs {}",
                    t.name
                );
                assert_eq!(
                    pattern_matches(&format!("{r}.done"), t.name),
                    t.resource == r && TERMINAL_STATUSES.contains(&t.status),
                    "{r}.done vs {}",
                    t.name
                );
            }
            assert_eq!(
                pattern_matches("requests.finished", t.name),
                t.name == "requests.completed" || t.name == "requests.failed"
            );
            for other in EVENT_TYPES.iter().filter(|o| o.name != t.name) {
                assert!(!pattern_matches(other.name, t.name));
            }
        }
        assert!(!pattern_matches("experiments.done", "experiments.started"));
        assert!(!pattern_matches("jobs.finished", "jobs.failed"));
    }

    #[test]
    fn operational_types_are_subscribed_by_name_or_resource_never_by_star() {
        use crate::catalog::OPERATIONAL_TYPES;
        for t in OPERATIONAL_TYPES {
            assert!(!pattern_matches("*", t.name), "* covers {}", t.name);
            assert!(pattern_matches(t.name, t.name));
            assert!(pattern_matches(&format!("{}.*", t.resource), t.name));
            for p in EVENT_TYPES {
                assert!(!pattern_matches(p.name, t.name));
                assert!(!pattern_matches(t.name, p.name));
            }
            for r in RESOURCES {
                assert!(!pattern_matches(&format!("{r}.*"), t.name));
            }
        }
        assert!(!pattern_matches("webhooks.*", "deliveries.exhausted"));
    }

    #[test]
    fn a_webhook_never_matches_an_operational_event_about_itself() {
        use crate::secret::Secret;
        use crate::webhook::{Kind, WebhookSpec};
        let hook = |id: &str| {
            let spec = WebhookSpec {
                name: id.into(),
                description: String::new(),
                url: "https://example.com/h".into(),
                kind: Kind::Slack,
                events: vec!["webhooks.*".into()],
                filters: Filters::default(),
                headers: vec![],
                include_result: false,
                metadata: Default::default(),
                enabled: true,
                secret: None,
            };
            Webhook::new(
                id.into(),
                "tn",
                spec,
                Secret::new("s"),
                OffsetDateTime::UNIX_EPOCH,
            )
        };
        let (a, b) = (hook("wh_a"), hook("wh_b"));
        let mut failing = a.clone();
        failing.failures = crate::operational::FAILING_AFTER;
        let mut before = a.clone();
        before.failures = crate::operational::FAILING_AFTER - 1;
        let events =
            crate::operational::health_events(&before, &failing, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(events.len(), 1);
        assert!(!webhook_matches(&a, &events[0]), "about itself");
        assert!(webhook_matches(&b, &events[0]), "about another webhook");
        // A platform event naming an object with a webhook's id is no operational event.
        let mut platform = event("jobs.failed");
        platform.object = Some(ObjectRef {
            kind: "job".into(),
            name: "x".into(),
            version: None,
            id: Some("wh_a".into()),
        });
        let mut star = a.clone();
        star.spec.events = vec!["*".into()];
        assert!(webhook_matches(&star, &platform));
    }

    #[test]
    fn project_wildcards_ignore_case() {
        assert!(project_matches("prod-*", "PROD-eu"));
        assert!(project_matches("Light detection", "light DETECTION"));
        assert!(project_matches("model-?", "model-a"));
        assert!(!project_matches("model-?", "model-ab"));
        assert!(!project_matches("prod-*", "preprod-eu"));
    }

    #[test]
    fn filters_and_across_or_within() {
        let filters = Filters {
            project_names: vec!["prod-*".into(), "Light detection".into()],
            environment_types: vec![EnvironmentType::Production, EnvironmentType::Staging],
            object: Some(ObjectFilter {
                kind: Some("pipeline".into()),
                name: Some("pipeline-1".into()),
                version: Some("v1".into()),
            }),
        };
        let mut e = event("requests.completed");
        e.project = Some("prod-eu".into());
        e.environment_type = Some(EnvironmentType::Staging);
        e.object = Some(ObjectRef {
            kind: "pipeline".into(),
            name: "pipeline-1".into(),
            version: Some("v1".into()),
            id: None,
        });
        assert!(filters_match(&filters, &e));

        let mut wrong_version = e.clone();
        wrong_version.object.as_mut().unwrap().version = Some("v2".into());
        assert!(!filters_match(&filters, &wrong_version));
        let mut no_version = e.clone();
        no_version.object.as_mut().unwrap().version = None;
        assert!(!filters_match(&filters, &no_version));
        let mut dev = e.clone();
        dev.environment_type = Some(EnvironmentType::Development);
        assert!(!filters_match(&filters, &dev));
        let mut no_project = e.clone();
        no_project.project = None;
        assert!(
            !filters_match(&filters, &no_project),
            "missing attribute fails its filter"
        );
        let mut other_project = e.clone();
        other_project.project = Some("light detection".into());
        assert!(
            filters_match(&filters, &other_project),
            "second list entry matches"
        );
        let mut no_object = e;
        no_object.object = None;
        assert!(!filters_match(&filters, &no_object));
        assert!(
            filters_match(&Filters::default(), &no_object),
            "no filters match everything"
        );
    }

    /// The meaning of a pattern, spelled out: dynamic programming over (pattern, name)
    /// prefixes, characters equal when their lowercase forms are.
    fn reference(pattern: &str, name: &str) -> bool {
        let eq = |a: char, b: char| a == b || a.to_lowercase().eq(b.to_lowercase());
        let name: Vec<char> = name.chars().collect();
        // matched[j]: the pattern read so far matches name[..j].
        let mut matched = vec![false; name.len() + 1];
        matched[0] = true;
        for p in pattern.chars() {
            let mut next = vec![false; name.len() + 1];
            match p {
                '*' => {
                    let mut any = false;
                    for j in 0..=name.len() {
                        any |= matched[j];
                        next[j] = any;
                    }
                }
                _ => {
                    for j in 1..=name.len() {
                        next[j] = matched[j - 1] && (p == '?' || eq(p, name[j - 1]));
                    }
                }
            }
            matched = next;
        }
        matched[name.len()]
    }

    /// Characters whose case folding is unusual: the Kelvin sign lowercases to ASCII `k`, `İ`
    /// to two characters, `ß` uppercases to two, and Greek has a final sigma.
    const TRICKY: &str = "aAbBkK\u{212A}iI\u{130}\u{131}ß\u{1E9E}σΣς é É";

    fn chars_of(set: &'static str) -> impl Strategy<Value = char> {
        let chars: Vec<char> = set.chars().collect();
        proptest::sample::select(chars)
    }

    #[test]
    fn hostile_patterns_give_the_right_answer() {
        let name = "a".repeat(256);
        for tail in [1, 64, 127, 128, 200, 255] {
            let pattern = format!("*{}b", "a".repeat(tail));
            assert!(!project_matches(&pattern, &name), "{tail}");
            let pattern = format!("*{}", "a".repeat(tail));
            assert!(project_matches(&pattern, &name), "{tail}");
        }
        let many_stars = format!("{}b", "*a".repeat(100));
        assert!(!project_matches(&many_stars, &name));
        assert!(project_matches(&"*a".repeat(100), &name));
        assert!(project_matches(&"?".repeat(256), &name));
        assert!(!project_matches(&"?".repeat(257), &name));
        assert!(project_matches("", "") && !project_matches("", "a"));
        assert!(project_matches("**", "") && project_matches("*?*", "x"));
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference_on_tricky_characters(
            pattern in proptest::collection::vec(prop_oneof![chars_of(TRICKY), chars_of("*?")], 0..24),
            name in proptest::collection::vec(chars_of(TRICKY), 0..40),
        ) {
            let (pattern, name): (String, String) = (pattern.into_iter().collect(), name.into_iter().collect());
            prop_assert_eq!(project_matches(&pattern, &name), reference(&pattern, &name), "{:?} {:?}", pattern, name);
        }

        /// Long patterns span several words of state; names drawn from the pattern's own
        /// alphabet match often enough to test both answers.
        #[test]
        fn agrees_with_the_reference_past_one_word_of_state(
            pattern in "[ab?*]{60,300}",
            name in "[ab]{0,320}",
        ) {
            prop_assert_eq!(project_matches(&pattern, &name), reference(&pattern, &name));
        }

        /// A pattern always matches the names made by filling in its wildcards.
        #[test]
        fn matches_its_own_instances(
            pattern in "[a-zA-Z0-9 ?*-]{0,130}",
            fill in "[a-z]{0,5}",
            one in "[A-Z]",
        ) {
            let name = pattern.replace('*', &fill).replace('?', &one).to_lowercase();
            prop_assert!(project_matches(&pattern, &name), "{:?} {:?}", pattern, name);
        }

        #[test]
        fn star_and_literal_patterns(project in "[a-zA-Z0-9 _-]{1,20}", prefix_len in 0usize..20) {
            prop_assert!(project_matches("*", &project));
            prop_assert!(project_matches(&project.to_uppercase(), &project.to_lowercase()));
            let cut = prefix_len.min(project.len());
            let pattern = format!("{}*", &project[..cut]);
            prop_assert!(project_matches(&pattern, &project));
            let qs: String = "?".repeat(project.chars().count());
            prop_assert!(project_matches(&qs, &project));
            let one_more = format!("{qs}?");
            prop_assert!(!project_matches(&one_more, &project));
        }

        #[test]
        fn literal_without_wildcards_is_case_insensitive_equality(a in "[a-zA-Z0-9 ]{0,12}", b in "[a-zA-Z0-9 ]{0,12}") {
            prop_assert_eq!(project_matches(&a, &b), a.eq_ignore_ascii_case(&b));
        }

        #[test]
        fn composites_agree_with_catalog(pattern_idx in 0usize..64, type_idx in 0usize..23) {
            let patterns = crate::catalog::valid_patterns();
            let pattern = &patterns[pattern_idx % patterns.len()];
            let t = &EVENT_TYPES[type_idx];
            let expected = pattern == "*" || pattern == t.name
                || *pattern == format!("{}.*", t.resource)
                || (*pattern == format!("{}.done", t.resource) && t.is_terminal())
                || (pattern == "requests.finished" && t.resource == "requests" && t.status != "started");
            prop_assert_eq!(pattern_matches(pattern, t.name), expected);
        }
    }
}

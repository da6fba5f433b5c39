//! Which webhooks an event reaches: subscription patterns and filters (SPEC §2–3). Pure functions.

use crate::catalog;
use crate::event::Event;
use crate::webhook::{Filters, Webhook};
use wildmatch::WildMatch;

/// Does `pattern` (exact type, `<resource>.done`, `requests.finished`, `<resource>.*`, `*`)
/// cover `event_type`?
pub fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" || pattern == event_type {
        return true;
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

/// Case-insensitive project-name match with `*` and `?` wildcards.
pub fn project_matches(pattern: &str, project: &str) -> bool {
    WildMatch::new_case_insensitive(pattern).matches(project)
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

/// Does `event` reach `webhook`? Disabled webhooks receive nothing.
pub fn webhook_matches(webhook: &Webhook, event: &Event) -> bool {
    webhook.enabled
        && webhook
            .events
            .iter()
            .any(|p| pattern_matches(p, &event.event_type))
        && filters_match(&webhook.filters, event)
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

    proptest! {
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

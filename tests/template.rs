//! The SAM template and the code agree on configuration: every variable the code reads in
//! Lambda is set by `template.yaml`, and the template sets nothing the code ignores.

use herald_tests::workspace_root;
use std::collections::BTreeSet;

/// Read only by the local stack: Lambda gets the queue by URL and has no built-in tenant.
const LOCAL_ONLY: [&str; 2] = ["HERALD_API_KEY", "HERALD_QUEUE_NAME"];

fn quoted_names(text: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("HERALD_") && s[7..].chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

fn template_variables(template: &str) -> BTreeSet<String> {
    template
        .lines()
        .filter_map(|line| line.trim_start().split_once(':').map(|(key, _)| key))
        .filter(|key| key.starts_with("HERALD_") || *key == "RUST_LOG")
        .map(str::to_string)
        .collect()
}

#[test]
fn template_sets_exactly_what_the_code_reads() {
    let root = workspace_root();
    let config = std::fs::read_to_string(root.join("shared/src/config.rs")).unwrap();
    let code_part = config.split("#[cfg(test)]").next().unwrap();
    let mut read = quoted_names(code_part);
    assert!(
        read.len() >= 10,
        "the config reader was not understood: {read:?}"
    );
    for local in LOCAL_ONLY {
        assert!(
            read.remove(local),
            "{local} is no longer read; update LOCAL_ONLY"
        );
    }
    read.insert("RUST_LOG".into());

    let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
    let set = template_variables(&template);
    let missing: Vec<_> = read.difference(&set).collect();
    let unused: Vec<_> = set.difference(&read).collect();
    assert!(
        missing.is_empty(),
        "read by the code but not set in template.yaml: {missing:?}"
    );
    assert!(
        unused.is_empty(),
        "set in template.yaml but read by no code: {unused:?}"
    );
}

#[test]
fn the_readers_see_what_they_should() {
    assert_eq!(
        quoted_names(r#"get("HERALD_A"); number("HERALD_B_C", 1); "HERALD_x"; "OTHER""#),
        ["HERALD_A", "HERALD_B_C"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let yaml = "Environment:\n  Variables:\n    HERALD_A: x\n    RUST_LOG: info\n    Description: HERALD_B is documented\n";
    assert_eq!(
        template_variables(yaml),
        ["HERALD_A", "RUST_LOG"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

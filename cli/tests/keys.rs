//! `herald keys list|create|revoke` against a real `herald dev`, and what the keys it makes can
//! and cannot do.

use herald_tests::dev::DevServer;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `herald` against `dev`, with `key` as HERALD_API_KEY (none: the local stack's key).
fn herald(dev: &DevServer, key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.args(args)
        .env("HERALD_URL", dev.url())
        .env_remove("HERALD_API_KEY")
        .env("RUST_LOG", "error");
    if let Some(key) = key {
        cmd.env("HERALD_API_KEY", key);
    }
    cmd.output().expect("herald runs")
}

fn ok(dev: &DevServer, key: Option<&str>, args: &[&str]) -> String {
    let out = herald(dev, key, args);
    assert!(
        out.status.success(),
        "herald {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(dev: &DevServer, key: Option<&str>, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(dev, key, &all)).expect("JSON on stdout")
}

/// The exit code and stderr of a command expected to fail.
fn refused(dev: &DevServer, key: Option<&str>, args: &[&str]) -> (i32, String) {
    let out = herald(dev, key, args);
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keys_are_listed_made_within_scopes_and_revoked() {
    let dev = DevServer::start(Path::new(env!("CARGO_BIN_EXE_herald")));

    let table = ok(&dev, None, &["keys", "list"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("SCOPES") && header.contains("LAST USED"),
        "{table}"
    );
    let first = lines.next().unwrap();
    assert!(
        first.contains("first key") && first.contains("ingest,read,manage,admin"),
        "{table}"
    );

    let made = ok(
        &dev,
        None,
        &["keys", "create", "--name", "producer", "--scope", "ingest"],
    );
    let key_line = made
        .lines()
        .find(|l| l.starts_with("key"))
        .expect("the key is printed");
    assert!(key_line.ends_with("(shown once)"), "{made}");
    let producer = key_line.split_whitespace().nth(1).unwrap().to_string();
    assert!(producer.starts_with("hk_"), "{made}");

    // The producer posts events and nothing else.
    ok(
        &dev,
        Some(&producer),
        &["events", "send", "--type", "jobs.failed"],
    );
    for args in [&["webhooks", "list"][..], &["keys", "list"]] {
        let (code, err) = refused(&dev, Some(&producer), args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("403"), "{args:?}: {err}");
    }

    // The listing shows names, scopes and use, never a key.
    let listed = json(&dev, None, &["keys", "list"]);
    let text = listed.to_string();
    assert!(!text.contains(&producer) && !text.contains("herald-dev-key"));
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "producer")
        .expect("listed")
        .clone();
    assert_eq!(row["scopes"], serde_json::json!(["ingest"]));
    assert!(row["last_used"].is_string(), "{row}");
    assert!(row.get("key").is_none(), "{row}");

    // A delegate makes keys within its scopes only.
    let delegate = json(
        &dev,
        None,
        &[
            "keys",
            "create",
            "--name",
            "delegate",
            "--scope",
            "read,admin",
        ],
    );
    let delegate_key = delegate["key"].as_str().unwrap();
    let (code, err) = refused(
        &dev,
        Some(delegate_key),
        &["keys", "create", "--name", "wider", "--scope", "manage"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("403") && err.contains("scopes:"), "{err}");
    json(
        &dev,
        Some(delegate_key),
        &["keys", "create", "--name", "narrower", "--scope", "read"],
    );
    let (code, err) = refused(
        &dev,
        None,
        &["keys", "create", "--name", "x", "--scope", "root"],
    );
    assert_eq!(
        code, 2,
        "an unknown scope is refused before anything is sent: {err}"
    );

    // Revoked: refused from now on.
    let id = row["id"].as_str().unwrap();
    assert!(ok(&dev, None, &["keys", "revoke", id]).contains("revoked"));
    let (code, err) = refused(
        &dev,
        Some(&producer),
        &["events", "send", "--type", "jobs.failed"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    let names: Vec<Value> = json(&dev, None, &["keys", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].clone())
        .collect();
    assert_eq!(names, ["first key", "delegate", "narrower"]);
}

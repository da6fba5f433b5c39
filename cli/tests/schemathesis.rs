//! Property-based API testing: schemathesis generates requests from the OpenAPI document and
//! runs them against a real `herald dev`, with every check it has, in every phase. A 5xx, an
//! answer that breaks the documented statuses, content types or schemas, a schema-valid request
//! refused or a schema-invalid one accepted, a route taking a request without its key: any fails
//! the test. The stack runs with `HERALD_TARGET_POLICY=loopback`, so generated webhook URLs can
//! never reach beyond this machine, and with an admin key, so the admin route is tested as the
//! operator uses it. `schemathesis_hooks.py` holds what the document cannot say about this stack.

use herald_shared::config::DEFAULT_API_KEY;
use herald_shared::fields::any_case;
use herald_shared::webhook::url_pattern;
use herald_tests::dev::DevServer;
use herald_tests::venv_bin;
use std::path::Path;
use std::process::Command;

const ADMIN_KEY: &str = "schemathesis-admin-key";

#[test]
fn schemathesis_finds_no_failures_with_every_check() {
    let stack = DevServer::start_with(
        Path::new(env!("CARGO_BIN_EXE_herald")),
        &[("HERALD_ADMIN_KEY", ADMIN_KEY)],
    );
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let loopback = format!("{}|127\\.0\\.0\\.1|\\[::1\\]", any_case("localhost"));

    let out = Command::new(venv_bin("schemathesis"))
        .env("HERALD_TEST_API_KEY", DEFAULT_API_KEY)
        .env("HERALD_TEST_ADMIN_KEY", ADMIN_KEY)
        .env("HERALD_TEST_URL_PATTERN", url_pattern(&loopback))
        .env("SCHEMATHESIS_HOOKS", tests.join("schemathesis_hooks.py"))
        .arg("--config-file")
        .arg(tests.join("schemathesis.toml"))
        .args([
            "run",
            &format!("{}/v1/openapi.json", stack.url()),
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            "30",
            // One worker: Python 3.11's `ast` module keeps its recursion depth in state the
            // threads share, and Hypothesis parses source as it names strategies, so two
            // workers now and then fail with a SystemError in the generator, not in the API.
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "schemathesis found problems (output above)"
    );
    let summary = stdout
        .lines()
        .find(|l| l.contains(" generated, "))
        .expect("schemathesis reports its test cases");
    assert!(
        !summary.contains("failed") && !summary.contains("error"),
        "{summary}"
    );
    for phase in ["Examples", "Coverage", "Fuzzing", "Stateful"] {
        assert!(
            stdout.contains(&format!("✅ {phase}")),
            "the {phase} phase did not pass"
        );
    }
    println!("schemathesis: {}", summary.trim());
}

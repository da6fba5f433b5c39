//! Property-based API testing: schemathesis generates requests from the OpenAPI document and
//! runs them against a real `herald dev`. Any 5xx, or any answer that breaks the documented
//! status codes, content types or schemas, fails the test. The stack runs with
//! `HERALD_TARGET_POLICY=loopback`, so generated webhook URLs can never reach beyond this machine.

use herald_tests::dev::DevServer;
use herald_tests::venv_bin;
use std::path::Path;
use std::process::Command;

#[test]
fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let stack = DevServer::start(Path::new(env!("CARGO_BIN_EXE_herald")));
    let port = stack.port;

    let out = Command::new(venv_bin("schemathesis"))
        .args([
            "run",
            &format!("http://127.0.0.1:{port}/v1/openapi.json"),
            "--header",
            "Authorization: Bearer herald-dev-key",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            "40",
            "--workers",
            "2",
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
    assert!(!summary.contains("failed"), "{summary}");
    println!("schemathesis: {}", summary.trim());
}

//! Test support, for the tests and the bench: moto servers (real DynamoDB/SQS protocol) on free
//! loopback ports, local HTTP receivers that record what they get, store and queue doubles that
//! fail on demand, and helpers to drive the handlers the way Lambda and the local stack do.

pub mod contract;
pub mod dev;
pub mod faults;
pub mod logs;
pub mod moto;
pub mod port;
pub mod receiver;
pub mod stack;
pub mod template;

use std::path::PathBuf;

/// The workspace root (tests/..).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A tool installed by `make test` into the project's Python venv (overridable with
/// `HERALD_VENV`). Tests fail, never skip, when it is missing.
pub fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("HERALD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"));
    let path = venv.join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make test` (it creates .venv with moto and standardwebhooks)",
        path.display()
    );
    path
}

/// Reads a sample event from `events/`.
pub fn event_file(name: &str) -> String {
    let path = workspace_root().join("events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

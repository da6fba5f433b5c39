//! The per-delivery CPU work without I/O: match the webhook, format the body, sign it. Run
//! under `valgrind --tool=callgrind` at two iteration counts; the difference divided by the
//! difference in iterations is the instruction count of one delivery, whatever the machine's
//! load (setup cancels out).

use crate::fixture;
use herald_shared::format;
use herald_shared::matching::webhook_matches;
use herald_shared::service::sender::signed_headers;
use herald_shared::signing::KeyCache;
use herald_shared::webhook::Kind;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;

/// One delivery's work, `iterations` times. Returns the body size (so nothing is optimised out).
pub fn run(kind: Kind, iterations: usize) -> usize {
    let config = fixture::config();
    let event = fixture::event(0);
    let mut webhook = fixture::webhook(
        0,
        "http://127.0.0.1:9/hook",
        &["experiments.done", "jobs.failed"],
        &config,
    );
    webhook.spec.kind = kind;
    let now = time::OffsetDateTime::now_utc();
    // One per container, as the dispatcher keeps it: keys are derived on first use.
    let keys = KeyCache::default();
    let mut size = 0;
    for _ in 0..iterations {
        let event = black_box(&event);
        assert!(webhook_matches(black_box(&webhook), event));
        let body = format::render(kind, event, false);
        let headers = signed_headers(&keys, &webhook, event, &body, now).unwrap();
        size += black_box(body.len() + headers.len());
    }
    size
}

/// The standard body size of the fixture event, for the report.
pub fn body_size(kind: Kind) -> usize {
    format::render(kind, &fixture::event(0), false).len()
}

/// Instructions per delivery, measured by callgrind at 10 and 1,010 iterations.
pub fn instructions(bench: &Path, kind: &str) -> Result<f64, String> {
    let count = |iterations: usize| -> Result<f64, String> {
        let out = Command::new("valgrind")
            .args([
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                bench.to_str().unwrap(),
                "hotpath",
                "--kind",
                kind,
                "--iterations",
                &iterations.to_string(),
            ])
            .output()
            .map_err(|e| format!("valgrind: {e} (apt-get install valgrind)"))?;
        let text = String::from_utf8_lossy(&out.stderr);
        text.lines()
            .find_map(|l| l.split("Collected :").nth(1))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("no callgrind total in: {text}"))
    };
    Ok((count(1010)? - count(10)?) / 1000.0)
}

//! The `herald` CLI against a real `herald dev`: commands, output formats, exit codes, and
//! webhooks as configuration (`apply`, `--dry-run`, `export`).

use herald_tests::dev::DevServer;
use herald_tests::receiver::Receiver;
use herald_tests::{venv_bin, workspace_root};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Cli<'a> {
    dev: &'a DevServer,
    env: Vec<(String, String)>,
}

impl Cli<'_> {
    fn new(dev: &DevServer) -> Cli<'_> {
        Cli {
            dev,
            env: Vec::new(),
        }
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
        cmd.args(args)
            .env("HERALD_URL", self.dev.url())
            .env_remove("HERALD_API_KEY")
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("herald runs");
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input).unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    }

    /// Runs and expects success; the stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "herald {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("JSON on stdout")
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

fn webhooks(cli: &Cli) -> Vec<Value> {
    cli.json(&["webhooks", "list"]).as_array().unwrap().clone()
}

fn named<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("no webhook {name} in {list:?}"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-cli-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_event_and_delivery_commands_with_exit_codes() {
    let dev = DevServer::start(Path::new(env!("CARGO_BIN_EXE_herald")));
    let cli = Cli::new(&dev);
    let rx = Receiver::start(200).await;

    let created = cli.json(&[
        "webhooks",
        "create",
        &rx.url,
        "--event",
        "jobs.*,experiments.done",
        "--kind",
        "slack",
        "--project",
        "mnist*",
        "--name",
        "jobs-to-slack",
    ]);
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["filters"]["project_names"][0], "mnist*");

    let table = cli.ok(&["webhooks", "list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID"), "{table}");
    let row = lines.next().unwrap();
    assert!(
        row.contains(&id) && row.contains("jobs-to-slack") && row.contains("slack"),
        "{table}"
    );
    assert_eq!(cli.json(&["webhooks", "get", &id])["kind"], "slack");

    let test = cli.ok(&["webhooks", "test", &id, "--type", "jobs.failed"]);
    assert!(
        test.contains("delivered    true") && test.contains("status_code  200"),
        "{test}"
    );
    assert_eq!(
        rx.wait_for(1).await[0].json()["blocks"][0]["type"],
        "header"
    );

    // An event through ingest reaches the receiver and the delivery log.
    let data = write(
        &temp_dir(),
        "data.json",
        r#"{"url": "https://ml.example.com/jobs/7"}"#,
    );
    let sent = cli.json(&[
        "events",
        "send",
        "--type",
        "jobs.failed",
        "--project",
        "mnist-prod",
        "--object",
        "job/train/v2",
        "--data",
        &format!("@{}", data.display()),
    ]);
    assert_eq!(sent["status"], "accepted");
    let delivered = rx.wait_for(2).await;
    assert!(delivered[1].body.windows(10).any(|w| w == b"mnist-prod"));
    let deliveries = cli.json(&["deliveries", "list", "--webhook", &id]);
    let delivery = deliveries
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event_id"] == sent["id"])
        .expect("the delivery is logged")
        .clone();
    let delivery_id = delivery["id"].as_str().unwrap();
    let shown = cli.ok(&["deliveries", "get", delivery_id]);
    assert!(
        shown.contains("succeeded") && shown.contains("200"),
        "{shown}"
    );
    cli.ok(&["deliveries", "redeliver", delivery_id]);
    assert_eq!(
        rx.wait_for(3).await[2].header("webhook-id"),
        delivered[1].header("webhook-id"),
        "a redelivery keeps the webhook-id"
    );

    assert_eq!(cli.json(&["webhooks", "disable", &id])["enabled"], false);
    assert_eq!(cli.json(&["webhooks", "enable", &id])["enabled"], true);

    // Recovery: a window with nothing to recover (every delivery succeeded) queues nothing;
    // one by status `succeeded` sends each again; the job is followed by its id. Enabling with
    // `--recover` starts the recovery of what was held.
    let since = "2020-01-01T00:00:00Z";
    let job = cli.json(&["deliveries", "recover", "--webhook", &id, "--since", since]);
    assert_eq!(
        (job["state"].as_str(), job["queued"].as_u64()),
        (Some("done"), Some(0)),
        "{job}"
    );
    let sent_before = rx.wait_for(3).await.len();
    let again = cli.json(&[
        "deliveries",
        "recover",
        "--webhook",
        &id,
        "--since",
        since,
        "--status",
        "succeeded",
    ]);
    let queued = again["queued"].as_u64().unwrap() as usize;
    assert!(queued >= 1, "{again}");
    assert_eq!(
        rx.wait_for(sent_before + queued).await.len(),
        sent_before + queued
    );
    let followed = cli.ok(&["deliveries", "recovery", again["id"].as_str().unwrap()]);
    assert!(
        followed.contains("done") && followed.contains("queued"),
        "{followed}"
    );
    let bad = cli.run(&["deliveries", "recover", "--webhook", &id, "--since", "soon"]);
    let said = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{said}");
    assert!(said.contains("since"), "{said}");
    cli.json(&["webhooks", "disable", &id]);
    let enabled = cli.json(&["webhooks", "enable", &id, "--recover"]);
    assert_eq!(enabled["recovery"]["status"], "held", "{enabled}");
    let types = cli.ok(&["event-types"]);
    assert!(
        types.contains("experiments.failed") && types.contains("experiments.done"),
        "{types}"
    );

    // Health: every attempt so far succeeded. The counts follow the deliveries' records, so
    // they are waited for a moment.
    let mut stats = Value::Null;
    for _ in 0..50 {
        stats = cli.json(&["webhooks", "stats", &id, "--window", "7d"]);
        if stats["totals"]["succeeded"].as_u64() >= Some(3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stats["hours"].as_array().unwrap().len(), 168, "{stats}");
    assert_eq!(
        (
            stats["totals"]["failed"].clone(),
            stats["success_rate"].clone()
        ),
        (serde_json::json!(0), serde_json::json!(1.0)),
        "{stats}"
    );
    let table = cli.ok(&["webhooks", "stats", &id]);
    assert!(table.contains("100.0 %"), "{table}");
    assert_eq!(
        code(&cli.run(&["webhooks", "stats", &id, "--window", "30d"])),
        1
    );
    let failed = cli.json(&["deliveries", "list", "--webhook", &id, "--status", "failed"]);
    assert_eq!(failed, serde_json::json!([]), "nothing failed yet");

    // Exit codes: 1 API refused (problem printed with its fields), 2 usage, 3 unreachable,
    // 4 a check failed.
    let refused = cli.run(&["webhooks", "create", "ftp://x", "--event", "nope"]);
    assert_eq!(code(&refused), 1);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("422") && err.contains("url:") && err.contains("events[0]:"),
        "{err}"
    );
    assert_eq!(code(&cli.run(&["webhooks", "get", "wh_missing"])), 1);
    let bad_data = cli.run(&["events", "send", "--type", "jobs.failed", "--data", "{nope"]);
    assert_eq!(code(&bad_data), 2);
    let unreachable = cli.run(&["--url", "http://127.0.0.1:1", "webhooks", "list"]);
    assert_eq!(code(&unreachable), 3);
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("refused"));
    let remote_without_key = cli.run(&["--url", "https://herald.example.com", "webhooks", "list"]);
    assert_eq!(code(&remote_without_key), 2);
    let wrong_key = Cli::new(&dev)
        .env("HERALD_API_KEY", "hk_wrong")
        .run(&["webhooks", "list"]);
    assert_eq!(code(&wrong_key), 1);
    assert!(String::from_utf8_lossy(&wrong_key.stderr).contains("401"));
    rx.set_status(500);
    assert_eq!(code(&cli.run(&["webhooks", "test", &id])), 4);

    cli.ok(&["webhooks", "delete", &id]);
    assert!(webhooks(&cli).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_accepts_a_captured_delivery_and_refuses_a_tampered_one() {
    let dev = DevServer::start(Path::new(env!("CARGO_BIN_EXE_herald")));
    let cli = Cli::new(&dev);
    let rx = Receiver::start(204).await;
    let created = cli.json(&["webhooks", "create", &rx.url, "--event", "builds.*"]);
    let secret = created["secret"].as_str().unwrap().to_string();
    cli.ok(&["events", "send", "--type", "builds.failed"]);
    let req = rx.wait_for(1).await[0].clone();
    let raw = |body: &[u8]| {
        let mut raw = format!("POST {} HTTP/1.1\r\n", req.path).into_bytes();
        for (name, value) in &req.headers {
            raw.extend_from_slice(format!("{name}: {}\r\n", value.to_str().unwrap()).as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(body);
        raw
    };
    let good = cli.run_with_stdin(&["verify", "--secret", &secret], Some(&raw(&req.body)));
    assert_eq!(code(&good), 0, "{}", String::from_utf8_lossy(&good.stderr));
    assert!(String::from_utf8_lossy(&good.stdout).starts_with("valid"));

    let mut tampered_body = req.body.to_vec();
    tampered_body[2] ^= 1;
    // Content-Length still names the real length, so the tampered byte is inside it.
    let tampered = cli.run_with_stdin(&["verify", "--secret", &secret], Some(&raw(&tampered_body)));
    assert_eq!(code(&tampered), 4);
    assert!(String::from_utf8_lossy(&tampered.stderr).contains("no signature matches"));
    let other = format!("whsec_{}", "Q".repeat(32));
    assert_eq!(
        code(&cli.run_with_stdin(&["verify", "--secret", &other], Some(&raw(&req.body)))),
        4
    );
    let missing = cli.run_with_stdin(&["verify", "--secret", &secret], Some(b"x: y\n\n{}"));
    assert_eq!(code(&missing), 2);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("webhook-id"));
}

const FILE: &str = r#"
version: 1
owner: ml-platform
webhooks:
  - name: experiments-to-slack
    url: ${SLACK_URL}
    kind: slack
    events: [experiments.done]
    filters:
      project_names: ["Light*"]
  - name: pipeline-requests
    url: ${RX_URL}/ubiops
    events: [requests.finished]
    filters:
      object: {kind: pipeline, name: pipeline-1}
    headers:
      - key: Authorization
        value: Token ${TOKEN}
        protected: true
      - key: X-Team
        value: ml
    secret: ${SECRET}
"#;

/// A CLI whose environment fills `FILE`'s references.
fn file_cli<'a>(dev: &'a DevServer, rx: &Receiver, token: &str, secret: &str) -> Cli<'a> {
    Cli::new(dev)
        .env("SLACK_URL", &format!("{}/slack", rx.url))
        .env("RX_URL", &rx.url)
        .env("TOKEN", token)
        .env("SECRET", secret)
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_is_idempotent_plans_changes_and_never_touches_hand_made_webhooks() {
    let dev = DevServer::start(Path::new(env!("CARGO_BIN_EXE_herald")));
    let rx = Receiver::start(200).await;
    let secret = format!("whsec_{}", "S".repeat(32));
    let cli = file_cli(&dev, &rx, "t0ken-1", &secret);
    let dir = temp_dir();
    let file = write(&dir, "webhooks.yaml", FILE);
    let f = file.to_str().unwrap();
    let hand_made = cli.json(&[
        "webhooks",
        "create",
        &rx.url,
        "--event",
        "*",
        "--name",
        "experiments-to-slack",
    ]);

    let dry = cli.ok(&["apply", "-f", f, "--dry-run"]);
    assert!(
        dry.contains("+ experiments-to-slack") && dry.contains("+ pipeline-requests"),
        "{dry}"
    );
    assert!(
        dry.contains("\"${SLACK_URL}\" (from the environment)"),
        "the plan shows the reference: {dry}"
    );
    assert!(
        !dry.contains("t0ken-1") && !dry.contains(&secret),
        "no secrets in plans: {dry}"
    );
    assert!(dry.contains("2 to create"), "{dry}");
    assert_eq!(webhooks(&cli).len(), 1, "a dry run changes nothing");

    let first = cli.ok(&["apply", "-f", f]);
    assert!(first.contains("2 to create"), "{first}");
    let after_first = webhooks(&cli);
    assert_eq!(after_first.len(), 3);
    let pipeline = named(&after_first[1..], "pipeline-requests").clone();
    assert_eq!(pipeline["metadata"]["managed-by"], "ml-platform");
    assert_eq!(
        pipeline["headers"][0]["value"],
        Value::Null,
        "protected stays write-only"
    );
    let pid = pipeline["id"].as_str().unwrap();
    assert_eq!(
        cli.json(&["webhooks", "get", pid])["url"],
        format!("{}/ubiops", rx.url)
    );
    assert_eq!(
        Cli::new(&dev).json(&["webhooks", "get", pid])["metadata"]["apply-fingerprint"]
            .as_str()
            .map(|f| f.contains("t0ken")),
        Some(false)
    );

    // Second apply: nothing to do, nothing sent.
    let second = cli.ok(&["apply", "-f", f]);
    assert!(second.contains("No changes: 2 webhook(s)"), "{second}");
    assert_eq!(
        webhooks(&cli),
        after_first,
        "the second apply changed nothing"
    );
    let plan = cli.json(&["apply", "-f", f, "--dry-run"]);
    assert_eq!(plan["summary"]["unchanged"], 2, "{plan}");

    // The protected header and the secret are in force: a delivery carries them.
    cli.ok(&[
        "events",
        "send",
        "--type",
        "requests.failed",
        "--object",
        "pipeline/pipeline-1",
    ]);
    // The hand-made webhook takes every event at the same receiver, so two arrive in
    // either order.
    let got = rx.wait_for(2).await;
    assert!(
        got.iter().any(|r| r.path == "/hook"),
        "the hand-made webhook is delivered to as well"
    );
    let delivery = got
        .iter()
        .find(|r| r.path == "/hook/ubiops")
        .expect("delivered to the pipeline hook");
    assert_eq!(delivery.header("authorization"), "Token t0ken-1");
    assert_eq!(delivery.header("x-team"), "ml");
    let ts: i64 = delivery.header("webhook-timestamp").parse().unwrap();
    herald_shared::signing::verify(
        &herald_shared::secret::Secret::new(secret.clone()),
        delivery.header("webhook-id"),
        ts,
        delivery.header("webhook-signature"),
        &delivery.body,
        ts,
        0,
    )
    .expect("signed with the file's secret");

    // A changed protected value is seen through the fingerprint; the dry run shows a diff.
    let rotated = file_cli(&dev, &rx, "t0ken-2", &secret);
    let diff = rotated.ok(&["apply", "-f", f, "--dry-run"]);
    assert!(
        diff.contains(&format!("~ pipeline-requests ({pid})")),
        "{diff}"
    );
    assert!(
        diff.contains("-     protected values or secret")
            && diff.contains("+     protected values or secret"),
        "{diff}"
    );
    assert!(
        diff.contains("1 to update") && !diff.contains("t0ken"),
        "{diff}"
    );
    // Edited fields show old and new values.
    let edited = FILE.replace("events: [requests.finished]", "events: [requests.failed]");
    let edited_file = write(&dir, "edited.yaml", &edited);
    let diff = cli.ok(&["apply", "-f", edited_file.to_str().unwrap(), "--dry-run"]);
    assert!(
        diff.contains("-     events: [\"requests.finished\"]"),
        "{diff}"
    );
    assert!(
        diff.contains("+     events: [\"requests.failed\"]"),
        "{diff}"
    );
    rotated.ok(&["apply", "-f", f]);
    assert!(rotated.ok(&["apply", "-f", f]).contains("No changes"));

    // Removing a webhook from the file deletes the managed one only, never the hand-made twin.
    let smaller = FILE.split("  - name: pipeline-requests").next().unwrap();
    let smaller_file = write(&dir, "smaller.yaml", smaller);
    let out = cli.ok(&["apply", "-f", smaller_file.to_str().unwrap()]);
    assert!(
        out.contains(&format!("- pipeline-requests ({pid})")),
        "{out}"
    );
    let left = webhooks(&cli);
    assert_eq!(left.len(), 2);
    assert!(
        left.iter().any(|w| w["id"] == hand_made["id"]),
        "the hand-made webhook is untouched"
    );
    assert_eq!(
        left.iter().find(|w| w["id"] == hand_made["id"]).unwrap()["updated_at"],
        hand_made["updated_at"]
    );
    // Another owner's file leaves this owner's webhooks alone.
    let other = write(
        &dir,
        "other.yaml",
        "version: 1\nowner: someone-else\nwebhooks: []\n",
    );
    assert!(cli
        .ok(&["apply", "-f", other.to_str().unwrap()])
        .contains("No changes: 0"));
    assert_eq!(webhooks(&cli).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn export_then_apply_round_trips_with_no_changes() {
    let dev = DevServer::start(Path::new(env!("CARGO_BIN_EXE_herald")));
    let rx = Receiver::start(200).await;
    let secret = format!("whsec_{}", "E".repeat(40));
    let cli = file_cli(&dev, &rx, "abc", &secret);
    let dir = temp_dir();
    let file = write(&dir, "webhooks.yaml", FILE);
    cli.ok(&["apply", "-f", file.to_str().unwrap()]);
    let before = webhooks(&cli);

    let exported = dir.join("exported.yaml");
    cli.ok(&[
        "export",
        "--owner",
        "ml-platform",
        "-f",
        exported.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("owner: ml-platform"), "{text}");
    assert!(
        text.contains("${HERALD_PIPELINE_REQUESTS_AUTHORIZATION}"),
        "{text}"
    );
    assert!(
        text.contains("${HERALD_PIPELINE_REQUESTS_SECRET}"),
        "{text}"
    );
    assert!(
        !text.contains("abc") && !text.contains(&secret),
        "no secrets exported: {text}"
    );
    assert_schema_valid(&exported);

    let again = cli
        .env("HERALD_PIPELINE_REQUESTS_AUTHORIZATION", "Token abc")
        .env("HERALD_PIPELINE_REQUESTS_SECRET", &secret);
    let out = again.ok(&["apply", "-f", exported.to_str().unwrap()]);
    assert!(out.contains("No changes: 2 webhook(s)"), "{out}");
    assert_eq!(webhooks(&again), before);
}

#[test]
fn bad_files_are_refused_before_anything_is_sent() {
    let dev = DevServer::start(Path::new(env!("CARGO_BIN_EXE_herald")));
    let cli = Cli::new(&dev);
    let dir = temp_dir();
    let bad = write(
        &dir,
        "bad.yaml",
        "version: 1\nwebhooks:\n  - name: a\n    url: ${NOT_SET_ANYWHERE}\n    events: [nope.never]\n",
    );
    let out = cli.run(&["apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("webhooks[0].url: environment variable NOT_SET_ANYWHERE is not set"),
        "{err}"
    );
    let typo = write(
        &dir,
        "typo.yaml",
        "version: 1\nwebhooks:\n  - name: a\n    url: https://x.example.com\n    evnts: ['*']\n",
    );
    let out = cli.run(&["apply", "-f", typo.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("evnts"));
    assert!(webhooks(&cli).is_empty());
}

/// Every example file is valid against the JSON Schema and against the API (a dry run).
#[test]
fn examples_validate_against_the_schema_and_plan_cleanly() {
    let dev = DevServer::start(Path::new(env!("CARGO_BIN_EXE_herald")));
    let mut cli = Cli::new(&dev);
    for var in [
        "SLACK_WEBHOOK_URL",
        "DEPLOY_HOOK_URL",
        "TEAMS_WORKFLOW_URL",
        "DET_HOOK_URL",
        "DISCORD_WEBHOOK_URL",
    ] {
        cli = cli.env(var, "http://127.0.0.1:9/hook");
    }
    let cli = cli
        .env("PIPELINE_HOOK_TOKEN", "t")
        .env("PIPELINE_HOOK_SECRET", &format!("whsec_{}", "P".repeat(32)));
    let dir = workspace_root().join("examples/webhooks");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_schema_valid(&path);
        let plan = cli.json(&["apply", "-f", path.to_str().unwrap(), "--dry-run"]);
        assert!(
            plan["summary"]["create"].as_u64().unwrap() >= 1,
            "{}: {plan}",
            path.display()
        );
        seen += 1;
    }
    assert_eq!(seen, 4, "one example per seed platform");
}

fn assert_schema_valid(file: &Path) {
    let schema = workspace_root().join("examples/webhooks.schema.json");
    let out = Command::new(venv_bin("python"))
        .args([
            "-c",
            "import sys, json, yaml, jsonschema\n\
             jsonschema.validate(yaml.safe_load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
            file.to_str().unwrap(),
            schema.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not match the schema: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

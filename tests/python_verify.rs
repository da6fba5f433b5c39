//! Cross-language check: deliveries verify with the official Python `standardwebhooks` package,
//! and a tampered delivery does not.

use herald_shared::secret::Secret;
use herald_shared::signing;
use herald_tests::receiver::{Captured, Receiver};
use herald_tests::stack::Stack;
use herald_tests::venv_bin;
use serde_json::json;
use std::process::Command;

const VERIFY: &str = r#"
import sys
from standardwebhooks.webhooks import Webhook
secret, body_path, msg_id, ts, sig = sys.argv[1:]
body = open(body_path, "rb").read()
Webhook(secret).verify(body, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
print("verified")
"#;

/// Runs the Python verifier; `true` when it accepts.
fn python_verifies(secret: &str, body: &[u8], msg_id: &str, ts: &str, sig: &str) -> bool {
    let dir = std::env::temp_dir().join(format!("herald-verify-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let body_path = dir.join("body");
    std::fs::write(&body_path, body).unwrap();
    let out = Command::new(venv_bin("python"))
        .args([
            "-c",
            VERIFY,
            secret,
            body_path.to_str().unwrap(),
            msg_id,
            ts,
            sig,
        ])
        .output()
        .expect("python runs");
    std::fs::remove_dir_all(&dir).ok();
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "verified"
}

fn verify_captured(secret: &str, req: &Captured, body: &[u8]) -> bool {
    python_verifies(
        secret,
        body,
        req.header("webhook-id"),
        req.header("webhook-timestamp"),
        req.header("webhook-signature"),
    )
}

#[tokio::test]
async fn delivered_requests_verify_with_python_standardwebhooks() {
    let stack = Stack::memory().await;
    for kind in ["standard", "slack"] {
        let rx = Receiver::start(200).await;
        let webhook = stack
            .create_webhook(json!({"url": rx.url, "kind": kind, "events": ["requests.*"]}))
            .await;
        stack
            .post_event(json!({"type": "requests.failed", "object": {"kind": "pipeline", "name": "p-1", "version": "v1"}, "text": "ünïcödé ✓"}))
            .await;
        assert!(stack.drain().await.is_empty());
        let req = &rx.wait_for(1).await[0];
        let secret = webhook["secret"].as_str().unwrap();
        assert!(
            verify_captured(secret, req, &req.body),
            "{kind} delivery verifies"
        );
        let mut tampered = req.body.to_vec();
        tampered.push(b' ');
        assert!(
            !verify_captured(secret, req, &tampered),
            "a tampered {kind} body does not verify"
        );
        let other = signing::generate_secret();
        assert!(
            !verify_captured(other.expose(), req, &req.body),
            "another secret does not verify"
        );
    }
}

#[tokio::test]
async fn a_delivery_during_rotation_verifies_with_either_secret() {
    let stack = Stack::memory().await;
    let rx = Receiver::start(200).await;
    let webhook = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let old = webhook["secret"].as_str().unwrap().to_string();
    let path = format!(
        "/v1/webhooks/{}/secret/rotate",
        webhook["id"].as_str().unwrap()
    );
    let (status, _, rotated) = stack.call("POST", &path, None, None).await;
    assert_eq!(status, http::StatusCode::OK);
    let new = rotated["secret"].as_str().unwrap().to_string();
    stack
        .post_event(json!({"type": "deployments.succeeded", "project": "web-shop"}))
        .await;
    assert!(stack.drain().await.is_empty());
    let req = &rx.wait_for(1).await[0];
    assert_eq!(req.header("webhook-signature").split(' ').count(), 2);
    assert!(
        verify_captured(&old, req, &req.body),
        "the old secret still verifies"
    );
    assert!(
        verify_captured(&new, req, &req.body),
        "the new secret verifies"
    );
    let stranger = Secret::new(signing::generate_secret().expose());
    assert!(!verify_captured(stranger.expose(), req, &req.body));
}

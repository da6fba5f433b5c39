//! `herald dlq redrive` against SQS on moto: messages that kept failing go back to the queue.

use herald_shared::queue::Queue;
use herald_tests::moto::moto;
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn redrive_moves_dead_letters_back() {
    let m = moto();
    let queue = m.queue_with(1, Duration::from_secs(1)).await;
    queue
        .send_text("kept failing".into(), Duration::ZERO)
        .await
        .unwrap();
    // Received once and not deleted: on the next receive SQS moves it to the DLQ.
    assert_eq!(
        queue
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(queue
        .receive(10, Duration::from_secs(1))
        .await
        .unwrap()
        .is_empty());

    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["dlq", "redrive", "--queue-url", queue.url()])
        .env("AWS_ENDPOINT_URL", &m.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("herald runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("moved 1 message(s)"), "{stdout}");
    let back = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        back.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["kept failing"]
    );
}

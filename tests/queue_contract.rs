//! The queue contract against the in-memory queue and SQS on moto, and SQS's redrive to the
//! dead-letter queue: a message that keeps failing is kept, never dropped.

use herald_shared::queue::{MemoryQueue, Queue};
use herald_tests::contract::queue_contract;
use herald_tests::moto::moto;
use std::time::Duration;

#[tokio::test]
async fn memory_queue_keeps_the_contract() {
    queue_contract(&MemoryQueue::default(), Duration::ZERO).await;
}

#[tokio::test]
async fn sqs_queue_keeps_the_contract() {
    let queue = moto().queue(5).await;
    queue_contract(&queue, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sqs_messages_not_deleted_come_back_then_land_in_the_dlq() {
    let moto = moto();
    let queue = moto.queue(2).await;
    let client = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    queue
        .send_text("poison".into(), Duration::ZERO)
        .await
        .unwrap();

    for expected_count in 1..=2 {
        let got = queue.receive(10, Duration::from_secs(1)).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].receive_count, expected_count);
        // Give up on it at once instead of waiting out the visibility timeout.
        client
            .change_message_visibility()
            .queue_url(queue.url())
            .receipt_handle(&got[0].receipt)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    assert!(queue
        .receive(10, Duration::from_secs(1))
        .await
        .unwrap()
        .is_empty());

    let dlq_url = format!("{}-dlq", queue.url());
    let dead = client
        .receive_message()
        .queue_url(&dlq_url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let bodies: Vec<_> = dead.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, ["poison"]);
}

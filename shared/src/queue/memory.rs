//! An in-memory queue with SQS's semantics that matter here: delays, a visibility timeout
//! (a message not deleted comes back), receive counts, and a dead-letter list after
//! `max_receives`, so nothing is lost silently.

use super::{Encoded, Queue, Received};
use crate::error::Result;
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use ulid::Ulid;

/// A message as the queue holds it: its text, as SQS would.
#[derive(Clone)]
struct Stored {
    id: String,
    body: String,
    receive_count: u32,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Stored>,
    delayed: Vec<(Instant, Stored)>,
    in_flight: HashMap<String, (Instant, Stored)>,
    dead: Vec<String>,
}

pub struct MemoryQueue {
    state: Mutex<State>,
    notify: Notify,
    visibility: Duration,
    max_receives: u32,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(super::VISIBILITY_TIMEOUT, super::MAX_RECEIVES)
    }
}

impl MemoryQueue {
    pub fn new(visibility: Duration, max_receives: u32) -> Self {
        MemoryQueue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            visibility,
            max_receives,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bodies that exceeded `max_receives` (the local stack's DLQ).
    pub fn dead_letters(&self) -> Vec<String> {
        self.lock().dead.clone()
    }

    /// Messages waiting, delayed or in flight.
    pub fn depth(&self) -> usize {
        let s = self.lock();
        s.ready.len() + s.delayed.len() + s.in_flight.len()
    }

    fn push(&self, body: String, delay: Duration) {
        let message = Stored {
            id: Ulid::new().to_string(),
            body,
            receive_count: 0,
        };
        let mut s = self.lock();
        if delay.is_zero() {
            s.ready.push_back(message);
        } else {
            s.delayed.push((Instant::now() + delay, message));
        }
        drop(s);
        self.notify.notify_waiters();
    }

    /// Moves due delayed messages and expired in-flight ones back to `ready`; returns when the
    /// next such move is due.
    fn promote(&self, s: &mut State, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut i = 0;
        while i < s.delayed.len() {
            if s.delayed[i].0 <= now {
                let (_, m) = s.delayed.swap_remove(i);
                s.ready.push_back(m);
            } else {
                next = Some(next.map_or(s.delayed[i].0, |n| n.min(s.delayed[i].0)));
                i += 1;
            }
        }
        let expired: Vec<String> = s
            .in_flight
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(r, _)| r.clone())
            .collect();
        for receipt in expired {
            if let Some((_, m)) = s.in_flight.remove(&receipt) {
                if m.receive_count >= self.max_receives {
                    tracing::error!(message_id = %m.id, "message moved to the dead-letter list");
                    s.dead.push(m.body);
                } else {
                    s.ready.push_back(m);
                }
            }
        }
        for (deadline, _) in s.in_flight.values() {
            next = Some(next.map_or(*deadline, |n| n.min(*deadline)));
        }
        next
    }
}

impl MemoryQueue {
    /// Queues `body` as it is, refused where SQS would refuse it: what any producer may put on
    /// a queue, a message Herald did not make included.
    pub fn send_text(&self, body: String, delay: Duration) -> Result<()> {
        super::check(&body)?;
        self.push(body, delay);
        Ok(())
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, message: Encoded, delay: Duration) -> Result<()> {
        self.send_text(message.into_string(), delay)
    }

    async fn send_batch(&self, messages: Vec<Encoded>) -> Result<Vec<Result<()>>> {
        Ok(messages
            .into_iter()
            .map(|m| self.send_text(m.into_string(), Duration::ZERO))
            .collect())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>> {
        let give_up = Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            let next_due = {
                let now = Instant::now();
                let mut s = self.lock();
                let next_due = self.promote(&mut s, now);
                let mut out = Vec::new();
                while out.len() < max.clamp(1, 10) {
                    let Some(mut m) = s.ready.pop_front() else {
                        break;
                    };
                    m.receive_count += 1;
                    let receipt = Ulid::new().to_string();
                    out.push(Received {
                        message_id: m.id.clone(),
                        receipt: receipt.clone(),
                        body: m.body.clone(),
                        receive_count: m.receive_count,
                    });
                    s.in_flight.insert(receipt, (now + self.visibility, m));
                }
                if !out.is_empty() {
                    return Ok(out);
                }
                next_due
            };
            let now = Instant::now();
            if now >= give_up {
                return Ok(Vec::new());
            }
            let until = next_due.map_or(give_up, |d| d.min(give_up));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        self.lock().in_flight.remove(receipt);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn send_receive_delete() {
        let q = MemoryQueue::default();
        for body in ["a", "b", "c"] {
            q.send_text(body.into(), Duration::ZERO).unwrap();
        }
        let got = q.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(
            got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        for m in &got {
            q.delete(&m.receipt).await.unwrap();
        }
        assert_eq!(q.depth(), 0);
        assert!(q
            .receive(10, Duration::from_millis(10))
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn undeleted_messages_return_then_go_to_dead_letters() {
        let q = MemoryQueue::new(Duration::from_secs(30), 2);
        q.send_text("x".into(), Duration::ZERO).unwrap();
        let first = q.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(first[0].receive_count, 1);
        assert!(
            q.receive(1, Duration::from_secs(1))
                .await
                .unwrap()
                .is_empty(),
            "invisible while in flight"
        );
        let second = q.receive(1, Duration::from_secs(60)).await.unwrap();
        assert_eq!(second[0].receive_count, 2);
        assert!(q
            .receive(1, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(q.dead_letters(), ["x"]);
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_messages_wait() {
        let q = MemoryQueue::default();
        q.send_text("later".into(), Duration::from_secs(5)).unwrap();
        assert!(q
            .receive(1, Duration::from_secs(4))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            q.receive(1, Duration::from_secs(2)).await.unwrap()[0].body,
            "later"
        );
    }
}

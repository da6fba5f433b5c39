//! Slack incoming-webhook messages: Block Kit within Slack's documented limits.

use super::parts::{self, Status};
use super::Formatter;
use crate::event::Event;
use serde_json::{json, Value};

pub struct Slack;

const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;

/// Slack mrkdwn treats `&`, `<` and `>` as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn mrkdwn(text: impl Into<String>) -> Value {
    json!({"type": "mrkdwn", "text": text.into()})
}

impl Formatter for Slack {
    fn format(&self, event: &Event, include_result: bool, out: &mut Vec<u8>) {
        let emoji = Status::of(event).emoji();
        let test = parts::test_marker(event);
        let header = parts::truncate(
            &format!("{emoji} {test}{}", parts::headline(event)),
            HEADER_MAX,
        )
        .into_owned();

        let fields: Vec<Value> = parts::facts(event)
            .iter()
            .map(|f| {
                let text = format!("*{}*\n{}", escape(&f.label), escape(&f.value));
                mrkdwn(parts::truncate(&text, FIELD_MAX))
            })
            .collect();

        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
            json!({"type": "section", "text": mrkdwn(parts::truncate(&escape(&event.text), SECTION_MAX))}),
            json!({"type": "section", "fields": fields}),
        ];
        if let Some(body) = parts::result_json(event, include_result, true) {
            // Room for the code fence within the section limit.
            let code = parts::truncate(&body, SECTION_MAX - 16);
            blocks.push(
                json!({"type": "section", "text": mrkdwn(format!("*Result*\n```{code}```"))}),
            );
        }
        if let Some(url) = parts::link(event) {
            blocks.push(json!({"type": "actions", "elements": [{
                "type": "button", "text": {"type": "plain_text", "text": "Open", "emoji": false}, "url": url
            }]}));
        }
        let when = parts::Timestamp(&event.occurred_at);
        blocks.push(json!({"type": "context", "elements": [
            mrkdwn(parts::truncate(&format!("`{}` · {} · {when}", event.event_type, escape(&event.id)), FIELD_MAX))
        ]}));

        let fallback = format!("{emoji} {test}{}", event.text);
        let fallback = parts::truncate(&fallback, SECTION_MAX);
        parts::write_json(out, &json!({"text": fallback, "blocks": blocks}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use crate::format::render;
    use crate::webhook::Kind;
    use time::OffsetDateTime;

    fn slack(event: &Event, include_result: bool) -> Value {
        serde_json::from_slice(&render(Kind::Slack, event, include_result)).unwrap()
    }

    /// The limits Slack documents for the blocks Herald uses.
    fn assert_valid_block_kit(msg: &Value) {
        let blocks = msg["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert!(msg["text"].as_str().unwrap().chars().count() <= 3000);
        for b in blocks {
            match b["type"].as_str().unwrap() {
                "header" => {
                    assert_eq!(b["text"]["type"], "plain_text");
                    assert!(b["text"]["text"].as_str().unwrap().chars().count() <= 150);
                }
                "section" => {
                    if let Some(t) = b["text"]["text"].as_str() {
                        assert!(t.chars().count() <= 3000);
                    }
                    if let Some(fields) = b["fields"].as_array() {
                        assert!(fields.len() <= 10);
                        for f in fields {
                            assert!(f["text"].as_str().unwrap().chars().count() <= 2000);
                        }
                    }
                }
                "actions" => assert!(b["elements"][0]["url"].as_str().unwrap().len() <= 3000),
                "context" => assert!(b["elements"].as_array().unwrap().len() <= 10),
                other => panic!("unexpected block {other}"),
            }
        }
    }

    #[test]
    fn every_sample_is_valid_block_kit_with_emoji_and_link() {
        for t in catalog::EVENT_TYPES {
            let e = Event::sample(t, OffsetDateTime::UNIX_EPOCH);
            let msg = slack(&e, true);
            assert_valid_block_kit(&msg);
            let header = msg["blocks"][0]["text"]["text"].as_str().unwrap();
            assert!(
                header.starts_with(Status::parse(t.status).emoji()),
                "{header}"
            );
            assert!(header.contains("[TEST]"));
        }
        let e = Event::sample(
            catalog::find("experiments.failed").unwrap(),
            OffsetDateTime::UNIX_EPOCH,
        );
        let msg = slack(&e, false);
        assert_eq!(
            msg["blocks"][0]["text"]["text"],
            "❌ [TEST] experiment cifar10_pytorch_const profiler failed"
        );
        let actions = msg["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "actions")
            .unwrap();
        assert_eq!(
            actions["elements"][0]["url"],
            "https://ml.example.com/det/experiments/1/overview"
        );
    }

    #[test]
    fn long_fields_are_truncated_and_mrkdwn_escaped() {
        let mut e = Event::sample(
            catalog::find("jobs.failed").unwrap(),
            OffsetDateTime::UNIX_EPOCH,
        );
        e.object.as_mut().unwrap().name = "n".repeat(500);
        e.text = format!("<!channel> & {}", "t".repeat(5000));
        e.project = Some("p".repeat(3000));
        let msg = slack(&e, false);
        assert_valid_block_kit(&msg);
        let section = msg["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(section.starts_with("&lt;!channel&gt; &amp; "));
        assert!(section.ends_with('…'));
    }
}

//! Slack incoming-webhook messages: Block Kit within Slack's documented limits.

use super::Formatter;
use crate::event::Event;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

pub struct Slack;

const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
const URL_MAX: usize = 3000;

fn status_emoji(status: &str) -> &'static str {
    match status {
        "started" => "🚀",
        "succeeded" | "completed" => "✅",
        "failed" => "❌",
        "stopped" => "⏹️",
        "cancelled" => "🚫",
        _ => "🔔",
    }
}

/// Cuts to at most `max` characters, marking the cut with an ellipsis.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Slack mrkdwn treats `&`, `<` and `>` as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A link the event carries in `data.url` or `data.link`, if it is http(s).
fn link(event: &Event) -> Option<&str> {
    ["url", "link"]
        .iter()
        .filter_map(|k| event.data.get(*k).and_then(Value::as_str))
        .find(|u| u.len() <= URL_MAX && (u.starts_with("https://") || u.starts_with("http://")))
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

impl Formatter for Slack {
    fn format(&self, event: &Event, include_result: bool, out: &mut Vec<u8>) {
        let (resource, status) = event
            .event_type
            .split_once('.')
            .unwrap_or((&event.event_type, ""));
        let emoji = status_emoji(status);
        let test = if event.test { "[TEST] " } else { "" };
        let request = if resource == "requests" {
            " request"
        } else {
            ""
        };
        let subject = match &event.object {
            Some(o) => format!("{} {}{request}", o.kind, o.name),
            None => resource.trim_end_matches('s').to_string(),
        };
        let header = truncate(&format!("{emoji} {test}{subject} {status}"), HEADER_MAX);

        let mut fields = Vec::with_capacity(4);
        if let Some(p) = &event.project {
            fields.push(mrkdwn(truncate(
                &format!("*Project*\n{}", escape(p)),
                FIELD_MAX,
            )));
        }
        if let Some(o) = &event.object {
            let version = o
                .version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default();
            fields.push(mrkdwn(truncate(
                &format!(
                    "*{}*\n{}{}",
                    escape(&o.kind),
                    escape(&o.name),
                    escape(&version)
                ),
                FIELD_MAX,
            )));
        }
        if let Some(env) = event.environment_type {
            fields.push(mrkdwn(format!("*Environment*\n{}", env.as_str())));
        }
        fields.push(mrkdwn(format!("*Status*\n{emoji} {status}")));

        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
            json!({"type": "section", "text": mrkdwn(truncate(&escape(&event.text), SECTION_MAX))}),
            json!({"type": "section", "fields": fields}),
        ];
        if include_result {
            if let Some(result) = &event.result {
                let body = serde_json::to_string_pretty(result).unwrap_or_default();
                // Room for the code fence within the section limit.
                let code = truncate(&body, SECTION_MAX - 16);
                blocks.push(
                    json!({"type": "section", "text": mrkdwn(format!("*Result*\n```{code}```"))}),
                );
            }
        }
        if let Some(url) = link(event) {
            blocks.push(json!({"type": "actions", "elements": [{
                "type": "button", "text": {"type": "plain_text", "text": "Open", "emoji": false}, "url": url
            }]}));
        }
        let when = event.occurred_at.format(&Rfc3339).unwrap_or_default();
        blocks.push(json!({"type": "context", "elements": [
            mrkdwn(truncate(&format!("`{}` · {} · {}", event.event_type, escape(&event.id), when), FIELD_MAX))
        ]}));

        let fallback = truncate(&format!("{emoji} {test}{}", event.text), SECTION_MAX);
        serde_json::to_writer(out, &json!({"text": fallback, "blocks": blocks}))
            .expect("serializing to a Vec cannot fail");
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
            assert!(header.starts_with(status_emoji(t.status)), "{header}");
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

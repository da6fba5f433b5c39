//! Slack incoming-webhook messages: Block Kit within Slack's documented limits.

use super::parts::{self, escape_entities as escape, Status};
use super::Formatter;
use crate::event::Event;
use serde_json::{json, Value};

pub struct Slack;

const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;

/// A mrkdwn text object. Whatever an event puts in one is escaped before it is cut, the top-level
/// `text` included, so no event can write a mention (`<!channel>`) or a link of its own.
fn mrkdwn(text: impl Into<String>) -> Value {
    json!({"type": "mrkdwn", "text": text.into()})
}

const RESULT_OPEN: &str = "*Result*\n```";
const RESULT_CLOSE: &str = "```";
/// The result's room within the section limit, around its heading and fence.
const RESULT_MAX: usize = SECTION_MAX - RESULT_OPEN.len() - RESULT_CLOSE.len();

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
            let fenced = parts::fence_safe(&body);
            let escaped = escape(&fenced);
            let code = parts::truncate(&escaped, RESULT_MAX);
            let text = format!("{RESULT_OPEN}{code}{RESULT_CLOSE}");
            blocks.push(json!({"type": "section", "text": mrkdwn(text)}));
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

        // What notifications show: mrkdwn too.
        let fallback = format!("{emoji} {test}{}", escape(&event.text));
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

    /// Every mrkdwn text of a message, the top-level `text` first.
    fn mrkdwn_texts(msg: &Value) -> Vec<&str> {
        fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(o) if o.get("type") == Some(&json!("mrkdwn")) => {
                    out.push(o["text"].as_str().unwrap())
                }
                Value::Object(o) => o.values().for_each(|v| walk(v, out)),
                Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = vec![msg["text"].as_str().unwrap()];
        walk(&msg["blocks"], &mut out);
        out
    }

    /// No markup of the event's own: no `<` or `>`, and every `&` starts an entity.
    fn assert_escaped(text: &str) {
        assert!(!text.contains(['<', '>']), "{text}");
        for (at, _) in text.match_indices('&') {
            assert!(
                ["&amp;", "&lt;", "&gt;"]
                    .iter()
                    .any(|e| text[at..].starts_with(e)),
                "a bare or cut entity at {at}: {text}"
            );
        }
    }

    fn result_section(msg: &Value) -> &str {
        msg["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .find(|t| t.starts_with("*Result*"))
            .unwrap()
    }

    #[test]
    fn a_text_or_result_cannot_ping_the_channel() {
        let mut e = Event::sample(
            catalog::find("requests.completed").unwrap(),
            OffsetDateTime::UNIX_EPOCH,
        );
        e.text = "```<!channel>``` <https://evil.example|docs> & done".into();
        e.result = Some(json!({"log": "```\n<!channel> ``````<!here>"}));
        let msg = slack(&e, true);
        assert_valid_block_kit(&msg);
        for text in mrkdwn_texts(&msg) {
            assert_escaped(text);
        }
        assert_eq!(
            msg["text"],
            "✅ [TEST] ```&lt;!channel&gt;``` &lt;https://evil.example|docs&gt; &amp; done"
        );
        let result = result_section(&msg);
        assert!(
            result.starts_with("*Result*\n```") && result.ends_with("}```"),
            "{result}"
        );
        assert_eq!(result.matches("```").count(), 2, "{result}");
    }

    #[test]
    fn texts_of_entities_are_cut_after_a_whole_one() {
        let mut e = Event::sample(
            catalog::find("jobs.failed").unwrap(),
            OffsetDateTime::UNIX_EPOCH,
        );
        e.text = "&".repeat(4096);
        e.result = Some(json!("<".repeat(3000)));
        let msg = slack(&e, true);
        assert_valid_block_kit(&msg);
        let section = msg["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(section.ends_with("&amp;…"), "{section}");
        assert!(msg["text"].as_str().unwrap().ends_with("&amp;…"));
        assert!(result_section(&msg).ends_with("&lt;…```"));
        for text in mrkdwn_texts(&msg) {
            assert_escaped(text);
        }
    }

    proptest::proptest! {
        // Each case renders a message of several KB: fewer cases than the default keep it quick.
        #![proptest_config(proptest::test_runner::Config::with_cases(64))]
        #[test]
        fn no_event_text_or_result_writes_markup(
            text in "[&<>`!a🇫é\n]{0,4096}", result in "[&<>`!a\\\"]{0,3000}", name in "[&<>*a]{1,256}",
        ) {
            let mut e = Event::sample(
                catalog::find("requests.completed").unwrap(),
                OffsetDateTime::UNIX_EPOCH,
            );
            e.text = text;
            e.object.as_mut().unwrap().name = name;
            e.result = Some(json!({"r": result}));
            let msg = slack(&e, true);
            assert_valid_block_kit(&msg);
            for text in mrkdwn_texts(&msg) {
                assert_escaped(text);
            }
            proptest::prop_assert_eq!(result_section(&msg).matches("```").count(), 2);
        }
    }
}

//! Discord execute-webhook bodies: the event's line as `content`, and one embed with the headline,
//! the facts and the result, within every limit Discord documents for messages and embeds.
//! `allowed_mentions` parses nothing, so no event text can ping `@everyone`, a role or a user.

use super::parts::{self, Fact, Status, Timestamp};
use super::Formatter;
use crate::event::Event;
use serde::Serialize;
use std::borrow::Cow;

pub struct Discord;

const CONTENT_MAX: usize = 2000;
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 4096;
const FIELDS_MAX: usize = 25;
const FIELD_NAME_MAX: usize = 256;
const FIELD_VALUE_MAX: usize = 1024;
const FOOTER_MAX: usize = 2048;
/// Title, description, field names and values, footer and author together.
const EMBED_TOTAL_MAX: usize = 6000;
/// Below this, a result cut to fit is noise rather than information.
const DESCRIPTION_MIN: usize = 64;

const CODE_OPEN: &str = "```json\n";
const CODE_CLOSE: &str = "\n```";

const GREEN: u32 = 0x57F287;
const RED: u32 = 0xED4245;
const GREY: u32 = 0x95A5A6;
const BLUE: u32 = 0x3498DB;
const BLURPLE: u32 = 0x5865F2;

#[derive(Serialize)]
struct Message<'a> {
    content: String,
    embeds: [Embed<'a>; 1],
    allowed_mentions: AllowedMentions,
}

#[derive(Serialize)]
struct AllowedMentions {
    parse: [&'static str; 0],
}

#[derive(Serialize)]
struct Embed<'a> {
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    color: u32,
    fields: Vec<Field<'a>>,
    footer: Footer,
    timestamp: Timestamp<'a>,
}

#[derive(Serialize)]
struct Field<'a> {
    name: Cow<'a, str>,
    value: Cow<'a, str>,
    inline: bool,
}

impl<'a> Field<'a> {
    fn new(fact: Fact<'a>) -> Self {
        Field {
            name: cut(fact.label, FIELD_NAME_MAX),
            value: cut(fact.value, FIELD_VALUE_MAX),
            inline: true,
        }
    }

    fn chars(&self) -> usize {
        self.name.chars().count() + self.value.chars().count()
    }
}

#[derive(Serialize)]
struct Footer {
    text: String,
}

fn cut(text: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(s) => parts::truncate(s, max),
        Cow::Owned(s) => Cow::Owned(parts::truncate(&s, max).into_owned()),
    }
}

fn color(status: Status) -> u32 {
    match status {
        Status::Succeeded => GREEN,
        Status::Failed => RED,
        Status::Stopped | Status::Cancelled => GREY,
        Status::Started => BLUE,
        Status::Other => BLURPLE,
    }
}

/// The result in a code block of at most `max` characters, fences included.
fn result_block(code: &str, max: usize) -> Option<String> {
    let room = max.checked_sub(CODE_OPEN.len() + CODE_CLOSE.len())?;
    let code = parts::fence_safe(code);
    Some(format!(
        "{CODE_OPEN}{}{CODE_CLOSE}",
        parts::truncate(&code, room)
    ))
}

impl Formatter for Discord {
    fn format(&self, event: &Event, include_result: bool, out: &mut Vec<u8>) {
        let status = Status::of(event);
        let test = parts::test_marker(event);
        let content = format!("{} {test}{}", status.emoji(), event.text);
        let title = format!("{test}{}", parts::capitalize(&parts::headline(event)));
        let title = parts::truncate(&title, TITLE_MAX).into_owned();
        let footer = format!("{} · {}", event.event_type, event.id);
        let footer = parts::truncate(&footer, FOOTER_MAX).into_owned();

        let mut fields: Vec<Field> = parts::facts(event).into_iter().map(Field::new).collect();
        let mut used = title.chars().count()
            + footer.chars().count()
            + fields.iter().map(Field::chars).sum::<usize>();

        // The result comes before the platform's details: the webhook asked for it.
        let room = DESCRIPTION_MAX.min(EMBED_TOTAL_MAX.saturating_sub(used));
        let description = parts::result_json(event, include_result, true)
            .filter(|_| room >= DESCRIPTION_MIN)
            .and_then(|code| result_block(&code, room));
        used += description.as_ref().map_or(0, |d| d.chars().count());

        for fact in parts::data_facts(event) {
            let field = Field::new(fact);
            if fields.len() == FIELDS_MAX || used + field.chars() > EMBED_TOTAL_MAX {
                break;
            }
            used += field.chars();
            fields.push(field);
        }

        let message = Message {
            content: parts::truncate(&content, CONTENT_MAX).into_owned(),
            embeds: [Embed {
                title,
                url: parts::link(event),
                description,
                color: color(status),
                fields,
                footer: Footer { text: footer },
                timestamp: Timestamp(&event.occurred_at),
            }],
            allowed_mentions: AllowedMentions { parse: [] },
        };
        parts::write_json(out, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use crate::format::render;
    use crate::webhook::Kind;
    use serde_json::{json, Value};
    use time::OffsetDateTime;

    fn discord(event: &Event, include_result: bool) -> Value {
        serde_json::from_slice(&render(Kind::Discord, event, include_result)).unwrap()
    }

    fn chars(v: &Value) -> usize {
        v.as_str().map_or(0, |s| s.chars().count())
    }

    /// Every limit Discord documents for an execute-webhook body with embeds.
    fn assert_valid_discord(msg: &Value) {
        let content = msg["content"].as_str().unwrap();
        assert!(!content.trim().is_empty() && content.chars().count() <= CONTENT_MAX);
        assert_eq!(msg["allowed_mentions"], json!({"parse": []}));
        let embeds = msg["embeds"].as_array().unwrap();
        assert_eq!(embeds.len(), 1);
        let e = &embeds[0];
        assert!(chars(&e["title"]) >= 1 && chars(&e["title"]) <= 256);
        assert!(chars(&e["description"]) <= 4096);
        assert!(chars(&e["footer"]["text"]) <= 2048);
        assert!(e["color"].as_u64().unwrap() <= 0xFFFFFF);
        let timestamp = e["timestamp"].as_str().unwrap();
        OffsetDateTime::parse(
            timestamp,
            &time::format_description::well_known::Iso8601::DEFAULT,
        )
        .unwrap();
        if let Some(url) = e.get("url") {
            let url = url.as_str().unwrap();
            assert!(url.starts_with("https://") || url.starts_with("http://"));
        }
        let fields = e["fields"].as_array().unwrap();
        assert!(fields.len() <= 25);
        let mut total = chars(&e["title"]) + chars(&e["description"]) + chars(&e["footer"]["text"]);
        for f in fields {
            let (name, value) = (f["name"].as_str().unwrap(), f["value"].as_str().unwrap());
            assert!(
                !name.trim().is_empty() && name.chars().count() <= 256,
                "{f}"
            );
            assert!(
                !value.trim().is_empty() && value.chars().count() <= 1024,
                "{f}"
            );
            total += chars(&f["name"]) + chars(&f["value"]);
        }
        assert!(total <= 6000, "embed has {total} characters");
    }

    fn sample(name: &str) -> Event {
        Event::sample(catalog::find(name).unwrap(), OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn every_sample_is_a_valid_message_colored_by_status() {
        for t in catalog::EVENT_TYPES {
            let msg = discord(&Event::sample(t, OffsetDateTime::UNIX_EPOCH), true);
            assert_valid_discord(&msg);
            assert!(msg["content"].as_str().unwrap().contains("[TEST]"));
            let expected = match t.status {
                "succeeded" | "completed" => GREEN,
                "failed" => RED,
                "stopped" | "cancelled" => GREY,
                _ => BLUE,
            };
            assert_eq!(msg["embeds"][0]["color"], expected, "{}", t.name);
        }
        let msg = discord(&sample("experiments.failed"), false);
        let embed = &msg["embeds"][0];
        assert_eq!(
            embed["title"],
            "[TEST] Experiment cifar10_pytorch_const profiler failed"
        );
        assert_eq!(
            embed["url"],
            "https://ml.example.com/det/experiments/1/overview"
        );
        assert_eq!(embed["timestamp"], "1970-01-01T00:00:00Z");
        assert!(embed.get("description").is_none(), "no result asked for");
    }

    #[test]
    fn no_url_without_an_http_link() {
        let mut e = sample("experiments.failed");
        let mut data = e.data.fields().clone();
        data.insert("url".into(), json!("javascript:alert(1)"));
        e.data = data.into();
        assert!(discord(&e, false)["embeds"][0].get("url").is_none());
    }

    #[test]
    fn mentions_in_event_text_ping_nobody() {
        let mut e = sample("jobs.failed");
        e.text = "@everyone @here <@123456789012345678> <@&987654321098765432> **bold** [x](https://e.example)"
            .into();
        e.project = Some("@everyone".into());
        let msg = discord(&e, false);
        assert_valid_discord(&msg);
        assert!(msg["content"].as_str().unwrap().contains("@everyone"));
        assert_eq!(
            msg["allowed_mentions"],
            json!({"parse": []}),
            "no users, roles or everyone: nothing in content is parsed as a mention"
        );
    }

    #[test]
    fn long_names_texts_projects_and_results_are_cut_to_the_limits() {
        let mut e = sample("requests.completed");
        let o = e.object.as_mut().unwrap();
        o.kind = "k".repeat(256);
        o.name = "n".repeat(256);
        o.version = Some("v".repeat(256));
        e.id = "i".repeat(128).into();
        e.text = "t".repeat(4096);
        e.project = Some("p".repeat(256));
        e.result = Some(json!({"blob": "r".repeat(15_000)}));
        let msg = discord(&e, true);
        assert_valid_discord(&msg);
        let embed = &msg["embeds"][0];
        assert!(msg["content"].as_str().unwrap().ends_with('…'));
        assert!(embed["title"].as_str().unwrap().ends_with('…'));
        let description = embed["description"].as_str().unwrap();
        assert!(description.starts_with("```json\n{") && description.ends_with("…\n```"));
    }

    #[test]
    fn many_data_fields_stop_at_25_and_the_total() {
        let mut e = sample("jobs.succeeded");
        e.data = (0..40).map(|i| (format!("key{i:02}"), json!(i))).collect();
        let msg = discord(&e, false);
        assert_valid_discord(&msg);
        let fields = msg["embeds"][0]["fields"].as_array().unwrap();
        assert_eq!(fields.len(), 25);
        assert_eq!(
            fields[3],
            json!({"name": "key00", "value": "0", "inline": true})
        );

        e.data = (0..40)
            .map(|i| {
                (
                    format!("{i:02}{}", "k".repeat(254)),
                    json!("v".repeat(1100)),
                )
            })
            .collect();
        e.result = Some(json!("r".repeat(5000)));
        let msg = discord(&e, true);
        assert_valid_discord(&msg);
        let fields = msg["embeds"][0]["fields"].as_array().unwrap();
        assert!(
            fields.len() < 25,
            "the 6000-character total stops them first"
        );
        assert!(
            msg["embeds"][0]["description"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                >= 3000
        );
    }

    #[test]
    fn a_result_cannot_close_its_code_block() {
        let mut e = sample("requests.completed");
        for result in [
            "```@everyone```",
            "``````[x](https://evil.example) @everyone",
        ] {
            e.result = Some(json!(result));
            let msg = discord(&e, true);
            let description = msg["embeds"][0]["description"].as_str().unwrap();
            assert_eq!(description.matches("```").count(), 2, "{description}");
        }
    }
}

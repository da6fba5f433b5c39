//! Microsoft Teams messages for a Workflows webhook (Power Automate's "post to a channel when a
//! webhook request is received"): one Adaptive Card 1.4 attachment with the headline coloured by
//! status, the text, a FactSet, the result, and an "Open" action when the event has a link.
//!
//! Teams refuses a message over about 28 KB ("request entity too large"), counting the whole
//! card, so the body is held to [`BODY_MAX`] bytes: every text is cut to a byte budget (escapes
//! count), the platform's details stop at theirs, and the result gets what is left.

use super::parts::{self, Fact, Status, Timestamp};
use super::Formatter;
use crate::event::Event;
use serde::Serialize;
use std::borrow::Cow;

pub struct Teams;

/// The whole body, in bytes: a margin under Teams' 28 KB for what the flow wraps around it.
pub const BODY_MAX: usize = 24_000;
const TITLE_MAX: (usize, usize) = (256, 1024);
const TEXT_MAX: (usize, usize) = (4096, 6144);
const FACT_TITLE_MAX: (usize, usize) = (128, 256);
const FACT_VALUE_MAX: (usize, usize) = (512, 768);
/// All of `data`'s facts together, in JSON bytes.
const DATA_FACTS_MAX: usize = 3072;
/// A fact's JSON around its title and value: `{"title":"","value":""},`.
const FACT_OVERHEAD: usize = 24;
/// Below this, a result cut to fit is noise rather than information.
const RESULT_MIN: usize = 64;

#[derive(Serialize)]
struct Message<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    attachments: [Attachment<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Attachment<'a> {
    content_type: &'static str,
    content_url: Option<&'static str>,
    content: Card<'a>,
}

#[derive(Serialize)]
struct Card<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'static str,
    body: Vec<Element<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<OpenUrl<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Element<'a> {
    TextBlock(TextBlock<'a>),
    FactSet { facts: Vec<TeamsFact<'a>> },
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct TextBlock<'a> {
    text: Cow<'a, str>,
    wrap: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    font_type: Option<&'static str>,
}

#[derive(Serialize)]
struct TeamsFact<'a> {
    title: Cow<'a, str>,
    value: Cow<'a, str>,
}

#[derive(Serialize)]
struct OpenUrl<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    url: &'a str,
}

fn cut(text: Cow<'_, str>, (chars, bytes): (usize, usize)) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(s) => parts::truncate_within(s, chars, bytes),
        Cow::Owned(s) => Cow::Owned(parts::truncate_within(&s, chars, bytes).into_owned()),
    }
}

impl<'a> TeamsFact<'a> {
    fn new(fact: Fact<'a>) -> Self {
        TeamsFact {
            title: cut(fact.label, FACT_TITLE_MAX),
            value: cut(fact.value, FACT_VALUE_MAX),
        }
    }

    fn json_len(&self) -> usize {
        parts::json_str_len(&self.title) + parts::json_str_len(&self.value) + FACT_OVERHEAD
    }
}

/// Adaptive Card colours: a status reads at a glance.
fn color(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "Good",
        Status::Failed => "Attention",
        Status::Started => "Accent",
        Status::Stopped | Status::Cancelled | Status::Other => "Default",
    }
}

fn facts(event: &Event) -> Vec<TeamsFact<'_>> {
    let mut facts: Vec<TeamsFact> = parts::facts(event)
        .into_iter()
        .map(TeamsFact::new)
        .collect();
    for (title, value) in [
        ("Event type", Cow::Borrowed(&*event.event_type)),
        ("Id", Cow::Borrowed(&*event.id)),
        (
            "Time",
            Cow::Owned(Timestamp(&event.occurred_at).to_string()),
        ),
    ] {
        facts.push(TeamsFact::new(Fact {
            label: title.into(),
            value,
        }));
    }
    let mut budget = DATA_FACTS_MAX;
    for fact in parts::data_facts(event).map(TeamsFact::new) {
        let Some(rest) = budget.checked_sub(fact.json_len()) else {
            break;
        };
        budget = rest;
        facts.push(fact);
    }
    facts
}

fn message<'a>(body: Vec<Element<'a>>, link: Option<&'a str>) -> Message<'a> {
    Message {
        kind: "message",
        attachments: [Attachment {
            content_type: "application/vnd.microsoft.card.adaptive",
            content_url: None,
            content: Card {
                schema: "http://adaptivecards.io/schemas/adaptive-card.json",
                kind: "AdaptiveCard",
                version: "1.4",
                body,
                actions: link
                    .map(|url| OpenUrl {
                        kind: "Action.OpenUrl",
                        title: "Open",
                        url,
                    })
                    .into_iter()
                    .collect(),
            },
        }],
    }
}

impl Formatter for Teams {
    fn format(&self, event: &Event, include_result: bool, out: &mut Vec<u8>) {
        let status = Status::of(event);
        let title = format!(
            "{} {}{}",
            status.emoji(),
            parts::test_marker(event),
            parts::headline(event)
        );
        let mut body = vec![
            Element::TextBlock(TextBlock {
                text: cut(Cow::Owned(title), TITLE_MAX),
                wrap: true,
                size: Some("Medium"),
                weight: Some("Bolder"),
                color: Some(color(status)),
                ..TextBlock::default()
            }),
            Element::TextBlock(TextBlock {
                text: cut(Cow::Borrowed(&event.text), TEXT_MAX),
                wrap: true,
                ..TextBlock::default()
            }),
            Element::FactSet {
                facts: facts(event),
            },
        ];
        // Compact: Teams' markdown would fold an indented result's line breaks anyway.
        let result = parts::result_json(event, include_result, false);
        if result.is_some() {
            body.push(Element::TextBlock(TextBlock {
                text: Cow::Borrowed("Result"),
                wrap: true,
                weight: Some("Bolder"),
                ..TextBlock::default()
            }));
            body.push(Element::TextBlock(TextBlock {
                text: Cow::Borrowed(""),
                wrap: true,
                font_type: Some("Monospace"),
                ..TextBlock::default()
            }));
        }
        let mut message = message(body, parts::link(event));
        let start = out.len();
        parts::write_json(out, &message);
        let Some(result) = result else {
            return;
        };
        // Measured with an empty result block: what is left is the result's.
        let room = BODY_MAX.saturating_sub(out.len() - start);
        let body = &mut message.attachments[0].content.body;
        if room < RESULT_MIN {
            body.truncate(body.len() - 2);
        } else if let Some(Element::TextBlock(block)) = body.last_mut() {
            block.text = parts::truncate_within(&result, usize::MAX, room);
        }
        out.truncate(start);
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

    fn sample(name: &str) -> Event {
        Event::sample(catalog::find(name).unwrap(), OffsetDateTime::UNIX_EPOCH)
    }

    /// The Workflows message envelope, the Adaptive Card 1.4 elements Herald uses, and the size.
    fn assert_valid_teams(raw: &[u8]) -> Value {
        assert!(raw.len() <= BODY_MAX, "{} bytes", raw.len());
        assert!(raw.len() < 28 * 1000, "under Teams' 28 KB");
        let msg: Value = serde_json::from_slice(raw).unwrap();
        assert_eq!(msg["type"], "message");
        let attachments = msg["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1);
        let a = &attachments[0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert!(a["contentUrl"].is_null());
        let card = &a["content"];
        assert_eq!(
            card["$schema"],
            "http://adaptivecards.io/schemas/adaptive-card.json"
        );
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        for element in card["body"].as_array().unwrap() {
            match element["type"].as_str().unwrap() {
                "TextBlock" => {
                    assert!(element["text"].is_string());
                    for (key, allowed) in [
                        (
                            "size",
                            &["Small", "Default", "Medium", "Large", "ExtraLarge"][..],
                        ),
                        ("weight", &["Lighter", "Default", "Bolder"]),
                        (
                            "color",
                            &[
                                "Default",
                                "Dark",
                                "Light",
                                "Accent",
                                "Good",
                                "Warning",
                                "Attention",
                            ],
                        ),
                        ("fontType", &["Default", "Monospace"]),
                    ] {
                        if let Some(v) = element.get(key) {
                            assert!(allowed.contains(&v.as_str().unwrap()), "{key}: {v}");
                        }
                    }
                }
                "FactSet" => {
                    for f in element["facts"].as_array().unwrap() {
                        assert!(f["title"].is_string() && f["value"].is_string(), "{f}");
                    }
                }
                other => panic!("unexpected element {other}"),
            }
        }
        if let Some(actions) = card.get("actions") {
            for a in actions.as_array().unwrap() {
                assert_eq!(a["type"], "Action.OpenUrl");
                assert!(a["url"].as_str().unwrap().starts_with("http"));
            }
        }
        msg
    }

    #[test]
    fn every_sample_is_a_valid_card_with_facts() {
        for t in catalog::EVENT_TYPES {
            let raw = render(
                Kind::Teams,
                &Event::sample(t, OffsetDateTime::UNIX_EPOCH),
                true,
            );
            let msg = assert_valid_teams(&raw);
            let body = &msg["attachments"][0]["content"]["body"];
            assert!(body[0]["text"].as_str().unwrap().contains("[TEST]"));
            let titles: Vec<&str> = body[2]["facts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["title"].as_str().unwrap())
                .collect();
            for title in ["Project", "Status", "Event type", "Id", "Time"] {
                assert!(titles.contains(&title), "{}: {titles:?}", t.name);
            }
        }
        let msg = assert_valid_teams(&render(Kind::Teams, &sample("deployments.failed"), false));
        let card = &msg["attachments"][0]["content"];
        assert_eq!(card["body"][0]["color"], "Attention");
        assert_eq!(card["actions"][0]["title"], "Open");
        assert_eq!(
            card["body"].as_array().unwrap().len(),
            3,
            "no result asked for"
        );
    }

    #[test]
    fn no_action_without_a_link() {
        let mut e = sample("jobs.failed");
        let mut data = e.data.fields().clone();
        data.remove("url");
        e.data = data.into();
        let msg = assert_valid_teams(&render(Kind::Teams, &e, false));
        assert!(msg["attachments"][0]["content"].get("actions").is_none());
    }

    /// Teams pings only for an `<at>` tag that the card's `msteams.entities` name, and no card
    /// Herald writes has any: a mention in an event's text stays text.
    #[test]
    fn mentions_in_event_text_ping_nobody() {
        let mut e = sample("jobs.failed");
        e.text = "<at>General</at> <at>Everyone</at> @General".into();
        e.project = Some("<at>General</at>".into());
        let msg = assert_valid_teams(&render(Kind::Teams, &e, false));
        let card = &msg["attachments"][0]["content"];
        assert!(card.get("msteams").is_none(), "{card}");
        assert_eq!(card["body"][1]["text"], e.text.as_str());
    }

    #[test]
    fn worst_case_events_stay_under_the_size_limit() {
        // Control characters are six bytes each once escaped: the most a text can grow.
        let nasty = |n: usize| "\u{1}".repeat(n);
        let mut e = sample("requests.completed");
        let o = e.object.as_mut().unwrap();
        o.kind = nasty(256);
        o.name = nasty(256);
        o.version = Some(nasty(256));
        o.id = Some(nasty(256));
        e.text = nasty(4096);
        e.project = Some(nasty(256));
        e.id = "i".repeat(128).into();
        e.data = (0..200)
            .map(|i| (format!("{i:03}{}", nasty(300)), json!(nasty(2000))))
            .chain([(
                "url".to_string(),
                json!(format!("https://x.example/{}", "\\".repeat(2000))),
            )])
            .collect();
        e.result = Some(json!({"r": nasty(2700)}));
        let raw = render(Kind::Teams, &e, true);
        let msg = assert_valid_teams(&raw);
        let body = msg["attachments"][0]["content"]["body"].as_array().unwrap();
        assert!(body[1]["text"].as_str().unwrap().ends_with('…'));
        let result = body.last().unwrap()["text"].as_str().unwrap();
        assert!(
            result.starts_with("{\"r\":") && result.ends_with('…'),
            "{result}"
        );
    }

    #[test]
    fn a_large_result_takes_the_room_left() {
        let mut e = sample("requests.completed");
        e.result = Some(json!({"blob": "r".repeat(30_000)}));
        let raw = render(Kind::Teams, &e, true);
        assert_valid_teams(&raw);
        assert!(
            raw.len() > BODY_MAX - 64,
            "{} bytes: the result fills the card",
            raw.len()
        );
        let small = render(Kind::Teams, &sample("requests.completed"), true);
        let msg = assert_valid_teams(&small);
        let body = msg["attachments"][0]["content"]["body"].as_array().unwrap();
        assert_eq!(body[3]["text"], "Result");
        assert_eq!(body[4]["fontType"], "Monospace");
        assert_eq!(body[4]["text"], r#"{"label":"legit","score":0.97}"#);
    }
}

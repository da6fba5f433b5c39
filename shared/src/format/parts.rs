//! What the formats share: the event's status, its headline and facts, its link, its time, and
//! truncation that keeps a text within a receiver's limits.

use crate::event::Event;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The longest link offered: the longest URL Herald accepts anywhere, and within what Slack (3000)
/// and Discord take.
pub const LINK_MAX: usize = 2048;

/// Herald's statuses as the formats tell them apart (`completed` is a request's success).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Started,
    Succeeded,
    Failed,
    Stopped,
    Cancelled,
    /// No catalog type has another status; kept so a new one degrades to a neutral rendering.
    Other,
}

impl Status {
    pub fn parse(status: &str) -> Status {
        match status {
            "started" => Status::Started,
            "succeeded" | "completed" => Status::Succeeded,
            "failed" => Status::Failed,
            "stopped" => Status::Stopped,
            "cancelled" => Status::Cancelled,
            _ => Status::Other,
        }
    }

    pub fn of(event: &Event) -> Status {
        Status::parse(resource_status(event).1)
    }

    pub fn emoji(self) -> &'static str {
        match self {
            Status::Started => "🚀",
            Status::Succeeded => "✅",
            Status::Failed => "❌",
            Status::Stopped => "⏹️",
            Status::Cancelled => "🚫",
            Status::Other => "🔔",
        }
    }
}

/// The two halves of the event's type: `("experiments", "failed")`.
pub fn resource_status(event: &Event) -> (&str, &str) {
    event
        .event_type
        .split_once('.')
        .unwrap_or((&event.event_type, ""))
}

/// What happened, in a few words: "experiment cifar10 failed", "deployment model-a request
/// completed", "build started".
pub fn headline(event: &Event) -> String {
    let (resource, status) = resource_status(event);
    match &event.object {
        Some(o) if resource == "requests" => format!("{} {} request {status}", o.kind, o.name),
        Some(o) => format!("{} {} {status}", o.kind, o.name),
        None => format!("{} {status}", resource.trim_end_matches('s')),
    }
}

/// Marks test deliveries wherever a person reads them.
pub fn test_marker(event: &Event) -> &'static str {
    if event.test {
        "[TEST] "
    } else {
        ""
    }
}

/// A labelled value shown beside the text (a Slack field, a Discord field, a Teams fact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact<'a> {
    pub label: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

impl<'a> Fact<'a> {
    fn new(label: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Self {
        Fact {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// Project, object, environment type and status, those the event has.
pub fn facts(event: &Event) -> Vec<Fact<'_>> {
    let mut facts = Vec::with_capacity(4);
    if let Some(p) = &event.project {
        facts.push(Fact::new("Project", p.as_str()));
    }
    if let Some(o) = &event.object {
        let value = match &o.version {
            Some(v) => Cow::Owned(format!("{} {v}", o.name)),
            None => Cow::Borrowed(o.name.as_str()),
        };
        facts.push(Fact::new(capitalize(&o.kind), value));
    }
    if let Some(env) = event.environment_type {
        facts.push(Fact::new("Environment type", env.as_str()));
    }
    let (_, status) = resource_status(event);
    facts.push(Fact::new(
        "Status",
        format!("{} {status}", Status::parse(status).emoji()),
    ));
    facts
}

/// The platform's own details: `data`'s top-level strings, numbers and booleans, in key order.
/// The link is left out (formats offer it as a button), and so are blank values, which Discord
/// refuses.
pub fn data_facts(event: &Event) -> impl Iterator<Item = Fact<'_>> {
    event.data.iter().filter_map(|(key, value)| {
        let value = match value {
            Value::String(s) => Cow::Borrowed(s.as_str()),
            Value::Number(n) => Cow::Owned(n.to_string()),
            Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            _ => return None,
        };
        let shown = !matches!(key.as_str(), "url" | "link")
            && !key.trim().is_empty()
            && !value.trim().is_empty();
        shown.then(|| Fact::new(key.as_str(), value))
    })
}

/// The result as indented JSON, when the webhook asked for it and the event has one.
pub fn result_json(event: &Event, include_result: bool, pretty: bool) -> Option<String> {
    let result = event.result.as_ref().filter(|_| include_result)?;
    if pretty {
        serde_json::to_string_pretty(result).ok()
    } else {
        serde_json::to_string(result).ok()
    }
}

/// A link the event carries in `data.url` or `data.link`, if it is a well-formed http(s) URL:
/// receivers refuse a message whose button or title link is not.
pub fn link(event: &Event) -> Option<&str> {
    ["url", "link"]
        .iter()
        .filter_map(|k| event.data.get(k).and_then(Value::as_str))
        .find(|u| {
            u.len() <= LINK_MAX
                && !u.chars().any(|c| c.is_whitespace() || c.is_control())
                && url::Url::parse(u)
                    .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.has_host())
        })
}

/// Writes `value` as JSON at the end of `out`.
pub fn write_json(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    serde_json::to_writer(out, value).expect("serializing to a Vec cannot fail");
}

/// Cuts to at most `max` characters, marking the cut with an ellipsis.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    truncate_within(text, max, usize::MAX)
}

/// Cuts to at most `max_chars` characters and `max_json` bytes once written as a JSON string
/// (without its quotes), marking the cut with an ellipsis. Byte limits are what a receiver that
/// measures the body (Teams) enforces, and escapes make a text longer there than it looks.
pub fn truncate_within(text: &str, max_chars: usize, max_json: usize) -> Cow<'_, str> {
    const ELLIPSIS: char = '…';
    let keep_chars = max_chars.saturating_sub(1);
    let keep_json = max_json.saturating_sub(ELLIPSIS.len_utf8());
    let (mut chars, mut json) = (0usize, 0usize);
    let mut keep = None;
    for (i, c) in text.char_indices() {
        let width = json_len(c);
        if keep.is_none() && (chars + 1 > keep_chars || json + width > keep_json) {
            keep = Some(i);
        }
        chars += 1;
        json += width;
        if chars > max_chars || json > max_json {
            if max_chars == 0 || max_json < ELLIPSIS.len_utf8() {
                return Cow::Borrowed("");
            }
            let end = keep.unwrap_or(i);
            let mut out = String::with_capacity(end + ELLIPSIS.len_utf8());
            out.push_str(&text[..end]);
            out.push(ELLIPSIS);
            return Cow::Owned(out);
        }
    }
    Cow::Borrowed(text)
}

/// How many bytes `c` takes in a JSON string as serde_json writes it.
pub fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The JSON-string length of a whole text.
pub fn json_str_len(text: &str) -> usize {
    text.chars().map(json_len).sum()
}

pub fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An RFC 3339 time (a profile of ISO 8601), formatted on the stack: no allocation per delivery.
pub struct Timestamp<'a>(pub &'a OffsetDateTime);

impl Timestamp<'_> {
    fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut buf = [0u8; 64];
        let mut rest = &mut buf[..];
        // What was written is what the writer advanced over (the returned count can fall short
        // of it for subsecond digits).
        let formatted = self
            .0
            .format_into(&mut rest, &Rfc3339)
            .map(|_| 64 - rest.len());
        match formatted {
            Ok(n) => f(std::str::from_utf8(&buf[..n]).unwrap_or_default()),
            // Years outside 0..=9999 have no RFC 3339 form.
            Err(_) => f(&self.0.unix_timestamp().to_string()),
        }
    }
}

impl serde::Serialize for Timestamp<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_text(|text| serializer.serialize_str(text))
    }
}

impl fmt::Display for Timestamp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(|text| f.write_str(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn event(data: Value) -> Event {
        Event::parse(
            &json!({"type": "jobs.failed", "data": data}),
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap()
    }

    #[test]
    fn links_must_be_well_formed_http() {
        for (data, expected) in [
            (
                json!({"url": "https://x.example/a?b=1"}),
                Some("https://x.example/a?b=1"),
            ),
            (
                json!({"link": "http://x.example"}),
                Some("http://x.example"),
            ),
            (
                json!({"url": "javascript:alert(1)", "link": "https://ok.example"}),
                Some("https://ok.example"),
            ),
            (json!({"url": "https://"}), None),
            (json!({"url": "https://x.example/a b"}), None),
            (json!({"url": " https://x.example"}), None),
            (
                json!({"url": format!("https://x.example/{}", "a".repeat(LINK_MAX))}),
                None,
            ),
            (json!({"url": 3}), None),
        ] {
            assert_eq!(link(&event(data.clone())), expected, "{data}");
        }
    }

    #[test]
    fn data_facts_are_scalars_without_the_link_or_blanks() {
        let e = event(
            json!({"url": "https://x.example", "b": 2.5, "a": "x", "c": true,
                             "nested": {"k": 1}, "list": [1], "blank": "  ", "none": null}),
        );
        let got: Vec<(String, String)> = data_facts(&e)
            .map(|f| (f.label.into_owned(), f.value.into_owned()))
            .collect();
        assert_eq!(
            got,
            [("a", "x"), ("b", "2.5"), ("c", "true")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééé", 2), "é…");
        assert_eq!(truncate("abc", 0), "");
        // A quote is two bytes in JSON, a control character six.
        assert_eq!(truncate_within("\"\"\"", 10, 6), "\"\"\"");
        assert_eq!(truncate_within("\"\"\"\"", 10, 6), "\"…");
        assert_eq!(truncate_within("\u{1}\u{1}", 10, 9), "\u{1}…");
    }

    proptest! {
        #[test]
        fn truncated_text_is_within_both_limits(
            text in "(\\PC|[\\x00-\\x1f\"\\\\])*", max_chars in 0usize..50, max_json in 0usize..120,
        ) {
            let cut = truncate_within(&text, max_chars, max_json);
            prop_assert!(cut.chars().count() <= max_chars);
            prop_assert!(json_str_len(&cut) <= max_json);
            prop_assert_eq!(
                serde_json::to_string(cut.as_ref()).unwrap().len(),
                json_str_len(&cut) + 2
            );
            if cut != text {
                prop_assert!(cut.is_empty() || cut.ends_with('…'));
                prop_assert!(text.starts_with(cut.trim_end_matches('…')));
            }
        }
    }
}

//! What the formats share: the event's status, its headline and facts, its link, its time, and
//! truncation that keeps a text within a receiver's limits.

pub use crate::catalog::Status;
use crate::event::Event;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use unicode_segmentation::UnicodeSegmentation;

/// The longest link offered: the longest URL Herald accepts anywhere, and within what Slack (3000)
/// and Discord take.
pub const LINK_MAX: usize = 2048;

impl Status {
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

/// Escapes `&`, `<` and `>`, the characters Slack's mrkdwn reads as markup (`<!channel>` pings a
/// channel, `<url|label>` is a link), as the entities in [`ENTITIES`].
pub fn escape_entities(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// What [`escape_entities`] writes. A cut never falls inside one: Slack would show the fragment
/// (`&am`) literally.
const ENTITIES: [&str; 3] = ["&amp;", "&lt;", "&gt;"];

/// Code to put between ``` fences: a zero-width space breaks every run of three backticks, so no
/// text can close its fence early and have what follows read as markup (a Slack `<!channel>`, a
/// Discord mention or link).
pub fn fence_safe(code: &str) -> Cow<'_, str> {
    if !code.contains("```") {
        return Cow::Borrowed(code);
    }
    let mut out = String::with_capacity(code.len() + 16);
    let mut run = 0;
    for c in code.chars() {
        if c == '`' {
            if run == 2 {
                out.push('\u{200b}');
                run = 0;
            }
            run += 1;
        } else {
            run = 0;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Cuts to at most `max` characters, marking the cut with an ellipsis (see [`truncate_within`]).
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    truncate_within(text, max, usize::MAX)
}

/// Cuts to at most `max_chars` characters and `max_json` bytes once written as a JSON string
/// (without its quotes), marking the cut with an ellipsis. Byte limits are what a receiver that
/// measures the body (Teams) enforces, and escapes make a text longer there than it looks.
///
/// The cut falls between grapheme clusters (UAX #29, extended), so an emoji sequence, a flag or a
/// letter with its accents is kept whole or dropped whole, and never inside one of [`ENTITIES`].
pub fn truncate_within(text: &str, max_chars: usize, max_json: usize) -> Cow<'_, str> {
    const ELLIPSIS: char = '…';
    if fits(text, max_chars, max_json) {
        return Cow::Borrowed(text);
    }
    if max_chars == 0 || max_json < ELLIPSIS.len_utf8() {
        return Cow::Borrowed("");
    }
    let keep_chars = max_chars - 1;
    let keep_json = max_json - ELLIPSIS.len_utf8();
    let (mut chars, mut json) = (0usize, 0usize);
    let mut end = 0;
    // The end of the last entity met: no cut falls before it.
    let mut entity_end = 0;
    for (i, cluster) in text.grapheme_indices(true) {
        if i >= entity_end {
            end = i;
        }
        for (j, c) in cluster.char_indices() {
            if c == '&' {
                if let Some(e) = ENTITIES.iter().find(|e| text[i + j..].starts_with(*e)) {
                    entity_end = entity_end.max(i + j + e.len());
                }
            }
            chars += 1;
            json += json_len(c);
        }
        if chars > keep_chars || json > keep_json {
            break;
        }
    }
    let mut out = String::with_capacity(end + ELLIPSIS.len_utf8());
    out.push_str(&text[..end]);
    out.push(ELLIPSIS);
    Cow::Owned(out)
}

/// Whether `text` is within both limits as it is.
fn fits(text: &str, max_chars: usize, max_json: usize) -> bool {
    let (mut chars, mut json) = (0usize, 0usize);
    text.chars().all(|c| {
        chars += 1;
        json += json_len(c);
        chars <= max_chars && json <= max_json
    })
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

    #[test]
    fn cuts_keep_entities_and_grapheme_clusters_whole() {
        let amps = "&amp;".repeat(10);
        assert_eq!(truncate(&amps, 8), "&amp;…");
        assert_eq!(truncate(&amps, 5), "…");
        assert_eq!(truncate("&lt;&gt;x", 8), "&lt;…");
        let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
        assert_eq!(family.chars().count(), 7);
        assert_eq!(truncate(&family.repeat(2), 10), format!("{family}…"));
        assert_eq!(truncate(&family.repeat(2), 7), "…");
        assert_eq!(truncate("🇫🇷🇩🇪", 3), "🇫🇷…");
        assert_eq!(truncate("ae\u{301}\u{302}b", 3), "a…");
        // An entity's `;` and the accent after it are one cluster: both stay or both go.
        assert_eq!(truncate("&amp;\u{301}xyz", 7), "&amp;\u{301}…");
        assert_eq!(truncate("&amp;\u{301}xyz", 6), "…");
        assert_eq!(
            truncate_within(&family.repeat(2), 100, 30),
            format!("{family}…")
        );
    }

    #[test]
    fn escaping_writes_the_three_entities() {
        assert_eq!(escape_entities("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert!(matches!(escape_entities("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn no_run_of_three_backticks_survives() {
        for (code, expected) in [
            ("a``b", "a``b"),
            ("```", "``\u{200b}`"),
            ("``````", "``\u{200b}``\u{200b}``"),
            ("`````x```", "``\u{200b}``\u{200b}`x``\u{200b}`"),
        ] {
            assert_eq!(fence_safe(code), expected, "{code}");
        }
    }

    /// Pieces that tempt a cut: entities, clusters of several characters (a ZWJ family, a flag, a
    /// letter with accents, an Arabic sign that joins what follows), JSON escapes and backticks.
    fn awkward_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("a"),
            Just("&"),
            Just("<"),
            Just(">"),
            Just("&amp;"),
            Just("é"),
            Just("e\u{301}\u{302}"),
            Just("👨\u{200d}👩\u{200d}👧\u{200d}👦"),
            Just("🇫🇷"),
            Just("\u{600}"),
            Just("\u{301}"),
            Just("\""),
            Just("\u{1}"),
            Just("`"),
            Just("\n"),
        ];
        prop::collection::vec(piece, 0..60).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn cuts_fall_between_clusters_and_outside_entities(
            raw in awkward_text(), escape in any::<bool>(),
            max_chars in 0usize..80, max_json in 0usize..200,
        ) {
            let text = if escape { escape_entities(&raw).into_owned() } else { raw };
            let cut = truncate_within(&text, max_chars, max_json);
            prop_assert!(cut.chars().count() <= max_chars);
            prop_assert!(json_str_len(&cut) <= max_json);
            if cut != text {
                let kept = cut.strip_suffix('…').unwrap_or(&cut);
                prop_assert!(text.starts_with(kept));
                let end = kept.len();
                prop_assert!(
                    end == 0 || text.grapheme_indices(true).any(|(i, _)| i == end),
                    "cut at {} splits a cluster of {:?}", end, text
                );
                for (at, _) in text.match_indices('&') {
                    for e in ENTITIES.iter().filter(|e| text[at..].starts_with(*e)) {
                        prop_assert!(end <= at || end >= at + e.len(), "cut inside {} at {}", e, at);
                    }
                }
                if escape {
                    // What is left of escaped text is still escaped text: every `&` starts an entity.
                    for (at, _) in kept.match_indices('&') {
                        prop_assert!(ENTITIES.iter().any(|e| kept[at..].starts_with(e)), "{:?}", kept);
                    }
                }
            }
        }

        #[test]
        fn fenced_code_has_no_three_backticks_and_reads_the_same(code in "[`a]{0,40}") {
            let safe = fence_safe(&code);
            prop_assert!(!safe.contains("```"));
            prop_assert_eq!(safe.replace('\u{200b}', ""), code);
        }

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

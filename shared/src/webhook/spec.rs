//! Validating a webhook's configuration: a rule per field, every refusal collected, and the same
//! rules describing the configuration as JSON Schema.

use super::filters::filters;
use super::headers::headers;
use super::*;
use crate::fields::{
    self, any_case, boolean, describe, refused, rule, text, Fields, Refused, Rule,
};
use crate::url_policy::TargetPolicy;
use serde_json::json;

impl WebhookSpec {
    /// Validates a create body. Only `url` and `events` are required (as in Polyaxon).
    pub fn parse(body: &Value, rules: &UrlRules) -> Result<WebhookSpec, Error> {
        let Some(obj) = body.as_object() else {
            return Err(Error::BadRequest(
                "the webhook must be a JSON object".into(),
            ));
        };
        let mut f = Fields::new(obj, &SPEC_FIELDS);
        let spec = read(&mut f, rules);
        f.finish()?;
        Ok(spec.expect("a body without refusals reads as a webhook"))
    }

    /// The JSON Schema of the bodies [`WebhookSpec::parse`] takes. A URL's target is checked
    /// against the deployment's policy too, which no schema can say; its description does.
    pub fn schema() -> Value {
        describe(&SPEC_FIELDS, |f| {
            read(f, &UrlRules::new(TargetPolicy::Public))
        })
    }

    /// The JSON Schema of a merge patch (RFC 7396) of a webhook: the fields to change, where
    /// `null` removes one (so it takes its default) or, in `metadata`, removes a label. `url`
    /// and `events` cannot be removed, so they take no `null`.
    pub fn patch_schema() -> Value {
        let mut schema = Self::schema();
        schema
            .as_object_mut()
            .expect("an object schema")
            .remove("required");
        schema["properties"]["metadata"]["additionalProperties"]["type"] =
            json!(["string", "null"]);
        schema
    }
}

fn read(f: &mut Fields<'_>, rules: &UrlRules) -> Option<WebhookSpec> {
    let url = f.required("url", refused("is required"), url(rules));
    let events = f
        .required("events", events_missing(), events())
        .unwrap_or_default();
    let name = f
        .optional("name", name())
        .unwrap_or_else(|| url.as_deref().map(default_name).unwrap_or_default());
    let description = f.optional("description", description()).unwrap_or_default();
    let kind = f.optional("kind", kind()).unwrap_or(Kind::Standard);
    let filters = f.optional("filters", filters()).unwrap_or_default();
    let headers = f.optional("headers", headers()).unwrap_or_default();
    let include_result = f
        .optional(
            "include_result",
            boolean().about("Send the event's `result` too (default false)."),
        )
        .unwrap_or(false);
    let enabled = f
        .optional("enabled", boolean().about("Default true."))
        .unwrap_or(true);
    let metadata = f.optional("metadata", metadata()).unwrap_or_default();
    let secret = f.optional("secret", secret());
    Some(WebhookSpec {
        name,
        description,
        url: url?,
        kind,
        events,
        filters,
        headers,
        include_result,
        metadata,
        enabled,
        secret,
    })
}

/// A webhook URL's pattern, with `hosts` (alternatives) for its host: scheme, host, port and
/// the rest, in visible ASCII without a backslash, as [`url`] takes them.
pub fn url_pattern(hosts: &str) -> String {
    const PORT: &str =
        "(?::(?:[0-9]{0,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?";
    format!("^[Hh][Tt][Tt][Pp][Ss]?://(?:{hosts}){PORT}(?:[/?#][!-\\[\\]-~]*)?$")
}

/// Any host: a name whose last label starts with a letter (a label spelled as punycode,
/// `xn--…`, must also decode), a dotted IPv4 address, or a bracketed IPv6 one in its hex
/// forms. Which of them a deployment may target is its policy's to say.
const ANY_HOST: &str = concat!(
    "(?:[A-Za-z0-9_~!$&'()*+,;=-]+\\.)*[A-Za-z][A-Za-z0-9_~!$&'()*+,;=-]*\\.?",
    "|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    "|\\[(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
    "|(?:[0-9A-Fa-f]{1,4}:){1,7}:",
    "|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}",
    "|(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}",
    "|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}",
    "|(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}",
    "|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}",
    "|[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}",
    "|:(?::[0-9A-Fa-f]{1,4}){1,7}|::)\\]",
);

fn url(rules: &UrlRules) -> impl Rule<Output = String> + '_ {
    rule(
        || {
            json!({
                "type": "string",
                "maxLength": MAX_URL_LEN,
                "pattern": url_pattern(ANY_HOST),
                "description": "`http(s)`, no credentials, and a target the deployment's policy allows \
                    (`HERALD_TARGET_POLICY`: by default public addresses only; `HERALD_REQUIRE_HTTPS`, \
                    `HERALD_ALLOWED_PORTS`).",
            })
        },
        move |value| {
            let url = text(value)?;
            rules.check(url).map_err(|e| refused(e.to_string()))?;
            // The URL is stored as written and shown back: a form the parser first cleans
            // (spaces, tabs, backslashes) is refused rather than stored.
            if !url.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
                return Err(refused(
                    "must be written in visible ASCII, without spaces or backslashes",
                ));
            }
            Ok(url.to_string())
        },
    )
}

fn events_missing() -> Refused {
    refused("is required: a non-empty list of event types or patterns")
        .with_valid(catalog::valid_patterns())
}

/// Duplicates collapse.
fn events() -> impl Rule<Output = Vec<String>> {
    rule(
        || {
            json!({
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_EVENTS,
                "items": {"type": "string", "enum": catalog::valid_patterns()},
            })
        },
        |value| {
            let Value::Array(items) = value else {
                return Err(events_missing());
            };
            let mut why = Refused::none();
            if items.is_empty() || items.len() > MAX_EVENTS {
                why.add(
                    "",
                    refused(format!(
                        "must list 1 to {MAX_EVENTS} event types or patterns"
                    )),
                );
            }
            let mut events: Vec<String> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(p) if catalog::is_valid_pattern(p) => {
                        if !events.iter().any(|e| e == p) {
                            events.push(p.to_string());
                        }
                    }
                    Some(p) => why.add(
                        &format!("[{i}]"),
                        refused(format!("unknown event type or pattern `{p}`"))
                            .with_valid(catalog::valid_patterns()),
                    ),
                    None => why.add(&format!("[{i}]"), refused("must be a string")),
                }
            }
            why.or(events)
        },
    )
}

fn name() -> impl Rule<Output = String> {
    rule(
        || {
            json!({"type": "string", "maxLength": MAX_NAME_LEN, "pattern": fields::NOT_BLANK,
                "description": "Default: the URL's host. Stored trimmed."})
        },
        |value| match value {
            Value::String(s) if !s.trim().is_empty() && s.chars().count() <= MAX_NAME_LEN => {
                Ok(s.trim().to_string())
            }
            _ => Err(refused(format!(
                "must be a non-empty string of at most {MAX_NAME_LEN} characters"
            ))),
        },
    )
}

fn description() -> impl Rule<Output = String> {
    rule(
        || json!({"type": "string", "maxLength": MAX_DESCRIPTION_LEN}),
        |value| match value {
            Value::String(s) if s.chars().count() <= MAX_DESCRIPTION_LEN => Ok(s.clone()),
            _ => Err(refused(format!(
                "must be a string of at most {MAX_DESCRIPTION_LEN} characters"
            ))),
        },
    )
}

/// Any letter case: `Slack` is `slack`.
fn kind() -> impl Rule<Output = Kind> {
    rule(
        || {
            let names: Vec<String> = Kind::ALL.iter().map(|k| any_case(k.as_str())).collect();
            json!({
                "type": "string",
                "pattern": format!("^(?:{})$", names.join("|")),
                "description": format!(
                    "The payload format (default standard), in any letter case: {}.",
                    Kind::ALL.map(Kind::as_str).join(", ")
                ),
            })
        },
        |value| {
            let name = text(value)?;
            Kind::ALL
                .into_iter()
                .find(|k| k.as_str().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    refused(format!("unknown kind `{name}`"))
                        .with_valid(Kind::ALL.iter().map(|k| k.as_str().into()).collect())
                })
        },
    )
}

/// `whsec_` and the canonical base64 (padded, no stray bits) of 24 to 64 bytes: 8 to 21
/// groups of four characters, then one byte (`xx==`) or two (`xxx=`) more, within 64.
const SECRET_PATTERN: &str = concat!(
    "^whsec_(?:(?:[A-Za-z0-9+/]{4}){8,21}(?:[A-Za-z0-9+/][AQgw]==)?",
    "|(?:[A-Za-z0-9+/]{4}){8,20}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$",
);

fn secret() -> impl Rule<Output = Secret> {
    rule(
        || {
            json!({"type": "string", "pattern": SECRET_PATTERN,
                "description": "A signing secret to use instead of a generated one: `whsec_` and the base64 of 24 to 64 bytes. On update, a new secret signs beside the old one for 24 h. Never returned here."})
        },
        |value| {
            crate::signing::parse_secret(text(value)?).map_err(|_| {
                refused("must be whsec_ followed by the base64 of 24 to 64 random bytes")
            })
        },
    )
}

fn metadata() -> impl Rule<Output = Metadata> {
    rule(
        || {
            json!({
                "type": "object",
                "maxProperties": MAX_METADATA,
                "propertyNames": {"minLength": 1, "maxLength": MAX_METADATA_KEY_LEN},
                "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE_LEN},
                "description": "String labels for the webhook's owner. `herald apply` marks the webhooks it manages with `managed-by`.",
            })
        },
        |value| {
            let Value::Object(map) = value else {
                return Err(refused("must be an object of string values"));
            };
            let mut why = Refused::none();
            if map.len() > MAX_METADATA {
                why.add("", refused(format!("at most {MAX_METADATA} entries")));
            }
            let mut metadata = Metadata::new();
            for (key, value) in map {
                let entry = format!(".{key}");
                if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_LEN {
                    why.add(
                        &entry,
                        refused(format!("keys are 1 to {MAX_METADATA_KEY_LEN} characters")),
                    );
                    continue;
                }
                match value.as_str() {
                    Some(v) if v.chars().count() <= MAX_METADATA_VALUE_LEN => {
                        metadata.insert(key.clone(), v.to_string());
                    }
                    _ => why.add(
                        &entry,
                        refused(format!(
                            "must be a string of at most {MAX_METADATA_VALUE_LEN} characters"
                        )),
                    ),
                }
            }
            why.or(metadata)
        },
    )
}

/// `https://hooks.slack.com/services/…` → `hooks.slack.com`.
fn default_name(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "webhook".into())
        .chars()
        .take(MAX_NAME_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::headers::{
        header_key, header_value, FORBIDDEN_HEADERS, FORBIDDEN_HEADER_PREFIX,
    };
    use super::*;
    use crate::fields::patterns::{matches, matching};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use proptest::prelude::*;

    /// Whether `schema`, a string schema of the keywords these rules use, takes `text`.
    fn takes(schema: &Value, text: &str) -> bool {
        let within = |key: &str, ok: fn(usize, usize) -> bool| {
            schema[key]
                .as_u64()
                .is_none_or(|n| ok(text.chars().count(), n as usize))
        };
        within("minLength", |len, n| len >= n)
            && within("maxLength", |len, n| len <= n)
            && schema["pattern"].as_str().is_none_or(|p| matches(p, text))
            && schema["not"]["pattern"]
                .as_str()
                .is_none_or(|p| !matches(p, text))
    }

    fn agree(rule: impl Rule, text: &str) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            rule.read(&json!(text)).is_ok(),
            takes(&rule.schema(), text),
            "{:?}",
            text
        );
        Ok(())
    }

    /// A name Herald refuses, in some letter case, maybe with more after it.
    fn header_name() -> impl Strategy<Value = String> {
        let forbidden = prop::sample::select(FORBIDDEN_HEADERS.to_vec())
            .prop_map(str::to_string)
            .boxed();
        let prefixed = "[a-z-]{0,3}".prop_map(|rest| format!("{FORBIDDEN_HEADER_PREFIX}{rest}"));
        (
            prop_oneof![forbidden, prefixed.boxed(), "[ -~]{0,6}".boxed()],
            any::<u64>(),
        )
            .prop_map(|(name, case)| {
                name.chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if case >> (i % 64) & 1 == 1 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn secret_pattern_is_parse_secret(bytes in prop::collection::vec(any::<u8>(), 0..70)) {
            agree(secret(), &format!("whsec_{}", STANDARD.encode(&bytes)))?;
        }

        #[test]
        fn secret_pattern_refuses_what_parse_secret_refuses(text in "whsec_[A-Za-z0-9+/=]{28,92}") {
            agree(secret(), &text)?;
        }

        #[test]
        fn header_key_schema_is_the_rule(key in header_name()) {
            agree(header_key(&[]), &key)?;
        }

        #[test]
        fn header_value_schema_is_the_rule(value in "[\t\r\n -~\u{7f}é]{0,8}") {
            agree(header_value(), &value)?;
        }

        #[test]
        fn kind_pattern_is_the_rule(name in "[a-zA-Z]{0,3}(standard|SLACK|Discord|teams|x)?") {
            agree(kind(), &name)?;
        }

        #[test]
        fn every_url_the_loopback_pattern_matches_is_accepted_on_loopback(
            written in matching(&url_pattern(&format!("{}|127\\.0\\.0\\.1|\\[::1\\]", any_case("localhost"))))
        ) {
            prop_assert!(url(&UrlRules::new(TargetPolicy::Loopback)).read(&json!(written)).is_ok(), "{}", written);
        }

        /// The policy is the deployment's: past it, every URL the pattern matches is taken.
        #[test]
        fn a_url_the_pattern_matches_is_refused_only_for_its_target(written in matching(&url_pattern(ANY_HOST))) {
            if let Err(why) = crate::url_policy::check_url(&written, TargetPolicy::Private, false) {
                prop_assert!(matches!(why, crate::url_policy::UrlError::Blocked(_)), "{}: {}", written, why);
            }
            prop_assert!(written.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'));
        }
    }

    #[test]
    fn a_url_is_taken_as_written_only() {
        let rules = UrlRules::new(TargetPolicy::Private);
        for written in [
            " http://localhost/x",
            "http://localhost/x ",
            "ht\ttp://localhost/x",
            "http:\\\\localhost\\x",
            "http://localhost/é",
        ] {
            assert!(url(&rules).read(&json!(written)).is_err(), "{written:?}");
            assert!(!matches(&url_pattern(ANY_HOST), written), "{written:?}");
        }
        assert!(url(&rules)
            .read(&json!("http://LOCALHOST:9000/hooks*"))
            .is_ok());
    }

    #[test]
    fn a_patch_takes_nothing_it_must_have_and_null_removes_a_label() {
        let patch = WebhookSpec::patch_schema();
        assert!(patch.get("required").is_none());
        assert_eq!(
            patch["properties"]["url"],
            WebhookSpec::schema()["properties"]["url"]
        );
        assert_eq!(
            patch["properties"]["metadata"]["additionalProperties"]["type"],
            json!(["string", "null"])
        );
    }

    #[test]
    fn header_entries_are_closed_and_need_a_value() {
        let rules = UrlRules::new(TargetPolicy::Public);
        let body = |header: Value| json!({"url": "https://a.example/x", "events": ["*"], "headers": [header]});
        let refused = |header: Value| match WebhookSpec::parse(&body(header), &rules) {
            Err(Error::Validation(e)) => e.into_iter().map(|e| e.field).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(json!({"key": "X-A", "value": "1", "protect": true})),
            ["headers[0].protect"]
        );
        assert_eq!(refused(json!({"key": "X-A"})), ["headers[0].value"]);
        assert_eq!(
            refused(json!({"key": "X-A", "value": "café"})),
            ["headers[0].value"]
        );
    }
}

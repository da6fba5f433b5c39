//! The rules of a webhook's `headers`: names Herald does not set itself, visible-ASCII values,
//! protected values.

use super::*;
use crate::fields::{any_case, boolean, describe, refused, rule, Fields, Refused, Rule};
use serde_json::json;

/// Headers Herald sets itself or that would break HTTP framing.
pub(super) const FORBIDDEN_HEADERS: [&str; 13] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "host",
    "content-length",
    "content-type",
];
/// And every name under it.
pub(super) const FORBIDDEN_HEADER_PREFIX: &str = "webhook-";

fn header_name_forbidden(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    FORBIDDEN_HEADERS.contains(&lower.as_str()) || lower.starts_with(FORBIDDEN_HEADER_PREFIX)
}

const HEADER_FIELDS: [&str; 3] = ["key", "value", "protected"];

pub(super) fn headers() -> impl Rule<Output = Vec<Header>> {
    rule(
        || {
            json!({
                "type": "array",
                "maxItems": MAX_HEADERS,
                "uniqueItems": true,
                "items": describe(&HEADER_FIELDS, |f| header(f, &[])),
                "description": "Sent with every delivery, each name once (in any letter case).",
            })
        },
        |value| {
            let Some(items) = value.as_array().filter(|i| i.len() <= MAX_HEADERS) else {
                return Err(refused(format!(
                    "must be a list of at most {MAX_HEADERS} headers"
                )));
            };
            let mut why = Refused::none();
            let mut headers: Vec<Header> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at = format!("[{i}]");
                let Some(h) = item.as_object() else {
                    why.add(&at, refused("must be an object with key and value"));
                    continue;
                };
                let mut f = Fields::nested(h, &HEADER_FIELDS);
                // A header whose key and value pass is kept even when `protected` does not, so
                // a later header of the same name is still caught as a repeat.
                if let Some(header) = header(&mut f, &headers) {
                    headers.push(header);
                }
                why.add(&at, f.refusals());
            }
            why.or(headers)
        },
    )
}

/// One header entry; `earlier` are the headers before it, which its name must not repeat.
fn header(f: &mut Fields<'_>, earlier: &[Header]) -> Option<Header> {
    let key = f.required("key", refused("is required"), header_key(earlier));
    let value = f.required(
        "value",
        refused("is required"),
        header_value().about(
            "On PUT and PATCH, a protected header sent without `value` keeps its stored value.",
        ),
    );
    let protected = f.optional(
        "protected",
        boolean().about("A protected value is write-only: reads show null."),
    );
    Some(Header {
        key: key?,
        value: Secret::new(value?),
        protected: protected.unwrap_or(false),
    })
}

pub(super) fn header_key(earlier: &[Header]) -> impl Rule<Output = String> + '_ {
    rule(
        || {
            let forbidden: Vec<String> = FORBIDDEN_HEADERS.iter().map(|h| any_case(h)).collect();
            json!({
                "type": "string",
                "maxLength": 256,
                "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
                "not": {"pattern": format!("^(?:{})$|^{}", forbidden.join("|"), any_case(FORBIDDEN_HEADER_PREFIX))},
                "description": "An HTTP token; not hop-by-hop, `Host`, `Content-Length`, `Content-Type` or `webhook-*`.",
            })
        },
        move |value| {
            let key = value.as_str().ok_or_else(|| refused("is required"))?;
            if http::HeaderName::from_bytes(key.as_bytes()).is_err()
                || key.is_empty()
                || key.len() > 256
            {
                return Err(refused("is not a valid HTTP header name"));
            }
            if header_name_forbidden(key) {
                return Err(refused(format!(
                    "`{key}` is set by Herald or is hop-by-hop and cannot be configured"
                )));
            }
            if earlier.iter().any(|h| h.key.eq_ignore_ascii_case(key)) {
                return Err(refused(format!("`{key}` is given twice")));
            }
            Ok(key.to_string())
        },
    )
}

pub(super) fn header_value() -> impl Rule<Output = String> {
    rule(
        || json!({"type": "string", "maxLength": MAX_HEADER_VALUE_LEN, "pattern": "^[\\t -~]*$"}),
        |value| {
            let value = value.as_str().ok_or_else(|| refused("is required"))?;
            if value.len() > MAX_HEADER_VALUE_LEN {
                return Err(refused(format!(
                    "must be at most {MAX_HEADER_VALUE_LEN} bytes"
                )));
            }
            // `http` would take bytes past ASCII too (obsolete text): the message's rule is
            // the one kept, so that a value's length in bytes is its length in characters.
            if !value.is_ascii() || http::HeaderValue::from_str(value).is_err() {
                return Err(refused("must be visible ASCII without CR or LF"));
            }
            Ok(value.to_string())
        },
    )
}

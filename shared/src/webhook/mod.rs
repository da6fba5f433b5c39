//! Webhooks (SPEC §3): the stored resource, its public view, and validation of what users send.

use crate::catalog;
use crate::error::Error;
use crate::event::EnvironmentType;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub use crate::url_policy::MAX_URL_LEN;
pub const MAX_NAME_LEN: usize = 128;
pub const MAX_DESCRIPTION_LEN: usize = 1024;
pub const MAX_EVENTS: usize = 50;
pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_VALUE_LEN: usize = 4096;
/// Patterns in `filters.project_names`. Matching is linear in each pattern whatever its
/// wildcards (`matching::project_matches`), so these bound the work per event and webhook:
/// at most 20 × 128 pattern characters against a project name of at most 256.
pub const MAX_PROJECT_NAMES: usize = 20;
/// Characters in one `filters.project_names` pattern.
pub const MAX_PROJECT_PATTERN_LEN: usize = 128;
pub const MAX_METADATA: usize = 16;
pub const MAX_METADATA_KEY_LEN: usize = 64;
pub const MAX_METADATA_VALUE_LEN: usize = 256;

/// Free-form labels for the webhook's owner (`herald apply` marks the webhooks it manages here).
pub type Metadata = BTreeMap<String, String>;

/// The payload format: `standard` (Herald's JSON), `slack` (an incoming-webhook message),
/// `discord` (an execute-webhook message), `teams` (an Adaptive Card for a Teams Workflows
/// webhook), or the shape of a platform's own webhooks, for receivers written for it:
/// `determined`, `ubiops`, `qovery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Standard,
    Slack,
    Discord,
    Teams,
    Determined,
    Ubiops,
    Qovery,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Standard,
        Kind::Slack,
        Kind::Discord,
        Kind::Teams,
        Kind::Determined,
        Kind::Ubiops,
        Kind::Qovery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Standard => "standard",
            Kind::Slack => "slack",
            Kind::Discord => "discord",
            Kind::Teams => "teams",
            Kind::Determined => "determined",
            Kind::Ubiops => "ubiops",
            Kind::Qovery => "qovery",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// All given filters must match; within a list any entry may.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub project_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_types: Vec<EnvironmentType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub key: String,
    pub value: Secret,
    #[serde(default)]
    pub protected: bool,
}

/// A signing secret; after a rotation the previous one keeps signing until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    pub secret: Secret,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A webhook's settings: everything a user sets on it.
// What a create body sets, validated (`WebhookSpec::parse`), and the part of a stored webhook
// a PUT replaces and a PATCH merges into. `H` is how a header is held: `Header` with its value
// when stored, `HeaderView` with protected values hidden in the API's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookSpec<H = Header> {
    pub name: String,
    #[serde(default)]
    #[schema(required = true)]
    pub description: String,
    pub url: String,
    pub kind: Kind,
    pub events: Vec<String>,
    #[serde(default)]
    #[schema(required = true)]
    pub filters: Filters,
    #[serde(default = "Vec::new")]
    #[schema(required = true)]
    pub headers: Vec<H>,
    #[serde(default)]
    #[schema(required = true)]
    pub include_result: bool,
    #[serde(default)]
    #[schema(required = true)]
    pub metadata: Metadata,
    pub enabled: bool,
    /// A signing secret the user brings, in a request only (without one Herald generates it);
    /// once saved, the secrets live in [`Webhook::secrets`].
    #[serde(skip)]
    #[schema(ignore)]
    pub secret: Option<Secret>,
}

impl<H> WebhookSpec<H> {
    /// The same settings with each header held as `view` makes it.
    pub fn map_headers<V>(&self, view: impl Fn(&H) -> V) -> WebhookSpec<V> {
        WebhookSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            url: self.url.clone(),
            kind: self.kind,
            events: self.events.clone(),
            filters: self.filters.clone(),
            headers: self.headers.iter().map(view).collect(),
            include_result: self.include_result,
            metadata: self.metadata.clone(),
            enabled: self.enabled,
            secret: None,
        }
    }
}

/// A webhook as stored: its settings, secrets included, and its state. Never serialized into
/// an API answer: see [`WebhookView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub tenant_id: String,
    #[serde(flatten)]
    pub spec: WebhookSpec,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed (cleared by a success): drives auto-disable.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    /// Failed attempts in a row, counted up to `operational::FAILING_AFTER` (reaching it reports
    /// the webhook failing) and cleared by a success (which then reports it recovered).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    pub secrets: Vec<SigningSecret>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Counts the writes to this webhook: every update is conditioned on the revision its
    /// writer read, so two writers (a PATCH and a health change, say) never undo each other.
    #[serde(default)]
    pub revision: u64,
}

impl Webhook {
    /// A new webhook of `tenant_id` configured by `spec`, signed with `secret`.
    pub fn new(
        id: String,
        tenant_id: &str,
        spec: WebhookSpec,
        secret: Secret,
        now: OffsetDateTime,
    ) -> Self {
        Webhook {
            id,
            tenant_id: tenant_id.to_string(),
            spec: WebhookSpec {
                secret: None,
                ..spec
            },
            disabled_reason: None,
            failing_since: None,
            failures: 0,
            secrets: vec![SigningSecret {
                secret,
                expires_at: None,
            }],
            created_at: now,
            updated_at: now,
            revision: 0,
        }
    }

    /// The secrets that sign at `now`: the current one and any rotated one not yet expired.
    pub fn active_secrets(&self, now: OffsetDateTime) -> impl Iterator<Item = &Secret> {
        self.secrets
            .iter()
            .filter(move |s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| &s.secret)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A header as the API shows it: protected values are never returned.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HeaderView {
    pub key: String,
    pub value: Option<String>,
    pub protected: bool,
}

impl From<&Header> for HeaderView {
    fn from(h: &Header) -> Self {
        HeaderView {
            key: h.key.clone(),
            value: (!h.protected).then(|| h.value.expose().to_string()),
            protected: h.protected,
        }
    }
}

/// A webhook as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    #[serde(flatten)]
    pub spec: WebhookSpec<HeaderView>,
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed; null while the last attempt succeeded.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Present only in the answer to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id.clone(),
            spec: w.spec.map_headers(|h| HeaderView::from(h)),
            disabled_reason: w.disabled_reason.clone(),
            failing_since: w.failing_since,
            created_at: w.created_at,
            updated_at: w.updated_at,
            secret: None,
        }
    }
}

pub use crate::url_policy::UrlRules;

/// Every field a user may set on a webhook.
pub const SPEC_FIELDS: [&str; 11] = [
    "name",
    "description",
    "url",
    "kind",
    "events",
    "filters",
    "headers",
    "include_result",
    "metadata",
    "enabled",
    "secret",
];

mod filters;
mod headers;
mod spec;
pub use spec::url_pattern;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldError;
    use crate::url_policy::TargetPolicy;
    use serde_json::json;

    fn rules() -> UrlRules {
        UrlRules::new(TargetPolicy::Public)
    }

    fn errors(body: Value) -> Vec<FieldError> {
        match WebhookSpec::parse(&body, &rules()) {
            Err(Error::Validation(e)) => e,
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let s = WebhookSpec::parse(
            &json!({"url": "https://hooks.example.com/x", "events": ["experiments.done", "experiments.done"]}),
            &rules(),
        )
        .unwrap();
        assert_eq!(s.name, "hooks.example.com");
        assert_eq!(s.kind, Kind::Standard);
        assert!(s.enabled);
        assert_eq!(s.events, ["experiments.done"], "duplicates collapse");
    }

    #[test]
    fn unknown_pattern_is_named_with_valid_list() {
        let e =
            errors(json!({"url": "https://a.example/x", "events": ["jobs.done", "jobs.exploded"]}));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].field, "events[1]");
        assert!(e[0]
            .valid
            .as_ref()
            .unwrap()
            .contains(&"requests.finished".to_string()));
    }

    #[test]
    fn bad_urls_are_rejected() {
        for url in [
            "ftp://a.example/x",
            "https://user:pw@a.example/x",
            "not a url",
            "http://127.0.0.1/x",
            "http://169.254.169.254/latest",
            "http://2130706433/",
        ] {
            let e = errors(json!({"url": url, "events": ["*"]}));
            assert_eq!(e[0].field, "url", "{url}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_LEN));
        assert_eq!(
            errors(json!({"url": long, "events": ["*"]}))[0].field,
            "url"
        );
        let strict = UrlRules {
            require_https: true,
            ..rules()
        };
        assert!(WebhookSpec::parse(
            &json!({"url": "http://a.example/x", "events": ["*"]}),
            &strict
        )
        .is_err());
    }

    #[test]
    fn forbidden_and_malformed_headers() {
        let e = errors(
            json!({"url": "https://a.example/x", "events": ["*"], "headers": [
                {"key": "Host", "value": "x"},
                {"key": "webhook-signature", "value": "x"},
                {"key": "Transfer-Encoding", "value": "x"},
                {"key": "X-Ok", "value": "a\r\nb"},
                {"key": "Bad Name", "value": "x"},
                {"key": "Authorization", "value": "Token 1", "protected": true},
                {"key": "authorization", "value": "Token 2"}
            ]}),
        );
        let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "headers[0].key",
                "headers[1].key",
                "headers[2].key",
                "headers[3].value",
                "headers[4].key",
                "headers[6].key"
            ]
        );
    }

    #[test]
    fn filters_are_validated() {
        let e = errors(
            json!({"url": "https://a.example/x", "events": ["*"], "filters": {
                "project_names": ["ok", ""], "environment_types": ["PRODUCTION", "prod"], "object": {"kind": "pipeline", "size": 1}, "team": []
            }}),
        );
        let mut fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "filters.environment_types[1]",
                "filters.object.size",
                "filters.project_names[1]",
                "filters.team"
            ]
        );
    }

    #[test]
    fn project_name_patterns_are_bounded_in_number_and_length() {
        let body = |names: Vec<String>| json!({"url": "https://a.example/x", "events": ["*"], "filters": {"project_names": names}});
        let longest = format!("*{}", "é".repeat(MAX_PROJECT_PATTERN_LEN - 1));
        let most = vec![longest.clone(); MAX_PROJECT_NAMES];
        assert!(WebhookSpec::parse(&body(most), &rules()).is_ok());
        let one_more = vec!["prod-*".to_string(); MAX_PROJECT_NAMES + 1];
        let e = errors(body(one_more));
        assert_eq!(e[0].field, "filters.project_names");
        assert!(e[0].message.contains("at most 20"), "{}", e[0].message);
        let too_long = vec!["ok".to_string(), format!("{longest}?")];
        let e = errors(body(too_long));
        assert_eq!(e[0].field, "filters.project_names[1]");
        assert!(
            e[0].message.contains("at most 128 characters"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn view_hides_protected_values_and_secrets() {
        let now = OffsetDateTime::now_utc();
        let w = Webhook {
            id: "wh_1".into(),
            tenant_id: "t".into(),
            spec: WebhookSpec {
                name: "n".into(),
                description: String::new(),
                url: "https://a.example".into(),
                kind: Kind::Slack,
                events: vec!["*".into()],
                filters: Filters::default(),
                headers: vec![
                    Header {
                        key: "Authorization".into(),
                        value: Secret::new("Token 123"),
                        protected: true,
                    },
                    Header {
                        key: "X-Team".into(),
                        value: Secret::new("ml"),
                        protected: false,
                    },
                ],
                include_result: false,
                metadata: Default::default(),
                enabled: true,
                secret: None,
            },
            disabled_reason: None,
            failing_since: None,
            failures: 0,
            secrets: vec![SigningSecret {
                secret: Secret::new("whsec_abc"),
                expires_at: None,
            }],
            created_at: now,
            updated_at: now,
            revision: 3,
        };
        let view = serde_json::to_value(WebhookView::from(&w)).unwrap();
        assert_eq!(view["headers"][0]["value"], Value::Null);
        assert_eq!(view["headers"][1]["value"], "ml");
        let text = view.to_string();
        assert!(!text.contains("Token 123") && !text.contains("whsec_abc"));
    }
}

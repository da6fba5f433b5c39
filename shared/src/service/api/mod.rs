//! The management API's operations (SPEC §3), each scoped to the caller's tenant: another
//! tenant's ids are simply not found.

mod deliveries;
mod keys;
mod recoveries;
mod stats;
mod test_sends;
mod webhooks;

pub use deliveries::{DeliveryView, FILTER_SCAN_PAGES};
pub use keys::{KeyView, NewKey, NewTenant, MAX_KEY_NAME};
pub use recoveries::{recover_schema, RecoveryView, RECOVER_FIELDS};
pub use stats::{HourStats, StatsView};
pub use test_sends::TestResult;
pub use webhooks::{merge_patch, ROTATION_OVERLAP};

use crate::catalog;
use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Error, FieldError, Result};
use crate::event::Event;
use crate::format;
use crate::matching::pattern_matches;
use crate::queue::Queue;
use crate::scope::Scopes;
use crate::secret::Secret;
use crate::secret::{generate_key, hash_key};
use crate::service::sender::Sender;
use crate::signing;
use crate::store::{ApiKey, Page, Store, Tenant};
use crate::webhook::{SigningSecret, UrlRules, Webhook, WebhookSpec, WebhookView};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use time::OffsetDateTime;

pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

/// A page as the API answers it.
#[derive(Debug, Serialize)]
pub struct Listing<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

pub struct Api {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    sender: Arc<Sender>,
    rules: UrlRules,
    max_webhooks: usize,
}

/// Cursors are opaque to clients: the last id seen, base64url-encoded.
pub fn encode_cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

pub fn decode_cursor(cursor: &str, prefix: &str) -> Result<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|id| id.starts_with(prefix) && id.len() < 64)
        .ok_or_else(|| Error::field("cursor", "is not a cursor this listing gave out"))
}

pub fn page_limit(limit: Option<&str>) -> Result<usize> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(Error::field(
                "limit",
                format!("must be a whole number from 1 to {MAX_PAGE}"),
            )),
        },
    }
}

impl<T> Listing<T> {
    fn from_page<S>(page: &Page<S>, id: impl Fn(&S) -> &str, view: impl Fn(&S) -> T) -> Self {
        let next_cursor = if page.more {
            page.items.last().map(|last| encode_cursor(id(last)))
        } else {
            None
        };
        Listing {
            data: page.items.iter().map(view).collect(),
            next_cursor,
        }
    }
}

impl Api {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        sender: Arc<Sender>,
        rules: UrlRules,
        max_webhooks: usize,
    ) -> Self {
        Api {
            store,
            queue,
            sender,
            rules,
            max_webhooks,
        }
    }

    async fn webhook(&self, tenant_id: &str, id: &str) -> Result<Webhook> {
        self.store
            .get_webhook(tenant_id, id)
            .await?
            .ok_or(Error::NotFound("webhook"))
    }

    /// The catalog as served at `GET /v1/event-types`: the types a platform posts, Herald's
    /// operational ones, and the composite patterns.
    pub fn event_types(&self) -> Value {
        let entry = |t: &catalog::EventType, sample: Value| {
            json!({
                "type": t.name,
                "resource": t.resource,
                "status": t.status,
                "terminal": t.is_terminal(),
                "description": t.description,
                "sample": sample,
            })
        };
        let types: Vec<Value> = catalog::EVENT_TYPES
            .iter()
            .map(|t| entry(t, catalog::sample(t)))
            .collect();
        let operational: Vec<Value> = catalog::OPERATIONAL_TYPES
            .iter()
            .map(|t| entry(t, crate::operational::sample(t.name)))
            .collect();
        let patterns: Vec<Value> = catalog::composite_patterns()
            .into_iter()
            .map(|(pattern, description)| json!({"pattern": pattern, "description": description}))
            .collect();
        json!({"data": types, "operational": operational, "patterns": patterns})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::MemoryQueue;
    use crate::store::MemoryStore;
    use crate::url_policy::TargetPolicy;

    fn api_with_limit(max: usize) -> Api {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::default());
        let config = crate::config::Config::local();
        Api::new(
            store,
            queue,
            crate::runtime::sender(&config),
            UrlRules::new(TargetPolicy::Public),
            max,
        )
    }

    fn api() -> Api {
        api_with_limit(100)
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"tags": [1, 2]});
        merge_patch(&mut doc, &json!({"tags": [3]}));
        assert_eq!(doc, json!({"tags": [3]}), "arrays are replaced whole");
    }

    #[tokio::test]
    async fn pagination_walks_every_webhook_once() {
        let api = api();
        let mut ids = Vec::new();
        for i in 0..7 {
            let body = json!({"url": format!("https://h{i}.example/x"), "events": ["*"]});
            ids.push(api.create_webhook("t", &body).await.unwrap().id);
        }
        api.create_webhook(
            "other",
            &json!({"url": "https://o.example/", "events": ["*"]}),
        )
        .await
        .unwrap();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = api
                .list_webhooks("t", Some("3"), cursor.as_deref())
                .await
                .unwrap();
            assert!(page.data.len() <= 3);
            seen.extend(page.data.into_iter().map(|w| w.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        assert!(api.list_webhooks("t", Some("0"), None).await.is_err());
        assert!(api.list_webhooks("t", Some("101"), None).await.is_err());
        assert!(api
            .list_webhooks("t", None, Some("garbage!"))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn webhook_limit_is_enforced_per_tenant() {
        let api = api_with_limit(2);
        let body = json!({"url": "https://a.example/", "events": ["*"]});
        api.create_webhook("t", &body).await.unwrap();
        api.create_webhook("t", &body).await.unwrap();
        assert!(matches!(
            api.create_webhook("t", &body).await,
            Err(Error::Conflict(_))
        ));
        api.create_webhook("u", &body)
            .await
            .expect("another tenant has its own limit");
    }

    #[tokio::test]
    async fn patch_merges_and_keeps_protected_values() {
        let api = api();
        let w = api
            .create_webhook(
                "t",
                &json!({"url": "https://a.example/", "events": ["*"], "name": "n",
                "headers": [{"key": "Authorization", "value": "Token 1", "protected": true}]}),
            )
            .await
            .unwrap();
        let patched = api
            .patch_webhook("t", &w.id, &json!({"enabled": false, "description": "d"}))
            .await
            .unwrap();
        assert!(!patched.spec.enabled);
        assert_eq!(patched.spec.description, "d");
        assert_eq!(patched.spec.name, "n", "untouched fields stay");
        let stored = api.webhook("t", &w.id).await.unwrap();
        assert_eq!(stored.spec.headers[0].value.expose(), "Token 1");
        // A PUT that lists the protected header without its value keeps the value.
        api.replace_webhook("t", &w.id, &json!({"url": "https://a.example/b", "events": ["jobs.*"],
            "headers": [{"key": "authorization", "protected": true}, {"key": "X-New", "value": "v"}]}))
            .await
            .unwrap();
        let stored = api.webhook("t", &w.id).await.unwrap();
        assert_eq!(stored.spec.headers[0].value.expose(), "Token 1");
        assert_eq!(
            stored.spec.name, "a.example",
            "PUT resets omitted fields to defaults"
        );
        assert!(stored.spec.enabled);
        // A header that was never stored must come with a value.
        let err = api
            .replace_webhook(
                "t",
                &w.id,
                &json!({"url": "https://a.example/", "events": ["*"],
            "headers": [{"key": "X-Other", "protected": true}]}),
            )
            .await;
        assert!(matches!(err, Err(Error::Validation(e)) if e[0].field == "headers[0].value"));
    }

    async fn with_protected_header(api: &Api) -> WebhookView {
        api.create_webhook(
            "t",
            &json!({"url": "https://a.example/hook", "events": ["*"],
            "headers": [{"key": "Authorization", "value": "Token 1", "protected": true}]}),
        )
        .await
        .unwrap()
    }

    fn invalid_fields(result: Result<WebhookView>) -> Vec<String> {
        match result {
            Err(Error::Validation(e)) => e.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_protected_value_is_kept_only_for_a_header_sent_protected() {
        let api = api();
        let w = with_protected_header(&api).await;
        for header in [
            json!({"key": "Authorization"}),
            json!({"key": "Authorization", "protected": false}),
        ] {
            let result = api
                .patch_webhook("t", &w.id, &json!({"headers": [header]}))
                .await;
            assert_eq!(invalid_fields(result), ["headers[0].value"], "{header}");
        }
        let stored = api.webhook("t", &w.id).await.unwrap();
        assert!(stored.spec.headers[0].protected, "nothing was written");
        let kept = api
            .patch_webhook(
                "t",
                &w.id,
                &json!({"headers": [{"key": "authorization", "protected": true}]}),
            )
            .await
            .unwrap();
        assert_eq!(kept.spec.headers[0].value, None);
        assert!(kept.spec.headers[0].protected);
        let stored = api.webhook("t", &w.id).await.unwrap();
        assert_eq!(stored.spec.headers[0].value.expose(), "Token 1");
    }

    #[tokio::test]
    async fn moving_to_another_origin_needs_protected_values_again() {
        let api = api();
        let w = with_protected_header(&api).await;
        for url in [
            "https://echo.example/hook",
            "http://a.example/hook",
            "https://a.example:8443/hook",
        ] {
            let result = api.patch_webhook("t", &w.id, &json!({"url": url})).await;
            assert_eq!(invalid_fields(result), ["headers[0].value"], "{url}");
            let put = api
                .replace_webhook(
                    "t",
                    &w.id,
                    &json!({"url": url, "events": ["*"],
                        "headers": [{"key": "Authorization", "protected": true}]}),
                )
                .await;
            assert_eq!(invalid_fields(put), ["headers[0].value"], "PUT {url}");
        }
        assert_eq!(
            api.webhook("t", &w.id).await.unwrap().spec.url,
            "https://a.example/hook"
        );
        // The same origin keeps them; a new origin takes them when they are sent again.
        api.patch_webhook("t", &w.id, &json!({"url": "https://a.example:443/other"}))
            .await
            .unwrap();
        let moved = api
            .patch_webhook(
                "t",
                &w.id,
                &json!({"url": "https://echo.example/", "headers": [
                    {"key": "Authorization", "value": "Token 2", "protected": true}]}),
            )
            .await
            .unwrap();
        assert_eq!(moved.spec.url, "https://echo.example/");
        let stored = api.webhook("t", &w.id).await.unwrap();
        assert_eq!(stored.spec.headers[0].value.expose(), "Token 2");
    }

    #[tokio::test]
    async fn an_update_applies_to_the_webhook_as_stored_when_it_lands() {
        let api = api();
        let w = with_protected_header(&api).await;
        // A copy read before a rotation cannot be written back over it.
        let stale = api.webhook("t", &w.id).await.unwrap();
        let rotated = api.rotate_secret("t", &w.id).await.unwrap();
        assert!(!api.store.update_webhook(&stale).await.unwrap());
        api.patch_webhook("t", &w.id, &json!({"description": "d"}))
            .await
            .unwrap();
        assert_eq!(api.secret("t", &w.id).await.unwrap(), rotated);
    }

    #[tokio::test]
    async fn reenabling_clears_the_disabled_reason() {
        let api = api();
        let w = api
            .create_webhook("t", &json!({"url": "https://a.example/", "events": ["*"]}))
            .await
            .unwrap();
        let mut stored = api.webhook("t", &w.id).await.unwrap();
        stored.spec.enabled = false;
        stored.disabled_reason = Some("410 Gone".into());
        api.store.update_webhook(&stored).await.unwrap();
        let still = api
            .patch_webhook("t", &w.id, &json!({"description": "x"}))
            .await
            .unwrap();
        assert_eq!(still.disabled_reason.as_deref(), Some("410 Gone"));
        let on = api
            .patch_webhook("t", &w.id, &json!({"enabled": true}))
            .await
            .unwrap();
        assert!(on.spec.enabled);
        assert_eq!(on.disabled_reason, None);
    }

    #[tokio::test]
    async fn rotation_keeps_the_old_secret_for_a_day() {
        let api = api();
        let w = api
            .create_webhook("t", &json!({"url": "https://a.example/", "events": ["*"]}))
            .await
            .unwrap();
        let first = api.secret("t", &w.id).await.unwrap();
        assert_eq!(Some(first.expose()), w.secret.as_deref());
        let second = api.rotate_secret("t", &w.id).await.unwrap();
        assert_ne!(first, second);
        assert_eq!(api.secret("t", &w.id).await.unwrap(), second);
        let stored = api.webhook("t", &w.id).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let active: Vec<_> = stored.active_secrets(now).cloned().collect();
        assert_eq!(active, [second.clone(), first.clone()]);
        let tomorrow = now + ROTATION_OVERLAP + time::Duration::seconds(1);
        assert_eq!(
            stored.active_secrets(tomorrow).cloned().collect::<Vec<_>>(),
            [second]
        );
    }

    #[tokio::test]
    async fn tenants_and_keys() {
        let api = api();
        let t = api.create_tenant(&json!({"name": "Acme"})).await.unwrap();
        assert!(t.id.starts_with("tn_") && t.key.starts_with("hk_"));
        let first = api.store.api_key(&hash_key(&t.key)).await.unwrap().unwrap();
        assert_eq!(
            (first.tenant_id.as_str(), first.scopes),
            (t.id.as_str(), Scopes::ALL)
        );
        let k = api
            .create_key(
                &t.id,
                Scopes::ALL,
                &json!({"name": "ci", "scopes": ["ingest"]}),
            )
            .await
            .unwrap();
        assert_eq!((k.name.as_str(), k.scopes.names()), ("ci", vec!["ingest"]));
        assert!(matches!(
            api.delete_key("tn_other", Scopes::ALL, &k.id).await,
            Err(Error::NotFound(_))
        ));
        api.delete_key(&t.id, Scopes::ALL, &k.id).await.unwrap();
        assert_eq!(api.store.api_key(&hash_key(&k.key)).await.unwrap(), None);
        assert!(api.create_tenant(&json!({"name": ""})).await.is_err());
        assert!(api
            .create_tenant(&json!({"name": "x", "plan": "gold"}))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_key_grants_and_revokes_only_within_its_own_scopes() {
        let api = api();
        let read_admin: Scopes = [crate::scope::Scope::Read, crate::scope::Scope::Admin]
            .into_iter()
            .collect();
        let defaulted = api.create_key("t", read_admin, &Value::Null).await.unwrap();
        assert_eq!(
            defaulted.scopes, read_admin,
            "no scopes asked: the granter's own"
        );
        let wider = api
            .create_key("t", read_admin, &json!({"scopes": ["read", "manage"]}))
            .await;
        match wider {
            Err(Error::Forbidden(f)) if !f.errors.is_empty() => {
                let errors = &f.errors;
                assert_eq!(errors[0].field, "scopes");
                assert!(
                    errors[0].message.starts_with("manage"),
                    "{}",
                    errors[0].message
                );
            }
            other => panic!("{other:?}"),
        }
        let full = api
            .create_key("t", Scopes::ALL, &json!({"name": "owner"}))
            .await
            .unwrap();
        assert!(matches!(
            api.delete_key("t", read_admin, &full.id).await,
            Err(Error::Forbidden(_))
        ));
        assert!(api
            .store
            .api_key(&hash_key(&full.key))
            .await
            .unwrap()
            .is_some());
        api.delete_key("t", read_admin, &defaulted.id)
            .await
            .unwrap();
        let invalid = api
            .create_key(
                "t",
                Scopes::ALL,
                &json!({"name": "", "scopes": ["root"], "ttl": 3}),
            )
            .await;
        match invalid {
            Err(Error::Validation(errors)) => assert_eq!(
                errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
                ["ttl", "name", "scopes[0]"]
            ),
            other => panic!("{other:?}"),
        }
    }
}

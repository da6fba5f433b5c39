//! The management API's operations (SPEC §3), scoped to the caller's tenant.

use crate::catalog;
use crate::error::{Error, Result};
use crate::signing;
use crate::store::{Page, Store};
use crate::webhook::{SigningSecret, UrlRules, Webhook, WebhookSpec, WebhookView};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
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
    rules: UrlRules,
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
    fn from_page<S>(page: Page<S>, id: impl Fn(&S) -> &str, view: impl Fn(&S) -> T) -> Self {
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
    pub fn new(store: Arc<dyn Store>, rules: UrlRules) -> Self {
        Api { store, rules }
    }

    pub async fn create_webhook(&self, tenant_id: &str, body: &Value) -> Result<WebhookView> {
        let spec = WebhookSpec::parse(body, self.rules)?;
        let now = OffsetDateTime::now_utc();
        let secret = signing::generate_secret();
        let webhook = Webhook {
            id: crate::ids::prefixed("wh"),
            tenant_id: tenant_id.to_string(),
            name: spec.name,
            description: spec.description,
            url: spec.url,
            kind: spec.kind,
            events: spec.events,
            filters: spec.filters,
            headers: spec.headers,
            include_result: spec.include_result,
            enabled: spec.enabled,
            disabled_reason: None,
            secrets: vec![SigningSecret {
                secret: secret.clone(),
                expires_at: None,
            }],
            created_at: now,
            updated_at: now,
        };
        self.store.create_webhook(&webhook).await?;
        tracing::info!(tenant_id, webhook_id = %webhook.id, "webhook created");
        let mut view = WebhookView::from(&webhook);
        view.secret = Some(secret.expose().to_string());
        Ok(view)
    }

    pub async fn list_webhooks(
        &self,
        tenant_id: &str,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Listing<WebhookView>> {
        let limit = page_limit(limit)?;
        let after = cursor.map(|c| decode_cursor(c, "wh_")).transpose()?;
        let page = self
            .store
            .list_webhooks(tenant_id, limit, after.as_deref())
            .await?;
        Ok(Listing::from_page(
            page,
            |w| &w.id,
            |w| WebhookView::from(w),
        ))
    }

    pub async fn get_webhook(&self, tenant_id: &str, id: &str) -> Result<WebhookView> {
        self.store
            .get_webhook(tenant_id, id)
            .await?
            .map(|w| WebhookView::from(&w))
            .ok_or(Error::NotFound("webhook"))
    }

    pub async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<()> {
        if self.store.delete_webhook(tenant_id, id).await? {
            tracing::info!(tenant_id, webhook_id = id, "webhook deleted");
            Ok(())
        } else {
            Err(Error::NotFound("webhook"))
        }
    }

    /// The catalog as served at `GET /v1/event-types`.
    pub fn event_types(&self) -> Value {
        let types: Vec<Value> = catalog::EVENT_TYPES
            .iter()
            .map(|t| {
                json!({
                    "type": t.name,
                    "resource": t.resource,
                    "status": t.status,
                    "terminal": t.is_terminal(),
                    "description": t.description,
                    "sample": catalog::sample(t),
                })
            })
            .collect();
        let patterns: Vec<Value> = catalog::composite_patterns()
            .into_iter()
            .map(|(pattern, description)| json!({"pattern": pattern, "description": description}))
            .collect();
        json!({"data": types, "patterns": patterns})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::TargetPolicy;
    use crate::store::MemoryStore;

    fn api() -> Api {
        Api::new(
            Arc::new(MemoryStore::new()),
            UrlRules {
                policy: TargetPolicy::Public,
                require_https: false,
            },
        )
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
    async fn other_tenants_see_not_found() {
        let api = api();
        let w = api
            .create_webhook("a", &json!({"url": "https://a.example/", "events": ["*"]}))
            .await
            .unwrap();
        assert!(w.secret.as_deref().unwrap().starts_with("whsec_"));
        assert!(matches!(
            api.get_webhook("b", &w.id).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            api.delete_webhook("b", &w.id).await,
            Err(Error::NotFound(_))
        ));
        assert!(
            api.get_webhook("a", &w.id).await.unwrap().secret.is_none(),
            "secret only on create"
        );
        api.delete_webhook("a", &w.id).await.unwrap();
        assert!(matches!(
            api.get_webhook("a", &w.id).await,
            Err(Error::NotFound(_))
        ));
    }
}

//! The management API's operations (SPEC §3), each scoped to the caller's tenant: another
//! tenant's ids are simply not found.

use crate::catalog;
use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Error, FieldError, Result};
use crate::event::{Event, EventEnvelope, Target};
use crate::format;
use crate::matching::pattern_matches;
use crate::queue::Queue;
use crate::scope::Scopes;
use crate::secret::Secret;
use crate::service::dispatch::Dispatcher;
use crate::service::tenants::{generate_key, hash_key};
use crate::signing;
use crate::store::{ApiKey, Page, Store, Tenant};
use crate::webhook::{SigningSecret, UrlRules, Webhook, WebhookSpec, WebhookView};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);
/// How often a webhook update is applied again when another writer got in first.
const WRITE_TRIES: usize = 3;

/// A page as the API answers it.
#[derive(Debug, Serialize)]
pub struct Listing<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// What a test send did (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    pub delivered: bool,
    pub event_type: String,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub webhook_id: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<crate::delivery::Attempt>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        DeliveryView {
            id: d.id.to_string(),
            event_id: d.event_id.to_string(),
            event_type: d.event_type.to_string(),
            webhook_id: d.webhook_id.to_string(),
            status: d.status,
            attempts: d.attempts.clone(),
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
        }
    }
}

/// A key as shown once on creation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewKey {
    pub id: String,
    /// The key itself: shown in this answer only, stored as a hash.
    pub key: String,
    pub name: String,
    #[schema(value_type = Vec<crate::scope::Scope>)]
    pub scopes: Scopes,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A key as listed: never the key, nor its hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    #[schema(value_type = Vec<crate::scope::Scope>)]
    pub scopes: Scopes,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The UTC day of the key's last use (`2026-12-02`), null when never used.
    #[schema(format = Date)]
    pub last_used: Option<String>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        KeyView {
            id: k.id.clone(),
            name: k.name.clone(),
            scopes: k.scopes,
            created_at: k.created_at,
            last_used: k.last_used.and_then(|d| d.format(crate::store::DAY).ok()),
        }
    }
}

/// The longest key name.
pub const MAX_KEY_NAME: usize = 128;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewTenant {
    pub id: String,
    pub name: String,
    pub key: String,
}

pub struct Api {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    dispatcher: Arc<Dispatcher>,
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

/// RFC 7396 JSON merge patch: objects merge, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The user-settable fields of a stored webhook as JSON, with real header values: the base a
/// PATCH merges into.
fn spec_json(w: &Webhook) -> Value {
    json!({
        "name": w.name, "description": w.description, "url": w.url, "kind": w.kind,
        "events": w.events, "filters": w.filters,
        "headers": w.headers.iter().map(|h| json!({"key": h.key, "value": h.value.expose(), "protected": h.protected})).collect::<Vec<_>>(),
        "include_result": w.include_result, "enabled": w.enabled, "metadata": w.metadata,
    })
}

/// `secret` signs from `now` on; the current one keeps signing beside it for 24 h so receivers
/// can switch over. Installing the current secret again changes nothing.
fn install_secret(webhook: &mut Webhook, secret: Secret, now: OffsetDateTime) {
    if webhook
        .secrets
        .iter()
        .any(|s| s.expires_at.is_none() && s.secret == secret)
    {
        return;
    }
    webhook
        .secrets
        .retain(|s| s.expires_at.is_none_or(|at| at > now));
    for old in webhook
        .secrets
        .iter_mut()
        .filter(|s| s.expires_at.is_none())
    {
        old.expires_at = Some(now + ROTATION_OVERLAP);
    }
    webhook.secrets.insert(
        0,
        SigningSecret {
            secret,
            expires_at: None,
        },
    );
}

/// Protected values are write-only, so a client cannot resend them: a header sent without a
/// value keeps the stored value only when both the stored and the sent header are protected
/// (so a value can never be read back by clearing its flag). Returns the indexes of the
/// headers whose value was kept; any other header without a value fails validation.
fn keep_protected_values(body: &mut Value, existing: &Webhook) -> Vec<usize> {
    let mut kept = Vec::new();
    let Some(headers) = body.get_mut("headers").and_then(Value::as_array_mut) else {
        return kept;
    };
    for (i, header) in headers.iter_mut().enumerate() {
        let Some(header) = header.as_object_mut() else {
            continue;
        };
        if !matches!(header.get("value"), None | Some(Value::Null))
            || header.get("protected") != Some(&Value::Bool(true))
        {
            continue;
        }
        let Some(key) = header.get("key").and_then(Value::as_str) else {
            continue;
        };
        if let Some(stored) = existing
            .headers
            .iter()
            .find(|h| h.protected && h.key.eq_ignore_ascii_case(key))
        {
            header.insert(
                "value".into(),
                Value::String(stored.value.expose().to_string()),
            );
            kept.push(i);
        }
    }
    kept
}

/// A URL's origin (scheme, host, port): where a webhook's requests, and its headers, go.
fn origin(url: &str) -> Option<url::Origin> {
    url::Url::parse(url).ok().map(|u| u.origin())
}

/// A change that moves a webhook to another origin must bring its protected values again: a
/// stored value goes only to the receiver it was given for.
fn protected_values_stay_home(
    existing: &Webhook,
    spec: &WebhookSpec,
    kept: &[usize],
) -> Result<()> {
    if kept.is_empty() || origin(&existing.url) == origin(&spec.url) {
        return Ok(());
    }
    Err(Error::Validation(
        kept.iter()
            .map(|i| {
                FieldError::new(
                    format!("headers[{i}].value"),
                    "must be sent again: the webhook moves to another origin (scheme, host, \
                     port), and a protected value is only sent where it was given for",
                )
            })
            .collect(),
    ))
}

fn event_type_for(
    requested: Option<&Value>,
    webhook_events: &[String],
) -> Result<&'static catalog::EventType> {
    match requested {
        None | Some(Value::Null) => webhook_events
            .first()
            .and_then(|p| {
                catalog::EVENT_TYPES
                    .iter()
                    .find(|t| pattern_matches(p, t.name))
            })
            .ok_or_else(|| Error::field("event_type", "the webhook subscribes to no event type")),
        Some(Value::String(name)) => catalog::find(name).ok_or_else(|| {
            Error::Validation(vec![FieldError::new(
                "event_type",
                format!("unknown event type `{name}`"),
            )
            .with_valid(catalog::type_names())])
        }),
        Some(_) => Err(Error::field("event_type", "must be a string")),
    }
}

impl Api {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        dispatcher: Arc<Dispatcher>,
        rules: UrlRules,
        max_webhooks: usize,
    ) -> Self {
        Api {
            store,
            queue,
            dispatcher,
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

    pub async fn create_webhook(&self, tenant_id: &str, body: &Value) -> Result<WebhookView> {
        let spec = WebhookSpec::parse(body, &self.rules)?;
        let now = OffsetDateTime::now_utc();
        let secret = spec.secret.clone().unwrap_or_else(signing::generate_secret);
        let webhook = Webhook::new(
            crate::ids::prefixed("wh"),
            tenant_id,
            spec,
            secret.clone(),
            now,
        );
        if !self
            .store
            .create_webhook(&webhook, self.max_webhooks)
            .await?
        {
            return Err(Error::Conflict(format!(
                "the tenant has reached its limit of {} webhooks; delete one first",
                self.max_webhooks
            )));
        }
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
            &page,
            |w| &w.id,
            |w| WebhookView::from(w),
        ))
    }

    pub async fn get_webhook(&self, tenant_id: &str, id: &str) -> Result<WebhookView> {
        Ok(WebhookView::from(&self.webhook(tenant_id, id).await?))
    }

    /// PUT: the body replaces every user-settable field (omitted ones take their defaults).
    pub async fn replace_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        body: &Value,
    ) -> Result<WebhookView> {
        self.update(tenant_id, id, |existing| {
            let mut body = body.clone();
            let kept = keep_protected_values(&mut body, &existing);
            self.save(existing, &body, &kept)
        })
        .await
    }

    /// PATCH: the body is merged into the current webhook (RFC 7396), then validated whole.
    pub async fn patch_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        patch: &Value,
    ) -> Result<WebhookView> {
        if !patch.is_object() {
            return Err(Error::BadRequest(
                "a PATCH body is a JSON object of the fields to change".into(),
            ));
        }
        self.update(tenant_id, id, |existing| {
            let mut merged = spec_json(&existing);
            let mut patch = patch.clone();
            let kept = if patch.get("headers").is_some() {
                keep_protected_values(&mut patch, &existing)
            } else {
                // The stored headers stay as they are, protected values included.
                (0..existing.headers.len())
                    .filter(|&i| existing.headers[i].protected)
                    .collect()
            };
            merge_patch(&mut merged, &patch);
            self.save(existing, &merged, &kept)
        })
        .await
    }

    /// Applies `change` to the webhook as stored, and writes the result on the condition that
    /// nobody wrote in between; when somebody did, `change` is applied again to the fresh copy.
    async fn update(
        &self,
        tenant_id: &str,
        id: &str,
        change: impl Fn(Webhook) -> Result<Webhook>,
    ) -> Result<WebhookView> {
        for _ in 0..WRITE_TRIES {
            let webhook = change(self.webhook(tenant_id, id).await?)?;
            if self.store.update_webhook(&webhook).await? {
                tracing::info!(
                    tenant_id,
                    webhook_id = id,
                    enabled = webhook.enabled,
                    "webhook updated"
                );
                return Ok(WebhookView::from(&webhook));
            }
        }
        Err(Error::Conflict(
            "the webhook kept changing while this request was applied; send it again".into(),
        ))
    }

    /// The stored webhook with the user-settable fields of `body`, validated.
    fn save(&self, mut existing: Webhook, body: &Value, kept: &[usize]) -> Result<Webhook> {
        let spec = WebhookSpec::parse(body, &self.rules)?;
        protected_values_stay_home(&existing, &spec, kept)?;
        let now = OffsetDateTime::now_utc();
        if let Some(secret) = spec.secret {
            install_secret(&mut existing, secret, now);
        }
        // The health clock measures the endpoint as it is: re-enabling or pointing the webhook
        // elsewhere starts it afresh, so the first failure after either does not disable it.
        let failing_since = if (spec.enabled && !existing.enabled) || spec.url != existing.url {
            None
        } else {
            existing.failing_since
        };
        Ok(Webhook {
            name: spec.name,
            description: spec.description,
            url: spec.url,
            kind: spec.kind,
            events: spec.events,
            filters: spec.filters,
            headers: spec.headers,
            include_result: spec.include_result,
            metadata: spec.metadata,
            // The reason stays while the webhook stays disabled; re-enabling clears it, and a
            // user disabling by hand needs none.
            disabled_reason: if !spec.enabled && !existing.enabled {
                existing.disabled_reason.clone()
            } else {
                None
            },
            enabled: spec.enabled,
            failing_since,
            updated_at: now,
            ..existing
        })
    }

    pub async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<()> {
        if self.store.delete_webhook(tenant_id, id).await? {
            tracing::info!(tenant_id, webhook_id = id, "webhook deleted");
            Ok(())
        } else {
            Err(Error::NotFound("webhook"))
        }
    }

    /// The current signing secret.
    pub async fn secret(&self, tenant_id: &str, id: &str) -> Result<Secret> {
        let webhook = self.webhook(tenant_id, id).await?;
        webhook
            .secrets
            .into_iter()
            .find(|s| s.expires_at.is_none())
            .map(|s| s.secret)
            .ok_or_else(|| Error::Store("webhook without a current secret".into()))
    }

    /// A new secret signs from now on; the previous one keeps signing beside it for 24 h.
    pub async fn rotate_secret(&self, tenant_id: &str, id: &str) -> Result<Secret> {
        let secret = signing::generate_secret();
        self.update(tenant_id, id, |mut webhook| {
            let now = OffsetDateTime::now_utc();
            install_secret(&mut webhook, secret.clone(), now);
            webhook.updated_at = now;
            Ok(webhook)
        })
        .await?;
        tracing::info!(tenant_id, webhook_id = id, "signing secret rotated");
        Ok(secret)
    }

    /// Sends the catalog sample of `event_type` (or of the webhook's first subscription) to a
    /// saved webhook, synchronously, formatted and signed like any delivery.
    pub async fn test_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        body: &Value,
    ) -> Result<TestResult> {
        if let Some(extra) = body
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "event_type"))
        {
            return Err(Error::Validation(vec![FieldError::new(
                extra.clone(),
                "unknown field",
            )
            .with_valid(vec!["event_type".into()])]));
        }
        let webhook = self.webhook(tenant_id, id).await?;
        let event_type = event_type_for(body.get("event_type"), &webhook.events)?;
        Ok(self.send_test(&webhook, event_type).await)
    }

    /// Tests a webhook configuration before it is saved (UbiOps' test panel). The body is a
    /// create body, plus an optional `event_type`. It is signed with a throwaway secret.
    pub async fn test_unsaved(&self, tenant_id: &str, body: &Value) -> Result<TestResult> {
        let mut spec_body = body.clone();
        let requested = spec_body
            .as_object_mut()
            .and_then(|o| o.remove("event_type"));
        let spec = WebhookSpec::parse(&spec_body, &self.rules)?;
        let event_type = event_type_for(requested.as_ref(), &spec.events)?;
        let now = OffsetDateTime::now_utc();
        // Enabled whatever the body says: a test is sent on request.
        // A secret the body brings signs the test, so the receiver can check it is set up.
        let secret = spec.secret.clone().unwrap_or_else(signing::generate_secret);
        let webhook = Webhook::new("wh_unsaved".into(), tenant_id, spec, secret, now);
        Ok(self.send_test(&webhook, event_type).await)
    }

    async fn send_test(&self, webhook: &Webhook, event_type: &catalog::EventType) -> TestResult {
        let event = Event::sample(event_type, OffsetDateTime::now_utc());
        let body = Bytes::from(format::render(webhook.kind, &event, webhook.include_result));
        let outcome = self.dispatcher.send(webhook, &event, body).await;
        tracing::info!(webhook_id = %webhook.id, status_code = outcome.status_code, "test event sent");
        TestResult {
            delivered: outcome.error.is_none()
                && outcome.status_code.is_some_and(|c| (200..300).contains(&c)),
            event_type: event_type.name.to_string(),
            status_code: outcome.status_code,
            duration_ms: outcome.duration.as_millis() as u64,
            response_body: outcome.response_body,
            error: outcome.error.map(|e| e.to_string()),
        }
    }

    pub async fn list_deliveries(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Listing<DeliveryView>> {
        let limit = page_limit(limit)?;
        let before = cursor.map(|c| decode_cursor(c, "dl_")).transpose()?;
        self.webhook(tenant_id, webhook_id).await?;
        let page = self
            .store
            .list_deliveries(tenant_id, webhook_id, limit, before.as_deref())
            .await?;
        Ok(Listing::from_page(
            &page,
            |d| &d.id,
            |d| DeliveryView::from(d),
        ))
    }

    pub async fn get_delivery(&self, tenant_id: &str, id: &str) -> Result<Delivery> {
        self.store
            .get_delivery(tenant_id, id)
            .await?
            .ok_or(Error::NotFound("delivery"))
    }

    /// Queues a new attempt of a delivery (to its webhook as it is configured now).
    pub async fn redeliver(&self, tenant_id: &str, id: &str) -> Result<Delivery> {
        let read = self.get_delivery(tenant_id, id).await?;
        let mut delivery = read.clone();
        let webhook = self
            .store
            .get_webhook(tenant_id, &delivery.webhook_id)
            .await?
            .ok_or_else(|| Error::Conflict("the delivery's webhook has been deleted".into()))?;
        if !webhook.enabled {
            return Err(Error::Conflict(
                "the webhook is disabled; enable it first".into(),
            ));
        }
        let stored = self
            .store
            .get_event(tenant_id, &delivery.event_id)
            .await?
            .ok_or_else(|| Error::Conflict("the event is no longer kept".into()))?;
        let mut envelope: EventEnvelope = serde_json::from_str(&stored)
            .map_err(|e| Error::Store(format!("unreadable stored event: {e}")))?;
        envelope.target = Some(Target {
            webhook_id: webhook.id.clone(),
            delivery_id: delivery.id.to_string(),
            expect_attempts: delivery.attempts.len(),
        });
        envelope.not_before = None;
        let now = OffsetDateTime::now_utc();
        // A new series: the whole schedule is ahead of it.
        delivery.status = DeliveryStatus::Pending;
        delivery.series_start = delivery.attempts.len();
        delivery.next_attempt_at = Some(now);
        // Pending before the message exists: dispatch leases only a delivery that is not
        // final, so the other order could drop the message. Written only over what was read.
        // Refused, it may still be this write: the SDK retries a put whose answer was lost, and
        // the retry's condition fails on what the first try wrote.
        if !self.store.replace_delivery(&delivery, &read, now).await?
            && self.store.get_delivery(tenant_id, id).await?.as_ref() != Some(&delivery)
        {
            return Err(Error::Conflict(
                "the delivery changed while the redelivery was asked (an attempt is running or was just recorded); read it again"
                    .into(),
            ));
        }
        let message = envelope.to_queue_text();
        if let Err(error) = self.queue.send(message, Duration::ZERO).await {
            // No message carries the redelivery: put back what was read, unless an attempt
            // has moved the delivery on since.
            if let Err(revert) = self.store.replace_delivery(&read, &delivery, now).await {
                tracing::error!(tenant_id, delivery_id = id, error = %revert,
                    "a redelivery that was not queued stays pending");
            }
            return Err(error);
        }
        tracing::info!(tenant_id, delivery_id = id, "redelivery queued");
        Ok(delivery)
    }

    /// A new key for the tenant, from `{"name"?, "scopes"?}` (or no body): at most the
    /// scopes of the key asking (`granter`), which are also the default. Asking for more is a
    /// 403 naming `scopes`: a key cannot make a key more powerful than itself.
    pub async fn create_key(
        &self,
        tenant_id: &str,
        granter: Scopes,
        body: &Value,
    ) -> Result<NewKey> {
        let empty = Map::new();
        let fields = match body {
            Value::Null => &empty,
            Value::Object(o) => o,
            _ => {
                return Err(Error::BadRequest(
                    "the body must be {\"name\": ..., \"scopes\": [...]}".into(),
                ))
            }
        };
        let mut errors = Vec::new();
        for extra in fields.keys().filter(|k| *k != "name" && *k != "scopes") {
            errors.push(
                FieldError::new(extra.clone(), "unknown field")
                    .with_valid(vec!["name".into(), "scopes".into()]),
            );
        }
        let name = match fields.get("name") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= MAX_KEY_NAME => {
                n.trim().to_string()
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "name",
                    format!("must be 1 to {MAX_KEY_NAME} characters"),
                ));
                String::new()
            }
        };
        let scopes = match fields.get("scopes") {
            None | Some(Value::Null) => granter,
            Some(value) => match Scopes::parse_field(value) {
                Ok(scopes) => scopes,
                Err(Error::Validation(bad)) => {
                    errors.extend(bad);
                    Scopes::NONE
                }
                Err(other) => return Err(other),
            },
        };
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let wider = scopes.beyond(granter);
        if !wider.is_empty() {
            return Err(Error::forbidden(
                format!("a key can only create keys within its own scopes ({granter})"),
                vec![FieldError::new(
                    "scopes",
                    format!("{wider}: beyond the scopes of the key asking"),
                )
                .with_valid(granter.names().into_iter().map(String::from).collect())],
            ));
        }
        self.store_key(tenant_id, name, scopes).await
    }

    async fn store_key(&self, tenant_id: &str, name: String, scopes: Scopes) -> Result<NewKey> {
        let key = generate_key();
        let record = ApiKey {
            id: crate::ids::prefixed("key"),
            tenant_id: tenant_id.to_string(),
            hash: hash_key(&key),
            name,
            scopes,
            created_at: OffsetDateTime::now_utc(),
            last_used: None,
        };
        self.store.put_api_key(&record).await?;
        tracing::info!(tenant_id, key_id = %record.id, scopes = %record.scopes, "API key created");
        Ok(NewKey {
            id: record.id,
            key,
            name: record.name,
            scopes: record.scopes,
            created_at: record.created_at,
        })
    }

    /// The tenant's keys, oldest first, without the keys or their hashes.
    pub async fn list_keys(
        &self,
        tenant_id: &str,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Listing<KeyView>> {
        let limit = page_limit(limit)?;
        let after = cursor.map(|c| decode_cursor(c, "key_")).transpose()?;
        let page = self
            .store
            .list_api_keys(tenant_id, limit, after.as_deref())
            .await?;
        Ok(Listing::from_page(&page, |k| &k.id, |k| KeyView::from(k)))
    }

    /// Revokes one of the tenant's keys, if it holds no scope the key asking (`revoker`) lacks:
    /// a narrower key cannot lock out a wider one.
    pub async fn delete_key(&self, tenant_id: &str, revoker: Scopes, key_id: &str) -> Result<()> {
        let key = self
            .store
            .get_api_key(tenant_id, key_id)
            .await?
            .ok_or(Error::NotFound("key"))?;
        let wider = key.scopes.beyond(revoker);
        if !wider.is_empty() {
            return Err(Error::forbidden(
                format!(
                    "{key_id} holds scopes this key lacks ({wider}); a key can only revoke keys within its own scopes"
                ),
                Vec::new(),
            ));
        }
        if self.store.delete_api_key(tenant_id, key_id).await? {
            tracing::info!(tenant_id, key_id, "API key revoked");
            Ok(())
        } else {
            Err(Error::NotFound("key"))
        }
    }

    pub async fn create_tenant(&self, body: &Value) -> Result<NewTenant> {
        let Some(obj) = body.as_object() else {
            return Err(Error::BadRequest("the body must be {\"name\": ...}".into()));
        };
        if let Some(extra) = obj.keys().find(|k| *k != "name") {
            return Err(Error::field(extra.clone(), "unknown field"));
        }
        let name = match obj.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 128 => {
                n.trim().to_string()
            }
            _ => return Err(Error::field("name", "is required: 1 to 128 characters")),
        };
        let now = OffsetDateTime::now_utc();
        let tenant = Tenant {
            id: crate::ids::prefixed("tn"),
            name,
            created_at: now,
        };
        self.store.put_tenant(&tenant).await?;
        let key = self
            .store_key(
                &tenant.id,
                crate::service::tenants::FIRST_KEY_NAME.to_string(),
                Scopes::ALL,
            )
            .await?;
        tracing::info!(tenant_id = %tenant.id, "tenant created");
        Ok(NewTenant {
            id: tenant.id,
            name: tenant.name,
            key: key.key,
        })
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
    use crate::queue::MemoryQueue;
    use crate::store::MemoryStore;

    fn api_with_limit(max: usize) -> Api {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::default());
        let config =
            crate::config::Config::from_lookup(crate::config::Mode::Local, |_| None).unwrap();
        Api::new(
            store.clone(),
            queue.clone(),
            Arc::new(crate::runtime::dispatcher(&config, store, queue)),
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
        assert!(!patched.enabled);
        assert_eq!(patched.description, "d");
        assert_eq!(patched.name, "n", "untouched fields stay");
        let stored = api.webhook("t", &w.id).await.unwrap();
        assert_eq!(stored.headers[0].value.expose(), "Token 1");
        // A PUT that lists the protected header without its value keeps the value.
        api.replace_webhook("t", &w.id, &json!({"url": "https://a.example/b", "events": ["jobs.*"],
            "headers": [{"key": "authorization", "protected": true}, {"key": "X-New", "value": "v"}]}))
            .await
            .unwrap();
        let stored = api.webhook("t", &w.id).await.unwrap();
        assert_eq!(stored.headers[0].value.expose(), "Token 1");
        assert_eq!(
            stored.name, "a.example",
            "PUT resets omitted fields to defaults"
        );
        assert!(stored.enabled);
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
        assert!(stored.headers[0].protected, "nothing was written");
        let kept = api
            .patch_webhook(
                "t",
                &w.id,
                &json!({"headers": [{"key": "authorization", "protected": true}]}),
            )
            .await
            .unwrap();
        assert_eq!(kept.headers[0].value, None);
        assert!(kept.headers[0].protected);
        let stored = api.webhook("t", &w.id).await.unwrap();
        assert_eq!(stored.headers[0].value.expose(), "Token 1");
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
            api.webhook("t", &w.id).await.unwrap().url,
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
        assert_eq!(moved.url, "https://echo.example/");
        let stored = api.webhook("t", &w.id).await.unwrap();
        assert_eq!(stored.headers[0].value.expose(), "Token 2");
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
        stored.enabled = false;
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
        assert!(on.enabled);
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
    async fn test_event_type_defaults_to_first_subscription() {
        assert_eq!(
            event_type_for(None, &["jobs.done".into()]).unwrap().name,
            "jobs.succeeded"
        );
        assert_eq!(
            event_type_for(None, &["requests.finished".into()])
                .unwrap()
                .name,
            "requests.completed"
        );
        assert_eq!(
            event_type_for(Some(&json!("builds.failed")), &["*".into()])
                .unwrap()
                .name,
            "builds.failed"
        );
        assert!(event_type_for(Some(&json!("builds.exploded")), &["*".into()]).is_err());
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

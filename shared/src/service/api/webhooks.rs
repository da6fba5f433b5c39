//! Webhooks: create, read, replace, patch, delete, and their signing secrets.

use super::*;

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);

/// How often a webhook update is applied again when another writer got in first.
const WRITE_TRIES: usize = 3;

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
            .spec
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
    if kept.is_empty() || origin(&existing.spec.url) == origin(&spec.url) {
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

impl Api {
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
            // The stored settings with real header values: what the patch merges into.
            let mut merged = serde_json::to_value(&existing.spec).expect("settings serialize");
            let mut patch = patch.clone();
            let kept = if patch.get("headers").is_some() {
                keep_protected_values(&mut patch, &existing)
            } else {
                // The stored headers stay as they are, protected values included.
                (0..existing.spec.headers.len())
                    .filter(|&i| existing.spec.headers[i].protected)
                    .collect()
            };
            merge_patch(&mut merged, &patch);
            self.save(existing, &merged, &kept)
        })
        .await
    }

    /// PATCH as the route takes it: `recover: true` beside the fields to change starts, once they
    /// are written, the recovery of every delivery the webhook held over the log's 30 days. It
    /// needs the webhook enabled by the patch or already, and is refused before anything is
    /// written otherwise.
    pub async fn patch_webhook_recovering(
        &self,
        tenant_id: &str,
        id: &str,
        patch: &Value,
    ) -> Result<(WebhookView, Option<crate::recovery::Recovery>)> {
        let mut patch = patch.clone();
        let recover = match patch.as_object_mut().and_then(|o| o.remove("recover")) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(on)) => on,
            Some(_) => return Err(Error::field("recover", "must be true or false")),
        };
        if recover {
            match patch.get("enabled") {
                // The body contradicts itself: a 422, as the schema says.
                Some(Value::Bool(false)) => {
                    return Err(Error::field(
                        "recover",
                        "cannot recover while disabling the webhook: send \"enabled\": true",
                    ))
                }
                Some(Value::Bool(true)) => {}
                // The webhook as stored decides: a state, not a bad body.
                _ if !self.webhook(tenant_id, id).await?.spec.enabled => {
                    return Err(Error::Conflict(
                        "the webhook is disabled: send \"enabled\": true beside \"recover\" to enable it and recover what it held".into(),
                    ))
                }
                _ => {}
            }
        }
        let view = self.patch_webhook(tenant_id, id, &patch).await?;
        if !recover {
            return Ok((view, None));
        }
        let now = OffsetDateTime::now_utc();
        let since = now - crate::recovery::RECOVERY_RETENTION;
        let job = self
            .start_recovery(tenant_id, id, since, now, Some(DeliveryStatus::Held), now)
            .await?;
        Ok((view, Some(job)))
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
                    enabled = webhook.spec.enabled,
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
        let failing_since =
            if (spec.enabled && !existing.spec.enabled) || spec.url != existing.spec.url {
                None
            } else {
                existing.failing_since
            };
        // The failing count stays across a re-enable, so the first success after it reports
        // the webhook recovered; another endpoint starts at none.
        let failures = if spec.url != existing.spec.url {
            0
        } else {
            existing.failures
        };
        // The reason stays while the webhook stays disabled; re-enabling clears it, and a
        // user disabling by hand needs none.
        let disabled_reason = if !spec.enabled && !existing.spec.enabled {
            existing.disabled_reason.clone()
        } else {
            None
        };
        Ok(Webhook {
            spec: WebhookSpec {
                secret: None,
                ..spec
            },
            disabled_reason,
            failing_since,
            failures,
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
}

//! API keys and tenants.

use super::*;

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

impl Api {
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
}

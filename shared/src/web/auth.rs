//! Tenant authentication: the one place a request is tied to a tenant. Every tenant-scoped
//! handler takes a [`Caller`], so a route cannot forget to scope.

use super::AppState;
use crate::error::Error;
use crate::service::tenants::hash_key;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The authenticated tenant behind `Authorization: Bearer <key>`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, key) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .ok_or(Error::Unauthorized)?;
        // Looking up the hash, not the key, keeps the comparison independent of the key's bytes.
        match state.store.tenant_for_key(&hash_key(key)).await? {
            Some(tenant_id) => Ok(Caller { tenant_id }),
            None => Err(Error::Unauthorized),
        }
    }
}

//! Tenant authentication: the one place a request is tied to a tenant. Every tenant-scoped
//! handler takes a [`Caller`], so a route cannot forget to scope.

use super::AppState;
use crate::error::Error;
use crate::service::tenants::hash_key;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

/// The authenticated tenant behind `Authorization: Bearer <key>`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: String,
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
        .filter(|k| !k.is_empty() && k.len() <= 256)
}

/// The operator, holding `HERALD_ADMIN_KEY`. Without a configured admin key the admin routes
/// do not exist (404).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(admin) = &state.admin_key else {
            return Err(Error::NotFound("route"));
        };
        let presented = bearer(parts).ok_or(Error::Unauthorized)?;
        // Compared in constant time over hashes, so neither content nor length leaks.
        let (a, b) = (hash_key(presented), hash_key(admin.expose()));
        if bool::from(a.as_bytes().ct_eq(b.as_bytes())) {
            Ok(Admin)
        } else {
            Err(Error::Unauthorized)
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = bearer(parts).ok_or(Error::Unauthorized)?;
        // Looking up the hash, not the key, keeps the comparison independent of the key's bytes.
        match state.store.tenant_for_key(&hash_key(key)).await? {
            Some(tenant_id) => Ok(Caller { tenant_id }),
            None => Err(Error::Unauthorized),
        }
    }
}

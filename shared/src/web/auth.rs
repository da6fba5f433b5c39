//! Tenant authentication: the one place a request is tied to a tenant and its key's scopes.
//! Every tenant-scoped handler takes a [`Caller`] naming the scope it needs
//! (`Caller<need::Manage>`), so a route can forget neither the tenant nor the scope.

use super::problem::Problem;
use crate::error::Error;
use crate::scope::{Scope, Scopes};
use crate::secret::hash_key;
use crate::service::tenants::authenticate;
use crate::store::Store;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::marker::PhantomData;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What tying a request to a tenant needs: the keys' store, the operator's key, and the
/// per-tenant rate limit. Every router's state holds one (`AsRef<Auth>`).
#[derive(Clone)]
pub struct Auth {
    pub store: Arc<dyn Store>,
    pub admin_key: Option<crate::secret::Secret>,
    pub limiter: Option<Arc<TenantLimiter>>,
}

/// The scope a route needs, as a type: `Caller<need::Read>`.
pub trait Need {
    const SCOPE: Scope;
}

pub mod need {
    use super::Need;
    use crate::scope::Scope;

    /// Posting events.
    pub struct Ingest;
    /// The GET routes of webhooks, deliveries and the catalog.
    pub struct Read;
    /// Changing webhooks and deliveries, and their secrets.
    pub struct Manage;
    /// Keys.
    pub struct Admin;

    impl Need for Ingest {
        const SCOPE: Scope = Scope::Ingest;
    }
    impl Need for Read {
        const SCOPE: Scope = Scope::Read;
    }
    impl Need for Manage {
        const SCOPE: Scope = Scope::Manage;
    }
    impl Need for Admin {
        const SCOPE: Scope = Scope::Admin;
    }
}

/// The authenticated tenant behind `Authorization: Bearer <key>`, whose key holds `N`'s scope.
/// A missing or unknown key is a 401; a known key without the scope a 403, whatever the id in
/// the path, so a 403 says nothing about another tenant's resources.
#[derive(Debug)]
pub struct Caller<N> {
    pub tenant_id: String,
    pub key_id: String,
    /// Every scope of the caller's key, not only the one the route needs.
    pub scopes: Scopes,
    need: PhantomData<fn() -> N>,
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

impl<S: AsRef<Auth> + Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(admin) = &state.as_ref().admin_key else {
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

impl<N: Need, S: AsRef<Auth> + Send + Sync> FromRequestParts<S> for Caller<N> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = state.as_ref();
        let presented = bearer(parts).ok_or(Error::Unauthorized)?;
        let today = time::OffsetDateTime::now_utc().date();
        // Looking up the hash, not the key, keeps the comparison independent of the key's bytes.
        let Some(key) = authenticate(state.store.as_ref(), presented, today).await? else {
            return Err(Error::Unauthorized.into());
        };
        tracing::Span::current().record("tenant_id", key.tenant_id.as_str());
        if let Some(limiter) = &state.limiter {
            limiter.check(&key.tenant_id)?;
        }
        if !key.scopes.contains(N::SCOPE) {
            return Err(Error::forbidden(
                format!(
                    "this route needs a key with the `{}` scope; this key has: {}",
                    N::SCOPE,
                    key.scopes
                ),
                Vec::new(),
            )
            .into());
        }
        Ok(Caller {
            tenant_id: key.tenant_id,
            key_id: key.id,
            scopes: key.scopes,
            need: PhantomData,
        })
    }
}

/// A per-tenant token bucket, per process (per Lambda container): it protects one container
/// from one tenant; API Gateway's throttling protects the deployment as a whole.
pub struct TenantLimiter {
    limiter: governor::DefaultKeyedRateLimiter<String>,
}

impl TenantLimiter {
    /// `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32) -> Option<Self> {
        let rate = std::num::NonZeroU32::new(per_second)?;
        let burst = rate.saturating_mul(std::num::NonZeroU32::new(2).expect("2 is not zero"));
        Some(TenantLimiter {
            limiter: governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ),
        })
    }

    pub fn check(&self, tenant_id: &str) -> Result<(), Problem> {
        use governor::clock::{Clock, DefaultClock};
        self.limiter
            .check_key(&tenant_id.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Problem::rate_limited(wait.as_secs_f64().ceil().max(1.0) as u64)
            })
    }
}

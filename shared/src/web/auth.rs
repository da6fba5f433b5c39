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
        let Some(tenant_id) = state.store.tenant_for_key(&hash_key(key)).await? else {
            return Err(Error::Unauthorized);
        };
        tracing::Span::current().record("tenant_id", tenant_id.as_str());
        if let Some(limiter) = &state.limiter {
            limiter.check(&tenant_id)?;
        }
        Ok(Caller { tenant_id })
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

    pub fn check(&self, tenant_id: &str) -> Result<(), Error> {
        use governor::clock::{Clock, DefaultClock};
        self.limiter
            .check_key(&tenant_id.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Error::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u64)
            })
    }
}

//! The SSRF guard of the delivery client: host names are resolved by [`GuardedResolver`], which
//! hands the client only addresses the URL policy allows, so the connection goes to a vetted
//! address and a second (rebinding) lookup never happens.

use crate::url_policy::{ip_allowed, is_localhost, TargetPolicy};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A host whose resolved addresses include one the policy refuses.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {ip}, a non-public address that webhooks may not target")]
pub struct BlockedHost {
    pub host: String,
    pub ip: IpAddr,
}

/// How names are turned into addresses: the system resolver, or a fixed table in tests.
pub trait Lookup: Send + Sync {
    fn lookup(
        &self,
        host: &str,
    ) -> futures::future::BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The system resolver (getaddrinfo through tokio).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: &str,
    ) -> futures::future::BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let host = host.to_string();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// Resolves host names for the delivery client and refuses hosts with any non-allowed address.
pub struct GuardedResolver {
    pub policy: TargetPolicy,
    pub lookup: std::sync::Arc<dyn Lookup>,
}

impl GuardedResolver {
    pub fn system(policy: TargetPolicy) -> Self {
        GuardedResolver {
            policy,
            lookup: std::sync::Arc::new(SystemLookup),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        let lookup = self.lookup.clone();
        Box::pin(async move {
            if policy == TargetPolicy::Loopback && !is_localhost(&host) {
                return Err(Box::new(BlockedHost {
                    host,
                    ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Vec<SocketAddr> = lookup
                .lookup(&host)
                .await?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if let Some(bad) = addrs.iter().find(|a| !ip_allowed(a.ip(), policy)) {
                return Err(Box::new(BlockedHost { host, ip: bad.ip() })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url_policy::{check_url, UrlError};

    #[tokio::test]
    async fn resolver_refuses_names_that_resolve_to_loopback() {
        let resolver = GuardedResolver::system(TargetPolicy::Public);
        let err = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("blocked");
        assert!(err.to_string().contains("non-public"), "{err}");
        let private = GuardedResolver::system(TargetPolicy::Private);
        let addrs: Vec<_> = private
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn loopback_policy_never_looks_names_up() {
        let p = TargetPolicy::Loopback;
        assert!(check_url("http://127.0.0.1:9000/x", p, false).is_ok());
        assert!(check_url("http://localhost:9000/x", p, false).is_ok());
        assert!(check_url("http://[::1]/", p, false).is_ok());
        assert_eq!(
            check_url("http://example.com/", p, false),
            Err(UrlError::NotLoopback)
        );
        assert!(matches!(
            check_url("http://10.0.0.1/", p, false),
            Err(UrlError::Blocked(_))
        ));
        assert!(matches!(
            check_url("http://8.8.8.8/", p, false),
            Err(UrlError::Blocked(_))
        ));
        let resolver = GuardedResolver::system(p);
        assert!(resolver
            .resolve("example.com".parse().unwrap())
            .await
            .is_err());
        assert!(resolver.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}

//! The local stack's answer to DNS rebinding: `herald dev` serves with a well-known tenant key,
//! so a web page that points a name of its own at 127.0.0.1 could drive it from the browser.
//! Such a request still names the page's host in `Host`, so only requests addressed to this
//! machine (localhost, 127.0.0.0/8, `[::1]`, any port) or to the `--host` it listens on are
//! answered; any other `Host` gets a 421 problem. Lambda sits behind API Gateway and needs none.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_shared::url_policy::{ip_allowed, is_localhost, TargetPolicy};
use herald_shared::web::problem::Problem;
use std::sync::Arc;
use url::{Host, Url};

/// The hosts a request may be addressed to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// The `--host` the stack listens on, as a URL parser reads it.
    listen: Option<Host>,
}

impl AllowedHosts {
    /// `listen` is the `--host` value: a name, an IPv4 address or a bare IPv6 address. The
    /// wildcard addresses (`0.0.0.0`, `::`) name no host a request could be addressed to.
    pub fn new(listen: &str) -> Self {
        let listen = authority_host(listen)
            .or_else(|| authority_host(&format!("[{listen}]")))
            .filter(|h| match h {
                Host::Ipv4(ip) => !ip.is_unspecified(),
                Host::Ipv6(ip) => !ip.is_unspecified(),
                Host::Domain(_) => true,
            });
        AllowedHosts { listen }
    }

    /// Does a `Host` header value (`name`, `name:port`, `[v6]:port`) name this machine?
    pub fn allows(&self, authority: &str) -> bool {
        match authority_host(authority) {
            Some(Host::Domain(name)) if is_localhost(&name) => true,
            Some(Host::Ipv4(ip)) if ip_allowed(ip.into(), TargetPolicy::Loopback) => true,
            Some(Host::Ipv6(ip)) if ip_allowed(ip.into(), TargetPolicy::Loopback) => true,
            Some(host) => self.listen.as_ref() == Some(&host),
            None => false,
        }
    }
}

/// The host of an authority (`host[:port]`), normalised as the WHATWG parser does (case,
/// numeric IPv4 forms, IDNA); `None` unless it is that and nothing more.
fn authority_host(authority: &str) -> Option<Host> {
    let url = Url::parse(&format!("http://{authority}/")).ok()?;
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    bare.then(|| url.host().map(|h| h.to_owned())).flatten()
}

/// Middleware: refuses a request whose `Host` (or absolute-form authority) is not allowed.
pub async fn check(State(allowed): State<Arc<AllowedHosts>>, req: Request, next: Next) -> Response {
    let authority = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match authority {
        Some(a) if allowed.allows(a) => next.run(req).await,
        _ => Problem::new(
            StatusCode::MISDIRECTED_REQUEST,
            "urn:herald:problem:misdirected",
            "Misdirected request",
            "herald dev answers only requests addressed to localhost, a loopback address or the \
             --host it listens on; this one's Host header names another host (a DNS-rebinding \
             page would)",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_with_or_without_port() {
        let allowed = AllowedHosts::new("127.0.0.1");
        for host in [
            "localhost",
            "localhost:3000",
            "LOCALHOST.:3000",
            "herald.localhost:3000",
            "127.0.0.1",
            "127.0.0.1:3000",
            "127.9.8.7:80",
            "127.1:3000",
            "[::1]",
            "[::1]:3000",
            "[::ffff:127.0.0.1]:3000",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
    }

    #[test]
    fn other_hosts_are_refused() {
        let allowed = AllowedHosts::new("127.0.0.1");
        for host in [
            "",
            "rebind.example",
            "rebind.example:3000",
            "localhost.example:3000",
            "127.0.0.1.nip.io:3000",
            "0.0.0.0:3000",
            "192.168.1.10:3000",
            "[::]:3000",
            "[fe80::1]:3000",
            "localhost@rebind.example",
            "rebind.example#localhost",
            "localhost/x",
            "localhost:3000 rebind.example",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
    }

    #[test]
    fn the_listen_host_is_allowed_too() {
        let by_name = AllowedHosts::new("herald.lan");
        assert!(by_name.allows("herald.lan:3000") && by_name.allows("HERALD.LAN"));
        assert!(!by_name.allows("other.lan:3000"));
        let by_address = AllowedHosts::new("192.168.1.10");
        assert!(by_address.allows("192.168.1.10:3000"));
        assert!(!by_address.allows("192.168.1.11:3000"));
        let v6 = AllowedHosts::new("fd00::10");
        assert!(v6.allows("[fd00::10]:3000"));
        let any = AllowedHosts::new("0.0.0.0");
        assert!(any.allows("localhost:3000"));
        assert!(!any.allows("0.0.0.0:3000") && !any.allows("rebind.example"));
        assert!(!AllowedHosts::new("::").allows("[::]:3000"));
    }
}

//! The URL policy (SPEC §4): which URLs and addresses webhooks may target. Webhooks are held to
//! it when they are saved, and the delivery client (`http::guard`) before every request and
//! on every address a name resolves to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The longest URL a webhook may have.
pub const MAX_URL_LEN: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPolicy {
    /// Only public addresses (the Lambda default).
    Public,
    /// Also loopback and private ranges (the local stack's default).
    Private,
    /// Loopback only, and no DNS lookups but `localhost`: for tests and sandboxes where nothing
    /// may leave the machine.
    Loopback,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is not a valid absolute URL")]
    Invalid,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must use https (or http unless HERALD_REQUIRE_HTTPS is set)")]
    Scheme,
    #[error("must not carry credentials (user:pass@); put secrets in a protected header")]
    Credentials,
    #[error("must name a host")]
    NoHost,
    #[error("points to {0}, a non-public address that webhooks may not target")]
    Blocked(IpAddr),
    #[error("names {0}, which always means this machine (RFC 6761): a non-public address that webhooks may not target")]
    Localhost(String),
    #[error("must point to localhost or a loopback address (HERALD_TARGET_POLICY=loopback)")]
    NotLoopback,
    #[error("uses port {0}, which HERALD_ALLOWED_PORTS does not allow")]
    Port(u16),
}

/// The ports webhooks may target (`HERALD_ALLOWED_PORTS`, e.g. `443,80,8000-8999`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSet(Vec<std::ops::RangeInclusive<u16>>);

impl PortSet {
    pub fn parse(text: &str) -> Result<PortSet, String> {
        let ranges = text
            .split(',')
            .map(|part| {
                let part = part.trim();
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                    (Ok(a), Ok(b)) if a >= 1 && a <= b => Ok(a..=b),
                    _ => Err(format!("`{part}` is not a port or a range like 8000-8999")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PortSet(ranges))
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|r| r.contains(&port))
    }
}

/// Everything a target URL is checked against: the address policy, the scheme, the ports.
#[derive(Debug, Clone)]
pub struct UrlRules {
    pub policy: TargetPolicy,
    pub require_https: bool,
    pub ports: Option<std::sync::Arc<PortSet>>,
}

impl UrlRules {
    pub fn new(policy: TargetPolicy) -> Self {
        UrlRules {
            policy,
            require_https: false,
            ports: None,
        }
    }

    /// Checks a URL as saved and as sent: [`check_url`] plus the port allow-list.
    pub fn check(&self, text: &str) -> Result<Url, UrlError> {
        let url = check_url(text, self.policy, self.require_https)?;
        let port = url.port_or_known_default().unwrap_or(0);
        match &self.ports {
            Some(ports) if !ports.contains(port) => Err(UrlError::Port(port)),
            _ => Ok(url),
        }
    }
}

/// `localhost` or a name under it (RFC 6761: always this machine), trailing dots and case aside.
pub fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

pub fn check_url(text: &str, policy: TargetPolicy, require_https: bool) -> Result<Url, UrlError> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong(MAX_URL_LEN));
    }
    let url = Url::parse(text).map_err(|_| UrlError::Invalid)?;
    match url.scheme() {
        "https" => {}
        "http" if !require_https => {}
        _ => return Err(UrlError::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    // The WHATWG parser has already turned `2130706433`, `0x7f.1` and `127.1` into 127.0.0.1.
    let ip = match url.host() {
        None => return Err(UrlError::NoHost),
        Some(Host::Domain("")) => return Err(UrlError::NoHost),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    let host = url.host_str().unwrap_or("");
    if let Some(ip) = ip {
        if !ip_allowed(ip, policy) {
            return Err(UrlError::Blocked(ip));
        }
    } else if policy == TargetPolicy::Loopback && !is_localhost(host) {
        return Err(UrlError::NotLoopback);
    } else if policy == TargetPolicy::Public && is_localhost(host) {
        // Resolvers answer `localhost` and `*.localhost` from the machine itself, so the name
        // is as local as 127.0.0.1: refused when saved, not only when sent.
        return Err(UrlError::Localhost(host.to_string()));
    }
    Ok(url)
}

/// May a request go to `ip` under `policy`?
pub fn ip_allowed(ip: IpAddr, policy: TargetPolicy) -> bool {
    if policy == TargetPolicy::Loopback {
        return ip.is_loopback()
            || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
    }
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4, policy),
        IpAddr::V6(v6) => v6_allowed(v6, policy),
    }
}

fn v4_allowed(ip: Ipv4Addr, policy: TargetPolicy) -> bool {
    let [a, b, c, _] = ip.octets();
    let never = ip.is_link_local() // 169.254/16: cloud metadata lives here
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || a >= 240;
    if never {
        return false;
    }
    let private = ip.is_loopback() || ip.is_private() || (a == 100 && (64..128).contains(&b)); // CGNAT 100.64/10
    if private {
        return policy == TargetPolicy::Private;
    }
    let special = matches!(
        (a, b, c),
        (192, 0, 0) // IETF protocol assignments
            | (192, 0, 2) // TEST-NET-1
            | (198, 51, 100) // TEST-NET-2
            | (203, 0, 113) // TEST-NET-3
            | (198, 18..=19, _) // benchmarking
            | (192, 88, 99) // 6to4 relay anycast
    );
    !special
}

/// An allow-list: an IPv6 address that carries an IPv4 one is judged by that address, and
/// any other must be global unicast (`2000::/3`) outside the blocks IANA's special-purpose
/// registry lists as not globally reachable; loopback and ULA only under `private`.
fn v6_allowed(ip: Ipv6Addr, policy: TargetPolicy) -> bool {
    if let Some(v4) = translated_v4(ip) {
        return v4_allowed(v4, policy);
    }
    let seg = ip.segments();
    let never = ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || (seg[0] == 0xfd00 && seg[1] == 0x0ec2) // fd00:ec2::/32, EC2 metadata
        // 64:ff9b:1::/48, local-use NAT64 (RFC 8215): where the IPv4 address sits depends on
        // the local translator's prefix length, so it cannot be checked.
        || seg[..3] == [0x64, 0xff9b, 1]
        // An ISATAP interface id (RFC 5214) names the IPv4 tunnel end point it reaches.
        || isatap_v4(ip).is_some_and(|v4| !v4_allowed(v4, policy));
    if never {
        return false;
    }
    let private = ip.is_loopback() || (seg[0] & 0xfe00) == 0xfc00; // ULA fc00::/7
    if private {
        return policy == TargetPolicy::Private;
    }
    let global_unicast = (seg[0] & 0xe000) == 0x2000;
    // 2001::/23 IETF protocol assignments (Teredo among them), 2001:db8::/32 documentation.
    let special = (seg[0] == 0x2001 && (seg[1] < 0x0200 || seg[1] == 0x0db8))
        || (seg[0] == 0x3fff && seg[1] < 0x1000) // 3fff::/20, documentation (RFC 9637)
        || seg[0] == 0x5f00; // SRv6 SIDs (RFC 9602)
    global_unicast && !special
}

/// The IPv4 address a packet to `ip` is delivered to, for the forms that carry one in place:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-translated (SIIT, `::ffff:0:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64's well-known prefix (`64:ff9b::/96`) and 6to4 (`2002:AABB:CCDD::/48`).
fn translated_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let o = ip.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match &seg[..6] {
        [0, 0, 0, 0, 0, 0xffff] | [0, 0, 0, 0, 0xffff, 0] | [0x64, 0xff9b, 0, 0, 0, 0] => Some(low),
        [0, 0, 0, 0, 0, 0] if !ip.is_loopback() && !ip.is_unspecified() => Some(low),
        _ if seg[0] == 0x2002 => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// The IPv4 address in an ISATAP interface id (`…:0:5efe:a.b.c.d`, with the universal and
/// group bits either way), under any prefix.
fn isatap_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let o = ip.octets();
    (seg[4] & 0xfcff == 0 && seg[5] == 0x5efe).then(|| Ipv4Addr::new(o[12], o[13], o[14], o[15]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn blocked(url: &str, policy: TargetPolicy) -> bool {
        matches!(check_url(url, policy, false), Err(UrlError::Blocked(_)))
    }

    #[test]
    fn numeric_tricks_are_normalised_then_blocked() {
        for url in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://localhost.:80@127.0.0.1/",
        ] {
            let r = check_url(url, TargetPolicy::Public, false);
            assert!(r.is_err(), "{url} should be refused");
        }
    }

    #[test]
    fn metadata_and_link_local_are_refused_under_both_policies() {
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
        ] {
            assert!(blocked(url, TargetPolicy::Public), "{url}");
            assert!(blocked(url, TargetPolicy::Private), "{url}");
        }
    }

    #[test]
    fn localhost_names_are_refused_when_saved_under_the_public_policy() {
        for url in [
            "http://localhost/x",
            "https://LOCALHOST:8443/x",
            "http://localhost./x",
            "http://api.localhost/x",
            "http://a.b.localhost../x",
            "http://%6cocalhost/x",
            "http://\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}\u{ff48}\u{ff4f}\u{ff53}\u{ff54}/x",
        ] {
            match check_url(url, TargetPolicy::Public, false) {
                Err(UrlError::Localhost(host)) => assert!(host.contains("localhost"), "{url}"),
                other => panic!("{url}: {other:?}"),
            }
            assert!(
                check_url(url, TargetPolicy::Private, false).is_ok(),
                "{url}"
            );
            assert!(
                check_url(url, TargetPolicy::Loopback, false).is_ok(),
                "{url}"
            );
        }
        for url in [
            "http://localhost.example/x",
            "http://mylocalhost/x",
            "http://localhost-1/x",
        ] {
            assert!(check_url(url, TargetPolicy::Public, false).is_ok(), "{url}");
        }
    }

    /// The three forms the review found taken as public, and the other embeddings of an IPv4
    /// address, each aimed at the metadata address and at loopback.
    #[test]
    fn ipv6_forms_that_embed_ipv4_are_judged_by_it() {
        for url in [
            "http://[::ffff:0:a9fe:a9fe]/",        // SIIT, 169.254.169.254
            "http://[::ffff:0:169.254.169.254]/",  // SIIT, dotted
            "http://[64:ff9b:1::a9fe:a9fe]/",      // local-use NAT64
            "http://[64:ff9b:1:a9fe:a9:fe00::]/",  // local-use NAT64, /48 placement
            "http://[::5efe:169.254.169.254]/",    // ISATAP
            "http://[::200:5efe:a9fe:a9fe]/",      // ISATAP, universal bit
            "http://[2600:1f18::5efe:a9fe:a9fe]/", // ISATAP under a global prefix
            "http://[2600:1f18::200:5efe:a9fe:a9fe]/",
            "http://[::ffff:169.254.169.254]/", // mapped
            "http://[::169.254.169.254]/",      // compatible
            "http://[64:ff9b::a9fe:a9fe]/",     // NAT64, well-known prefix
            "http://[2002:a9fe:a9fe::1]/",      // 6to4
        ] {
            assert!(blocked(url, TargetPolicy::Public), "{url}");
            assert!(blocked(url, TargetPolicy::Private), "{url}");
        }
        for url in [
            "http://[::ffff:0:7f00:1]/",
            "http://[::ffff:0:10.0.0.1]/",
            "http://[fd00::5efe:127.0.0.1]/",
            "http://[2600:1f18::5efe:10.1.2.3]/",
            "http://[64:ff9b::10.0.0.1]/",
        ] {
            assert!(blocked(url, TargetPolicy::Public), "{url}");
            assert!(!blocked(url, TargetPolicy::Private), "{url}");
        }
        // Public IPv4 addresses stay reachable through the forms that carry them.
        for url in [
            "http://[64:ff9b::808:808]/",
            "http://[2002:808:808::1]/",
            "http://[2600:1f18::5efe:8.8.8.8]/",
        ] {
            assert!(!blocked(url, TargetPolicy::Public), "{url}");
        }
    }

    /// Outside `2000::/3` nothing is public, and inside it the special-purpose blocks are not.
    #[test]
    fn only_global_unicast_v6_is_public() {
        for url in [
            "http://[100::1]/",        // discard-only
            "http://[100:0:0:1::1]/",  // dummy prefix
            "http://[fec0::1]/",       // site-local
            "http://[4000::1]/",       // unassigned
            "http://[2001:2::1]/",     // benchmarking
            "http://[2001:10::1]/",    // ORCHID
            "http://[2001:1ff::1]/",   // the end of 2001::/23
            "http://[2001:db8:1::1]/", // documentation
            "http://[3fff:fff::1]/",   // documentation, RFC 9637
            "http://[5f00::1]/",       // SRv6 SIDs
            "http://[::2]/",           // IPv4-compatible 0.0.0.2
        ] {
            assert!(blocked(url, TargetPolicy::Public), "{url}");
            assert!(blocked(url, TargetPolicy::Private), "{url}");
        }
        for url in [
            "http://[2606:4700:4700::1111]/",
            "http://[2001:200::1]/",
            "http://[2a00:1450:4001:82a::200e]/",
            "http://[2620:4f:8000::1]/",
        ] {
            assert!(!blocked(url, TargetPolicy::Public), "{url}");
        }
    }

    #[test]
    fn private_ranges_depend_on_policy() {
        for url in [
            "http://127.0.0.1:8080/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[fc00::1]/",
            "http://[2002:7f00:1::]/",
        ] {
            assert!(blocked(url, TargetPolicy::Public), "{url}");
            assert!(!blocked(url, TargetPolicy::Private), "{url}");
        }
    }

    #[test]
    fn public_hosts_and_schemes() {
        assert!(check_url(
            "https://hooks.slack.com/services/T/B/X",
            TargetPolicy::Public,
            true
        )
        .is_ok());
        assert!(check_url("http://8.8.8.8/", TargetPolicy::Public, false).is_ok());
        assert_eq!(
            check_url("http://a.example/", TargetPolicy::Public, true),
            Err(UrlError::Scheme)
        );
        assert_eq!(
            check_url("file:///etc/passwd", TargetPolicy::Private, false),
            Err(UrlError::Scheme)
        );
        assert_eq!(
            check_url("https://u:p@a.example/", TargetPolicy::Public, false),
            Err(UrlError::Credentials)
        );
        assert_eq!(
            check_url("https://u@a.example/", TargetPolicy::Public, false),
            Err(UrlError::Credentials)
        );
        assert!(blocked("http://192.0.2.1/", TargetPolicy::Public));
    }

    #[test]
    fn ports_are_limited_when_configured() {
        let ports = PortSet::parse("443, 80,8000-8999").unwrap();
        assert!(ports.contains(443) && ports.contains(8500) && !ports.contains(22));
        let rules = UrlRules {
            ports: Some(std::sync::Arc::new(ports)),
            ..UrlRules::new(TargetPolicy::Public)
        };
        assert!(
            rules.check("https://a.example/x").is_ok(),
            "the scheme's default port"
        );
        assert!(rules.check("http://a.example:8080/x").is_ok());
        assert_eq!(
            rules.check("http://a.example:22/x").unwrap_err(),
            UrlError::Port(22)
        );
        assert_eq!(
            rules.check("https://a.example:6379/").unwrap_err(),
            UrlError::Port(6379)
        );
        assert!(
            UrlRules::new(TargetPolicy::Public)
                .check("http://a.example:22/x")
                .is_ok(),
            "any port by default"
        );
        for bad in ["", "0", "9-1", "http", "70000"] {
            assert!(PortSet::parse(bad).is_err(), "{bad}");
        }
    }

    /// Every way an IPv6 address can carry `v4`, under `prefix` where the form takes one.
    fn embeddings(v4: Ipv4Addr, prefix: u16) -> Vec<Ipv6Addr> {
        let [a, b, c, d] = v4.octets();
        let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        vec![
            v4.to_ipv6_mapped(),
            Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),
            Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0, 0, 0, 0, 0, 0x5efe, hi, lo),
            Ipv6Addr::new(0x2600, prefix, 0, 0, 0x0200, 0x5efe, hi, lo),
        ]
    }

    proptest! {
        #[test]
        fn no_embedding_reaches_what_its_ipv4_address_may_not(a in 0u8..=255, b in 0u8..=255, c in 0u8..=255, d in 0u8..=255, prefix in 0u16..=0xffff) {
            let v4 = Ipv4Addr::new(a, b, c, d);
            for policy in [TargetPolicy::Public, TargetPolicy::Private] {
                for v6 in embeddings(v4, prefix) {
                    if ip_allowed(IpAddr::V6(v6), policy) {
                        prop_assert!(ip_allowed(IpAddr::V4(v4), policy), "{} carries {} under {:?}", v6, v4, policy);
                    }
                }
            }
        }

        #[test]
        fn nothing_outside_global_unicast_is_public(bits in any::<u128>()) {
            let ip = Ipv6Addr::from(bits);
            if (ip.segments()[0] & 0xe000) != 0x2000 && translated_v4(ip).is_none() {
                prop_assert!(!ip_allowed(IpAddr::V6(ip), TargetPolicy::Public), "{}", ip);
            }
        }

        #[test]
        fn every_private_v4_is_blocked_publicly(a in 0u8..=255, b in 0u8..=255, c in 0u8..=255, d in 0u8..=255) {
            let ip = Ipv4Addr::new(a, b, c, d);
            let non_public = ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
                || ip.is_multicast() || ip.is_broadcast() || a == 0 || a >= 240 || (a == 100 && (64..128).contains(&b));
            if non_public {
                prop_assert!(!ip_allowed(IpAddr::V4(ip), TargetPolicy::Public));
                let mapped = IpAddr::V6(ip.to_ipv6_mapped());
                prop_assert!(!ip_allowed(mapped, TargetPolicy::Public));
            }
            if ip.is_link_local() {
                prop_assert!(!ip_allowed(IpAddr::V4(ip), TargetPolicy::Private));
            }
            // The mapped form is always judged like the plain address.
            prop_assert_eq!(ip_allowed(IpAddr::V4(ip), TargetPolicy::Public), ip_allowed(IpAddr::V6(ip.to_ipv6_mapped()), TargetPolicy::Public));
        }
    }
}

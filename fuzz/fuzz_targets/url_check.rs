//! The URL guard never panics, and never lets a non-public literal address through under the
//! public policy.
#![no_main]

use herald_shared::url_policy::{ip_allowed, TargetPolicy, UrlRules};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for policy in [TargetPolicy::Public, TargetPolicy::Private, TargetPolicy::Loopback] {
        if let Ok(url) = UrlRules::new(policy).check(&text) {
            assert!(matches!(url.scheme(), "http" | "https"));
            assert!(url.username().is_empty() && url.password().is_none());
            let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = host.parse::<IpAddr>() {
                assert!(ip_allowed(ip, policy), "{text} let {ip} through");
            }
        }
    }
});

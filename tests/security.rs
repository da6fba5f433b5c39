//! Security properties (SECURITY.md): the SSRF guard against hostile URLs and names, no
//! redirects followed, secrets and protected headers never logged, and hostile bodies and
//! headers refused with the right 4xx while the service keeps serving.

use futures::future::BoxFuture;
use herald_shared::delivery::DeliveryStatus;
use herald_shared::http::guard::Lookup;
use herald_shared::http::{DeliveryClient, DeliveryError};
use herald_shared::signing::generate_secret;
use herald_shared::url_policy::{TargetPolicy, UrlRules};
use herald_shared::webhook::{Webhook, WebhookSpec};
use herald_tests::logs::Captured;
use herald_tests::receiver::Receiver;
use herald_tests::stack::{Stack, KEY, TENANT};
use http::HeaderMap;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// URLs a webhook may never target under the public policy, each with the reason's gist.
const HOSTILE: &[(&str, &str)] = &[
    ("http://127.0.0.1/", "non-public"),
    ("http://127.1/", "non-public"),
    ("http://0x7f.1/", "non-public"),
    ("http://0x7f000001/", "non-public"),
    ("http://2130706433/", "non-public"),
    ("http://017700000001/", "non-public"),
    ("http://0177.0.0.1/", "non-public"),
    ("http://%31%32%37.0.0.1/", "non-public"),
    ("http://127.0.0.1:22/", "non-public"),
    ("http://10.0.0.1/", "non-public"),
    ("http://10.255.255.255/", "non-public"),
    ("http://172.16.0.1/", "non-public"),
    ("http://172.31.255.254/", "non-public"),
    ("http://192.168.1.1/", "non-public"),
    ("http://100.64.0.1/", "non-public"),
    ("http://100.127.255.254/", "non-public"),
    ("http://169.254.169.254/latest/meta-data/", "non-public"),
    ("http://169.254.0.1/", "non-public"),
    ("http://0.0.0.0/", "non-public"),
    ("http://0/", "non-public"),
    ("http://224.0.0.1/", "non-public"),
    ("http://239.255.255.250/", "non-public"),
    ("http://255.255.255.255/", "non-public"),
    ("http://240.0.0.1/", "non-public"),
    ("http://192.0.2.1/", "non-public"),
    ("http://198.51.100.7/", "non-public"),
    ("http://203.0.113.9/", "non-public"),
    ("http://198.18.0.1/", "non-public"),
    ("http://192.0.0.8/", "non-public"),
    ("http://[::1]/", "non-public"),
    ("http://[::]/", "non-public"),
    ("http://[::ffff:127.0.0.1]/", "non-public"),
    ("http://[::ffff:7f00:1]/", "non-public"),
    ("http://[::ffff:169.254.169.254]/", "non-public"),
    ("http://[::ffff:10.0.0.1]/", "non-public"),
    ("http://[::127.0.0.1]/", "non-public"),
    ("http://[fc00::1]/", "non-public"),
    ("http://[fd12:3456::1]/", "non-public"),
    ("http://[fd00:ec2::254]/", "non-public"),
    ("http://[fe80::1]/", "non-public"),
    ("http://[ff02::1]/", "non-public"),
    ("http://[64:ff9b::7f00:1]/", "non-public"),
    ("http://[64:ff9b::a9fe:a9fe]/", "non-public"),
    ("http://[2002:a9fe:a9fe::]/", "non-public"),
    ("http://[2001:db8::1]/", "non-public"),
    ("http://[2001::1]/", "non-public"),
    ("ftp://files.example.com/x", "https"),
    ("file:///etc/passwd", "https"),
    ("gopher://a.example/", "https"),
    ("javascript:alert(1)", "https"),
    ("https://user:pass@hooks.example.com/", "credentials"),
    ("https://user@hooks.example.com/", "credentials"),
    ("http://hooks.example.com@127.0.0.1/", "credentials"),
    ("http://127.0.0.1%2f@hooks.example.com/", "credentials"),
    ("not a url", "valid absolute URL"),
    ("//hooks.example.com/x", "valid absolute URL"),
    ("http://", "valid absolute URL"),
];

const PUBLIC: &[&str] = &[
    "https://hooks.slack.com/services/T000/B000/XXXX",
    "https://8.8.8.8/hook",
    "https://[2606:4700:4700::1111]/hook",
    "https://hooks.example.com:8443/x?y=1",
    "http://203.0.114.1/",
    "https://xn--bcher-kva.example/",
];

#[tokio::test]
async fn hostile_urls_are_refused_at_save_and_at_send_with_the_reason() {
    assert!(HOSTILE.len() >= 40);
    let stack = Stack::memory_with(|c| c.target_policy = TargetPolicy::Public).await;
    let outbound = DeliveryClient::new(UrlRules::new(TargetPolicy::Public), Duration::from_secs(1));
    for (url, reason) in HOSTILE {
        let (status, _, body) = stack
            .call(
                "POST",
                "/v1/webhooks",
                Some(json!({"url": url, "events": ["*"]})),
                None,
            )
            .await;
        assert_eq!(status.as_u16(), 422, "{url} was accepted: {body}");
        assert_eq!(body["errors"][0]["field"], "url", "{url}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(reason),
            "{url}: `{message}` should say {reason}"
        );
        // And refused at send time too, without a connection.
        blocked(&outbound, url).await;
    }
    // Public targets pass the same checks (checked offline: nothing is sent off this machine).
    for url in PUBLIC {
        assert!(
            UrlRules::new(TargetPolicy::Public).check(url).is_ok(),
            "{url}"
        );
    }
}

/// A webhook stored around the API (or before the policy tightened) is refused at send time,
/// on its first delivery and on the next, which reuses the endpoint's checked URL.
#[tokio::test]
async fn a_stored_url_the_guard_refuses_is_refused_at_every_delivery() {
    let rx = Receiver::start(204).await;
    let stack = Stack::memory_with(|c| c.target_policy = TargetPolicy::Public).await;
    let spec = WebhookSpec::parse(
        &json!({"url": rx.url, "events": ["*"]}),
        &UrlRules::new(TargetPolicy::Loopback),
    )
    .unwrap();
    let webhook = Webhook::new(
        "wh_stored".into(),
        TENANT,
        spec,
        generate_secret(),
        OffsetDateTime::now_utc(),
    );
    stack
        .store
        .create_webhook(&webhook, usize::MAX)
        .await
        .unwrap();
    for _ in 0..2 {
        stack.post_event(json!({"type": "jobs.failed"})).await;
        assert!(stack.drain().await.is_empty(), "no record failed");
    }
    let deliveries = stack
        .store
        .list_deliveries(TENANT, "wh_stored", 10, None)
        .await
        .unwrap()
        .items;
    assert_eq!(deliveries.len(), 2);
    for d in &deliveries {
        assert_eq!(d.status, DeliveryStatus::Failed, "{d:?}");
        let error = d.attempts[0].error.as_deref().unwrap_or_default();
        assert!(error.starts_with("blocked: url"), "{error}");
    }
    assert!(rx.requests().is_empty(), "nothing reached the receiver");
}

/// Names resolved by a local table instead of DNS, so no lookup leaves the machine.
struct Table(HashMap<&'static str, Vec<IpAddr>>);

impl Lookup for Table {
    fn lookup(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let found = self.0.get(host).cloned();
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

/// Why a post to `url` was blocked; it fails the test when the post was not.
async fn blocked(outbound: &DeliveryClient, url: &str) -> String {
    let outcome = outbound
        .post(url, HeaderMap::new(), bytes::Bytes::new())
        .await;
    match outcome.error {
        Some(DeliveryError::Blocked(why)) => why,
        other => panic!("{url} was not blocked: {other:?}"),
    }
}

/// A post to `host` is blocked, and the error names the host and why.
async fn assert_blocked_as_non_public(outbound: &DeliveryClient, host: &str) {
    let why = blocked(outbound, &format!("http://{host}/hook")).await;
    assert!(why.contains(host) && why.contains("non-public"), "{why}");
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused_without_connecting() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let table = Table(HashMap::from([
        ("internal.example", vec![ip("10.0.0.5")]),
        ("metadata.example", vec![ip("169.254.169.254")]),
        ("rebind.example", vec![ip("93.184.216.34"), ip("127.0.0.1")]),
        ("v6-local.example", vec![ip("fd00:ec2::254")]),
        ("mapped.example", vec![ip("::ffff:192.168.0.1")]),
    ]));
    let outbound = DeliveryClient::with_lookup(
        UrlRules::new(TargetPolicy::Public),
        Duration::from_secs(1),
        Arc::new(table),
    );
    for host in [
        "internal.example",
        "metadata.example",
        "rebind.example",
        "v6-local.example",
        "mapped.example",
    ] {
        assert_blocked_as_non_public(&outbound, host).await;
    }
    let unknown = outbound
        .post(
            "http://nowhere.example/",
            HeaderMap::new(),
            bytes::Bytes::new(),
        )
        .await;
    assert!(
        matches!(
            unknown.error,
            Some(DeliveryError::Dns(_) | DeliveryError::Connect(_))
        ),
        "{unknown:?}"
    );
}

/// `localhost` names (RFC 6761), and IPv6 forms that carry a non-public IPv4 address (SIIT,
/// local-use NAT64, ISATAP), are refused when saved (422 naming `url`, on create, update and an
/// unsaved test send), when sent, and when a name resolves to one of them.
#[tokio::test]
async fn localhost_and_ipv6_forms_carrying_ipv4_are_refused_at_save_send_and_lookup() {
    let stack = Stack::memory_with(|c| c.target_policy = TargetPolicy::Public).await;
    let saved = stack
        .create_webhook(json!({"url": "https://hooks.example.com/x", "events": ["*"]}))
        .await;
    let path = format!("/v1/webhooks/{}", saved["id"].as_str().unwrap());
    let outbound = DeliveryClient::new(UrlRules::new(TargetPolicy::Public), Duration::from_secs(1));
    for url in [
        "http://localhost/x",
        "https://api.localhost:8443/x",
        "http://LocalHost./x",
        "http://[::ffff:0:a9fe:a9fe]/",
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "http://[::5efe:169.254.169.254]/",
    ] {
        let body = json!({"url": url, "events": ["*"]});
        for (method, route) in [
            ("POST", "/v1/webhooks"),
            ("POST", "/v1/webhooks/test"),
            ("PUT", path.as_str()),
            ("PATCH", path.as_str()),
        ] {
            let (status, _, answer) = stack.call(method, route, Some(body.clone()), None).await;
            assert_eq!(status.as_u16(), 422, "{method} {route} {url}: {answer}");
            assert_eq!(answer["errors"][0]["field"], "url", "{url}");
            let message = answer["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains("non-public"), "{url}: {message}");
        }
        blocked(&outbound, url).await;
    }
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let names = [
        ("siit.example", "::ffff:0:a9fe:a9fe"),
        ("nat64.example", "64:ff9b:1::a9fe:a9fe"),
        ("isatap.example", "::5efe:a9fe:a9fe"),
        ("isatap-global.example", "2600:1f18::200:5efe:a9fe:a9fe"),
    ];
    let table = Table(names.iter().map(|(n, a)| (*n, vec![ip(a)])).collect());
    let outbound = DeliveryClient::with_lookup(
        UrlRules::new(TargetPolicy::Public),
        Duration::from_secs(1),
        Arc::new(table),
    );
    for (host, _) in names {
        assert_blocked_as_non_public(&outbound, host).await;
    }
}

/// Test sends, saved or not, go through the dispatcher's sender but leave its endpoint cache
/// as they found it: unsaved configurations to ever new URLs cannot grow a container's memory.
#[tokio::test]
async fn test_sends_leave_the_endpoint_cache_empty() {
    let stack = Stack::memory().await;
    let rx = Receiver::start(200).await;
    for i in 0..50 {
        let (status, _, answer) = stack
            .test_unsaved(json!({"url": format!("{}/unsaved/{i}", rx.url), "events": ["*"]}))
            .await;
        assert_eq!((status.as_u16(), &answer["delivered"]), (200, &json!(true)));
    }
    let saved = stack
        .create_webhook(json!({"url": format!("{}/saved", rx.url), "events": ["*"]}))
        .await;
    let (status, _, _) = stack
        .call(
            "POST",
            &format!("/v1/webhooks/{}/test", saved["id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(rx.requests().len(), 51);
    assert_eq!(stack.dispatcher.sender().cached_endpoints(), 0);
    // A delivery caches its endpoint, and the next test send of it uses that one.
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    assert_eq!(stack.dispatcher.sender().cached_endpoints(), 1);
    stack
        .test_unsaved(json!({"url": format!("{}/saved", rx.url), "events": ["*"]}))
        .await;
    assert_eq!(stack.dispatcher.sender().cached_endpoints(), 1);
    assert_eq!(rx.requests().len(), 53);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let stack = Stack::memory().await;
    let (redirector, target) = (Receiver::start(302).await, Receiver::start(200).await);
    redirector.set_location(&target.url);
    let (_, _, result) = stack
        .test_unsaved(json!({"url": redirector.url, "events": ["*"]}))
        .await;
    assert_eq!(
        (result["delivered"].clone(), result["status_code"].clone()),
        (json!(false), json!(302))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        target.requests().is_empty(),
        "the redirect target was never contacted"
    );
}

#[tokio::test]
async fn secrets_and_protected_headers_never_reach_the_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stack = Stack::memory().await;
    let rx = Receiver::start(200).await;
    let created = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"], "headers": [
            {"key": "Authorization", "value": "Token s3cr3t-header-value", "protected": true}]}))
        .await;
    let wh = created["id"].as_str().unwrap();
    let first_secret = created["secret"].as_str().unwrap().to_string();
    stack
        .call("POST", &format!("/v1/webhooks/{wh}/test"), None, None)
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    let (_, _, rotated) = stack
        .call(
            "POST",
            &format!("/v1/webhooks/{wh}/secret/rotate"),
            None,
            None,
        )
        .await;
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    assert_eq!(rx.requests().len(), 3);
    let (_, _, key) = stack.call("POST", "/v1/keys", None, None).await;

    let text = logs.text();
    assert!(
        text.contains(wh) && text.contains("delivery attempt"),
        "the capture works"
    );
    let secrets = [
        first_secret.as_str(),
        first_secret.trim_start_matches("whsec_"),
        rotated["secret"].as_str().unwrap(),
        "s3cr3t-header-value",
        KEY,
        key["key"].as_str().unwrap(),
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "a secret reached the logs");
    }
    let signature = rx.requests()[0].header("webhook-signature").to_string();
    assert!(
        !text.contains(signature.trim_start_matches("v1,")),
        "signatures are not logged either"
    );
}

/// Method, path, content type, body, expected status.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
);

#[tokio::test]
async fn hostile_bodies_get_the_right_4xx_and_the_service_keeps_serving() {
    let stack = Stack::memory().await;
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/events",
            Some("application/json"),
            vec![b'{'; 300 * 1024],
            413,
        ),
        (
            "POST",
            "/v1/webhooks",
            Some("application/json"),
            vec![b' '; 70 * 1024],
            413,
        ),
        (
            "POST",
            "/v1/events",
            Some("application/json"),
            deep.clone().into_bytes(),
            400,
        ),
        (
            "POST",
            "/v1/webhooks",
            Some("application/json"),
            format!("{{\"url\": {deep}}}").into_bytes(),
            400,
        ),
        (
            "POST",
            "/v1/events",
            Some("application/json"),
            vec![0xff, 0xfe, b'{', b'}'],
            400,
        ),
        (
            "POST",
            "/v1/events",
            Some("application/json"),
            b"{\"type\": \"jobs.failed\", \"text\": \"\xc3\x28\"}".to_vec(),
            400,
        ),
        (
            "POST",
            "/v1/events",
            Some("application/json"),
            b"[]".to_vec(),
            400,
        ),
        (
            "POST",
            "/v1/events",
            Some("application/json"),
            b"\"jobs.failed\"".to_vec(),
            400,
        ),
        (
            "POST",
            "/v1/events",
            Some("application/json"),
            b"null".to_vec(),
            400,
        ),
        (
            "POST",
            "/v1/events",
            Some("application/json"),
            b"{\"type\": [\"jobs.failed\"]}".to_vec(),
            422,
        ),
        (
            "POST",
            "/v1/events/batch",
            Some("application/json"),
            b"{\"events\": {}}".to_vec(),
            422,
        ),
        (
            "POST",
            "/v1/webhooks",
            Some("application/json"),
            b"{\"url\": 5, \"events\": \"*\"}".to_vec(),
            422,
        ),
        (
            "PATCH",
            "/v1/webhooks/wh_x",
            Some("application/json"),
            b"true".to_vec(),
            400,
        ),
        (
            "POST",
            "/v1/events",
            Some("application/xml"),
            b"<event/>".to_vec(),
            415,
        ),
        ("POST", "/v1/events", None, b"{}".to_vec(), 415),
    ];
    for (method, path, content_type, body, expected) in cases {
        let (status, headers, problem) = stack
            .call_raw(method, path, content_type, body, Some(KEY))
            .await;
        assert_eq!(status.as_u16(), expected, "{method} {path}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem["status"], expected);
    }
    let (status, _, _) = stack
        .call_raw("GET", "/v1/health", None, vec![], None)
        .await;
    assert_eq!(status.as_u16(), 200, "still serving");
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_refused() {
    let stack = Stack::memory().await;
    let send = |headers: Vec<(String, String)>| {
        let router = stack.router.clone();
        async move {
            let mut req = axum::http::Request::builder().uri("/v1/health");
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let resp =
                tower::ServiceExt::oneshot(router, req.body(axum::body::Body::empty()).unwrap())
                    .await
                    .unwrap();
            let status = resp.status().as_u16();
            let body: Value = serde_json::from_slice(
                &axum::body::to_bytes(resp.into_body(), 1 << 16)
                    .await
                    .unwrap(),
            )
            .unwrap();
            (status, body)
        }
    };
    let many: Vec<_> = (0..100)
        .map(|i| (format!("x-h{i}"), "v".to_string()))
        .collect();
    let (status, body) = send(many).await;
    assert_eq!((status, body["status"].as_u64()), (431, Some(431)));
    let (status, _) = send(vec![("x-big".into(), "v".repeat(9 * 1024))]).await;
    assert_eq!(status, 431);
    let total: Vec<_> = (0..6)
        .map(|i| (format!("x-h{i}"), "v".repeat(7 * 1024)))
        .collect();
    assert_eq!(send(total).await.0, 431);
    let fine: Vec<_> = (0..40)
        .map(|i| (format!("x-h{i}"), "v".repeat(100)))
        .collect();
    assert_eq!(send(fine).await.0, 200);
}

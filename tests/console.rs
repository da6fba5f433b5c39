//! The web console's static routes, through the same router the api function and `herald dev`
//! serve: media types, cache headers, the Content-Security-Policy, 304s, 404 problems, and a
//! page that loads nothing from any other origin. The page itself is driven in a browser by
//! `tests/browser/console.test.mjs` (`make test-browser`).

use axum::body::Body;
use herald_shared::web::console::{
    CONTENT_SECURITY_POLICY, CSS, HTML, INDEX_CACHE, JAVASCRIPT, UNVERSIONED_CACHE, VERSIONED_CACHE,
};
use herald_tests::stack::Stack;
use http::{HeaderMap, Request, StatusCode};
use tower::ServiceExt;

/// A request without any key (the console's routes need none), with extra headers.
async fn get(
    stack: &Stack,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = stack
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn assert_hardened(headers: &HeaderMap) {
    assert_eq!(
        header(headers, "content-security-policy"),
        CONTENT_SECURITY_POLICY
    );
    assert_eq!(header(headers, "x-content-type-options"), "nosniff");
    assert_eq!(header(headers, "referrer-policy"), "no-referrer");
    assert_eq!(header(headers, "x-frame-options"), "DENY");
}

/// Every `src="…"` and `href="…"` value of the page.
fn references(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = page;
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            let end = rest.find('"').expect("a closed attribute");
            found.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    found
}

#[tokio::test]
async fn the_page_is_served_at_the_root_with_a_strict_policy() {
    let stack = Stack::memory().await;
    let (status, headers, page) = get(&stack, "GET", "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), HTML);
    assert_eq!(header(&headers, "cache-control"), INDEX_CACHE);
    assert!(header(&headers, "etag").starts_with('"'));
    assert_hardened(&headers);
    assert!(page.starts_with("<!doctype html>"));

    // The policy allows no inline code, so the page has none.
    let lower = page.to_ascii_lowercase();
    assert!(!lower.contains("<style"), "no inline style element");
    assert!(!lower.contains(" style="), "no style attributes");
    assert!(!lower.contains(" on"), "no inline event handlers");
    for script in lower.split("<script").skip(1) {
        let open = &script[..script.find('>').unwrap()];
        assert!(
            open.contains(" src="),
            "every script is a file: <script{open}>"
        );
        assert!(script[script.find('>').unwrap() + 1..].starts_with("</script>"));
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    assert!(CONTENT_SECURITY_POLICY.contains("default-src 'none'"));
    assert!(CONTENT_SECURITY_POLICY.contains("connect-src 'self'"));
    assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn the_page_references_only_same_origin_assets_which_are_served() {
    let stack = Stack::memory().await;
    let (_, _, page) = get(&stack, "GET", "/", &[]).await;
    let refs = references(&page);
    let assets: Vec<&String> = refs.iter().filter(|r| r.starts_with("console/")).collect();
    assert_eq!(assets.len(), 2, "the script and the stylesheet: {refs:?}");
    for r in &refs {
        let same_origin = !r.contains("//") && !r.contains(':');
        let harmless = r == "data:," || r.starts_with('#');
        assert!(same_origin || harmless, "{r} is not on this origin");
    }
    for asset in assets {
        let (status, headers, body) = get(&stack, "GET", &format!("/{asset}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        let want = if asset.contains(".js?") {
            JAVASCRIPT
        } else {
            CSS
        };
        assert_eq!(header(&headers, "content-type"), want, "{asset}");
        assert_eq!(
            header(&headers, "cache-control"),
            VERSIONED_CACHE,
            "{asset}"
        );
        assert_hardened(&headers);
        assert!(!body.is_empty());
    }
}

#[tokio::test]
async fn assets_have_their_media_types_and_are_revalidated_unless_versioned() {
    let stack = Stack::memory().await;
    for (path, media_type) in [("/console/app.js", JAVASCRIPT), ("/console/app.css", CSS)] {
        for query in ["", "?v=0000000000000000", "?other=1"] {
            let (status, headers, _) = get(&stack, "GET", &format!("{path}{query}"), &[]).await;
            assert_eq!(status, StatusCode::OK, "{path}{query}");
            assert_eq!(header(&headers, "content-type"), media_type);
            assert_eq!(
                header(&headers, "cache-control"),
                UNVERSIONED_CACHE,
                "{path}{query}: a stale or missing version is revalidated"
            );
            assert_hardened(&headers);
        }
    }
    let (status, headers, _) = get(&stack, "HEAD", "/console/app.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), JAVASCRIPT);
}

#[tokio::test]
async fn a_known_etag_gets_304_without_a_body() {
    let stack = Stack::memory().await;
    for path in ["/", "/console/app.js", "/console/app.css"] {
        let (_, headers, _) = get(&stack, "GET", path, &[]).await;
        let etag = header(&headers, "etag").to_string();
        let (status, again, body) = get(&stack, "GET", path, &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty());
        assert_eq!(header(&again, "etag"), etag);
        assert_hardened(&again);
        let listed = format!("\"other\", W/{etag}");
        let (status, _, _) = get(&stack, "GET", path, &[("if-none-match", &listed)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}: one of a list");
        let (status, _, _) = get(&stack, "GET", path, &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(status, StatusCode::OK, "{path}: another version");
    }
}

#[tokio::test]
async fn unknown_assets_and_methods_are_problems() {
    let stack = Stack::memory().await;
    for path in [
        "/console/nope.js",
        "/console/index.html",
        "/console/..%2Fconsole.rs",
        "/console/",
        "/console",
        "/index.html",
    ] {
        let (status, headers, body) = get(&stack, "GET", path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&headers, "content-type"), "application/problem+json");
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["status"], 404, "{path}");
    }
    let (status, headers, _) = get(&stack, "POST", "/", &[]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&headers, "content-type"), "application/problem+json");
}

#[tokio::test]
async fn the_script_never_parses_api_data_as_html() {
    let stack = Stack::memory().await;
    let (_, _, script) = get(&stack, "GET", "/console/app.js", &[]).await;
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "localStorage",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    assert!(script.contains("sessionStorage"), "the key is kept per tab");
}

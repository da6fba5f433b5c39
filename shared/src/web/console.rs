//! The web console: one page and its assets, embedded in the binary so the api function serves
//! them with nothing else to deploy. The page holds no data; it talks to the public API with the
//! key the user enters, so these routes need no auth.
//!
//! `GET /` answers the page (`no-cache`: always revalidated). The page names each asset with its
//! content hash (`console/app.js?v=<hash>`), so a versioned asset is cached for a year and a
//! deploy can never mix an old script with a new page. Every answer carries a strong `ETag`
//! (`If-None-Match` gets a 304) and a strict Content-Security-Policy: no inline script or style,
//! and no host but this one.

use crate::error::Error;
use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::LazyLock;

/// The policy of every console answer: scripts, styles and requests from this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

pub const HTML: &str = "text/html; charset=utf-8";
pub const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
pub const CSS: &str = "text/css; charset=utf-8";

/// The page, revalidated on every load.
pub const INDEX_CACHE: &str = "no-cache";
/// An asset asked for with its current hash never changes.
pub const VERSIONED_CACHE: &str = "public, max-age=31536000, immutable";
/// An asset asked for without it (or with a stale one) is revalidated.
pub const UNVERSIONED_CACHE: &str = "no-cache";

const INDEX: &str = include_str!("console/index.html");

/// The files under `/console/`, with their media types.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", JAVASCRIPT, include_bytes!("console/app.js")),
    ("app.css", CSS, include_bytes!("console/app.css")),
];

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// The first 16 hex digits of the body's SHA-256: the `v` the page asks for.
    version: String,
    etag: HeaderValue,
}

struct Console {
    index: String,
    index_etag: HeaderValue,
    assets: Vec<Asset>,
}

fn content_hash(body: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn etag(hash: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a valid header value")
}

/// Built once per process: the hashes, and the page with each asset reference versioned.
static CONSOLE: LazyLock<Console> = LazyLock::new(|| {
    let assets: Vec<Asset> = ASSETS
        .iter()
        .map(|&(name, content_type, body)| {
            let version = content_hash(body);
            Asset {
                name,
                content_type,
                body,
                etag: etag(&version),
                version,
            }
        })
        .collect();
    let mut index = INDEX.to_string();
    for asset in &assets {
        let plain = format!("\"console/{}\"", asset.name);
        let versioned = format!("\"console/{}?v={}\"", asset.name, asset.version);
        index = index.replace(&plain, &versioned);
    }
    let index_etag = etag(&content_hash(index.as_bytes()));
    Console {
        index,
        index_etag,
        assets,
    }
});

/// `GET /` and `GET /console/{file}`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/console/{file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    let console = &*CONSOLE;
    answer(
        &headers,
        &console.index_etag,
        HTML,
        INDEX_CACHE,
        console.index.as_bytes(),
    )
}

async fn asset(
    headers: HeaderMap,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let asset = CONSOLE
        .assets
        .iter()
        .find(|a| a.name == file)
        .ok_or(Error::NotFound("console asset"))?;
    let current = query.as_deref().and_then(|q| q.strip_prefix("v=")) == Some(&asset.version);
    let cache = if current {
        VERSIONED_CACHE
    } else {
        UNVERSIONED_CACHE
    };
    Ok(answer(
        &headers,
        &asset.etag,
        asset.content_type,
        cache,
        asset.body,
    ))
}

/// 200 with the body, or 304 when the client already holds this version.
fn answer(
    request: &HeaderMap,
    etag: &HeaderValue,
    content_type: &'static str,
    cache: &'static str,
    body: &'static [u8],
) -> Response {
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = body.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_asset_with_its_version() {
        for asset in &CONSOLE.assets {
            let versioned = format!("\"console/{}?v={}\"", asset.name, asset.version);
            assert!(CONSOLE.index.contains(&versioned), "{}", asset.name);
        }
    }

    #[test]
    fn etags_follow_the_content() {
        assert_eq!(content_hash(b"a"), content_hash(b"a"));
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
        assert_eq!(content_hash(b"a").len(), 16);
    }
}

//! The delivery client: one reqwest client (rustls, pooled) per container, no redirects, the
//! guarded resolver, a hard timeout, and at most 1 KiB of each answer kept.

use super::guard::{BlockedHost, GuardedResolver, Lookup};
use crate::url_policy::{TargetPolicy, UrlRules};
use bytes::Bytes;
use http::HeaderMap;
use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

pub const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

/// How much of a receiver's answer is kept, for the delivery log.
pub const RESPONSE_SNIPPET_BYTES: usize = 1024;

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("blocked: {0}")]
    Blocked(String),
    #[error("timeout: no answer within {0:?}")]
    Timeout(Duration),
    #[error("dns: {0}")]
    Dns(String),
    #[error("connect: {0}")]
    Connect(String),
    #[error("request: {0}")]
    Request(String),
}

/// What one POST did, as the transport saw it; the retry policy reads it (`delivery::Answer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostOutcome {
    pub status_code: Option<u16>,
    /// `Retry-After` of a 429 or 503 answer.
    pub retry_after: Option<Duration>,
    pub response_body: Option<String>,
    pub duration: Duration,
    pub error: Option<DeliveryError>,
}

impl PostOutcome {
    pub fn failed(started: Instant, error: DeliveryError) -> Self {
        PostOutcome {
            status_code: None,
            retry_after: None,
            response_body: None,
            duration: started.elapsed(),
            error: Some(error),
        }
    }
}

/// reqwest's own retries, off. They act only on HTTP/2, which Herald does not build, yet they
/// copy every request's headers in case; deliveries follow Herald's schedule and the AWS SDK
/// retries its own calls. Every reqwest client Herald builds takes this.
pub fn no_retries() -> reqwest::retry::Builder {
    reqwest::retry::never().max_retries_per_request(0)
}

/// The client every delivery and test send goes through.
#[derive(Clone)]
pub struct DeliveryClient {
    client: reqwest::Client,
    rules: UrlRules,
    timeout: Duration,
}

impl DeliveryClient {
    pub fn new(rules: UrlRules, timeout: Duration) -> Self {
        let resolver = GuardedResolver::system(rules.policy);
        Self::with_resolver(rules, timeout, resolver)
    }

    /// With names resolved by `lookup` instead of the system resolver (tests).
    pub fn with_lookup(rules: UrlRules, timeout: Duration, lookup: Arc<dyn Lookup>) -> Self {
        let resolver = GuardedResolver {
            policy: rules.policy,
            lookup,
        };
        Self::with_resolver(rules, timeout, resolver)
    }

    fn with_resolver(rules: UrlRules, timeout: Duration, resolver: GuardedResolver) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .retry(no_retries())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .build()
            .expect("a client with a fixed configuration builds");
        DeliveryClient {
            client,
            rules,
            timeout,
        }
    }

    pub fn policy(&self) -> TargetPolicy {
        self.rules.policy
    }

    /// POSTs `body` to `url`. Never fails: every outcome is data for the delivery log.
    pub async fn post(&self, url: &str, headers: HeaderMap, body: Bytes) -> PostOutcome {
        self.post_to(&self.check(url), headers, body).await
    }

    /// A URL as this client will post to it, or why it will not. Literal addresses bypass the
    /// resolver, so this check is what keeps them out; it depends on the URL alone, so a
    /// caller that posts to one URL often may keep the answer.
    pub fn check(&self, url: &str) -> Result<Url, DeliveryError> {
        self.rules
            .check(url)
            .map_err(|e| DeliveryError::Blocked(format!("url {e}")))
    }

    /// POSTs `body` to a URL [`DeliveryClient::check`] passed, or records why it was not sent.
    ///
    /// The request is built before the returned future is first polled, so that future holds
    /// only the request in flight, not the URL, headers and body it was built from: dispatch
    /// keeps one such future per delivery in flight, inside an allocation of its own.
    pub fn post_to(
        &self,
        url: &Result<Url, DeliveryError>,
        headers: HeaderMap,
        body: Bytes,
    ) -> impl std::future::Future<Output = PostOutcome> + Send + '_ {
        let started = Instant::now();
        let sent = url.as_ref().map_err(Clone::clone).map(|url| {
            // Assembled here rather than through `RequestBuilder::headers`, which inserts each
            // header again into a map of its own: two allocations per delivery. The builder's
            // one other step, turning `user:pass@` into basic auth, has nothing to do: the
            // guard refuses URLs with credentials.
            let mut request = reqwest::Request::new(http::Method::POST, url.clone());
            *request.headers_mut() = headers;
            *request.body_mut() = Some(body.into());
            self.client.execute(request)
        });
        async move {
            let mut response = match sent {
                Ok(pending) => match pending.await {
                    Ok(r) => r,
                    Err(e) => return PostOutcome::failed(started, self.classify(&e)),
                },
                Err(e) => return PostOutcome::failed(started, e),
            };
            let status = response.status().as_u16();
            let retry_after = matches!(status, 429 | 503)
                .then(|| response.headers().get(http::header::RETRY_AFTER))
                .flatten()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
            let mut snippet = Vec::new();
            while snippet.len() < RESPONSE_SNIPPET_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = RESPONSE_SNIPPET_BYTES - snippet.len();
                        snippet.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                    // The status is what counts; a body cut short is still logged as far as it came.
                    Ok(None) | Err(_) => break,
                }
            }
            PostOutcome {
                status_code: Some(status),
                retry_after,
                response_body: (!snippet.is_empty())
                    .then(|| String::from_utf8_lossy(&snippet).into_owned()),
                duration: started.elapsed(),
                error: None,
            }
        }
    }

    fn classify(&self, e: &reqwest::Error) -> DeliveryError {
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(blocked) = s.downcast_ref::<BlockedHost>() {
                return DeliveryError::Blocked(blocked.to_string());
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                if e.is_connect() && io.kind() == std::io::ErrorKind::ConnectionRefused {
                    return DeliveryError::Connect("connection refused".into());
                }
            }
            source = s.source();
        }
        if e.is_timeout() {
            return DeliveryError::Timeout(self.timeout);
        }
        let detail = root_cause(e);
        if e.is_connect() {
            if detail.contains("failed to lookup")
                || detail.contains("Name or service not known")
                || detail.contains("No address associated")
                || detail.contains("nodename nor servname")
            {
                return DeliveryError::Dns(detail);
            }
            return DeliveryError::Connect(detail);
        }
        DeliveryError::Request(detail)
    }
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:59:37 GMT", now),
            Some(Duration::from_secs(600))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

//! The sender: signs a formatted body and POSTs it through the delivery client. It owns what a
//! container keeps between sends (the client and its connection pool, the signing keys, and each
//! URL's checked form and concurrency share), and serves dispatch and test sends alike.

use crate::event::Event;
use crate::http::{DeliveryClient, DeliveryError, PostOutcome};
use crate::signing::{self, KeyCache, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
use crate::webhook::Webhook;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Endpoints a container keeps checked URLs and concurrency shares for: a 1,000-webhook fan-out
/// fits, and every URL ever posted to does not (each entry holds its URL twice, up to 4 KB).
pub const ENDPOINT_CACHE_CAPACITY: usize = 2048;

/// One URL this container posts to: its share of the concurrency bound, and the URL as checked
/// (parsing and checking a URL costs about as much as formatting a body, so it is done once).
pub struct Endpoint {
    slots: Arc<Semaphore>,
    url: Result<url::Url, DeliveryError>,
}

impl Endpoint {
    /// Waits for this URL's share of the concurrency bound.
    pub async fn permit(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("endpoint semaphores are never closed")
    }
}

type Endpoints = quick_cache::sync::Cache<
    String,
    Arc<Endpoint>,
    quick_cache::UnitWeighter,
    foldhash::fast::RandomState,
    InUse,
>;

/// Pins the endpoints a delivery holds (its `Arc` beside the cache's): evicting one would let
/// a second entry for the same URL hand out a second concurrency share.
#[derive(Clone, Default)]
struct InUse;

impl quick_cache::Lifecycle<String, Arc<Endpoint>> for InUse {
    type RequestState = ();

    fn is_pinned(&self, _url: &String, endpoint: &Arc<Endpoint>) -> bool {
        Arc::strong_count(endpoint) > 1
    }
}

pub struct Sender {
    client: DeliveryClient,
    /// Deliveries in flight at once to one URL, so a slow receiver cannot take every slot.
    per_endpoint: usize,
    /// At most [`ENDPOINT_CACHE_CAPACITY`] idle endpoints; one a delivery holds is pinned.
    /// Looked up once per delivery, so hashed with foldhash (seeded per process), not SipHash.
    endpoints: Endpoints,
    keys: KeyCache,
}

impl Sender {
    pub fn new(client: DeliveryClient, per_endpoint: usize) -> Self {
        Sender {
            client,
            per_endpoint: per_endpoint.max(1),
            endpoints: Endpoints::with(
                ENDPOINT_CACHE_CAPACITY,
                ENDPOINT_CACHE_CAPACITY as u64,
                quick_cache::UnitWeighter,
                foldhash::fast::RandomState::default(),
                InUse,
            ),
            keys: KeyCache::default(),
        }
    }

    pub fn client(&self) -> &DeliveryClient {
        &self.client
    }

    /// The cached endpoint of `url`, made and cached when it has none.
    pub fn endpoint(&self, url: &str) -> Arc<Endpoint> {
        let built = self.endpoints.get_or_insert_with(url, || {
            Ok::<_, std::convert::Infallible>(Arc::new(self.new_endpoint(url)))
        });
        match built {
            Ok(endpoint) => endpoint,
            Err(never) => match never {},
        }
    }

    fn new_endpoint(&self, url: &str) -> Endpoint {
        Endpoint {
            slots: Arc::new(Semaphore::new(self.per_endpoint)),
            url: self.client.check(url),
        }
    }

    /// Endpoints cached now (at most [`ENDPOINT_CACHE_CAPACITY`] idle ones).
    pub fn cached_endpoints(&self) -> usize {
        self.endpoints.len()
    }

    /// Signs and POSTs one formatted body outside the delivery path (test sends): through the
    /// cached endpoint when the URL has one, else through one made for this send alone, so
    /// unsaved test sends to new URLs leave nothing behind.
    pub async fn send(&self, webhook: &Webhook, event: &Event, body: Bytes) -> PostOutcome {
        let endpoint = self
            .endpoints
            .peek(webhook.spec.url.as_str())
            .unwrap_or_else(|| Arc::new(self.new_endpoint(&webhook.spec.url)));
        self.send_to(&endpoint, webhook, event, body).await
    }

    /// Signs the body and starts its POST; the future holds only the request in flight.
    pub fn send_to(
        &self,
        endpoint: &Endpoint,
        webhook: &Webhook,
        event: &Event,
        body: Bytes,
    ) -> impl std::future::Future<Output = PostOutcome> + Send + '_ {
        let now = OffsetDateTime::now_utc();
        let headers = signed_headers(&self.keys, webhook, event, &body, now)
            .map_err(|e| DeliveryError::Request(format!("signing: {e}")));
        match headers {
            Ok(headers) => {
                futures::future::Either::Left(self.client.post_to(&endpoint.url, headers, body))
            }
            Err(e) => futures::future::Either::Right(std::future::ready(PostOutcome::failed(
                std::time::Instant::now(),
                e,
            ))),
        }
    }
}

/// The request headers of a delivery: content type, Standard Webhooks headers, then the
/// webhook's own headers.
pub fn signed_headers(
    keys: &KeyCache,
    webhook: &Webhook,
    event: &Event,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<HeaderMap, signing::SignatureError> {
    let timestamp = now.unix_timestamp();
    let signature =
        keys.signature_header(webhook.active_secrets(now), &event.id, timestamp, body)?;
    let mut headers = HeaderMap::with_capacity(4 + webhook.spec.headers.len());
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for header in &webhook.spec.headers {
        // Validated on save; a stored header that no longer parses is skipped, not sent broken.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.key.as_bytes()),
            HeaderValue::from_str(header.value.expose()),
        ) {
            let mut value = value;
            value.set_sensitive(header.protected);
            headers.insert(name, value);
        }
    }
    let id = HeaderValue::from_str(&event.id).map_err(|_| signing::SignatureError::BadSecret)?;
    headers.insert(WEBHOOK_ID, id);
    // Digits copied into one buffer (`From<i64>` takes two allocations).
    let timestamp = HeaderValue::from_str(itoa::Buffer::new().format(timestamp))
        .expect("digits are a valid header value");
    headers.insert(WEBHOOK_TIMESTAMP, timestamp);
    let mut signature =
        HeaderValue::try_from(signature).map_err(|_| signing::SignatureError::BadSecret)?;
    signature.set_sensitive(true);
    headers.insert(WEBHOOK_SIGNATURE, signature);
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url_policy::{TargetPolicy, UrlRules};
    use std::time::Duration;

    #[test]
    fn many_distinct_urls_keep_the_endpoint_cache_at_its_bound() {
        let sender = Sender::new(
            DeliveryClient::new(UrlRules::new(TargetPolicy::Public), Duration::from_secs(1)),
            4,
        );
        // Held as a delivery in flight holds it: pinned, so never split in two.
        let held = sender.endpoint("https://held.example/hook");
        for i in 0..3 * ENDPOINT_CACHE_CAPACITY {
            sender.endpoint(&format!("https://h{i}.example/hook"));
            assert!(sender.cached_endpoints() <= ENDPOINT_CACHE_CAPACITY + 1);
        }
        assert!(sender.cached_endpoints() >= ENDPOINT_CACHE_CAPACITY / 2);
        assert!(Arc::ptr_eq(
            &held,
            &sender.endpoint("https://held.example/hook")
        ));
        // A hot endpoint stays cached through the churn.
        let hot = sender.endpoint("https://hot.example/hook");
        drop(hot);
        for i in 0..ENDPOINT_CACHE_CAPACITY {
            sender.endpoint("https://hot.example/hook");
            sender.endpoint(&format!("https://c{i}.example/hook"));
        }
        assert!(sender.endpoints.peek("https://hot.example/hook").is_some());
    }
}

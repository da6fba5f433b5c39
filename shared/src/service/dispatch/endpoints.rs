//! Endpoints and sending: each URL's checked form and concurrency share, cached and bounded, and the signed POST.

use super::*;

/// One URL this container posts to: its share of the concurrency bound, and the URL as checked
/// (parsing and checking a URL costs about as much as formatting a body, so it is done once).
pub(super) struct Endpoint {
    pub(super) slots: Arc<Semaphore>,
    pub(super) target: Result<url::Url, DeliveryError>,
}

pub(super) type Endpoints = quick_cache::sync::Cache<
    String,
    Arc<Endpoint>,
    quick_cache::UnitWeighter,
    foldhash::fast::RandomState,
    InUse,
>;

/// Pins the endpoints a delivery holds (its `Arc` beside the cache's): evicting one would let
/// a second entry for the same URL hand out a second concurrency share.
#[derive(Clone, Default)]
pub(super) struct InUse;

impl quick_cache::Lifecycle<String, Arc<Endpoint>> for InUse {
    type RequestState = ();

    fn is_pinned(&self, _url: &String, endpoint: &Arc<Endpoint>) -> bool {
        Arc::strong_count(endpoint) > 1
    }
}

use crate::signing::{WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};

/// The request headers of a delivery: content type, Standard Webhooks headers, then the
/// webhook's own headers.
pub fn signed_headers(
    keys: &signing::Keys,
    webhook: &Webhook,
    event: &Event,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<HeaderMap, signing::SignatureError> {
    let timestamp = now.unix_timestamp();
    let signature =
        keys.signature_header(webhook.active_secrets(now), &event.id, timestamp, body)?;
    let mut headers = HeaderMap::with_capacity(4 + webhook.headers.len());
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for header in &webhook.headers {
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

impl Dispatcher {
    pub(super) fn endpoint(&self, url: &str) -> Arc<Endpoint> {
        let built = self.endpoints.get_or_insert_with(url, || {
            Ok::<_, std::convert::Infallible>(Arc::new(self.new_endpoint(url)))
        });
        match built {
            Ok(endpoint) => endpoint,
            Err(never) => match never {},
        }
    }

    pub(super) fn new_endpoint(&self, url: &str) -> Endpoint {
        Endpoint {
            slots: Arc::new(Semaphore::new(self.settings.per_endpoint)),
            target: self.outbound.target(url),
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
            .peek(webhook.url.as_str())
            .unwrap_or_else(|| Arc::new(self.new_endpoint(&webhook.url)));
        self.send_to(&endpoint, webhook, event, body).await
    }

    /// Signs the body and starts its POST; the future holds only the request in flight.
    pub(super) fn send_to(
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
            Ok(headers) => futures::future::Either::Left(self.outbound.post_to(
                &endpoint.target,
                headers,
                body,
            )),
            Err(e) => futures::future::Either::Right(std::future::ready(PostOutcome::failed(
                std::time::Instant::now(),
                e,
            ))),
        }
    }
}

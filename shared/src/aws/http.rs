//! The AWS SDK's HTTP client, over reqwest (HTTP/1.1, rustls): the SDK's own hyper stack, with
//! HTTP/2 and a second TLS setup, is not linked, so each binary has one HTTP client library.
//!
//! It is not the delivery client (`http::DeliveryClient`): AWS endpoints go through no SSRF guard, and
//! deliveries never share AWS's connection pool. One reqwest client is built per process for each
//! distinct pair of SDK timeouts; in practice one, the SDK's default 3.1 s connect timeout.
//!
//! Certificates: reqwest's `rustls` feature verifies with `rustls-platform-verifier`, which on
//! Linux reads the system's roots (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle;
//! Lambda's AL2023 ships `/etc/pki/tls/certs/ca-bundle.crt`), as the delivery client does.

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use std::borrow::Cow;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// The process's SDK HTTP client, for every SDK configuration (`SdkConfig::builder().http_client`,
/// `aws_config::defaults(..).http_client`). Clones share one pool per timeout setting.
pub fn client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| SharedHttpClient::new(ReqwestClient::default()))
        .clone()
}

type Timeouts = (Option<Duration>, Option<Duration>);

/// Hands the SDK a connector per (connect, read) timeout pair, built on first use and kept.
#[derive(Debug, Default)]
struct ReqwestClient {
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

impl ReqwestClient {
    fn connector_for(&self, settings: &HttpConnectorSettings) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, connector)) = connectors.iter().find(|(k, _)| *k == key) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(Connector::new(settings));
        connectors.push((key, connector.clone()));
        connector
    }
}

impl HttpClient for ReqwestClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.connector_for(settings)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new(
            "reqwest",
            Some(Cow::Borrowed("0.13")),
        ))
    }
}

/// One reqwest client with the SDK's timeouts.
#[derive(Debug, Clone)]
pub struct Connector {
    client: reqwest::Client,
}

impl Connector {
    /// The connect timeout bounds the TCP and TLS handshake. The read timeout bounds each read
    /// from the connection (reset by every read), so it covers the wait for the answer and a body
    /// that stalls; as in the SDK's own client, unset means no limit.
    pub fn new(settings: &HttpConnectorSettings) -> Self {
        let mut builder = reqwest::Client::builder()
            // The SDK follows no redirects and uses no proxy unless configured to.
            .redirect(reqwest::redirect::Policy::none())
            .retry(crate::http::client::no_retries())
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90));
        if let Some(timeout) = settings.connect_timeout() {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = settings.read_timeout() {
            builder = builder.read_timeout(timeout);
        }
        Connector {
            client: builder
                .build()
                .expect("a client with a fixed configuration builds"),
        }
    }

    fn request(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
        let (parts, body) = request
            .try_into_http1x()
            .map_err(|e| ConnectorError::user(e.into()))?
            .into_parts();
        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|e| ConnectorError::user(e.into()))?;
        let mut out = reqwest::Request::new(parts.method, url);
        *out.headers_mut() = parts.headers;
        *out.body_mut() = match body.bytes() {
            Some([]) => None,
            // DynamoDB and SQS requests are JSON held in memory.
            Some(bytes) => Some(reqwest::Body::from(Bytes::copy_from_slice(bytes))),
            None => Some(reqwest::Body::wrap(body)),
        };
        Ok(out)
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match Self::request(request) {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(e)),
        };
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let mut response = client.execute(request).await.map_err(connector_error)?;
            let status = response.status();
            let version = response.version();
            let headers = std::mem::take(response.headers_mut());
            // Answers are small JSON documents: buffered here, so a connection lost mid-body is a
            // connector error the SDK retries.
            let body = response.bytes().await.map_err(connector_error)?;
            let mut answer = http::Response::new(SdkBody::from(body));
            *answer.status_mut() = status;
            *answer.version_mut() = version;
            *answer.headers_mut() = headers;
            HttpResponse::try_from(answer).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The SDK's retry classifier retries timeouts and I/O errors, so every failure to connect or to
/// complete an exchange (refused, reset, closed early, TLS handshake, DNS) maps to one of those;
/// a request that cannot be built is the caller's; anything else is unclassified.
pub fn connector_error(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if error.is_builder() {
        ConnectorError::user(error.into())
    } else if error.is_connect() || error.is_request() || error.is_body() {
        ConnectorError::io(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::http::HttpConnectorSettings;
    use http::StatusCode;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn settings(read: Option<Duration>) -> HttpConnectorSettings {
        let mut builder = HttpConnectorSettings::builder().connect_timeout(Duration::from_secs(2));
        builder.set_read_timeout(read);
        builder.build()
    }

    fn post(url: &str, body: &'static str) -> HttpRequest {
        let request = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", "DynamoDB_20120810.ListTables")
            .body(SdkBody::from(body))
            .unwrap();
        HttpRequest::try_from(request).unwrap()
    }

    #[tokio::test]
    async fn a_request_round_trips_status_headers_and_body() {
        let app = axum::Router::new().route(
            "/path",
            axum::routing::post(|headers: http::HeaderMap, body: String| async move {
                let mut answer = http::HeaderMap::new();
                answer.insert("x-amzn-requestid", "r-1".parse().unwrap());
                answer.insert("x-echo-target", headers["x-amz-target"].clone());
                (
                    StatusCode::BAD_REQUEST,
                    answer,
                    format!("{{\"got\":{body}}}"),
                )
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let connector = Connector::new(&settings(None));
        let response = connector
            .call(post(&format!("http://{addr}/path?x=1"), r#"{"a":1}"#))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.headers().get("x-amzn-requestid"), Some("r-1"));
        assert_eq!(
            response.headers().get("x-echo-target"),
            Some("DynamoDB_20120810.ListTables")
        );
        assert_eq!(response.body().bytes(), Some(&br#"{"got":{"a":1}}"#[..]));
    }

    /// What a POST to `addr` fails with, through a connector whose read timeout is `read`.
    async fn failure(addr: impl std::fmt::Display, read: Option<Duration>) -> ConnectorError {
        Connector::new(&settings(read))
            .call(post(&format!("http://{addr}/"), "{}"))
            .await
            .unwrap_err()
    }

    /// A loopback server that hands its first connection to `then`.
    async fn accepting<F, Fut>(then: F) -> std::net::SocketAddr
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { then(listener.accept().await.unwrap().0).await });
        addr
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_retryable_io_error() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = failure(closed, None).await;
        assert!(err.is_io(), "{err:?}");
    }

    #[tokio::test]
    async fn no_answer_within_the_read_timeout_is_a_timeout() {
        let addr = accepting(|socket| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        })
        .await;
        let err = failure(addr, Some(Duration::from_millis(200))).await;
        assert!(err.is_timeout(), "{err:?}");
    }

    #[tokio::test]
    async fn a_connection_closed_without_an_answer_is_an_io_error() {
        let addr = accepting(|mut socket| async move {
            let _ = socket.read(&mut [0u8; 4096]).await;
        })
        .await;
        let err = failure(addr, None).await;
        assert!(err.is_io(), "{err:?}");
    }

    #[test]
    fn one_connector_per_timeout_setting() {
        let client = ReqwestClient::default();
        let cached = || client.connectors.lock().unwrap().len();
        client.connector_for(&settings(None));
        client.connector_for(&settings(None));
        assert_eq!(cached(), 1);
        client.connector_for(&settings(Some(Duration::from_secs(1))));
        assert_eq!(cached(), 2);
    }

    /// The SDK over this client: the first connection closes without an answer, the SDK retries
    /// on a new one and gets the operation's answer.
    #[tokio::test]
    async fn the_sdk_retries_a_dropped_connection_and_reads_the_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let n = count.fetch_add(1, Ordering::SeqCst);
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then the JSON body (`{}` or `{...}`) of this small request.
                while !request.ends_with(b"}") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => request.extend_from_slice(&buf[..read]),
                    }
                }
                if n == 0 {
                    continue; // dropped: closed without an answer
                }
                let body = r#"{"TableNames":["herald"]}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                     x-amzn-requestid: r-2\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"),
            ))
            .endpoint_url(format!("http://{addr}"))
            .http_client(client())
            .build();
        let tables = aws_sdk_dynamodb::Client::new(&sdk)
            .list_tables()
            .send()
            .await
            .unwrap();
        assert_eq!(tables.table_names(), ["herald"]);
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "one retry");
    }
}

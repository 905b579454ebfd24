//! The HTTP stack shared by both collectors: hyper-util's pooled client over hyper-rustls
//! (ring provider, webpki roots), with a connect timeout and bounded body reads.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::BoxError;

/// The client type both collectors use.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How many characters of an unexpected body an error quotes.
const SNIPPET_CHARS: usize = 300;

/// The rustls provider: always ring, passed explicitly so feature unification cannot change it.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The web PKI roots (compiled in, no OS files needed).
pub(crate) fn webpki_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn tcp_connector(connect_timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http
}

/// A client speaking HTTP/1.1 or HTTP/2 (ALPN) over TLS and HTTP/1.1 over plain TCP (Prometheus).
pub(crate) fn http_client(connect_timeout: Duration) -> Result<HttpClient, rustls::Error> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp_connector(connect_timeout));
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// An HTTP/2-only client (gRPC): h2c with prior knowledge for `http://` URIs, TLS with ALPN `h2`
/// and the given rustls config for `https://` URIs.
pub(crate) fn h2_client(tls: rustls::ClientConfig, connect_timeout: Duration) -> HttpClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http2()
        .wrap_connector(tcp_connector(connect_timeout));
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector)
}

/// A fully read response.
pub(crate) struct ReadResponse {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) trailers: Option<HeaderMap>,
    pub(crate) body: Bytes,
}

/// Sends `request` and reads the whole response, refusing bodies over `max_body` bytes.
pub(crate) async fn send(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
    max_body: usize,
) -> Result<ReadResponse, BoxError> {
    let response = client.request(request).await?;
    let (parts, body) = response.into_parts();
    let collected = Limited::new(body, max_body).collect().await?;
    let trailers = collected.trailers().cloned();
    Ok(ReadResponse {
        status: parts.status,
        headers: parts.headers,
        trailers,
        body: collected.to_bytes(),
    })
}

/// The start of a body for error messages (lossy UTF-8, at most [`SNIPPET_CHARS`] characters).
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(SNIPPET_CHARS).collect();
    if text.chars().nth(SNIPPET_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

/// The `User-Agent` both collectors send.
pub(crate) const USER_AGENT: &str = concat!("fly-autoscaler-rs/", env!("CARGO_PKG_VERSION"));

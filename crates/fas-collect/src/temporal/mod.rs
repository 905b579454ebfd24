//! The Temporal collector: counts running workflow executions with one gRPC call.

mod proto;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, TE, USER_AGENT};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::Full;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{CollectError, Origin};
use crate::expand::expand_vars;
use crate::http::{HttpClient, h2_client, provider, send, snippet, webpki_roots};
use crate::{Collector, query_lookup};

/// The gRPC method called.
const COUNT_PATH: &str = "/temporal.api.workflowservice.v1.WorkflowService/CountWorkflowExecutions";
/// Largest response read (the answer is a count and, at most, a few groups).
const MAX_BODY: usize = 1024 * 1024;

/// Configuration of a [`TemporalCollector`].
///
/// `Debug` never shows the key (it is a [`SecretString`]).
#[derive(Debug, Clone)]
pub struct TemporalConfig {
    /// The variable name the value is bound to in expressions (`metric-name`).
    pub metric_name: String,
    /// The gRPC frontend, `host:port` (e.g. `localhost:7233`, port 7233 when omitted), optionally
    /// prefixed by `http://` (plain h2c) or `https://` (TLS). Without a prefix, TLS is used when
    /// a certificate and key or a CA bundle is given, plain h2c otherwise.
    pub address: String,
    /// The namespace to count in (the binary applies the default, `default`).
    pub namespace: String,
    /// Optional visibility query, ANDed with `ExecutionStatus="Running"`; `${APP_NAME}` / `$APP_NAME`
    /// become the app and other `${VAR}` come from `env`.
    pub query: Option<String>,
    /// PEM client certificate chain for mTLS (with `key_pem`).
    pub cert_pem: Option<String>,
    /// PEM private key for mTLS (with `cert_pem`).
    pub key_pem: Option<SecretString>,
    /// PEM bundle of CA certificates that verify the server (`ca-data`), INSTEAD of the webpki
    /// roots; for self-hosted clusters with a private CA. Usable with or without a client
    /// certificate (without one it is server-authenticated TLS).
    pub ca_pem: Option<String>,
    /// Limit on one whole call (connect, TLS, request, response); also sent as `grpc-timeout`.
    pub timeout: Duration,
    /// Values for `${VAR}` references (the library never reads the environment).
    pub env: BTreeMap<String, String>,
}

impl TemporalConfig {
    /// A configuration for namespace `default`, no query, no TLS, a 10 s timeout.
    pub fn new(metric_name: &str, address: &str) -> TemporalConfig {
        TemporalConfig {
            metric_name: metric_name.to_owned(),
            address: address.to_owned(),
            namespace: "default".to_owned(),
            query: None,
            cert_pem: None,
            key_pem: None,
            ca_pem: None,
            timeout: Duration::from_secs(10),
            env: BTreeMap::new(),
        }
    }
}

/// Counts running workflow executions through `WorkflowService/CountWorkflowExecutions`.
///
/// See the crate docs for why this is a minimal hand-written gRPC client.
pub struct TemporalCollector {
    at: Origin,
    uri: http::Uri,
    namespace: String,
    query: Option<String>,
    tls: bool,
    timeout: Duration,
    env: BTreeMap<String, String>,
    client: HttpClient,
}

impl fmt::Debug for TemporalCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporalCollector")
            .field("metric_name", &self.at.metric)
            .field("address", &self.at.address)
            .field("namespace", &self.namespace)
            .field("query", &self.query)
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TemporalCollector {
    /// Validates the configuration, parses the certificate and key, builds the HTTP/2 client.
    ///
    /// Errors ([`CollectError::Config`]): blank metric name, address or namespace; only one of
    /// certificate and key; a certificate or key that is not valid PEM (the message never quotes
    /// the key); a certificate/key pair rustls refuses; a CA bundle (`ca-data`) that is blank,
    /// not PEM, holds no certificate or a certificate rustls cannot use as a trust anchor; TLS
    /// material with an explicit `http://` address.
    pub fn new(cfg: TemporalConfig) -> Result<TemporalCollector, CollectError> {
        let metric = cfg.metric_name.clone();
        let config_error =
            |key: &'static str, message: String, source: Option<crate::error::BoxError>| {
                CollectError::Config {
                    metric: metric.clone(),
                    key,
                    message,
                    source,
                }
            };
        if cfg.metric_name.trim().is_empty() {
            return Err(config_error(
                "metric-name",
                "metric name required".into(),
                None,
            ));
        }
        if cfg.namespace.trim().is_empty() {
            return Err(config_error(
                "namespace",
                "temporal namespace required".into(),
                None,
            ));
        }
        let address = cfg.address.trim().trim_end_matches('/');
        let client_auth = match (&cfg.cert_pem, &cfg.key_pem) {
            (Some(cert), Some(key))
                if !cert.trim().is_empty() && !key.expose_secret().trim().is_empty() =>
            {
                Some((cert.as_str(), key))
            }
            (Some(cert), _) if !cert.trim().is_empty() => {
                return Err(config_error(
                    "key-data",
                    "a certificate was given without its key".into(),
                    None,
                ));
            }
            (_, Some(key)) if !key.expose_secret().trim().is_empty() => {
                return Err(config_error(
                    "cert-data",
                    "a key was given without its certificate".into(),
                    None,
                ));
            }
            _ => None,
        };
        let roots = match &cfg.ca_pem {
            None => None,
            Some(pem) => Some(
                ca_roots(pem)
                    .map_err(|(message, source)| config_error("ca-data", message.into(), source))?,
            ),
        };
        let (tls, authority) = if let Some(rest) = address.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = address.strip_prefix("http://") {
            if client_auth.is_some() || roots.is_some() {
                return Err(config_error(
                    "address",
                    format!(
                        "`{address}` is http:// but TLS material (cert-data, key-data or ca-data) was given (use https:// or host:port)"
                    ),
                    None,
                ));
            }
            (false, rest)
        } else {
            (client_auth.is_some() || roots.is_some(), address)
        };
        if authority.is_empty() || authority.contains('/') {
            return Err(config_error(
                "address",
                format!("`{address}` must be host:port"),
                None,
            ));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:7233")
        };
        let scheme = if tls { "https" } else { "http" };
        let uri: http::Uri = format!("{scheme}://{authority}{COUNT_PATH}")
            .parse()
            .map_err(|e| {
                config_error(
                    "address",
                    format!("`{address}` must be host:port"),
                    Some(Box::new(e)),
                )
            })?;

        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("address", "cannot set up TLS".into(), Some(Box::new(e))))?
            .with_root_certificates(roots.unwrap_or_else(webpki_roots));
        let tls_config = match client_auth {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        config_error(
                            "cert-data",
                            "not a PEM certificate".into(),
                            Some(Box::new(e)),
                        )
                    })?;
                if chain.is_empty() {
                    return Err(config_error(
                        "cert-data",
                        "no PEM certificate found".into(),
                        None,
                    ));
                }
                // The pem error only describes the structure, never the key material.
                let key =
                    PrivateKeyDer::from_pem_slice(key.expose_secret().as_bytes()).map_err(|e| {
                        config_error(
                            "key-data",
                            "not a PEM private key".into(),
                            Some(Box::new(e)),
                        )
                    })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    config_error(
                        "key-data",
                        "certificate and key rejected".into(),
                        Some(Box::new(e)),
                    )
                })?
            }
        };
        Ok(TemporalCollector {
            at: Origin::new(&cfg.metric_name, "temporal", address),
            uri,
            namespace: cfg.namespace,
            query: cfg.query.filter(|q| !q.trim().is_empty()),
            tls,
            timeout: cfg.timeout,
            env: cfg.env,
            client: h2_client(tls_config, cfg.timeout),
        })
    }

    /// The visibility query sent for `app`: `ExecutionStatus="Running"`, plus ` AND (query)`.
    pub fn visibility_query(&self, app: &str) -> String {
        match &self.query {
            None => r#"ExecutionStatus="Running""#.to_owned(),
            Some(query) => {
                let query = expand_vars(query, &query_lookup(app, &self.env));
                format!(r#"ExecutionStatus="Running" AND ({query})"#)
            }
        }
    }

    /// Decodes a `CountWorkflowExecutions` response body (a gRPC frame around the protobuf
    /// message) into the count, as a call does. For the fuzz targets in `fuzz/`; not a stable API.
    #[doc(hidden)]
    pub fn decode_count_body(body: &[u8]) -> Result<i64, String> {
        let message = proto::grpc_unframe(body).map_err(|e| e.0)?;
        proto::decode_count_response(message).map_err(|e| e.0)
    }

    async fn call(&self, app: &str) -> Result<f64, CollectError> {
        let message = proto::encode_count_request(&self.namespace, &self.visibility_query(app));
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .version(http::Version::HTTP_2)
            .header(CONTENT_TYPE, "application/grpc")
            .header(TE, "trailers")
            .header(USER_AGENT, crate::http::USER_AGENT)
            .header(
                "grpc-timeout",
                format!("{}m", self.timeout.as_millis().clamp(1, 99_999_999)),
            )
            .header("temporal-namespace", self.namespace.as_str())
            .body(Full::new(Bytes::from(proto::grpc_frame(&message))))
            .map_err(|e| CollectError::Custom {
                at: self.at.clone(),
                message: "cannot build the request (bad namespace?)".into(),
                source: Some(Box::new(e)),
            })?;
        let response = send(&self.client, request, MAX_BODY)
            .await
            .map_err(|source| CollectError::Transport {
                at: self.at.clone(),
                source,
            })?;
        // A failed call is usually "trailers-only": grpc-status arrives in the headers.
        let status = grpc_status(&response.headers)
            .or_else(|| response.trailers.as_ref().and_then(grpc_status));
        if response.status != StatusCode::OK {
            return Err(match status {
                Some((code, message)) if code != 0 => CollectError::Grpc {
                    at: self.at.clone(),
                    code,
                    message,
                },
                _ => CollectError::Http {
                    at: self.at.clone(),
                    status: response.status.as_u16(),
                    body: snippet(&response.body),
                },
            });
        }
        let decode = |message: String| CollectError::Decode {
            at: self.at.clone(),
            message,
            body: snippet(&response.body),
        };
        match status {
            Some((0, _)) => {}
            Some((code, message)) => {
                return Err(CollectError::Grpc {
                    at: self.at.clone(),
                    code,
                    message,
                });
            }
            None => {
                return Err(decode(
                    "no grpc-status in the response (not a grpc server?)".into(),
                ));
            }
        }
        let message = proto::grpc_unframe(&response.body).map_err(|e| decode(e.0))?;
        let count = proto::decode_count_response(message).map_err(|e| decode(e.0))?;
        Ok(count as f64)
    }
}

/// The trust anchors of a PEM CA bundle; on failure a message and the cause (never PEM text).
fn ca_roots(
    pem: &str,
) -> Result<rustls::RootCertStore, (&'static str, Option<crate::error::BoxError>)> {
    if pem.trim().is_empty() {
        return Err(("empty CA bundle", None));
    }
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ("not a PEM CA bundle", Some(Box::new(e) as _)))?;
    if certs.is_empty() {
        return Err(("no PEM certificate found in the CA bundle", None));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| {
            (
                "a CA certificate cannot be used as a trust anchor",
                Some(Box::new(e) as _),
            )
        })?;
    }
    Ok(roots)
}

/// `grpc-status` (and the percent-decoded `grpc-message`) from a header or trailer map.
fn grpc_status(headers: &HeaderMap) -> Option<(u32, String)> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    Some((code, message))
}

#[async_trait::async_trait]
impl Collector for TemporalCollector {
    fn metric_name(&self) -> &str {
        &self.at.metric
    }

    async fn collect(&self, app: &str) -> Result<f64, CollectError> {
        self.at.bounded(self.timeout, self.call(app)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_status_reads_code_and_decodes_message() {
        let mut h = HeaderMap::new();
        assert_eq!(grpc_status(&h), None);
        h.insert("grpc-status", "5".parse().unwrap());
        h.insert(
            "grpc-message",
            "Namespace%20nope%20is%20not%20found.".parse().unwrap(),
        );
        assert_eq!(
            grpc_status(&h),
            Some((5, "Namespace nope is not found.".into()))
        );
    }

    #[test]
    fn address_forms_and_query() {
        let mut cfg = TemporalConfig::new("wf", "localhost");
        cfg.query = Some(r#"TaskQueue="${APP_NAME}-$REGION""#.into());
        cfg.env.insert("REGION".into(), "ams".into());
        let c = TemporalCollector::new(cfg).unwrap();
        assert_eq!(
            c.uri.to_string(),
            format!("http://localhost:7233{COUNT_PATH}")
        );
        assert_eq!(
            c.visibility_query("app1"),
            r#"ExecutionStatus="Running" AND (TaskQueue="app1-ams")"#
        );
        let c = TemporalCollector::new(TemporalConfig::new("wf", "https://ns.tmprl.cloud:7233/"))
            .unwrap();
        assert_eq!(
            c.uri.to_string(),
            format!("https://ns.tmprl.cloud:7233{COUNT_PATH}")
        );
        assert_eq!(c.visibility_query("x"), r#"ExecutionStatus="Running""#);
        for bad in ["", "http://", "host:1/path"] {
            let err = TemporalCollector::new(TemporalConfig::new("wf", bad)).unwrap_err();
            assert!(
                matches!(err, CollectError::Config { key: "address", .. }),
                "{bad}: {err}"
            );
        }
    }
}

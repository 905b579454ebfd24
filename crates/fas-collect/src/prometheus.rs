//! The Prometheus collector: one instant query per collection.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{CollectError, Origin};
use crate::expand::expand_vars;
use crate::http::{HttpClient, http_client, send, snippet};
use crate::{Collector, query_lookup};

/// Largest response body read (a query returning thousands of series is still far below it).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Characters left unencoded in the form body (`application/x-www-form-urlencoded`).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*');

/// The metric counting collections whose query returned several series and used the first
/// one ([`MultipleSeries::First`]); a counter with the labels `app` and `metric`.
pub const MULTIPLE_SERIES_TOTAL: &str = "fas_collect_multiple_series_total";

/// What to do when a query returns a vector with more than one sample.
///
/// A query meant for autoscaling should return one number: prefer an aggregating query
/// (`sum(...)`, `max(...)`, …) or [`MultipleSeries::Sum`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MultipleSeries {
    /// Use the first sample, as the Go version does (it reads `result[0]`); the default, so
    /// existing configurations keep working. "First" is in the order Prometheus returned the
    /// series, which is not a documented or stable order: each such collection logs a warning
    /// naming the query and the series count, and increments the counter
    /// [`MULTIPLE_SERIES_TOTAL`] (`app`, `metric`). Fix the query (aggregate it) or choose
    /// [`MultipleSeries::Sum`].
    #[default]
    First,
    /// Fail with [`CollectError::MultipleSeries`], which tells the user to aggregate.
    Error,
    /// Use the sum of all samples.
    Sum,
}

/// Configuration of a [`PrometheusCollector`].
///
/// `Debug` never shows the token (it is a [`SecretString`]).
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// The variable name the value is bound to in expressions (`metric-name`).
    pub metric_name: String,
    /// Base URL of the Prometheus HTTP API, e.g. `http://127.0.0.1:9090` or
    /// `https://api.fly.io/prometheus/my-org`; `/api/v1/query` is appended.
    pub address: String,
    /// The PromQL query; `${APP_NAME}` / `$APP_NAME` become the app, other `${VAR}` come from `env`.
    pub query: String,
    /// Token: a value starting with `Fly` is sent as the `Authorization` header as is, any other
    /// non-empty value as `Bearer <token>`; `None` or empty sends no header.
    pub token: Option<SecretString>,
    /// Limit on one whole query (connect, send, read); also the connect timeout.
    pub timeout: Duration,
    /// Values for `${VAR}` references (the binary passes the environment; the library never reads it).
    pub env: BTreeMap<String, String>,
    /// What to do with several samples (default [`MultipleSeries::First`]).
    pub multiple_series: MultipleSeries,
}

impl PrometheusConfig {
    /// A configuration with no token, an empty `env`, a 10 s timeout and
    /// [`MultipleSeries::First`] (the Go behaviour).
    pub fn new(metric_name: &str, address: &str, query: &str) -> PrometheusConfig {
        PrometheusConfig {
            metric_name: metric_name.to_owned(),
            address: address.to_owned(),
            query: query.to_owned(),
            token: None,
            timeout: Duration::from_secs(10),
            env: BTreeMap::new(),
            multiple_series: MultipleSeries::default(),
        }
    }
}

/// Collects a value with a Prometheus instant query (`/api/v1/query`).
///
/// The query is sent as a `POST` with a form body (`query=...`), like the Go client, which avoids
/// URL length limits; if the server answers 405 or 501 (a proxy that only allows `GET`) the same
/// query is retried once as a `GET` with a query string.
pub struct PrometheusCollector {
    at: Origin,
    endpoint: http::Uri,
    query: String,
    authorization: Option<SecretString>,
    timeout: Duration,
    env: BTreeMap<String, String>,
    multiple_series: MultipleSeries,
    client: HttpClient,
}

impl fmt::Debug for PrometheusCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusCollector")
            .field("metric_name", &self.at.metric)
            .field("address", &self.at.address)
            .field("query", &self.query)
            .field("token", &self.authorization.as_ref().map(|_| "[REDACTED]"))
            .field("timeout", &self.timeout)
            .field("multiple_series", &self.multiple_series)
            .finish_non_exhaustive()
    }
}

/// The `Authorization` header value for a token (contract: `Fly...` as is, otherwise `Bearer`).
fn authorization(token: Option<&SecretString>) -> Option<SecretString> {
    let token = token?.expose_secret().trim();
    if token.is_empty() {
        None
    } else if token.starts_with("Fly") {
        Some(token.into())
    } else {
        Some(format!("Bearer {token}").into())
    }
}

impl PrometheusCollector {
    /// Validates the configuration and builds the HTTP client.
    ///
    /// Errors ([`CollectError::Config`]): blank metric name, query or address, an address that is
    /// not an `http://` / `https://` URL, a token that cannot be an HTTP header value.
    pub fn new(cfg: PrometheusConfig) -> Result<PrometheusCollector, CollectError> {
        let config_error = |key: &'static str, message: String| CollectError::Config {
            metric: cfg.metric_name.clone(),
            key,
            message,
            source: None,
        };
        if cfg.metric_name.trim().is_empty() {
            return Err(config_error("metric-name", "metric name required".into()));
        }
        if cfg.query.trim().is_empty() {
            return Err(config_error("query", "prometheus query required".into()));
        }
        let address = cfg.address.trim().trim_end_matches('/');
        if address.is_empty() {
            return Err(config_error(
                "address",
                "prometheus address required".into(),
            ));
        }
        let endpoint: http::Uri =
            format!("{address}/api/v1/query")
                .parse()
                .map_err(|e| CollectError::Config {
                    metric: cfg.metric_name.clone(),
                    key: "address",
                    message: format!("`{address}` is not a URL"),
                    source: Some(Box::new(e)),
                })?;
        if !matches!(endpoint.scheme_str(), Some("http" | "https")) || endpoint.host().is_none() {
            return Err(config_error(
                "address",
                format!("`{address}` must be an http:// or https:// URL with a host"),
            ));
        }
        let authorization = authorization(cfg.token.as_ref());
        if let Some(value) = &authorization {
            // Checked once here so a request never fails on it; the message never quotes the token.
            HeaderValue::from_str(value.expose_secret()).map_err(|_| {
                config_error(
                    "token",
                    "the token contains characters not allowed in an HTTP header".into(),
                )
            })?;
        }
        let client = http_client(cfg.timeout).map_err(|e| CollectError::Config {
            metric: cfg.metric_name.clone(),
            key: "address",
            message: "cannot set up TLS".into(),
            source: Some(Box::new(e)),
        })?;
        Ok(PrometheusCollector {
            at: Origin::new(&cfg.metric_name, "prometheus", address),
            endpoint,
            query: cfg.query,
            authorization,
            timeout: cfg.timeout,
            env: cfg.env,
            multiple_series: cfg.multiple_series,
            client,
        })
    }

    /// The query as it is sent for `app` (placeholders expanded).
    pub fn expanded_query(&self, app: &str) -> String {
        expand_vars(&self.query, &query_lookup(app, &self.env))
    }

    fn request(&self, method: Method, form: &str) -> Result<Request<Full<Bytes>>, CollectError> {
        let (uri, body) = if method == Method::GET {
            (format!("{}?{form}", self.endpoint), Bytes::new())
        } else {
            (self.endpoint.to_string(), Bytes::from(form.to_owned()))
        };
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, crate::http::USER_AGENT);
        if method == Method::POST {
            builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        if let Some(value) = &self.authorization {
            let mut value =
                HeaderValue::from_str(value.expose_secret()).map_err(|_| CollectError::Custom {
                    at: self.at.clone(),
                    message: "invalid token".into(),
                    source: None,
                })?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        builder
            .body(Full::new(body))
            .map_err(|e| CollectError::Custom {
                at: self.at.clone(),
                message: "cannot build the request".into(),
                source: Some(Box::new(e)),
            })
    }

    async fn query_once(&self, app: &str) -> Result<f64, CollectError> {
        let form = format!(
            "query={}",
            utf8_percent_encode(&self.expanded_query(app), FORM)
        );
        let transport = |source| CollectError::Transport {
            at: self.at.clone(),
            source,
        };
        let mut response = send(&self.client, self.request(Method::POST, &form)?, MAX_BODY)
            .await
            .map_err(transport)?;
        if matches!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
        ) {
            tracing::debug!(metric = %self.at.metric, status = %response.status, "POST refused, retrying the query with GET");
            response = send(&self.client, self.request(Method::GET, &form)?, MAX_BODY)
                .await
                .map_err(transport)?;
        }
        let sample = decode_response(
            &self.at,
            response.status,
            &response.body,
            self.multiple_series,
        )?;
        if sample.series > 1 && self.multiple_series == MultipleSeries::First {
            // The configured query, not the expanded one: `${VAR}` values stay out of the logs.
            tracing::warn!(
                app,
                metric = %self.at.metric,
                address = %self.at.address,
                query = %self.query,
                series = sample.series,
                value = sample.value,
                "prometheus query returned several series, using the first in prometheus' order \
                 (aggregate the query, e.g. sum(...), or set multiple-series: sum)"
            );
            metrics::counter!(
                MULTIPLE_SERIES_TOTAL,
                "app" => app.to_owned(),
                "metric" => self.at.metric.clone()
            )
            .increment(1);
        }
        Ok(sample.value)
    }
}

#[async_trait::async_trait]
impl Collector for PrometheusCollector {
    fn metric_name(&self) -> &str {
        &self.at.metric
    }

    async fn collect(&self, app: &str) -> Result<f64, CollectError> {
        self.at.bounded(self.timeout, self.query_once(app)).await
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiData {
    result_type: String,
    result: serde_json::Value,
}

/// A decoded result: the value and how many series the vector had (1 for a scalar).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    value: f64,
    series: usize,
}

#[derive(Deserialize)]
struct VectorSample {
    /// `[unix time, "value"]`.
    value: (f64, String),
}

/// Turns an HTTP status and body into a value or a typed error.
fn decode_response(
    at: &Origin,
    status: StatusCode,
    body: &[u8],
    multiple: MultipleSeries,
) -> Result<Sample, CollectError> {
    let decode = |message: String| CollectError::Decode {
        at: at.clone(),
        message,
        body: snippet(body),
    };
    let parsed: ApiResponse = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(e) if status.is_success() => {
            return Err(decode(format!("not a prometheus json response: {e}")));
        }
        Err(_) => {
            return Err(CollectError::Http {
                at: at.clone(),
                status: status.as_u16(),
                body: snippet(body),
            });
        }
    };
    for warning in &parsed.warnings {
        tracing::warn!(metric = %at.metric, address = %at.address, warning = %warning, "prometheus query warning");
    }
    if parsed.status != "success" {
        return Err(CollectError::PrometheusError {
            at: at.clone(),
            status: status.as_u16(),
            error_type: parsed.error_type.unwrap_or_default(),
            error: parsed.error.unwrap_or_default(),
        });
    }
    if !status.is_success() {
        return Err(CollectError::Http {
            at: at.clone(),
            status: status.as_u16(),
            body: snippet(body),
        });
    }
    let data = parsed.data.ok_or_else(|| decode("missing `data`".into()))?;
    let parse_value = |text: &str| {
        parse_sample_value(text)
            .ok_or_else(|| decode(format!("sample value `{text}` is not a number")))
    };
    match data.result_type.as_str() {
        "vector" => {
            let samples: Vec<VectorSample> = serde_json::from_value(data.result)
                .map_err(|e| decode(format!("bad vector result: {e}")))?;
            let series = samples.len();
            let value = match (samples.as_slice(), multiple) {
                ([], _) => Err(CollectError::EmptyResult { at: at.clone() }),
                ([first, ..], MultipleSeries::First) => parse_value(&first.value.1),
                ([one], _) => parse_value(&one.value.1),
                (many, MultipleSeries::Sum) => many
                    .iter()
                    .try_fold(0.0, |sum, sample| Ok(sum + parse_value(&sample.value.1)?)),
                (many, MultipleSeries::Error) => Err(CollectError::MultipleSeries {
                    at: at.clone(),
                    n: many.len(),
                }),
            }?;
            Ok(Sample { value, series })
        }
        "scalar" => {
            let (_, value): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| decode(format!("bad scalar result: {e}")))?;
            Ok(Sample {
                value: parse_value(&value)?,
                series: 1,
            })
        }
        other => Err(CollectError::UnsupportedResultType {
            at: at.clone(),
            result_type: other.to_owned(),
        }),
    }
}

/// Parses a sample value as Prometheus writes it (`"42"`, `"1e+06"`, `"NaN"`, `"+Inf"`, `"-Inf"`).
fn parse_sample_value(text: &str) -> Option<f64> {
    text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Origin {
        Origin::new("queue_depth", "prometheus", "http://prom:9090")
    }

    #[test]
    fn sample_values_parse_like_go() {
        assert_eq!(parse_sample_value("42"), Some(42.0));
        assert_eq!(parse_sample_value("1e+06"), Some(1e6));
        assert_eq!(parse_sample_value("-0.5"), Some(-0.5));
        assert!(parse_sample_value("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_sample_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_sample_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_sample_value("forty"), None);
    }

    #[test]
    fn authorization_follows_the_contract() {
        let header = |t: &str| {
            authorization(Some(&SecretString::from(t))).map(|s| s.expose_secret().to_owned())
        };
        assert_eq!(header("FlyV1 fm2_abc"), Some("FlyV1 fm2_abc".into()));
        assert_eq!(header("plain"), Some("Bearer plain".into()));
        assert_eq!(header(""), None);
        assert_eq!(authorization(None).map(|_| ()), None);
    }

    #[test]
    fn first_takes_the_first_sample_in_prometheus_order() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"q":"b"},"value":[1,"7"]},{"metric":{"q":"a"},"value":[1,"3"]}]}}"#;
        let got = decode_response(&at(), StatusCode::OK, body, MultipleSeries::First).unwrap();
        assert_eq!(
            got,
            Sample {
                value: 7.0,
                series: 2
            }
        );
        assert_eq!(MultipleSeries::default(), MultipleSeries::First);
        assert_eq!(
            PrometheusConfig::new("m", "http://p", "q").multiple_series,
            MultipleSeries::First
        );
    }

    #[test]
    fn bad_sample_value_is_a_decode_error() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#;
        let err = decode_response(&at(), StatusCode::OK, body, MultipleSeries::Error).unwrap_err();
        assert!(matches!(err, CollectError::Decode { .. }), "{err}");
    }
}

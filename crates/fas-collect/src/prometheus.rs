//! The Prometheus collector: one instant query per collection, or, with `group-by`, one query for
//! every app, kept for a maximum age (see [`GroupBy`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
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
use crate::group::{GroupBy, Grouped, Groups};
use crate::http::{HttpClient, ReadResponse, http_client, send, snippet};
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
    /// What to do with several samples (default [`MultipleSeries::First`]); with `group_by`, per
    /// label value.
    pub multiple_series: MultipleSeries,
    /// One query for every app instead of one per app (`group-by`); `None` (the default) queries
    /// per app, as the Go version.
    pub group_by: Option<GroupBy>,
}

impl PrometheusConfig {
    /// A configuration with no token, an empty `env`, a 10 s timeout,
    /// [`MultipleSeries::First`] and no grouping (the Go behaviour).
    pub fn new(metric_name: &str, address: &str, query: &str) -> PrometheusConfig {
        PrometheusConfig {
            metric_name: metric_name.to_owned(),
            address: address.to_owned(),
            query: query.to_owned(),
            token: None,
            timeout: Duration::from_secs(10),
            env: BTreeMap::new(),
            multiple_series: MultipleSeries::default(),
            group_by: None,
        }
    }
}

/// Collects a value with a Prometheus instant query (`/api/v1/query`).
///
/// The query is sent as a `POST` with a form body (`query=...`), like the Go client, which avoids
/// URL length limits; if the server answers 405 or 501 (a proxy that only allows `GET`) the same
/// query is retried once as a `GET` with a query string.
///
/// With [`PrometheusConfig::group_by`] one query serves every app (see [`GroupBy`]); share one
/// collector between the apps (`Arc<dyn Collector>`) for that.
pub struct PrometheusCollector {
    at: Origin,
    endpoint: http::Uri,
    query: String,
    authorization: Option<SecretString>,
    timeout: Duration,
    env: BTreeMap<String, String>,
    multiple_series: MultipleSeries,
    group: Option<Grouped>,
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
            .field("group_by", &self.group.as_ref().map(|g| &g.label))
            .field("max_age", &self.group.as_ref().map(|g| g.cache.max_age()))
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
    /// not an `http://` / `https://` URL, a token that cannot be an HTTP header value; with
    /// `group_by`, a label that is not a Prometheus label name (key `group-by`) or a query that
    /// reads `${APP_NAME}` (key `query`: a grouped query runs once for every app).
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
        let group = cfg
            .group_by
            .as_ref()
            .map(|group_by| Grouped::new(group_by, &cfg))
            .transpose()?;
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
            group,
            client,
        })
    }

    /// The query as it is sent for `app` (placeholders expanded); for a grouped collector, the
    /// one query of every app.
    pub fn expanded_query(&self, app: &str) -> String {
        match &self.group {
            Some(group) => group.query.clone(),
            None => expand_vars(&self.query, &query_lookup(app, &self.env)),
        }
    }

    /// The `group-by` label, for a grouped collector.
    pub fn group_by(&self) -> Option<&str> {
        self.group.as_ref().map(|g| g.label.as_str())
    }

    fn request(&self, method: Method, form: &str) -> Result<Request<Full<Bytes>>, CollectError> {
        self.request_to(&self.endpoint.to_string(), method, form)
    }

    fn request_to(
        &self,
        endpoint: &str,
        method: Method,
        form: &str,
    ) -> Result<Request<Full<Bytes>>, CollectError> {
        let (uri, body) = if method == Method::GET {
            (format!("{endpoint}?{form}"), Bytes::new())
        } else {
            (endpoint.to_owned(), Bytes::from(form.to_owned()))
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

    /// Sends `query` (a `POST` form, a `GET` when the server refuses it) and reads the answer.
    async fn send_query(&self, query: &str) -> Result<ReadResponse, CollectError> {
        let form = format!("query={}", utf8_percent_encode(query, FORM));
        let transport = |source| CollectError::Transport {
            at: self.at.clone(),
            source,
        };
        let response = send(&self.client, self.request(Method::POST, &form)?, MAX_BODY)
            .await
            .map_err(transport)?;
        if !matches!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
        ) {
            return Ok(response);
        }
        tracing::debug!(metric = %self.at.metric, status = %response.status, "POST refused, retrying the query with GET");
        send(&self.client, self.request(Method::GET, &form)?, MAX_BODY)
            .await
            .map_err(transport)
    }

    /// The metric's history for `app` from a range query (`/api/v1/query_range`, the same query,
    /// token and `multiple-series` rule as a tick, applied at each step): `(unix seconds, value)`
    /// in time order. For a grouped collector, the series whose `group-by` label is `app`. Used by
    /// `fly-autoscaler simulate --prometheus-range`. An empty result is
    /// [`CollectError::EmptyResult`].
    pub async fn query_range(
        &self,
        app: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<(f64, f64)>, CollectError> {
        let query = self.expanded_query(app);
        let form = format!(
            "query={}&start={start:.3}&end={end:.3}&step={:.3}",
            utf8_percent_encode(&query, FORM),
            step.as_secs_f64()
        );
        let endpoint = format!("{}_range", self.endpoint);
        let transport = |source| CollectError::Transport {
            at: self.at.clone(),
            source,
        };
        let send_range = async {
            let response = send(
                &self.client,
                self.request_to(&endpoint, Method::POST, &form)?,
                MAX_BODY,
            )
            .await
            .map_err(transport)?;
            if matches!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
            ) {
                return send(
                    &self.client,
                    self.request_to(&endpoint, Method::GET, &form)?,
                    MAX_BODY,
                )
                .await
                .map_err(transport);
            }
            Ok(response)
        };
        let response = self.at.bounded(self.timeout, send_range).await?;
        let body = &response.body;
        let mut series = match decode_response(&self.at, response.status, body)? {
            Decoded::Matrix(series) => series,
            Decoded::Vector(_) => {
                return Err(CollectError::UnsupportedResultType {
                    at: self.at.clone(),
                    result_type: "vector".into(),
                });
            }
            Decoded::Scalar(_) => {
                return Err(CollectError::UnsupportedResultType {
                    at: self.at.clone(),
                    result_type: "scalar".into(),
                });
            }
        };
        if let Some(group) = &self.group {
            series.retain(|s| s.metric.get(&group.label).map(String::as_str) == Some(app));
        }
        // Each step: the values of the series that have one, through the multiple-series rule.
        let mut steps: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        for s in &series {
            for (t, v) in &s.values {
                steps.entry(t.to_bits()).or_default().push(v.as_str());
            }
        }
        let mut out = Vec::with_capacity(steps.len());
        for (t, values) in steps {
            let sample = pick(&self.at, &values, self.multiple_series, |text| {
                parse_value(&self.at, text, body)
            })?;
            out.push((f64::from_bits(t), sample.value));
        }
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        if out.is_empty() {
            return Err(CollectError::EmptyResult {
                at: self.at.clone(),
            });
        }
        Ok(out)
    }

    /// One query for `app` (an ungrouped collector).
    async fn query_once(&self, app: &str) -> Result<f64, CollectError> {
        let response = self.send_query(&self.expanded_query(app)).await?;
        let body = &response.body;
        let sample = match decode_response(&self.at, response.status, body)? {
            Decoded::Vector(samples) => {
                let values: Vec<&str> = samples.iter().map(|s| s.value.1.as_str()).collect();
                pick(&self.at, &values, self.multiple_series, |text| {
                    parse_value(&self.at, text, body)
                })?
            }
            Decoded::Scalar(value) => Sample {
                value: parse_value(&self.at, &value, body)?,
                series: 1,
            },
            Decoded::Matrix(_) => {
                return Err(CollectError::UnsupportedResultType {
                    at: self.at.clone(),
                    result_type: "matrix".into(),
                });
            }
        };
        self.note_first_of_several(app, sample);
        Ok(sample.value)
    }

    /// The grouped query, run once for every app: label value → its samples' values (all of them
    /// parsed: a value that is not a number fails the query).
    async fn query_groups(&self, group: &Grouped) -> Result<Groups, CollectError> {
        let response = self.send_query(&group.query).await?;
        let samples = match decode_response(&self.at, response.status, &response.body)? {
            Decoded::Vector(samples) => samples,
            Decoded::Scalar(_) | Decoded::Matrix(_) => {
                return Err(CollectError::NotGroupable {
                    at: self.at.clone(),
                    label: group.label.clone(),
                    result_type: "scalar".into(),
                });
            }
        };
        let body = &response.body;
        group.group(
            &self.at,
            samples.into_iter().map(|s| (s.metric, s.value.1)),
            |text| parse_value(&self.at, text, body),
        )
    }

    /// `app`'s value in the shared result of a grouped collector.
    async fn collect_grouped(&self, group: &Grouped, app: &str) -> Result<f64, CollectError> {
        let groups: Arc<Groups> = group
            .cache
            .get(|| self.at.bounded(self.timeout, self.query_groups(group)))
            .await?;
        let Some(values) = groups.get(app) else {
            tracing::debug!(
                app,
                metric = %self.at.metric,
                label = %group.label,
                "no series for the app in the grouped result"
            );
            return Err(CollectError::EmptyResult {
                at: self.at.clone(),
            });
        };
        let sample = pick(&self.at, values, self.multiple_series, Ok)?;
        self.note_first_of_several(app, sample);
        Ok(sample.value)
    }

    /// The warning and the counter of [`MultipleSeries::First`] when it chose among several series.
    fn note_first_of_several(&self, app: &str, sample: Sample) {
        if sample.series <= 1 || self.multiple_series != MultipleSeries::First {
            return;
        }
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
}

#[async_trait::async_trait]
impl Collector for PrometheusCollector {
    fn metric_name(&self) -> &str {
        &self.at.metric
    }

    async fn collect(&self, app: &str) -> Result<f64, CollectError> {
        match &self.group {
            Some(group) => self.collect_grouped(group, app).await,
            None => self.at.bounded(self.timeout, self.query_once(app)).await,
        }
    }

    /// For a grouped collector, the collections that start after this call use only a result whose
    /// query started after it; an ungrouped collector always queries, so this does nothing.
    fn invalidate(&self) {
        if let Some(group) = &self.group {
            group.cache.invalidate();
        }
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

/// A value and how many series it was chosen from (1 for a scalar).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    value: f64,
    series: usize,
}

#[derive(Deserialize)]
struct VectorSample {
    /// The series' labels (read only by a grouped collector).
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// `[unix time, "value"]`.
    value: (f64, String),
}

/// One series of a range query's matrix.
#[derive(Deserialize)]
struct MatrixSeries {
    /// The series' labels.
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// `[[unix time, "value"], …]`.
    values: Vec<(f64, String)>,
}

/// A successful query's result.
enum Decoded {
    /// The samples of an instant vector, in Prometheus' order.
    Vector(Vec<VectorSample>),
    /// A scalar's value, as written.
    Scalar(String),
    /// The series of a range query, in Prometheus' order.
    Matrix(Vec<MatrixSeries>),
}

/// Parses one sample value of the response `body`, or a decode error quoting it.
fn parse_value(at: &Origin, text: &str, body: &[u8]) -> Result<f64, CollectError> {
    parse_sample_value(text).ok_or_else(|| CollectError::Decode {
        at: at.clone(),
        message: format!("sample value `{text}` is not a number"),
        body: snippet(body),
    })
}

/// The one-sample rule: no sample is an empty result; of several, `multiple` decides. Only the
/// values used are parsed (with `parse`).
fn pick<T: Copy>(
    at: &Origin,
    values: &[T],
    multiple: MultipleSeries,
    parse: impl Fn(T) -> Result<f64, CollectError>,
) -> Result<Sample, CollectError> {
    let value = match (values, multiple) {
        ([], _) => Err(CollectError::EmptyResult { at: at.clone() }),
        ([first, ..], MultipleSeries::First) => parse(*first),
        ([one], _) => parse(*one),
        (many, MultipleSeries::Sum) => many
            .iter()
            .try_fold(0.0, |sum, value| Ok(sum + parse(*value)?)),
        (many, MultipleSeries::Error) => Err(CollectError::MultipleSeries {
            at: at.clone(),
            n: many.len(),
        }),
    }?;
    Ok(Sample {
        value,
        series: values.len(),
    })
}

/// Turns an HTTP status and body into a result or a typed error.
fn decode_response(at: &Origin, status: StatusCode, body: &[u8]) -> Result<Decoded, CollectError> {
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
    match data.result_type.as_str() {
        "vector" => serde_json::from_value(data.result)
            .map(Decoded::Vector)
            .map_err(|e| decode(format!("bad vector result: {e}"))),
        "scalar" => {
            let (_, value): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| decode(format!("bad scalar result: {e}")))?;
            Ok(Decoded::Scalar(value))
        }
        "matrix" => serde_json::from_value(data.result)
            .map(Decoded::Matrix)
            .map_err(|e| decode(format!("bad matrix result: {e}"))),
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
        let Decoded::Vector(samples) = decode_response(&at(), StatusCode::OK, body).unwrap() else {
            panic!("a vector")
        };
        let values: Vec<&str> = samples.iter().map(|s| s.value.1.as_str()).collect();
        let got = pick(&at(), &values, MultipleSeries::First, |t| {
            parse_value(&at(), t, body)
        })
        .unwrap();
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
        let Decoded::Vector(samples) = decode_response(&at(), StatusCode::OK, body).unwrap() else {
            panic!("a vector")
        };
        let err = pick(
            &at(),
            &[samples[0].value.1.as_str()],
            MultipleSeries::Error,
            |t| parse_value(&at(), t, body),
        )
        .unwrap_err();
        assert!(matches!(err, CollectError::Decode { .. }), "{err}");
        assert!(
            err.to_string().contains("resultType"),
            "quotes the body: {err}"
        );
    }
}

//! The crate's one error type.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error used as the `#[source]` of transport and configuration failures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which collector an error comes from: its metric name, its kind and its address.
///
/// Every [`CollectError`] that happens while collecting carries one, so a log line names the
/// metric and the server without the caller adding context. It never holds a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The collector's `metric-name`.
    pub metric: String,
    /// `"prometheus"` or `"temporal"` (or a custom collector's kind).
    pub kind: &'static str,
    /// The configured address (never contains a token).
    pub address: String,
}

impl Origin {
    /// Runs one collection, turning a timeout into [`CollectError::Timeout`] naming this origin.
    pub(crate) async fn bounded<T>(
        &self,
        timeout: std::time::Duration,
        collect: impl std::future::Future<Output = Result<T, CollectError>>,
    ) -> Result<T, CollectError> {
        tokio::time::timeout(timeout, collect)
            .await
            .unwrap_or_else(|_| {
                Err(CollectError::Timeout {
                    at: self.clone(),
                    timeout,
                })
            })
    }

    /// Builds an origin from its parts.
    pub fn new(metric: &str, kind: &'static str, address: &str) -> Origin {
        Origin {
            metric: metric.to_owned(),
            kind,
            address: address.to_owned(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "metric `{}` ({} at {})",
            self.metric, self.kind, self.address
        )
    }
}

/// Everything that can go wrong while configuring or running a collector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// The collector's configuration is invalid (bad address, unreadable certificate or key...).
    #[error("metric `{metric}`: invalid {key}: {message}")]
    Config {
        /// The collector's `metric-name`.
        metric: String,
        /// The configuration key at fault (`address`, `cert-data`, `key-data`, ...).
        key: &'static str,
        /// What is wrong with it (never the secret value itself).
        message: String,
        /// The underlying parse error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The request could not be sent or its response could not be read (connect refused, TLS, reset...).
    #[error("{at}: request failed")]
    Transport {
        /// The collector.
        at: Origin,
        /// The underlying hyper / IO / TLS error.
        #[source]
        source: BoxError,
    },
    /// The call did not finish within the collector's timeout.
    #[error("{at}: timed out after {timeout:?}")]
    Timeout {
        /// The collector.
        at: Origin,
        /// The configured per-call timeout.
        timeout: Duration,
    },
    /// The server answered with a non-success HTTP status and no structured error.
    #[error("{at}: http status {status}: {body}")]
    Http {
        /// The collector.
        at: Origin,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (at most a few hundred characters).
        body: String,
    },
    /// Prometheus answered `"status": "error"` (for example `bad_data` for an invalid query).
    #[error("{at}: prometheus error ({status} {error_type}): {error}")]
    PrometheusError {
        /// The collector.
        at: Origin,
        /// The HTTP status code (400 for `bad_data`, 422 for `execution`, 503 for `timeout`...).
        status: u16,
        /// Prometheus' `errorType`.
        error_type: String,
        /// Prometheus' `error` text.
        error: String,
    },
    /// The response body is not what the protocol says (not JSON, missing fields, bad protobuf...).
    #[error("{at}: cannot decode response: {message}; body starts with: {body}")]
    Decode {
        /// The collector.
        at: Origin,
        /// What could not be decoded.
        message: String,
        /// The start of the response body (at most a few hundred characters, lossy UTF-8).
        body: String,
    },
    /// The Prometheus query returned an empty vector (the Go version's "empty prometheus result").
    #[error("{at}: empty prometheus result")]
    EmptyResult {
        /// The collector.
        at: Origin,
    },
    /// The Prometheus query returned several series and the collector refuses them
    /// ([`crate::MultipleSeries::Error`], `multiple-series: error`).
    #[error(
        "{at}: prometheus query returned {n} series, expected one: aggregate them in the query \
         (e.g. wrap it in sum(...)) or enable summing of multiple series"
    )]
    MultipleSeries {
        /// The collector.
        at: Origin,
        /// How many series the query returned.
        n: usize,
    },
    /// The Prometheus result type is neither `vector` nor `scalar` (for example `matrix` or `string`).
    #[error("{at}: unsupported prometheus result type `{result_type}` (expected vector or scalar)")]
    UnsupportedResultType {
        /// The collector.
        at: Origin,
        /// The `resultType` that was returned.
        result_type: String,
    },
    /// A collector with `group-by` got a result that has no labels to group by (a scalar): a grouped
    /// query must return a vector with one series per app, e.g. `sum by (app) (queue_depth)`.
    #[error(
        "{at}: group-by `{label}` needs a vector result with one series per app, the query returned a {result_type}"
    )]
    NotGroupable {
        /// The collector.
        at: Origin,
        /// The configured `group-by` label.
        label: String,
        /// The `resultType` that was returned (`scalar`).
        result_type: String,
    },
    /// The gRPC call failed with a non-zero `grpc-status` (Temporal).
    #[error("{at}: grpc status {code} ({}): {message}", grpc_code_name(*.code))]
    Grpc {
        /// The collector.
        at: Origin,
        /// The gRPC status code (e.g. 5 = NOT_FOUND for an unknown namespace, 3 = INVALID_ARGUMENT).
        code: u32,
        /// The percent-decoded `grpc-message`.
        message: String,
    },
    /// A custom collector's own failure (see the `Collector` docs).
    #[error("{at}: {message}")]
    Custom {
        /// The collector.
        at: Origin,
        /// What went wrong.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

impl CollectError {
    /// The metric name of the collector that failed.
    pub fn metric(&self) -> &str {
        match self {
            CollectError::Config { metric, .. } => metric,
            CollectError::Transport { at, .. }
            | CollectError::Timeout { at, .. }
            | CollectError::Http { at, .. }
            | CollectError::PrometheusError { at, .. }
            | CollectError::Decode { at, .. }
            | CollectError::EmptyResult { at }
            | CollectError::MultipleSeries { at, .. }
            | CollectError::UnsupportedResultType { at, .. }
            | CollectError::NotGroupable { at, .. }
            | CollectError::Grpc { at, .. }
            | CollectError::Custom { at, .. } => &at.metric,
        }
    }
}

/// A copy of a shared error, for each caller that waited on the one query that failed (a grouped
/// Prometheus collector hands the same failure to every app that waited for it).
///
/// Every field is cloned; a `#[source]` becomes a [`CopiedSource`] that displays and chains like
/// the original source, so the copy's `Display` and error chain are the original's.
pub(crate) fn copy_of(err: &Arc<CollectError>) -> CollectError {
    let source = || -> BoxError { Box::new(CopiedSource(Arc::clone(err))) };
    match &**err {
        CollectError::Config {
            metric,
            key,
            message,
            source: s,
        } => CollectError::Config {
            metric: metric.clone(),
            key,
            message: message.clone(),
            source: s.as_ref().map(|_| source()),
        },
        CollectError::Transport { at, .. } => CollectError::Transport {
            at: at.clone(),
            source: source(),
        },
        CollectError::Timeout { at, timeout } => CollectError::Timeout {
            at: at.clone(),
            timeout: *timeout,
        },
        CollectError::Http { at, status, body } => CollectError::Http {
            at: at.clone(),
            status: *status,
            body: body.clone(),
        },
        CollectError::PrometheusError {
            at,
            status,
            error_type,
            error,
        } => CollectError::PrometheusError {
            at: at.clone(),
            status: *status,
            error_type: error_type.clone(),
            error: error.clone(),
        },
        CollectError::Decode { at, message, body } => CollectError::Decode {
            at: at.clone(),
            message: message.clone(),
            body: body.clone(),
        },
        CollectError::EmptyResult { at } => CollectError::EmptyResult { at: at.clone() },
        CollectError::MultipleSeries { at, n } => CollectError::MultipleSeries {
            at: at.clone(),
            n: *n,
        },
        CollectError::UnsupportedResultType { at, result_type } => {
            CollectError::UnsupportedResultType {
                at: at.clone(),
                result_type: result_type.clone(),
            }
        }
        CollectError::NotGroupable {
            at,
            label,
            result_type,
        } => CollectError::NotGroupable {
            at: at.clone(),
            label: label.clone(),
            result_type: result_type.clone(),
        },
        CollectError::Grpc { at, code, message } => CollectError::Grpc {
            at: at.clone(),
            code: *code,
            message: message.clone(),
        },
        CollectError::Custom {
            at,
            message,
            source: s,
        } => CollectError::Custom {
            at: at.clone(),
            message: message.clone(),
            source: s.as_ref().map(|_| source()),
        },
    }
}

/// The source of a copied error: shows and chains as the original error's source.
struct CopiedSource(Arc<CollectError>);

impl CopiedSource {
    fn original(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

impl fmt::Debug for CopiedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.original() {
            Some(source) => fmt::Debug::fmt(source, f),
            None => f.write_str("None"),
        }
    }
}

impl fmt::Display for CopiedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.original() {
            Some(source) => fmt::Display::fmt(source, f),
            None => Ok(()),
        }
    }
}

impl std::error::Error for CopiedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.original()?.source()
    }
}

/// The canonical name of a gRPC status code.
pub fn grpc_code_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNRECOGNIZED",
    }
}

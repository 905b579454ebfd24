//! Metric collectors for fly-autoscaler: each one turns "the app being reconciled" into one
//! number, bound in the scaling expressions to the collector's `metric-name`.
//!
//! # Key types
//! - [`Collector`]: the trait every collector implements (object safe; the binary holds a
//!   `Vec<Box<dyn Collector>>`). Write your own by implementing it; see its docs and the
//!   `examples/custom-collector` crate.
//! - [`PrometheusCollector`] / [`PrometheusConfig`]: an instant query on `/api/v1/query`; with
//!   [`GroupBy`] (`group-by`), one query for every app, kept for a maximum age.
//! - [`TemporalCollector`] / [`TemporalConfig`]: the number of running workflow executions.
//! - [`expand_vars`]: `$VAR` / `${VAR}` expansion, used for queries here and for YAML text by the binary.
//! - [`CollectError`]: the one error type; every collection error names the metric and the address.
//!
//! # Invariants, and the tests that guard them
//! - `$1`, `${1}` and `$$` are never expanded, so PromQL's `label_replace` keeps working; an
//!   unknown variable stays as written (`expand::tests`, including property tests; end to end in
//!   `tests/prometheus_real.rs`).
//! - A Prometheus query is a `POST` form to `<address>/api/v1/query` (a `GET` retry on 405/501)
//!   (`tests/prometheus_wire.rs`: `posts_a_form_with_the_expanded_query`,
//!   `address_path_prefix_is_kept`, `falls_back_to_get_when_post_is_refused`).
//! - A Prometheus token is sent as `Authorization: <token>` when it starts with `Fly`, as
//!   `Bearer <token>` otherwise, and never appears in `Debug`, errors or logs
//!   (`authorization_header_follows_the_token_rules`, `warnings_are_logged_and_the_token_never_leaks`).
//!   Neither does a Temporal key (`tests/temporal_offline.rs`).
//! - A vector with one sample is its value; no sample is "empty prometheus result"; of several
//!   samples the first (in Prometheus' order) is the value, as in the Go version, with a warning
//!   naming the query and the count of series and the counter [`MULTIPLE_SERIES_TOTAL`]
//!   (`app`, `metric`), unless [`MultipleSeries::Sum`] adds them or [`MultipleSeries::Error`]
//!   refuses them with an error telling the user to aggregate (`several_series_use_the_first_and_warn`);
//!   scalars are their value; `NaN`/`Inf` pass through as `f64` (the expression layer rejects
//!   them); matrix/string results and HTTP/JSON failures are typed errors (`result_shapes` and friends
//!   in `tests/prometheus_wire.rs`; against Debian's Prometheus in `tests/prometheus_real.rs`).
//! - A grouped Prometheus collector ([`GroupBy`]) sends one query for any number of apps within
//!   its `max_age` and queries again after it or after [`Collector::invalidate`]; collections
//!   arriving during a query wait for it and share its result or its error (exactly one request);
//!   a failed query is not kept; an app absent from the result gets "empty prometheus result" and
//!   the others their values; several series per label value follow the multiple-series rule; a
//!   query reading `${APP_NAME}` or a bad label is a configuration error naming the key
//!   (`tests/prometheus_group.rs`; `sum by (app) (queue_depth)` against Debian's Prometheus in
//!   `tests/prometheus_real.rs`; the shared result alone, on a paused clock, in `group::tests`).
//! - Every call is bounded by the collector's timeout (`slow_server_times_out`,
//!   `a_silent_server_times_out`), and every collection error names the metric and the address.
//! - The Temporal count is `ExecutionStatus="Running"` ANDed with the user's query; gRPC
//!   failures map to [`CollectError::Grpc`] (`tests/temporal_real.rs` against the dev server;
//!   trailers-only errors and framing in `tests/temporal_offline.rs`; protobuf bytes in
//!   `temporal::proto::tests`). With a certificate and key, a CA bundle (`ca_pem`, `ca-data`) or an
//!   `https://` address the call uses TLS with ALPN `h2` and verifies the server against the
//!   webpki roots, or against the given CA bundle only (`mtls_config_speaks_tls_with_alpn_h2_and_verifies_the_server`).
//!   `tests/temporal_mtls.rs` completes real mutual TLS with test-time certificates against a
//!   server that requires a client certificate: the count comes back and the server saw the
//!   client's certificate; no client certificate, a client certificate of another CA, and a
//!   private-CA server without `ca-data` all fail as [`CollectError::Transport`]; a bad `ca-data`
//!   is a [`CollectError::Config`] naming it; the key PEM appears in no error.
//!
//! # Why Temporal is reached with a hand-written gRPC call
//! The Temporal collector needs exactly one RPC, `WorkflowService/CountWorkflowExecutions`, whose
//! request has two string fields (namespace = 1, query = 2) and whose response has one field we
//! read (count = 1, an int64 varint). Existing configurations point at the gRPC frontend
//! (`localhost:7233`, Temporal Cloud's `<ns>.tmprl.cloud:7233`), so the HTTP/JSON API is not an
//! option. The Temporal Rust SDK is not published as a stable crate, and tonic + prost would
//! bring a code generator (protoc or the 200-file Temporal API protos), a second HTTP stack
//! configuration and dozens of crates for one call. Instead this crate sends the call over the
//! hyper HTTP/2 client it already uses for Prometheus (h2c with prior knowledge for plain
//! addresses, rustls with ALPN `h2` and an optional client certificate for mTLS), encodes and
//! decodes the two tiny messages by hand (about 80 lines, unit-tested against protoc's bytes),
//! frames them with gRPC's 5-byte prefix and maps the `grpc-status` / `grpc-message` trailers to
//! [`CollectError::Grpc`]. It is tested against the real Temporal dev server.
// Library crates document every public item; the workspace lint only warns (binaries).
#![deny(missing_docs)]

mod error;
mod expand;
mod group;
mod http;
mod prometheus;
mod temporal;

use std::collections::BTreeMap;

pub use error::{BoxError, CollectError, Origin, grpc_code_name};
pub use expand::expand_vars;
pub use group::GroupBy;
pub use prometheus::{
    MULTIPLE_SERIES_TOTAL, MultipleSeries, PrometheusCollector, PrometheusConfig,
};
pub use temporal::{TemporalCollector, TemporalConfig};

/// A source of one metric value per app.
///
/// Implementations must be cheap to call repeatedly (the binary calls [`Collector::collect`]
/// once per app per reconciliation, possibly for several apps at once), must bound their own
/// running time (a collection that never returns stalls the app's reconciliation until the
/// binary's per-app timeout), and must not log or return secrets. Report failures as a
/// [`CollectError`]; for your own failures use [`CollectError::Custom`] with an [`Origin`] that
/// names your metric and source.
///
/// ```
/// use fas_collect::{CollectError, Collector, Origin};
///
/// /// Always reports the same value: the smallest possible collector.
/// #[derive(Debug)]
/// struct Fixed { name: String, value: f64 }
///
/// #[async_trait::async_trait]
/// impl Collector for Fixed {
///     fn metric_name(&self) -> &str { &self.name }
///     async fn collect(&self, app: &str) -> Result<f64, CollectError> {
///         if app.is_empty() {
///             return Err(CollectError::Custom {
///                 at: Origin::new(&self.name, "fixed", "memory"),
///                 message: "no app given".into(),
///                 source: None,
///             });
///         }
///         Ok(self.value)
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let collectors: Vec<Box<dyn Collector>> = vec![Box::new(Fixed { name: "answer".into(), value: 42.0 })];
/// assert_eq!(collectors[0].collect("my-app").await.unwrap(), 42.0);
/// # });
/// ```
#[async_trait::async_trait]
pub trait Collector: Send + Sync + std::fmt::Debug + 'static {
    /// The variable name the value is bound to in expressions (`metric-name`).
    fn metric_name(&self) -> &str;

    /// Collects the current value for `app` (the app being reconciled).
    async fn collect(&self, app: &str) -> Result<f64, CollectError>;

    /// Makes the collections that start after this call read the source again instead of using a
    /// kept result. Only a collector that shares one result between apps for a while (a
    /// Prometheus collector with [`GroupBy`]) keeps results: it then ignores every result whose
    /// query started before this call (a query already in flight still answers the collections
    /// that were waiting for it). A tick that must see fresh metrics (a pushed trigger) calls
    /// `invalidate()` and then [`Collector::collect`].
    ///
    /// Collections that start after the same invalidation share one query. Each call raises the
    /// bar for the collections after it, so when one event wakes many apps, call it once for the
    /// event, before waking them, rather than once per app tick (that also reads fresh metrics,
    /// but costs about one query per wave of concurrent ticks instead of one).
    ///
    /// The default does nothing, which is right for a collector that reads its source on every
    /// call (the ungrouped Prometheus collector, the Temporal collector, the
    /// `examples/custom-collector` crate).
    fn invalidate(&self) {}
}

// Compile-time checks: boxed collectors can be shared across tasks, and the collect future can be
// spawned on a multi-threaded runtime.
const _: () = {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    fn assert_send<T: Send>(_: &T) {}
    #[allow(dead_code)]
    fn checks(collector: &dyn Collector) {
        assert_send_sync::<Box<dyn Collector>>();
        assert_send_sync::<std::sync::Arc<dyn Collector>>();
        assert_send(&collector.collect("app"));
        collector.invalidate();
    }
};

/// The lookup used for queries: `APP_NAME` is the app, other names come from `env`.
fn query_lookup<'a>(
    app: &'a str,
    env: &'a BTreeMap<String, String>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        if name == "APP_NAME" {
            Some(app.to_owned())
        } else {
            env.get(name).cloned()
        }
    }
}

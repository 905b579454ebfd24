//! Every metric name the autoscaler exports, in one place, and the metrics listener (`/metrics`,
//! `/healthz`, `/readyz`, `/status`, `/status/{app}`, `/trigger`).
//!
//! The three Go metric names (`fas_reconcile_count`, `fas_machine_start_count`,
//! `fas_machine_stop_count`) keep their exact names and labels. Everything else is new and carries
//! an `app` label.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http::response;
use crate::reload::{Reload, SharedToken};
use crate::status::{Health, StatusBoard};
use crate::trigger::Triggers;

/// Go name: reconciliations by outcome (`status` = create, destroy, start, stop, no_scale).
pub const RECONCILE_COUNT: &str = "fas_reconcile_count";
/// Go name: machine starts by result (`status` = ok, failed).
pub const MACHINE_START_COUNT: &str = "fas_machine_start_count";
/// Go name: machine stops by result (`status` = ok, failed).
pub const MACHINE_STOP_COUNT: &str = "fas_machine_stop_count";
/// New: machine creates by result (`app`, `status` = ok, failed, skipped).
pub const MACHINE_CREATE_COUNT: &str = "fas_machine_create_count";
/// New: machine destroys by result (`app`, `status` = ok, failed, skipped).
pub const MACHINE_DESTROY_COUNT: &str = "fas_machine_destroy_count";
/// New: machine suspends by result (`app`, `status` = ok, failed, skipped).
pub const MACHINE_SUSPEND_COUNT: &str = "fas_machine_suspend_count";
/// New: machines of the app's process group by state (`app`, `state`), as last listed.
pub const MACHINES: &str = "fas_machines";
/// New: evaluated targets (`app`, `count` = created|started, `bound` = min|max).
pub const TARGET: &str = "fas_target_machine_count";
/// New: the last collected value of each metric (`app`, `metric`).
pub const METRIC_VALUE: &str = "fas_metric_value";
/// New: collection latency in seconds (`app`, `metric`).
pub const COLLECT_DURATION: &str = "fas_collect_duration_seconds";
/// New: collection failures (`app`, `metric`).
pub const COLLECT_FAILURES: &str = "fas_collect_failures_total";
/// New: collections where a collector's `on-error` fallback stood in for a failed read (`app`,
/// `metric`, `mode` = hold|value).
pub const FALLBACK: &str = "fas_collect_fallback_total";
/// New: Fly API call latency in seconds (`op`).
pub const API_CALL_DURATION: &str = "fas_api_call_duration_seconds";
/// New: Fly API call failures (`op`).
pub const API_CALL_FAILURES: &str = "fas_api_call_failures_total";
/// New: duration of one app's reconciliation in seconds (`app`).
pub const RECONCILE_DURATION: &str = "fas_reconcile_duration_seconds";
/// New: reconciliations by outcome per app (`app`, `status`: the Go statuses plus skipped_deploy,
/// skipped_error, skipped_shutdown).
pub const APP_RECONCILE_COUNT: &str = "fas_app_reconcile_count";
/// New: unix time of the last reconciliation that completed without error (`app`).
pub const LAST_SUCCESS: &str = "fas_last_successful_reconcile_timestamp_seconds";
/// New: collections where a Prometheus query returned several series and the first was used
/// (`app`, `metric`); emitted by `fas-collect`.
pub use fas_collect::MULTIPLE_SERIES_TOTAL as COLLECT_MULTIPLE_SERIES;
/// New: actions a dry run planned and did not carry out (`app`, `kind`).
pub const DRY_RUN_ACTIONS: &str = "fas_dry_run_actions_total";
/// New: configuration reloads by result (`result` = ok, error).
pub const CONFIG_RELOADS: &str = "fas_config_reloads_total";
/// New: batches of creates whose machines all ended `failed` (`app`): a clone that cannot boot.
pub const CREATES_ALL_FAILED: &str = "fas_creates_all_failed_total";
/// New: apps whose lock this replica holds (coordination through PostgreSQL, `crate::coord`).
pub const OWNED_APPS: &str = "fas_owned_apps";
/// New: app locks this replica acquired.
pub const LOCK_ACQUISITIONS: &str = "fas_lock_acquisitions_total";
/// New: app locks this replica lost with its session (not the ones it released to share).
pub const LOCK_LOSSES: &str = "fas_lock_losses_total";
/// New: saves of an app's state to PostgreSQL (`result` = ok, fenced: the lock was no longer
/// held, error), `crate::store`.
pub const STATE_SAVES: &str = "fas_state_saves_total";
/// New: loads of an app's state when this replica took it (`result` = found, empty, error).
pub const STATE_LOADS: &str = "fas_state_loads_total";

/// The `app` label value of `app`'s series: one shared allocation per app for all of its series
/// (about twenty), instead of a copy of the name in each. The recorder keeps every series it saw,
/// so the few bytes an app leaves here when it leaves the fleet are of the same kind.
pub fn app_label(app: &str) -> metrics::SharedString {
    static LABELS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<Arc<str>>>> =
        std::sync::OnceLock::new();
    let mut labels = LABELS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let label = match labels.get(app) {
        Some(l) => l.clone(),
        None => {
            let l: Arc<str> = Arc::from(app);
            labels.insert(l.clone());
            l
        }
    };
    metrics::SharedString::from(label)
}

/// Histogram buckets (seconds) shared by the latency histograms.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How long a gauge that is no longer set stays in `/metrics`, for a configuration: longer than
/// the longest gap between two ticks of an app still managed (`3 × interval + timeout +` the
/// in-flight grace), so only the gauges of an app that left the wildcard list go.
pub fn gauge_idle_timeout(config: &crate::config::Config) -> Duration {
    config.interval * 3 + config.timeout + crate::tick::IN_FLIGHT_GRACE
}

/// Installs the process-wide Prometheus recorder and returns the handle that renders it. Gauges
/// not set for `gauge_idle` leave the output (the per-app gauges of an app no longer managed);
/// counters and histograms stay.
pub fn install_recorder(gauge_idle: Duration) -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .context("histogram buckets")?
        .idle_timeout(metrics_util::MetricKindMask::GAUGE, Some(gauge_idle))
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).context("installing the metrics recorder")?;
    describe();
    register_go_counters();
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(RECONCILE_COUNT, "Reconciliations by outcome (Go name)");
    describe_counter!(MACHINE_START_COUNT, "Machine starts by result (Go name)");
    describe_counter!(MACHINE_STOP_COUNT, "Machine stops by result (Go name)");
    describe_counter!(MACHINE_CREATE_COUNT, "Machine creates by result");
    describe_counter!(MACHINE_DESTROY_COUNT, "Machine destroys by result");
    describe_counter!(MACHINE_SUSPEND_COUNT, "Machine suspends by result");
    describe_gauge!(MACHINES, "Machines of the process group by state");
    describe_gauge!(TARGET, "Evaluated target machine counts");
    describe_gauge!(METRIC_VALUE, "Last collected metric values");
    describe_histogram!(COLLECT_DURATION, "Metric collection latency");
    describe_counter!(COLLECT_FAILURES, "Metric collection failures");
    describe_counter!(
        FALLBACK,
        "Failed collections where an on-error fallback value was used"
    );
    describe_histogram!(API_CALL_DURATION, "Fly API call latency");
    describe_counter!(API_CALL_FAILURES, "Fly API call failures");
    describe_histogram!(RECONCILE_DURATION, "Duration of one app reconciliation");
    describe_counter!(APP_RECONCILE_COUNT, "Reconciliations by outcome, per app");
    describe_gauge!(
        LAST_SUCCESS,
        "Unix time of the last successful reconciliation"
    );
    describe_counter!(
        COLLECT_MULTIPLE_SERIES,
        "Collections where several series came back and the first was used"
    );
    describe_counter!(
        DRY_RUN_ACTIONS,
        "Actions a dry run planned and did not carry out"
    );
    describe_counter!(CONFIG_RELOADS, "Configuration reloads by result");
    describe_counter!(
        CREATES_ALL_FAILED,
        "Batches of created machines that all ended failed"
    );
}

/// Exports the Go counters at 0 from the start, so that the first event of each series is seen by
/// `increase()` and `rate()` (a series that appears with its first event has no earlier sample).
fn register_go_counters() {
    for status in ["create", "destroy", "start", "stop", "no_scale"] {
        metrics::counter!(RECONCILE_COUNT, "status" => status).increment(0);
    }
    for name in [MACHINE_START_COUNT, MACHINE_STOP_COUNT] {
        for status in ["ok", "failed"] {
            metrics::counter!(name, "status" => status).increment(0);
        }
    }
}

/// Awaits one Fly API call, recording its latency and, when it failed, a failure.
pub async fn timed_api_call<T, E>(
    op: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = tokio::time::Instant::now();
    let result = call.await;
    metrics::histogram!(API_CALL_DURATION, "op" => op).record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!(API_CALL_FAILURES, "op" => op).increment(1);
    }
    result
}

/// The counter of one kind of machine call (the Go names for start and stop).
pub const fn machine_count_metric(kind: fas_reconcile::ActionKind) -> &'static str {
    use fas_reconcile::ActionKind as K;
    match kind {
        K::Start => MACHINE_START_COUNT,
        K::Stop => MACHINE_STOP_COUNT,
        K::Create => MACHINE_CREATE_COUNT,
        K::Destroy => MACHINE_DESTROY_COUNT,
        K::Suspend => MACHINE_SUSPEND_COUNT,
    }
}

/// Binds the listener for `/metrics` and `/healthz`; returns the bound address (useful with port 0).
/// An unspecified IPv6 address (`:9090` means `[::]:9090`, dual-stack as in Go) falls back to
/// `0.0.0.0` on hosts without IPv6.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            TcpListener::bind(v4).await.with_context(|| {
                format!("binding the metrics listener on {addr} ({e}) and on {v4}")
            })
        }
        Err(e) => Err(e).with_context(|| format!("binding the metrics listener on {addr}")),
    }
}

/// What the metrics listener serves besides `/metrics`.
#[derive(Debug)]
pub struct Endpoints {
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Where `POST /trigger` records the apps to wake (shared with the loop).
    pub triggers: Arc<Triggers>,
    /// The bearer token of `/trigger` and `/-/reload`; `None` turns both off (404). A reload
    /// replaces it.
    pub trigger_token: SharedToken,
    /// What `POST /-/reload` runs; `None`: 404.
    pub reload: Option<Arc<dyn Reload>>,
    /// The decision record and the loop's liveness.
    pub board: Arc<StatusBoard>,
    /// `/healthz` answers 503 when the loop completed nothing for this long
    /// (`3 × interval + timeout`).
    pub stuck_after: Duration,
    /// When the process started serving (the loop's liveness counts from here until its first
    /// progress).
    pub since: tokio::time::Instant,
    /// The coordination of replicas, when on: `/status` shows this replica's id and owned apps.
    pub coordinator: Option<Arc<crate::coord::Coordinator>>,
}

impl Endpoints {
    /// The endpoints of a reconciler: its board, its configuration's trigger token and
    /// `3 × interval + timeout` as the stuck limit.
    pub fn new(
        metrics: PrometheusHandle,
        triggers: Arc<Triggers>,
        reconciler: &crate::tick::Reconciler,
    ) -> Endpoints {
        let config = reconciler.config();
        Endpoints {
            metrics,
            triggers,
            trigger_token: SharedToken::new(config.trigger_token.clone()),
            reload: None,
            board: reconciler.board().clone(),
            stuck_after: config.interval * 3 + config.timeout,
            since: tokio::time::Instant::now(),
            coordinator: reconciler.coordinator().cloned(),
        }
    }
}

/// Serves `/metrics` (Prometheus text), `/healthz` and `/trigger` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, endpoints: Endpoints, shutdown: CancellationToken) {
    let endpoints = Arc::new(endpoints);
    let upkeep = {
        let handle = endpoints.metrics.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => handle.run_upkeep(),
                }
            }
        })
    };
    crate::http::serve(listener, shutdown, move |req| {
        let endpoints = endpoints.clone();
        async move { route(req, &endpoints).await }
    })
    .await;
    upkeep.abort();
}

/// `POST /-/reload`: the trigger's bearer token; 200 with the new configuration's warnings, or
/// 422 with every problem (the running configuration stays).
fn reload(req: &Request<Incoming>, endpoints: &Endpoints) -> Response<Full<Bytes>> {
    let (Some(token), Some(reloader)) = (endpoints.trigger_token.get(), &endpoints.reload) else {
        return response(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    };
    if req.method() != hyper::Method::POST {
        return response(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use POST\n");
    }
    let header = req.headers().get(hyper::header::AUTHORIZATION);
    if !crate::trigger::authorized(header.map(|h| h.as_bytes()), &token) {
        return response(
            StatusCode::UNAUTHORIZED,
            "application/json",
            "{\"error\":\"missing or wrong bearer token\"}\n",
        );
    }
    let (status, body) = match reloader.reload() {
        Ok(warnings) => (
            StatusCode::OK,
            serde_json::json!({"result": "ok", "warnings": warnings}),
        ),
        Err(problems) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({"result": "error", "problems": problems}),
        ),
    };
    response(status, "application/json", format!("{body}\n"))
}

fn health_response(health: Health) -> Response<Full<Bytes>> {
    match health {
        Health::Ok => response(StatusCode::OK, "text/plain", "ok\n"),
        Health::Unhealthy(why) => response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("{why}\n"),
        ),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_string_pretty(value) {
        Ok(body) => response(StatusCode::OK, "application/json", body),
        Err(e) => response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("rendering the status: {e}\n"),
        ),
    }
}

async fn route(req: Request<Incoming>, endpoints: &Endpoints) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/" => response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            crate::page::render_with(
                &endpoints.board.snapshot(),
                endpoints
                    .coordinator
                    .as_ref()
                    .map(|c| c.page_view())
                    .as_ref(),
                std::time::SystemTime::now(),
            ),
        ),
        "/metrics" => response(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            endpoints.metrics.render(),
        ),
        "/healthz" => health_response(
            endpoints
                .board
                .health(endpoints.since, endpoints.stuck_after),
        ),
        "/readyz" => health_response(endpoints.board.readiness()),
        "/status" => {
            let mut status = serde_json::json!({
                "generated_at": crate::status::rfc3339(std::time::SystemTime::now()),
                "apps": endpoints.board.snapshot(),
            });
            // With coordination only: this replica's id, session and owned apps.
            if let Some(c) = &endpoints.coordinator {
                status["replica"] = c.status_json();
            }
            json(&status)
        }
        p if p.starts_with("/status/") => {
            let app = &p["/status/".len()..];
            match endpoints.board.app(app) {
                Some(status) => json(&status),
                None => response(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    format!("unknown app: {app}\n"),
                ),
            }
        }
        "/trigger" => {
            let token = endpoints.trigger_token.get();
            crate::trigger::handle(req, &endpoints.triggers, token.as_ref()).await
        }
        "/-/reload" => reload(&req, endpoints),
        _ => response(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

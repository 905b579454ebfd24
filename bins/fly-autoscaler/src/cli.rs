//! The commands of the binary, in the fixed order of `main` (linkerd2-proxy style): tracing; load
//! and validate config (every problem listed); build clients; start the metrics server; spawn the
//! loop; wait for SIGINT/SIGTERM; drain within a grace period.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use fas_collect::Collector;
use fas_flyapi::{Client, ClientConfig};
use secrecy::ExposeSecret as _;

use crate::config::{self, CollectorConfig, Config, LogFormat, Purpose, Sources};
use crate::reload::{Reload as _, Reloader};
use crate::report::error_chain;
use crate::tick::{self, Reconciler};
use crate::trigger::Triggers;
use crate::{schedule, telemetry};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long in-flight work may take to finish after SIGINT/SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// `fly-autoscaler <version> (commit <sha>)`.
pub fn version_line() -> String {
    let commit = option_env!("FAS_GIT_COMMIT").unwrap_or("unknown");
    format!("fly-autoscaler {VERSION} (commit {commit})")
}

/// Maps a clap error to the Go exit codes: usage when no command (2), help (0), unknown command or
/// argument (`ERROR: …`, 1).
pub fn clap_exit(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            let rendered = e.render().to_string();
            let msg = rendered.trim_start_matches("error: ").trim_end();
            eprintln!("ERROR: {msg}");
            ExitCode::from(1)
        }
    }
}

/// The process environment as a map (the only place that reads it, with `main`).
#[allow(
    clippy::disallowed_methods,
    reason = "the one place that reads the whole environment (clippy.toml)"
)]
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Builds a multi-threaded runtime and runs `fut` on it.
pub fn run_async(fut: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(fut)
}

/// Installs the tracing subscriber: JSON lines on stderr without timestamps (Fly adds them) by
/// default, or human-readable text; debug level when `verbose`. `RUST_LOG` overrides the filter.
pub fn init_logging(format: LogFormat, verbose: bool) {
    init_logging_at(format, if verbose { "debug" } else { "info" });
}

/// [`init_logging`] with an explicit default level (the demo keeps the terminal for its own view).
#[allow(
    clippy::disallowed_methods,
    reason = "RUST_LOG is read where the subscriber is installed, as tracing documents"
)]
pub fn init_logging_at(format: LogFormat, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}

fn load(sources: &Sources, purpose: Purpose) -> anyhow::Result<Config> {
    config::load(sources, purpose).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `serve`: run until SIGINT/SIGTERM, then drain and exit 0.
pub async fn serve(sources: Sources) -> anyhow::Result<()> {
    // Signal handlers first, so that a signal during start-up also exits cleanly.
    let signals = Signals::install()?;
    let config = load(&sources, Purpose::Serve)?;
    init_logging(config.log_format, config.verbose);
    let handle = telemetry::install_recorder(telemetry::gauge_idle_timeout(&config))?;
    let shutdown = CancellationToken::new();
    let (reconciler, listener) = prepare(config).await?;
    // Replicas share the apps through PostgreSQL advisory locks (docs/high-availability.md).
    // The locks are released only after the loop drained: no other replica takes an app while
    // this one's calls are in flight.
    let coord_stop = CancellationToken::new();
    let started = reconciler.config();
    if let Some(url) = &started.postgres_url {
        // Read at start only (a reload keeps them); the keepalives follow the heartbeat.
        let policy = crate::coord::CoordPolicy::from_knobs(
            started.postgres_heartbeat,
            started.postgres_query_timeout,
            started.postgres_slack,
        );
        if started.dry_run {
            info!(
                "dry run with postgres-url: this replica takes no app lock (the live replicas keep acting) and shadows every app"
            );
        }
        let coord = crate::coord::Coordinator::start(url, policy, coord_stop.clone())?;
        coord.set_shadow(started.dry_run);
        reconciler.set_coordinator(coord);
    }
    drop(started);
    let triggers = Arc::new(Triggers::new());
    let mut endpoints = telemetry::Endpoints::new(handle, triggers.clone(), &reconciler);
    let reloader = Arc::new(Reloader::new(
        sources,
        reconciler.clone(),
        endpoints.trigger_token.clone(),
    ));
    endpoints.reload = Some(reloader.clone());
    let metrics = tokio::spawn(telemetry::serve(listener, endpoints, shutdown.clone()));
    let loop_task = tokio::spawn(schedule::run_with(reconciler, triggers, shutdown.clone()));
    let mut signals = signals;
    while signals.wait().await? == Signal::Reload {
        // Validated in full first; on any problem the running configuration stays.
        let reloader = reloader.clone();
        let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
    }
    info!(grace = ?SHUTDOWN_GRACE, "shutting down: no new work; letting calls in flight finish");
    shutdown.cancel();
    match tokio::time::timeout(SHUTDOWN_GRACE, loop_task).await {
        Ok(Ok(result)) => result?,
        Ok(Err(join)) => return Err(anyhow::anyhow!("reconciliation loop panicked: {join}")),
        Err(_) => warn!("grace period over; exiting with work in flight"),
    }
    coord_stop.cancel();
    metrics.abort();
    info!("stopped");
    Ok(())
}

/// Builds clients and binds the metrics listener (reporting the bound address).
pub async fn prepare(config: Config) -> anyhow::Result<(Arc<Reconciler>, tokio::net::TcpListener)> {
    config.log_warnings();
    let reconciler = build_reconciler(config)?;
    let listener = telemetry::bind(reconciler.config().metrics_address).await?;
    let local = listener.local_addr().context("metrics listener address")?;
    info!(address = %local, "serving /metrics, /healthz, /readyz, /status and /trigger");
    Ok((Arc::new(reconciler), listener))
}

/// The collectors built from the configuration.
pub fn build_collectors(config: &Config) -> anyhow::Result<Vec<Arc<dyn Collector>>> {
    config
        .collectors
        .iter()
        .map(|c| -> anyhow::Result<Arc<dyn Collector>> {
            Ok(match c {
                CollectorConfig::Prometheus(p) => Arc::new(
                    fas_collect::PrometheusCollector::new(p.clone())
                        .with_context(|| format!("prometheus collector `{}`", p.metric_name))?,
                ),
                CollectorConfig::Temporal(t) => Arc::new(
                    fas_collect::TemporalCollector::new(t.clone())
                        .with_context(|| format!("temporal collector `{}`", t.metric_name))?,
                ),
            })
        })
        .collect()
}

/// The Fly API client built from the configuration (`api_token` must be set).
pub fn build_client(config: &Config) -> anyhow::Result<Client> {
    let token = config
        .api_token
        .as_ref()
        .context("api token required")?
        .expose_secret()
        .to_owned();
    let mut cc = ClientConfig::new(token);
    cc.machines_base_url.clone_from(&config.flaps_base_url);
    cc.graphql_base_url.clone_from(&config.graphql_base_url);
    Client::new(cc).context("building the Fly API client")
}

/// The reconciler of `serve`, `plan` and the demo: the Fly API client and the collectors.
pub fn build_reconciler(config: Config) -> anyhow::Result<Reconciler> {
    let client = build_client(&config)?;
    let collectors = build_collectors(&config)?;
    Ok(Reconciler::new(
        Arc::new(config),
        Arc::new(client),
        collectors,
    ))
}

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGINT or SIGTERM: drain and exit.
    Stop,
    /// SIGHUP: reload the configuration.
    Reload,
}

/// SIGINT, SIGTERM and SIGHUP handlers.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    async fn wait(&mut self) -> anyhow::Result<Signal> {
        Ok(tokio::select! {
            _ = self.int.recv() => Signal::Stop,
            _ = self.term.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        })
    }
}

#[derive(Debug, Serialize)]
struct EvalBounds {
    min: Option<u32>,
    max: Option<u32>,
}

#[derive(Debug, Serialize)]
struct EvalOutput {
    created: EvalBounds,
    started: EvalBounds,
}

/// The JSON that `eval` prints for the evaluated targets (`null` where not configured). Created bounds are
/// at least 1, as the Go version prints them (the last machine is never destroyed: it is the clone source).
pub fn eval_json(targets: &fas_reconcile::Targets) -> String {
    let bounds = |b: &Option<fas_reconcile::Bounds>, floor: u32| EvalBounds {
        min: b.as_ref().map(|b| b.min.max(floor)),
        max: b.as_ref().map(|b| b.max.max(floor)),
    };
    let out = EvalOutput {
        created: bounds(&targets.created, 1),
        started: bounds(&targets.started, 0),
    };
    // Serialising plain structs of options cannot fail.
    serde_json::to_string_pretty(&out).unwrap_or_default()
}

/// `eval`: collect once, evaluate, print JSON. The only Machines API call is a list, when an
/// expression reads a machine-count variable.
pub async fn eval(sources: Sources) -> anyhow::Result<()> {
    let config = load(&sources, Purpose::Eval)?;
    init_logging(config.log_format, config.verbose);
    config.log_warnings();
    let collectors = build_collectors(&config)?;
    let values = tick::collect_all(&collectors, &config.app_name)
        .await
        .map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    let machines = match eval_counts_source(&config)? {
        None => None,
        Some(client) => {
            let listed = crate::fly::Fly::list_machines(&client, &config.app_name)
                .await
                .with_context(|| format!("listing the machines of `{}`", config.app_name))?;
            Some(listed.iter().map(crate::ops::to_domain).collect::<Vec<_>>())
        }
    };
    let ctx = crate::context::context(&config, std::time::SystemTime::now(), machines.as_deref());
    let targets =
        tick::evaluate(&config, &values, &ctx).map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    println!("{}", eval_json(&targets));
    Ok(())
}

/// The machine-count variables the configured expressions read (`started`, ...), sorted.
pub fn count_variables_used(config: &Config) -> Vec<String> {
    let mut used: Vec<String> = [&config.created, &config.started]
        .into_iter()
        .flatten()
        .flat_map(|e| [e.min.variables(), e.max.variables()])
        .flatten()
        .filter(|v| fas_expr::COUNT_VARIABLES.contains(&v.as_str()))
        .collect();
    used.sort();
    used.dedup();
    used
}

/// For `eval`: the client to list machines with when an expression reads a machine count
/// (`None`: no expression does), or an error naming the variables that cannot be provided
/// without an API token.
fn eval_counts_source(config: &Config) -> anyhow::Result<Option<Client>> {
    let used = count_variables_used(config);
    if used.is_empty() {
        return Ok(None);
    }
    if config.api_token.is_none() {
        anyhow::bail!(
            "cannot evaluate the machine-count variables {}: they come from the machine list, \
             which needs a Fly API token (set api-token or FAS_API_TOKEN)",
            used.iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    build_client(config).map(Some)
}

/// `plan`: collect, evaluate, list and plan once for each app; print the plan; change nothing.
pub async fn plan(sources: Sources, json: bool) -> anyhow::Result<()> {
    let config = load(&sources, Purpose::Serve)?;
    init_logging(config.log_format, config.verbose);
    config.log_warnings();
    let reconciler = build_reconciler(config)?;
    for app in reconciler.list_apps().await? {
        let plan = reconciler
            .plan_once(&app)
            .await
            .map_err(|e| anyhow::anyhow!("{app}: {}", error_chain(&e)))?;
        if json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            println!("app {app}\n{}", plan.render_table());
        }
    }
    Ok(())
}

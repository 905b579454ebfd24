//! The reconciliation loop: every interval, for every app, release check → collect → evaluate →
//! list → plan → execute → report.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use fas_collect::Collector;
use fas_flyapi::{Client, ClientConfig, ListMachinesOptions};
use fas_reconcile::{
    ActionKind, Bounds, ExecPolicy, NoteKind, Outcome, Plan, PlanKind, RegionCursor, Report,
    TargetHistory, Targets,
};
use futures_util::StreamExt as _;
use secrecy::ExposeSecret as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, error, info, info_span, warn};

use crate::config::{CollectorConfig, Config};
use crate::ops::{FlyOps, to_domain};
use crate::telemetry as m;

/// Why one app's tick did not get as far as a plan, or failed while running it.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The app's current release is being deployed; nothing is touched.
    #[error("release v{version} is {status}: deploy in progress, skipping")]
    DeployInProgress {
        /// Release version.
        version: i64,
        /// Release status (`running`).
        status: String,
    },
    /// The release status could not be read.
    #[error("reading the current release: {0}")]
    Release(#[source] Box<fas_flyapi::Error>),
    /// A metric could not be collected.
    #[error("collecting metric `{metric}`: {source}")]
    Collect {
        /// The metric name.
        metric: String,
        /// The collector's error.
        #[source]
        source: Box<fas_collect::CollectError>,
    },
    /// An expression could not be evaluated into a count.
    #[error("evaluating {key}: {source}")]
    Evaluate {
        /// The configuration key of the expression.
        key: &'static str,
        /// The expression error.
        #[source]
        source: Box<fas_expr::ExprError>,
    },
    /// The machines could not be listed.
    #[error("listing machines: {0}")]
    List(#[source] Box<fas_flyapi::Error>),
    /// The whole reconciliation took longer than the configured timeout.
    #[error("reconciliation timed out after {0:?}")]
    Timeout(Duration),
    /// Shutdown began before any machine was touched.
    #[error("shutting down before acting")]
    ShuttingDown,
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

/// Collects every metric for `app`, concurrently. Any failure fails the whole collection.
pub async fn collect_all(
    collectors: &[Arc<dyn Collector>],
    app: &str,
) -> Result<BTreeMap<String, f64>, TickError> {
    let results = futures_util::future::join_all(collectors.iter().map(|c| async move {
        let started = Instant::now();
        let result = c.collect(app).await;
        let name = c.metric_name().to_owned();
        metrics::histogram!(m::COLLECT_DURATION, "app" => app.to_owned(), "metric" => name.clone())
            .record(started.elapsed().as_secs_f64());
        match &result {
            Ok(v) => {
                metrics::gauge!(m::METRIC_VALUE, "app" => app.to_owned(), "metric" => name.clone())
                    .set(*v);
            }
            Err(_) => {
                metrics::counter!(m::COLLECT_FAILURES, "app" => app.to_owned(), "metric" => name.clone())
                    .increment(1);
            }
        }
        (name, result)
    }))
    .await;
    let mut values = BTreeMap::new();
    for (metric, result) in results {
        let value = result.map_err(|source| TickError::Collect {
            metric: metric.clone(),
            source: Box::new(source),
        })?;
        values.insert(metric, value);
    }
    Ok(values)
}

/// Evaluates the configured count expressions against collected values.
pub fn evaluate(config: &Config, values: &BTreeMap<String, f64>) -> Result<Targets, TickError> {
    let bounds = |exprs: &Option<crate::config::CountExprs>,
                  min_key: &'static str,
                  max_key: &'static str|
     -> Result<Option<Bounds>, TickError> {
        let Some(e) = exprs else { return Ok(None) };
        let min = e
            .min
            .eval_count(values)
            .map_err(|source| TickError::Evaluate {
                key: min_key,
                source: Box::new(source),
            })?;
        let max = e
            .max
            .eval_count(values)
            .map_err(|source| TickError::Evaluate {
                key: max_key,
                source: Box::new(source),
            })?;
        Ok(Some(Bounds { min, max }))
    };
    Ok(Targets {
        created: bounds(
            &config.created,
            "min-created-machine-count",
            "max-created-machine-count",
        )?,
        started: bounds(
            &config.started,
            "min-started-machine-count",
            "max-started-machine-count",
        )?,
    })
}

/// How long machine calls already in flight at an app's deadline may still take: one Fly API
/// request timeout (10 s by default) plus margin. Past it the tick is abandoned.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(15);

/// Shared state of the loop.
#[derive(Debug)]
pub struct Reconciler {
    config: Arc<Config>,
    client: Client,
    collectors: Vec<Arc<dyn Collector>>,
    apps: Mutex<HashMap<String, AppState>>,
}

/// What the loop remembers of one app between ticks.
#[derive(Debug, Default)]
struct AppState {
    /// The region rotation, explicit state of the planner.
    cursor: RegionCursor,
    /// States reported in `fas_machines`, so that a state that empties is reported as 0.
    reported_states: BTreeSet<String>,
    /// Recent targets, for the scale-down stabilization window (empty when the window is 0).
    history: TargetHistory,
}

/// What one app's tick did.
#[derive(Debug)]
pub struct TickOutcome {
    /// The plan that was made.
    pub plan: Plan,
    /// What happened to each action.
    pub report: Report,
}

impl Reconciler {
    /// A reconciler over the given clients.
    pub fn new(config: Arc<Config>, client: Client, collectors: Vec<Arc<dyn Collector>>) -> Self {
        Reconciler {
            config,
            client,
            collectors,
            apps: Mutex::new(HashMap::new()),
        }
    }

    /// One reconciliation of one app, bounded by the configured timeout. New machine actions stop
    /// being launched at the deadline or on `shutdown`; calls in flight finish within their own
    /// request timeout.
    pub async fn reconcile(
        &self,
        app: &str,
        shutdown: &CancellationToken,
    ) -> Result<TickOutcome, TickError> {
        let started = Instant::now();
        let timeout = self.config.timeout;
        let deadline = started + timeout;
        let result = tokio::time::timeout(
            timeout + IN_FLIGHT_GRACE,
            self.reconcile_inner(app, deadline, shutdown),
        )
        .await
        .unwrap_or(Err(TickError::Timeout(timeout)));
        metrics::histogram!(m::RECONCILE_DURATION, "app" => app.to_owned())
            .record(started.elapsed().as_secs_f64());
        let status = match &result {
            Ok(o) => o.plan.kind().as_str(),
            Err(TickError::DeployInProgress { .. }) => "skipped_deploy",
            Err(TickError::ShuttingDown) => "skipped_shutdown",
            Err(_) => "skipped_error",
        };
        metrics::counter!(m::APP_RECONCILE_COUNT, "app" => app.to_owned(), "status" => status)
            .increment(1);
        if result.is_ok() {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            metrics::gauge!(m::LAST_SUCCESS, "app" => app.to_owned()).set(now);
        }
        result
    }

    async fn reconcile_inner(
        &self,
        app: &str,
        deadline: tokio::time::Instant,
        shutdown: &CancellationToken,
    ) -> Result<TickOutcome, TickError> {
        let cfg = &*self.config;
        // Reading (release, metrics, machines) must end by the deadline; acting stops launching
        // new calls at the deadline.
        let timeout = cfg.timeout;
        // Nothing has been changed yet: a shutdown abandons the reading at once.
        let (values, targets, listed) = tokio::select! {
            r = tokio::time::timeout_at(deadline, self.observe(app)) => {
                r.unwrap_or(Err(TickError::Timeout(timeout)))?
            }
            () = shutdown.cancelled() => return Err(TickError::ShuttingDown),
        };
        let machines: Vec<_> = listed.iter().map(to_domain).collect();

        let (stabilized, plan) = {
            let mut apps = self.apps.lock().unwrap_or_else(PoisonError::into_inner);
            let state = apps.entry(app.to_owned()).or_default();
            let now = SystemTime::now();
            // Scale-down stabilization: plan with the highest max of the window (mins as evaluated).
            let stabilized = state.history.record(now, &targets, cfg.scale_down_window);
            let plan =
                fas_reconcile::plan(&machines, &stabilized, &cfg.policy(), state.cursor, now);
            state.cursor = plan.next_cursor;
            record_counts(app, &plan, &mut state.reported_states);
            (stabilized, plan)
        };
        log_plan(app, &values, &targets, &stabilized, &plan);

        let ops = FlyOps::new(&self.client, app, &listed);
        let policy = cfg
            .action_concurrency
            .map(|concurrency| ExecPolicy { concurrency })
            .unwrap_or_default();
        let stop = async {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = shutdown.cancelled() => {}
            }
        };
        let report = fas_reconcile::execute(&ops, &plan, &policy, stop).await;
        record_report(app, &plan, &report);
        log_report(app, &report);
        Ok(TickOutcome { plan, report })
    }

    /// What one tick would decide for `app` (release check, metrics, targets, list, plan) without
    /// acting and without touching the loop's per-app state (no stabilization history).
    pub async fn plan_once(&self, app: &str) -> Result<Plan, TickError> {
        let (_, targets, listed) = self.observe(app).await?;
        let machines: Vec<_> = listed.iter().map(to_domain).collect();
        Ok(fas_reconcile::plan(
            &machines,
            &targets,
            &self.config.policy(),
            RegionCursor::default(),
            SystemTime::now(),
        ))
    }

    /// Release check, metrics, targets and the machine list of one app.
    async fn observe(
        &self,
        app: &str,
    ) -> Result<(BTreeMap<String, f64>, Targets, Vec<fas_flyapi::Machine>), TickError> {
        let release = m::timed_api_call("current_release", self.client.current_release(app)).await;
        if let Some(r) = release.map_err(|e| TickError::Release(Box::new(e)))?
            && r.in_progress()
        {
            return Err(TickError::DeployInProgress {
                version: r.version,
                status: r.status,
            });
        }

        let values = collect_all(&self.collectors, app).await?;
        let targets = evaluate(&self.config, &values)?;
        record_targets(app, &targets);

        let listed = m::timed_api_call(
            "list",
            self.client
                .list_machines(app, &ListMachinesOptions::default()),
        )
        .await;
        let listed = listed.map_err(|e| TickError::List(Box::new(e)))?;
        Ok((values, targets, listed))
    }

    /// The apps to reconcile: the configured name, or the org's apps matching the wildcard.
    pub async fn list_apps(&self) -> anyhow::Result<Vec<String>> {
        let cfg = &*self.config;
        if !cfg.has_wildcard() {
            return Ok(vec![cfg.app_name.clone()]);
        }
        let org = cfg.org.as_deref().context("organization required")?;
        let pattern = wildcard_regex(&cfg.app_name)?;
        let apps = m::timed_api_call("org_apps", self.client.org_apps(org)).await;
        let mut names: Vec<String> = apps
            .with_context(|| format!("listing the apps of organization `{org}`"))?
            .into_iter()
            .map(|a| a.name)
            .filter(|n| pattern.is_match(n))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// `*` matches any run of characters; everything else is literal; the match is anchored.
pub fn wildcard_regex(pattern: &str) -> anyhow::Result<regex::Regex> {
    let body = pattern
        .split('*')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*");
    regex::Regex::new(&format!("^{body}$")).with_context(|| format!("app name pattern `{pattern}`"))
}

fn record_targets(app: &str, targets: &Targets) {
    for (count, bounds) in [("created", &targets.created), ("started", &targets.started)] {
        if let Some(b) = bounds {
            for (bound, v) in [("min", b.min), ("max", b.max)] {
                metrics::gauge!(m::TARGET, "app" => app.to_owned(), "count" => count, "bound" => bound)
                    .set(f64::from(v));
            }
        }
    }
}

fn record_counts(app: &str, plan: &Plan, reported: &mut BTreeSet<String>) {
    reported.extend(plan.counts.by_state.keys().cloned());
    for state in reported.iter() {
        let n = plan.counts.by_state.get(state).copied().unwrap_or(0);
        metrics::gauge!(m::MACHINES, "app" => app.to_owned(), "state" => state.clone())
            .set(f64::from(n));
    }
}

fn record_report(app: &str, plan: &Plan, report: &Report) {
    // A plan that wanted to act but could not (e.g. no machine to clone) is not counted as that
    // action, as in the Go version where it was an error.
    if plan.kind() == fas_reconcile::PlanKind::NoScale || !plan.actions.is_empty() {
        metrics::counter!(m::RECONCILE_COUNT, "status" => plan.kind().as_str()).increment(1);
    }
    let stats = report.stats();
    // The Go counters keep their exact labels (status ok|failed; a skipped action was never
    // attempted); the others carry the app and count skipped actions too.
    for kind in [ActionKind::Start, ActionKind::Stop] {
        let s = stats.of(kind);
        let name = m::machine_count_metric(kind);
        metrics::counter!(name, "status" => "ok").increment(u64::from(s.ok));
        metrics::counter!(name, "status" => "failed").increment(u64::from(s.failed));
    }
    for kind in [ActionKind::Create, ActionKind::Destroy, ActionKind::Suspend] {
        let s = stats.of(kind);
        let name = m::machine_count_metric(kind);
        for (status, n) in [("ok", s.ok), ("failed", s.failed), ("skipped", s.skipped)] {
            metrics::counter!(name, "app" => app.to_owned(), "status" => status)
                .increment(u64::from(n));
        }
    }
}

/// The `reconcile` line. When the scale-down window held a max above the evaluated one, `stabilized = true` and
/// `evaluated_targets` shows what the expressions gave (`targets` is always what the plan used).
fn log_plan(
    app: &str,
    values: &BTreeMap<String, f64>,
    evaluated: &Targets,
    stabilized: &Targets,
    plan: &Plan,
) {
    let metrics = serde_json::to_string(values).unwrap_or_default();
    let counts = serde_json::to_string(&plan.counts).unwrap_or_default();
    let targets = serde_json::to_string(&plan.targets).unwrap_or_default();
    let held = evaluated != stabilized;
    let evaluated =
        held.then(|| tracing::field::display(serde_json::to_string(evaluated).unwrap_or_default()));
    let actions = serde_json::to_string(&plan.actions).unwrap_or_default();
    let in_state = |s: &str| plan.counts.by_state.get(s).copied().unwrap_or(0);
    // Flat fields for log queries (the Go line had app, started/stopped counts and targets);
    // the JSON strings carry the whole picture.
    let bound = |b: &Option<Bounds>, min: bool| b.as_ref().map(|b| if min { b.min } else { b.max });
    info!(
        app,
        started = plan.counts.started,
        stopped = in_state("stopped"),
        suspended = in_state("suspended"),
        created = plan.counts.created,
        min_started = bound(&plan.targets.started, true),
        max_started = bound(&plan.targets.started, false),
        min_created = bound(&plan.targets.created, true),
        max_created = bound(&plan.targets.created, false),
        metrics = %metrics,
        counts = %counts,
        targets = %targets,
        stabilized = held,
        evaluated_targets = evaluated,
        decision = plan.kind().as_str(),
        actions = %actions,
        "reconcile"
    );
    for note in &plan.notes {
        warn!(app, note = %note, "plan note");
    }
}

fn log_report(app: &str, report: &Report) {
    for o in &report.outcomes {
        match &o.result {
            Outcome::Ok => debug!(app, action = %o.action, "action done"),
            Outcome::Failed(e) => error!(app, action = %o.action, error = %e, "action failed"),
            Outcome::Skipped => {
                warn!(app, action = %o.action, "action skipped (deadline or shutdown)")
            }
        }
    }
}

/// After a tick that changed the fleet but left a step for later (a create or destroy, which
/// preempts starts and stops as in the Go version, or a plan cut by a per-tick cap), the app is
/// reconciled again after this delay (or the interval, if shorter) instead of a whole interval.
pub const FOLLOW_UP: Duration = Duration::from_secs(2);

impl TickOutcome {
    /// Whether the app should be reconciled again soon: the tick made progress (at least one
    /// action succeeded, so a failing API is never hammered) and left work for another step.
    pub fn wants_follow_up(&self) -> bool {
        let progressed = self
            .report
            .outcomes
            .iter()
            .any(|o| matches!(o.result, Outcome::Ok));
        let more = matches!(self.plan.kind(), PlanKind::Create | PlanKind::Destroy)
            || self.plan.notes.iter().any(|n| n.kind == NoteKind::Capped);
        progressed && more
    }
}

/// Runs the loop until `shutdown` is cancelled. Returns once the tick in progress has drained.
pub async fn run(reconciler: Arc<Reconciler>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let cfg = reconciler.config.clone();
    let mut interval = tokio::time::interval(cfg.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let follow_up_delay = FOLLOW_UP.min(cfg.interval);
    let follow_up_timer = tokio::time::sleep(follow_up_delay);
    tokio::pin!(follow_up_timer);
    let mut follow_up: Vec<String> = Vec::new();
    let mut apps: Vec<String> = Vec::new();
    let mut apps_refreshed: Option<tokio::time::Instant> = None;
    let mut tick: u64 = 0;
    info!(
        app_name = %cfg.app_name,
        interval = ?cfg.interval,
        timeout = ?cfg.timeout,
        collectors = reconciler.collectors.len(),
        "reconciliation loop started"
    );
    loop {
        let (batch, is_follow_up) = tokio::select! {
            () = shutdown.cancelled() => break,
            _ = interval.tick() => {
                let due = apps_refreshed.is_none_or(|t| t.elapsed() >= cfg.app_list_refresh_interval);
                if due {
                    match reconciler.list_apps().await {
                        Ok(list) => {
                            if list != apps {
                                info!(apps = %list.join(","), "app list");
                            }
                            apps = list;
                            apps_refreshed = Some(tokio::time::Instant::now());
                        }
                        Err(e) => {
                            warn!(error = %format!("{e:#}"), "refreshing the app list failed; keeping the previous list")
                        }
                    }
                }
                follow_up.clear();
                (apps.clone(), false)
            }
            () = &mut follow_up_timer, if !follow_up.is_empty() => (std::mem::take(&mut follow_up), true),
        };
        tick += 1;
        let concurrency = cfg.concurrency.max(1);
        follow_up = futures_util::stream::iter(batch)
            .map(|app| {
                let reconciler = reconciler.clone();
                let shutdown = shutdown.clone();
                let span = info_span!("tick", app = %app, tick, follow_up = is_follow_up);
                async move {
                    let again = match reconciler.reconcile(&app, &shutdown).await {
                        Ok(outcome) => outcome.wants_follow_up(),
                        Err(e @ TickError::DeployInProgress { .. }) => {
                            warn!(error = %e, "skipped");
                            false
                        }
                        Err(e @ TickError::ShuttingDown) => {
                            info!(reason = %e, "skipped");
                            false
                        }
                        Err(e) => {
                            error!(error = %error_chain(&e), "reconciliation failed; nothing was changed by this step");
                            false
                        }
                    };
                    again.then_some(app)
                }
                .instrument(span)
            })
            .buffer_unordered(concurrency)
            .filter_map(std::future::ready)
            .collect()
            .await;
        if !follow_up.is_empty() {
            debug!(apps = %follow_up.join(","), delay = ?follow_up_delay, "follow-up tick scheduled");
            follow_up_timer
                .as_mut()
                .reset(tokio::time::Instant::now() + follow_up_delay);
        }
    }
    info!("reconciliation loop stopped");
    Ok(())
}

/// Renders an error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let msg = src.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = src.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matches_like_go() {
        let re = wildcard_regex("my-app-*").unwrap();
        assert!(re.is_match("my-app-1"));
        assert!(re.is_match("my-app-"));
        assert!(!re.is_match("xmy-app-1"));
        let re = wildcard_regex("a.b*").unwrap();
        assert!(re.is_match("a.bc"));
        assert!(!re.is_match("axbc"), "dots are literal");
        let re = wildcard_regex("*-worker").unwrap();
        assert!(re.is_match("queue-worker"));
        assert!(!re.is_match("queue-worker-2"));
    }

    /// The tick future must be Send so that it can run on the multi-threaded runtime.
    #[allow(dead_code)]
    fn tick_future_is_send(r: &Reconciler, t: &CancellationToken) {
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&r.reconcile("app", t));
    }
}

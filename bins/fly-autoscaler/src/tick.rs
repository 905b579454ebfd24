//! One tick of one app: observe (release check, metrics, evaluate, list; the list before the
//! metrics when an expression reads a machine count) → stabilize → plan →
//! execute → report. What the loop does next is decided from its result by
//! [`crate::schedule::decide`]; this module never sleeps or schedules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use fas_collect::Collector;
use fas_reconcile::{
    Action, Bounds, ExecPolicy, MachineOps, Note, NoteKind, OpError, OpErrorKind, Plan,
    RegionCursor, Report, TargetHistory, Targets,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::config::Config;
use crate::creates::RecentCreates;
use crate::fly::{AppInfo, Fly};
use crate::ops::to_domain;
use crate::report::{
    log_plan, log_report, record_counts, record_dry_run, record_report, record_targets,
};
use crate::status::{MetricRecord, StatusBoard, TickRecord};
use crate::telemetry as m;

/// Why one app's tick did not get as far as a plan. Every variant is raised before any machine
/// was changed: once the plan runs, a tick always returns its [`TickOutcome`].
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The app's current release is being deployed; nothing is touched.
    #[error(
        "release{} is {status}: deploy in progress, skipping",
        version.map(|v| format!(" v{v}")).unwrap_or_default()
    )]
    DeployInProgress {
        /// Release version (unknown when the status came from the org's app list).
        version: Option<i64>,
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
    /// Reading (release, metrics, list) did not finish within the configured timeout.
    #[error("reconciliation timed out after {0:?}")]
    Timeout(Duration),
    /// Shutdown began before any machine was touched.
    #[error("shutting down before acting")]
    ShuttingDown,
    /// Coordination of replicas is on and this replica does not hold the app's lock on a
    /// confirmed session ([`crate::coord`]): the plan is not executed.
    #[error("lock not confirmed: another replica may own this app; not acting")]
    LockNotConfirmed,
    /// Coordination is on and the app was just taken over, but its stored state (scale-down
    /// window, cooldown, fallbacks) could not be read: deciding without it could undo what the
    /// window holds, so the tick waits for the next one.
    #[error("loading the app's stored state: {0}")]
    StateNotLoaded(String),
}

/// Collects every metric for `app`, concurrently. Any failure fails the whole collection.
pub async fn collect_all(
    collectors: &[Arc<dyn Collector>],
    app: &str,
) -> Result<BTreeMap<String, f64>, TickError> {
    values_or_error(collect_each(collectors, app).await)
}

/// The values of a collection, or the error of its first failed metric.
fn values_or_error(
    results: Vec<(String, Result<f64, fas_collect::CollectError>)>,
) -> Result<BTreeMap<String, f64>, TickError> {
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

/// Collects every metric for `app`, concurrently; one result per collector, in order.
pub async fn collect_each(
    collectors: &[Arc<dyn Collector>],
    app: &str,
) -> Vec<(String, Result<f64, fas_collect::CollectError>)> {
    futures_util::future::join_all(collectors.iter().map(|c| async move {
        let started = Instant::now();
        let result = c.collect(app).await;
        let name = c.metric_name().to_owned();
        metrics::histogram!(m::COLLECT_DURATION, "app" => m::app_label(app), "metric" => name.clone())
            .record(started.elapsed().as_secs_f64());
        match &result {
            Ok(v) => {
                metrics::gauge!(m::METRIC_VALUE, "app" => m::app_label(app), "metric" => name.clone())
                    .set(*v);
            }
            Err(_) => {
                metrics::counter!(m::COLLECT_FAILURES, "app" => m::app_label(app), "metric" => name.clone())
                    .increment(1);
            }
        }
        (name, result)
    }))
    .await
}

/// Evaluates the configured count expressions against collected values and the context
/// variables ([`crate::context`]).
pub fn evaluate(
    config: &Config,
    values: &BTreeMap<String, f64>,
    ctx: &fas_expr::Context,
) -> Result<Targets, TickError> {
    let bounds = |exprs: &Option<crate::config::CountExprs>,
                  min_key: &'static str,
                  max_key: &'static str|
     -> Result<Option<Bounds>, TickError> {
        let Some(e) = exprs else { return Ok(None) };
        let eval = |expr: &fas_expr::Expr, key: &'static str| {
            expr.eval_count_in(values, ctx)
                .map_err(|source| TickError::Evaluate {
                    key,
                    source: Box::new(source),
                })
        };
        Ok(Some(Bounds {
            min: eval(&e.min, min_key)?,
            max: eval(&e.max, max_key)?,
        }))
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

/// What the decision of an app remembers between ticks: the recent targets (scale-down
/// window), the last scale-up (steps, cooldown) and the region rotation.
#[derive(Debug, Default)]
pub struct DecisionState {
    /// Recent targets, for the scale-down stabilization window (empty when the window is 0).
    pub history: TargetHistory,
    /// The last scale-up, for the rules against flapping (steps, `scale-down-cooldown`).
    pub behavior: fas_reconcile::BehaviorState,
    /// The region rotation, explicit state of the planner.
    pub cursor: RegionCursor,
}

/// One tick's decision from its evaluated targets, pure (the time is an argument): scale-down
/// stabilization (`scale-down-window`), the rules against flapping (steps from the current
/// counts, cooldown after a scale-up), then [`fas_reconcile::plan`]; `state` records the plan.
/// Returns the targets handed to the planner and the plan. The serve loop and `simulate` both
/// decide through it.
pub fn decide(
    cfg: &Config,
    policy: &fas_reconcile::Policy,
    state: &mut DecisionState,
    machines: &[fas_reconcile::Machine],
    evaluated: &Targets,
    now: SystemTime,
) -> (Targets, Plan) {
    // Scale-down stabilization: plan with the highest max of the window (mins as evaluated).
    let stabilized = state.history.record(now, evaluated, cfg.scale_down_window);
    // Against flapping: per-tick steps from the current counts, no scale-down in the cooldown
    // after a scale-up (a plan with a create or a start, recorded below).
    let current = fas_reconcile::Current::of(machines, policy);
    let stabilized = state
        .behavior
        .adjust(&cfg.behavior, &stabilized, current, now);
    let plan = fas_reconcile::plan(machines, &stabilized, policy, state.cursor, now);
    state.behavior.record_plan(&plan, now);
    state.cursor = plan.next_cursor;
    (stabilized, plan)
}

/// How long machine calls already in flight at an app's deadline may still take: one Fly API
/// request timeout (10 s by default) plus margin. At `timeout + IN_FLIGHT_GRACE` (the tick's
/// hard deadline) a call still unanswered is abandoned and reported as a timeout whose outcome is
/// unknown; the calls already answered are reported as usual.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(15);

/// What one app's tick did.
#[derive(Debug)]
pub struct TickOutcome {
    /// The collected metric values.
    pub values: BTreeMap<String, f64>,
    /// The targets the expressions gave (before stabilization).
    pub evaluated: Targets,
    /// The plan that was made (its targets are the stabilized ones).
    pub plan: Plan,
    /// What happened to each action (empty in a dry run).
    pub report: Report,
    /// Whether the plan was only recorded, not carried out (`--dry-run`).
    pub dry_run: bool,
}

/// What the loop remembers of one app between ticks.
#[derive(Debug, Default)]
struct AppState {
    /// Target history, rules against flapping and region rotation ([`decide`]).
    decision: DecisionState,
    /// States reported in `fas_machines`, so that a state that empties is reported as 0.
    reported_states: BTreeSet<String>,
    /// Machines this process created that the list may not show yet.
    creates: RecentCreates,
    /// Starts that timed out or lost their answer: the list may still show those machines stopped.
    starts: crate::pending::PendingStarts,
    /// Unix time of the last tick that completed without error, re-exported every tick so that
    /// the gauge of an app still managed never goes idle.
    last_success: Option<f64>,
    /// Per metric, what its `on-error` fallback remembers (last good value, failures in a row).
    /// (A [`crate::named::Named`]: a `BTreeMap` node per app is ten times the size.)
    fallbacks: crate::named::Named<crate::fallback::FallbackState>,
    /// With coordination on, the ownership number ([`crate::coord::Coordinator::ownership`])
    /// under which this state was loaded from the database.
    restored_for: Option<u64>,
}

impl AppState {
    /// What the database keeps of this state ([`crate::store`]), with the app's last records.
    fn stored(&self, records: Vec<TickRecord>) -> crate::store::StoredApp {
        let (now, wall) = (Instant::now(), SystemTime::now());
        crate::store::StoredApp {
            v: crate::store::DOCUMENT_VERSION,
            history: self.decision.history.clone(),
            behavior: self.decision.behavior,
            cursor: self.decision.cursor,
            fallbacks: self
                .fallbacks
                .iter()
                .map(|(m, f)| (m.to_owned(), f.to_stored(now, wall)))
                .collect(),
            records,
            creates: self.creates.to_stored(now, wall),
            pending_starts: self.starts.to_stored(now, wall),
        }
    }

    /// Takes the stored state in place of the remembered one (the database has the last
    /// owner's).
    fn restore(&mut self, doc: &crate::store::StoredApp) {
        let (now, wall) = (Instant::now(), SystemTime::now());
        self.decision = DecisionState {
            history: doc.history.clone(),
            behavior: doc.behavior,
            cursor: doc.cursor,
        };
        self.fallbacks = doc
            .fallbacks
            .iter()
            .map(|(m, f)| {
                let state = crate::fallback::FallbackState::from_stored(f, now, wall);
                (m.clone(), state)
            })
            .collect();
        self.creates = RecentCreates::from_stored(&doc.creates, now, wall);
        self.starts = crate::pending::PendingStarts::from_stored(&doc.pending_starts, now, wall);
    }
}

/// The release statuses of the org's apps, as the last app-list read gave them (wildcard mode).
#[derive(Debug)]
struct ReleaseView {
    at: Instant,
    status: HashMap<String, Option<String>>,
}

/// What a configuration reload replaces as one: the configuration and the clients built from it.
/// A tick takes one snapshot at its start and keeps it to its end.
#[derive(Debug)]
pub struct Runtime {
    /// The configuration.
    pub config: Arc<Config>,
    /// The Fly API seam.
    pub fly: Arc<dyn Fly>,
    /// The collectors.
    pub collectors: Vec<Arc<dyn Collector>>,
}

/// The reconciler of every app: the configuration, the Fly API seam, the collectors (swapped as
/// one by a reload) and what is remembered per app between ticks (kept across reloads).
#[derive(Debug)]
pub struct Reconciler {
    runtime: RwLock<Arc<Runtime>>,
    generation: AtomicU64,
    apps: Mutex<HashMap<String, AppState>>,
    releases: Mutex<Option<ReleaseView>>,
    board: Arc<StatusBoard>,
    coord: std::sync::OnceLock<Arc<crate::coord::Coordinator>>,
}

impl Reconciler {
    /// A reconciler over `fly` (the Fly API client, or a fake in tests).
    pub fn new(
        config: Arc<Config>,
        fly: Arc<dyn Fly>,
        collectors: Vec<Arc<dyn Collector>>,
    ) -> Self {
        Reconciler {
            runtime: RwLock::new(Arc::new(Runtime {
                config,
                fly,
                collectors,
            })),
            generation: AtomicU64::new(0),
            apps: Mutex::new(HashMap::new()),
            releases: Mutex::new(None),
            board: Arc::new(StatusBoard::new()),
            coord: std::sync::OnceLock::new(),
        }
    }

    /// Turns the coordination of replicas on (once; `postgres-url`): from then on a plan is
    /// executed only while this replica holds the app's lock on a confirmed session.
    pub fn set_coordinator(&self, coord: Arc<crate::coord::Coordinator>) {
        let _ = self.coord.set(coord);
    }

    /// The coordinator, when coordination is on.
    pub fn coordinator(&self) -> Option<&Arc<crate::coord::Coordinator>> {
        self.coord.get()
    }

    /// The decision record and liveness of the loop (shared with the HTTP endpoints).
    pub fn board(&self) -> &Arc<StatusBoard> {
        &self.board
    }

    /// The app's release status from the last app-list read, when that read is recent enough to
    /// stand for this tick's release check (younger than one interval plus the timeout):
    /// `Some(None)` = no release. `None` = ask Fly for this app.
    fn listed_release(&self, app: &str) -> Option<Option<String>> {
        let view = self.releases.lock().unwrap_or_else(PoisonError::into_inner);
        let view = view.as_ref()?;
        let config = self.config();
        let fresh_for = config.interval + config.timeout;
        if view.at.elapsed() > fresh_for {
            return None;
        }
        view.status.get(app).cloned()
    }

    /// The current configuration and clients.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the configuration and clients (a reload). Ticks already running finish with the
    /// old ones; per-app state (target history, recent creates, region cursor) is kept.
    pub fn replace(&self, runtime: Runtime) {
        *self.runtime.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(runtime);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// How many times [`Reconciler::replace`] ran (the loop re-reads its policy when it changes).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.runtime().config.clone()
    }

    /// The number of collectors.
    pub fn collector_count(&self) -> usize {
        self.runtime().collectors.len()
    }

    fn with_state<T>(&self, app: &str, f: impl FnOnce(&mut AppState) -> T) -> T {
        let mut apps = self.apps.lock().unwrap_or_else(PoisonError::into_inner);
        f(apps.entry(app.to_owned()).or_default())
    }

    /// Makes every collector read its source again: the collections that start after this call
    /// never answer from a cache older than it (a push trigger; the ticks it wakes share one fresh
    /// grouped query).
    pub fn invalidate_collectors(&self) {
        for c in &self.runtime().collectors {
            c.invalidate();
        }
    }

    /// Forgets everything remembered of `app` (it left the wildcard list). Its per-app gauges are
    /// no longer set and leave `/metrics` after the exporter's idle timeout.
    pub fn forget(&self, app: &str) {
        let mut apps = self.apps.lock().unwrap_or_else(PoisonError::into_inner);
        apps.remove(app);
    }

    /// The apps with remembered state (tests check that a removed app is forgotten).
    pub fn remembered_apps(&self) -> Vec<String> {
        let apps = self.apps.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = apps.keys().cloned().collect();
        names.sort();
        names
    }

    /// One reconciliation of one app. Reading ends by the configured timeout; then new machine
    /// actions stop being launched at that deadline or on `shutdown`, and calls in flight are
    /// abandoned at the hard deadline ([`IN_FLIGHT_GRACE`] later). Once any machine call was
    /// sent, the tick returns its outcome, whatever was cut.
    pub async fn reconcile(
        &self,
        app: &str,
        shutdown: &CancellationToken,
    ) -> Result<TickOutcome, TickError> {
        self.reconcile_as(app, "interval", shutdown).await
    }

    /// [`Reconciler::reconcile`], recording `trigger` (what started the tick) in the decision
    /// record ([`crate::status`]).
    pub async fn reconcile_as(
        &self,
        app: &str,
        trigger: &'static str,
        shutdown: &CancellationToken,
    ) -> Result<TickOutcome, TickError> {
        let started = Instant::now();
        let started_at = SystemTime::now();
        let rt = self.runtime();
        let deadline = started + rt.config.timeout;
        let mut metric_records = BTreeMap::new();
        let result = self
            .reconcile_inner(&rt, app, deadline, shutdown, &mut metric_records)
            .await;
        let elapsed = started.elapsed();
        metrics::histogram!(m::RECONCILE_DURATION, "app" => m::app_label(app))
            .record(elapsed.as_secs_f64());
        let mut record = TickRecord::new(started_at, elapsed, trigger);
        record.metrics = metric_records.into_iter().collect();
        let point = match &result {
            Ok(o) => {
                record = record.with_plan(&o.plan, (!o.dry_run).then_some(&o.report));
                record.evaluated = Some(o.evaluated);
                Some(StatusBoard::point(started_at, &o.values, &o.plan))
            }
            Err(e) => {
                record.reason = Some(crate::report::error_chain(e));
                None
            }
        };
        self.board.record(app, record, point);
        let status = match &result {
            Ok(o) => o.plan.kind().as_str(),
            Err(TickError::DeployInProgress { .. }) => "skipped_deploy",
            Err(TickError::ShuttingDown) => "skipped_shutdown",
            Err(TickError::LockNotConfirmed) => "skipped_lock",
            Err(_) => "skipped_error",
        };
        if let Some(coord) = self.coord.get()
            && !rt.config.dry_run
            && !matches!(
                result,
                Err(TickError::LockNotConfirmed | TickError::StateNotLoaded(_))
            )
        {
            self.save_state(coord, app).await;
        }
        metrics::counter!(m::APP_RECONCILE_COUNT, "app" => m::app_label(app), "status" => status)
            .increment(1);
        let last_success = self.with_state(app, |s| {
            if result.is_ok() {
                s.last_success = Some(crate::status::unix(SystemTime::now()));
            }
            s.last_success
        });
        if let Some(t) = last_success {
            metrics::gauge!(m::LAST_SUCCESS, "app" => m::app_label(app)).set(t);
        }
        result
    }

    async fn reconcile_inner(
        &self,
        rt: &Runtime,
        app: &str,
        deadline: Instant,
        shutdown: &CancellationToken,
        metric_records: &mut BTreeMap<String, MetricRecord>,
    ) -> Result<TickOutcome, TickError> {
        let cfg = &*rt.config;
        if let Some(coord) = self.coord.get() {
            tokio::time::timeout_at(deadline, self.restore_state(coord, app))
                .await
                .unwrap_or(Err(TickError::Timeout(cfg.timeout)))?;
        }
        // Nothing has been changed yet: a shutdown abandons the reading at once.
        let (values, evaluated, listed) = tokio::select! {
            r = tokio::time::timeout_at(deadline, self.observe(rt, app, metric_records)) => {
                r.unwrap_or(Err(TickError::Timeout(cfg.timeout)))?
            }
            () = shutdown.cancelled() => return Err(TickError::ShuttingDown),
        };
        let mut machines: Vec<_> = listed.iter().map(to_domain).collect();
        let policy = cfg.policy();

        let (stabilized, plan) = self.with_state(app, |state| {
            // Machines created by earlier ticks that the list does not show yet still count.
            let seen = state
                .creates
                .observe(&machines, &policy.process_group, Instant::now());
            machines.extend(seen.unlisted);
            // So do starts of unknown outcome while the list shows their machines stopped.
            state.starts.observe(&mut machines, Instant::now());
            let (stabilized, mut plan) = decide(
                cfg,
                &policy,
                &mut state.decision,
                &machines,
                &evaluated,
                SystemTime::now(),
            );
            if !seen.all_failed.is_empty() {
                metrics::counter!(m::CREATES_ALL_FAILED, "app" => m::app_label(app)).increment(1);
                plan.notes.push(Note {
                    kind: NoteKind::CreatesFailed,
                    message: format!(
                        "every machine created by an earlier tick ended `failed` ({}): the clone \
                         cannot boot; check the app's image and config (failed machines are the \
                         first destroyed when over max)",
                        seen.all_failed.join(", ")
                    ),
                });
            }
            record_counts(app, &plan, &mut state.reported_states);
            (stabilized, plan)
        });
        log_plan(app, &values, &evaluated, &stabilized, &plan);
        if cfg.dry_run {
            // Shadow mode: the plan is logged, counted and recorded as "would"; nothing is sent.
            record_dry_run(app, &plan);
            return Ok(TickOutcome {
                values,
                evaluated,
                plan,
                report: Report::default(),
                dry_run: true,
            });
        }

        // Coordination of replicas: act only while holding the app's lock on a confirmed session.
        let _acting = match self.coord.get() {
            Some(c) => Some(c.begin_acting(app).ok_or(TickError::LockNotConfirmed)?),
            None => None,
        };
        let ops = Bounded {
            inner: rt.fly.machine_ops(app, &listed),
            hard_deadline: deadline + IN_FLIGHT_GRACE,
        };
        let exec = cfg
            .action_concurrency
            .map(|concurrency| ExecPolicy { concurrency })
            .unwrap_or_default();
        let stop = async {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = shutdown.cancelled() => {}
                () = crate::coord::lost(self.coord.get(), app) => {}
            }
        };
        let report = fas_reconcile::execute(&ops, &plan, &exec, stop).await;
        let created = report
            .outcomes
            .iter()
            .filter_map(|o| match (&o.action, &o.created_id) {
                (Action::Create { region, .. }, Some(id)) => Some((id.clone(), region.clone())),
                _ => None,
            });
        let created: Vec<_> = created.collect();
        let unknown_starts = crate::pending::unknown_starts(&report);
        self.with_state(app, |state| {
            state.creates.record(Instant::now(), created);
            state.starts.record(Instant::now(), unknown_starts);
        });
        record_report(app, &plan, &report);
        log_report(app, &report);
        Ok(TickOutcome {
            values,
            evaluated,
            plan,
            report,
            dry_run: false,
        })
    }

    /// With coordination on: when this replica took `app` since its state was last loaded (a new
    /// ownership number), reads the app's state from the database in place of the remembered
    /// one, and its decision records. A row that does not decode is reported and ignored (the
    /// app starts fresh); a failed read fails the tick before anything is decided.
    async fn restore_state(
        &self,
        coord: &crate::coord::Coordinator,
        app: &str,
    ) -> Result<(), TickError> {
        let Some(token) = coord.ownership(app) else {
            // Not ours now: the plan will not be executed (`begin_acting`).
            return Ok(());
        };
        if self.with_state(app, |s| s.restored_for == Some(token)) {
            return Ok(());
        }
        if !coord.has_store() {
            // No store on this session: what this replica remembers is all there is.
            self.with_state(app, |s| s.restored_for = Some(token));
            return Ok(());
        }
        let store = m::STATE_LOADS;
        let loaded = match coord.load_state(app).await {
            Ok(l) => l,
            Err(e) => {
                metrics::counter!(store, "result" => "error").increment(1);
                return Err(TickError::StateNotLoaded(e.to_string()));
            }
        };
        let doc = match loaded {
            None => {
                metrics::counter!(store, "result" => "empty").increment(1);
                None
            }
            Some(row) => match serde_json::from_str::<crate::store::StoredApp>(&row.state) {
                Ok(doc) => {
                    metrics::counter!(store, "result" => "found").increment(1);
                    tracing::info!(
                        app,
                        from = %row.holder,
                        age_s = (crate::status::unix(SystemTime::now()) - row.updated_at).max(0.0),
                        window_entries = doc.history.len(),
                        records = doc.records.len(),
                        "stored state loaded: the scale-down window and cooldown continue"
                    );
                    Some(doc)
                }
                Err(e) => {
                    metrics::counter!(store, "result" => "error").increment(1);
                    warn!(app, error = %e, "stored state does not decode; starting this app fresh");
                    None
                }
            },
        };
        let fresh = crate::store::StoredApp::default();
        self.with_state(app, |s| {
            s.restore(doc.as_ref().unwrap_or(&fresh));
            s.restored_for = Some(token);
        });
        if let Some(doc) = doc
            && !doc.records.is_empty()
        {
            self.board.restore(app, doc.records);
        }
        Ok(())
    }

    /// With coordination on: writes `app`'s state and last records to the database (only while
    /// this replica's session holds the app's lock). A failure is logged and counted; the tick's
    /// result does not change.
    async fn save_state(&self, coord: &crate::coord::Coordinator, app: &str) {
        if !coord.has_store() {
            return;
        }
        let records = self.board.records(app);
        let json = self.with_state(app, |s| serde_json::to_string(&s.stored(records)));
        let json = match json {
            Ok(j) => j,
            Err(e) => {
                warn!(app, error = %e, "cannot encode the app's state; not saved");
                return;
            }
        };
        let saves = m::STATE_SAVES;
        match coord.save_state(app, &json).await {
            Ok(crate::coord::Saved::Ok) => {
                metrics::counter!(saves, "result" => "ok").increment(1);
            }
            Ok(crate::coord::Saved::Fenced) => {
                metrics::counter!(saves, "result" => "fenced").increment(1);
                warn!(
                    app,
                    "state not saved: this replica's session no longer holds the app's lock"
                );
            }
            Ok(crate::coord::Saved::NoStore) => {}
            Err(e) => {
                metrics::counter!(saves, "result" => "error").increment(1);
                warn!(app, error = %e, "state not saved");
            }
        }
    }

    /// What one tick would decide for `app` (release check, metrics, targets, list, plan) without
    /// acting and without touching the loop's per-app state (no stabilization history).
    pub async fn plan_once(&self, app: &str) -> Result<Plan, TickError> {
        let rt = self.runtime();
        let (_, targets, listed) = self.observe(&rt, app, &mut BTreeMap::new()).await?;
        let machines: Vec<_> = listed.iter().map(to_domain).collect();
        Ok(fas_reconcile::plan(
            &machines,
            &targets,
            &rt.config.policy(),
            RegionCursor::default(),
            SystemTime::now(),
        ))
    }

    /// Release check, metrics, targets and the machine list of one app.
    async fn observe(
        &self,
        rt: &Runtime,
        app: &str,
        metric_records: &mut BTreeMap<String, MetricRecord>,
    ) -> Result<(BTreeMap<String, f64>, Targets, Vec<fas_flyapi::Machine>), TickError> {
        // Wildcard mode: the org's app list, read once per interval, carries every app's release
        // status; a tick then costs one Fly call (the machine list). Otherwise ask for this app.
        match self.listed_release(app) {
            Some(Some(status)) if status == "running" => {
                return Err(TickError::DeployInProgress {
                    version: None,
                    status,
                });
            }
            Some(_) => {}
            None => {
                let release = rt.fly.current_release(app).await;
                if let Some(r) = release.map_err(|e| TickError::Release(Box::new(e)))?
                    && r.in_progress()
                {
                    return Err(TickError::DeployInProgress {
                        version: Some(r.version),
                        status: r.status,
                    });
                }
            }
        }

        // An expression that reads a machine count needs the list before evaluation: list
        // first. Otherwise the order (and the calls) of the Go version: metrics, then the list
        // after evaluation (a failed collection costs no list call).
        let counts_first = rt.config.uses_counts();
        let listed = if counts_first {
            Some(list(rt, app).await?)
        } else {
            None
        };
        let results = collect_each(&rt.collectors, app).await;
        // Each collector's `on-error` policy: a fallback value may stand in for a failure (logged,
        // counted, recorded with the error); any other failure fails the tick.
        let now = Instant::now();
        let decisions = self.with_state(app, |s| {
            crate::fallback::decide_all(&rt.config.on_error, &mut s.fallbacks, results, now)
        });
        let results = crate::fallback::record(app, decisions, metric_records);
        let values = values_or_error(results)?;
        // The count variables come from this tick's list (only when an expression reads one).
        let machines: Option<Vec<_>> = listed.as_ref().map(|l| l.iter().map(to_domain).collect());
        let ctx = crate::context::context(&rt.config, SystemTime::now(), machines.as_deref());
        let targets = evaluate(&rt.config, &values, &ctx)?;
        record_targets(app, &targets);
        let listed = match listed {
            Some(listed) => listed,
            None => list(rt, app).await?,
        };
        Ok((values, targets, listed))
    }

    /// The apps to reconcile: the configured name, or the org's apps matching the wildcard.
    pub async fn list_apps(&self) -> anyhow::Result<Vec<String>> {
        let rt = self.runtime();
        let cfg = &*rt.config;
        if !cfg.has_wildcard() {
            return Ok(vec![cfg.app_name.clone()]);
        }
        let org = cfg.org.as_deref().context("organization required")?;
        let pattern = wildcard_regex(&cfg.app_name)?;
        let apps: Vec<AppInfo> = rt
            .fly
            .org_apps(org)
            .await
            .with_context(|| format!("listing the apps of organization `{org}`"))?
            .into_iter()
            .filter(|a| pattern.is_match(&a.name))
            .collect();
        let mut names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
        names.sort();
        names.dedup();
        let status = apps
            .into_iter()
            .map(|a| (a.name, a.release_status))
            .collect();
        *self.releases.lock().unwrap_or_else(PoisonError::into_inner) = Some(ReleaseView {
            at: Instant::now(),
            status,
        });
        Ok(names)
    }
}

/// The app's machine list, or the tick's error.
async fn list(rt: &Runtime, app: &str) -> Result<Vec<fas_flyapi::Machine>, TickError> {
    rt.fly
        .list_machines(app)
        .await
        .map_err(|e| TickError::List(Box::new(e)))
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

/// The app's [`MachineOps`] with every call cut at the tick's hard deadline, so that the executor
/// always returns a report (the calls answered before the cut keep their outcome).
struct Bounded<'a> {
    inner: Box<dyn MachineOps + 'a>,
    hard_deadline: Instant,
}

impl Bounded<'_> {
    async fn call<T>(&self, call: impl Future<Output = Result<T, OpError>>) -> Result<T, OpError> {
        match tokio::time::timeout_at(self.hard_deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(OpError::new(
                OpErrorKind::Timeout,
                "abandoned at the tick's hard deadline (timeout + in-flight grace); \
                 whether the call took effect is unknown until the next list",
            )),
        }
    }
}

#[async_trait::async_trait]
impl MachineOps for Bounded<'_> {
    async fn create(
        &self,
        source: &str,
        region: &str,
        skip_launch: bool,
    ) -> Result<String, OpError> {
        self.call(self.inner.create(source, region, skip_launch))
            .await
    }

    async fn start(&self, id: &str) -> Result<(), OpError> {
        self.call(self.inner.start(id)).await
    }

    async fn stop(&self, id: &str) -> Result<(), OpError> {
        self.call(self.inner.stop(id)).await
    }

    async fn suspend(&self, id: &str) -> Result<(), OpError> {
        self.call(self.inner.suspend(id)).await
    }

    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        self.call(self.inner.destroy(id)).await
    }
}

/// Logs a tick that did not get to a plan, at the level its cause deserves.
pub fn log_tick_error(e: &TickError) {
    use crate::report::error_chain;
    match e {
        TickError::DeployInProgress { .. }
        | TickError::LockNotConfirmed
        | TickError::StateNotLoaded(_) => {
            warn!(error = %e, "skipped")
        }
        TickError::ShuttingDown => tracing::info!(reason = %e, "skipped"),
        _ => tracing::error!(
            error = %error_chain(e),
            "reconciliation failed; nothing was changed by this step"
        ),
    }
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

//! What a tick tells the outside: the metrics it records and the log lines it writes. All metric
//! names are in [`crate::telemetry`]; the `reconcile` line is the one "state of the world" event
//! per app tick.

use std::collections::{BTreeMap, BTreeSet};

use fas_reconcile::{ActionKind, Bounds, Outcome, Plan, PlanKind, Report, Targets};
use tracing::{debug, error, info, warn};

use crate::telemetry as m;

/// Sets `fas_target_machine_count` for the evaluated targets.
pub fn record_targets(app: &str, targets: &Targets) {
    for (count, bounds) in [("created", &targets.created), ("started", &targets.started)] {
        if let Some(b) = bounds {
            for (bound, v) in [("min", b.min), ("max", b.max)] {
                metrics::gauge!(m::TARGET, "app" => m::app_label(app), "count" => count, "bound" => bound)
                    .set(f64::from(v));
            }
        }
    }
}

/// Sets `fas_machines` per state; a state reported before and absent now is set to 0.
pub fn record_counts(app: &str, plan: &Plan, reported: &mut BTreeSet<String>) {
    reported.extend(plan.counts.by_state.keys().cloned());
    for state in reported.iter() {
        let n = plan.counts.by_state.get(state).copied().unwrap_or(0);
        metrics::gauge!(m::MACHINES, "app" => m::app_label(app), "state" => state.clone())
            .set(f64::from(n));
    }
}

/// Whether `fas_reconcile_count{status}` counts this plan: every plan except a create that could
/// not plan a single clone (no machine to clone), which was an error in the Go version. A start
/// plan with no stopped machine to start is counted, as Go counted the bulk start.
pub fn counts_as_reconcile(plan: &Plan) -> bool {
    !(plan.kind() == PlanKind::Create && plan.actions.is_empty())
}

/// Records the Go counters and the per-app machine call counters of an executed plan.
pub fn record_report(app: &str, plan: &Plan, report: &Report) {
    if counts_as_reconcile(plan) {
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
            metrics::counter!(name, "app" => m::app_label(app), "status" => status)
                .increment(u64::from(n));
        }
    }
}

/// A dry-run plan: `fas_reconcile_count{status}` as a real tick would count it, and
/// `fas_dry_run_actions_total{app,kind}` for the actions that were not carried out.
pub fn record_dry_run(app: &str, plan: &Plan) {
    if counts_as_reconcile(plan) {
        metrics::counter!(m::RECONCILE_COUNT, "status" => plan.kind().as_str()).increment(1);
    }
    for pa in &plan.actions {
        metrics::counter!(m::DRY_RUN_ACTIONS, "app" => m::app_label(app), "kind" => pa.action.kind().as_str())
            .increment(1);
    }
    if !plan.actions.is_empty() {
        info!(
            app,
            would = plan.actions.len(),
            "dry run: the plan is not carried out"
        );
    }
}

/// The `reconcile` line. When the scale-down window held a max above the evaluated one,
/// `stabilized = true` and `evaluated_targets` shows what the expressions gave (`targets` is
/// always what the plan used).
pub fn log_plan(
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

/// One line per failed or skipped action (debug for successes), and a summary line when the
/// tick was cut short after changing machines, so a cut tick never reads as "nothing changed".
pub fn log_report(app: &str, report: &Report) {
    for o in &report.outcomes {
        match &o.result {
            Outcome::Ok => debug!(app, action = %o.action, "action done"),
            Outcome::Failed(e) => error!(app, action = %o.action, error = %e, "action failed"),
            Outcome::Skipped => {
                warn!(app, action = %o.action, "action skipped (deadline or shutdown)")
            }
        }
    }
    let stats = report.stats();
    let kinds = [
        ActionKind::Create,
        ActionKind::Destroy,
        ActionKind::Start,
        ActionKind::Stop,
        ActionKind::Suspend,
    ];
    let (ok, failed, skipped) = kinds.iter().fold((0, 0, 0), |(o, f, s), k| {
        let k = stats.of(*k);
        (o + k.ok, f + k.failed, s + k.skipped)
    });
    if skipped > 0 {
        warn!(
            app,
            ok,
            failed,
            skipped,
            "tick cut short (deadline or shutdown): {ok} calls succeeded and changed machines, {failed} failed, {skipped} not sent"
        );
    }
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

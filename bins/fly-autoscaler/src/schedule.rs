//! The loop: when each app is reconciled. Each app has its own due time; at most `concurrency`
//! ticks run at once and never two of one app; after each tick the pure [`decide`] says when the
//! app is due again ([`Next`], in the shape of kube-rs's `Action`); a push trigger
//! ([`crate::trigger`]) brings an app's tick forward (coalesced with a running tick, at most one
//! per `trigger-min-gap`); the wildcard app list is refreshed on its own period; shutdown stops
//! new ticks and drains the running ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fas_reconcile::{NoteKind, Outcome, PlanKind};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info, info_span, warn};

use crate::tick::{Reconciler, TickError, TickOutcome, log_tick_error};
use crate::trigger::Triggers;

/// After a tick that changed the fleet but left a step for later (a create or destroy, which
/// preempts starts and stops as in the Go version, or a plan cut by a per-tick cap), the app is
/// reconciled again after this delay (or the interval, if shorter) instead of a whole interval.
pub const FOLLOW_UP: Duration = Duration::from_secs(2);

/// Why an app's next tick is due when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The regular interval after the previous tick started.
    Interval,
    /// A follow-up: the last tick made progress and left a step for later.
    FollowUp,
    /// The last tick was skipped (deploy, error, shutdown) and the app waits a whole interval.
    AfterSkip,
    /// The app was just added (start, or it joined the wildcard list): due at once.
    New,
    /// A push trigger (`POST /trigger`) brought the tick forward.
    Trigger,
}

impl Why {
    /// The name used in logs (`trigger` field).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Interval => "interval",
            Self::FollowUp => "follow_up",
            Self::AfterSkip => "interval_after_skip",
            Self::New => "new",
            Self::Trigger => "trigger",
        }
    }
}

/// When an app is due again, and why. Private fields with `const fn` constructors, like
/// kube-rs's `Action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    at: Instant,
    why: Why,
}

impl Next {
    /// Due at `at` for the regular interval.
    pub const fn interval(at: Instant) -> Next {
        Next {
            at,
            why: Why::Interval,
        }
    }

    /// Due at `at` for a follow-up.
    pub const fn follow_up(at: Instant) -> Next {
        Next {
            at,
            why: Why::FollowUp,
        }
    }

    /// Due at `at` after a skipped tick.
    pub const fn after_skip(at: Instant) -> Next {
        Next {
            at,
            why: Why::AfterSkip,
        }
    }

    /// Due at `at` as a new app.
    pub const fn new_app(at: Instant) -> Next {
        Next { at, why: Why::New }
    }

    /// Due at `at` because of a push trigger.
    pub const fn triggered(at: Instant) -> Next {
        Next {
            at,
            why: Why::Trigger,
        }
    }

    /// When.
    pub const fn at(&self) -> Instant {
        self.at
    }

    /// Why.
    pub const fn why(&self) -> Why {
        self.why
    }
}

/// The timing policy of the loop (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopPolicy {
    /// Time between two regular ticks of an app, counted from the start of the previous one.
    pub interval: Duration,
    /// Delay of a follow-up tick after the end of the tick that asked for it (capped at `interval`).
    pub follow_up: Duration,
    /// Period of the wildcard app-list refresh.
    pub app_list_refresh: Duration,
    /// Ticks running at once (at least 1).
    pub concurrency: usize,
    /// Least time between the starts of two triggered ticks of one app.
    pub trigger_min_gap: Duration,
}

impl LoopPolicy {
    /// The policy of a configuration.
    pub fn of(config: &crate::config::Config) -> LoopPolicy {
        LoopPolicy {
            interval: config.interval,
            follow_up: FOLLOW_UP,
            app_list_refresh: config.app_list_refresh_interval,
            concurrency: config.concurrency.max(1),
            trigger_min_gap: config.trigger_min_gap,
        }
    }
}

/// Whether a tick's outcome asks for a follow-up: it made progress (at least one action
/// succeeded, so a failing API is never hammered) and left work for another step.
pub fn wants_follow_up(outcome: &TickOutcome) -> bool {
    let progressed = outcome
        .report
        .outcomes
        .iter()
        .any(|o| matches!(o.result, Outcome::Ok));
    let more = matches!(outcome.plan.kind(), PlanKind::Create | PlanKind::Destroy)
        || outcome
            .plan
            .notes
            .iter()
            .any(|n| n.kind == NoteKind::Capped);
    progressed && more
}

/// When the app of a tick that started at `started` and ended at `finished` is due again.
///
/// - A follow-up is due `min(follow_up, interval)` after the end of the tick.
/// - Otherwise the next regular tick is due one interval after the start of this one (a tick
///   that overran the interval is followed at once, never by a burst of missed ticks).
/// - A skipped tick (deploy, error, shutdown) waits a whole interval, as in the Go version:
///   no backoff beyond it, no early retry.
pub fn decide(
    result: &Result<TickOutcome, TickError>,
    started: Instant,
    finished: Instant,
    policy: &LoopPolicy,
) -> Next {
    let regular = (started + policy.interval).max(finished);
    match result {
        Ok(outcome) if wants_follow_up(outcome) => {
            Next::follow_up(finished + policy.follow_up.min(policy.interval))
        }
        Ok(_) => Next::interval(regular),
        Err(_) => Next::after_skip(regular),
    }
}

/// When a triggered tick of an app may start: now, unless its last triggered tick started less
/// than `min_gap` ago. Never later than the app's next tick anyway (a trigger only brings a tick
/// forward).
pub fn trigger_at(
    now: Instant,
    last_triggered: Option<Instant>,
    min_gap: Duration,
    next: Next,
) -> Next {
    let earliest = last_triggered.map_or(now, |t| (t + min_gap).max(now));
    if earliest < next.at() {
        Next::triggered(earliest)
    } else {
        next
    }
}

/// One app known to the loop.
#[derive(Debug)]
struct Slot {
    next: Next,
    running: bool,
    /// A trigger came while the tick ran: one more tick right after it (coalesced).
    retrigger: bool,
    /// Start of the last triggered tick (for `trigger-min-gap`).
    last_triggered: Option<Instant>,
}

/// Runs the loop until `shutdown` is cancelled, without push triggers (see [`run_with`]).
pub async fn run(reconciler: Arc<Reconciler>, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with(reconciler, Arc::new(Triggers::new()), shutdown).await
}

/// Runs the loop until `shutdown` is cancelled, taking push triggers from `triggers` (the loop
/// tells it which apps exist). Returns once the ticks in progress have drained (each stops
/// launching machine calls at once and waits only for the calls in flight).
pub async fn run_with(
    reconciler: Arc<Reconciler>,
    triggers: Arc<Triggers>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut policy = LoopPolicy::of(&reconciler.config());
    let mut wildcard = reconciler.config().has_wildcard();
    let mut generation = reconciler.generation();
    let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
    let mut running: JoinSet<(String, Next)> = JoinSet::new();
    let mut refresh_at = Instant::now();
    debug_assert!(policy.app_list_refresh > Duration::ZERO);
    let mut tick: u64 = 0;
    info!(
        app_name = %reconciler.config().app_name,
        interval = ?policy.interval,
        timeout = ?reconciler.config().timeout,
        collectors = reconciler.collector_count(),
        "reconciliation loop started"
    );
    loop {
        if reconciler.generation() != generation {
            // A reload: the new timing applies from the next ticks; the app list is read again
            // at once (the app name or organization may have changed).
            generation = reconciler.generation();
            let config = reconciler.config();
            policy = LoopPolicy::of(&config);
            wildcard = config.has_wildcard();
            refresh_at = Instant::now();
            info!(interval = ?policy.interval, concurrency = policy.concurrency, "the loop uses the reloaded configuration");
        }
        let now = Instant::now();
        if now >= refresh_at {
            // Single-app mode lists nothing: the list is the configured name.
            refresh_apps(&reconciler, &mut slots, now, policy.interval).await;
            triggers.set_known(slots.keys());
            if let Some(c) = reconciler.coordinator() {
                // A dry run holds no lock: it acts on nothing, and holding an app would keep the
                // live replicas from acting on it. It ticks every app (see `owns`).
                c.set_shadow(reconciler.config().dry_run);
                c.set_apps(slots.keys());
            }
            let names: Vec<String> = slots.keys().cloned().collect();
            reconciler.board().set_apps(&names);
            // The org's app list also carries every app's release status, which stands for the
            // ticks' release checks for one interval: it is read once per interval (or per
            // `app-list-refresh-interval` if shorter); a failed read retries after an interval
            // and the ticks ask Fly per app meanwhile.
            refresh_at = if wildcard {
                now + policy.interval.min(policy.app_list_refresh)
            } else {
                far_future(now)
            };
        }
        // Launch every due app, earliest first, while there is room.
        let now = Instant::now();
        while running.len() < policy.concurrency {
            let Some((app, slot)) = slots
                .iter_mut()
                .filter(|(a, s)| !s.running && s.next.at() <= now && owns(&reconciler, a))
                .min_by_key(|(_, s)| s.next.at())
            else {
                break;
            };
            slot.running = true;
            tick += 1;
            let why = slot.next.why();
            if why == Why::Trigger {
                slot.last_triggered = Some(now);
            }
            let app = app.clone();
            let reconciler = reconciler.clone();
            let shutdown = shutdown.clone();
            let span = info_span!("tick", app = %app, tick, trigger = why.as_str(), follow_up = why == Why::FollowUp);
            running.spawn(
                async move {
                    let started = Instant::now();
                    let result = reconciler.reconcile_as(&app, why.as_str(), &shutdown).await;
                    if let Err(e) = &result {
                        log_tick_error(e);
                    }
                    let next = decide(&result, started, Instant::now(), &policy);
                    if next.why() == Why::FollowUp {
                        debug!(delay = ?next.at().saturating_duration_since(Instant::now()), "follow-up tick scheduled");
                    }
                    (app, next)
                }
                .instrument(span),
            );
        }
        let wake = slots
            .iter()
            .filter(|(a, s)| !s.running && owns(&reconciler, a))
            .map(|(_, s)| s.next.at())
            .min()
            .filter(|_| running.len() < policy.concurrency)
            .unwrap_or_else(|| far_future(now))
            .min(refresh_at)
            .min(recheck_ownership_at(&reconciler, now));
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = ownership_changed(&reconciler) => {}
            () = triggers.notified() => {
                let now = Instant::now();
                let woken = triggers.take();
                if !woken.is_empty() {
                    // Triggered ticks read fresh metrics; the apps woken together share one
                    // fresh grouped query.
                    reconciler.invalidate_collectors();
                }
                for app in woken {
                    let Some(slot) = slots.get_mut(&app) else { continue };
                    if slot.running {
                        slot.retrigger = true;
                    } else {
                        slot.next = trigger_at(now, slot.last_triggered, policy.trigger_min_gap, slot.next);
                    }
                }
            }
            Some(done) = running.join_next() => match done {
                Ok((app, next)) => match slots.get_mut(&app) {
                    Some(slot) => {
                        slot.running = false;
                        slot.next = if std::mem::take(&mut slot.retrigger) {
                            let now = Instant::now();
                            trigger_at(now, slot.last_triggered, policy.trigger_min_gap, next)
                        } else {
                            next
                        };
                        let at = std::time::SystemTime::now()
                            + slot.next.at().saturating_duration_since(Instant::now());
                        reconciler.board().set_next(&app, at, slot.next.why().as_str());
                    }
                    // It left the list while its tick ran.
                    None => reconciler.forget(&app),
                },
                Err(join) => warn!(error = %join, "a tick task failed"),
            },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    // Drain: the ticks see the cancellation and stop launching calls.
    while let Some(done) = running.join_next().await {
        if let Err(join) = done {
            warn!(error = %join, "a tick task failed");
        }
    }
    info!("reconciliation loop stopped");
    Ok(())
}

/// Whether this replica ticks `app`: always without coordination or in a dry run (which acts on
/// nothing and holds no lock); with coordination, only while it holds the app's lock on a
/// confirmed session ([`crate::coord`]). An app it does not own keeps its slot and is ticked once
/// owned (at once if it became due meanwhile).
fn owns(reconciler: &Reconciler, app: &str) -> bool {
    reconciler
        .coordinator()
        .is_none_or(|c| c.may_act(app) || reconciler.config().dry_run)
}

/// Resolves when the coordinator's ownership changes; never without coordination.
async fn ownership_changed(reconciler: &Reconciler) {
    match reconciler.coordinator() {
        Some(c) => c.changed().await,
        None => std::future::pending().await,
    }
}

/// With coordination, the loop looks at ownership again at least once per heartbeat (a change
/// notified between two waits is not missed for long); without, never.
fn recheck_ownership_at(reconciler: &Reconciler, now: Instant) -> Instant {
    reconciler
        .coordinator()
        .map_or_else(|| far_future(now), |c| now + c.policy().heartbeat)
}

fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(86_400 * 365)
}

/// When the `k`-th of `n` apps added at once is first due: spread evenly over one interval, so a
/// fleet does not tick in the same second (one app alone is due at once).
pub fn first_due(now: Instant, interval: Duration, k: usize, n: usize) -> Instant {
    let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    let k = u32::try_from(k).unwrap_or(u32::MAX).min(n - 1);
    now + interval / n * k
}

/// Reads the app list and updates the slots: new apps are due within the interval, spread
/// ([`first_due`]); apps that left are forgotten (their state and, through the exporter's idle
/// timeout, their gauges); a failed read keeps the previous list.
async fn refresh_apps(
    reconciler: &Reconciler,
    slots: &mut BTreeMap<String, Slot>,
    now: Instant,
    interval: Duration,
) {
    let list = match reconciler.list_apps().await {
        Ok(list) => list,
        Err(e) => {
            warn!(error = %format!("{e:#}"), "refreshing the app list failed; keeping the previous list");
            return;
        }
    };
    let gone: Vec<String> = slots
        .keys()
        .filter(|a| list.binary_search(a).is_err())
        .cloned()
        .collect();
    let added = list.iter().filter(|a| !slots.contains_key(*a)).count();
    if added == 0 && gone.is_empty() {
        return;
    }
    for app in &gone {
        if let Some(slot) = slots.remove(app)
            && !slot.running
        {
            reconciler.forget(app);
        }
    }
    let new: Vec<&String> = list.iter().filter(|a| !slots.contains_key(*a)).collect();
    let n = new.len();
    for (k, app) in new.into_iter().enumerate() {
        let slot = Slot {
            next: Next::new_app(first_due(now, interval, k, n)),
            running: false,
            retrigger: false,
            last_triggered: None,
        };
        slots.insert(app.clone(), slot);
    }
    info!(apps = %list.join(","), removed = %gone.join(","), "app list");
}

#[cfg(test)]
mod tests {
    use super::*;
    use fas_reconcile::{
        Action, ActionOutcome, Counts, Note, OpError, Plan, PlannedAction, RegionCursor, Report,
        Targets,
    };
    use std::time::SystemTime;

    const POLICY: LoopPolicy = LoopPolicy {
        interval: Duration::from_secs(15),
        follow_up: FOLLOW_UP,
        app_list_refresh: Duration::from_secs(60),
        concurrency: 1,
        trigger_min_gap: Duration::from_secs(1),
    };

    fn outcome(kind_action: Option<Action>, ok: bool, capped: bool) -> TickOutcome {
        let actions: Vec<PlannedAction> = kind_action
            .iter()
            .map(|a| PlannedAction {
                action: a.clone(),
                reason: String::new(),
            })
            .collect();
        let mut notes = Vec::new();
        if capped {
            notes.push(Note {
                kind: NoteKind::Capped,
                message: "capped".into(),
            });
        }
        let kind = match &kind_action {
            Some(Action::Create { .. }) => PlanKind::Create,
            Some(Action::Start { .. }) => PlanKind::Start,
            Some(_) => PlanKind::Stop,
            None => PlanKind::NoScale,
        };
        let plan = Plan {
            kind,
            counts: Counts::default(),
            targets: Targets::default(),
            actions: actions.clone(),
            spares: Vec::new(),
            notes,
            next_cursor: RegionCursor::default(),
            at: SystemTime::UNIX_EPOCH,
        };
        let report = Report {
            outcomes: actions
                .into_iter()
                .map(|pa| ActionOutcome {
                    action: pa.action,
                    result: if ok {
                        Outcome::Ok
                    } else {
                        Outcome::Failed(OpError::other("boom"))
                    },
                    spare: false,
                    created_id: None,
                })
                .collect(),
        };
        TickOutcome {
            values: Default::default(),
            evaluated: Targets::default(),
            plan,
            report,
            dry_run: false,
        }
    }

    fn create() -> Action {
        Action::Create {
            source: "m1".into(),
            region: "iad".into(),
            skip_launch: false,
        }
    }

    #[test]
    fn a_create_that_succeeded_is_followed_up() {
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(1);
        let next = decide(&Ok(outcome(Some(create()), true, false)), t0, end, &POLICY);
        assert_eq!(next, Next::follow_up(end + FOLLOW_UP));
    }

    #[test]
    fn a_create_that_failed_waits_an_interval() {
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(1);
        let next = decide(&Ok(outcome(Some(create()), false, false)), t0, end, &POLICY);
        assert_eq!(next, Next::interval(t0 + POLICY.interval));
    }

    #[test]
    fn a_start_plan_is_followed_up_only_when_capped() {
        let t0 = Instant::now();
        let start = Action::Start { id: "m1".into() };
        let next = decide(
            &Ok(outcome(Some(start.clone()), true, false)),
            t0,
            t0,
            &POLICY,
        );
        assert_eq!(next.why(), Why::Interval);
        let next = decide(&Ok(outcome(Some(start), true, true)), t0, t0, &POLICY);
        assert_eq!(next.why(), Why::FollowUp);
    }

    #[test]
    fn the_follow_up_delay_never_exceeds_the_interval() {
        let policy = LoopPolicy {
            interval: Duration::from_millis(500),
            ..POLICY
        };
        let t0 = Instant::now();
        let next = decide(&Ok(outcome(Some(create()), true, false)), t0, t0, &policy);
        assert_eq!(next.at(), t0 + Duration::from_millis(500));
    }

    #[test]
    fn an_overrunning_tick_is_followed_at_once_not_by_a_burst() {
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(40);
        let next = decide(&Ok(outcome(None, true, false)), t0, end, &POLICY);
        assert_eq!(next, Next::interval(end));
    }

    #[test]
    fn first_ticks_of_a_fleet_are_spread_and_a_single_app_starts_at_once() {
        let t0 = Instant::now();
        let i = Duration::from_secs(15);
        assert_eq!(first_due(t0, i, 0, 1), t0);
        assert_eq!(first_due(t0, i, 0, 3), t0);
        assert_eq!(first_due(t0, i, 1, 3), t0 + Duration::from_secs(5));
        assert_eq!(first_due(t0, i, 2, 3), t0 + Duration::from_secs(10));
        assert_eq!(
            first_due(t0, i, 9, 3),
            t0 + Duration::from_secs(10),
            "clamped"
        );
        assert_eq!(first_due(t0, i, 0, 0), t0);
    }

    #[test]
    fn a_trigger_only_brings_a_tick_forward_and_respects_the_gap() {
        let t0 = Instant::now();
        let gap = Duration::from_secs(1);
        let next = Next::interval(t0 + Duration::from_secs(15));
        assert_eq!(trigger_at(t0, None, gap, next), Next::triggered(t0));
        let last = Some(t0 - Duration::from_millis(300));
        assert_eq!(
            trigger_at(t0, last, gap, next),
            Next::triggered(t0 + Duration::from_millis(700))
        );
        let soon = Next::follow_up(t0 + Duration::from_millis(200));
        assert_eq!(
            trigger_at(t0, last, gap, soon),
            soon,
            "never later than planned"
        );
    }

    #[test]
    fn a_skipped_tick_waits_a_whole_interval() {
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(1);
        let next = decide(&Err(TickError::ShuttingDown), t0, end, &POLICY);
        assert_eq!(next, Next::after_skip(t0 + POLICY.interval));
        let deploy = TickError::DeployInProgress {
            version: Some(3),
            status: "running".into(),
        };
        assert_eq!(decide(&Err(deploy), t0, end, &POLICY).why(), Why::AfterSkip);
    }
}

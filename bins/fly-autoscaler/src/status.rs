//! The decision record: what each app's recent ticks saw, decided and did, kept in memory for
//! `GET /status`, `GET /status/{app}`, the page at `GET /` and `fly-autoscaler status`; and the
//! loop's liveness for `/healthz` and `/readyz`.
//!
//! Per app: the last [`HISTORY`] tick records (consecutive ticks that decided the same thing
//! with the same counts and targets are folded into one record with a `repeated` count, so a
//! steady app keeps its last real decisions) and a ring of chart points covering the last hour.
//! Memory is bounded for fleets: the chart keeps at most [`CHART_BUDGET`] points over all apps
//! (between [`CHART_MIN_POINTS`] and [`CHART_MAX_POINTS`] per app), spaced evenly over the hour.
//! Nothing secret is recorded: metric values, targets, counts, actions with their reasons and
//! outcomes, and error messages (which the libraries write without tokens).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

pub use crate::named::Named;
use fas_reconcile::{Action, Counts, Outcome, Plan, Report, Targets};
use serde::{Deserialize, Deserializer, Serialize};
use tokio::time::Instant;

/// Tick records kept per app.
pub const HISTORY: usize = 20;
/// Chart points kept over all apps.
pub const CHART_BUDGET: usize = 100_000;
/// Chart points kept per app at most (one every 5 s over the hour).
pub const CHART_MAX_POINTS: usize = 720;
/// Chart points kept per app at least (one every 5 minutes), whatever the fleet's size.
pub const CHART_MIN_POINTS: usize = 12;
/// How far back the chart goes.
pub const CHART_SPAN: Duration = Duration::from_secs(3_600);

/// Chart points per app for a fleet of `apps`.
pub fn chart_capacity(apps: usize) -> usize {
    (CHART_BUDGET / apps.max(1)).clamp(CHART_MIN_POINTS, CHART_MAX_POINTS)
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Seconds since the Unix epoch (0 for a time before it): the time of chart points, shared by
/// the status page, `simulate` and the tick.
pub fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// One metric of one tick: its value, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// The value used (collected, or a fallback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The collection error, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The fallback used instead of a failed collection (`hold`, `value`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// One planned action and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// `create`, `destroy`, `start`, `stop`, `suspend`.
    #[serde(deserialize_with = "word")]
    pub kind: Word,
    /// The action as the logs write it (`start m1`, `create from m1 in iad`…).
    pub action: String,
    /// Why it was planned.
    pub reason: String,
    /// `ok`, `failed`, `skipped` (deadline or shutdown), `would` (dry run), `spare` entries are
    /// marked by `spare`.
    #[serde(deserialize_with = "word")]
    pub outcome: Word,
    /// The error of a failed call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A spare candidate called in after a failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spare: bool,
}

/// What one tick of one app saw, decided and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickRecord {
    /// When it started (RFC 3339).
    pub at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// What started it: `interval`, `follow_up`, `trigger`, `new`, `interval_after_skip`.
    #[serde(deserialize_with = "word")]
    pub trigger: Word,
    /// `scaled` (at least one machine call succeeded), `no_scale`, `would_scale` (dry run),
    /// `failed` (every call failed) or `skipped`.
    #[serde(deserialize_with = "word")]
    pub outcome: Word,
    /// Why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The plan's step (`create`, `destroy`, `start`, `stop`, `no_scale`).
    #[serde(
        default,
        deserialize_with = "some_word",
        skip_serializing_if = "Option::is_none"
    )]
    pub decision: Option<Word>,
    /// Each metric's value or error.
    #[serde(default)]
    pub metrics: Named<MetricRecord>,
    /// Targets the expressions gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated: Option<Targets>,
    /// Targets the plan used (stabilized and clamped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilized: Option<Targets>,
    /// Machine counts by state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// Every planned action with its outcome.
    #[serde(default)]
    pub actions: Vec<ActionRecord>,
    /// The plan's notes.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Whether this tick ran without mutating calls (`--dry-run`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// How many later ticks decided the same (same outcome, decision, counts and targets, no
    /// action); `at` is the first of them, `last_at` the latest.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeated: u32,
    /// The latest of the folded ticks (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A word of a record's fixed vocabulary (`trigger`, `outcome`, `decision`, action `kind`).
/// (An alias, so that serde does not try to borrow it from the input when a record is read
/// back.)
pub type Word = &'static str;

/// Every word the records use for a trigger, an outcome, a decision or an action kind: a record
/// read back from the database ([`crate::store`]) keeps `&'static str` fields.
const WORDS: &[&str] = &[
    "interval",
    "follow_up",
    "interval_after_skip",
    "new",
    "trigger",
    "scaled",
    "no_scale",
    "would_scale",
    "failed",
    "skipped",
    "ok",
    "would",
    "create",
    "destroy",
    "start",
    "stop",
    "suspend",
];

/// One of [`WORDS`]; any other word (written by a newer version) reads as `unknown`.
fn intern(word: &str) -> &'static str {
    WORDS
        .iter()
        .find(|w| **w == word)
        .copied()
        .unwrap_or("unknown")
}

fn word<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = String::deserialize(d)?;
    Ok(intern(&s))
}

fn some_word<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.as_deref().map(intern))
}

impl TickRecord {
    /// Whether `newer` only repeats this record's decision (no action, same outcome, decision,
    /// reason, counts and targets), so it can be folded into it.
    fn same_decision(&self, newer: &TickRecord) -> bool {
        self.actions.is_empty()
            && newer.actions.is_empty()
            && self.outcome == newer.outcome
            && self.decision == newer.decision
            && self.reason == newer.reason
            && self.counts == newer.counts
            && self.stabilized == newer.stabilized
            && self.evaluated == newer.evaluated
            && self.notes == newer.notes
    }
}

impl TickRecord {
    /// A record of a tick that started at `at` and took `duration`, before anything is known.
    pub fn new(at: SystemTime, duration: Duration, trigger: &'static str) -> TickRecord {
        TickRecord {
            at: rfc3339(at),
            duration_ms: duration.as_secs_f64() * 1e3,
            trigger,
            outcome: "skipped",
            reason: None,
            decision: None,
            metrics: Named::new(),
            evaluated: None,
            stabilized: None,
            counts: None,
            actions: Vec::new(),
            notes: Vec::new(),
            dry_run: false,
            repeated: 0,
            last_at: None,
        }
    }

    /// Fills in the plan and what became of its actions (`report` is `None` in a dry run).
    pub fn with_plan(mut self, plan: &Plan, report: Option<&Report>) -> TickRecord {
        self.decision = Some(plan.kind().as_str());
        self.stabilized = Some(plan.targets);
        self.counts = Some(plan.counts.clone());
        self.notes = plan.notes.iter().map(|n| n.message.clone()).collect();
        match report {
            None => {
                self.dry_run = true;
                self.actions = plan
                    .actions
                    .iter()
                    .map(|pa| action_record(&pa.action, &pa.reason, "would", None, false))
                    .collect();
                self.outcome = if plan.actions.is_empty() {
                    "no_scale"
                } else {
                    "would_scale"
                };
            }
            Some(report) => {
                let reason_of = |a: &Action| {
                    plan.actions
                        .iter()
                        .chain(&plan.spares)
                        .find(|pa| &pa.action == a)
                        .map(|pa| pa.reason.clone())
                        .unwrap_or_default()
                };
                self.actions = report
                    .outcomes
                    .iter()
                    .map(|o| {
                        let (outcome, error) = match &o.result {
                            Outcome::Ok => ("ok", None),
                            Outcome::Failed(e) => ("failed", Some(e.to_string())),
                            Outcome::Skipped => ("skipped", None),
                        };
                        action_record(&o.action, &reason_of(&o.action), outcome, error, o.spare)
                    })
                    .collect();
                let ok = report
                    .outcomes
                    .iter()
                    .any(|o| matches!(o.result, Outcome::Ok));
                self.outcome = if report.outcomes.is_empty() {
                    "no_scale"
                } else if ok {
                    "scaled"
                } else {
                    "failed"
                };
            }
        }
        self
    }
}

fn action_record(
    action: &Action,
    reason: &str,
    outcome: &'static str,
    error: Option<String>,
    spare: bool,
) -> ActionRecord {
    ActionRecord {
        kind: action.kind().as_str(),
        action: action.to_string(),
        reason: reason.to_owned(),
        outcome,
        error,
        spare,
    }
}

/// Adds a point to a chart of at most `capacity` points over [`CHART_SPAN`], spaced at least
/// `CHART_SPAN / capacity` apart: the newest point is always the latest tick (it replaces the
/// previous newest while that one is closer than the spacing to the point before it), and points
/// older than the span go.
fn push_point(chart: &mut VecDeque<ChartPoint>, p: ChartPoint, capacity: usize) {
    let spacing = CHART_SPAN.as_secs_f64() / capacity.max(1) as f64;
    let oldest = p.t - CHART_SPAN.as_secs_f64();
    let n = chart.len();
    if n >= 2 && chart[n - 1].t - chart[n - 2].t < spacing {
        chart.pop_back();
    }
    // Grow by doubling but never past `capacity` (a `VecDeque` rounds up to the next power of
    // two on its own: 32 slots for 20 points, times every app of a fleet).
    if chart.len() == chart.capacity() && chart.len() < capacity {
        let want = (chart.len() * 2).clamp(4, capacity);
        chart.reserve_exact(want - chart.len());
    }
    chart.push_back(p);
    while chart.len() > capacity || chart.front().is_some_and(|f| f.t < oldest) {
        chart.pop_front();
    }
}

/// One point of an app's chart: the values of one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartPoint {
    /// Unix time, seconds.
    pub t: f64,
    /// Metric values.
    pub metrics: Named<f64>,
    /// Targets the plan used.
    pub targets: Targets,
    /// Started machines (`started` + `starting`).
    pub started: u32,
    /// Created machines.
    pub created: u32,
}

/// Everything the status endpoints show of one app.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppStatus {
    /// The app.
    pub app: String,
    /// The last tick.
    pub last: Option<TickRecord>,
    /// When the next tick is due (RFC 3339) and why.
    pub next_tick: Option<NextTick>,
    /// The last [`HISTORY`] ticks, newest first.
    pub history: VecDeque<TickRecord>,
    /// One point per tick with a plan, the last hour, oldest first.
    pub chart: VecDeque<ChartPoint>,
}

/// The next tick of an app.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextTick {
    /// When (RFC 3339).
    pub at: String,
    /// Why (`interval`, `follow_up`, `trigger`…).
    pub why: &'static str,
}

/// The loop's liveness.
#[derive(Debug, Clone, Copy)]
struct Liveness {
    /// The last time the loop completed something (a tick or an app-list read).
    last_progress: Option<Instant>,
    /// Whether every app of the first list completed a tick (or the first list was empty).
    first_pass_done: bool,
}

/// The status of every app and of the loop, shared by the loop and the HTTP endpoints.
#[derive(Debug)]
pub struct StatusBoard {
    /// Boxed: a B-tree node has room for 11 entries, most of them empty, and an `AppStatus`
    /// is a few hundred bytes.
    apps: Mutex<BTreeMap<String, Box<AppStatus>>>,
    live: Mutex<Liveness>,
    first_pass: Mutex<Option<Vec<String>>>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard {
            apps: Mutex::new(BTreeMap::new()),
            live: Mutex::new(Liveness {
                last_progress: None,
                first_pass_done: false,
            }),
            first_pass: Mutex::new(None),
        }
    }
}

/// What `/healthz` and `/readyz` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// 200.
    Ok,
    /// 503 with the reason.
    Unhealthy(String),
}

impl StatusBoard {
    /// An empty board.
    pub fn new() -> StatusBoard {
        StatusBoard::default()
    }

    fn apps(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Box<AppStatus>>> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Liveness> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a finished tick of `app` (and the loop's progress).
    pub fn record(&self, app: &str, mut record: TickRecord, point: Option<ChartPoint>) {
        {
            let mut apps = self.apps();
            let st = apps.entry(app.to_owned()).or_insert_with(|| {
                Box::new(AppStatus {
                    app: app.to_owned(),
                    ..AppStatus::default()
                })
            });
            if let Some(prev) = st.history.front() {
                record.metrics.share_names(&prev.metrics);
            }
            match st.history.front_mut() {
                Some(prev) if prev.same_decision(&record) => {
                    prev.repeated += 1;
                    prev.last_at = Some(record.at.clone());
                    prev.metrics = record.metrics.clone();
                    prev.duration_ms = record.duration_ms;
                }
                _ => {
                    // One slot more at a time: a steady app keeps one or two records, and a
                    // record is a few hundred bytes, times every app of a fleet.
                    if st.history.len() == st.history.capacity() && st.history.len() < HISTORY {
                        st.history.reserve_exact(1);
                    }
                    st.history.push_front(record.clone());
                    st.history.truncate(HISTORY);
                }
            }
            st.last = Some(record);
            if let Some(mut p) = point {
                let capacity = chart_capacity(apps.len());
                if let Some(st) = apps.get_mut(app) {
                    if let Some(prev) = st.chart.back() {
                        p.metrics.share_names(&prev.metrics);
                    }
                    push_point(&mut st.chart, p, capacity);
                }
            }
        }
        self.progress();
        let mut first = self
            .first_pass
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(waiting) = first.as_mut() {
            waiting.retain(|a| a != app);
            if waiting.is_empty() {
                self.live().first_pass_done = true;
                *first = None;
            }
        }
    }

    /// The last records of `app`, newest first (what [`crate::store`] keeps in the database).
    pub fn records(&self, app: &str) -> Vec<TickRecord> {
        self.apps()
            .get(app)
            .map(|st| st.history.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Puts back the records of `app` read from the database (newest first) when this replica
    /// takes the app over: they replace what this replica remembered (the database has every
    /// owner's records). Loop liveness is not touched.
    pub fn restore(&self, app: &str, mut records: Vec<TickRecord>) {
        records.truncate(HISTORY);
        let mut apps = self.apps();
        let st = apps.entry(app.to_owned()).or_insert_with(|| {
            Box::new(AppStatus {
                app: app.to_owned(),
                ..AppStatus::default()
            })
        });
        st.last = records.first().cloned();
        st.history = records.into();
    }

    /// The loop completed something (an app-list read, a tick).
    pub fn progress(&self) {
        self.live().last_progress = Some(Instant::now());
    }

    /// The apps the loop manages now: the first call also names the apps whose first ticks make
    /// the first pass; apps no longer managed are dropped.
    pub fn set_apps(&self, apps: &[String]) {
        {
            let mut first = self
                .first_pass
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut live = self.live();
            if !live.first_pass_done && first.is_none() {
                if apps.is_empty() {
                    live.first_pass_done = true;
                } else {
                    *first = Some(apps.to_vec());
                }
            }
        }
        self.apps().retain(|a, _| apps.contains(a));
        self.progress();
    }

    /// When `app`'s next tick is due.
    pub fn set_next(&self, app: &str, at: SystemTime, why: &'static str) {
        let mut apps = self.apps();
        let st = apps.entry(app.to_owned()).or_insert_with(|| {
            Box::new(AppStatus {
                app: app.to_owned(),
                ..AppStatus::default()
            })
        });
        st.next_tick = Some(NextTick {
            at: rfc3339(at),
            why,
        });
    }

    /// Every app's status.
    pub fn snapshot(&self) -> Vec<AppStatus> {
        self.apps()
            .values()
            .map(|st| AppStatus::clone(st))
            .collect()
    }

    /// One app's status.
    pub fn app(&self, app: &str) -> Option<AppStatus> {
        self.apps().get(app).map(|st| AppStatus::clone(st))
    }

    /// `/healthz`: unhealthy when the loop completed nothing within `stuck_after`
    /// (`3 × interval + timeout`); a loop that has not started yet has `stuck_after` from `since`.
    pub fn health(&self, since: Instant, stuck_after: Duration) -> Health {
        let last = self.live().last_progress.unwrap_or(since);
        let idle = last.elapsed();
        if idle > stuck_after {
            Health::Unhealthy(format!(
                "the reconciliation loop completed nothing for {:.0} s (limit {:.0} s: 3 × interval + timeout)",
                idle.as_secs_f64(),
                stuck_after.as_secs_f64()
            ))
        } else {
            Health::Ok
        }
    }

    /// `/readyz`: ready once the configuration is loaded (always, once the board exists) and the
    /// first pass finished (every app of the first list ticked once).
    pub fn readiness(&self) -> Health {
        if self.live().first_pass_done {
            Health::Ok
        } else {
            Health::Unhealthy("the first pass of the loop has not finished".to_owned())
        }
    }

    /// Chart point of a tick with a plan.
    pub fn point(at: SystemTime, metrics: &BTreeMap<String, f64>, plan: &Plan) -> ChartPoint {
        ChartPoint {
            t: unix(at),
            metrics: metrics.iter().map(|(n, v)| (n.clone(), *v)).collect(),
            targets: plan.targets,
            started: plan.counts.started,
            created: plan.counts.created,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(outcome: &'static str) -> TickRecord {
        let mut r = TickRecord::new(SystemTime::UNIX_EPOCH, Duration::from_millis(5), "interval");
        r.outcome = outcome;
        r
    }

    #[test]
    fn history_is_bounded_newest_first() {
        let b = StatusBoard::new();
        b.set_apps(&["a".to_owned()]);
        for i in 0..(HISTORY + 5) {
            let mut r = rec("no_scale");
            r.duration_ms = i as f64;
            r.reason = Some(format!("different {i}"));
            b.record("a", r, None);
        }
        let a = b.app("a").unwrap();
        assert_eq!(a.history.len(), HISTORY);
        assert_eq!(a.history[0].duration_ms, (HISTORY + 4) as f64);
        assert_eq!(a.last.unwrap().duration_ms, (HISTORY + 4) as f64);
    }

    #[test]
    fn repeated_decisions_fold_into_one_record() {
        let b = StatusBoard::new();
        b.record("a", rec("scaled"), None);
        for _ in 0..100 {
            b.record("a", rec("no_scale"), None);
        }
        let a = b.app("a").unwrap();
        assert_eq!(a.history.len(), 2, "the scale-up stays visible");
        assert_eq!(a.history[0].repeated, 99);
        assert_eq!(a.history[1].outcome, "scaled");
    }

    #[test]
    fn a_fleets_chart_memory_is_bounded() {
        assert_eq!(chart_capacity(1), CHART_MAX_POINTS);
        assert_eq!(chart_capacity(5_000), 20);
        assert_eq!(chart_capacity(1_000_000), CHART_MIN_POINTS);
        let mut chart = VecDeque::new();
        let point = |t: f64| ChartPoint {
            t,
            metrics: Named::new(),
            targets: Targets::default(),
            started: 1,
            created: 1,
        };
        // A tick every 15 s for two hours, 20 points allowed: one every 3 minutes, the last hour.
        for i in 0..480 {
            push_point(&mut chart, point(f64::from(i) * 15.0), 20);
        }
        assert!((19..=20).contains(&chart.len()), "{}", chart.len());
        assert!(chart.front().unwrap().t >= 7_185.0 - 3_600.0);
        let gaps: Vec<f64> = chart
            .iter()
            .zip(chart.iter().skip(1))
            .map(|(a, b)| b.t - a.t)
            .collect();
        assert!(
            gaps[..gaps.len() - 1].iter().all(|g| *g >= 180.0),
            "{gaps:?}"
        );
        assert_eq!(
            chart.back().unwrap().t,
            7_185.0,
            "the latest values are kept"
        );
    }

    #[test]
    fn chart_keeps_the_last_hour() {
        let b = StatusBoard::new();
        let point = |t: f64| ChartPoint {
            t,
            metrics: Named::new(),
            targets: Targets::default(),
            started: 1,
            created: 1,
        };
        for t in [0.0, 1_000.0, 3_000.0, 3_700.0, 4_000.0] {
            b.record("a", rec("no_scale"), Some(point(t)));
        }
        let ts: Vec<f64> = b.app("a").unwrap().chart.iter().map(|p| p.t).collect();
        assert_eq!(ts, [1_000.0, 3_000.0, 3_700.0, 4_000.0]);
    }

    #[test]
    fn readiness_waits_for_every_app_of_the_first_list() {
        let b = StatusBoard::new();
        assert!(matches!(b.readiness(), Health::Unhealthy(_)));
        b.set_apps(&["a".to_owned(), "b".to_owned()]);
        b.record("a", rec("no_scale"), None);
        assert!(matches!(b.readiness(), Health::Unhealthy(_)));
        b.record("b", rec("skipped"), None);
        assert_eq!(b.readiness(), Health::Ok);
        let empty = StatusBoard::new();
        empty.set_apps(&[]);
        assert_eq!(empty.readiness(), Health::Ok, "an empty fleet is ready");
    }

    #[test]
    fn apps_that_leave_are_dropped() {
        let b = StatusBoard::new();
        b.set_apps(&["a".to_owned(), "b".to_owned()]);
        b.record("a", rec("no_scale"), None);
        b.record("b", rec("no_scale"), None);
        b.set_apps(&["a".to_owned()]);
        assert_eq!(b.snapshot().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn health_turns_503_when_the_loop_stops_progressing() {
        let b = StatusBoard::new();
        let since = Instant::now();
        let limit = Duration::from_secs(75);
        assert_eq!(b.health(since, limit), Health::Ok);
        b.progress();
        tokio::time::advance(Duration::from_secs(74)).await;
        assert_eq!(b.health(since, limit), Health::Ok);
        tokio::time::advance(Duration::from_secs(2)).await;
        let Health::Unhealthy(why) = b.health(since, limit) else {
            panic!()
        };
        assert!(why.contains("76 s"), "{why}");
        b.progress();
        assert_eq!(b.health(since, limit), Health::Ok);
    }
}

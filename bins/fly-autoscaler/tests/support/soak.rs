//! The chaos soak: the real loop ([`fly_autoscaler::schedule::run`]) over the real Fly client and
//! the simulator, with faults, for a given time; invariants checked while it runs and at the end.
//!
//! Faults: 10 % 5xx and 10 % 429 on every route, 2 % answers slower than the client's timeout
//! (the request still takes effect), machines going unreachable and back, clones failing at boot,
//! a machine whose start always fails, deploys in progress, and per-app metrics that rise, fall,
//! drop to zero and spike. The checks are listed on [`Soak::run`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fas_collect::{CollectError, Collector};
use fas_flyapi::{Client, ClientConfig, Machine, Release, RetryPolicy};
use fas_flysim::{
    DurRange, FaultKind, FaultMatch, LoggedRequest, MachineSpec, RandomFault, SimConfig, Simulator,
    Timing,
};
use fas_reconcile::{MachineOps, OpError};
use fly_autoscaler::fly::Fly;
use fly_autoscaler::{schedule, tick::Reconciler};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The client's per-request timeout in the soak.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);
/// The client's total budget of one call (retries included).
const RETRY_TOTAL: Duration = Duration::from_secs(3);
/// A slow answer: longer than [`CLIENT_TIMEOUT`]; the request still takes effect.
const SLOW_MS: u64 = 1_500;
/// `FAS_TIMEOUT` of the soak.
const TICK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long after a tick's start its calls may still arrive: the tick timeout plus the in-flight
/// grace (calls launched before the deadline, possibly waiting for a rate-limiter token), plus a
/// slow answer landing after its client gave up, plus a margin for state transitions.
const EFFECT_WINDOW: Duration = Duration::from_millis(3_000 + 15_000 + SLOW_MS + 1_000);
/// What a call that observed the world (release check, list) may lag behind its start: the
/// rate limiter's pacing of a list (under 1.2 s at 0.9/s) and its retries, plus a margin.
const OBSERVE_LAG: Duration = Duration::from_millis(1_200 + 3_000 + 800);
/// How old the release status a tick acts on may be when it collects its metrics: in wildcard
/// mode the status comes from the org's app list while that read is younger than one interval
/// plus the timeout (`Reconciler::listed_release`), or from the tick's own release check; plus
/// that call's retries and a margin.
const RELEASE_STALENESS: Duration = Duration::from_millis(1_000 + 3_000 + 3_000 + 800);
/// Machines whose host came back are not counted for this long (the autoscaler did not start
/// them; the next ticks bring the count back to the target).
const CAME_BACK: Duration = EFFECT_WINDOW;

/// The violation kind of two bugs this soak found, both fixed: a start above max after a start
/// that timed out but took effect, either a spare called in by the same tick
/// (`fas_reconcile::execute` no longer calls in a spare after a failure whose effect is unknown)
/// or a second start by the next tick, whose list still showed the machine stopped (the loop now
/// counts such a machine as starting: `fly_autoscaler::pending`). Kept as its own kind so a
/// regression names itself.
pub const KNOWN_SPARE: &str = "spare start after a timed-out start that took effect";

/// The per-app expressions of the soak and their targets.
pub const CREATED_EXPR: &str = "ceil(load / 8) + 2";
/// Started count expression.
pub const STARTED_EXPR: &str = "ceil(load / 8)";

/// Target created count (min = max) for a load, as [`CREATED_EXPR`] evaluates it (at least 1).
pub fn target_created(load: f64) -> usize {
    ((load / 8.0).ceil() as usize + 2).max(1)
}

/// Target started count (min = max) for a load, as [`STARTED_EXPR`] evaluates it.
pub fn target_started(load: f64) -> usize {
    (load / 8.0).ceil().max(0.0) as usize
}

/// A small deterministic PRNG (xorshift64*), so a seed replays the same chaos schedule.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What the soak knows about the world it created: loads, unreachable hosts, deploys, times.
#[derive(Debug)]
struct Truth {
    t0: Instant,
    /// Per app: (when the collector returned it, load), oldest first, pruned to the window.
    collected: BTreeMap<String, VecDeque<(Instant, f64)>>,
    /// Per app: the load the collector returns now.
    loads: BTreeMap<String, f64>,
    /// Per machine: unreachable intervals (from, until; `None` while it lasts).
    unreachable: BTreeMap<String, Vec<(Instant, Option<Instant>)>>,
    /// Per app: deploy intervals.
    deploys: BTreeMap<String, Vec<(Instant, Option<Instant>)>>,
    /// Per app, from the previous watcher pass: the started ids, the counted ids, and every id
    /// ever seen.
    last_ids: BTreeMap<String, LastIds>,
    /// Per app: when its first tick collected the metrics.
    first_collect: BTreeMap<String, Instant>,
    /// Per app: the started and created counts it had before the loop began (the autoscaler
    /// did not make them; they bound the counts for one effect window).
    initial: BTreeMap<String, (usize, usize)>,
    /// Machines of other process groups (never to be touched).
    foreign: BTreeSet<String>,
    /// Per app: when the current tick made its release check and its list.
    collect_at: BTreeMap<String, Instant>,
    list_at: BTreeMap<String, Instant>,
    /// Per app: release checks made.
    release_checks: BTreeMap<String, u64>,
    /// Per app: starts whose answer never came (timeouts: the machine may be starting).
    start_timeouts: BTreeMap<String, VecDeque<Instant>>,
    /// Per app: creates whose answer never came (timeouts: the machine may exist).
    ambiguous_creates: BTreeMap<String, VecDeque<Instant>>,
    /// Ticks per app that passed the release check (they collect the metrics).
    ticks: BTreeMap<String, u64>,
    /// Calls by the executor's view: `op outcome`.
    ops: BTreeMap<String, usize>,
    /// Chaos events by kind.
    chaos: BTreeMap<String, usize>,
    violations: Vec<String>,
    violation_count: usize,
    by_kind: BTreeMap<String, usize>,
}

impl Truth {
    fn violation(&mut self, what: String) {
        self.violation_count += 1;
        let kind: String = what
            .split(": ")
            .nth(1)
            .unwrap_or(&what)
            .split(|c: char| c.is_ascii_digit())
            .next()
            .unwrap_or_default()
            .to_owned();
        *self.by_kind.entry(kind).or_default() += 1;
        if self.violations.len() < 50 {
            let at = self.t0.elapsed().as_secs_f64();
            self.violations.push(format!("[{at:.2}s] {what}"));
        }
    }

    fn covered(
        intervals: Option<&Vec<(Instant, Option<Instant>)>>,
        from: Instant,
        to: Instant,
    ) -> bool {
        intervals.is_some_and(|iv| {
            iv.iter()
                .any(|(u, v)| *u <= from && v.is_none_or(|v| v >= to))
        })
    }

    fn touched_in(intervals: Option<&Vec<(Instant, Option<Instant>)>>, from: Instant) -> bool {
        intervals.is_some_and(|iv| iv.iter().any(|(_, v)| v.is_none_or(|v| v >= from)))
    }

    /// The highest target over the loads that ticks collected in the effect window, and the load
    /// in effect at its start.
    fn bound(&self, app: &str, now: Instant, started: bool) -> usize {
        let target = if started {
            target_started
        } else {
            target_created
        };
        let from = now.checked_sub(EFFECT_WINDOW).unwrap_or(self.t0);
        let initial = match self.initial.get(app) {
            // Until one effect window after the app's first tick collected its metrics.
            Some((started_before, created_before))
                if self
                    .first_collect
                    .get(app)
                    .is_none_or(|first| now.duration_since(*first) < EFFECT_WINDOW) =>
            {
                // The pre-existing machines, until the ticks had time to act on them.
                if started {
                    *started_before
                } else {
                    *created_before
                }
            }
            _ => 0,
        };
        let Some(c) = self.collected.get(app) else {
            return initial;
        };
        let mut best = 0;
        let mut before = None;
        for (at, load) in c {
            if *at >= from {
                best = best.max(target(*load));
            } else {
                before = Some(*load);
            }
        }
        best.max(before.map_or(0, target)).max(initial)
    }

    fn prune(&mut self, now: Instant) {
        let keep = now.checked_sub(EFFECT_WINDOW * 2).unwrap_or(self.t0);
        for c in self.collected.values_mut() {
            while c.len() > 1 && c.get(1).is_some_and(|(at, _)| *at < keep) {
                c.pop_front();
            }
        }
        for c in self
            .ambiguous_creates
            .values_mut()
            .chain(self.start_timeouts.values_mut())
        {
            while c.front().is_some_and(|at| *at < keep) {
                c.pop_front();
            }
        }
        for iv in self
            .unreachable
            .values_mut()
            .chain(self.deploys.values_mut())
        {
            iv.retain(|(_, v)| v.is_none_or(|v| v >= keep));
        }
    }
}

/// What the watcher saw of one app's machines in its previous pass.
#[derive(Debug, Default)]
struct LastIds {
    started: BTreeSet<String>,
    counted: BTreeSet<String>,
    /// Every id ever seen (a new one is a create).
    seen: BTreeSet<String>,
}

type Shared = Arc<Mutex<Truth>>;

fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Truth> {
    t.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The collector of every app's `load`, returning what the chaos task set for that app.
#[derive(Debug, Clone)]
struct Loads(Shared);

#[async_trait::async_trait]
impl Collector for Loads {
    fn metric_name(&self) -> &str {
        "load"
    }

    async fn collect(&self, app: &str) -> Result<f64, CollectError> {
        let mut t = lock(&self.0);
        let load = t.loads.get(app).copied().unwrap_or(0.0);
        *t.ticks.entry(app.to_owned()).or_default() += 1;
        t.collect_at.insert(app.to_owned(), Instant::now());
        t.first_collect
            .entry(app.to_owned())
            .or_insert_with(Instant::now);
        t.collected
            .entry(app.to_owned())
            .or_default()
            .push_back((Instant::now(), load));
        Ok(load)
    }
}

/// The real client, observed: ticks, call outcomes, and the checks made when an action is sent.
#[derive(Debug)]
struct Observed {
    client: Client,
    truth: Shared,
}

fn outcome<T>(r: &Result<T, fas_flyapi::Error>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => match e.status() {
            Some(s) => format!("http_{s}"),
            None => match e {
                fas_flyapi::Error::Timeout { .. } => "timeout".to_owned(),
                _ => "transport".to_owned(),
            },
        },
    }
}

#[async_trait::async_trait]
impl Fly for Observed {
    async fn current_release(&self, app: &str) -> Result<Option<Release>, fas_flyapi::Error> {
        *lock(&self.truth)
            .release_checks
            .entry(app.to_owned())
            .or_default() += 1;
        let r = <Client as Fly>::current_release(&self.client, app).await;
        *lock(&self.truth)
            .ops
            .entry(format!("release {}", outcome(&r)))
            .or_default() += 1;
        r
    }

    async fn list_machines(&self, app: &str) -> Result<Vec<Machine>, fas_flyapi::Error> {
        lock(&self.truth)
            .list_at
            .insert(app.to_owned(), Instant::now());
        let r = <Client as Fly>::list_machines(&self.client, app).await;
        *lock(&self.truth)
            .ops
            .entry(format!("list {}", outcome(&r)))
            .or_default() += 1;
        r
    }

    async fn org_apps(
        &self,
        org: &str,
    ) -> Result<Vec<fly_autoscaler::fly::AppInfo>, fas_flyapi::Error> {
        let r = <Client as Fly>::org_apps(&self.client, org).await;
        *lock(&self.truth)
            .ops
            .entry(format!("org_apps {}", outcome(&r)))
            .or_default() += 1;
        r
    }

    fn machine_ops<'a>(&'a self, app: &'a str, listed: &'a [Machine]) -> Box<dyn MachineOps + 'a> {
        let (collect_at, list_at) = {
            let t = lock(&self.truth);
            let now = Instant::now();
            (
                t.collect_at.get(app).copied().unwrap_or(now),
                t.list_at.get(app).copied().unwrap_or(now),
            )
        };
        Box::new(ObservedOps {
            inner: <Client as Fly>::machine_ops(&self.client, app, listed),
            truth: &self.truth,
            app,
            collect_at,
            list_at,
        })
    }
}

struct ObservedOps<'a> {
    inner: Box<dyn MachineOps + 'a>,
    truth: &'a Shared,
    app: &'a str,
    collect_at: Instant,
    list_at: Instant,
}

impl ObservedOps<'_> {
    /// The checks of an action about to be sent (on machine `id`, or on the app for a create).
    fn check(&self, op: &str, id: Option<&str>) {
        let mut t = lock(self.truth);
        // Every release status this tick may have acted on said `running`: the deploy covered
        // the whole time from the oldest status it may use to its metrics collection.
        let oldest = self
            .collect_at
            .checked_sub(RELEASE_STALENESS)
            .unwrap_or(t.t0);
        if Truth::covered(t.deploys.get(self.app), oldest, self.collect_at) {
            t.violation(format!("{op} on {} during a deploy", self.app));
        }
        if let Some(id) = id {
            if t.foreign.contains(id) {
                t.violation(format!("{op} {id} of another process group"));
            }
            if Truth::covered(
                t.unreachable.get(id),
                self.list_at,
                self.list_at + OBSERVE_LAG,
            ) {
                t.violation(format!("{op} {id} on an unreachable host ({})", self.app));
            }
        }
    }

    fn record(&self, op: &str, r: &Result<impl Sized, OpError>) {
        let key = match r {
            Ok(_) => format!("{op} ok"),
            Err(e) => format!("{op} {:?}", e.kind()).to_lowercase(),
        };
        let mut t = lock(self.truth);
        *t.ops.entry(key).or_default() += 1;
        if op == "create"
            && let Err(e) = r
            && e.kind() == fas_reconcile::OpErrorKind::Timeout
        {
            t.ambiguous_creates
                .entry(self.app.to_owned())
                .or_default()
                .push_back(Instant::now());
        }
        if op == "start"
            && let Err(e) = r
            && e.kind() == fas_reconcile::OpErrorKind::Timeout
        {
            t.start_timeouts
                .entry(self.app.to_owned())
                .or_default()
                .push_back(Instant::now());
        }
    }
}

#[async_trait::async_trait]
impl MachineOps for ObservedOps<'_> {
    async fn create(
        &self,
        source: &str,
        region: &str,
        skip_launch: bool,
    ) -> Result<String, OpError> {
        self.check("create", None);
        let r = self.inner.create(source, region, skip_launch).await;
        self.record("create", &r);
        r
    }

    async fn start(&self, id: &str) -> Result<(), OpError> {
        self.check("start", Some(id));
        let r = self.inner.start(id).await;
        self.record("start", &r);
        r
    }

    async fn stop(&self, id: &str) -> Result<(), OpError> {
        self.check("stop", Some(id));
        let r = self.inner.stop(id).await;
        self.record("stop", &r);
        r
    }

    async fn suspend(&self, id: &str) -> Result<(), OpError> {
        self.check("suspend", Some(id));
        let r = self.inner.suspend(id).await;
        self.record("suspend", &r);
        r
    }

    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        self.check("destroy", Some(id));
        let r = self.inner.destroy(id).await;
        self.record("destroy", &r);
        r
    }
}

/// The resident set size of this process, in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The soak's parameters.
#[derive(Debug, Clone)]
pub struct Soak {
    /// How long the faults last (then they stop and convergence is checked).
    pub chaos: Duration,
    /// Number of apps (`soak-0`…), each with its own load.
    pub apps: usize,
    /// Seed of the chaos schedule and of the simulator.
    pub seed: u64,
    /// Apps reconciled at once (`concurrency`; the Go default is 1).
    pub concurrency: usize,
}

/// What a soak run did and found.
#[derive(Debug, Default)]
pub struct SoakReport {
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Ticks (release checks) over all apps, and per app.
    pub ticks: u64,
    /// Ticks per app.
    pub ticks_by_app: BTreeMap<String, u64>,
    /// Faults the simulator injected, by kind, plus the chaos task's events.
    pub faults: BTreeMap<String, usize>,
    /// Requests the simulator answered, by `route status` (status 0: reset).
    pub calls: BTreeMap<String, usize>,
    /// Calls as the autoscaler saw them, by `call outcome`.
    pub outcomes: BTreeMap<String, usize>,
    /// Invariant violations (the first 50) and their number.
    pub violations: Vec<String>,
    /// Number of violations.
    pub violation_count: usize,
    /// Violations by kind (the start of their message).
    pub violations_by_kind: BTreeMap<String, usize>,
    /// RSS after warm-up and at the end, KiB.
    pub rss_warm_kib: u64,
    /// RSS at the end, KiB.
    pub rss_end_kib: u64,
    /// Most requests the simulator received in one second, and most mutations of one machine.
    pub peak_requests_per_sec: usize,
    /// Most mutating calls to one machine within one second.
    pub peak_machine_mutations_per_sec: usize,
    /// Per app after the faults stopped: ticks it took to converge (None: not within 3).
    pub convergence: BTreeMap<String, String>,
    /// Whether the loop task ended by itself (it must not).
    pub loop_exited_early: bool,
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "soak: {:.0} s, {} ticks over {} apps",
            self.elapsed.as_secs_f64(),
            self.ticks,
            self.ticks_by_app.len()
        )?;
        let line = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(f, "faults: {}", line(&self.faults))?;
        writeln!(f, "calls (simulator, route status): {}", line(&self.calls))?;
        writeln!(
            f,
            "calls (autoscaler, op outcome): {}",
            line(&self.outcomes)
        )?;
        writeln!(
            f,
            "peak requests/s: {}, peak mutations of one machine in 1 s: {}",
            self.peak_requests_per_sec, self.peak_machine_mutations_per_sec
        )?;
        writeln!(
            f,
            "rss: {} KiB after warm-up, {} KiB at the end",
            self.rss_warm_kib, self.rss_end_kib
        )?;
        writeln!(
            f,
            "convergence after the faults stopped: {}",
            self.convergence
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        writeln!(
            f,
            "violations: {} {:?}",
            self.violation_count, self.violations_by_kind
        )?;
        for v in &self.violations {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}

/// Per-machine sliding windows of mutations (time, `route status`), and the global one.
#[derive(Debug, Default)]
struct Rates {
    per_machine: BTreeMap<String, VecDeque<(Duration, String)>>,
    all: VecDeque<Duration>,
    peak_all: usize,
    peak_machine: usize,
}

const MUTATING: &[&str] = &[
    "create", "start", "stop", "suspend", "destroy", "cordon", "uncordon",
];

impl Rates {
    fn add(&mut self, r: &LoggedRequest, calls: &mut BTreeMap<String, usize>, truth: &Shared) {
        *calls
            .entry(format!("{} {}", r.route, r.status))
            .or_default() += 1;
        let sec = Duration::from_secs(1);
        self.all.push_back(r.at);
        while self
            .all
            .front()
            .is_some_and(|t| r.at.saturating_sub(*t) >= sec)
        {
            self.all.pop_front();
        }
        self.peak_all = self.peak_all.max(self.all.len());
        if !MUTATING.contains(&r.route.as_str()) {
            return;
        }
        let Some(id) = &r.machine_id else {
            return;
        };
        if lock(truth).foreign.contains(id) {
            lock(truth).violation(format!(
                "{} {} {id} of another process group",
                r.method, r.route
            ));
        }
        let w = self.per_machine.entry(id.clone()).or_default();
        w.push_back((r.at, format!("{} {}", r.route, r.status)));
        while w
            .front()
            .is_some_and(|(t, _)| r.at.saturating_sub(*t) >= sec)
        {
            w.pop_front();
        }
        self.peak_machine = self.peak_machine.max(w.len());
        if w.len() > 3 {
            let n = w.len();
            // Which requests, with their answers and times: retries after a 429 or a 5xx are
            // requests too.
            let seen: Vec<String> = w
                .iter()
                .map(|(t, call)| format!("{call} at {:.3}s", t.as_secs_f64()))
                .collect();
            lock(truth).violation(format!(
                "{n} mutating calls to {id} within one second: {}",
                seen.join(", ")
            ));
        }
    }

    fn prune(&mut self, now: Duration) {
        self.per_machine.retain(|_, w| {
            w.back()
                .is_some_and(|(t, _)| now.saturating_sub(*t) < Duration::from_secs(2))
        });
    }
}

fn apps(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("soak-{i}")).collect()
}

fn is_leaving(state: &str) -> bool {
    matches!(state, "destroying" | "destroyed")
}

/// One pass of the state checks over every app.
fn check_state(sim: &Simulator, truth: &Shared, apps: &[String]) {
    let now = Instant::now();
    let mut t = lock(truth);
    for app in apps {
        let machines = sim.machines(app);
        let ours: Vec<_> = machines
            .iter()
            .filter(|m| m.process_group.as_deref() == Some("app"))
            .collect();
        let live = ours.iter().filter(|m| !is_leaving(&m.state)).count();
        if live == 0 {
            t.violation(format!("{app} has no live machine"));
        }
        let since = now.checked_sub(CAME_BACK).unwrap_or(t.t0);
        let counted: Vec<_> = ours
            .iter()
            .filter(|m| {
                m.host_status == "ok" && !Truth::touched_in(t.unreachable.get(&m.id), since)
            })
            .collect();
        let started = counted
            .iter()
            .filter(|m| m.state == "started" || m.state == "starting")
            .count();
        let created = counted.iter().filter(|m| !is_leaving(&m.state)).count();
        let max_started = t.bound(app, now, true);
        let ambiguous = t.ambiguous_creates.get(app).map_or(0, |c| {
            c.iter()
                .filter(|at| **at >= now.checked_sub(EFFECT_WINDOW).unwrap_or(t.t0))
                .count()
        });
        let max_created = t.bound(app, now, false) + ambiguous;
        // The autoscaler raised a count above every target it may have acted on: a counted
        // machine that was not started became started, or a machine never seen appeared. A
        // count that stays above after a target fell (stops failing, or not yet sent), or a
        // machine counted again after its host came back, is not a violation here: it is noted,
        // and convergence is checked when the faults stop.
        let started_ids: BTreeSet<String> = counted
            .iter()
            .filter(|m| m.state == "started" || m.state == "starting")
            .map(|m| m.id.clone())
            .collect();
        let counted_ids: BTreeSet<String> = counted.iter().map(|m| m.id.clone()).collect();
        let last = t.last_ids.remove(app.as_str()).unwrap_or_default();
        let newly_started = started_ids
            .iter()
            .filter(|id| last.counted.contains(*id) && !last.started.contains(*id))
            .count();
        let newly_created = counted
            .iter()
            .filter(|m| !is_leaving(&m.state) && !last.seen.contains(&m.id))
            .count();
        if started > max_started {
            let recent_start_timeout = t.start_timeouts.get(app.as_str()).is_some_and(|c| {
                c.iter()
                    .any(|at| *at >= now.checked_sub(EFFECT_WINDOW).unwrap_or(t.t0))
            });
            if newly_started > 0 && recent_start_timeout {
                // The fixed bugs: a spare start, or the next tick's start, after a timed-out start
                // that took effect.
                t.violation(format!(
                    "{app}: {KNOWN_SPARE}: {started} started, above every max target of the last {EFFECT_WINDOW:?} ({max_started})"
                ));
            } else if newly_started > 0 {
                t.violation(format!(
                    "{app}: {newly_started} machine(s) started, {started} started, above every max target of the last {EFFECT_WINDOW:?} ({max_started})"
                ));
            } else {
                *t.chaos
                    .entry("samples_above_max_started".to_owned())
                    .or_default() += 1;
            }
        }
        if created > max_created {
            if newly_created > 0 {
                t.violation(format!(
                    "{app}: {newly_created} machine(s) created, {created} created, above every max target of the last {EFFECT_WINDOW:?} plus unanswered creates ({max_created})"
                ));
            } else {
                *t.chaos
                    .entry("samples_above_max_created".to_owned())
                    .or_default() += 1;
            }
        }
        let mut seen = last.seen;
        seen.extend(ours.iter().map(|m| m.id.clone()));
        t.last_ids.insert(
            app.clone(),
            LastIds {
                started: started_ids,
                counted: counted_ids,
                seen,
            },
        );
    }
    t.prune(now);
}

/// Sets up the world, runs the loop under chaos for `self.chaos`, stops the faults, checks
/// convergence, stops the loop, and returns the report.
///
/// Checked continuously (a watcher every 50 ms, the request log every 500 ms, and each action
/// as it is sent): started and created counts never above the highest max target the ticks of
/// the effect window collected when the autoscaler raises them (machines back from an
/// unreachable host and creates whose answer never came aside; a count left above a target
/// that fell is counted in `samples_above_max_*` and settled by the convergence check); at least one live machine per app; no action on a machine of
/// another process group, on a machine whose host was unreachable when the tick listed, or on
/// an app whose deploy was in progress at the tick's release check; at most 3 mutating calls
/// to one machine in any second. At the end: every app at its targets within 3 ticks after the
/// faults stopped, the loop still running, RSS at the end at most 1.5 × the RSS after warm-up.
impl Soak {
    /// Runs the soak.
    pub async fn run(&self) -> SoakReport {
        let started_at = Instant::now();
        let apps = apps(self.apps);
        let mut cfg = SimConfig {
            seed: self.seed,
            timing: Timing {
                created: DurRange::ms(20, 100),
                starting: DurRange::ms(50, 400),
                stopping: DurRange::ms(50, 400),
                suspending: DurRange::ms(50, 400),
                destroying: DurRange::ms(50, 300),
                destroyed_visible_ms: 1_000,
            },
            ..SimConfig::default()
        };
        cfg.request_log_limit = 1_000_000;
        let sim = Simulator::start(cfg).await.expect("simulator");
        let truth: Shared = Arc::new(Mutex::new(Truth {
            t0: Instant::now(),
            collected: BTreeMap::new(),
            loads: BTreeMap::new(),
            unreachable: BTreeMap::new(),
            deploys: BTreeMap::new(),
            foreign: BTreeSet::new(),
            initial: BTreeMap::new(),
            first_collect: BTreeMap::new(),
            last_ids: BTreeMap::new(),
            collect_at: BTreeMap::new(),
            list_at: BTreeMap::new(),
            release_checks: BTreeMap::new(),
            ambiguous_creates: BTreeMap::new(),
            start_timeouts: BTreeMap::new(),
            ticks: BTreeMap::new(),
            ops: BTreeMap::new(),
            chaos: BTreeMap::new(),
            violations: Vec::new(),
            violation_count: 0,
            by_kind: BTreeMap::new(),
        }));
        let mut rng = Rng::new(self.seed);
        for (i, app) in apps.iter().enumerate() {
            sim.add_app("soak-org", app);
            for _ in 0..2 {
                sim.add_machine(app, MachineSpec::new().state("started").region("iad"));
            }
            sim.add_machine(app, MachineSpec::new().state("stopped").region("iad"));
            let worker = sim.add_machine(
                app,
                MachineSpec::new()
                    .state("started")
                    .process_group(Some("worker")),
            );
            let none =
                sim.add_machine(app, MachineSpec::new().state("stopped").process_group(None));
            let mut t = lock(&truth);
            t.foreign.insert(worker);
            t.foreign.insert(none);
            t.loads.insert(app.clone(), [24.0, 0.0, 8.0, 16.0][i % 4]);
            t.initial
                .insert(app.clone(), (2, if i == 0 { 4 } else { 3 }));
        }
        // A machine whose start always fails, in the first app (the chaos task moves the fault
        // to the first start candidate when this machine is destroyed).
        let failing = sim.add_machine(&apps[0], MachineSpec::new().state("stopped").region("iad"));
        sim.configure(|c| {
            c.faults.failing_starts.insert(failing.clone());
        });
        sim.add_app("other-org", "not-soak");
        sim.set_random_faults(faults());
        sim.configure(|c| c.faults.boot_failure_probability = 0.3);

        let base = sim.base_url();
        let concurrency = self.concurrency.to_string();
        let settings = [
            ("FAS_APP_NAME", "soak-*"),
            ("FAS_ORG", "soak-org"),
            ("FAS_API_TOKEN", sim.token()),
            ("FLY_FLAPS_BASE_URL", base.as_str()),
            ("FLY_API_BASE_URL", base.as_str()),
            ("FAS_CREATED_MACHINE_COUNT", CREATED_EXPR),
            ("FAS_STARTED_MACHINE_COUNT", STARTED_EXPR),
            // Creates do not boot: with `started` (the default) a clone boots and pushes the
            // started count above max started until the next tick stops it (as in Go).
            ("FAS_INITIAL_MACHINE_STATE", "stopped"),
            ("FAS_INTERVAL", "1s"),
            ("FAS_TIMEOUT", "3s"),
            // A fleet: at the Go default of 1 the ticks of many apps queue one behind the other
            // (a 30-app soak made only ~3 ticks a second).
            ("FAS_CONCURRENCY", concurrency.as_str()),
            ("FAS_APP_LIST_REFRESH_INTERVAL", "10s"),
        ];
        let config = super::fake_fly::test_config(&settings);
        let mut cc = ClientConfig::new(sim.token());
        cc.machines_base_url.clone_from(&base);
        cc.graphql_base_url.clone_from(&base);
        cc.timeout = CLIENT_TIMEOUT;
        cc.retry = RetryPolicy {
            max_total: RETRY_TOTAL,
            ..RetryPolicy::default()
        };
        let client = Client::new(cc).expect("client");
        let fly = Observed {
            client,
            truth: truth.clone(),
        };
        let collectors: Vec<Arc<dyn Collector>> = vec![Arc::new(Loads(truth.clone()))];
        let reconciler = Arc::new(Reconciler::new(Arc::new(config), Arc::new(fly), collectors));
        let shutdown = CancellationToken::new();
        let mut task = tokio::spawn(schedule::run(reconciler, shutdown.clone()));

        let mut report = SoakReport::default();
        let mut rates = Rates::default();
        let warm_up = (self.chaos / 4).min(Duration::from_secs(60));
        let chaos_end = Instant::now() + self.chaos;
        let mut chaos = Chaos::new(&apps, &mut rng);
        let mut next_log = Instant::now();
        let mut next_purge = Instant::now();
        let mut warm_measured = false;
        let mut watch = tokio::time::interval(Duration::from_millis(50));
        while Instant::now() < chaos_end {
            tokio::select! {
                _ = watch.tick() => {}
                r = &mut task => {
                    report.loop_exited_early = true;
                    lock(&truth).violation(format!("the loop ended: {r:?}"));
                    break;
                }
            }
            let now = Instant::now();
            chaos.step(&sim, &truth, &apps, &mut rng, now);
            check_state(&sim, &truth, &apps);
            if now >= next_log {
                for r in sim.drain_request_log() {
                    rates.add(&r, &mut report.calls, &truth);
                }
                rates.prune(now.duration_since(lock(&truth).t0));
                next_log = now + Duration::from_millis(500);
            }
            if now >= next_purge {
                sim.purge_destroyed();
                next_purge = now + Duration::from_secs(5);
            }
            if !warm_measured && now.duration_since(started_at) >= warm_up {
                report.rss_warm_kib = rss_kib();
                warm_measured = true;
            }
        }

        // The faults stop: hosts back, deploys done, no random faults or boot failures.
        chaos.stop(&sim, &truth);
        sim.set_random_faults(Vec::new());
        sim.configure(|c| {
            c.faults.boot_failure_probability = 0.0;
            c.faults.failing_starts.clear();
        });
        let final_loads: BTreeMap<String, f64> = apps
            .iter()
            .map(|a| (a.clone(), [0.0, 8.0, 12.0, 20.0][rng.below(4)]))
            .collect();
        lock(&truth).loads.clone_from(&final_loads);
        // Ticks already started may carry old loads; convergence is counted in ticks begun after now.
        let at_stop: BTreeMap<String, u64> = lock(&truth).ticks.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut pending: BTreeSet<String> = apps.iter().cloned().collect();
        while !pending.is_empty() && Instant::now() < deadline && !report.loop_exited_early {
            tokio::time::sleep(Duration::from_millis(50)).await;
            check_state(&sim, &truth, &apps);
            for r in sim.drain_request_log() {
                rates.add(&r, &mut report.calls, &truth);
            }
            let ticks = lock(&truth).ticks.clone();
            for app in pending.clone() {
                let done = ticks
                    .get(&app)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(at_stop.get(&app).copied().unwrap_or(0));
                // A 4th tick begun means 3 whole ticks ran after the faults stopped (never two
                // ticks of one app at once).
                if done >= 4 {
                    let load = final_loads[&app];
                    let verdict = converged(&sim, &app, load);
                    report.convergence.insert(app.clone(), verdict.clone());
                    if verdict != "ok" {
                        lock(&truth)
                            .violation(format!("{app} not converged within 3 ticks: {verdict}"));
                    }
                    pending.remove(&app);
                }
            }
        }
        for app in pending {
            lock(&truth).violation(format!(
                "{app} did not tick 3 times within 60 s after the faults stopped"
            ));
        }
        if task.is_finished() && !report.loop_exited_early {
            report.loop_exited_early = true;
            lock(&truth).violation("the loop ended by itself".to_owned());
        }
        report.rss_end_kib = rss_kib();
        if !warm_measured {
            report.rss_warm_kib = report.rss_end_kib;
        }
        if report.rss_end_kib * 2 > report.rss_warm_kib * 3 {
            lock(&truth).violation(format!(
                "rss grew from {} KiB to {} KiB (more than 1.5 x)",
                report.rss_warm_kib, report.rss_end_kib
            ));
        }
        shutdown.cancel();
        if !report.loop_exited_early {
            let stopped = tokio::time::timeout(Duration::from_secs(30), &mut task).await;
            if !matches!(stopped, Ok(Ok(Ok(())))) {
                lock(&truth).violation(format!("the loop did not drain cleanly: {stopped:?}"));
            }
        }
        for r in sim.drain_request_log() {
            rates.add(&r, &mut report.calls, &truth);
        }

        let t = lock(&truth);
        report.elapsed = started_at.elapsed();
        report.ticks_by_app = t.ticks.clone();
        report.ticks = t.ticks.values().sum();
        report.faults = sim.injected_faults();
        report.faults.extend(t.chaos.clone());
        report.outcomes = t.ops.clone();
        report.violations = t.violations.clone();
        report.violation_count = t.violation_count;
        report.violations_by_kind = t.by_kind.clone();
        report.peak_requests_per_sec = rates.peak_all;
        report.peak_machine_mutations_per_sec = rates.peak_machine;
        report
    }
}

/// The random faults: 10 % 5xx, 10 % 429 and 2 % slow answers on every route.
fn faults() -> Vec<RandomFault> {
    let any = FaultMatch::default();
    // Each candidate is drawn in order (the first that fires wins), so the later ones are
    // scaled up to keep the overall rates at 2 %, 10 % and 10 %.
    let mut out = Vec::new();
    let mut left = 1.0;
    for (p, fault) in [
        (0.02, FaultKind::Delay { ms: SLOW_MS }),
        (0.10, FaultKind::Status { status: 429 }),
        (0.025, FaultKind::Status { status: 500 }),
        (0.025, FaultKind::Status { status: 502 }),
        (0.025, FaultKind::Status { status: 503 }),
        (0.025, FaultKind::Status { status: 504 }),
    ] {
        out.push(RandomFault {
            matches: any.clone(),
            probability: p / left,
            fault,
        });
        left -= p;
    }
    out
}

/// Whether `app` is at its targets: created count exact, started count at the target (or every
/// machine that can start is started).
fn converged(sim: &Simulator, app: &str, load: f64) -> String {
    let ours: Vec<_> = sim
        .machines(app)
        .into_iter()
        .filter(|m| m.process_group.as_deref() == Some("app") && m.host_status == "ok")
        .collect();
    let created = ours.iter().filter(|m| !is_leaving(&m.state)).count();
    let started = ours
        .iter()
        .filter(|m| m.state == "started" || m.state == "starting")
        .count();
    let startable = ours
        .iter()
        .filter(|m| {
            matches!(
                m.state.as_str(),
                "started" | "starting" | "stopped" | "suspended"
            )
        })
        .count();
    let want_created = target_created(load);
    let want_started = target_started(load).min(startable);
    if created == want_created && started == want_started {
        "ok".to_owned()
    } else {
        let states: Vec<&str> = ours.iter().map(|m| m.state.as_str()).collect();
        format!(
            "load {load}: created {created} (want {want_created}), started {started} (want {want_started}); states {states:?}"
        )
    }
}

/// The chaos schedule: loads, unreachable hosts, deploys.
struct Chaos {
    next_load: BTreeMap<String, Instant>,
    /// (app, machine, until)
    down: Vec<(String, String, Instant)>,
    next_down: Instant,
    /// (app, until)
    deploying: Vec<(String, Instant)>,
    next_deploy: Instant,
    failing: Option<String>,
    next_failing: Instant,
}

impl Chaos {
    fn new(apps: &[String], rng: &mut Rng) -> Chaos {
        let now = Instant::now();
        Chaos {
            next_load: apps
                .iter()
                .map(|a| {
                    (
                        a.clone(),
                        now + Duration::from_millis(rng.range(1_000, 6_000)),
                    )
                })
                .collect(),
            down: Vec::new(),
            next_down: now + Duration::from_secs(3),
            deploying: Vec::new(),
            next_deploy: now + Duration::from_secs(5),
            failing: None,
            next_failing: now + Duration::from_secs(2),
        }
    }

    fn count(truth: &Shared, kind: &str) {
        *lock(truth).chaos.entry(kind.to_owned()).or_default() += 1;
    }

    fn step(
        &mut self,
        sim: &Simulator,
        truth: &Shared,
        apps: &[String],
        rng: &mut Rng,
        now: Instant,
    ) {
        for app in apps {
            if self.next_load[app] > now {
                continue;
            }
            let mut t = lock(truth);
            let cur = t.loads.get(app).copied().unwrap_or(0.0);
            let (kind, load) = match rng.below(5) {
                0 => ("load_rise", (cur + rng.range(4, 16) as f64).min(48.0)),
                1 => ("load_fall", (cur - rng.range(4, 16) as f64).max(0.0)),
                2 => ("load_zero", 0.0),
                3 => ("load_spike", 48.0),
                _ => ("load_random", rng.range(0, 40) as f64),
            };
            t.loads.insert(app.clone(), load);
            *t.chaos.entry(kind.to_owned()).or_default() += 1;
            drop(t);
            let hold = if kind == "load_spike" {
                rng.range(2_000, 4_000)
            } else {
                rng.range(5_000, 20_000)
            };
            self.next_load
                .insert(app.clone(), now + Duration::from_millis(hold));
        }
        // A machine whose start always fails: the first start candidate of the first app (the
        // lowest id among its stopped machines), chosen again when it is gone.
        if now >= self.next_failing {
            let ours: Vec<_> = sim
                .machines(&apps[0])
                .into_iter()
                .filter(|m| m.process_group.as_deref() == Some("app") && !is_leaving(&m.state))
                .collect();
            let present = self
                .failing
                .as_ref()
                .is_some_and(|f| ours.iter().any(|m| &m.id == f && m.state == "stopped"));
            if !present
                && let Some(m) = ours
                    .iter()
                    .filter(|m| m.state == "stopped")
                    .min_by(|a, b| a.id.cmp(&b.id))
            {
                let id = m.id.clone();
                sim.configure(|c| {
                    c.faults.failing_starts.clear();
                    c.faults.failing_starts.insert(id.clone());
                });
                self.failing = Some(id);
                Self::count(truth, "failing_start_machine");
            }
            self.next_failing = now + Duration::from_secs(2);
        }
        // Hosts come back.
        let (back, still): (Vec<_>, Vec<_>) =
            self.down.drain(..).partition(|(_, _, until)| *until <= now);
        self.down = still;
        for (app, id, _) in back {
            Self::host_back(sim, truth, &app, &id);
        }
        if now >= self.next_down {
            let app = &apps[rng.below(apps.len())];
            let candidates: Vec<String> = sim
                .machines(app)
                .into_iter()
                .filter(|m| {
                    m.process_group.as_deref() == Some("app")
                        && !is_leaving(&m.state)
                        && m.host_status == "ok"
                })
                .map(|m| m.id)
                .collect();
            if !candidates.is_empty() && !self.down.iter().any(|(a, _, _)| a == app) {
                let id = candidates[rng.below(candidates.len())].clone();
                // The simulator first, then the record: the recorded interval is never wider.
                sim.set_host_status(app, &id, "unreachable");
                let now = Instant::now();
                lock(truth)
                    .unreachable
                    .entry(id.clone())
                    .or_default()
                    .push((now, None));
                Self::count(truth, "host_unreachable");
                self.down.push((
                    app.clone(),
                    id,
                    now + Duration::from_millis(rng.range(8_000, 15_000)),
                ));
            }
            self.next_down = now + Duration::from_millis(rng.range(2_000, 5_000));
        }
        // Deploys end.
        let (done, still): (Vec<_>, Vec<_>) = self
            .deploying
            .drain(..)
            .partition(|(_, until)| *until <= now);
        self.deploying = still;
        for (app, _) in done {
            Self::deploy_done(sim, truth, &app);
        }
        if now >= self.next_deploy {
            let app = &apps[rng.below(apps.len())];
            if !self.deploying.iter().any(|(a, _)| a == app) {
                sim.set_release_status(app, Some("running"));
                let now = Instant::now();
                lock(truth)
                    .deploys
                    .entry(app.clone())
                    .or_default()
                    .push((now, None));
                Self::count(truth, "deploy");
                self.deploying.push((
                    app.clone(),
                    now + Duration::from_millis(rng.range(10_000, 18_000)),
                ));
            }
            self.next_deploy = now + Duration::from_millis(rng.range(6_000, 15_000));
        }
    }

    fn host_back(sim: &Simulator, truth: &Shared, app: &str, id: &str) {
        sim.set_host_status(app, id, "ok");
        let now = Instant::now();
        if let Some(iv) = lock(truth)
            .unreachable
            .get_mut(id)
            .and_then(|iv| iv.last_mut())
        {
            iv.1 = Some(now);
        }
    }

    fn deploy_done(sim: &Simulator, truth: &Shared, app: &str) {
        // The release is marked complete first; the interval closes after, so a check never
        // sees the deploy over while the simulator still says `running`.
        sim.set_release_status(app, Some("complete"));
        let now = Instant::now();
        if let Some(iv) = lock(truth)
            .deploys
            .get_mut(app)
            .and_then(|iv| iv.last_mut())
        {
            iv.1 = Some(now);
        }
    }

    fn stop(&mut self, sim: &Simulator, truth: &Shared) {
        for (app, id, _) in std::mem::take(&mut self.down) {
            Self::host_back(sim, truth, &app, &id);
        }
        for (app, _) in std::mem::take(&mut self.deploying) {
            Self::deploy_done(sim, truth, &app);
        }
    }
}

//! The executor: applies a [`Plan`] through [`MachineOps`], every action at once up to a bound.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::{Either, select};
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::output::{Action, ActionKind, Plan, PlannedAction};

/// What the executor needs from the outside world (the binary adapts `fas_flyapi::Client`).
///
/// Each call should carry its own timeout (the executor never cancels an in-flight call).
#[async_trait::async_trait]
pub trait MachineOps: Send + Sync {
    /// Clones `source` into `region` (created stopped when `skip_launch`); returns the new id.
    async fn create(
        &self,
        source: &str,
        region: &str,
        skip_launch: bool,
    ) -> Result<String, OpError>;
    /// Starts (or resumes) a machine.
    async fn start(&self, id: &str) -> Result<(), OpError>;
    /// Stops a machine.
    async fn stop(&self, id: &str) -> Result<(), OpError>;
    /// Suspends a machine.
    async fn suspend(&self, id: &str) -> Result<(), OpError>;
    /// Destroys (kills) a machine.
    async fn destroy(&self, id: &str) -> Result<(), OpError>;
}

/// Broad cause of a failed operation, for metrics and log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpErrorKind {
    /// The API rate-limited the call (429).
    RateLimited,
    /// The machine no longer exists (404).
    NotFound,
    /// The machine is leased or changed state under us (409/412).
    Conflict,
    /// The call timed out.
    Timeout,
    /// Anything else.
    Other,
}

impl OpErrorKind {
    const fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate limited",
            Self::NotFound => "not found",
            Self::Conflict => "conflict",
            Self::Timeout => "timeout",
            Self::Other => "error",
        }
    }
}

/// The error of one [`MachineOps`] call: a kind, a message and optionally the original error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct OpError {
    kind: OpErrorKind,
    /// The call may have taken effect although it failed (a timeout, an answer lost in flight):
    /// the executor then calls in no spare, which could overshoot the target.
    effect_unknown: bool,
    message: String,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl OpError {
    /// An error of `kind` with a message.
    pub fn new(kind: OpErrorKind, message: impl Into<String>) -> OpError {
        OpError {
            kind,
            // A timeout never proves that nothing happened.
            effect_unknown: kind == OpErrorKind::Timeout,
            message: message.into(),
            source: None,
        }
    }

    /// [`OpErrorKind::Other`] with a message.
    pub fn other(message: impl Into<String>) -> OpError {
        Self::new(OpErrorKind::Other, message)
    }

    /// Keeps the original error as the [`std::error::Error::source`].
    pub fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> OpError {
        self.source = Some(Arc::new(source));
        self
    }

    /// Marks the call as one that may have taken effect although it failed (e.g. an answer lost
    /// after the request was sent). See [`OpError::effect_unknown`].
    pub fn with_effect_unknown(mut self) -> OpError {
        self.effect_unknown = true;
        self
    }

    /// Whether the failed call may still have taken effect ([`OpErrorKind::Timeout`] always
    /// may). The executor calls in no spare for such a failure: if the call did take effect, a
    /// spare would push the count past the target.
    pub const fn effect_unknown(&self) -> bool {
        self.effect_unknown
    }

    /// The broad cause.
    pub const fn kind(&self) -> OpErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl PartialEq for OpError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Serialize for OpError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("OpError", 2)?;
        st.serialize_field("kind", &self.kind)?;
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}

/// How the executor runs a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecPolicy {
    /// Max calls in flight (at least 1; 0 is treated as 1). 1 is the Go behaviour (sequential).
    pub concurrency: usize,
}

impl ExecPolicy {
    /// Default concurrency: 1 000, a safety bound rather than a pacing choice.
    ///
    /// Fly's budget is per action and per machine (1/s, burst 3), so calls on distinct machines
    /// do not share a bucket and more calls in flight cause no 429: every action of a plan of up
    /// to 1 000 actions goes out at once, and the plan takes one round trip. The client's own
    /// token buckets still pace repeated calls on one machine, and creates, which share one
    /// per-app bucket, are capped per tick ([`crate::ActionLimits`]) and paced by the client.
    ///
    /// The bound keeps a runaway plan from opening an unbounded number of sockets: over HTTP/2
    /// the calls share a few multiplexed connections, but over plain HTTP/1.1 each call in
    /// flight holds one connection (and one file descriptor), kept in the client's pool for the
    /// next tick. See "Executor" in `docs/planner.md`.
    pub const DEFAULT_CONCURRENCY: usize = 1_000;

    /// One call at a time, in plan order (reproduces the Go reconciler).
    pub const fn sequential() -> ExecPolicy {
        ExecPolicy { concurrency: 1 }
    }
}

impl Default for ExecPolicy {
    fn default() -> Self {
        ExecPolicy {
            concurrency: Self::DEFAULT_CONCURRENCY,
        }
    }
}

/// The result of one action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", content = "error", rename_all = "snake_case")]
pub enum Outcome {
    /// The call succeeded.
    Ok,
    /// The call failed (not retried within this plan).
    Failed(OpError),
    /// Not launched: the `stop` future resolved first (deadline or cancellation).
    Skipped,
}

/// One action and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOutcome {
    /// The action.
    pub action: Action,
    /// What happened.
    pub result: Outcome,
    /// `true` when this was a spare, run because an action of its kind failed.
    pub spare: bool,
    /// The new machine id of a successful create.
    pub created_id: Option<String>,
}

/// Outcomes of one executed plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// One per planned action, in plan order, then one per spare that a failure called in
    /// (in spare order). Spares never called in are not reported.
    pub outcomes: Vec<ActionOutcome>,
}

/// Ok/failed/skipped counts of one action kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindStats {
    /// Successful calls.
    pub ok: u32,
    /// Failed calls.
    pub failed: u32,
    /// Actions not launched.
    pub skipped: u32,
}

/// Per-kind stats of a report (feeds `fas_machine_start_count` / `fas_machine_stop_count`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReportStats {
    /// Creates.
    pub create: KindStats,
    /// Destroys.
    pub destroy: KindStats,
    /// Starts.
    pub start: KindStats,
    /// Stops.
    pub stop: KindStats,
    /// Suspends (the binary may add them to the stop metric).
    pub suspend: KindStats,
}

impl ReportStats {
    /// The stats of one kind.
    pub const fn of(&self, kind: ActionKind) -> KindStats {
        match kind {
            ActionKind::Create => self.create,
            ActionKind::Destroy => self.destroy,
            ActionKind::Start => self.start,
            ActionKind::Stop => self.stop,
            ActionKind::Suspend => self.suspend,
        }
    }
}

impl Report {
    /// Counts outcomes per action kind.
    pub fn stats(&self) -> ReportStats {
        let mut s = ReportStats::default();
        for o in &self.outcomes {
            let k = match o.action.kind() {
                ActionKind::Create => &mut s.create,
                ActionKind::Destroy => &mut s.destroy,
                ActionKind::Start => &mut s.start,
                ActionKind::Stop => &mut s.stop,
                ActionKind::Suspend => &mut s.suspend,
            };
            match o.result {
                Outcome::Ok => k.ok += 1,
                Outcome::Failed(_) => k.failed += 1,
                Outcome::Skipped => k.skipped += 1,
            }
        }
        s
    }
}

async fn run_one<O: MachineOps + ?Sized>(
    ops: &O,
    action: &Action,
) -> Result<Option<String>, OpError> {
    match action {
        Action::Create {
            source,
            region,
            skip_launch,
        } => ops.create(source, region, *skip_launch).await.map(Some),
        Action::Destroy { id } => ops.destroy(id).await.map(|()| None),
        Action::Start { id } => ops.start(id).await.map(|()| None),
        Action::Stop { id } => ops.stop(id).await.map(|()| None),
        Action::Suspend { id } => ops.suspend(id).await.map(|()| None),
    }
}

/// Runs the plan with at most `policy.concurrency` calls in flight, launching in plan order.
///
/// - Every planned action gets an outcome, in plan order; a failure does not stop the others.
/// - When a start/stop/suspend fails and surely did not take effect, the next unused spare of
///   the same kind is launched, so the successes never exceed the planned actions. A failure
///   whose effect is unknown ([`OpError::effect_unknown`]: a timeout, an answer lost in flight)
///   calls in no spare: the call may have worked, and a spare would overshoot the target.
///   Creates and destroys have no spares.
/// - No retries: a failed action is reported and the next tick re-plans from a fresh list.
/// - When `stop` resolves (deadline or cancellation), nothing new is launched (those actions
///   are [`Outcome::Skipped`]) and the calls in flight are awaited: bound them with per-call
///   timeouts in the [`MachineOps`] implementation.
///
/// Runtime-agnostic: `stop` can be a `tokio::time::sleep`, a cancellation token's future, or
/// `std::future::pending()` for no deadline.
pub async fn execute<O: MachineOps + ?Sized>(
    ops: &O,
    plan: &Plan,
    policy: &ExecPolicy,
    stop: impl Future<Output = ()>,
) -> Report {
    let concurrency = policy.concurrency.max(1);
    let n = plan.actions.len();
    let all: Vec<&PlannedAction> = plan.actions.iter().chain(plan.spares.iter()).collect();
    // Results indexed like `all`; spares stay `None` unless a failure calls them in.
    let mut results: Vec<Option<(Outcome, Option<String>)>> = vec![None; all.len()];
    let mut queue: VecDeque<usize> = (0..n).collect();
    let mut next_spare = n;
    let mut stopped = false;
    let mut in_flight = FuturesUnordered::new();
    let mut stop = pin!(stop.fuse());

    loop {
        if !stopped && stop.as_mut().now_or_never().is_some() {
            stopped = true;
        }
        while !stopped && in_flight.len() < concurrency {
            let Some(i) = queue.pop_front() else { break };
            let action = &all[i].action;
            in_flight.push(run_one(ops, action).map(move |r| (i, r)));
        }
        let finished = if stopped {
            match in_flight.next().await {
                Some(done) => done,
                None => break,
            }
        } else if in_flight.is_empty() {
            break;
        } else {
            match select(stop.as_mut(), in_flight.next()).await {
                Either::Left(((), _)) => {
                    stopped = true;
                    continue;
                }
                Either::Right((None, _)) => break,
                Either::Right((Some(done), _)) => done,
            }
        };
        let (i, result) = finished;
        let outcome = match result {
            Ok(id) => (Outcome::Ok, id),
            Err(e) => {
                let kind = all[i].action.kind();
                let spare = (!e.effect_unknown())
                    .then(|| (next_spare..all.len()).find(|&j| all[j].action.kind() == kind))
                    .flatten();
                if let Some(j) = spare {
                    next_spare = j + 1;
                    queue.push_back(j);
                }
                (Outcome::Failed(e), None)
            }
        };
        results[i] = Some(outcome);
    }

    // Whatever was queued but never launched is skipped (planned actions and called-in spares).
    for i in queue {
        results[i] = Some((Outcome::Skipped, None));
    }
    let outcomes = all
        .iter()
        .zip(results)
        .enumerate()
        .filter_map(|(i, (pa, r))| {
            let (result, created_id) = match r {
                Some(r) => r,
                None if i < n => (Outcome::Skipped, None),
                None => return None,
            };
            Some(ActionOutcome {
                action: pa.action.clone(),
                result,
                spare: i >= n,
                created_id,
            })
        })
        .collect();
    Report { outcomes }
}

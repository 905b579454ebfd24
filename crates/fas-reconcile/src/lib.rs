//! Pure reconciliation planner and plan executor for fly-autoscaler.
//!
//! # Data flow
//!
//! ```text
//! listed machines (converted by the binary from fas-flyapi) ─┐
//! Targets (evaluated expressions) ───────────────────────────┼─► plan() ─► Plan ─► execute() ─► Report
//! Policy (config) + RegionCursor (from the previous tick) ───┘   (pure)   (data)   (MachineOps)  (outcomes)
//! ```
//!
//! [`plan`] is a pure function: no IO, no clock (time comes in as `now`), no randomness, and its
//! output does not depend on the order of the listed machines. It never fails: situations like
//! "no machine to clone" or "not enough stopped machines" are [`Note`]s the binary logs. This
//! crate depends on no runtime, HTTP crate or `fas-flyapi` (a fact of its `Cargo.toml`); the
//! executor is generic over the [`MachineOps`] trait that the binary implements.
//!
//! # Rules (Go parity)
//!
//! 1. Only machines whose host is `ok` and whose process group equals
//!    [`Policy::process_group`] are counted or acted on (a machine without a group never
//!    matches).
//! 2. At most one kind of action per tick, checked in the Go order: create if
//!    created < min created; else destroy if created > max created; else start if
//!    started < min started; else stop if started > max started; else no scale.
//!    Created bounds are clamped to ≥ 1, so the last machine is never destroyed (machines on
//!    their way out are not counted, so they never stand in for it).
//! 3. Create clones a source machine (the binary sets the config's image to the full image
//!    ref); regions go round-robin over [`Policy::regions`] from the [`RegionCursor`] passed in,
//!    and [`Plan::next_cursor`] is where the next tick continues; with no regions, the source's
//!    region. `skip_launch` when [`Policy::initial_state`] is `stopped`.
//! 4. Destroy candidates: `failed`, then `stopped`, then `created`, then `suspended`, then
//!    `started`; within a state, machines without a config first, then lowest id.
//! 5. Start lowest id first (suspended before stopped); stop lowest id first.
//!
//! Better than Go: every state is classified on purpose (table below); suspended machines are
//! resumed before stopped ones boot; [`ScaleDown::Suspend`] can replace stop; the clone source
//! is the newest reachable machine of the group with a complete config (by `created_at`, ties
//! by the greatest id), not the first listed; [`ActionLimits`] caps actions per tick (creates
//! and destroys default to 10); start/stop plans carry [`Plan::spares`] that the executor uses
//! one-for-one when an action fails (as Go tried the next candidate), never exceeding the
//! target; no machine gets two actions in one plan; `failed` machines are the first to go
//! when created > max (Go never destroyed them); machines on their way out are not counted, so
//! one being destroyed can no longer let the last staying machine be destroyed (Go counted
//! every state).
//!
//! # Machine states
//!
//! | state | counts toward created | counts toward started | may be |
//! |---|---|---|---|
//! | `created` | yes | no | destroyed (3rd choice) |
//! | `starting` | yes | yes | nothing (not started again, not stopped) |
//! | `started` | yes | yes | stopped/suspended; destroyed (last choice) |
//! | `stopping` | yes | no | nothing (not stopped again) |
//! | `stopped` | yes | no | started (after suspended); destroyed (2nd choice) |
//! | `suspending` | yes | no | nothing |
//! | `suspended` | yes | no | started (1st choice: resumes faster); destroyed (4th choice) |
//! | `failed` | yes | no | destroyed (1st choice); never started, stopped or cloned |
//! | `replacing`, `updating` | yes | no | nothing (an update is in progress); never cloned |
//! | `destroying`, `destroyed`, `launch_failed`, `replaced`, `migrated` | no ([`StateClass::Leaving`]) | no | nothing; never cloned |
//! | `Other(_)` (`creating`, `restarting`, ...) | yes | no | nothing; never cloned; a note names the state |
//!
//! Every state of a machine that will still exist after the tick counts toward created, as in
//! Go: a machine not counted is cloned again (a `failed` clone every tick, a `replacing` one
//! until its update ends). `created` is usually a launch in progress, so it is counted but not
//! started. Unrecognised states are counted too but never acted on. States on their way out
//! ([`StateClass::Leaving`]) count toward nothing, so the created ≥ 1 rule is always about a
//! machine that stays. [`Counts::failed`] tells the binary how many counted machines are
//! `failed`. The table is [`MachineState::class`] plus the candidate lists in `plan.rs`; the
//! fixture tests in `tests/plan_fixtures.rs` pin each row.
//!
//! # Invariants and the tests that guard them
//!
//! Property tests (`tests/plan_props.rs`): started never pushed above max nor stopped below it;
//! created never below 1, counting only machines not on their way out; never more destroys
//! than the excess; no started machine destroyed while a failed, stopped or created one stays;
//! an update in progress never acted on; a clone source never `failed`, updating, on its way
//! out or unknown; at most one action (or spare) per machine, so never a start and a stop of
//! the same id; never an action on another group or an unreachable host;
//! the same plan for any order of the input. Snapshot tests: every Go reconciler case and the
//! state table in `tests/plan_fixtures.rs`, the better-than-Go rules in `tests/plan_rules.rs`.
//! Executor tests (`tests/exec.rs`): bounded concurrency, outcomes in plan order, failures
//! isolated, spares, deadline skips, sequential mode, Go's failed start/stop end to end.
//! `docs/planner.md` explains the choices.
//!
//! # Scale-down stabilization
//!
//! [`TargetHistory`] is the one piece of state besides the cursor: the binary records each
//! tick's targets in it and plans with what it returns, the max bounds raised to the highest
//! max of the last `scale-down-window` (mins, i.e. scale-up, untouched). Like [`plan`] it reads
//! no clock. Its tests (`tests/stabilize.rs`) check against a model that the stabilized max is
//! never below the current max nor above the highest max in the window, that mins and absent
//! bounds pass through, that a zero window changes nothing, and that time going backwards
//! neither panics nor holds a high max for longer than one window.
//!
//! # Behaviour against flapping
//!
//! [`BehaviorState`] applies a [`Behavior`] (`scale-up-max-step`, `scale-down-max-step`,
//! `scale-down-cooldown`, all off by default) after the window: [`BehaviorState::adjust`]
//! limits how far the min bounds rise above and the max bounds drop below the [`Current`]
//! counts in one tick, and holds the max bounds at the current counts for the cooldown after
//! the last scale-up, which [`BehaviorState::record_plan`] records (a plan with a create or a
//! start). It reads no clock either. It never raises a min nor lowers a max, never raises a
//! max above the current count, and never touches a min for a scale-down rule, so scale-up is
//! never delayed by one; its property tests (`tests/behavior.rs`) check that no plan exceeds a
//! step, that no scale-down is planned during the cooldown, that scale-up is never delayed by a
//! scale-down rule and that the defaults change nothing, and its table tests run a spiky
//! series through each rule (the same tables are in `docs/planner.md`).
//!
//! # Example
//!
//! ```
//! use std::time::SystemTime;
//! use fas_reconcile::*;
//!
//! struct Log(std::sync::Mutex<Vec<String>>);
//! #[async_trait::async_trait]
//! impl MachineOps for Log {
//!     async fn create(&self, s: &str, r: &str, _: bool) -> Result<String, OpError> {
//!         self.0.lock().unwrap().push(format!("create {s} {r}"));
//!         Ok("new".into())
//!     }
//!     async fn start(&self, id: &str) -> Result<(), OpError> {
//!         self.0.lock().unwrap().push(format!("start {id}"));
//!         Ok(())
//!     }
//!     async fn stop(&self, id: &str) -> Result<(), OpError> { Ok(()) }
//!     async fn suspend(&self, id: &str) -> Result<(), OpError> { Ok(()) }
//!     async fn destroy(&self, id: &str) -> Result<(), OpError> { Ok(()) }
//! }
//!
//! let machine = |id: &str, state: &str| Machine {
//!     id: id.into(), state: MachineState::parse(state), region: "iad".into(),
//!     process_group: Some("app".into()), host: HostStatus::Ok, has_config: true,
//!     created_at: None,
//! };
//! let machines = [machine("m1", "started"), machine("m2", "stopped"), machine("m3", "stopped")];
//! let targets = Targets { created: None, started: Some(Bounds::exactly(2)) };
//! let p = plan(&machines, &targets, &Policy::default(), RegionCursor(0), SystemTime::UNIX_EPOCH);
//! assert_eq!(p.kind(), PlanKind::Start);
//! assert_eq!(p.actions[0].action, Action::Start { id: "m2".into() });
//! println!("{}", p.render_table());
//!
//! let ops = Log(Default::default());
//! let report = futures_util::FutureExt::now_or_never(
//!     execute(&ops, &p, &ExecPolicy::default(), std::future::pending()),
//! ).expect("the fake never waits");
//! assert_eq!(report.stats().start.ok, 1);
//! assert_eq!(*ops.0.lock().unwrap(), ["start m2"]);
//! ```
// Library crates document every public item; the workspace lint only warns (binaries).
#![deny(missing_docs)]

mod behavior;
mod exec;
mod model;
mod output;
mod plan;
mod stabilize;

pub use behavior::{Behavior, BehaviorState, Current, Step};
pub use exec::{
    ActionOutcome, ExecPolicy, KindStats, MachineOps, OpError, OpErrorKind, Outcome, Report,
    ReportStats, execute,
};
pub use model::{
    ActionLimits, Bounds, HostStatus, InitialState, Machine, MachineState, Policy, RegionCursor,
    ScaleDown, StateClass, Targets,
};
pub use output::{Action, ActionKind, Counts, Note, NoteKind, Plan, PlanKind, PlannedAction};
pub use plan::plan;
pub use stabilize::TargetHistory;

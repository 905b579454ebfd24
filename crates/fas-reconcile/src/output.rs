//! The planner's output: actions, notes, counts and the [`Plan`] with its table rendering.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::model::{Bounds, RegionCursor, Targets};

/// One action on the Machines API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Clone `source` (its config, with the image set to its full image ref, done by the binary)
    /// into `region`; `skip_launch` creates it stopped.
    Create {
        /// Id of the machine whose config is cloned.
        source: String,
        /// Region of the new machine.
        region: String,
        /// Create without booting (`initial-machine-state: stopped`).
        skip_launch: bool,
    },
    /// Destroy (kill) a machine.
    Destroy {
        /// Machine id.
        id: String,
    },
    /// Start a stopped machine or resume a suspended one.
    Start {
        /// Machine id.
        id: String,
    },
    /// Stop a started machine.
    Stop {
        /// Machine id.
        id: String,
    },
    /// Suspend a started machine.
    Suspend {
        /// Machine id.
        id: String,
    },
}

/// The kind of an [`Action`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// [`Action::Create`].
    Create,
    /// [`Action::Destroy`].
    Destroy,
    /// [`Action::Start`].
    Start,
    /// [`Action::Stop`].
    Stop,
    /// [`Action::Suspend`].
    Suspend,
}

impl ActionKind {
    /// Lower-case name (`create`, `destroy`, `start`, `stop`, `suspend`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Destroy => "destroy",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Suspend => "suspend",
        }
    }
}

impl Action {
    /// The kind of this action.
    pub const fn kind(&self) -> ActionKind {
        match self {
            Self::Create { .. } => ActionKind::Create,
            Self::Destroy { .. } => ActionKind::Destroy,
            Self::Start { .. } => ActionKind::Start,
            Self::Stop { .. } => ActionKind::Stop,
            Self::Suspend { .. } => ActionKind::Suspend,
        }
    }

    /// The machine acted on (`None` for a create, which names a source instead).
    pub fn machine_id(&self) -> Option<&str> {
        match self {
            Self::Create { .. } => None,
            Self::Destroy { id }
            | Self::Start { id }
            | Self::Stop { id }
            | Self::Suspend { id } => Some(id),
        }
    }
}

/// `start m1`, `create from m1 in iad (skip_launch)`: the text of the plan table and the logs.
impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Create {
                source,
                region,
                skip_launch,
            } => {
                let stopped = if *skip_launch { " (skip_launch)" } else { "" };
                write!(f, "create from {source} in {region}{stopped}")
            }
            Self::Destroy { id } => write!(f, "destroy {id}"),
            Self::Start { id } => write!(f, "start {id}"),
            Self::Stop { id } => write!(f, "stop {id}"),
            Self::Suspend { id } => write!(f, "suspend {id}"),
        }
    }
}

/// An action and why it was planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAction {
    /// What to do (flattened into this object in JSON: `{"kind":"start","id":"m1","reason":..}`).
    #[serde(flatten)]
    pub action: Action,
    /// Why (short, for the decision record).
    pub reason: String,
}

/// Which step of the Go order the plan took; the `status` label of `fas_reconcile_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// created < min created.
    Create,
    /// created > max created.
    Destroy,
    /// started < min started.
    Start,
    /// started > max started (by stop or suspend).
    Stop,
    /// Nothing to do.
    NoScale,
}

impl PlanKind {
    /// The metric label: `create`, `destroy`, `start`, `stop`, `no_scale`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Destroy => "destroy",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::NoScale => "no_scale",
        }
    }
}

/// Category of a [`Note`], for callers that want to pick a log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// Created count below min but no machine can be cloned.
    NoMachineToClone,
    /// Fewer candidates than needed to reach a target.
    NotEnoughCandidates,
    /// An [`crate::ActionLimits`] cap cut the number of actions.
    Capped,
    /// A target was clamped (created ≥ 1) or min > max was resolved.
    TargetAdjusted,
    /// A machine is in a state the planner does not recognise.
    UnknownState,
    /// The same id was listed twice; only the first is considered.
    DuplicateId,
    /// Every machine of an earlier tick's creates ended `failed` (added by the binary, which
    /// remembers its creates; the planner never raises it).
    CreatesFailed,
}

/// Something the binary should log about this plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Category.
    pub kind: NoteKind,
    /// Human message (lower case).
    pub message: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Current counts of the eligible machines (reachable, in the process group).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Machines counted toward created (every state except those on their way out:
    /// `destroying`, `destroyed`, `launch_failed`, `replaced`, `migrated`).
    pub created: u32,
    /// Machines counted toward started (`started` + `starting`).
    pub started: u32,
    /// Machines in `failed` (included in `created`): clones that failed at boot stay here, so
    /// a create that keeps ending in failed machines shows up as `failed` growing.
    pub failed: u32,
    /// Eligible machines per listed state (states on their way out included).
    pub by_state: BTreeMap<String, u32>,
    /// Machines left out because their host is not `ok`.
    pub unreachable: u32,
    /// Reachable machines left out because they are in another process group.
    pub other_group: u32,
}

/// The decision of one tick: what to do and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The step taken (metric label).
    pub kind: PlanKind,
    /// Counts before acting.
    pub counts: Counts,
    /// The effective targets (created clamped to ≥ 1, min > max resolved).
    pub targets: Targets,
    /// Actions, all of one kind, in execution order.
    pub actions: Vec<PlannedAction>,
    /// Spare start/stop/suspend candidates: the executor runs one per failed action of the
    /// same kind, so successes never exceed the planned actions. At most `actions.len()`.
    pub spares: Vec<PlannedAction>,
    /// Things to log.
    pub notes: Vec<Note>,
    /// Region rotation position for the next tick.
    pub next_cursor: RegionCursor,
    /// The `now` the plan was made at (decision record only; nothing depends on it).
    /// JSON: `at_unix_ms`, milliseconds since the Unix epoch.
    #[serde(rename = "at_unix_ms", serialize_with = "unix_ms")]
    pub at: SystemTime,
}

impl Plan {
    /// `true` when there is nothing to execute.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The step taken, for `fas_reconcile_count{status}`.
    pub const fn kind(&self) -> PlanKind {
        self.kind
    }

    /// A short human table of the decision (used by the `plan` command and logs).
    pub fn render_table(&self) -> String {
        use std::fmt::Write as _;
        let c = &self.counts;
        let states: Vec<String> = c.by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let mut out = String::new();
        // Writing into a String never fails.
        let _ = writeln!(out, "step: {}", self.kind.as_str());
        let _ = writeln!(
            out,
            "counts: created {}, started {}; by state: {}; excluded: {} unreachable, {} other group",
            c.created,
            c.started,
            if states.is_empty() {
                "none".to_owned()
            } else {
                states.join(", ")
            },
            c.unreachable,
            c.other_group
        );
        let _ = writeln!(
            out,
            "targets: created {}, started {}",
            bounds_text(self.targets.created),
            bounds_text(self.targets.started)
        );
        render_actions(&mut out, "actions", &self.actions);
        if !self.spares.is_empty() {
            render_actions(&mut out, "spares", &self.spares);
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let _ = write!(out, "cursor: {}", self.next_cursor.0);
        out
    }
}

fn unix_ms<S: serde::Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    // Times before the epoch are not meaningful here; they serialise as 0.
    let ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    s.serialize_u64(u64::try_from(ms).unwrap_or(u64::MAX))
}

pub(crate) fn bounds_text(b: Option<Bounds>) -> String {
    match b {
        Some(b) => format!("{}..{}", b.min, b.max),
        None => "-".to_owned(),
    }
}

fn render_actions(out: &mut String, title: &str, actions: &[PlannedAction]) {
    use std::fmt::Write as _;
    if actions.is_empty() {
        let _ = writeln!(out, "{title}: none");
        return;
    }
    let _ = writeln!(out, "{title}:");
    let width = actions
        .iter()
        .map(|a| a.action.to_string().len())
        .max()
        .unwrap_or(0);
    for a in actions {
        let _ = writeln!(out, "  {:<width$}  {}", a.action.to_string(), a.reason);
    }
}

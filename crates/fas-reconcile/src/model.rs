//! Domain types the planner reads: machines as listed, targets, policy.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The state of a machine as listed by the Machines API.
///
/// How the planner treats each state is in the table of the crate documentation
/// ([`crate#machine-states`]) and in [`MachineState::class`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MachineState {
    /// Created but never launched (or a launch in progress).
    Created,
    /// Booting.
    Starting,
    /// Running.
    Started,
    /// Shutting down.
    Stopping,
    /// Stopped; can be started.
    Stopped,
    /// Writing its memory snapshot.
    Suspending,
    /// Suspended; resumes faster than a stopped machine boots.
    Suspended,
    /// Being destroyed: on its way out.
    Destroying,
    /// Destroyed (only listed with `include_deleted`, or briefly right after a destroy).
    Destroyed,
    /// Being replaced by an update (`fly machine update`, a deploy); the update ends in
    /// `started`, `stopped` or `created`.
    Replacing,
    /// Failed to boot. Persistent until a start, stop or destroy (a clone that fails at boot
    /// ends here).
    Failed,
    /// An update in place is in progress; it ends in `started`, `stopped` or `created`.
    Updating,
    /// A launch failed; moves on to `destroyed`.
    LaunchFailed,
    /// Terminal: an old version that an update replaced.
    Replaced,
    /// Terminal: the machine moved to another host.
    Migrated,
    /// Any other state string (`creating`, `restarting`, ...), kept verbatim.
    Other(String),
}

impl MachineState {
    /// Parses the wire string; unknown strings become [`MachineState::Other`].
    pub fn parse(s: &str) -> MachineState {
        match s {
            "created" => Self::Created,
            "starting" => Self::Starting,
            "started" => Self::Started,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "suspending" => Self::Suspending,
            "suspended" => Self::Suspended,
            "destroying" => Self::Destroying,
            "destroyed" => Self::Destroyed,
            "replacing" => Self::Replacing,
            "failed" => Self::Failed,
            "updating" => Self::Updating,
            "launch_failed" => Self::LaunchFailed,
            "replaced" => Self::Replaced,
            "migrated" => Self::Migrated,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Starting => "starting",
            Self::Started => "started",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Suspending => "suspending",
            Self::Suspended => "suspended",
            Self::Destroying => "destroying",
            Self::Destroyed => "destroyed",
            Self::Replacing => "replacing",
            Self::Failed => "failed",
            Self::Updating => "updating",
            Self::LaunchFailed => "launch_failed",
            Self::Replaced => "replaced",
            Self::Migrated => "migrated",
            Self::Other(s) => s,
        }
    }

    /// How the planner counts this state (the counting half of the state table; which
    /// states are acted on is decided by the candidate lists in `plan.rs`).
    pub fn class(&self) -> StateClass {
        match self {
            Self::Started | Self::Starting => StateClass::Started,
            // Every state of a machine that will still exist after the tick counts toward
            // created, as in Go: not counting one makes the planner clone another.
            Self::Created
            | Self::Stopping
            | Self::Stopped
            | Self::Suspending
            | Self::Suspended
            | Self::Replacing
            | Self::Updating
            | Self::Failed
            | Self::Other(_) => StateClass::NotStarted,
            Self::Destroying
            | Self::Destroyed
            | Self::LaunchFailed
            | Self::Replaced
            | Self::Migrated => StateClass::Leaving,
        }
    }
}

impl fmt::Display for MachineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MachineState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MachineState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

/// How a state counts toward the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateClass {
    /// Counts toward created and toward started.
    Started,
    /// Counts toward created, not toward started.
    NotStarted,
    /// On its way out (`destroying`, `destroyed`, `launch_failed`, `replaced`, `migrated`):
    /// counts toward nothing, is never acted on or cloned, and so never stands in for the last
    /// machine of the group.
    Leaving,
}

impl StateClass {
    /// The old name of [`StateClass::Leaving`], the one class that counts toward nothing
    /// (`replacing` and `failed`, once in it, now count toward created). Usable in patterns.
    #[deprecated(note = "use `StateClass::Leaving`")]
    #[allow(non_upper_case_globals)]
    pub const Ignored: StateClass = StateClass::Leaving;
}

/// Whether the machine's host can be reached (`host_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// `ok`: the only status the planner counts or acts on.
    Ok,
    /// `unreachable`.
    Unreachable,
    /// `unknown` or anything else.
    Unknown,
}

/// The domain view of one listed machine (the binary converts from `fas-flyapi`).
///
/// `Ord` compares the id first, so sorting machines sorts them by id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Machine {
    /// Machine id.
    pub id: String,
    /// Listed state.
    pub state: MachineState,
    /// Region code, e.g. `iad`.
    pub region: String,
    /// Process group (`fly_process_group` metadata); `None` never matches a configured group.
    pub process_group: Option<String>,
    /// Host reachability.
    pub host: HostStatus,
    /// `false` for machines listed with only an `incomplete_config`: never a clone source.
    pub has_config: bool,
    /// RFC 3339 creation time as listed (sortable text); picks the newest clone source.
    pub created_at: Option<String>,
}

/// Inclusive bounds of a machine count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Below this, act upward (create or start).
    pub min: u32,
    /// Above this, act downward (destroy or stop).
    pub max: u32,
}

impl Bounds {
    /// Both bounds equal to `n` (the `*-machine-count` settings).
    pub const fn exactly(n: u32) -> Bounds {
        Bounds { min: n, max: n }
    }
}

/// The evaluated targets of one tick; `None` means not configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// Machines that must exist (all counted states).
    pub created: Option<Bounds>,
    /// Machines that must be started (`started` + `starting`).
    pub started: Option<Bounds>,
}

/// State of newly created machines (`initial-machine-state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialState {
    /// Boot the clone (Go default).
    #[default]
    Started,
    /// Create it stopped (`skip_launch`).
    Stopped,
}

/// How started machines are scaled down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleDown {
    /// Stop them (the Go behaviour).
    #[default]
    Stop,
    /// Suspend them: they resume faster on the next scale-up.
    Suspend,
}

/// Per-tick caps on actions of each kind; `None` is unbounded.
///
/// The default bounds creates and destroys to [`ActionLimits::DEFAULT_CREATES`] and
/// [`ActionLimits::DEFAULT_DESTROYS`] so that one bad metric cannot create or destroy a fleet
/// in one tick (the next tick continues), and leaves starts and stops unbounded like Go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLimits {
    /// Max creates per tick.
    pub creates: Option<u32>,
    /// Max destroys per tick.
    pub destroys: Option<u32>,
    /// Max starts per tick.
    pub starts: Option<u32>,
    /// Max stops (or suspends) per tick.
    pub stops: Option<u32>,
}

impl ActionLimits {
    /// Default creates per tick: 10 (about 10 s of Fly's per-app create budget of 1/s).
    pub const DEFAULT_CREATES: u32 = 10;
    /// Default destroys per tick: 10.
    pub const DEFAULT_DESTROYS: u32 = 10;

    /// No cap at all (the Go behaviour).
    pub const fn unbounded() -> ActionLimits {
        ActionLimits {
            creates: None,
            destroys: None,
            starts: None,
            stops: None,
        }
    }
}

impl Default for ActionLimits {
    fn default() -> Self {
        ActionLimits {
            creates: Some(Self::DEFAULT_CREATES),
            destroys: Some(Self::DEFAULT_DESTROYS),
            starts: None,
            stops: None,
        }
    }
}

/// Static policy of one app (from the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Only machines of this process group are counted and acted on (default `app`).
    pub process_group: String,
    /// Regions for new machines, round-robin; empty: the clone source's region.
    pub regions: Vec<String>,
    /// State of new machines.
    pub initial_state: InitialState,
    /// How started machines are scaled down.
    pub scale_down: ScaleDown,
    /// Per-tick caps.
    pub limits: ActionLimits,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            process_group: "app".to_owned(),
            regions: Vec::new(),
            initial_state: InitialState::Started,
            scale_down: ScaleDown::Stop,
            limits: ActionLimits::default(),
        }
    }
}

/// Round-robin position in [`Policy::regions`], passed into [`crate::plan`] and returned as
/// [`crate::Plan::next_cursor`] so the rotation survives across ticks without hidden state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionCursor(pub usize);

//! Behaviour against flapping: per-tick steps and a cooldown after a scale-up.
//!
//! Like Kubernetes HPA's `behavior` policies, for Machines: `scale-up-max-step` and
//! `scale-down-max-step` limit how far one tick moves away from the current count, and
//! `scale-down-cooldown` forbids a scale-down for a while after a scale-up. Pure like
//! [`crate::plan`] and [`crate::TargetHistory`]: the time is an argument and no clock is read.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::{Bounds, Machine, Policy, RegionCursor, Targets};
use crate::output::{Action, Counts, Plan};
use crate::plan::plan;

/// How far one tick may move a count: a number of machines, or a percentage of the current
/// count.
///
/// A step is never less than one machine, so a limited scale still moves every tick
/// (`Machines(0)` and `Percent(0)` act as one machine). A percentage is rounded toward keeping
/// capacity: up for a scale-up, down for a scale-down (as HPA's percent policies).
///
/// ```
/// use fas_reconcile::Step;
///
/// assert_eq!(Step::Machines(3).up(10), 3);
/// assert_eq!(Step::Percent(50).up(3), 2, "1.5 rounded up");
/// assert_eq!(Step::Percent(50).down(3), 1, "1.5 rounded down");
/// assert_eq!(Step::Percent(50).up(0), 1, "at least one machine");
/// assert_eq!(Step::Percent(50).to_string(), "50%");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// At most this many machines per tick (`3`).
    Machines(u32),
    /// At most this percentage of the current count per tick (`"50%"`); more than 100 % is
    /// allowed for a scale-up (200 % triples the count at most).
    Percent(u32),
}

impl Step {
    /// The most machines a scale-up may add in one tick when `current` are counted:
    /// the number, or ⌈current × percent / 100⌉; at least 1.
    pub fn up(self, current: u32) -> u32 {
        self.machines(current, true)
    }

    /// The most machines a scale-down may remove in one tick when `current` are counted:
    /// the number, or ⌊current × percent / 100⌋; at least 1.
    pub fn down(self, current: u32) -> u32 {
        self.machines(current, false)
    }

    fn machines(self, current: u32, round_up: bool) -> u32 {
        let n = match self {
            Step::Machines(n) => n,
            Step::Percent(p) => {
                let scaled = u64::from(current) * u64::from(p);
                let n = if round_up {
                    scaled.div_ceil(100)
                } else {
                    scaled / 100
                };
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        };
        n.max(1)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Machines(n) => write!(f, "{n}"),
            Step::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The rules against flapping of one app (from the configuration). The default turns every
/// rule off, and then [`BehaviorState::adjust`] returns the targets unchanged (the Go
/// behaviour).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Behavior {
    /// `scale-up-max-step`: how far a min bound may rise above the current count in one tick
    /// (`None`: no limit).
    pub scale_up_max_step: Option<Step>,
    /// `scale-down-max-step`: how far a max bound may drop below the current count in one tick
    /// (`None`: no limit).
    pub scale_down_max_step: Option<Step>,
    /// `scale-down-cooldown`: no scale-down (stop, suspend or destroy) until this long after the
    /// last scale-up ([`BehaviorState::record_plan`]); zero: none.
    pub scale_down_cooldown: Duration,
}

impl Behavior {
    /// Whether every rule is off (the default).
    pub fn is_off(&self) -> bool {
        *self == Behavior::default()
    }
}

/// The counts the steps and the cooldown are measured from: created and started machines of
/// the listed machines, counted exactly as [`crate::plan`] counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Current {
    /// Machines counted toward created ([`Counts::created`]).
    pub created: u32,
    /// Machines counted toward started ([`Counts::started`]).
    pub started: u32,
}

impl Current {
    /// The counts of `machines` under `policy`: the ones [`crate::plan`] would report in
    /// [`Plan::counts`] for the same arguments (they are taken from a plan without targets, so
    /// the two can never disagree).
    pub fn of(machines: &[Machine], policy: &Policy) -> Current {
        let counted = plan(
            machines,
            &Targets::default(),
            policy,
            RegionCursor::default(),
            SystemTime::UNIX_EPOCH,
        );
        Current::from(&counted.counts)
    }
}

impl From<&Counts> for Current {
    fn from(c: &Counts) -> Current {
        Current {
            created: c.created,
            started: c.started,
        }
    }
}

/// What one app remembers for its [`Behavior`]: the time of the last scale-up.
///
/// Each tick, [`BehaviorState::adjust`] limits the targets handed to [`crate::plan`], then
/// [`BehaviorState::record_plan`] records the plan: a plan with at least one create or start
/// is a scale-up, whatever the outcome of its actions (a start that fails still shows that
/// the metric asked for more, and holding the scale-down is the safe side). Machines that Fly
/// starts by itself (proxy autostart) are not a scale-up by the autoscaler and start no
/// cooldown.
///
/// What `adjust` guarantees, for each bound present (created bounds against
/// [`Current::created`], started bounds against [`Current::started`]; an absent bound stays
/// absent):
/// - It never raises a min and never lowers a max: the rules only slow a change down; they
///   never start one, never reverse one, and never make a bound ask for more than the
///   evaluated one.
/// - A min is changed only when it is above the current count `c`, and then only by
///   `scale-up-max-step`: `c < min' ≤ min`, at most [`Step::up`] above `c`. A scale-up still
///   happens every tick (at least one machine); no scale-down rule ever touches a min, so a
///   scale-down rule never delays a scale-up.
/// - A max is changed only when it is below `c`, and then stays at most `c`: `max ≤ max' ≤ c`
///   (never raised above the current count, so a held max never asks for machines). During the
///   cooldown `max' = c` (no scale-down at all); otherwise, with `scale-down-max-step`,
///   `max' ≥ c - `[`Step::down`]`(c)`, and `max' < c` (a scale-down still happens).
/// - With [`Behavior::default`] the targets pass through unchanged.
///
/// The plan's own rules still apply on top (created bounds clamped to at least 1, min > max
/// resolved by raising max to min, per-tick caps), and they cannot break these limits: they
/// only raise a max or cap an action count.
///
/// Time going backwards (a wall-clock step) never panics: a scale-up stamped later than the
/// time given is treated as made at that time, so the cooldown lasts one full cooldown from
/// then and never longer.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use fas_reconcile::{Behavior, BehaviorState, Bounds, Current, Step, Targets};
///
/// let t0 = SystemTime::UNIX_EPOCH;
/// let behavior = Behavior {
///     scale_up_max_step: Some(Step::Machines(2)),
///     scale_down_max_step: Some(Step::Percent(50)),
///     scale_down_cooldown: Duration::from_secs(60),
/// };
/// let started = |n| Targets { created: None, started: Some(Bounds::exactly(n)) };
/// let now = |n| Current { created: 10, started: n };
/// let mut state = BehaviorState::new();
///
/// // 1 started, the metric asks for 8: at most 2 more this tick.
/// let up = state.adjust(&behavior, &started(8), now(1), t0);
/// assert_eq!(up.started, Some(Bounds { min: 3, max: 8 }));
/// state.record_scale_up(t0); // what record_plan does for a plan that starts machines
///
/// // 3 started, the metric asks for 1 within the cooldown: the max is held at 3.
/// let held = state.adjust(&behavior, &started(1), now(3), t0 + Duration::from_secs(15));
/// assert_eq!(held.started, Some(Bounds { min: 1, max: 3 }));
///
/// // After the cooldown, at most 50 % of 4 (2 machines) go in one tick.
/// let down = state.adjust(&behavior, &started(1), now(4), t0 + Duration::from_secs(60));
/// assert_eq!(down.started, Some(Bounds { min: 1, max: 2 }));
/// ```
///
/// It serializes as `{"last_scale_up": time or null}` (kept in PostgreSQL by the binary so that
/// a cooldown survives a restart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BehaviorState {
    /// When the last plan with a create or a start was made.
    last_scale_up: Option<SystemTime>,
}

impl BehaviorState {
    /// No scale-up recorded yet (a restart forgets the cooldown, as it forgets the window).
    pub fn new() -> BehaviorState {
        BehaviorState::default()
    }

    /// When the last scale-up was recorded.
    pub fn last_scale_up(&self) -> Option<SystemTime> {
        self.last_scale_up
    }

    /// Whether `now` is within `behavior`'s cooldown: less than
    /// [`Behavior::scale_down_cooldown`] after the last scale-up (a scale-up stamped after
    /// `now` counts as made at `now`). Never with a zero cooldown.
    pub fn cooling_down(&self, behavior: &Behavior, now: SystemTime) -> bool {
        self.last_scale_up.is_some_and(|t| {
            let age = now.duration_since(t).unwrap_or(Duration::ZERO);
            age < behavior.scale_down_cooldown
        })
    }

    /// The `targets` this tick plans with, given the `current` counts and the time `now`: mins
    /// limited by the scale-up step, maxes held by the cooldown or limited by the scale-down
    /// step. See the type's documentation for what is guaranteed.
    pub fn adjust(
        &mut self,
        behavior: &Behavior,
        targets: &Targets,
        current: Current,
        now: SystemTime,
    ) -> Targets {
        // A clock step backwards: a scale-up that looks newer than `now` counts as made now.
        if let Some(t) = self.last_scale_up
            && t > now
        {
            self.last_scale_up = Some(now);
        }
        let hold = self.cooling_down(behavior, now);
        Targets {
            created: targets
                .created
                .map(|b| limit(b, current.created, behavior, hold)),
            started: targets
                .started
                .map(|b| limit(b, current.started, behavior, hold)),
        }
    }

    /// Records the plan made this tick at `at`: a plan with a create or a start is a
    /// scale-up, which starts the cooldown. Returns whether it was one.
    pub fn record_plan(&mut self, plan: &Plan, at: SystemTime) -> bool {
        let scales_up = plan
            .actions
            .iter()
            .any(|a| matches!(a.action, Action::Create { .. } | Action::Start { .. }));
        if scales_up {
            self.record_scale_up(at);
        }
        scales_up
    }

    /// Records a scale-up at `at` (the newest one; it replaces any earlier record).
    pub fn record_scale_up(&mut self, at: SystemTime) {
        self.last_scale_up = Some(at);
    }
}

/// One bound limited against the current count `c`.
fn limit(b: Bounds, c: u32, behavior: &Behavior, hold: bool) -> Bounds {
    let mut out = b;
    if b.min > c
        && let Some(step) = behavior.scale_up_max_step
    {
        out.min = b.min.min(c.saturating_add(step.up(c)));
    }
    if b.max < c {
        let lowest = if hold {
            c
        } else if let Some(step) = behavior.scale_down_max_step {
            c.saturating_sub(step.down(c))
        } else {
            b.max
        };
        out.max = b.max.max(lowest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn percent_steps_round_toward_keeping_capacity() {
        assert_eq!(Step::Percent(10).up(15), 2);
        assert_eq!(Step::Percent(10).down(15), 1);
        assert_eq!(Step::Percent(100).down(7), 7);
        assert_eq!(Step::Percent(200).up(4), 8);
        assert_eq!(Step::Percent(u32::MAX).up(u32::MAX), u32::MAX);
        assert_eq!(Step::Machines(0).up(5), 1);
        assert_eq!(Step::Machines(0).down(5), 1);
        assert_eq!(Step::Percent(0).down(5), 1);
    }

    #[test]
    fn cooldown_starts_at_the_last_scale_up_and_ends_exactly_after_it() {
        let b = Behavior {
            scale_down_cooldown: Duration::from_secs(60),
            ..Behavior::default()
        };
        let mut s = BehaviorState::new();
        assert!(!s.cooling_down(&b, t(0)));
        s.record_scale_up(t(100));
        assert!(s.cooling_down(&b, t(100)));
        assert!(s.cooling_down(&b, t(159)));
        assert!(!s.cooling_down(&b, t(160)));
        assert!(!s.cooling_down(&Behavior::default(), t(100)), "zero: never");
    }

    #[test]
    fn a_future_scale_up_counts_as_made_now() {
        let b = Behavior {
            scale_down_cooldown: Duration::from_secs(60),
            ..Behavior::default()
        };
        let mut s = BehaviorState::new();
        s.record_scale_up(t(10_000));
        let started = |min, max| Targets {
            created: None,
            started: Some(Bounds { min, max }),
        };
        let current = Current {
            created: 5,
            started: 5,
        };
        // The clock stepped back by hours: held for one cooldown from the step, not until 10 060.
        assert_eq!(s.adjust(&b, &started(1, 1), current, t(100)), started(1, 5));
        assert_eq!(s.last_scale_up(), Some(t(100)));
        assert_eq!(s.adjust(&b, &started(1, 1), current, t(159)), started(1, 5));
        assert_eq!(s.adjust(&b, &started(1, 1), current, t(160)), started(1, 1));
    }
}

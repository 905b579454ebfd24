//! Scale-down stabilization: the max bounds used for scale-down are the highest seen over a window.
//!
//! Like Kubernetes HPA's `scaleDown.stabilizationWindowSeconds`: a metric that dips for one tick
//! no longer stops (or destroys) machines that the next tick starts (or creates) again. Scale-up
//! is never delayed: the min bounds pass through unchanged.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::{Bounds, Targets};

/// The recent targets of one app, to stabilize scale-down over a time window.
///
/// [`TargetHistory::record`] takes the current time as an argument (no clock is read), prunes
/// what fell out of the window, and returns the targets with each max bound replaced by the
/// highest max recorded within the window. The history is bounded: only entries that could
/// still be the highest are kept (an entry whose maxes a newer entry matches or exceeds can
/// never win again), and at most [`TargetHistory::MAX_ENTRIES`] entries are kept in any case
/// (past that, the oldest is dropped, which only shortens the window).
///
/// Time going backwards (a wall-clock step) never panics: entries stamped later than the time
/// given are treated as recorded at that time, so they still count for one full window from
/// then, and never longer; an entry that already left the window does not come back.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use fas_reconcile::{Bounds, TargetHistory, Targets};
///
/// let t0 = SystemTime::UNIX_EPOCH;
/// let window = Duration::from_secs(60);
/// let started = |n| Targets { created: None, started: Some(Bounds::exactly(n)) };
/// let mut history = TargetHistory::default();
///
/// assert_eq!(history.record(t0, &started(3), window), started(3));
/// // The metric dips: min follows at once, max stays at 3 for the window.
/// let dip = history.record(t0 + Duration::from_secs(15), &started(1), window);
/// assert_eq!(dip.started, Some(Bounds { min: 1, max: 3 }));
/// // A minute after the high reading, the max follows the metric.
/// let later = history.record(t0 + Duration::from_secs(61), &started(1), window);
/// assert_eq!(later, started(1));
/// ```
///
/// It serializes as a list of `[time, targets]` pairs, oldest first (the binary keeps it in
/// PostgreSQL so that the window survives a restart); deserializing sorts the pairs by time and
/// keeps the newest [`TargetHistory::MAX_ENTRIES`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "Vec<(SystemTime, Targets)>",
    into = "Vec<(SystemTime, Targets)>"
)]
pub struct TargetHistory {
    /// Recorded targets, oldest first; timestamps never decrease along the deque.
    entries: VecDeque<(SystemTime, Targets)>,
}

impl From<Vec<(SystemTime, Targets)>> for TargetHistory {
    fn from(mut entries: Vec<(SystemTime, Targets)>) -> Self {
        entries.sort_by_key(|(t, _)| *t);
        let excess = entries.len().saturating_sub(Self::MAX_ENTRIES);
        TargetHistory {
            entries: entries.into_iter().skip(excess).collect(),
        }
    }
}

impl From<TargetHistory> for Vec<(SystemTime, Targets)> {
    fn from(history: TargetHistory) -> Self {
        history.entries.into()
    }
}

impl TargetHistory {
    /// The most entries ever kept (a bound on memory for very long windows and short intervals).
    pub const MAX_ENTRIES: usize = 4096;

    /// An empty history.
    pub fn new() -> TargetHistory {
        TargetHistory::default()
    }

    /// How many entries are kept now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records `targets` evaluated at `at` and returns the stabilized targets.
    ///
    /// `created.max` and `started.max` become the highest respective max among the entries
    /// recorded less than `window` before `at`, the current one included; the mins are those
    /// of `targets`, and an absent bound stays absent. With a zero window the result is
    /// `targets` itself and nothing is kept.
    pub fn record(&mut self, at: SystemTime, targets: &Targets, window: Duration) -> Targets {
        // A clock step backwards: what looked newer than `at` is treated as recorded at `at`.
        // This keeps the timestamps non-decreasing, which the pruning below relies on.
        for (t, _) in self.entries.iter_mut().rev() {
            if *t <= at {
                break;
            }
            *t = at;
        }
        // Out of the window: recorded `window` or more before `at`.
        while let Some((t, _)) = self.entries.front() {
            let age = at.duration_since(*t).unwrap_or(Duration::ZERO);
            if age < window {
                break;
            }
            self.entries.pop_front();
        }
        // Entries the current one dominates can never be the highest again (it outlives them).
        while let Some((_, back)) = self.entries.back() {
            if !dominated_by(back, targets) {
                break;
            }
            self.entries.pop_back();
        }

        let stabilized = Targets {
            created: targets
                .created
                .map(|b| self.stabilize(b, |t| t.created.map(|c| c.max))),
            started: targets
                .started
                .map(|b| self.stabilize(b, |t| t.started.map(|c| c.max))),
        };

        if !window.is_zero() {
            self.entries.push_back((at, *targets));
            while self.entries.len() > Self::MAX_ENTRIES {
                self.entries.pop_front();
            }
        }
        stabilized
    }

    /// `current` with its max raised to the highest max of the kept entries.
    fn stabilize(&self, current: Bounds, max_of: impl Fn(&Targets) -> Option<u32>) -> Bounds {
        let max = self
            .entries
            .iter()
            .filter_map(|(_, t)| max_of(t))
            .fold(current.max, u32::max);
        Bounds {
            min: current.min,
            max,
        }
    }
}

/// Whether every max bound of `old` is matched or exceeded by `new` (a bound `new` lacks is not).
fn dominated_by(old: &Targets, new: &Targets) -> bool {
    let covered = |o: Option<Bounds>, n: Option<Bounds>| match (o, n) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(o), Some(n)) => o.max <= n.max,
    };
    covered(old.created, new.created) && covered(old.started, new.started)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_history_read_back_from_json_stabilizes_as_the_original() {
        let window = Duration::from_secs(60);
        let mut original = TargetHistory::new();
        original.record(t(0), &both(5, 4), window);
        original.record(t(10), &both(3, 2), window);
        let json = serde_json::to_string(&original).unwrap();
        let mut restored: TargetHistory = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, original);
        // The dip after the restart is still held at the max of the window.
        let a = original.record(t(30), &both(1, 1), window);
        let b = restored.record(t(30), &both(1, 1), window);
        assert_eq!(a, b);
        assert_eq!(b.started, Some(Bounds { min: 1, max: 4 }));
        // Out of order or too many entries are put right when read.
        let mut pairs: Vec<(SystemTime, Targets)> = (0..(TargetHistory::MAX_ENTRIES as u64 + 5))
            .map(|i| (t(i), both(1, 1)))
            .collect();
        pairs.reverse();
        let h = TargetHistory::from(pairs);
        assert_eq!(h.len(), TargetHistory::MAX_ENTRIES);
        let back: Vec<(SystemTime, Targets)> = h.into();
        assert!(back.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(back[0].0, t(5), "the oldest entries are dropped");
    }

    fn both(created: u32, started: u32) -> Targets {
        Targets {
            created: Some(Bounds::exactly(created)),
            started: Some(Bounds::exactly(started)),
        }
    }

    #[test]
    fn dominated_entries_are_dropped() {
        let mut h = TargetHistory::new();
        let w = Duration::from_secs(100);
        h.record(t(0), &both(1, 1), w);
        h.record(t(1), &both(2, 2), w);
        assert_eq!(h.len(), 1, "the higher newer entry replaces the older one");
        h.record(t(2), &both(3, 1), w);
        assert_eq!(h.len(), 2, "started 2 can still win");
        h.record(t(3), &both(3, 3), w);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn an_absent_bound_is_not_covered() {
        let created_only = Targets {
            created: Some(Bounds::exactly(5)),
            started: None,
        };
        assert!(!dominated_by(&both(1, 1), &created_only));
        assert!(dominated_by(&created_only, &both(5, 0)));
    }
}

//! One app's starts whose outcome is unknown: a start that timed out or lost its answer
//! ([`fas_reconcile::OpError::effect_unknown`]) may still take effect after the next tick's list, which then
//! shows the machine stopped; starting another one would overshoot max started.
//!
//! Pure, like [`crate::creates`]: time is an argument. The tick records such starts
//! ([`PendingStarts::record`], ids from [`unknown_starts`]) and, on the next ticks, passes the
//! listed machines to [`PendingStarts::observe`], which lists a machine still `stopped` or
//! `suspended` as `starting` in the planner's input: it counts as started and is neither a start
//! nor a stop candidate. The memory of a start ends when the list shows the machine in any other
//! state (the start landed, or something else happened to it), when the machine is no longer
//! listed, or after [`START_GRACE`] (then the list is believed: the start most likely never took
//! effect, and the next tick may start a machine again).

use std::collections::BTreeMap;
use std::time::Duration;

use fas_reconcile::{Action, Machine, MachineState, Outcome, Report};
use tokio::time::Instant;

/// How long a start of unknown outcome is assumed to be under way while the list still shows the
/// machine stopped or suspended. The same bound as a create the list does not show yet
/// ([`crate::creates::LIST_GRACE`]); a start that did not take effect delays a new start by at
/// most this long (the started count may stay one below its minimum meanwhile, never above max).
pub const START_GRACE: Duration = crate::creates::LIST_GRACE;

/// The machines of a report whose start failed with an unknown effect
/// ([`fas_reconcile::OpError::effect_unknown`]: a timeout, an answer lost in flight), spares included.
pub fn unknown_starts(report: &Report) -> Vec<String> {
    report
        .outcomes
        .iter()
        .filter_map(|o| match (&o.action, &o.result) {
            (Action::Start { id }, Outcome::Failed(e)) if e.effect_unknown() => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// The starts of unknown outcome of one app (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct PendingStarts {
    /// Machine id → when its start was given up on.
    since: BTreeMap<String, Instant>,
}

impl PendingStarts {
    /// Remembers the machines whose start had an unknown outcome, at `now` (a newer start of the
    /// same machine restarts its grace).
    pub fn record(&mut self, now: Instant, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            self.since.insert(id, now);
        }
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.since.is_empty()
    }

    /// What the database keeps ([`crate::store`]): machine id → wall-clock time (Unix seconds);
    /// `now` and `wall` are one moment on both clocks.
    pub fn to_stored(&self, now: Instant, wall: std::time::SystemTime) -> BTreeMap<String, f64> {
        self.since
            .iter()
            .map(|(id, at)| (id.clone(), crate::store::to_wall(*at, now, wall)))
            .collect()
    }

    /// The pending starts back from the database (one older than the monotonic clock can
    /// express is past its grace anyway: dropped).
    pub fn from_stored(
        stored: &BTreeMap<String, f64>,
        now: Instant,
        wall: std::time::SystemTime,
    ) -> PendingStarts {
        PendingStarts {
            since: stored
                .iter()
                .filter_map(|(id, at)| Some((id.clone(), crate::store::from_wall(*at, now, wall)?)))
                .collect(),
        }
    }

    /// Lists as `starting` every machine of `machines` (this tick's list, in the planner's
    /// domain) whose start is still pending and which the list shows `stopped` or `suspended`;
    /// returns their ids. Starts that the list settled (another state, or not listed) and
    /// those older than [`START_GRACE`] are forgotten.
    pub fn observe(&mut self, machines: &mut [Machine], now: Instant) -> Vec<String> {
        let mut marked = Vec::new();
        self.since.retain(|id, at| {
            if now.saturating_duration_since(*at) >= START_GRACE {
                return false;
            }
            let Some(m) = machines.iter_mut().find(|m| &m.id == id) else {
                return false;
            };
            if !matches!(m.state, MachineState::Stopped | MachineState::Suspended) {
                return false;
            }
            m.state = MachineState::Starting;
            marked.push(id.clone());
            true
        });
        marked
    }
}

#[cfg(test)]
mod tests {
    use fas_reconcile::{ActionOutcome, OpError, OpErrorKind};

    use super::*;
    use crate::creates::tests::listed;

    /// A timeout, as the adapter gives it: always of unknown effect.
    fn timed_out() -> OpError {
        OpError::new(OpErrorKind::Timeout, "timed out")
    }

    fn states(ms: &[Machine]) -> Vec<(&str, &str)> {
        ms.iter()
            .map(|m| (m.id.as_str(), m.state.as_str()))
            .collect()
    }

    fn start(id: &str, result: Outcome) -> ActionOutcome {
        ActionOutcome {
            action: Action::Start { id: id.to_owned() },
            result,
            spare: false,
            created_id: None,
        }
    }

    #[test]
    fn only_starts_of_unknown_effect_are_pending() {
        let lost = OpError::other("connection reset").with_effect_unknown();
        let report = Report {
            outcomes: vec![
                start("a", Outcome::Failed(timed_out())),
                start("b", Outcome::Failed(OpError::other("500"))),
                start("c", Outcome::Ok),
                start("d", Outcome::Skipped),
                start("e", Outcome::Failed(lost)),
                ActionOutcome {
                    action: Action::Stop { id: "f".into() },
                    result: Outcome::Failed(timed_out()),
                    spare: false,
                    created_id: None,
                },
                start(
                    "g",
                    Outcome::Failed(OpError::new(OpErrorKind::RateLimited, "429")),
                ),
            ],
        };
        assert_eq!(unknown_starts(&report), ["a", "e"]);
    }

    #[test]
    fn pending_starts_survive_a_handover_through_the_store() {
        let t0 = Instant::now();
        let wall = std::time::SystemTime::now();
        let mut p = PendingStarts::default();
        p.record(t0, ["b".to_owned()]);
        let json = serde_json::to_string(&p.to_stored(t0 + Duration::from_secs(1), wall)).unwrap();
        let stored: BTreeMap<String, f64> = serde_json::from_str(&json).unwrap();
        // Another process, 3 s later on both clocks.
        let later = t0 + Duration::from_secs(4);
        let mut q = PendingStarts::from_stored(&stored, later, wall + Duration::from_secs(3));
        let mut ms = vec![listed("b", "stopped")];
        assert_eq!(q.observe(&mut ms, later), ["b"]);
        // The grace still counts from the start that timed out, not from the handover.
        let mut ms = vec![listed("b", "stopped")];
        assert!(
            q.observe(&mut ms, t0 + START_GRACE + Duration::from_secs(1))
                .is_empty()
        );
    }

    #[test]
    fn a_pending_start_is_listed_starting_until_the_list_shows_it() {
        let t0 = Instant::now();
        let mut p = PendingStarts::default();
        p.record(t0, ["b".to_owned(), "c".to_owned()]);
        let mut ms = vec![
            listed("a", "started"),
            listed("b", "stopped"),
            listed("c", "suspended"),
        ];
        let marked = p.observe(&mut ms, t0 + Duration::from_secs(2));
        assert_eq!(marked, ["b", "c"]);
        assert_eq!(
            states(&ms),
            [("a", "started"), ("b", "starting"), ("c", "starting")]
        );
        // The start of b landed; c is still shown suspended.
        let mut ms = vec![listed("b", "started"), listed("c", "suspended")];
        assert_eq!(p.observe(&mut ms, t0 + Duration::from_secs(4)), ["c"]);
        assert_eq!(states(&ms), [("b", "started"), ("c", "starting")]);
        // b is forgotten: stopped again later, it is believed (its start was seen to land).
        let mut ms = vec![listed("b", "stopped"), listed("c", "started")];
        assert!(p.observe(&mut ms, t0 + Duration::from_secs(6)).is_empty());
        assert_eq!(states(&ms), [("b", "stopped"), ("c", "started")]);
        assert!(p.is_empty());
    }

    #[test]
    fn a_pending_start_is_believed_failed_after_the_grace() {
        let t0 = Instant::now();
        let mut p = PendingStarts::default();
        p.record(t0, ["b".to_owned()]);
        let mut ms = vec![listed("b", "stopped")];
        assert_eq!(p.observe(&mut ms, t0 + START_GRACE / 2), ["b"]);
        let mut ms = vec![listed("b", "stopped")];
        assert!(p.observe(&mut ms, t0 + START_GRACE).is_empty());
        assert_eq!(states(&ms), [("b", "stopped")]);
        assert!(p.is_empty());
    }

    #[test]
    fn a_machine_gone_or_in_another_state_ends_its_pending_start() {
        let t0 = Instant::now();
        let mut p = PendingStarts::default();
        p.record(
            t0,
            ["gone".to_owned(), "failed".to_owned(), "dying".to_owned()],
        );
        let mut ms = vec![listed("failed", "failed"), listed("dying", "destroying")];
        assert!(p.observe(&mut ms, t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(states(&ms), [("failed", "failed"), ("dying", "destroying")]);
        assert!(p.is_empty());
    }

    #[test]
    fn a_new_unknown_start_of_the_same_machine_restarts_its_grace() {
        let t0 = Instant::now();
        let mut p = PendingStarts::default();
        p.record(t0, ["b".to_owned()]);
        p.record(t0 + Duration::from_secs(50), ["b".to_owned()]);
        let mut ms = vec![listed("b", "stopped")];
        assert_eq!(p.observe(&mut ms, t0 + Duration::from_secs(70)), ["b"]);
    }
}

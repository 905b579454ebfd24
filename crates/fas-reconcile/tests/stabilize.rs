//! Scale-down stabilization (`TargetHistory`): examples and properties against a plain model.

use std::time::{Duration, SystemTime};

use fas_reconcile::{Bounds, TargetHistory, Targets};
use proptest::prelude::*;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn started(min: u32, max: u32) -> Targets {
    Targets {
        created: None,
        started: Some(Bounds { min, max }),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn zero_window_passes_targets_through_and_keeps_nothing() {
    let mut h = TargetHistory::new();
    for (i, n) in [5, 1, 4, 0, 2].into_iter().enumerate() {
        let tg = started(n, n);
        assert_eq!(h.record(t(i as u64), &tg, Duration::ZERO), tg);
        assert!(h.is_empty());
    }
}

#[test]
fn a_dip_is_held_for_the_window_then_released() {
    let mut h = TargetHistory::new();
    assert_eq!(h.record(t(0), &started(3, 3), MINUTE), started(3, 3));
    assert_eq!(h.record(t(15), &started(1, 1), MINUTE), started(1, 3));
    assert_eq!(h.record(t(59), &started(1, 1), MINUTE), started(1, 3));
    // Exactly one window after the high reading, it is out.
    assert_eq!(h.record(t(60), &started(1, 1), MINUTE), started(1, 1));
}

#[test]
fn scale_up_is_immediate() {
    let mut h = TargetHistory::new();
    h.record(t(0), &started(1, 1), MINUTE);
    assert_eq!(h.record(t(1), &started(4, 4), MINUTE), started(4, 4));
    // A second, smaller peak inside the window does not lower the held max.
    assert_eq!(h.record(t(2), &started(2, 2), MINUTE), started(2, 4));
}

#[test]
fn created_and_started_are_stabilized_separately() {
    let mut h = TargetHistory::new();
    let tg = |c: u32, s: u32| Targets {
        created: Some(Bounds::exactly(c)),
        started: Some(Bounds::exactly(s)),
    };
    h.record(t(0), &tg(5, 1), MINUTE);
    h.record(t(10), &tg(2, 4), MINUTE);
    let out = h.record(t(20), &tg(1, 1), MINUTE);
    assert_eq!(out.created, Some(Bounds { min: 1, max: 5 }));
    assert_eq!(out.started, Some(Bounds { min: 1, max: 4 }));
    let out = h.record(t(65), &tg(1, 1), MINUTE);
    assert_eq!(
        out.created,
        Some(Bounds { min: 1, max: 2 }),
        "t=0 is out, t=10 in"
    );
    assert_eq!(out.started, Some(Bounds { min: 1, max: 4 }), "t=10 is in");
}

#[test]
fn an_absent_bound_stays_absent() {
    let mut h = TargetHistory::new();
    let created = Targets {
        created: Some(Bounds::exactly(7)),
        started: None,
    };
    h.record(t(0), &created, MINUTE);
    assert_eq!(h.record(t(1), &started(1, 1), MINUTE), started(1, 1));
    let out = h.record(t(2), &Targets::default(), MINUTE);
    assert_eq!(out, Targets::default());
}

#[test]
fn clock_going_backwards_holds_for_at_most_one_window() {
    let mut h = TargetHistory::new();
    h.record(t(10_000), &started(5, 5), MINUTE);
    // The clock steps back by hours: the high reading counts as recorded now.
    assert_eq!(h.record(t(100), &started(1, 1), MINUTE), started(1, 5));
    assert_eq!(h.record(t(159), &started(1, 1), MINUTE), started(1, 5));
    // One window after the step, not one window after 10 000.
    assert_eq!(h.record(t(160), &started(1, 1), MINUTE), started(1, 1));
}

#[test]
fn history_length_is_capped() {
    let mut h = TargetHistory::new();
    let n = TargetHistory::MAX_ENTRIES as u32 + 50;
    // Strictly decreasing maxes inside a long window: no entry dominates an older one.
    for i in 0..n {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::from(i));
        let out = h.record(at, &started(0, n - i), Duration::from_secs(3600));
        assert!(out.started.is_some_and(|b| b.max >= n - i));
    }
    assert_eq!(h.len(), TargetHistory::MAX_ENTRIES);
}

#[test]
fn a_steady_metric_keeps_one_entry() {
    let mut h = TargetHistory::new();
    for i in 0..1000 {
        h.record(t(i), &started(3, 3), Duration::from_secs(600));
    }
    assert_eq!(h.len(), 1);
}

/// The obvious implementation: clamp future stamps, drop what left the window, take the max of the rest.
#[derive(Default)]
struct Model {
    entries: Vec<(SystemTime, Targets)>,
}

impl Model {
    fn record(&mut self, at: SystemTime, targets: &Targets, window: Duration) -> Targets {
        for (ts, _) in &mut self.entries {
            if *ts > at {
                *ts = at;
            }
        }
        // Once out of the window, gone (a later step back does not bring it back).
        self.entries
            .retain(|(ts, _)| at.duration_since(*ts).unwrap_or_default() < window);
        self.entries.push((at, *targets));
        let in_window: Vec<&Targets> = self.entries.iter().map(|(_, tg)| tg).collect();
        let max = |cur: Option<Bounds>, pick: fn(&Targets) -> Option<Bounds>| {
            cur.map(|b| Bounds {
                min: b.min,
                max: in_window
                    .iter()
                    .filter_map(|tg| pick(tg))
                    .map(|x| x.max)
                    .fold(b.max, u32::max),
            })
        };
        Targets {
            created: max(targets.created, |tg| tg.created),
            started: max(targets.started, |tg| tg.started),
        }
    }
}

fn bounds() -> impl Strategy<Value = Option<Bounds>> {
    prop::option::weighted(
        0.85,
        (0u32..8, 0u32..8).prop_map(|(min, max)| Bounds { min, max }),
    )
}

fn targets() -> impl Strategy<Value = Targets> {
    (bounds(), bounds()).prop_map(|(created, started)| Targets { created, started })
}

/// Ticks as (step in ms, targets); steps are mostly forward, sometimes backwards.
fn ticks() -> impl Strategy<Value = Vec<(i64, Targets)>> {
    prop::collection::vec(
        (
            prop_oneof![8 => 0i64..20_000, 1 => -60_000i64..0],
            targets(),
        ),
        1..60,
    )
}

fn at(ms: i64) -> SystemTime {
    // A base far from the epoch so that backward steps stay after it.
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000) + Duration::from_millis(ms as u64)
}

proptest! {
    #[test]
    fn matches_the_model_and_keeps_its_promises(
        ticks in ticks(),
        window_ms in prop_oneof![1 => Just(0u64), 4 => 0u64..90_000],
    ) {
        let window = Duration::from_millis(window_ms);
        let mut h = TargetHistory::new();
        let mut model = Model::default();
        let mut now: i64 = 5_000_000;
        for (step, tg) in ticks {
            now = (now + step).max(0);
            let out = h.record(at(now), &tg, window);
            prop_assert_eq!(out, model.record(at(now), &tg, window));
            for (cur, got) in [(tg.created, out.created), (tg.started, out.started)] {
                prop_assert_eq!(cur.is_some(), got.is_some(), "absent stays absent");
                if let (Some(cur), Some(got)) = (cur, got) {
                    prop_assert_eq!(got.min, cur.min, "min untouched");
                    prop_assert!(got.max >= cur.max, "never below the current max");
                    prop_assert!(got.max < 8, "never above anything seen");
                }
            }
            if window.is_zero() {
                prop_assert_eq!(out, tg);
            }
            prop_assert!(h.len() <= TargetHistory::MAX_ENTRIES);
        }
    }

    #[test]
    fn with_forward_time_the_max_is_the_highest_in_the_window(
        steps in prop::collection::vec((0u64..10, 0u32..10), 1..80),
        window_s in 0u64..30,
    ) {
        let window = Duration::from_secs(window_s);
        let mut h = TargetHistory::new();
        let mut seen: Vec<(u64, u32)> = Vec::new();
        let mut now = 0;
        for (step, n) in steps {
            now += step;
            seen.push((now, n));
            let out = h.record(t(now), &started(n, n), window);
            let highest = seen
                .iter()
                .filter(|(s, _)| now - s < window_s)
                .map(|(_, m)| *m)
                .fold(n, u32::max);
            prop_assert_eq!(out.started, Some(Bounds { min: n, max: highest }));
        }
    }
}

//! Behaviour against flapping (`Behavior`, `BehaviorState`): properties against `plan`, and
//! `simulate`-style tables of a spiky series through each rule (the same tables are in
//! `docs/planner.md`, section "Behaviour against flapping"). `UPDATE_EXPECT=1` refreshes them.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use expect_test::{Expect, expect};
use fas_reconcile::{
    Action, Behavior, BehaviorState, Bounds, Current, HostStatus, Machine, MachineState, Plan,
    PlanKind, Policy, RegionCursor, Step, TargetHistory, Targets, plan,
};
use proptest::prelude::*;

fn machine(i: usize, state: &str) -> Machine {
    Machine {
        id: format!("m{i:02}"),
        state: MachineState::parse(state),
        region: "iad".into(),
        process_group: Some("app".into()),
        host: HostStatus::Ok,
        has_config: true,
        created_at: None,
    }
}

/// `created` machines, the first `started` of them started, the others stopped.
fn fleet(created: u32, started: u32) -> Vec<Machine> {
    (0..created as usize)
        .map(|i| {
            machine(
                i,
                if (i as u32) < started {
                    "started"
                } else {
                    "stopped"
                },
            )
        })
        .collect()
}

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn started(min: u32, max: u32) -> Targets {
    Targets {
        created: None,
        started: Some(Bounds { min, max }),
    }
}

fn count(p: &Plan, pick: fn(&Action) -> bool) -> u32 {
    p.actions.iter().filter(|a| pick(&a.action)).count() as u32
}

fn creates(p: &Plan) -> u32 {
    count(p, |a| matches!(a, Action::Create { .. }))
}
fn starts(p: &Plan) -> u32 {
    count(p, |a| matches!(a, Action::Start { .. }))
}
fn destroys(p: &Plan) -> u32 {
    count(p, |a| matches!(a, Action::Destroy { .. }))
}
fn stops(p: &Plan) -> u32 {
    count(p, |a| {
        matches!(a, Action::Stop { .. } | Action::Suspend { .. })
    })
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn defaults_are_off() {
    assert!(Behavior::default().is_off());
    let mut s = BehaviorState::new();
    s.record_scale_up(t(0));
    let current = Current {
        created: 9,
        started: 9,
    };
    let tg = Targets {
        created: Some(Bounds::exactly(1)),
        started: Some(Bounds { min: 0, max: 20 }),
    };
    assert_eq!(s.adjust(&Behavior::default(), &tg, current, t(0)), tg);
}

#[test]
fn scale_up_step_limits_the_min_only() {
    let b = Behavior {
        scale_up_max_step: Some(Step::Machines(2)),
        ..Behavior::default()
    };
    let mut s = BehaviorState::new();
    let cur = |n| Current {
        created: 10,
        started: n,
    };
    assert_eq!(s.adjust(&b, &started(8, 8), cur(1), t(0)), started(3, 8));
    assert_eq!(s.adjust(&b, &started(8, 8), cur(7), t(0)), started(8, 8));
    // A scale-down is not a scale-up step's business.
    assert_eq!(s.adjust(&b, &started(1, 1), cur(7), t(0)), started(1, 1));
}

#[test]
fn scale_down_step_limits_the_max_only() {
    let b = Behavior {
        scale_down_max_step: Some(Step::Percent(50)),
        ..Behavior::default()
    };
    let mut s = BehaviorState::new();
    let cur = |n| Current {
        created: 10,
        started: n,
    };
    assert_eq!(s.adjust(&b, &started(1, 1), cur(8), t(0)), started(1, 4));
    assert_eq!(
        s.adjust(&b, &started(1, 1), cur(3), t(0)),
        started(1, 2),
        "1.5 rounded down"
    );
    assert_eq!(
        s.adjust(&b, &started(0, 0), cur(1), t(0)),
        started(0, 0),
        "at least one machine"
    );
    assert_eq!(s.adjust(&b, &started(8, 8), cur(1), t(0)), started(8, 8));
}

#[test]
fn created_bounds_are_measured_from_the_created_count() {
    let b = Behavior {
        scale_up_max_step: Some(Step::Machines(1)),
        scale_down_max_step: Some(Step::Machines(1)),
        ..Behavior::default()
    };
    let mut s = BehaviorState::new();
    let tg = Targets {
        created: Some(Bounds::exactly(2)),
        started: Some(Bounds::exactly(5)),
    };
    let out = s.adjust(
        &b,
        &tg,
        Current {
            created: 6,
            started: 1,
        },
        t(0),
    );
    assert_eq!(out.created, Some(Bounds { min: 2, max: 5 }));
    assert_eq!(out.started, Some(Bounds { min: 2, max: 5 }));
}

#[test]
fn cooldown_holds_the_max_at_the_current_count_after_a_planned_start() {
    let b = Behavior {
        scale_down_cooldown: MINUTE,
        ..Behavior::default()
    };
    let policy = Policy::default();
    let mut s = BehaviorState::new();
    let machines = fleet(5, 1);
    let up = plan(&machines, &started(4, 4), &policy, RegionCursor(0), t(0));
    assert!(s.record_plan(&up, t(0)), "a plan with starts is a scale-up");
    let machines = fleet(5, 4);
    let current = Current::of(&machines, &policy);
    let held = s.adjust(&b, &started(1, 1), current, t(30));
    assert_eq!(held, started(1, 4));
    let p = plan(&machines, &held, &policy, RegionCursor(0), t(30));
    assert_eq!(p.kind(), PlanKind::NoScale);
    assert!(
        !s.record_plan(&p, t(30)),
        "no create or start: not a scale-up"
    );
    assert_eq!(s.last_scale_up(), Some(t(0)));
    assert_eq!(s.adjust(&b, &started(1, 1), current, t(60)), started(1, 1));
}

#[test]
fn current_counts_are_the_plans_counts() {
    let policy = Policy::default();
    let mut machines = fleet(4, 2);
    machines.push(machine(9, "destroying"));
    machines.push(machine(8, "starting"));
    machines.push(machine(8, "starting"));
    let mut other = machine(7, "started");
    other.process_group = Some("worker".into());
    machines.push(other);
    assert_eq!(
        Current::of(&machines, &policy),
        Current {
            created: 5,
            started: 3
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Properties.

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u32..6).prop_map(Step::Machines),
        (0u32..250).prop_map(Step::Percent),
    ]
}

fn behavior() -> impl Strategy<Value = Behavior> {
    (
        prop::option::of(step()),
        prop::option::of(step()),
        prop_oneof![Just(0u64), 0u64..120],
    )
        .prop_map(|(up, down, cooldown)| Behavior {
            scale_up_max_step: up,
            scale_down_max_step: down,
            scale_down_cooldown: Duration::from_secs(cooldown),
        })
}

fn bounds() -> impl Strategy<Value = Option<Bounds>> {
    prop::option::weighted(
        0.85,
        (0u32..14, 0u32..14).prop_map(|(min, max)| Bounds { min, max }),
    )
}

fn targets() -> impl Strategy<Value = Targets> {
    (bounds(), bounds()).prop_map(|(created, started)| Targets { created, started })
}

/// A fleet of mixed states (ids unique).
fn machines() -> impl Strategy<Value = Vec<Machine>> {
    let state = prop::sample::select(vec![
        "started",
        "started",
        "stopped",
        "stopped",
        "starting",
        "suspended",
        "created",
        "failed",
        "destroying",
        "replacing",
    ]);
    prop::collection::vec(state, 0..14).prop_map(|states| {
        states
            .into_iter()
            .enumerate()
            .map(|(i, s)| machine(i, s))
            .collect()
    })
}

/// A state whose last scale-up is `ago` seconds before `now` (or none).
fn state_at(now: SystemTime, ago: Option<u64>) -> BehaviorState {
    let mut s = BehaviorState::new();
    if let Some(ago) = ago {
        s.record_scale_up(now - Duration::from_secs(ago));
    }
    s
}

proptest! {
    #[test]
    fn defaults_change_nothing(
        ticks in prop::collection::vec((targets(), machines(), 0u64..40), 1..30),
    ) {
        let policy = Policy::default();
        let off = Behavior::default();
        let mut s = BehaviorState::new();
        let mut now = t(1_000);
        for (tg, ms, step) in ticks {
            now += Duration::from_secs(step);
            let out = s.adjust(&off, &tg, Current::of(&ms, &policy), now);
            prop_assert_eq!(out, tg);
            let p = plan(&ms, &out, &policy, RegionCursor(0), now);
            prop_assert_eq!(&p, &plan(&ms, &tg, &policy, RegionCursor(0), now));
            s.record_plan(&p, now);
        }
    }

    #[test]
    fn adjusted_bounds_keep_their_promises(
        b in behavior(),
        tg in targets(),
        created in 0u32..14,
        started in 0u32..14,
        ago in prop::option::of(0u64..200),
    ) {
        let started = started.min(created);
        let now = t(10_000);
        let mut s = state_at(now, ago);
        let hold = s.cooling_down(&b, now);
        let out = s.adjust(&b, &tg, Current { created, started }, now);
        for (cur, got, c) in [(tg.created, out.created, created), (tg.started, out.started, started)] {
            prop_assert_eq!(cur.is_some(), got.is_some(), "absent stays absent");
            let (Some(cur), Some(got)) = (cur, got) else { continue };
            prop_assert!(got.min <= cur.min, "a min is never raised");
            prop_assert!(got.max >= cur.max, "a max is never lowered");
            if cur.min > c {
                prop_assert!(got.min > c, "a scale-up still happens");
                if let Some(up) = b.scale_up_max_step {
                    prop_assert!(got.min - c <= up.up(c), "within the up step");
                } else {
                    prop_assert_eq!(got.min, cur.min, "no up step: untouched");
                }
            } else {
                prop_assert_eq!(got.min, cur.min);
            }
            if cur.max < c {
                prop_assert!(got.max <= c, "never raised above the current count");
                if hold {
                    prop_assert_eq!(got.max, c, "cooldown: no scale-down");
                } else {
                    prop_assert!(got.max < c, "a scale-down still happens");
                    if let Some(down) = b.scale_down_max_step {
                        prop_assert!(c - got.max <= down.down(c), "within the down step");
                    } else {
                        prop_assert_eq!(got.max, cur.max);
                    }
                }
            } else {
                prop_assert_eq!(got.max, cur.max);
            }
        }
    }

    #[test]
    fn plans_never_exceed_a_step_and_scale_up_is_never_delayed(
        b in behavior(),
        tg in targets(),
        ms in machines(),
        ago in prop::option::of(0u64..200),
    ) {
        let policy = Policy::default();
        let now = t(10_000);
        let mut s = state_at(now, ago);
        let hold = s.cooling_down(&b, now);
        let current = Current::of(&ms, &policy);
        let out = s.adjust(&b, &tg, current, now);
        let plain = plan(&ms, &tg, &policy, RegionCursor(0), now);
        let limited = plan(&ms, &out, &policy, RegionCursor(0), now);
        prop_assert_eq!(current, Current::from(&plain.counts));

        if let Some(up) = b.scale_up_max_step {
            prop_assert!(creates(&limited) <= up.up(current.created));
            prop_assert!(starts(&limited) <= up.up(current.started));
        } else if matches!(plain.kind(), PlanKind::Create | PlanKind::Start) {
            // Scale-down rules never touch a min: the same creates or starts.
            prop_assert_eq!(&limited.actions, &plain.actions);
        }
        if let Some(down) = b.scale_down_max_step {
            prop_assert!(destroys(&limited) <= down.down(current.created));
            prop_assert!(stops(&limited) <= down.down(current.started));
        }
        if hold {
            prop_assert_eq!(destroys(&limited) + stops(&limited), 0, "cooldown honoured");
        } else {
            // A step slows a scale, never stalls or reverses it.
            prop_assert_eq!(limited.kind(), plain.kind());
            prop_assert_eq!(limited.actions.is_empty(), plain.actions.is_empty());
        }
        // Never more of anything than without the rules.
        prop_assert!(creates(&limited) <= creates(&plain));
        prop_assert!(destroys(&limited) <= destroys(&plain));
        prop_assert!(stops(&limited) <= stops(&plain));
    }

    /// Over a run with time mostly forward and sometimes backwards, with scale-ups recorded from
    /// the plans: no scale-down while the model says the cooldown runs, and none held after it.
    #[test]
    fn cooldown_is_honoured_and_ends(
        cooldown_s in 1u64..120,
        ticks in prop::collection::vec(
            (prop_oneof![8 => 0i64..40, 1 => -300i64..0], 0u32..10, 0u32..10, 0u32..10),
            1..60,
        ),
    ) {
        let policy = Policy::default();
        let b = Behavior { scale_down_cooldown: Duration::from_secs(cooldown_s), ..Behavior::default() };
        let mut s = BehaviorState::new();
        let mut model: Option<i64> = None;
        let mut now: i64 = 100_000;
        for (step, created, started, target) in ticks {
            now += step;
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(now as u64);
            if let Some(last) = model.as_mut() {
                *last = (*last).min(now);
            }
            let cooling = model.is_some_and(|last| now - last < cooldown_s as i64);
            let ms = fleet(created, started.min(created));
            let tg = Targets { created: None, started: Some(Bounds::exactly(target)) };
            let out = s.adjust(&b, &tg, Current::of(&ms, &policy), at);
            let p = plan(&ms, &out, &policy, RegionCursor(0), at);
            if cooling {
                prop_assert_eq!(stops(&p), 0, "cooldown honoured");
            } else {
                prop_assert_eq!(out, tg, "nothing held once the cooldown is over");
            }
            if s.record_plan(&p, at) {
                model = Some(now);
            }
            let model_at = model.map(|m| SystemTime::UNIX_EPOCH + Duration::from_secs(m as u64));
            prop_assert_eq!(s.last_scale_up(), model_at);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tables: a spiky series through each rule.

/// The series of the tables: the evaluated `started-machine-count`, one value per 15 s tick.
const SPIKY: [u32; 12] = [1, 1, 8, 1, 1, 8, 8, 1, 1, 1, 1, 1];
const TICK: Duration = Duration::from_secs(15);

/// Runs `series` as the loop does (window, then behaviour, then plan) over 10 machines of which
/// 1 is started, applying each plan at once (no failures), and renders one line per tick.
fn simulate(series: &[u32], window: Duration, behavior: Behavior) -> String {
    let policy = Policy::default();
    let mut machines = fleet(10, 1);
    let mut history = TargetHistory::new();
    let mut state = BehaviorState::new();
    let (mut total_starts, mut total_stops) = (0, 0);
    let mut out = String::from("tick    t  metric  window  behavior  plan     started  rule\n");
    let text = |b: Option<Bounds>| b.map_or("-".to_owned(), |b| format!("{}..{}", b.min, b.max));
    for (i, &n) in series.iter().enumerate() {
        let now = SystemTime::UNIX_EPOCH + TICK * i as u32;
        let evaluated = Targets {
            created: None,
            started: Some(Bounds::exactly(n)),
        };
        let held = history.record(now, &evaluated, window);
        let current = Current::of(&machines, &policy);
        let cooling = state.cooling_down(&behavior, now);
        let adjusted = state.adjust(&behavior, &held, current, now);
        let p = plan(&machines, &adjusted, &policy, RegionCursor(0), now);
        state.record_plan(&p, now);

        let mut rules = Vec::new();
        if held != evaluated {
            rules.push("window");
        }
        if let (Some(h), Some(a)) = (held.started, adjusted.started) {
            if a.min != h.min {
                rules.push("up step");
            }
            if a.max != h.max {
                rules.push(if cooling { "cooldown" } else { "down step" });
            }
        }
        let decision = match (starts(&p), stops(&p)) {
            (0, 0) => "-".to_owned(),
            (n, 0) => format!("start {n}"),
            (0, n) => format!("stop {n}"),
            (a, b) => format!("start {a} stop {b}"),
        };
        total_starts += starts(&p);
        total_stops += stops(&p);
        for a in &p.actions {
            let (Action::Start { id } | Action::Stop { id }) = &a.action else {
                continue;
            };
            let m = machines.iter_mut().find(|m| &m.id == id).expect("listed");
            m.state = MachineState::parse(if matches!(a.action, Action::Start { .. }) {
                "started"
            } else {
                "stopped"
            });
        }
        let after = Current::of(&machines, &policy).started;
        writeln!(
            out,
            "{i:>4} {:>3}s  {n:>6}  {:>6}  {:>8}  {decision:<7}  {after:>7}  {}",
            (TICK * i as u32).as_secs(),
            text(held.started),
            text(adjusted.started),
            rules.join(", "),
        )
        .unwrap();
    }
    write!(out, "starts {total_starts}, stops {total_stops}").unwrap();
    out.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(window: Duration, behavior: Behavior, expect: Expect) {
    expect.assert_eq(&simulate(&SPIKY, window, behavior));
}

#[test]
fn table_no_rule_the_go_behaviour() {
    check(
        Duration::ZERO,
        Behavior::default(),
        expect![[r#"
        tick    t  metric  window  behavior  plan     started  rule
           0   0s       1    1..1      1..1  -              1
           1  15s       1    1..1      1..1  -              1
           2  30s       8    8..8      8..8  start 7        8
           3  45s       1    1..1      1..1  stop 7         1
           4  60s       1    1..1      1..1  -              1
           5  75s       8    8..8      8..8  start 7        8
           6  90s       8    8..8      8..8  -              8
           7 105s       1    1..1      1..1  stop 7         1
           8 120s       1    1..1      1..1  -              1
           9 135s       1    1..1      1..1  -              1
          10 150s       1    1..1      1..1  -              1
          11 165s       1    1..1      1..1  -              1
        starts 14, stops 14"#]],
    );
}

#[test]
fn table_scale_down_window() {
    check(
        Duration::from_secs(45),
        Behavior::default(),
        expect![[r#"
        tick    t  metric  window  behavior  plan     started  rule
           0   0s       1    1..1      1..1  -              1
           1  15s       1    1..1      1..1  -              1
           2  30s       8    8..8      8..8  start 7        8
           3  45s       1    1..8      1..8  -              8  window
           4  60s       1    1..8      1..8  -              8  window
           5  75s       8    8..8      8..8  -              8
           6  90s       8    8..8      8..8  -              8
           7 105s       1    1..8      1..8  -              8  window
           8 120s       1    1..8      1..8  -              8  window
           9 135s       1    1..1      1..1  stop 7         1
          10 150s       1    1..1      1..1  -              1
          11 165s       1    1..1      1..1  -              1
        starts 7, stops 7"#]],
    );
}

#[test]
fn table_scale_up_max_step() {
    let b = Behavior {
        scale_up_max_step: Some(Step::Machines(3)),
        ..Behavior::default()
    };
    check(
        Duration::ZERO,
        b,
        expect![[r#"
        tick    t  metric  window  behavior  plan     started  rule
           0   0s       1    1..1      1..1  -              1
           1  15s       1    1..1      1..1  -              1
           2  30s       8    8..8      4..8  start 3        4  up step
           3  45s       1    1..1      1..1  stop 3         1
           4  60s       1    1..1      1..1  -              1
           5  75s       8    8..8      4..8  start 3        4  up step
           6  90s       8    8..8      7..8  start 3        7  up step
           7 105s       1    1..1      1..1  stop 6         1
           8 120s       1    1..1      1..1  -              1
           9 135s       1    1..1      1..1  -              1
          10 150s       1    1..1      1..1  -              1
          11 165s       1    1..1      1..1  -              1
        starts 9, stops 9"#]],
    );
}

#[test]
fn table_scale_down_max_step() {
    let b = Behavior {
        scale_down_max_step: Some(Step::Percent(50)),
        ..Behavior::default()
    };
    check(
        Duration::ZERO,
        b,
        expect![[r#"
        tick    t  metric  window  behavior  plan     started  rule
           0   0s       1    1..1      1..1  -              1
           1  15s       1    1..1      1..1  -              1
           2  30s       8    8..8      8..8  start 7        8
           3  45s       1    1..1      1..4  stop 4         4  down step
           4  60s       1    1..1      1..2  stop 2         2  down step
           5  75s       8    8..8      8..8  start 6        8
           6  90s       8    8..8      8..8  -              8
           7 105s       1    1..1      1..4  stop 4         4  down step
           8 120s       1    1..1      1..2  stop 2         2  down step
           9 135s       1    1..1      1..1  stop 1         1
          10 150s       1    1..1      1..1  -              1
          11 165s       1    1..1      1..1  -              1
        starts 13, stops 13"#]],
    );
}

#[test]
fn table_scale_down_cooldown() {
    let b = Behavior {
        scale_down_cooldown: MINUTE,
        ..Behavior::default()
    };
    check(
        Duration::ZERO,
        b,
        expect![[r#"
        tick    t  metric  window  behavior  plan     started  rule
           0   0s       1    1..1      1..1  -              1
           1  15s       1    1..1      1..1  -              1
           2  30s       8    8..8      8..8  start 7        8
           3  45s       1    1..1      1..8  -              8  cooldown
           4  60s       1    1..1      1..8  -              8  cooldown
           5  75s       8    8..8      8..8  -              8
           6  90s       8    8..8      8..8  -              8
           7 105s       1    1..1      1..1  stop 7         1
           8 120s       1    1..1      1..1  -              1
           9 135s       1    1..1      1..1  -              1
          10 150s       1    1..1      1..1  -              1
          11 165s       1    1..1      1..1  -              1
        starts 7, stops 7"#]],
    );
}

#[test]
fn table_every_rule_together() {
    let b = Behavior {
        scale_up_max_step: Some(Step::Percent(100)),
        scale_down_max_step: Some(Step::Percent(50)),
        scale_down_cooldown: MINUTE,
    };
    check(
        Duration::from_secs(45),
        b,
        expect![[r#"
        tick    t  metric  window  behavior  plan     started  rule
           0   0s       1    1..1      1..1  -              1
           1  15s       1    1..1      1..1  -              1
           2  30s       8    8..8      2..8  start 1        2  up step
           3  45s       1    1..8      1..8  -              2  window
           4  60s       1    1..8      1..8  -              2  window
           5  75s       8    8..8      4..8  start 2        4  up step
           6  90s       8    8..8      8..8  start 4        8
           7 105s       1    1..8      1..8  -              8  window
           8 120s       1    1..8      1..8  -              8  window
           9 135s       1    1..1      1..8  -              8  cooldown
          10 150s       1    1..1      1..4  stop 4         4  down step
          11 165s       1    1..1      1..2  stop 2         2  down step
        starts 7, stops 6"#]],
    );
}

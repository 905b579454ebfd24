//! Property tests: invariants of `plan()` over random fleets, targets and policies.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use fas_reconcile::{
    Action, ActionLimits, Bounds, HostStatus, InitialState, Machine, MachineState, Plan, Policy,
    RegionCursor, ScaleDown, Targets, plan,
};
use proptest::prelude::*;

const STATES: &[&str] = &[
    "created",
    "starting",
    "started",
    "stopping",
    "stopped",
    "suspending",
    "suspended",
    "destroying",
    "destroyed",
    "replacing",
    "updating",
    "failed",
    "launch_failed",
    "replaced",
    "migrated",
    "restarting",
    "hibernating",
];

// The state table written out again by wire name, so that the properties do not trust
// `MachineState::class` or the planner's candidate lists.

/// On their way out: they will not be there after the tick.
const LEAVING: &[&str] = &[
    "destroying",
    "destroyed",
    "launch_failed",
    "replaced",
    "migrated",
];
/// Counted toward started.
const STARTED: &[&str] = &["started", "starting"];
/// May be destroyed.
const DESTROYABLE: &[&str] = &["failed", "stopped", "created", "suspended", "started"];
/// May be a clone source.
const CLONABLE: &[&str] = &[
    "created",
    "starting",
    "started",
    "stopping",
    "stopped",
    "suspending",
    "suspended",
];

fn is(m: &Machine, states: &[&str]) -> bool {
    states.contains(&m.state.as_str())
}

fn machine() -> impl Strategy<Value = Machine> {
    machine_in(STATES)
}

fn machine_in(states: &'static [&'static str]) -> impl Strategy<Value = Machine> {
    (
        0u8..40,
        prop::sample::select(states),
        prop::sample::select(&["iad", "ams"][..]),
        prop::sample::select(&[Some("app"), Some("worker"), None][..]),
        prop::sample::select(
            &[
                HostStatus::Ok,
                HostStatus::Ok,
                HostStatus::Ok,
                HostStatus::Unreachable,
                HostStatus::Unknown,
            ][..],
        ),
        any::<bool>(),
        prop::option::of(0u8..5),
    )
        .prop_map(|(id, state, region, group, host, has_config, t)| Machine {
            id: format!("m{id:02}"),
            state: MachineState::parse(state),
            region: region.to_owned(),
            process_group: group.map(str::to_owned),
            host,
            has_config,
            created_at: t.map(|t| format!("2024-01-0{}T00:00:00Z", t + 1)),
        })
}

fn bounds() -> impl Strategy<Value = Option<Bounds>> {
    prop::option::of((0u32..30, 0u32..30).prop_map(|(min, max)| Bounds { min, max }))
}

fn limit() -> impl Strategy<Value = Option<u32>> {
    prop::option::of(0u32..6)
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        prop::sample::select(&["app", "worker"][..]),
        prop::collection::vec(prop::sample::select(&["iad", "ams", "fra"][..]), 0..3),
        any::<bool>(),
        any::<bool>(),
        (limit(), limit(), limit(), limit()),
    )
        .prop_map(|(group, regions, stopped, suspend, (c, d, s, t))| Policy {
            process_group: group.to_owned(),
            regions: regions.into_iter().map(str::to_owned).collect(),
            initial_state: if stopped {
                InitialState::Stopped
            } else {
                InitialState::Started
            },
            scale_down: if suspend {
                ScaleDown::Suspend
            } else {
                ScaleDown::Stop
            },
            limits: ActionLimits {
                creates: c,
                destroys: d,
                starts: s,
                stops: t,
            },
        })
}

/// The machines the planner may act on, by id (first entry of an id, as the planner keeps).
fn eligible(machines: &[Machine], policy: &Policy) -> BTreeMap<String, Machine> {
    let mut sorted: Vec<&Machine> = machines
        .iter()
        .filter(|m| {
            m.host == HostStatus::Ok && m.process_group.as_deref() == Some(&policy.process_group)
        })
        .collect();
    sorted.sort();
    let mut out = BTreeMap::new();
    for m in sorted {
        out.entry(m.id.clone()).or_insert_with(|| m.clone());
    }
    out
}

fn count(p: &Plan, f: impl Fn(&Action) -> bool) -> u32 {
    p.actions.iter().filter(|a| f(&a.action)).count() as u32
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants(
        machines in prop::collection::vec(machine(), 0..25),
        created in bounds(),
        started in bounds(),
        policy in policy(),
        cursor in 0usize..7,
    ) {
        let targets = Targets { created, started };
        let p = plan(&machines, &targets, &policy, RegionCursor(cursor), SystemTime::UNIX_EPOCH);
        let el = eligible(&machines, &policy);
        let created_now = el.values().filter(|m| !is(m, LEAVING)).count() as u32;
        let started_now = el.values().filter(|m| is(m, STARTED)).count() as u32;
        let failed_now = el.values().filter(|m| is(m, &["failed"])).count() as u32;
        prop_assert_eq!(p.counts.created, created_now);
        prop_assert_eq!(p.counts.started, started_now);
        prop_assert_eq!(p.counts.failed, failed_now);

        let creates = count(&p, |a| matches!(a, Action::Create { .. }));
        let destroys = count(&p, |a| matches!(a, Action::Destroy { .. }));
        let starts = count(&p, |a| matches!(a, Action::Start { .. }));
        let stops = count(&p, |a| matches!(a, Action::Stop { .. } | Action::Suspend { .. }));

        // One kind of action per plan; spares of the same kind only.
        let kinds: BTreeSet<_> = p.actions.iter().chain(&p.spares).map(|a| a.action.kind()).collect();
        prop_assert!(kinds.len() <= 1, "kinds {:?}", kinds);
        prop_assert!(p.spares.len() <= p.actions.len());

        // At most one action (or spare) per machine, so never a start and a stop of one id.
        let ids: Vec<&str> = p.actions.iter().chain(&p.spares).filter_map(|a| a.action.machine_id()).collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        prop_assert_eq!(ids.len(), unique.len());

        // Never another process group or an unreachable host (sources included).
        for a in p.actions.iter().chain(&p.spares) {
            let id = match &a.action {
                Action::Create { source, .. } => source.as_str(),
                other => other.machine_id().unwrap(),
            };
            let m = el.get(id);
            prop_assert!(m.is_some(), "acted on ineligible machine {}", id);
            let m = m.unwrap();
            match &a.action {
                Action::Create { .. } => prop_assert!(m.has_config && is(m, CLONABLE)),
                Action::Start { .. } => prop_assert!(is(m, &["stopped", "suspended"])),
                Action::Stop { .. } | Action::Suspend { .. } => prop_assert!(is(m, &["started"])),
                Action::Destroy { .. } => prop_assert!(is(m, DESTROYABLE)),
            }
        }

        // Created: never below 1, never more destroys than the excess, never above min by creating.
        if let Some(b) = p.targets.created {
            prop_assert!(b.min >= 1 && b.max >= b.min);
            prop_assert!(destroys <= created_now.saturating_sub(b.max));
            prop_assert!(created_now + creates <= b.min.max(created_now));
        } else {
            prop_assert_eq!(creates + destroys, 0);
        }
        if created_now >= 1 {
            prop_assert!(created_now + creates - destroys >= 1);
        }
        if let Some(l) = policy.limits.creates { prop_assert!(creates <= l); }
        if let Some(l) = policy.limits.destroys { prop_assert!(destroys <= l); }
        if let Some(l) = policy.limits.starts { prop_assert!(starts <= l); }
        if let Some(l) = policy.limits.stops { prop_assert!(stops <= l); }

        // Started: starts never push above max (nor min), stops never go below max.
        if let Some(b) = p.targets.started {
            prop_assert!(started_now + starts <= b.min.max(started_now));
            prop_assert!(started_now + starts <= b.max.max(started_now));
            if stops > 0 { prop_assert!(started_now - stops >= b.max); }
        } else {
            prop_assert_eq!(starts + stops, 0);
        }

        // Never destroys a started machine while a failed, stopped or created one could go.
        let destroyed: BTreeSet<&str> = p.actions.iter().filter_map(|a| match &a.action {
            Action::Destroy { id } => Some(id.as_str()), _ => None }).collect();
        let kills_started = destroyed.iter().any(|id| el[*id].state == MachineState::Started);
        if kills_started {
            for m in el.values() {
                if is(m, &["failed", "stopped", "created"]) {
                    prop_assert!(destroyed.contains(m.id.as_str()), "{} kept while a started one dies", m.id);
                }
            }
        }

        // The rotation advances by exactly the planned creates (unchanged without creates).
        let len = policy.regions.len();
        if len == 0 || creates == 0 {
            prop_assert_eq!(p.next_cursor.0, cursor);
        } else {
            prop_assert_eq!(p.next_cursor.0, (cursor + creates as usize) % len);
        }
    }

    /// Machines on their way out never stand in for the last machine; an update in progress
    /// and a failed machine are never touched except that a failed one may be destroyed.
    #[test]
    fn leaving_never_protects_the_last_machine(
        machines in prop::collection::vec(machine_in(&[
            "failed", "replacing", "updating", "destroying", "destroyed", "launch_failed",
            "replaced", "migrated", "restarting", "started", "stopped", "created",
        ]), 0..12),
        created in prop::option::of((0u32..4, 0u32..4).prop_map(|(min, max)| Bounds { min, max })),
        started in prop::option::of((0u32..4, 0u32..4).prop_map(|(min, max)| Bounds { min, max })),
        policy in policy(),
    ) {
        let targets = Targets { created, started };
        let p = plan(&machines, &targets, &policy, RegionCursor(0), SystemTime::UNIX_EPOCH);
        let el = eligible(&machines, &policy);
        let staying = el.values().filter(|m| !is(m, LEAVING)).count() as u32;
        let destroys = count(&p, |a| matches!(a, Action::Destroy { .. }));
        if staying >= 1 {
            prop_assert!(staying - destroys >= 1, "{} staying, {} destroyed", staying, destroys);
        }
        for a in p.actions.iter().chain(&p.spares) {
            match &a.action {
                Action::Create { source, .. } => {
                    let m = &el[source.as_str()];
                    prop_assert!(is(m, CLONABLE), "cloned {} in {}", m.id, m.state);
                }
                Action::Destroy { id } => {
                    let m = &el[id.as_str()];
                    prop_assert!(is(m, DESTROYABLE), "destroyed {} in {}", m.id, m.state);
                }
                other => {
                    let m = &el[other.machine_id().unwrap()];
                    prop_assert!(is(m, &["started", "stopped", "suspended"]), "{} on {} in {}", other, m.id, m.state);
                }
            }
        }
    }

    #[test]
    fn deterministic_and_order_independent(
        machines in prop::collection::vec(machine(), 0..20),
        created in bounds(),
        started in bounds(),
        policy in policy(),
        seed in any::<u64>(),
    ) {
        let targets = Targets { created, started };
        let a = plan(&machines, &targets, &policy, RegionCursor(1), SystemTime::UNIX_EPOCH);
        let b = plan(&machines, &targets, &policy, RegionCursor(1), SystemTime::UNIX_EPOCH);
        prop_assert_eq!(&a, &b);
        // A deterministic shuffle: the plan must not depend on the list order.
        let mut shuffled = machines.clone();
        let n = shuffled.len();
        let mut s = seed;
        for i in (1..n).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let c = plan(&shuffled, &targets, &policy, RegionCursor(1), SystemTime::UNIX_EPOCH);
        prop_assert_eq!(a, c);
    }
}

//! The pure planner: `plan(machines, targets, policy, cursor, now) -> Plan`.

use std::collections::BTreeSet;
use std::time::SystemTime;

use crate::model::{
    Bounds, HostStatus, InitialState, Machine, MachineState, Policy, RegionCursor, ScaleDown,
    StateClass, Targets,
};
use crate::output::{Action, Counts, Note, NoteKind, Plan, PlanKind, PlannedAction, bounds_text};

/// Plans one reconciliation of one app.
///
/// Pure: no IO, no clock, no randomness; the output depends only on the arguments and not on
/// the order of `machines`. Never fails: odd situations are [`Note`]s. `now` is recorded in
/// [`Plan::at`] only. See the crate documentation for the rules and the state table.
#[must_use]
pub fn plan(
    machines: &[Machine],
    targets: &Targets,
    policy: &Policy,
    cursor: RegionCursor,
    now: SystemTime,
) -> Plan {
    let mut notes = Vec::new();
    let mut counts = Counts::default();

    // Filter (host first, then group, as Go), sort by id, drop duplicate ids.
    let mut eligible: Vec<&Machine> = Vec::new();
    for m in machines {
        if m.host != HostStatus::Ok {
            counts.unreachable += 1;
        } else if m.process_group.as_deref() != Some(policy.process_group.as_str()) {
            counts.other_group += 1;
        } else {
            eligible.push(m);
        }
    }
    // Full order (id first) so that even duplicate ids resolve the same for any input order.
    eligible.sort();
    let mut seen = BTreeSet::new();
    eligible.retain(|m| {
        let first = seen.insert(m.id.as_str());
        if !first {
            notes.push(note(
                NoteKind::DuplicateId,
                format!(
                    "machine {} listed twice; only its first entry is used",
                    m.id
                ),
            ));
        }
        first
    });

    let mut unknown_states = BTreeSet::new();
    for m in &eligible {
        *counts
            .by_state
            .entry(m.state.as_str().to_owned())
            .or_default() += 1;
        match m.state.class() {
            StateClass::Started => {
                counts.created += 1;
                counts.started += 1;
            }
            StateClass::NotStarted => counts.created += 1,
            // On its way out: it will not be there to count after the tick.
            StateClass::Leaving => {}
        }
        if m.state == MachineState::Failed {
            counts.failed += 1;
        }
        if let MachineState::Other(s) = &m.state {
            unknown_states.insert(s.as_str());
        }
    }
    for s in unknown_states {
        notes.push(note(
            NoteKind::UnknownState,
            format!("unrecognised state `{s}`: counted as created, not started; left alone"),
        ));
    }

    let targets = effective_targets(targets, &mut notes);
    let mut out = Plan {
        kind: PlanKind::NoScale,
        counts,
        targets,
        actions: Vec::new(),
        spares: Vec::new(),
        notes,
        next_cursor: cursor,
        at: now,
    };
    let created = out.counts.created;
    let started = out.counts.started;

    if let Some(b) = targets.created.filter(|b| created < b.min) {
        out.kind = PlanKind::Create;
        plan_creates(&mut out, &eligible, policy, cursor, b.min - created);
    } else if let Some(b) = targets.created.filter(|b| created > b.max) {
        out.kind = PlanKind::Destroy;
        plan_destroys(&mut out, &eligible, policy, created, b.max);
    } else if let Some(b) = targets.started.filter(|b| started < b.min) {
        out.kind = PlanKind::Start;
        plan_starts(&mut out, &eligible, policy, started, b.min);
    } else if let Some(b) = targets.started.filter(|b| started > b.max) {
        out.kind = PlanKind::Stop;
        plan_stops(&mut out, &eligible, policy, started, b.max);
    }
    out
}

fn note(kind: NoteKind, message: String) -> Note {
    Note { kind, message }
}

fn effective_targets(t: &Targets, notes: &mut Vec<Note>) -> Targets {
    let created = t.created.map(|b| {
        let mut e = Bounds {
            min: b.min.max(1),
            max: b.max.max(1),
        };
        if e != b {
            notes.push(note(
                NoteKind::TargetAdjusted,
                format!(
                    "created target {} clamped to {}: the last machine is never destroyed",
                    bounds_text(Some(b)),
                    bounds_text(Some(e))
                ),
            ));
        }
        if e.min > e.max {
            notes.push(note(
                NoteKind::TargetAdjusted,
                format!("created min {} > max {}: max raised to min", e.min, e.max),
            ));
            e.max = e.min;
        }
        e
    });
    let started = t.started.map(|mut b| {
        if b.min > b.max {
            notes.push(note(
                NoteKind::TargetAdjusted,
                format!("started min {} > max {}: max raised to min", b.min, b.max),
            ));
            b.max = b.min;
        }
        b
    });
    Targets { created, started }
}

/// Applies a per-tick cap, noting when it cut the count.
fn capped(need: u32, cap: Option<u32>, what: &str, notes: &mut Vec<Note>) -> usize {
    match cap {
        Some(c) if c < need => {
            notes.push(note(
                NoteKind::Capped,
                format!("{need} {what} needed, capped to {c} this tick"),
            ));
            c as usize
        }
        _ => need as usize,
    }
}

/// Whether a machine in `state` may be cloned: a known state of a machine that booted or can
/// boot with its config. Not `failed` (its config does not boot), not an update in progress
/// (the config is about to change), not a machine on its way out, not an unknown state.
fn clonable(state: &MachineState) -> bool {
    match state {
        MachineState::Created
        | MachineState::Starting
        | MachineState::Started
        | MachineState::Stopping
        | MachineState::Stopped
        | MachineState::Suspending
        | MachineState::Suspended => true,
        MachineState::Failed
        | MachineState::Replacing
        | MachineState::Updating
        | MachineState::Destroying
        | MachineState::Destroyed
        | MachineState::LaunchFailed
        | MachineState::Replaced
        | MachineState::Migrated
        | MachineState::Other(_) => false,
    }
}

/// The newest machine that can be cloned: a clonable state, has a config.
fn clone_source<'m>(eligible: &[&'m Machine]) -> Option<&'m Machine> {
    eligible
        .iter()
        .copied()
        .filter(|m| m.has_config && clonable(&m.state))
        .max_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        })
}

fn plan_creates(
    out: &mut Plan,
    eligible: &[&Machine],
    policy: &Policy,
    cursor: RegionCursor,
    need: u32,
) {
    let Some(source) = clone_source(eligible) else {
        let why = if eligible.is_empty() {
            "no machine available to clone for scale up".to_owned()
        } else {
            "no machine available to clone for scale up: none of the group's machines has a \
             complete config in a usable state"
                .to_owned()
        };
        out.notes.push(note(NoteKind::NoMachineToClone, why));
        return;
    };
    let n = capped(need, policy.limits.creates, "creates", &mut out.notes);
    let regions: Vec<&str> = policy
        .regions
        .iter()
        .map(String::as_str)
        .filter(|r| !r.is_empty())
        .collect();
    let reason = format!(
        "created {} < min {}",
        out.counts.created,
        out.counts.created + need
    );
    for i in 0..n {
        let region = if regions.is_empty() {
            source.region.clone()
        } else {
            regions[(cursor.0 % regions.len() + i) % regions.len()].to_owned()
        };
        out.actions.push(PlannedAction {
            action: Action::Create {
                source: source.id.clone(),
                region,
                skip_launch: policy.initial_state == InitialState::Stopped,
            },
            reason: reason.clone(),
        });
    }
    if !regions.is_empty() && n > 0 {
        out.next_cursor = RegionCursor((cursor.0 % regions.len() + n) % regions.len());
    }
}

/// Machines in `state`, lowest id first (`eligible` is sorted by id).
fn in_state<'m>(eligible: &[&'m Machine], state: &MachineState) -> Vec<&'m Machine> {
    eligible
        .iter()
        .copied()
        .filter(|m| &m.state == state)
        .collect()
}

fn plan_destroys(out: &mut Plan, eligible: &[&Machine], policy: &Policy, created: u32, max: u32) {
    let excess = created - max;
    // `failed` first: it serves nothing and, as a clone that failed at boot, would otherwise
    // stay counted while a working machine goes.
    let order = [
        MachineState::Failed,
        MachineState::Stopped,
        MachineState::Created,
        MachineState::Suspended,
        MachineState::Started,
    ];
    let mut candidates = Vec::new();
    for state in &order {
        let mut ms = in_state(eligible, state);
        // Machines without a config go first: they can never be a clone source.
        ms.sort_by_key(|m| m.has_config);
        candidates.extend(ms);
    }
    if (candidates.len() as u64) < u64::from(excess) {
        out.notes.push(note(
            NoteKind::NotEnoughCandidates,
            format!(
                "{excess} machines over max {max} but only {} can be destroyed \
                 (transient and unrecognised states are left alone)",
                candidates.len()
            ),
        ));
    }
    let n = capped(excess, policy.limits.destroys, "destroys", &mut out.notes);
    for m in candidates.into_iter().take(n) {
        out.actions.push(PlannedAction {
            action: Action::Destroy { id: m.id.clone() },
            reason: format!("{}; created {created} > max {max}", m.state),
        });
    }
}

fn plan_starts(out: &mut Plan, eligible: &[&Machine], policy: &Policy, started: u32, min: u32) {
    let need = min - started;
    let mut candidates = in_state(eligible, &MachineState::Suspended);
    candidates.extend(in_state(eligible, &MachineState::Stopped));
    if (candidates.len() as u64) < u64::from(need) {
        out.notes.push(note(
            NoteKind::NotEnoughCandidates,
            format!(
                "not enough stopped machines available to reach target, please create more \
                 machines: {need} needed, {} stopped or suspended",
                candidates.len()
            ),
        ));
    }
    let n = capped(need, policy.limits.starts, "starts", &mut out.notes);
    let reason = format!("started {started} < min {min}");
    let make = |m: &Machine| PlannedAction {
        action: Action::Start { id: m.id.clone() },
        reason: if m.state == MachineState::Suspended {
            format!("suspended (resumes faster); {reason}")
        } else {
            format!("stopped; {reason}")
        },
    };
    split_with_spares(out, &candidates, n, make);
}

fn plan_stops(out: &mut Plan, eligible: &[&Machine], policy: &Policy, started: u32, max: u32) {
    let excess = started - max;
    let candidates = in_state(eligible, &MachineState::Started);
    if (candidates.len() as u64) < u64::from(excess) {
        out.notes.push(note(
            NoteKind::NotEnoughCandidates,
            format!(
                "{excess} started machines over max {max} but only {} are `started` \
                 (`starting` ones are not stopped)",
                candidates.len()
            ),
        ));
    }
    let n = capped(excess, policy.limits.stops, "stops", &mut out.notes);
    let reason = format!("started {started} > max {max}");
    let make = |m: &Machine| PlannedAction {
        action: match policy.scale_down {
            ScaleDown::Stop => Action::Stop { id: m.id.clone() },
            ScaleDown::Suspend => Action::Suspend { id: m.id.clone() },
        },
        reason: reason.clone(),
    };
    split_with_spares(out, &candidates, n, make);
}

/// The first `n` candidates become actions, up to `n` of the following ones spares.
fn split_with_spares(
    out: &mut Plan,
    candidates: &[&Machine],
    n: usize,
    make: impl Fn(&Machine) -> PlannedAction,
) {
    let taken = n.min(candidates.len());
    out.actions
        .extend(candidates[..taken].iter().map(|m| make(m)));
    let spare_n = taken.min(candidates.len() - taken);
    out.spares
        .extend(candidates[taken..taken + spare_n].iter().map(|m| {
            let mut a = make(m);
            a.reason = format!("spare: {}", a.reason);
            a
        }));
}

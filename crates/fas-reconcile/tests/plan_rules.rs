//! Data-driven planner tests for the rules that go beyond the Go reconciler, plus output
//! formats. Run with `UPDATE_EXPECT=1` to refresh the snapshots after an intended change.

mod support;

use std::time::SystemTime;

use expect_test::expect;
use fas_reconcile::plan;
use support::check;

// ---- better than Go ----

#[test]
fn suspended_resumed_before_stopped() {
    check(
        "1 stopped
         2 suspended
         3 stopped
         4 suspended
         started 3",
        expect![[r#"
            step: start
            counts: created 4, started 0; by state: stopped 2, suspended 2; excluded: 0 unreachable, 0 other group
            targets: created -, started 3..3
            actions:
              start 2  suspended (resumes faster); started 0 < min 3
              start 4  suspended (resumes faster); started 0 < min 3
              start 1  stopped; started 0 < min 3
            spares:
              start 3  spare: stopped; started 0 < min 3
            cursor: 0"#]],
    );
}

#[test]
fn scale_down_by_suspend() {
    check(
        "1 started
         2 started
         3 started
         scale_down suspend
         started 1",
        expect![[r#"
            step: stop
            counts: created 3, started 3; by state: started 3; excluded: 0 unreachable, 0 other group
            targets: created -, started 1..1
            actions:
              suspend 1  started 3 > max 1
              suspend 2  started 3 > max 1
            spares:
              suspend 3  spare: started 3 > max 1
            cursor: 0"#]],
    );
}

#[test]
fn destroy_order_failed_stopped_created_suspended_started() {
    check(
        "a started
         b suspended
         c created
         d stopped
         e started
         f failed
         g launch_failed
         created 1..1
         unbounded",
        expect![[r#"
            step: destroy
            counts: created 6, started 2; by state: created 1, failed 1, launch_failed 1, started 2, stopped 1, suspended 1; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started -
            actions:
              destroy f  failed; created 6 > max 1
              destroy d  stopped; created 6 > max 1
              destroy c  created; created 6 > max 1
              destroy b  suspended; created 6 > max 1
              destroy a  started; created 6 > max 1
            cursor: 0"#]],
    );
}

#[test]
fn destroy_prefers_machines_without_config() {
    check(
        "1 stopped
         2 stopped noconfig
         3 stopped
         created 2",
        expect![[r#"
            step: destroy
            counts: created 3, started 0; by state: stopped 3; excluded: 0 unreachable, 0 other group
            targets: created 2..2, started -
            actions:
              destroy 2  stopped; created 3 > max 2
            cursor: 0"#]],
    );
}

#[test]
fn destroy_never_touches_transient_states() {
    check(
        "1 starting
         2 stopping
         3 suspending
         4 stopped
         created 1",
        expect![[r#"
            step: destroy
            counts: created 4, started 1; by state: starting 1, stopped 1, stopping 1, suspending 1; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started -
            actions:
              destroy 4  stopped; created 4 > max 1
            note: 3 machines over max 1 but only 1 can be destroyed (transient and unrecognised states are left alone)
            cursor: 0"#]],
    );
}

#[test]
fn clone_source_is_newest_with_config() {
    check(
        "a started t=2024-01-03T00:00:00Z noconfig
         b stopped t=2024-01-02T00:00:00Z
         c started t=2024-01-01T00:00:00Z
         d failed t=2024-01-04T00:00:00Z
         created 5",
        expect![[r#"
            step: create
            counts: created 4, started 2; by state: failed 1, started 2, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created 5..5, started -
            actions:
              create from b in iad  created 4 < min 5
            cursor: 0"#]],
    );
}

#[test]
fn clone_source_ties_broken_by_greatest_id() {
    check(
        "a started t=2024-01-01T00:00:00Z
         b started t=2024-01-01T00:00:00Z
         created 3",
        expect![[r#"
            step: create
            counts: created 2, started 2; by state: started 2; excluded: 0 unreachable, 0 other group
            targets: created 3..3, started -
            actions:
              create from b in iad  created 2 < min 3
            cursor: 0"#]],
    );
}

#[test]
fn clone_source_none_with_config() {
    check(
        "a started noconfig
         created 2",
        expect![[r#"
            step: create
            counts: created 1, started 1; by state: started 1; excluded: 0 unreachable, 0 other group
            targets: created 2..2, started -
            actions: none
            note: no machine available to clone for scale up: none of the group's machines has a complete config in a usable state
            cursor: 0"#]],
    );
}

#[test]
fn create_capped_by_default_limit() {
    check(
        "1 started
         regions iad ams
         created 15",
        expect![[r#"
            step: create
            counts: created 1, started 1; by state: started 1; excluded: 0 unreachable, 0 other group
            targets: created 15..15, started -
            actions:
              create from 1 in iad  created 1 < min 15
              create from 1 in ams  created 1 < min 15
              create from 1 in iad  created 1 < min 15
              create from 1 in ams  created 1 < min 15
              create from 1 in iad  created 1 < min 15
              create from 1 in ams  created 1 < min 15
              create from 1 in iad  created 1 < min 15
              create from 1 in ams  created 1 < min 15
              create from 1 in iad  created 1 < min 15
              create from 1 in ams  created 1 < min 15
            note: 14 creates needed, capped to 10 this tick
            cursor: 0"#]],
    );
}

#[test]
fn destroy_capped_by_default_limit() {
    check(
        "01 stopped
         02 stopped
         03 stopped
         04 stopped
         05 stopped
         06 stopped
         07 stopped
         08 stopped
         09 stopped
         10 stopped
         11 stopped
         12 stopped
         created 1",
        expect![[r#"
            step: destroy
            counts: created 12, started 0; by state: stopped 12; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started -
            actions:
              destroy 01  stopped; created 12 > max 1
              destroy 02  stopped; created 12 > max 1
              destroy 03  stopped; created 12 > max 1
              destroy 04  stopped; created 12 > max 1
              destroy 05  stopped; created 12 > max 1
              destroy 06  stopped; created 12 > max 1
              destroy 07  stopped; created 12 > max 1
              destroy 08  stopped; created 12 > max 1
              destroy 09  stopped; created 12 > max 1
              destroy 10  stopped; created 12 > max 1
            note: 11 destroys needed, capped to 10 this tick
            cursor: 0"#]],
    );
}

#[test]
fn start_limit_caps_starts_and_spares() {
    check(
        "1 stopped
         2 stopped
         3 stopped
         4 stopped
         5 stopped
         limit starts 1
         started 4",
        expect![[r#"
            step: start
            counts: created 5, started 0; by state: stopped 5; excluded: 0 unreachable, 0 other group
            targets: created -, started 4..4
            actions:
              start 1  stopped; started 0 < min 4
            spares:
              start 2  spare: stopped; started 0 < min 4
            note: 4 starts needed, capped to 1 this tick
            cursor: 0"#]],
    );
}

#[test]
fn stop_limit_caps_stops() {
    check(
        "1 started
         2 started
         3 started
         limit stops 1
         started 0",
        expect![[r#"
            step: stop
            counts: created 3, started 3; by state: started 3; excluded: 0 unreachable, 0 other group
            targets: created -, started 0..0
            actions:
              stop 1  started 3 > max 0
            spares:
              stop 2  spare: started 3 > max 0
            note: 3 stops needed, capped to 1 this tick
            cursor: 0"#]],
    );
}

#[test]
fn spares_bounded_by_actions() {
    check(
        "1 started
         2 started
         3 started
         4 started
         5 started
         6 started
         started 5",
        expect![[r#"
            step: stop
            counts: created 6, started 6; by state: started 6; excluded: 0 unreachable, 0 other group
            targets: created -, started 5..5
            actions:
              stop 1  started 6 > max 5
            spares:
              stop 2  spare: started 6 > max 5
            cursor: 0"#]],
    );
}

#[test]
fn created_min_above_max_raises_max() {
    check(
        "1 started
         2 started
         3 started
         created 3..2",
        expect![[r#"
            step: no_scale
            counts: created 3, started 3; by state: started 3; excluded: 0 unreachable, 0 other group
            targets: created 3..3, started -
            actions: none
            note: created min 3 > max 2: max raised to min
            cursor: 0"#]],
    );
}

#[test]
fn duplicate_id_listed_once() {
    check(
        "1 stopped
         1 stopped
         started 2",
        expect![[r#"
            step: start
            counts: created 1, started 0; by state: stopped 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 2..2
            actions:
              start 1  stopped; started 0 < min 2
            note: machine 1 listed twice; only its first entry is used
            note: not enough stopped machines available to reach target, please create more machines: 2 needed, 1 stopped or suspended
            cursor: 0"#]],
    );
}

#[test]
fn nothing_configured_is_no_scale() {
    check(
        "1 started
         2 stopped",
        expect![[r#"
            step: no_scale
            counts: created 2, started 1; by state: started 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created -, started -
            actions: none
            cursor: 0"#]],
    );
}

#[test]
fn empty_group_no_targets() {
    check(
        "",
        expect![[r#"
        step: no_scale
        counts: created 0, started 0; by state: none; excluded: 0 unreachable, 0 other group
        targets: created -, started -
        actions: none
        cursor: 0"#]],
    );
}

#[test]
fn plan_serialises_to_json() {
    let f = support::parse(
        "1 started
         2 stopped
         started 2",
    );
    let p = plan(
        &f.machines,
        &f.targets,
        &f.policy,
        f.cursor,
        SystemTime::UNIX_EPOCH,
    );
    let json = serde_json::to_string(&p).unwrap();
    expect![[r#"{"kind":"start","counts":{"created":2,"started":1,"failed":0,"by_state":{"started":1,"stopped":1},"unreachable":0,"other_group":0},"targets":{"created":null,"started":{"min":2,"max":2}},"actions":[{"kind":"start","id":"2","reason":"stopped; started 1 < min 2"}],"spares":[],"notes":[],"next_cursor":0,"at_unix_ms":0}"#]].assert_eq(&json);
}

#[test]
fn plan_kind_labels() {
    use fas_reconcile::PlanKind;
    let labels: Vec<&str> = [
        PlanKind::Create,
        PlanKind::Destroy,
        PlanKind::Start,
        PlanKind::Stop,
        PlanKind::NoScale,
    ]
    .iter()
    .map(|k| k.as_str())
    .collect();
    assert_eq!(labels, ["create", "destroy", "start", "stop", "no_scale"]);
}

#[test]
fn machine_state_round_trips() {
    use fas_reconcile::MachineState;
    for s in [
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
        "failed",
        "updating",
        "launch_failed",
        "replaced",
        "migrated",
    ] {
        let state = MachineState::parse(s);
        assert_eq!(state.as_str(), s);
        assert!(
            !matches!(state, MachineState::Other(_)),
            "{s} has a variant"
        );
    }
    assert_eq!(
        MachineState::parse("launch_failed"),
        MachineState::LaunchFailed
    );
    assert_eq!(MachineState::parse("updating"), MachineState::Updating);
    let other = MachineState::parse("restarting");
    assert_eq!(other, MachineState::Other("restarting".into()));
    assert_eq!(other.as_str(), "restarting");
}

#[test]
fn state_classes() {
    use fas_reconcile::{MachineState, StateClass};
    let class = |s: &str| MachineState::parse(s).class();
    for s in ["started", "starting"] {
        assert_eq!(class(s), StateClass::Started, "{s}");
    }
    for s in [
        "created",
        "stopping",
        "stopped",
        "suspending",
        "suspended",
        "replacing",
        "updating",
        "failed",
        "restarting",
    ] {
        assert_eq!(class(s), StateClass::NotStarted, "{s}");
    }
    for s in [
        "destroying",
        "destroyed",
        "launch_failed",
        "replaced",
        "migrated",
    ] {
        assert_eq!(class(s), StateClass::Leaving, "{s}");
    }
}

#[test]
#[allow(deprecated)]
fn ignored_class_is_the_old_name_of_leaving() {
    use fas_reconcile::{MachineState, StateClass};
    assert_eq!(StateClass::Ignored, StateClass::Leaving);
    // Still usable as a pattern, as before it became an alias.
    let counted = |s: &str| !matches!(MachineState::parse(s).class(), StateClass::Ignored);
    assert!(counted("failed") && counted("replacing"));
    assert!(!counted("destroying") && !counted("launch_failed"));
}

#[test]
fn failed_machines_counted_for_the_binary() {
    // Only the group's reachable machines count, as for created.
    let f = support::parse(
        "1 failed
         2 failed
         3 started
         4 failed h=unreachable
         5 failed g=worker
         6 launch_failed
         created 3",
    );
    let p = plan(
        &f.machines,
        &f.targets,
        &f.policy,
        f.cursor,
        SystemTime::UNIX_EPOCH,
    );
    assert_eq!((p.counts.failed, p.counts.created), (2, 3));
    assert!(p.is_empty());
}

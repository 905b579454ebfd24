//! Data-driven planner tests for the Go rules and the state table: a text fixture in, the
//! rendered plan out (the fixture language is in `support/mod.rs`).
//! Run with `UPDATE_EXPECT=1` to refresh the snapshots after an intended change.

mod support;

use expect_test::expect;
use support::check;

// ---- Go reconciler test cases ----

#[test]
fn go_no_scale() {
    check(
        "1 started
         2 stopped
         started 1..2",
        expect![[r#"
            step: no_scale
            counts: created 2, started 1; by state: started 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 1..2
            actions: none
            cursor: 0"#]],
    );
}

#[test]
fn go_create_clones_to_min() {
    // Two creates as in Go. Go cloned the first listed machine (1); here the source is the
    // newest with a config, and without `created_at` the tie goes to the greatest id (2).
    check(
        "1 started r=iad
         2 stopped r=den
         created 4",
        expect![[r#"
            step: create
            counts: created 2, started 1; by state: started 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created 4..4, started -
            actions:
              create from 2 in den  created 2 < min 4
              create from 2 in den  created 2 < min 4
            cursor: 0"#]],
    );
}

#[test]
fn go_no_machine_to_clone() {
    check(
        "created 1",
        expect![[r#"
        step: create
        counts: created 0, started 0; by state: none; excluded: 0 unreachable, 0 other group
        targets: created 1..1, started -
        actions: none
        note: no machine available to clone for scale up
        cursor: 0"#]],
    );
}

#[test]
fn go_destroy_stopped_first() {
    check(
        "1 started r=iad
         2 stopped r=den
         3 stopped r=iad
         4 stopped r=mad
         created 2",
        expect![[r#"
            step: destroy
            counts: created 4, started 1; by state: started 1, stopped 3; excluded: 0 unreachable, 0 other group
            targets: created 2..2, started -
            actions:
              destroy 2  stopped; created 4 > max 2
              destroy 3  stopped; created 4 > max 2
            cursor: 0"#]],
    );
}

#[test]
fn go_destroy_attempt_scale_to_zero_keeps_one() {
    check(
        "1 stopped
         2 stopped
         3 started
         4 created
         created 0",
        expect![[r#"
            step: destroy
            counts: created 4, started 1; by state: created 1, started 1, stopped 2; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started -
            actions:
              destroy 1  stopped; created 4 > max 1
              destroy 2  stopped; created 4 > max 1
              destroy 4  created; created 4 > max 1
            note: created target 0..0 clamped to 1..1: the last machine is never destroyed
            cursor: 0"#]],
    );
}

#[test]
fn go_start_lowest_id_first() {
    check(
        "1 started
         2 stopped
         3 stopped
         4 stopped
         started 3",
        expect![[r#"
            step: start
            counts: created 4, started 1; by state: started 1, stopped 3; excluded: 0 unreachable, 0 other group
            targets: created -, started 3..3
            actions:
              start 2  stopped; started 1 < min 3
              start 3  stopped; started 1 < min 3
            spares:
              start 4  spare: stopped; started 1 < min 3
            cursor: 0"#]],
    );
}

#[test]
fn go_start_with_failure_has_spare() {
    // Go tried the next candidate after a failed start: the plan carries it as a spare.
    check(
        "1 stopped
         2 stopped
         3 stopped
         4 stopped
         started 2",
        expect![[r#"
            step: start
            counts: created 4, started 0; by state: stopped 4; excluded: 0 unreachable, 0 other group
            targets: created -, started 2..2
            actions:
              start 1  stopped; started 0 < min 2
              start 2  stopped; started 0 < min 2
            spares:
              start 3  spare: stopped; started 0 < min 2
              start 4  spare: stopped; started 0 < min 2
            cursor: 0"#]],
    );
}

#[test]
fn go_stop_lowest_id_first() {
    check(
        "1 started
         2 started
         3 started
         4 stopped
         started 1",
        expect![[r#"
            step: stop
            counts: created 4, started 3; by state: started 3, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 1..1
            actions:
              stop 1  started 3 > max 1
              stop 2  started 3 > max 1
            spares:
              stop 3  spare: started 3 > max 1
            cursor: 0"#]],
    );
}

#[test]
fn go_not_enough_stopped_machines() {
    check(
        "1 started
         2 stopped
         started 4",
        expect![[r#"
            step: start
            counts: created 2, started 1; by state: started 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 4..4
            actions:
              start 2  stopped; started 1 < min 4
            note: not enough stopped machines available to reach target, please create more machines: 3 needed, 1 stopped or suspended
            cursor: 0"#]],
    );
}

#[test]
fn go_min_created_clamped_to_one() {
    check(
        "1 stopped
         created 0..0",
        expect![[r#"
            step: no_scale
            counts: created 1, started 0; by state: stopped 1; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started -
            actions: none
            note: created target 0..0 clamped to 1..1: the last machine is never destroyed
            cursor: 0"#]],
    );
}

#[test]
fn go_host_not_ok_excluded() {
    check(
        "1 started h=unreachable
         2 stopped h=unknown
         3 stopped
         created 2",
        expect![[r#"
            step: create
            counts: created 1, started 0; by state: stopped 1; excluded: 2 unreachable, 0 other group
            targets: created 2..2, started -
            actions:
              create from 3 in iad  created 1 < min 2
            cursor: 0"#]],
    );
}

#[test]
fn go_other_process_group_excluded() {
    check(
        "1 started g=worker
         2 stopped g=-
         3 stopped
         started 2",
        expect![[r#"
            step: start
            counts: created 1, started 0; by state: stopped 1; excluded: 0 unreachable, 2 other group
            targets: created -, started 2..2
            actions:
              start 3  stopped; started 0 < min 2
            note: not enough stopped machines available to reach target, please create more machines: 2 needed, 1 stopped or suspended
            cursor: 0"#]],
    );
}

#[test]
fn go_process_group_configured() {
    check(
        "1 stopped g=worker
         2 stopped
         group worker
         started 1",
        expect![[r#"
            step: start
            counts: created 1, started 0; by state: stopped 1; excluded: 0 unreachable, 1 other group
            targets: created -, started 1..1
            actions:
              start 1  stopped; started 0 < min 1
            cursor: 0"#]],
    );
}

#[test]
fn go_regions_round_robin() {
    check(
        "1 started r=iad
         regions ams fra syd
         created 3",
        expect![[r#"
            step: create
            counts: created 1, started 1; by state: started 1; excluded: 0 unreachable, 0 other group
            targets: created 3..3, started -
            actions:
              create from 1 in ams  created 1 < min 3
              create from 1 in fra  created 1 < min 3
            cursor: 2"#]],
    );
}

#[test]
fn go_regions_round_robin_continues_from_cursor() {
    check(
        "1 started r=iad
         2 started r=ams
         regions ams fra syd
         cursor 2
         created 4",
        expect![[r#"
            step: create
            counts: created 2, started 2; by state: started 2; excluded: 0 unreachable, 0 other group
            targets: created 4..4, started -
            actions:
              create from 2 in syd  created 2 < min 4
              create from 2 in ams  created 2 < min 4
            cursor: 1"#]],
    );
}

#[test]
fn go_no_regions_uses_source_region() {
    check(
        "1 started r=den
         created 2",
        expect![[r#"
            step: create
            counts: created 1, started 1; by state: started 1; excluded: 0 unreachable, 0 other group
            targets: created 2..2, started -
            actions:
              create from 1 in den  created 1 < min 2
            cursor: 0"#]],
    );
}

#[test]
fn go_skip_launch_when_initial_stopped() {
    check(
        "1 started
         initial stopped
         created 2",
        expect![[r#"
            step: create
            counts: created 1, started 1; by state: started 1; excluded: 0 unreachable, 0 other group
            targets: created 2..2, started -
            actions:
              create from 1 in iad (skip_launch)  created 1 < min 2
            cursor: 0"#]],
    );
}

#[test]
fn go_create_takes_precedence_over_start() {
    check(
        "1 stopped
         created 2
         started 1",
        expect![[r#"
            step: create
            counts: created 1, started 0; by state: stopped 1; excluded: 0 unreachable, 0 other group
            targets: created 2..2, started 1..1
            actions:
              create from 1 in iad  created 1 < min 2
            cursor: 0"#]],
    );
}

#[test]
fn go_destroy_takes_precedence_over_stop() {
    check(
        "1 started
         2 started
         3 started
         created 2
         started 1",
        expect![[r#"
            step: destroy
            counts: created 3, started 3; by state: started 3; excluded: 0 unreachable, 0 other group
            targets: created 2..2, started 1..1
            actions:
              destroy 1  started; created 3 > max 2
            cursor: 0"#]],
    );
}

#[test]
fn go_start_takes_precedence_over_stop_when_min_gt_max() {
    check(
        "1 started
         2 stopped
         started 2..1",
        expect![[r#"
            step: start
            counts: created 2, started 1; by state: started 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 2..2
            actions:
              start 2  stopped; started 1 < min 2
            note: started min 2 > max 1: max raised to min
            cursor: 0"#]],
    );
}

// ---- state table ----

#[test]
fn starting_counts_as_started_and_is_not_started_again() {
    check(
        "1 starting
         2 stopped
         started 1",
        expect![[r#"
            step: no_scale
            counts: created 2, started 1; by state: starting 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 1..1
            actions: none
            cursor: 0"#]],
    );
}

#[test]
fn starting_is_not_stopped() {
    check(
        "1 starting
         2 started
         started 0",
        expect![[r#"
            step: stop
            counts: created 2, started 2; by state: started 1, starting 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 0..0
            actions:
              stop 2  started 2 > max 0
            note: 2 started machines over max 0 but only 1 are `started` (`starting` ones are not stopped)
            cursor: 0"#]],
    );
}

#[test]
fn stopping_and_suspending_count_as_not_started_and_are_left_alone() {
    check(
        "1 stopping
         2 suspending
         3 started
         started 0..5",
        expect![[r#"
            step: no_scale
            counts: created 3, started 1; by state: started 1, stopping 1, suspending 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 0..5
            actions: none
            cursor: 0"#]],
    );
}

#[test]
fn stopping_is_not_a_start_candidate() {
    check(
        "1 stopping
         2 stopped
         started 2",
        expect![[r#"
            step: start
            counts: created 2, started 0; by state: stopped 1, stopping 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 2..2
            actions:
              start 2  stopped; started 0 < min 2
            note: not enough stopped machines available to reach target, please create more machines: 2 needed, 1 stopped or suspended
            cursor: 0"#]],
    );
}

#[test]
fn created_state_counts_but_is_not_started() {
    check(
        "1 created
         2 stopped
         started 1",
        expect![[r#"
            step: start
            counts: created 2, started 0; by state: created 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 1..1
            actions:
              start 2  stopped; started 0 < min 1
            cursor: 0"#]],
    );
}

#[test]
fn unknown_state_counted_as_created_and_noted() {
    check(
        "1 restarting
         2 creating
         3 started
         created 3",
        expect![[r#"
            step: no_scale
            counts: created 3, started 1; by state: creating 1, restarting 1, started 1; excluded: 0 unreachable, 0 other group
            targets: created 3..3, started -
            actions: none
            note: unrecognised state `creating`: counted as created, not started; left alone
            note: unrecognised state `restarting`: counted as created, not started; left alone
            cursor: 0"#]],
    );
}

#[test]
fn unknown_state_not_destroyed() {
    check(
        "1 restarting
         2 started
         created 1",
        expect![[r#"
            step: destroy
            counts: created 2, started 1; by state: restarting 1, started 1; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started -
            actions:
              destroy 2  started; created 2 > max 1
            note: unrecognised state `restarting`: counted as created, not started; left alone
            cursor: 0"#]],
    );
}

// `failed`: counted as created, not started; destroyed first; never started or cloned.

#[test]
fn failed_clones_count_as_created_no_recreate_loop() {
    // Two clones failed at boot. Not counting them made every tick create two more.
    check(
        "1 started t=2024-01-01T00:00:00Z
         2 failed t=2024-01-02T00:00:00Z
         3 failed t=2024-01-02T00:00:00Z
         created 3",
        expect![[r#"
            step: no_scale
            counts: created 3, started 1; by state: failed 2, started 1; excluded: 0 unreachable, 0 other group
            targets: created 3..3, started -
            actions: none
            cursor: 0"#]],
    );
}

#[test]
fn failed_destroyed_before_stopped() {
    check(
        "1 stopped
         2 failed
         3 started
         4 failed noconfig
         created 2",
        expect![[r#"
            step: destroy
            counts: created 4, started 1; by state: failed 2, started 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created 2..2, started -
            actions:
              destroy 4  failed; created 4 > max 2
              destroy 2  failed; created 4 > max 2
            cursor: 0"#]],
    );
}

#[test]
fn failed_is_neither_started_nor_stopped() {
    check(
        "1 failed
         2 stopped
         started 2",
        expect![[r#"
            step: start
            counts: created 2, started 0; by state: failed 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 2..2
            actions:
              start 2  stopped; started 0 < min 2
            note: not enough stopped machines available to reach target, please create more machines: 2 needed, 1 stopped or suspended
            cursor: 0"#]],
    );
}

#[test]
fn failed_is_not_a_clone_source() {
    check(
        "1 stopped t=2024-01-01T00:00:00Z
         2 failed t=2024-01-02T00:00:00Z
         created 3",
        expect![[r#"
            step: create
            counts: created 2, started 0; by state: failed 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created 3..3, started -
            actions:
              create from 1 in iad  created 2 < min 3
            cursor: 0"#]],
    );
}

// `replacing` and `updating` (an update in progress): counted as created, not started; left
// alone.

#[test]
fn replacing_machine_counts_no_extra_clone() {
    // Not counting it cloned one more machine, destroyed again when the update ended.
    check(
        "1 started
         2 replacing
         created 2",
        expect![[r#"
            step: no_scale
            counts: created 2, started 1; by state: replacing 1, started 1; excluded: 0 unreachable, 0 other group
            targets: created 2..2, started -
            actions: none
            cursor: 0"#]],
    );
}

#[test]
fn updating_machine_counts_no_extra_clone() {
    check(
        "1 started
         2 updating
         created 2",
        expect![[r#"
            step: no_scale
            counts: created 2, started 1; by state: started 1, updating 1; excluded: 0 unreachable, 0 other group
            targets: created 2..2, started -
            actions: none
            cursor: 0"#]],
    );
}

#[test]
fn replacing_and_updating_never_destroyed() {
    check(
        "1 replacing
         2 updating
         3 stopped
         created 1",
        expect![[r#"
            step: destroy
            counts: created 3, started 0; by state: replacing 1, stopped 1, updating 1; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started -
            actions:
              destroy 3  stopped; created 3 > max 1
            note: 2 machines over max 1 but only 1 can be destroyed (transient and unrecognised states are left alone)
            cursor: 0"#]],
    );
}

#[test]
fn replacing_and_updating_never_started() {
    check(
        "1 replacing
         2 updating
         3 stopped
         started 3",
        expect![[r#"
            step: start
            counts: created 3, started 0; by state: replacing 1, stopped 1, updating 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 3..3
            actions:
              start 3  stopped; started 0 < min 3
            note: not enough stopped machines available to reach target, please create more machines: 3 needed, 1 stopped or suspended
            cursor: 0"#]],
    );
}

#[test]
fn replacing_and_updating_never_stopped() {
    check(
        "1 replacing
         2 updating
         3 started
         started 0",
        expect![[r#"
            step: stop
            counts: created 3, started 1; by state: replacing 1, started 1, updating 1; excluded: 0 unreachable, 0 other group
            targets: created -, started 0..0
            actions:
              stop 3  started 1 > max 0
            cursor: 0"#]],
    );
}

#[test]
fn replacing_and_updating_are_not_clone_sources() {
    check(
        "1 stopped t=2024-01-01T00:00:00Z
         2 replacing t=2024-01-02T00:00:00Z
         3 updating t=2024-01-03T00:00:00Z
         created 4",
        expect![[r#"
            step: create
            counts: created 3, started 0; by state: replacing 1, stopped 1, updating 1; excluded: 0 unreachable, 0 other group
            targets: created 4..4, started -
            actions:
              create from 1 in iad  created 3 < min 4
            cursor: 0"#]],
    );
}

// On the way out (`destroying`, `destroyed`, `launch_failed`, `replaced`, `migrated`): counted
// toward nothing, never acted on, never cloned.

#[test]
fn leaving_states_neither_counted_nor_acted_on() {
    check(
        "1 destroying
         2 destroyed
         3 launch_failed
         4 replaced
         5 migrated
         6 stopped
         created 1
         started 1",
        expect![[r#"
            step: start
            counts: created 1, started 0; by state: destroyed 1, destroying 1, launch_failed 1, migrated 1, replaced 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started 1..1
            actions:
              start 6  stopped; started 0 < min 1
            cursor: 0"#]],
    );
}

#[test]
fn launch_failed_does_not_protect_last_machine() {
    // Counted as created, a `launch_failed` machine (about to be destroyed) made the planner
    // destroy the only machine that would remain.
    check(
        "1 launch_failed
         2 started
         created 1",
        expect![[r#"
            step: no_scale
            counts: created 1, started 1; by state: launch_failed 1, started 1; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started -
            actions: none
            cursor: 0"#]],
    );
}

#[test]
fn destroying_does_not_protect_last_machine() {
    check(
        "1 destroying
         2 destroyed
         3 stopped
         created 1",
        expect![[r#"
            step: no_scale
            counts: created 1, started 0; by state: destroyed 1, destroying 1, stopped 1; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started -
            actions: none
            cursor: 0"#]],
    );
}

#[test]
fn leaving_machine_is_not_a_clone_source() {
    check(
        "1 launch_failed t=2024-01-02T00:00:00Z
         2 destroying t=2024-01-03T00:00:00Z
         created 1",
        expect![[r#"
            step: create
            counts: created 0, started 0; by state: destroying 1, launch_failed 1; excluded: 0 unreachable, 0 other group
            targets: created 1..1, started -
            actions: none
            note: no machine available to clone for scale up: none of the group's machines has a complete config in a usable state
            cursor: 0"#]],
    );
}

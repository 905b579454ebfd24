//! The loop's policies, proven in-process on a paused tokio clock over an in-memory Fly
//! (`support/fake_fly.rs`): follow-ups, read-after-write lag, app-list refresh, per-app
//! deadlines, shutdown drain, one tick per app at a time. No process is spawned and no test
//! waits real seconds.

mod support;

use std::sync::Arc;
use std::time::Duration;

use fas_reconcile::{ActionKind, NoteKind, OpErrorKind, Outcome};
use fly_autoscaler::schedule;
use fly_autoscaler::tick::{Reconciler, TickError};
use support::fake_fly::{FakeFly, SetCollector, machine};
use tokio_util::sync::CancellationToken;

fn reconciler(fly: &FakeFly, load: &SetCollector, settings: &[(&str, &str)]) -> Arc<Reconciler> {
    support::fake_fly::reconciler(Arc::new(fly.clone()), load, settings)
}

/// Runs the loop for `span` of (paused) time, then shuts it down and waits for the drain.
async fn run_for(reconciler: Arc<Reconciler>, span: Duration) {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(schedule::run(reconciler, shutdown.clone()));
    tokio::time::sleep(span).await;
    shutdown.cancel();
    task.await.expect("loop task").expect("loop result");
}

fn secs(calls: &[support::fake_fly::Call]) -> Vec<f64> {
    calls
        .iter()
        .map(|c| (c.at.as_secs_f64() * 10.0).round() / 10.0)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_create_is_followed_up_after_two_seconds_then_the_interval_resumes() {
    let fly = FakeFly::new();
    fly.add("app", [machine("m1", "started")]);
    let load = SetCollector::new("load", 3.0);
    let r = reconciler(&fly, &load, &[("FAS_CREATED_MACHINE_COUNT", "load")]);
    run_for(r, Duration::from_secs(20)).await;
    assert_eq!(fly.calls_of("create", "app").len(), 2);
    // Tick at 0 creates 2; follow-up at 2 s sees 3 machines; then every 15 s from there.
    assert_eq!(secs(&fly.calls_of("list", "app")), [0.0, 2.0, 17.0]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_create_is_not_followed_up() {
    let fly = FakeFly::new();
    // Nothing can be cloned: the plan has no action, so no progress and no follow-up.
    fly.add("app", [machine("m1", "destroying")]);
    let load = SetCollector::new("load", 3.0);
    let r = reconciler(&fly, &load, &[("FAS_CREATED_MACHINE_COUNT", "load")]);
    run_for(r, Duration::from_secs(20)).await;
    assert_eq!(secs(&fly.calls_of("list", "app")), [0.0, 15.0]);
}

/// Whatever the read-after-write lag, the follow-up tick 2 s after a create (and every tick
/// until the list shows the new machines) never creates them again.
#[tokio::test(start_paused = true)]
async fn follow_up_ticks_never_create_twice_whatever_the_list_lag() {
    for lag_ms in [0, 1_000, 2_500, 5_000, 20_000, 45_000] {
        let fly = FakeFly::new();
        fly.knobs(|k| k.list_lag = Duration::from_millis(lag_ms));
        fly.add("app", [machine("m1", "started")]);
        let load = SetCollector::new("load", 4.0);
        let r = reconciler(
            &fly,
            &load,
            &[
                ("FAS_CREATED_MACHINE_COUNT", "load"),
                ("FAS_INTERVAL", "1s"),
            ],
        );
        run_for(r, Duration::from_secs(90)).await;
        assert_eq!(
            fly.calls_of("create", "app").len(),
            3,
            "lag {lag_ms} ms: exactly the 3 missing machines are created"
        );
        assert_eq!(fly.states("app").len(), 4);
    }
}

#[tokio::test(start_paused = true)]
async fn every_create_ending_failed_is_noted_once_and_failed_machines_are_not_recreated() {
    let fly = FakeFly::new();
    fly.knobs(|k| k.boot_state = Some("failed".into()));
    fly.add("app", [machine("m1", "started")]);
    let load = SetCollector::new("load", 3.0);
    let r = reconciler(&fly, &load, &[("FAS_CREATED_MACHINE_COUNT", "load")]);
    let shutdown = CancellationToken::new();
    let first = r.reconcile("app", &shutdown).await.expect("tick 1");
    assert_eq!(first.report.stats().of(ActionKind::Create).ok, 2);
    let second = r.reconcile("app", &shutdown).await.expect("tick 2");
    let notes: Vec<_> = second
        .plan
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::CreatesFailed)
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", second.plan.notes);
    assert!(notes[0].message.contains("new001") && notes[0].message.contains("new002"));
    assert!(
        second.plan.actions.is_empty(),
        "failed machines count as created: no new clone"
    );
    let third = r.reconcile("app", &shutdown).await.expect("tick 3");
    assert!(
        third
            .plan
            .notes
            .iter()
            .all(|n| n.kind != NoteKind::CreatesFailed),
        "noted once"
    );
    assert_eq!(fly.calls_of("create", "app").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_app_list_refresh_keeps_the_old_list_and_a_removed_app_is_forgotten() {
    let fly = FakeFly::new();
    fly.add("app-a", [machine("a1", "started")]);
    fly.add("app-b", [machine("b1", "started")]);
    let load = SetCollector::new("load", 1.0);
    let r = reconciler(
        &fly,
        &load,
        &[
            ("FAS_APP_NAME", "app-*"),
            ("FAS_ORG", "org"),
            ("FAS_CONCURRENCY", "2"),
            ("FAS_STARTED_MACHINE_COUNT", "load"),
            ("FAS_APP_LIST_REFRESH_INTERVAL", "30s"),
        ],
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(schedule::run(r.clone(), shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    fly.set_org_apps(None);
    // Refreshes at 30 s and 45 s fail; both apps keep being reconciled every 15 s.
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(
        secs(&fly.calls_of("list", "app-b")),
        [0.0, 15.0, 30.0, 45.0]
    );
    assert!(fly.calls_of("org_apps", "").len() >= 3);
    // The list comes back without app-b: it is no longer reconciled and its state is gone.
    fly.set_org_apps(Some(&["app-a"]));
    tokio::time::sleep(Duration::from_secs(40)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    // The refresh at 60 s drops app-b before its tick was due.
    assert_eq!(
        secs(&fly.calls_of("list", "app-b")),
        [0.0, 15.0, 30.0, 45.0]
    );
    assert!(fly.calls_of("list", "app-a").len() >= 6);
    assert_eq!(r.remembered_apps(), ["app-a"]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_app_is_cut_at_its_deadline_and_does_not_hold_up_the_others() {
    let fly = FakeFly::new();
    fly.knobs(|k| k.list_delay = Duration::from_secs(600));
    let load = SetCollector::new("load", 1.0);
    let r = reconciler(
        &fly,
        &load,
        &[("FAS_STARTED_MACHINE_COUNT", "load"), ("FAS_TIMEOUT", "5s")],
    );
    let shutdown = CancellationToken::new();
    let t0 = tokio::time::Instant::now();
    let result = r.reconcile("app", &shutdown).await;
    assert!(matches!(result, Err(TickError::Timeout(_))), "{result:?}");
    assert_eq!(t0.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_cut_tick_still_reports_the_calls_that_were_answered() {
    let fly = FakeFly::new();
    fly.add(
        "app",
        [
            machine("m1", "stopped"),
            machine("m2", "stopped"),
            machine("m3", "stopped"),
        ],
    );
    // m2's start never answers within the tick; m1 and m3 answer at once.
    fly.knobs(|k| {
        k.slow_starts.insert("m2".into(), Duration::from_secs(3600));
    });
    let load = SetCollector::new("load", 3.0);
    let r = reconciler(
        &fly,
        &load,
        &[("FAS_STARTED_MACHINE_COUNT", "load"), ("FAS_TIMEOUT", "5s")],
    );
    let t0 = tokio::time::Instant::now();
    let outcome = r
        .reconcile("app", &CancellationToken::new())
        .await
        .expect("an outcome, not an error");
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(5) + fly_autoscaler::tick::IN_FLIGHT_GRACE
    );
    let stats = outcome.report.stats().of(ActionKind::Start);
    assert_eq!((stats.ok, stats.failed), (2, 1));
    let cut = outcome
        .report
        .outcomes
        .iter()
        .find_map(|o| match &o.result {
            Outcome::Failed(e) => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(cut.kind(), OpErrorKind::Timeout);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_the_calls_in_flight_and_launches_nothing_new() {
    let fly = FakeFly::new();
    fly.add("app", [machine("m1", "stopped"), machine("m2", "stopped")]);
    fly.knobs(|k| k.start_delay = Duration::from_secs(3));
    let load = SetCollector::new("load", 2.0);
    let r = reconciler(
        &fly,
        &load,
        &[
            ("FAS_STARTED_MACHINE_COUNT", "load"),
            ("FAS_ACTION_CONCURRENCY", "1"),
        ],
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(schedule::run(r, shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t_cancel = tokio::time::Instant::now();
    shutdown.cancel();
    task.await.unwrap().unwrap();
    // The start in flight finished (at 3 s); the second was never sent.
    assert_eq!(t_cancel.elapsed(), Duration::from_secs(2));
    assert_eq!(fly.calls_of("start", "app").len(), 1);
    assert_eq!(fly.states("app")[0].1, "started");
}

#[tokio::test(start_paused = true)]
async fn no_two_ticks_of_one_app_run_at_once() {
    let fly = FakeFly::new();
    fly.add("app", [machine("m1", "started")]);
    // Each list takes longer than the interval.
    fly.knobs(|k| k.list_delay = Duration::from_secs(20));
    let load = SetCollector::new("load", 1.0);
    let r = reconciler(
        &fly,
        &load,
        &[
            ("FAS_STARTED_MACHINE_COUNT", "load"),
            ("FAS_TIMEOUT", "60s"),
            ("FAS_CONCURRENCY", "4"),
        ],
    );
    run_for(r, Duration::from_secs(100)).await;
    assert_eq!(fly.max_concurrent_lists("app"), 1);
    // Overrunning ticks are followed at once, not in a burst: 0, 20, 40, 60, 80.
    assert_eq!(
        secs(&fly.calls_of("list", "app")),
        [0.0, 20.0, 40.0, 60.0, 80.0]
    );
}

//! Executor tests against an in-memory fake `MachineOps` (paused tokio time).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use fas_reconcile::{
    Action, ExecPolicy, MachineOps, OpError, OpErrorKind, Outcome, Plan, PlanKind, PlannedAction,
    Report, execute,
};
use tokio::time::{Instant, sleep};

/// A fake with recorded calls, injected failures and per-machine delays.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<(String, Duration)>>,
    fail: BTreeSet<String>,
    /// Ids whose calls fail in a way that may have taken effect (a timeout, a lost answer).
    ambiguous: BTreeMap<String, OpError>,
    delay: BTreeMap<String, Duration>,
    default_delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    start: Option<Instant>,
    created: AtomicUsize,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            default_delay: Duration::from_secs(1),
            start: Some(Instant::now()),
            ..Fake::default()
        }
    }

    async fn call(&self, what: &str, id: &str) -> Result<(), OpError> {
        let now = self.start.map(|s| s.elapsed()).unwrap_or_default();
        self.calls
            .lock()
            .unwrap()
            .push((format!("{what} {id}"), now));
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(n, Ordering::SeqCst);
        sleep(*self.delay.get(id).unwrap_or(&self.default_delay)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(e) = self.ambiguous.get(id) {
            return Err(e.clone());
        }
        if self.fail.contains(id) {
            Err(OpError::new(
                OpErrorKind::Conflict,
                format!("{what} {id} refused"),
            ))
        } else {
            Ok(())
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(c, _)| c.clone())
            .collect()
    }
}

#[async_trait::async_trait]
impl MachineOps for Fake {
    async fn create(&self, source: &str, region: &str, _skip: bool) -> Result<String, OpError> {
        self.call("create", &format!("{source}@{region}")).await?;
        Ok(format!(
            "new{}",
            self.created.fetch_add(1, Ordering::SeqCst)
        ))
    }
    async fn start(&self, id: &str) -> Result<(), OpError> {
        self.call("start", id).await
    }
    async fn stop(&self, id: &str) -> Result<(), OpError> {
        self.call("stop", id).await
    }
    async fn suspend(&self, id: &str) -> Result<(), OpError> {
        self.call("suspend", id).await
    }
    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        self.call("destroy", id).await
    }
}

fn pa(action: Action) -> PlannedAction {
    PlannedAction {
        action,
        reason: "test".into(),
    }
}

fn plan_of(kind: PlanKind, actions: Vec<Action>, spares: Vec<Action>) -> Plan {
    Plan {
        kind,
        counts: Default::default(),
        targets: Default::default(),
        actions: actions.into_iter().map(pa).collect(),
        spares: spares.into_iter().map(pa).collect(),
        notes: Vec::new(),
        next_cursor: Default::default(),
        at: SystemTime::UNIX_EPOCH,
    }
}

fn starts(ids: &[&str]) -> Vec<Action> {
    ids.iter()
        .map(|id| Action::Start { id: (*id).into() })
        .collect()
}

fn summary(r: &Report) -> Vec<String> {
    r.outcomes
        .iter()
        .map(|o| {
            let id = o.action.machine_id().unwrap_or("-").to_owned();
            let spare = if o.spare { " spare" } else { "" };
            match &o.result {
                Outcome::Ok => format!("{id} ok{spare}"),
                Outcome::Failed(e) => format!("{id} failed({e}){spare}"),
                Outcome::Skipped => format!("{id} skipped{spare}"),
            }
        })
        .collect()
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i:02}")).collect()
}

#[tokio::test(start_paused = true)]
async fn bounded_concurrency_is_respected() {
    let fake = Fake::new();
    let all = ids(40);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let plan = plan_of(PlanKind::Start, starts(&refs), vec![]);
    let report = execute(
        &fake,
        &plan,
        &ExecPolicy { concurrency: 8 },
        std::future::pending(),
    )
    .await;
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 8);
    assert_eq!(report.stats().start.ok, 40);
    // 40 calls of 1 s, 8 at a time: 5 waves.
    assert_eq!(fake.start.unwrap().elapsed(), Duration::from_secs(5));
}

/// A plan of 1 000 starts (plus spares) under the default policy goes out in one round: all
/// 1 000 calls are in flight at once, and with 100 ms per call the plan ends after one latency.
#[tokio::test(start_paused = true)]
async fn default_policy_sends_a_thousand_actions_in_one_round() {
    let mut fake = Fake::new();
    fake.default_delay = Duration::from_millis(100);
    let all = ids(1_200);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let (planned, spares) = refs.split_at(1_000);
    let plan = plan_of(PlanKind::Start, starts(planned), starts(spares));
    let report = execute(&fake, &plan, &ExecPolicy::default(), std::future::pending()).await;
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 1_000);
    assert_eq!(fake.start.unwrap().elapsed(), Duration::from_millis(100));
    assert_eq!(report.stats().start.ok, 1_000);
    assert_eq!(report.outcomes.len(), 1_000, "no spare called in");
    for (o, p) in report.outcomes.iter().zip(&plan.actions) {
        assert_eq!(o.action, p.action, "plan order");
    }
    // Every call was launched at once, in plan order.
    let calls = fake.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1_000);
    assert!(calls.iter().all(|(_, at)| at.is_zero()));
    let want: Vec<String> = planned.iter().map(|id| format!("start {id}")).collect();
    assert_eq!(fake.calls(), want);
}

/// Above the bound, the rest waits for a free slot: 1 001 actions take two rounds.
#[tokio::test(start_paused = true)]
async fn the_default_bound_holds_beyond_a_thousand_actions() {
    let mut fake = Fake::new();
    fake.default_delay = Duration::from_millis(100);
    let all = ids(ExecPolicy::DEFAULT_CONCURRENCY + 1);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let stops = refs.iter().map(|id| Action::Stop { id: (*id).into() });
    let plan = plan_of(PlanKind::Stop, stops.collect(), vec![]);
    let report = execute(&fake, &plan, &ExecPolicy::default(), std::future::pending()).await;
    assert_eq!(
        fake.max_in_flight.load(Ordering::SeqCst),
        ExecPolicy::DEFAULT_CONCURRENCY
    );
    assert_eq!(fake.start.unwrap().elapsed(), Duration::from_millis(200));
    assert_eq!(report.stats().stop.ok as usize, all.len());
}

/// Spares of a one-round plan: the failed starts call in spares as they answer, so a plan of
/// 1 000 with 10 failures ends after two latencies with exactly 1 000 successes.
#[tokio::test(start_paused = true)]
async fn failures_in_a_thousand_action_round_call_in_spares() {
    let mut fake = Fake::new();
    fake.default_delay = Duration::from_millis(100);
    let all = ids(1_050);
    for id in all.iter().step_by(100).take(10) {
        fake.fail.insert(id.clone());
    }
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let (planned, spares) = refs.split_at(1_000);
    let plan = plan_of(PlanKind::Start, starts(planned), starts(spares));
    let report = execute(&fake, &plan, &ExecPolicy::default(), std::future::pending()).await;
    let s = report.stats();
    assert_eq!((s.start.ok, s.start.failed), (1_000, 10));
    assert_eq!(fake.start.unwrap().elapsed(), Duration::from_millis(200));
    let spare_ids: Vec<&str> = report
        .outcomes
        .iter()
        .filter(|o| o.spare)
        .filter_map(|o| o.action.machine_id())
        .collect();
    assert_eq!(spare_ids, &spares[..10], "spares in spare order");
}

#[tokio::test(start_paused = true)]
async fn outcomes_in_plan_order_whatever_the_completion_order() {
    let mut fake = Fake::new();
    fake.delay.insert("a".into(), Duration::from_secs(3));
    fake.delay.insert("b".into(), Duration::from_secs(2));
    fake.delay.insert("c".into(), Duration::from_secs(1));
    let plan = plan_of(
        PlanKind::Stop,
        vec![
            Action::Stop { id: "a".into() },
            Action::Stop { id: "b".into() },
            Action::Stop { id: "c".into() },
        ],
        vec![],
    );
    let report = execute(&fake, &plan, &ExecPolicy::default(), std::future::pending()).await;
    assert_eq!(summary(&report), ["a ok", "b ok", "c ok"]);
    assert_eq!(fake.start.unwrap().elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn one_failure_does_not_stop_the_others() {
    let mut fake = Fake::new();
    fake.fail.insert("b".into());
    let plan = plan_of(
        PlanKind::Destroy,
        vec![
            Action::Destroy { id: "a".into() },
            Action::Destroy { id: "b".into() },
            Action::Destroy { id: "c".into() },
        ],
        vec![],
    );
    let report = execute(
        &fake,
        &plan,
        &ExecPolicy::sequential(),
        std::future::pending(),
    )
    .await;
    assert_eq!(
        summary(&report),
        ["a ok", "b failed(conflict: destroy b refused)", "c ok"]
    );
    assert_eq!(fake.calls(), ["destroy a", "destroy b", "destroy c"]);
    let s = report.stats();
    assert_eq!(
        (s.destroy.ok, s.destroy.failed, s.destroy.skipped),
        (2, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn failed_start_calls_in_one_spare_like_go() {
    // Go: machines 1..4 stopped, min started 2, start of 2 fails -> 1, 2, 3 are tried.
    let mut fake = Fake::new();
    fake.fail.insert("2".into());
    let plan = plan_of(PlanKind::Start, starts(&["1", "2"]), starts(&["3", "4"]));
    let report = execute(
        &fake,
        &plan,
        &ExecPolicy::sequential(),
        std::future::pending(),
    )
    .await;
    assert_eq!(fake.calls(), ["start 1", "start 2", "start 3"]);
    assert_eq!(
        summary(&report),
        ["1 ok", "2 failed(conflict: start 2 refused)", "3 ok spare"]
    );
    let s = report.stats();
    assert_eq!((s.start.ok, s.start.failed), (2, 1));
}

/// Regression (found by the chaos soak): a start that timed out may have started its machine; a
/// spare called in after it pushed started above the target. A failure whose effect is unknown
/// calls in no spare; one that surely had no effect still does.
#[tokio::test(start_paused = true)]
async fn no_spare_after_a_failure_that_may_have_taken_effect() {
    for (error, spare) in [
        (OpError::new(OpErrorKind::Timeout, "timed out"), false),
        (
            OpError::other("502 bad gateway").with_effect_unknown(),
            false,
        ),
        (OpError::other("503 unavailable"), true),
        (OpError::new(OpErrorKind::RateLimited, "429"), true),
    ] {
        let mut fake = Fake::new();
        fake.ambiguous.insert("2".into(), error.clone());
        let plan = plan_of(PlanKind::Start, starts(&["1", "2"]), starts(&["3", "4"]));
        let report = execute(
            &fake,
            &plan,
            &ExecPolicy::sequential(),
            std::future::pending(),
        )
        .await;
        let expected: &[&str] = if spare {
            &["start 1", "start 2", "start 3"]
        } else {
            &["start 1", "start 2"]
        };
        assert_eq!(fake.calls(), expected, "{error}");
        assert_eq!(report.outcomes.iter().any(|o| o.spare), spare, "{error}");
    }
}

#[tokio::test(start_paused = true)]
async fn spares_never_exceed_the_target_even_when_spares_fail() {
    let mut fake = Fake::new();
    for id in ["1", "2", "3"] {
        fake.fail.insert(id.into());
    }
    let plan = plan_of(
        PlanKind::Stop,
        vec![
            Action::Stop { id: "1".into() },
            Action::Stop { id: "2".into() },
        ],
        vec![
            Action::Stop { id: "3".into() },
            Action::Stop { id: "4".into() },
        ],
    );
    let report = execute(&fake, &plan, &ExecPolicy::default(), std::future::pending()).await;
    // Two failures call in the two spares; 3 fails too, and there is no spare left for it.
    assert_eq!(
        summary(&report),
        [
            "1 failed(conflict: stop 1 refused)",
            "2 failed(conflict: stop 2 refused)",
            "3 failed(conflict: stop 3 refused) spare",
            "4 ok spare",
        ]
    );
    assert_eq!(report.stats().stop.ok, 1);
}

#[tokio::test(start_paused = true)]
async fn unused_spares_are_not_reported() {
    let fake = Fake::new();
    let plan = plan_of(PlanKind::Start, starts(&["1"]), starts(&["2"]));
    let report = execute(&fake, &plan, &ExecPolicy::default(), std::future::pending()).await;
    assert_eq!(summary(&report), ["1 ok"]);
    assert_eq!(fake.calls(), ["start 1"]);
}

#[tokio::test(start_paused = true)]
async fn stop_future_skips_the_unlaunched_and_lets_in_flight_finish() {
    let mut fake = Fake::new();
    fake.default_delay = Duration::from_secs(10);
    let all = ids(6);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let plan = plan_of(PlanKind::Start, starts(&refs), vec![]);
    // Deadline at 15 s: wave 1 (m00, m01) done at 10 s, wave 2 (m02, m03) in flight at 15 s.
    let report = execute(
        &fake,
        &plan,
        &ExecPolicy { concurrency: 2 },
        sleep(Duration::from_secs(15)),
    )
    .await;
    assert_eq!(
        summary(&report),
        [
            "m00 ok",
            "m01 ok",
            "m02 ok",
            "m03 ok",
            "m04 skipped",
            "m05 skipped"
        ]
    );
    assert_eq!(fake.calls().len(), 4);
    assert_eq!(fake.start.unwrap().elapsed(), Duration::from_secs(20));
    let s = report.stats();
    assert_eq!((s.start.ok, s.start.skipped), (4, 2));
}

#[tokio::test(start_paused = true)]
async fn already_resolved_stop_launches_nothing() {
    let fake = Fake::new();
    let plan = plan_of(PlanKind::Start, starts(&["a", "b"]), starts(&["c"]));
    let report = execute(&fake, &plan, &ExecPolicy::default(), std::future::ready(())).await;
    assert_eq!(summary(&report), ["a skipped", "b skipped"]);
    assert!(fake.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn spare_called_in_after_the_deadline_is_skipped() {
    let mut fake = Fake::new();
    fake.fail.insert("a".into());
    fake.default_delay = Duration::from_secs(10);
    let plan = plan_of(PlanKind::Start, starts(&["a"]), starts(&["b"]));
    let report = execute(
        &fake,
        &plan,
        &ExecPolicy::default(),
        sleep(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(
        summary(&report),
        ["a failed(conflict: start a refused)", "b skipped spare"]
    );
}

#[tokio::test(start_paused = true)]
async fn sequential_mode_runs_one_at_a_time_in_plan_order() {
    let fake = Fake::new();
    let plan = plan_of(
        PlanKind::Stop,
        vec![
            Action::Suspend { id: "3".into() },
            Action::Suspend { id: "1".into() },
            Action::Suspend { id: "2".into() },
        ],
        vec![],
    );
    let report = execute(
        &fake,
        &plan,
        &ExecPolicy::sequential(),
        std::future::pending(),
    )
    .await;
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 1);
    let calls = fake.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            ("suspend 3".to_owned(), Duration::from_secs(0)),
            ("suspend 1".to_owned(), Duration::from_secs(1)),
            ("suspend 2".to_owned(), Duration::from_secs(2)),
        ]
    );
    assert_eq!(report.stats().suspend.ok, 3);
}

#[tokio::test(start_paused = true)]
async fn zero_concurrency_is_treated_as_one() {
    let fake = Fake::new();
    let plan = plan_of(PlanKind::Start, starts(&["a", "b"]), vec![]);
    let report = execute(
        &fake,
        &plan,
        &ExecPolicy { concurrency: 0 },
        std::future::pending(),
    )
    .await;
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(report.stats().start.ok, 2);
}

#[tokio::test(start_paused = true)]
async fn create_reports_new_id_and_failed_create_is_not_retried() {
    let mut fake = Fake::new();
    fake.fail.insert("src@ams".into());
    let create = |region: &str| Action::Create {
        source: "src".into(),
        region: region.into(),
        skip_launch: false,
    };
    let plan = plan_of(
        PlanKind::Create,
        vec![create("iad"), create("ams"), create("fra")],
        vec![],
    );
    let report = execute(
        &fake,
        &plan,
        &ExecPolicy::sequential(),
        std::future::pending(),
    )
    .await;
    assert_eq!(
        fake.calls(),
        ["create src@iad", "create src@ams", "create src@fra"]
    );
    let ids: Vec<Option<&str>> = report
        .outcomes
        .iter()
        .map(|o| o.created_id.as_deref())
        .collect();
    assert_eq!(ids, [Some("new0"), None, Some("new1")]);
    let s = report.stats();
    assert_eq!((s.create.ok, s.create.failed), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn empty_plan_makes_no_calls() {
    let fake = Fake::new();
    let plan = plan_of(PlanKind::NoScale, vec![], vec![]);
    let report = execute(&fake, &plan, &ExecPolicy::default(), std::future::pending()).await;
    assert!(report.outcomes.is_empty());
    assert!(fake.calls().is_empty());
}

#[test]
fn execute_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let fake = Fake::new_unstarted();
    let plan = plan_of(PlanKind::NoScale, vec![], vec![]);
    let policy = ExecPolicy::default();
    let fut = execute(&fake, &plan, &policy, std::future::pending::<()>());
    assert_send(&fut);
    let dyn_ops: &dyn MachineOps = &fake;
    let fut2 = execute(dyn_ops, &plan, &policy, std::future::pending::<()>());
    assert_send(&fut2);
}

impl Fake {
    fn new_unstarted() -> Fake {
        Fake::default()
    }
}

#[test]
fn op_error_keeps_kind_message_and_source() {
    let io = std::io::Error::other("socket closed");
    let e = OpError::new(OpErrorKind::RateLimited, "start m1: rate limited").with_source(io);
    assert_eq!(e.to_string(), "rate limited: start m1: rate limited");
    assert_eq!(e.kind(), OpErrorKind::RateLimited);
    assert_eq!(
        std::error::Error::source(&e).unwrap().to_string(),
        "socket closed"
    );
    let json = serde_json::to_string(&Outcome::Failed(OpError::other("boom"))).unwrap();
    assert_eq!(
        json,
        r#"{"status":"failed","error":{"kind":"other","message":"boom"}}"#
    );
}

/// The plan for machines `(id, state)` and a started target of exactly `started`.
fn plan_started(ids_states: &[(&str, &str)], started: u32) -> fas_reconcile::Plan {
    let targets = fas_reconcile::Targets {
        created: None,
        started: Some(fas_reconcile::Bounds::exactly(started)),
    };
    fas_reconcile::plan(
        &stopped_or_started(ids_states),
        &targets,
        &Default::default(),
        Default::default(),
        SystemTime::UNIX_EPOCH,
    )
}

fn stopped_or_started(ids_states: &[(&str, &str)]) -> Vec<fas_reconcile::Machine> {
    ids_states
        .iter()
        .map(|(id, state)| fas_reconcile::Machine {
            id: (*id).into(),
            state: fas_reconcile::MachineState::parse(state),
            region: "iad".into(),
            process_group: Some("app".into()),
            host: fas_reconcile::HostStatus::Ok,
            has_config: true,
            created_at: None,
        })
        .collect()
}

/// Go `TestReconciler_Scale_Start/Failed`, planned and executed: 1..4 stopped, min started 2,
/// the start of 2 fails: 1, 2 and 3 are tried, 2 started, 1 failed.
#[tokio::test(start_paused = true)]
async fn go_start_failed_end_to_end() {
    let mut fake = Fake::new();
    fake.fail.insert("2".into());
    let p = plan_started(
        &[
            ("1", "stopped"),
            ("2", "stopped"),
            ("3", "stopped"),
            ("4", "stopped"),
        ],
        2,
    );
    let report = execute(&fake, &p, &ExecPolicy::sequential(), std::future::pending()).await;
    assert_eq!(fake.calls(), ["start 1", "start 2", "start 3"]);
    let s = report.stats();
    assert_eq!((s.start.ok, s.start.failed), (2, 1));
}

/// Go `TestReconciler_Scale_Stop/Failed`: 1..3 started, max 1, the stop of 2 fails: 1, 2 and 3
/// are tried, 2 stopped, 1 failed.
#[tokio::test(start_paused = true)]
async fn go_stop_failed_end_to_end() {
    let mut fake = Fake::new();
    fake.fail.insert("2".into());
    let p = plan_started(
        &[
            ("1", "started"),
            ("2", "started"),
            ("3", "started"),
            ("4", "stopped"),
        ],
        1,
    );
    assert_eq!(p.kind(), PlanKind::Stop);
    let report = execute(&fake, &p, &ExecPolicy::sequential(), std::future::pending()).await;
    assert_eq!(fake.calls(), ["stop 1", "stop 2", "stop 3"]);
    let s = report.stats();
    assert_eq!((s.stop.ok, s.stop.failed), (2, 1));
}

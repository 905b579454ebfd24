//! Issue acceptance for the executor: what one tick of the serve loop does (list → `to_domain` →
//! `plan` → `execute` through the real `FlyOps` adapter and the real `fas_flyapi::Client` with its
//! default retry and rate-limit policy) against the in-process simulator over loopback HTTP.
//!
//! Each test keeps the simulator's documented rate limits on. Real time is used throughout (the
//! client talks to a real socket, so tokio's paused clock would fire timeouts early).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use fas_flyapi::{Client, ClientConfig, ListMachinesOptions};
use fas_flysim::{FaultKind, FaultMatch, MachineSpec, RandomFault, SimConfig, Simulator};
use fas_reconcile::{
    Action, Bounds, ExecPolicy, Outcome, Plan, Policy, RegionCursor, Report, Targets,
};
use fly_autoscaler::ops::{FlyOps, to_domain};

const APP: &str = "web";

/// A client with every default (retry, rate limits, timeouts) pointed at the simulator.
fn client(sim: &Simulator) -> Client {
    let mut cfg = ClientConfig::new(sim.token());
    cfg.machines_base_url = sim.base_url();
    cfg.graphql_base_url = sim.base_url();
    Client::new(cfg).expect("valid client config")
}

struct Tick {
    plan: Plan,
    report: Report,
}

/// One tick of the serve loop for one app: list, convert, plan, execute.
async fn tick(
    client: &Client,
    targets: &Targets,
    policy: &Policy,
    cursor: RegionCursor,
    exec: &ExecPolicy,
    stop: impl Future<Output = ()>,
) -> Tick {
    let listed = client
        .list_machines(APP, &ListMachinesOptions::default())
        .await
        .expect("list machines");
    let machines: Vec<_> = listed.iter().map(to_domain).collect();
    let plan = fas_reconcile::plan(&machines, targets, policy, cursor, SystemTime::now());
    let ops = FlyOps::new(client, APP, &listed);
    let report = fas_reconcile::execute(&ops, &plan, exec, stop).await;
    Tick { plan, report }
}

/// A tick without deadline and with the default executor policy.
async fn plain_tick(client: &Client, targets: &Targets, policy: &Policy) -> Tick {
    tick(
        client,
        targets,
        policy,
        RegionCursor(0),
        &ExecPolicy::default(),
        std::future::pending(),
    )
    .await
}

async fn sim_with(cfg: SimConfig, state: &str, n: usize) -> (Simulator, Vec<String>) {
    let sim = Simulator::start(cfg).await.expect("simulator starts");
    sim.add_app("acme", APP);
    let ids = (0..n)
        .map(|_| sim.add_machine(APP, MachineSpec::new().state(state)))
        .collect();
    (sim, ids)
}

fn started(n: u32) -> Targets {
    Targets {
        created: None,
        started: Some(Bounds::exactly(n)),
    }
}

fn created(n: u32) -> Targets {
    Targets {
        created: Some(Bounds::exactly(n)),
        started: None,
    }
}

/// Random faults on one route: 30 % of requests answer `status`, 30 % answer 429 (no `Retry-After`).
fn faults(route: &str, status: u16) -> Vec<RandomFault> {
    let on = |probability, status| RandomFault {
        matches: FaultMatch {
            route: Some(route.to_owned()),
            method: None,
        },
        probability,
        fault: FaultKind::Status { status },
    };
    // The simulator draws the faults in order, so the second one is conditional on the first
    // not firing: 0.3 / 0.7 of the remaining 70 % is 30 % overall.
    vec![on(0.3, status), on(0.3 / 0.7, 429)]
}

/// Successful (200) calls of `route` per machine id, from the simulator's request log.
fn successes(sim: &Simulator, route: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in sim.request_log() {
        if r.route == route && r.status == 200 {
            *out.entry(r.machine_id.unwrap_or_default()).or_insert(0) += 1;
        }
    }
    out
}

fn statuses(sim: &Simulator, route: &str) -> BTreeMap<u16, usize> {
    let mut out = BTreeMap::new();
    for r in sim.request_log().into_iter().filter(|r| r.route == route) {
        *out.entry(r.status).or_insert(0) += 1;
    }
    out
}

/// Polls the simulator until `n` machines are in `state` (transitions take real time).
async fn wait_for_state(sim: &Simulator, state: &str, n: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let have = sim.count_in_state(APP, state);
        if have == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{have} machines {state}, expected {n} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 100 stopped machines, target 100 started, 100 ms latency per request, default timing
/// (0.5–2 s in `starting`): one tick starts all of them with one call each and no 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_starts_converge_in_one_tick_without_429() {
    let mut cfg = SimConfig::default();
    cfg.faults.latency_ms = 100;
    assert!(cfg.rate_limits.enabled);
    let (sim, ids) = sim_with(cfg, "stopped", 100).await;
    let cl = client(&sim);

    let t = plain_tick(&cl, &started(100), &Policy::default()).await;

    assert_eq!(t.plan.actions.len(), 100);
    let stats = t.report.stats();
    assert_eq!(
        (stats.start.ok, stats.start.failed, stats.start.skipped),
        (100, 0, 0)
    );
    wait_for_state(&sim, "started", 100, Duration::from_secs(10)).await;
    assert_eq!(sim.rate_limited_count(), 0);
    let starts = successes(&sim, "start");
    assert_eq!(sim.count_route("start"), 100, "no retries, no extra calls");
    for id in &ids {
        assert_eq!(starts.get(id), Some(&1), "machine {id} started once");
    }
    assert_eq!(sim.peak_started(APP), 100);
}

/// 1 000 stopped machines, target 1 000 started, the rate limits on: the default policy sends
/// the 1 000 starts at once (one per machine, so each meets a fresh per-machine budget) and no
/// 429 comes back; over plain HTTP/1.1 each call in flight had its own connection, and the next
/// tick (1 000 stops) finds them in the client's pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_starts_meet_no_429_and_the_next_tick_reuses_the_connections() {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = 20;
    assert!(cfg.rate_limits.enabled);
    let (sim, ids) = sim_with(cfg, "stopped", 1_000).await;
    let cl = client(&sim);
    assert!(ExecPolicy::default().concurrency >= 1_000);

    let t = plain_tick(&cl, &started(1_000), &Policy::default()).await;

    assert_eq!(t.plan.actions.len(), 1_000);
    let stats = t.report.stats();
    assert_eq!(
        (stats.start.ok, stats.start.failed, stats.start.skipped),
        (1_000, 0, 0)
    );
    assert_eq!(sim.rate_limited_count(), 0);
    assert_eq!(
        sim.count_route("start"),
        1_000,
        "no retries, no extra calls"
    );
    let starts = successes(&sim, "start");
    assert!(ids.iter().all(|id| starts.get(id) == Some(&1)));
    assert_eq!(sim.count_in_state(APP, "started"), 1_000);
    let first = sim.connections();
    assert!(
        first.accepted <= 1_001,
        "one connection per call at most: {first:?}"
    );

    // The next tick finds the connections in the client's pool. A few may have been lost in the
    // first burst (hyper-util's pool can hand a new connection to a request that has just
    // stopped waiting for it, and then drops it): at least 99 % are reused.
    let t = plain_tick(&cl, &started(0), &Policy::default()).await;
    assert_eq!(t.report.stats().stop.ok, 1_000);
    assert_eq!(sim.rate_limited_count(), 0);
    let second = sim.connections();
    assert!(
        second.accepted - first.accepted <= 10,
        "the second tick reused the connections: {first:?} then {second:?}"
    );
}

/// The same burst over TLS, where the client picks HTTP/2 through ALPN: the tick's list learns
/// the protocol on one connection, the 1 000 starts share the client's ten HTTP/2 connections
/// (`ClientConfig::http2_connections`), and no 429 comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_starts_over_http2_share_ten_connections() {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = 20;
    let sim = Simulator::start_tls(cfg).await.expect("simulator starts");
    sim.add_app("acme", APP);
    for _ in 0..1_000 {
        sim.add_machine(APP, MachineSpec::new().state("stopped"));
    }
    let mut cc = ClientConfig::new(sim.token());
    cc.machines_base_url = sim.base_url();
    cc.graphql_base_url = sim.base_url();
    cc.tls_root_certificates_der = vec![sim.tls_certificate_der().expect("TLS").to_vec()];
    let cl = Client::new(cc).expect("valid client config");

    let t = plain_tick(&cl, &started(1_000), &Policy::default()).await;

    assert_eq!(t.report.stats().start.ok, 1_000);
    assert_eq!(sim.rate_limited_count(), 0);
    assert_eq!(sim.count_route("start"), 1_000);
    let c = sim.connections();
    assert_eq!((c.accepted, c.tls_h2, c.tls_http1), (11, 11, 0), "{c:?}");
}

/// 120 stopped machines, target 100 started; 30 % of start calls answer 500 and 30 % answer 429.
/// Ticks converge to exactly 100 started, the started count never exceeds 100, and no machine
/// is started twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_starts_converge_without_overshoot() {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = 10;
    cfg.faults.random = faults("start", 500);
    let (sim, _) = sim_with(cfg, "stopped", 120).await;
    let cl = client(&sim);
    let targets = started(100);

    let mut ticks = 0;
    let mut failed = 0;
    while sim.count_in_state(APP, "started") != 100 {
        ticks += 1;
        assert!(ticks <= 10, "not converged after 10 ticks");
        let t = plain_tick(&cl, &targets, &Policy::default()).await;
        failed += t.report.stats().start.failed;
        assert!(
            sim.peak_started(APP) <= 100,
            "overshoot: {}",
            sim.peak_started(APP)
        );
    }
    assert_eq!(sim.peak_started(APP), 100);
    println!(
        "starts: {ticks} ticks, {failed} failed actions, statuses {:?}",
        statuses(&sim, "start")
    );
    assert!(failed > 0, "the faults were exercised");
    let s = statuses(&sim, "start");
    assert!(
        s.get(&500).copied().unwrap_or(0) > 0 && s.get(&429).copied().unwrap_or(0) > 0,
        "{s:?}"
    );
    let starts = successes(&sim, "start");
    assert_eq!(starts.len(), 100);
    assert!(starts.values().all(|&n| n == 1), "{starts:?}");
    // One more tick plans nothing.
    assert!(
        plain_tick(&cl, &targets, &Policy::default())
            .await
            .plan
            .is_empty()
    );
}

/// 100 started machines, target 50 started; 30 % of stop calls answer 500 and 30 % answer 429.
/// Converges to exactly 50 started, never fewer, no machine stopped twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_stops_converge_without_undershoot() {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = 10;
    cfg.faults.random = faults("stop", 500);
    let (sim, _) = sim_with(cfg, "started", 100).await;
    let cl = client(&sim);
    let targets = started(50);

    let mut ticks = 0;
    let mut failed = 0;
    while sim.count_in_state(APP, "started") != 50 {
        ticks += 1;
        assert!(ticks <= 10, "not converged after 10 ticks");
        let t = plain_tick(&cl, &targets, &Policy::default()).await;
        failed += t.report.stats().stop.failed;
        let now = sim.count_in_state(APP, "started");
        assert!(now >= 50, "stopped below the target: {now} started");
    }
    assert_eq!(sim.count_in_state(APP, "stopped"), 50);
    println!(
        "stops: {ticks} ticks, {failed} failed actions, statuses {:?}",
        statuses(&sim, "stop")
    );
    assert!(failed > 0, "the faults were exercised");
    let stops = successes(&sim, "stop");
    assert_eq!(stops.len(), 50);
    assert!(stops.values().all(|&n| n == 1), "{stops:?}");
    assert!(
        plain_tick(&cl, &targets, &Policy::default())
            .await
            .plan
            .is_empty()
    );
}

/// One machine, min created 20, regions `iad, ams, syd`: creates are capped at 10 per tick, so
/// the region rotation continues across ticks through the cursor; every create body clones the
/// source with its full image reference; the rate limits are on and no 429 is met.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_rotate_regions_across_ticks_with_full_image_ref() {
    let (sim, _) = sim_with(SimConfig::instant(), "started", 1).await;
    let cl = client(&sim);
    let source = cl
        .list_machines(APP, &ListMachinesOptions::default())
        .await
        .expect("list")
        .remove(0);
    let image = source
        .full_image_ref()
        .expect("the simulator reports an image ref");
    assert!(image.contains('@'), "full ref carries the digest: {image}");
    let regions = ["iad", "ams", "syd"];
    let policy = Policy {
        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
        ..Policy::default()
    };

    let mut cursor = RegionCursor(0);
    let mut planned_regions = Vec::new();
    let mut ticks = 0;
    while sim
        .machines(APP)
        .iter()
        .filter(|m| m.state != "destroyed")
        .count()
        < 20
    {
        ticks += 1;
        assert!(ticks <= 5, "not converged after 5 ticks");
        let t = tick(
            &cl,
            &created(20),
            &policy,
            cursor,
            &ExecPolicy::default(),
            std::future::pending(),
        )
        .await;
        assert!(t.plan.actions.len() <= 10, "creates capped per tick");
        for a in &t.plan.actions {
            let Action::Create { region, .. } = &a.action else {
                panic!("unexpected action {:?}", a.action);
            };
            planned_regions.push(region.clone());
        }
        assert_eq!(t.report.stats().create.ok as usize, t.plan.actions.len());
        cursor = t.plan.next_cursor;
    }
    assert_eq!(ticks, 2, "10 + 9 creates");
    let expected: Vec<String> = (0..19).map(|i| regions[i % 3].to_owned()).collect();
    assert_eq!(
        planned_regions, expected,
        "round-robin continues across ticks"
    );

    let mut sent_regions = BTreeMap::new();
    let creates: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.route == "create")
        .collect();
    assert_eq!(creates.len(), 19);
    for r in &creates {
        assert_eq!(r.status, 200);
        let body: serde_json::Value = serde_json::from_str(&r.body).expect("json body");
        assert_eq!(body["config"]["image"], image.as_str(), "{body}");
        *sent_regions
            .entry(body["region"].as_str().unwrap_or("").to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(
        sent_regions,
        BTreeMap::from([("ams".into(), 6), ("iad".into(), 7), ("syd".into(), 6)])
    );
    let mut sim_regions = BTreeMap::new();
    for m in sim.machines(APP) {
        *sim_regions.entry(m.region).or_insert(0) += 1;
    }
    assert_eq!(sim_regions.values().sum::<i32>(), 20);
    assert_eq!(sim.rate_limited_count(), 0);
}

/// 30 stopped machines, max created 10; 30 % of destroy calls answer 500 and 30 % answer 429.
/// Never fewer than 10 machines remain, exactly 20 are destroyed, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_destroys_never_remove_more_than_the_excess() {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = 10;
    cfg.faults.random = faults("destroy", 500);
    let (sim, _) = sim_with(cfg, "stopped", 30).await;
    let cl = client(&sim);
    let alive = || {
        sim.machines(APP)
            .iter()
            .filter(|m| m.state != "destroyed")
            .count()
    };

    let mut ticks = 0;
    let mut failed = 0;
    while alive() != 10 {
        ticks += 1;
        assert!(ticks <= 10, "not converged after 10 ticks");
        let t = plain_tick(&cl, &created(10), &Policy::default()).await;
        assert!(t.plan.actions.len() <= 10, "destroys capped per tick");
        failed += t.report.stats().destroy.failed;
        assert!(
            alive() >= 10,
            "destroyed beyond the excess: {} left",
            alive()
        );
    }
    println!(
        "destroys: {ticks} ticks, {failed} failed actions, statuses {:?}",
        statuses(&sim, "destroy")
    );
    assert!(failed > 0, "the faults were exercised");
    let destroys = successes(&sim, "destroy");
    assert_eq!(destroys.len(), 20);
    assert!(destroys.values().all(|&n| n == 1), "{destroys:?}");
    assert!(
        plain_tick(&cl, &created(10), &Policy::default())
            .await
            .plan
            .is_empty()
    );
}

/// Only started machines to destroy (the planner's last choice): the adapter kills them (Go sends
/// `kill=true`), so 3 started with max created 1 leave exactly one, in one tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroys_of_started_machines_kill_them() {
    let (sim, _) = sim_with(SimConfig::instant(), "started", 3).await;
    let cl = client(&sim);

    let t = plain_tick(&cl, &created(1), &Policy::default()).await;

    assert_eq!(t.plan.actions.len(), 2);
    assert_eq!(t.report.stats().destroy.ok, 2, "{:?}", t.report);
    let alive: Vec<_> = sim
        .machines(APP)
        .into_iter()
        .filter(|m| m.state != "destroyed")
        .collect();
    assert_eq!(alive.len(), 1);
    assert_eq!(alive[0].state, "started");
    assert_eq!(statuses(&sim, "destroy"), BTreeMap::from([(200, 2)]));
}

/// 1 s latency per request, 10 calls in flight, a deadline 1.3 s after the tick began (the list
/// takes 1 s, like the serve loop's deadline that covers the whole tick): the first 10 starts are
/// launched and finish after the deadline, the other 90 are reported `Skipped`, and nothing else
/// reaches the simulator afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_skips_unlaunched_actions() {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = 1_000;
    let (sim, _) = sim_with(cfg, "stopped", 100).await;
    let cl = client(&sim);

    let t = tick(
        &cl,
        &started(100),
        &Policy::default(),
        RegionCursor(0),
        &ExecPolicy { concurrency: 10 },
        tokio::time::sleep(Duration::from_millis(1_300)),
    )
    .await;

    assert_eq!(t.report.outcomes.len(), 100);
    for (i, o) in t.report.outcomes.iter().enumerate() {
        assert_eq!(o.action, t.plan.actions[i].action, "plan order");
        let want = if i < 10 {
            Outcome::Ok
        } else {
            Outcome::Skipped
        };
        assert_eq!(o.result, want, "action {i}");
    }
    // Nothing beyond the launched calls happens later.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(sim.count_route("start"), 10);
    assert_eq!(sim.request_log().len(), 11, "one list and ten starts");
    let mut launched: Vec<String> = t.plan.actions[..10]
        .iter()
        .filter_map(|a| a.action.machine_id().map(str::to_owned))
        .collect();
    launched.sort();
    let now_started: Vec<String> = sim
        .machines_in_state(APP, "started")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        now_started, launched,
        "exactly the launched machines started"
    );
}

/// A deadline that passed before the plan was ready: every action is `Skipped`, no machine call
/// is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_passed_before_execute_launches_nothing() {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = 200;
    let (sim, _) = sim_with(cfg, "stopped", 100).await;
    let cl = client(&sim);

    let t = tick(
        &cl,
        &started(100),
        &Policy::default(),
        RegionCursor(0),
        &ExecPolicy::default(),
        tokio::time::sleep(Duration::from_millis(50)),
    )
    .await;

    assert_eq!(t.plan.actions.len(), 100);
    let stats = t.report.stats();
    assert_eq!(
        (stats.start.ok, stats.start.failed, stats.start.skipped),
        (0, 0, 100)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.count_route("start"), 0);
    assert_eq!(sim.request_log().len(), 1, "only the list");
    assert_eq!(sim.count_in_state(APP, "stopped"), 100);
}

//! End-to-end scaling tests: the built `fly-autoscaler serve` as a child process (cleared environment) against
//! the in-process Fly API simulator and a Prometheus (a fake HTTP API, and once the real server).
//!
//! Every wait is bounded ([`support::DEADLINE`]); child processes are killed on drop.

mod support;

use fas_flysim::{FaultKind, FaultMatch, MachineSpec, ScriptedFault};
use fas_testkit::{Exporter, PromServer, free_port};
use support::{
    FakeProm, Fas, PromAnswer, add_machines, base_env, http_get, live, mutations, parse_metrics,
    sample, set, sim, wait_until,
};

fn stopped() -> MachineSpec {
    MachineSpec::new().state("stopped")
}

/// Env vars only: the started count follows `ceil(queue_depth / 10)` up, then down, never overshooting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_only_scales_up_then_down() {
    let sim = sim().await;
    let mut ids = add_machines(&sim, "web", 6, &stopped());
    ids.sort();
    let prom = FakeProm::start(PromAnswer::Value(25.0)).await;
    let env = base_env(&sim, &prom.url(), "web", free_port());
    let mut fas = Fas::spawn(&["serve"], &env);

    wait_until(&mut fas, "3 machines started", || {
        sim.count_in_state("web", "started") == 3
    })
    .await;
    fas.wait_ticks(2).await;
    assert_eq!(sim.count_in_state("web", "started"), 3);
    assert_eq!(sim.peak_started("web"), 3, "never more than the target");
    let started_ids = || -> Vec<String> {
        sim.machines_in_state("web", "started")
            .into_iter()
            .map(|m| m.id)
            .collect()
    };
    assert_eq!(started_ids(), ids[..3], "lowest ids are started first");
    assert_eq!(
        sim.count_route("create"),
        0,
        "a started count never creates"
    );

    prom.set(PromAnswer::Value(5.0));
    wait_until(&mut fas, "1 machine started", || {
        sim.count_in_state("web", "started") == 1
    })
    .await;
    fas.wait_ticks(2).await;
    assert_eq!(sim.count_in_state("web", "started"), 1);
    assert_eq!(sim.count_in_state("web", "stopped"), 5);
    assert_eq!(started_ids(), ids[2..3], "lowest ids are stopped first");
    assert_eq!(sim.count_route("destroy"), 0);
    let q = prom.queries();
    assert!(
        q.iter().all(|q| q == "sum(queue_depth{app=\"web\"})"),
        "{q:?}"
    );
    // No scale-down window by default (the Go behaviour): the first tick that reads the drop stops machines.
    let lines = fas.lines_with_message("reconcile");
    assert!(lines.iter().all(|l| l["stabilized"] == false), "{lines:?}");
    let first_low = lines
        .iter()
        .find(|l| queue_depth(l) == 5.0)
        .expect("a tick read the drop");
    assert_eq!(first_low["decision"], "stop", "{first_low}");
    fas.stop().await;
}

/// The collected `queue_depth` of a `reconcile` log line.
fn queue_depth(line: &serde_json::Value) -> f64 {
    let metrics: serde_json::Value =
        serde_json::from_str(line["metrics"].as_str().unwrap_or("{}")).unwrap_or_default();
    metrics["queue_depth"].as_f64().unwrap_or(f64::NAN)
}

/// With `FAS_SCALE_DOWN_WINDOW`, a drop in the metric stops machines only once the high reading has left the
/// window; meanwhile every tick holds the max (`stabilized`) and stops nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_window_delays_stops() {
    let sim = sim().await;
    add_machines(&sim, "web", 4, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(25.0)).await;
    let mut env = base_env(&sim, &prom.url(), "web", free_port());
    set(&mut env, "FAS_SCALE_DOWN_WINDOW", "3s");
    let mut fas = Fas::spawn(&["serve"], &env);

    wait_until(&mut fas, "3 machines started", || {
        sim.count_in_state("web", "started") == 3
    })
    .await;
    fas.wait_ticks(2).await;
    let stops_before = sim.count_route("stop");

    prom.set(PromAnswer::Value(5.0));
    let dropped = std::time::Instant::now();
    let held = |fas: &Fas| {
        fas.lines_with_message("reconcile")
            .iter()
            .filter(|l| l["stabilized"] == true)
            .count()
    };
    // Bounded: each wait is bounded, and the window is 15 ticks long.
    for _ in 0..20 {
        if held(&fas) >= 2 {
            break;
        }
        fas.wait_ticks(1).await;
    }
    assert!(
        held(&fas) >= 2,
        "no tick held the max; stderr:\n{}",
        fas.stderr()
    );
    assert_eq!(
        sim.count_in_state("web", "started"),
        3,
        "nothing stopped while the window holds"
    );
    wait_until(&mut fas, "1 machine started", || {
        sim.count_in_state("web", "started") == 1
    })
    .await;
    // The high reading was at most about one tick before the drop, and it is held for 3 s.
    let held_for = dropped.elapsed();
    assert!(
        held_for >= std::time::Duration::from_millis(1500),
        "stopped after only {held_for:?}"
    );
    assert_eq!(sim.count_route("stop"), stops_before + 2);

    let lines = fas.lines_with_message("reconcile");
    let low: Vec<_> = lines.iter().filter(|l| queue_depth(l) == 5.0).collect();
    let is_held = |l: &serde_json::Value| l["stabilized"] == true;
    let held: Vec<&serde_json::Value> = low.iter().copied().filter(|l| is_held(l)).collect();
    assert!(held.len() >= 2, "{low:?}");
    for l in &held {
        // Evaluated 1, planned with the held 3: no action.
        assert_eq!(l["decision"], "no_scale", "{l}");
        let evaluated: serde_json::Value =
            serde_json::from_str(l["evaluated_targets"].as_str().unwrap_or("{}")).unwrap();
        assert_eq!(evaluated["started"]["max"], 1, "{l}");
        let planned: serde_json::Value =
            serde_json::from_str(l["targets"].as_str().unwrap_or("{}")).unwrap();
        assert_eq!(planned["started"]["max"], 3, "{l}");
        assert_eq!(planned["started"]["min"], 1, "{l}");
    }
    // The window ends once and does not flap: held ticks first, then released ones, the first of which stops.
    let first_released = low
        .iter()
        .position(|l| !is_held(l))
        .expect("a tick after the window");
    assert!(low[first_released..].iter().all(|l| !is_held(l)), "{low:?}");
    assert_eq!(
        low[first_released]["decision"], "stop",
        "{}",
        low[first_released]
    );
    fas.stop().await;
}

/// The same through a real Prometheus scraping an exporter (the collector's real wire format).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_scales_up_then_down() {
    let sim = sim().await;
    add_machines(&sim, "web", 5, &stopped());
    let exporter = Exporter::start().await;
    exporter.set("queue_depth{app=\"web\"} 32\nqueue_depth{app=\"other\"} 1000\n");
    let prom = PromServer::start(&[exporter.addr()]).await;
    prom.wait_for("queue_depth").await;
    let env = base_env(&sim, &prom.url(), "web", free_port());
    let mut fas = Fas::spawn(&["serve"], &env);

    wait_until(&mut fas, "4 machines started", || {
        sim.count_in_state("web", "started") == 4
    })
    .await;
    fas.wait_ticks(2).await;
    assert_eq!(sim.peak_started("web"), 4);

    exporter.set("queue_depth{app=\"web\"} 7\nqueue_depth{app=\"other\"} 1000\n");
    wait_until(&mut fas, "1 machine started", || {
        sim.count_in_state("web", "started") == 1
    })
    .await;
    fas.stop().await;
}

/// The same configuration from a YAML file: `${VAR}` expanded from the environment, `${APP_NAME}` kept for the
/// query, file keys winning over env vars and the file's collectors replacing the env collector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_config_file_with_env_expansion() {
    let sim = sim().await;
    add_machines(&sim, "web-yaml", 4, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(15.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fly-autoscaler.yml");
    std::fs::write(
        &path,
        "app-name: ${TEST_APP}\n\
         api-token: ${TEST_TOKEN}\n\
         interval: 200ms\n\
         started-machine-count: ceil(queue_depth / 10)\n\
         metric-collectors:\n\
         \x20 - type: prometheus\n\
         \x20   metric-name: queue_depth\n\
         \x20   address: $PROM_URL\n\
         \x20   token: FlyV1 ${PROM_TOKEN}\n\
         \x20   query: sum(queue_depth{app=\"${APP_NAME}\", env=\"${DEPLOY_ENV}\"})\n",
    )
    .unwrap();
    // Env values the file overrides: a wrong app, a wrong count, a collector on a dead port.
    let mut env = base_env(&sim, "http://127.0.0.1:1", "not-this-app", free_port());
    set(&mut env, "FAS_STARTED_MACHINE_COUNT", "queue_depth * 100");
    env.retain(|(k, _)| k != "FAS_API_TOKEN");
    set(&mut env, "TEST_APP", "web-yaml");
    set(&mut env, "TEST_TOKEN", sim.token());
    set(&mut env, "PROM_URL", &prom.url());
    set(&mut env, "DEPLOY_ENV", "production");
    set(&mut env, "PROM_TOKEN", "fm2_yaml_token");
    let mut fas = Fas::spawn(&["serve", "--config", path.to_str().unwrap()], &env);

    wait_until(&mut fas, "2 machines started", || {
        sim.count_in_state("web-yaml", "started") == 2
    })
    .await;
    fas.wait_ticks(2).await;
    assert_eq!(sim.count_in_state("web-yaml", "started"), 2);
    assert!(sim.machines("not-this-app").is_empty());
    let queries = prom.queries();
    assert!(!queries.is_empty());
    for q in &queries {
        assert_eq!(q, "sum(queue_depth{app=\"web-yaml\", env=\"production\"})");
    }
    assert!(
        prom.auth_headers()
            .iter()
            .all(|h| h.as_deref() == Some("FlyV1 fm2_yaml_token")),
        "a token starting with Fly is sent as is: {:?}",
        prom.auth_headers()
    );
    assert!(
        sim.request_log()
            .iter()
            .all(|r| r.app.as_deref().is_none_or(|a| a == "web-yaml")),
        "only the file's app is touched"
    );
    fas.stop().await;
}

/// A created count creates machines (regions round-robin, `stopped` when asked) and destroys down to the target,
/// stopped machines first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_then_destroy() {
    let sim = sim().await;
    let original = sim.add_machine("web", MachineSpec::new().region("ord"));
    let prom = FakeProm::start(PromAnswer::Value(40.0)).await;
    let port = free_port();
    let mut env = base_env(&sim, &prom.url(), "web", port);
    env.retain(|(k, _)| k != "FAS_STARTED_MACHINE_COUNT");
    set(
        &mut env,
        "FAS_CREATED_MACHINE_COUNT",
        "ceil(queue_depth / 10)",
    );
    set(&mut env, "FAS_REGIONS", "iad,lhr");
    set(&mut env, "FAS_INITIAL_MACHINE_STATE", "stopped");
    let mut fas = Fas::spawn(&["serve"], &env);

    wait_until(&mut fas, "4 machines exist", || live(&sim, "web") == 4).await;
    fas.wait_ticks(3).await;
    assert_eq!(live(&sim, "web"), 4, "no more than the target is created");
    let created: Vec<_> = sim
        .machines("web")
        .into_iter()
        .filter(|m| m.id != original)
        .collect();
    assert_eq!(created.len(), 3);
    for m in &created {
        assert_eq!(m.state, "stopped", "initial-machine-state stopped: {m:?}");
        assert_eq!(m.process_group.as_deref(), Some("app"), "config cloned");
    }
    let mut regions: Vec<_> = created.iter().map(|m| m.region.clone()).collect();
    regions.sort();
    assert_eq!(
        regions,
        ["iad", "iad", "lhr"],
        "round-robin over FAS_REGIONS"
    );
    let creates: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.route == "create")
        .collect();
    assert_eq!(creates.len(), 3);
    let order: Vec<String> = creates
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["skip_launch"], true, "{body}");
            body["region"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, ["iad", "iad", "lhr"], "{order:?}");
    assert_eq!(sim.machine("web", &original).unwrap().state, "started");

    let mut created_ids: Vec<_> = created.iter().map(|m| m.id.clone()).collect();
    created_ids.sort();

    // Down to 2: two of the three stopped machines go (lowest ids first); the started original stays.
    prom.set(PromAnswer::Value(20.0));
    wait_until(&mut fas, "2 machines left", || live(&sim, "web") == 2).await;
    fas.wait_ticks(3).await;
    assert_eq!(live(&sim, "web"), 2);
    assert_eq!(sim.machine("web", &original).unwrap().state, "started");
    assert_eq!(
        sim.count_route("destroy"),
        2,
        "destroys: {:?}",
        mutations(&sim)
    );
    assert_eq!(
        sim.count_for_machine(&original),
        0,
        "the started machine is not touched"
    );

    // Down to 0 asks for 0, but the last machine is never destroyed.
    prom.set(PromAnswer::Value(0.0));
    wait_until(&mut fas, "1 machine left", || live(&sim, "web") == 1).await;
    fas.wait_ticks(3).await;
    assert_eq!(live(&sim, "web"), 1, "created counts are never below 1");

    // The new per-app counters of telemetry.rs carry `app` and `status`.
    let (_, text) = http_get(port, "/metrics").expect("GET /metrics");
    let s = parse_metrics(&text);
    assert_eq!(
        sample(&s, "fas_reconcile_count", &[("status", "create")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&s, "fas_reconcile_count", &[("status", "destroy")]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &s,
            "fas_machine_create_count",
            &[("app", "web"), ("status", "ok")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &s,
            "fas_machine_destroy_count",
            &[("app", "web"), ("status", "ok")]
        ),
        Some(3.0),
        "{text}"
    );
    fas.stop().await;
}

/// Only machines of FAS_PROCESS_GROUP with a reachable host are counted and touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_group_and_unreachable_hosts() {
    let sim = sim().await;
    let worker = MachineSpec::new().process_group(Some("worker"));
    let workers = add_machines(&sim, "web", 3, &worker.clone().state("stopped"));
    let unreachable = sim.add_machine("web", worker.clone().state("started"));
    assert!(sim.set_host_status("web", &unreachable, "unreachable"));
    let mut others = add_machines(&sim, "web", 2, &stopped());
    others.push(sim.add_machine("web", MachineSpec::new()));
    others.push(sim.add_machine(
        "web",
        MachineSpec::new().state("stopped").process_group(None),
    ));
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let mut env = base_env(&sim, &prom.url(), "web", free_port());
    set(&mut env, "FAS_PROCESS_GROUP", "worker");
    let mut fas = Fas::spawn(&["serve"], &env);

    let started_workers = || {
        workers
            .iter()
            .filter(|id| sim.machine("web", id).unwrap().state == "started")
            .count()
    };
    // The unreachable started worker does not count: two reachable workers are started.
    wait_until(&mut fas, "2 reachable workers started", || {
        started_workers() == 2
    })
    .await;
    fas.wait_ticks(3).await;
    assert_eq!(started_workers(), 2);

    prom.set(PromAnswer::Value(0.0));
    wait_until(&mut fas, "workers stopped", || started_workers() == 0).await;
    fas.wait_ticks(2).await;
    for id in others.iter().chain([&unreachable]) {
        assert_eq!(
            sim.count_for_machine(id),
            0,
            "machine {id} was touched: {:?}",
            mutations(&sim)
        );
    }
    assert_eq!(sim.machine("web", &unreachable).unwrap().state, "started");
    assert_eq!(
        sim.count_in_state("web", "started"),
        2,
        "the unreachable worker and the `app` machine"
    );
    let reconcile = fas.lines_with_message("reconcile");
    let last = reconcile.last().unwrap();
    assert_eq!(
        last["started"], 0,
        "the unreachable machine is not counted: {last}"
    );
    fas.stop().await;
}

/// While the current release is `running` nothing is listed or changed and a warning is logged; a `null`
/// release is not a deploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_in_progress_skips() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &stopped());
    sim.set_release_status("web", Some("running"));
    let prom = FakeProm::start(PromAnswer::Value(30.0)).await;
    let env = base_env(&sim, &prom.url(), "web", free_port());
    let mut fas = Fas::spawn(&["serve"], &env);

    let skipped = fas.wait_for_lines("skipped", 3).await;
    for l in &skipped {
        assert_eq!(l["level"], "WARN", "{l}");
        assert!(
            l["error"].as_str().unwrap().contains("deploy in progress"),
            "{l}"
        );
    }
    assert!(mutations(&sim).is_empty(), "{:?}", mutations(&sim));
    assert_eq!(sim.count_route("list"), 0, "machines are not even listed");
    assert!(fas.lines_with_message("reconcile").is_empty());
    assert_eq!(sim.count_in_state("web", "started"), 0);

    sim.set_release_status("web", None);
    wait_until(&mut fas, "3 machines started", || {
        sim.count_in_state("web", "started") == 3
    })
    .await;

    // A completed release is not a deploy either.
    sim.set_release_status("web", Some("complete"));
    prom.set(PromAnswer::Value(10.0));
    wait_until(&mut fas, "1 machine started", || {
        sim.count_in_state("web", "started") == 1
    })
    .await;
    fas.stop().await;
}

/// `FAS_APP_NAME=my-app-*` with `FAS_ORG`: both matching apps are scaled, the other one is never touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_apps() {
    let sim = sim().await;
    for app in ["my-app-1", "my-app-2", "other-app"] {
        sim.add_app("acme", app);
        add_machines(&sim, app, 3, &stopped());
    }
    sim.add_app("elsewhere", "my-app-3");
    add_machines(&sim, "my-app-3", 3, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let mut env = base_env(&sim, &prom.url(), "my-app-*", free_port());
    set(&mut env, "FAS_ORG", "acme");
    set(&mut env, "FAS_CONCURRENCY", "2");
    set(&mut env, "FAS_APP_LIST_REFRESH_INTERVAL", "300ms");
    let mut fas = Fas::spawn(&["serve"], &env);

    wait_until(&mut fas, "2 started in each matching app", || {
        sim.count_in_state("my-app-1", "started") == 2
            && sim.count_in_state("my-app-2", "started") == 2
    })
    .await;
    fas.wait_ticks(6).await;
    for untouched in ["other-app", "my-app-3"] {
        assert_eq!(sim.count_in_state(untouched, "started"), 0);
        let reqs: Vec<_> = sim
            .request_log()
            .into_iter()
            .filter(|r| r.app.as_deref() == Some(untouched))
            .map(|r| r.path)
            .collect();
        assert!(reqs.is_empty(), "{untouched} was called: {reqs:?}");
    }
    let queries = prom.queries();
    for app in ["my-app-1", "my-app-2"] {
        let q = format!("sum(queue_depth{{app=\"{app}\"}})");
        assert!(queries.contains(&q), "{q} not in {queries:?}");
    }
    assert!(
        queries
            .iter()
            .all(|q| !q.contains("other-app") && !q.contains("my-app-3"))
    );

    // A new matching app is picked up when the app list is refreshed.
    sim.add_app("acme", "my-app-new");
    add_machines(&sim, "my-app-new", 3, &stopped());
    wait_until(&mut fas, "the new app is scaled", || {
        sim.count_in_state("my-app-new", "started") == 2
    })
    .await;
    fas.stop().await;
}

/// Prometheus refusing connections, then answering 500: the loop keeps running, logs an error naming the metric
/// and touches nothing; it scales again once Prometheus answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_down_then_recovers() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &stopped());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let env = base_env(&sim, &url, "web", free_port());
    let mut fas = Fas::spawn(&["serve"], &env);

    let failed = "reconciliation failed; nothing was changed by this step";
    let errors = fas.wait_for_lines(failed, 3).await;
    for l in &errors {
        assert_eq!(l["level"], "ERROR", "{l}");
        assert!(
            l["error"].as_str().unwrap().contains("queue_depth"),
            "names the metric: {l}"
        );
    }
    assert!(mutations(&sim).is_empty());

    let prom = FakeProm::start_on(([127, 0, 0, 1], port).into(), PromAnswer::Status(500)).await;
    wait_until(&mut fas, "prometheus queried", || prom.queries().len() >= 3).await;
    let n = fas.lines_with_message(failed).len();
    let errors = fas.wait_for_lines(failed, n + 2).await;
    let last = errors.last().unwrap();
    assert!(
        last["error"].as_str().unwrap().contains("queue_depth"),
        "{last}"
    );
    assert!(mutations(&sim).is_empty(), "{:?}", mutations(&sim));
    assert_eq!(sim.count_in_state("web", "started"), 0);

    prom.set(PromAnswer::Value(30.0));
    wait_until(&mut fas, "3 machines started", || {
        sim.count_in_state("web", "started") == 3
    })
    .await;
    fas.stop().await;
}

/// A machine whose start fails is logged and counted as failed, and the next candidate is tried in the same
/// round, so the target is still reached without overshooting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_start_tries_the_next_machine() {
    let sim = sim().await;
    add_machines(&sim, "web", 4, &stopped());
    sim.push_fault(ScriptedFault {
        matches: FaultMatch {
            route: Some("start".into()),
            method: None,
        },
        fault: FaultKind::Status { status: 500 },
    });
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let port = free_port();
    let env = base_env(&sim, &prom.url(), "web", port);
    let mut fas = Fas::spawn(&["serve"], &env);

    wait_until(&mut fas, "2 started", || {
        sim.count_in_state("web", "started") == 2
    })
    .await;
    fas.wait_ticks(2).await;
    assert_eq!(sim.peak_started("web"), 2);
    // Every start request of the first round came before the second list.
    let log = sim.request_log();
    let second_list = log
        .iter()
        .enumerate()
        .filter(|(_, r)| r.route == "list")
        .nth(1)
        .map(|(i, _)| i)
        .unwrap();
    let first_round: Vec<_> = log[..second_list]
        .iter()
        .filter(|r| r.route == "start")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        first_round.iter().filter(|s| **s == 200).count(),
        2,
        "two starts succeeded in the first round: {first_round:?}"
    );
    assert!(first_round.contains(&500), "{first_round:?}");
    let failed = fas.lines_with_message("action failed");
    assert_eq!(failed.len(), 1, "{}", fas.stderr());
    assert_eq!(failed[0]["level"], "ERROR");

    let (_, text) = http_get(port, "/metrics").expect("GET /metrics");
    let s = parse_metrics(&text);
    assert_eq!(
        sample(&s, "fas_machine_start_count", &[("status", "ok")]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&s, "fas_machine_start_count", &[("status", "failed")]),
        Some(1.0),
        "{text}"
    );
    fas.stop().await;
}

/// `FAS_TIMEOUT` limits one app's reconciliation: a machine list that hangs past it fails the tick with a
/// timeout (nothing planned from it), and the next tick scales normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_bounds_one_reconciliation() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &stopped());
    sim.push_fault(ScriptedFault {
        matches: FaultMatch {
            route: Some("list".into()),
            method: None,
        },
        fault: FaultKind::Delay { ms: 4_000 },
    });
    let prom = FakeProm::start(PromAnswer::Value(30.0)).await;
    let mut env = base_env(&sim, &prom.url(), "web", free_port());
    set(&mut env, "FAS_TIMEOUT", "1s");
    let mut fas = Fas::spawn(&["serve"], &env);

    wait_until(&mut fas, "3 started", || {
        sim.count_in_state("web", "started") == 3
    })
    .await;
    let first = fas
        .json_lines()
        .into_iter()
        .find(|l| l["message"] == "reconcile" || l["level"] == "ERROR" || l["level"] == "WARN")
        .unwrap();
    assert_eq!(
        first["level"], "ERROR",
        "the first tick must time out: {first}"
    );
    assert!(
        first["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{first}"
    );
    assert!(
        fas.lines_with_message("action skipped (deadline or shutdown)")
            .is_empty(),
        "nothing is planned from a list that came after the timeout: {}",
        fas.stderr()
    );
    fas.stop().await;
}

/// SIGTERM while machine calls are in flight: they finish, the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_tick_lets_calls_finish() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(30.0)).await;
    let env = base_env(&sim, &prom.url(), "web", free_port());
    sim.configure(|c| c.faults.latency_ms = 700);
    let mut fas = Fas::spawn(&["serve"], &env);
    // The first tick's list takes 700 ms; then the starts are sent (each also 700 ms).
    wait_until(&mut fas, "a start request arrives", || {
        sim.count_route("start") > 0
    })
    .await;
    fas.signal("TERM");
    let status = fas.wait_exit(std::time::Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", fas.stderr());
    assert!(!fas.lines_with_message("stopped").is_empty());
    let starts = sim.count_route("start");
    assert_eq!(
        sim.count_in_state("web", "started"),
        starts,
        "every start in flight completed"
    );
    assert!(
        fas.lines_with_message("action failed").is_empty(),
        "{}",
        fas.stderr()
    );
}

/// Machines leased by a deploy (flyctl leases every machine) while the release already reads
/// `complete`: every call is refused with 409, the autoscaler reports the failures, changes
/// nothing, keeps running, and scales once the leases are released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_machines_are_not_forced() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &stopped());
    sim.set_release_status("web", Some("complete"));
    let leases = sim.lease_all("web");
    assert_eq!(leases.len(), 3);
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let env = base_env(&sim, &prom.url(), "web", free_port());
    let mut fas = Fas::spawn(&["serve"], &env);

    let failed = fas.wait_for_lines("action failed", 4).await;
    for l in &failed {
        assert_eq!(l["level"], "ERROR", "{l}");
        assert!(
            l["error"].as_str().unwrap_or_default().contains("conflict"),
            "a lease conflict is reported as such: {l}"
        );
    }
    assert_eq!(sim.count_in_state("web", "stopped"), 3, "nothing moved");
    assert_eq!(sim.count_in_state("web", "started"), 0);
    fas.assert_running();

    sim.release_all("web");
    wait_until(&mut fas, "2 machines started after the deploy", || {
        sim.count_in_state("web", "started") == 2
    })
    .await;
    fas.stop().await;
}

/// Go takes one kind of step per tick (a create preempts the starts). A tick that created machines
/// is followed by a follow-up tick two seconds later, not a whole interval later, so the starts
/// that the same targets need come at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_is_followed_up_by_the_starts_without_waiting_an_interval() {
    let sim = sim().await;
    sim.add_machine("web", MachineSpec::new().region("iad"));
    let prom = FakeProm::start(PromAnswer::Value(30.0)).await;
    let mut env = base_env(&sim, &prom.url(), "web", free_port());
    set(&mut env, "FAS_INTERVAL", "60s");
    set(&mut env, "FAS_INITIAL_MACHINE_STATE", "stopped");
    set(
        &mut env,
        "FAS_CREATED_MACHINE_COUNT",
        "ceil(queue_depth / 10)",
    );
    let mut fas = Fas::spawn(&["serve"], &env);

    // The wait (20 s at most) is shorter than the 60 s interval: only a follow-up tick can pass.
    wait_until(&mut fas, "3 machines started", || {
        sim.count_in_state("web", "started") == 3
    })
    .await;
    let lines = fas.lines_with_message("reconcile");
    let decisions: Vec<(&str, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["decision"].as_str().unwrap_or_default(),
                l["span"]["follow_up"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        &decisions[..2],
        [("create", false), ("start", true)],
        "{decisions:?}"
    );
    assert_eq!(sim.count_route("create"), 2);
    fas.stop().await;
}

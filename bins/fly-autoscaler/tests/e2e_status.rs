//! The decision record and health end to end: the built `fly-autoscaler serve` against the Fly
//! API simulator and a fake Prometheus; `/status`, `/status/{app}`, `/readyz`, `/healthz`, and
//! `serve --dry-run` (shadow mode).

mod support;

use fas_flysim::MachineSpec;
use fas_testkit::free_port;
use serde_json::Value;
use support::{
    FakeProm, Fas, PromAnswer, add_machines, base_env, http_get, mutations, set, sim, wait_until,
};

const CANARY: &str = "status-canary-5b1e";

/// The status and JSON body of a GET; `(0, null)` while the listener is not up.
fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (status, body) = http_get(port, path).unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_records_every_decision_and_health_follows_the_loop() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let port = free_port();
    let mut env = base_env(&sim, &prom.url(), "web", port);
    set(
        &mut env,
        "FAS_PROMETHEUS_TOKEN",
        &format!("Bearer-{CANARY}-prom"),
    );
    set(&mut env, "FAS_TRIGGER_TOKEN", &format!("{CANARY}-trigger"));
    let mut fas = Fas::spawn(&["serve"], &env);
    wait_until(&mut fas, "2 machines started", || {
        sim.count_in_state("web", "started") == 2
    })
    .await;
    wait_until(&mut fas, "ready", || {
        http_get(port, "/readyz").is_some_and(|(s, _)| s == 200)
    })
    .await;
    let (status, _) = http_get(port, "/healthz").unwrap();
    assert_eq!(status, 200);

    let (status, all) = get_json(port, "/status");
    assert_eq!(status, 200);
    let app = &all["apps"][0];
    assert_eq!(app["app"], "web");
    let history = app["history"].as_array().unwrap();
    let scaled = history
        .iter()
        .find(|r| r["outcome"] == "scaled")
        .unwrap_or_else(|| panic!("a scaled tick in {history:?}"));
    assert_eq!(scaled["decision"], "start");
    assert_eq!(scaled["metrics"]["queue_depth"]["value"], 20.0);
    assert_eq!(scaled["evaluated"]["started"]["min"], 2);
    assert_eq!(scaled["trigger"], "new");
    let actions = scaled["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2);
    assert!(
        actions
            .iter()
            .all(|a| a["outcome"] == "ok" && a["kind"] == "start"),
        "{actions:?}"
    );
    assert!(
        actions[0]["reason"]
            .as_str()
            .unwrap()
            .contains("started 0 < min 2")
    );
    assert!(
        app["next_tick"]["at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(!app["chart"].as_array().unwrap().is_empty());

    // A failing collector: the tick is skipped and the record says why, per metric.
    prom.set(PromAnswer::Status(500));
    wait_until(&mut fas, "a skipped tick", || {
        get_json(port, "/status/web").1["last"]["outcome"] == "skipped"
    })
    .await;
    let (_, one) = get_json(port, "/status/web");
    let last = &one["last"];
    assert!(
        last["reason"].as_str().unwrap().contains("queue_depth"),
        "{last}"
    );
    assert!(
        last["metrics"]["queue_depth"]["error"].as_str().is_some(),
        "{last}"
    );
    assert_eq!(http_get(port, "/status/ghost").unwrap().0, 404);

    let (_, raw) = http_get(port, "/status").unwrap();
    assert!(!raw.contains(CANARY), "no secret in /status");
    assert!(!fas.stderr().contains(CANARY), "no secret in the logs");
    fas.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_and_records_but_never_mutates() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(30.0)).await;
    let port = free_port();
    let env = base_env(&sim, &prom.url(), "web", port);
    let mut fas = Fas::spawn(&["serve", "--dry-run"], &env);
    wait_until(&mut fas, "a would-scale record", || {
        get_json(port, "/status/web").1["last"]["outcome"] == "would_scale"
    })
    .await;
    fas.wait_ticks(3).await;
    assert!(mutations(&sim).is_empty(), "{:?}", mutations(&sim));
    let (_, one) = get_json(port, "/status/web");
    let last = &one["last"];
    assert_eq!(last["dry_run"], true);
    let actions = last["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 3);
    assert!(actions.iter().all(|a| a["outcome"] == "would"));
    let (_, metrics) = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("fas_dry_run_actions_total{app=\"web\",kind=\"start\"}"),
        "{metrics}"
    );
    fas.stop().await;
}

//! `eval` with context variables: the machine counts come from one list call when an API token
//! is present; without one, `eval` names the variables it cannot provide. The built binary as a
//! child process against the in-process Fly API simulator and a fake Prometheus.

mod support;

use fas_flysim::MachineSpec;
use fas_testkit::free_port;
use serde_json::{Value, json};
use support::{FakeProm, PromAnswer, add_machines, base_env, run, set, sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_reads_count_variables_from_one_list_call() {
    let sim = sim().await;
    add_machines(&sim, "web", 2, &MachineSpec::new().state("started"));
    add_machines(&sim, "web", 3, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(45.0)).await;
    let mut env = base_env(&sim, &prom.url(), "web", free_port());
    set(
        &mut env,
        "FAS_STARTED_MACHINE_COUNT",
        "if queue_depth > 40 { started + stopped - 1 } else { started }",
    );
    let with_token = env.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&["eval"], &with_token))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let got: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        got,
        json!({"created": {"min": null, "max": null}, "started": {"min": 4, "max": 4}}),
        "2 started + 3 stopped - 1"
    );
    let log = sim.request_log();
    assert_eq!(log.len(), 1, "one list call: {log:?}");
    assert_eq!(log[0].method, "GET");
    assert!(log[0].path.ends_with("/apps/web/machines"), "{log:?}");

    // Without a token: exit 1, naming the variables that could not be provided.
    env.retain(|(k, _)| k != "FAS_API_TOKEN");
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&["eval"], &env))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.contains(
            "cannot evaluate the machine-count variables `started`, `stopped`: they come from \
             the machine list, which needs a Fly API token (set api-token or FAS_API_TOKEN)"
        ),
        "{err}"
    );
    assert_eq!(sim.request_log().len(), 1, "no call without a token");
}

/// Calendar variables need no list: `eval` stays without any Machines API call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_with_calendar_variables_makes_no_call() {
    let sim = sim().await;
    let prom = FakeProm::start(PromAnswer::Value(0.0)).await;
    let mut env = base_env(&sim, &prom.url(), "web", free_port());
    env.retain(|(k, _)| k != "FAS_API_TOKEN");
    set(&mut env, "FAS_TIMEZONE", "Europe/Paris");
    set(
        &mut env,
        "FAS_STARTED_MACHINE_COUNT",
        "max(ceil(queue_depth / 10), if hour >= 0 && hour < 24 && weekday < 7 && day_of_month >= 1 { 2 } else { 0 })",
    );
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&["eval"], &env))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let got: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(got["started"], json!({"min": 2, "max": 2}));
    assert!(sim.request_log().is_empty(), "{:?}", sim.request_log());
}

/// `plan` reads count variables from its own list (listed before evaluating) and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_reads_count_variables_from_its_list() {
    let sim = sim().await;
    add_machines(&sim, "web", 1, &MachineSpec::new().state("started"));
    add_machines(&sim, "web", 2, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(0.9)).await;
    let mut env = base_env(&sim, &prom.url(), "web", free_port());
    set(
        &mut env,
        "FAS_STARTED_MACHINE_COUNT",
        "if queue_depth > 0.8 { started + 1 } else { started }",
    );
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&["plan", "--json"], &env))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        plan["targets"]["started"],
        json!({"min": 2, "max": 2}),
        "{out}"
    );
    assert_eq!(plan["kind"], "start", "{out}");
    assert_eq!(plan["actions"].as_array().map(Vec::len), Some(1), "{out}");
    assert!(support::mutations(&sim).is_empty(), "plan changes nothing");
}

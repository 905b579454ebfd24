//! The tick and the loop in-process over the real Fly API client and the simulator (loopback
//! HTTP, real time): read-after-write lag and boot failures as Fly produces them.

mod support;

use std::sync::Arc;
use std::time::Duration;

use fas_flysim::{MachineSpec, SimConfig, Simulator};
use fly_autoscaler::{cli, schedule, tick::Reconciler};
use support::fake_fly::SetCollector;
use tokio_util::sync::CancellationToken;

/// A reconciler over the real client to `sim` (the token and URLs of the simulator).
fn reconciler(sim: &Simulator, load: &SetCollector, settings: &[(&str, &str)]) -> Arc<Reconciler> {
    let base = sim.base_url();
    let mut all = vec![
        ("FAS_API_TOKEN", sim.token()),
        ("FLY_FLAPS_BASE_URL", base.as_str()),
        ("FLY_API_BASE_URL", base.as_str()),
    ];
    all.extend_from_slice(settings);
    let client = cli::build_client(&support::fake_fly::test_config(&all)).expect("client");
    support::fake_fly::reconciler(Arc::new(client), load, &all)
}

/// With the simulator's list lag longer than the follow-up delay and than the interval, the
/// ticks that run before the new machines are listed create nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_lag_longer_than_the_follow_up_creates_each_machine_once() {
    let mut cfg = SimConfig::instant();
    cfg.rate_limits.enabled = false;
    cfg.faults.list_lag_ms = 3_000;
    let sim = Simulator::start(cfg).await.expect("simulator");
    sim.add_machine("app", MachineSpec::new().state("started"));
    let load = SetCollector::new("load", 4.0);
    let r = reconciler(
        &sim,
        &load,
        &[
            ("FAS_CREATED_MACHINE_COUNT", "load"),
            ("FAS_INTERVAL", "500ms"),
        ],
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(schedule::run(r, shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(sim.count_route("create"), 3, "exactly the missing machines");
    assert!(
        sim.count_route("list") >= 6,
        "several ticks ran inside the lag"
    );
    assert_eq!(support::live(&sim, "app"), 4);
}

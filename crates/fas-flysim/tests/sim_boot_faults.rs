//! Boot failures, machines whose start always fails, the injected-fault counters, and what a
//! delayed request does when the client gave up before the answer.

mod common;

use std::time::Duration;

use common::{Http, create_body};
use fas_flysim::{
    FaultKind, FaultMatch, MachineSpec, RateLimits, ScriptedFault, SimConfig, Simulator,
};
use tokio::time::advance;

async fn sim_with(cfg: SimConfig) -> Simulator {
    let sim = Simulator::start(cfg).await.unwrap();
    sim.add_app("acme", "web");
    sim
}

fn no_limits() -> SimConfig {
    SimConfig {
        rate_limits: RateLimits {
            enabled: false,
            ..Default::default()
        },
        ..SimConfig::instant()
    }
}

#[tokio::test(start_paused = true)]
async fn boot_failure_probability_one_ends_every_launched_create_failed() {
    let mut cfg = no_limits();
    cfg.timing.created = fas_flysim::DurRange::ms(100, 100);
    cfg.timing.starting = fas_flysim::DurRange::ms(500, 500);
    cfg.faults.boot_failure_probability = 1.0;
    let sim = sim_with(cfg).await;
    let http = Http::new(&sim);
    let r = http
        .post("/v1/apps/web/machines", Some(&create_body("nginx", None)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(sim.machine("web", &id).unwrap().state, "created");
    advance(Duration::from_millis(100)).await;
    assert_eq!(sim.machine("web", &id).unwrap().state, "starting");
    advance(Duration::from_millis(500)).await;
    assert_eq!(sim.machine("web", &id).unwrap().state, "failed");
    // skip_launch creates never boot, so they cannot fail at boot.
    let mut body = create_body("nginx", None);
    body["skip_launch"] = true.into();
    let r = http.post("/v1/apps/web/machines", Some(&body)).await;
    let stopped = r.json["id"].as_str().unwrap().to_owned();
    advance(Duration::from_millis(700)).await;
    assert_eq!(sim.machine("web", &stopped).unwrap().state, "stopped");
    assert_eq!(sim.injected_faults().get("boot_failure"), Some(&1));
}

#[tokio::test]
async fn boot_failure_probability_zero_boots_every_create() {
    let sim = sim_with(no_limits()).await;
    let http = Http::new(&sim);
    for _ in 0..20 {
        let r = http
            .post("/v1/apps/web/machines", Some(&create_body("nginx", None)))
            .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(sim.count_in_state("web", "started"), 20);
    assert!(sim.injected_faults().is_empty());
}

#[tokio::test]
async fn a_failing_start_answers_500_every_time_and_changes_nothing() {
    let sim = sim_with(no_limits()).await;
    let bad = sim.add_machine("web", MachineSpec::new().state("stopped"));
    let good = sim.add_machine("web", MachineSpec::new().state("stopped"));
    sim.configure(|c| {
        c.faults.failing_starts.insert(bad.clone());
    });
    let http = Http::new(&sim);
    for _ in 0..3 {
        let r = http
            .post(&format!("/v1/apps/web/machines/{bad}/start"), None)
            .await;
        assert_eq!(r.status, 500, "{}", r.text);
        assert!(r.error().contains("failed to start"), "{}", r.text);
    }
    assert_eq!(sim.machine("web", &bad).unwrap().state, "stopped");
    let r = http
        .post(&format!("/v1/apps/web/machines/{good}/start"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.machine("web", &good).unwrap().state, "started");
    // Other calls on the failing machine still work.
    let r = http
        .delete(&format!("/v1/apps/web/machines/{bad}?force=true"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.injected_faults().get("failing_start"), Some(&3));
}

#[tokio::test]
async fn injected_faults_are_counted_by_kind() {
    let sim = sim_with(no_limits()).await;
    for fault in [
        FaultKind::Status { status: 503 },
        FaultKind::Status { status: 503 },
        FaultKind::Delay { ms: 1 },
    ] {
        sim.push_fault(ScriptedFault {
            matches: FaultMatch {
                route: Some("list".into()),
                method: None,
            },
            fault,
        });
    }
    let http = Http::new(&sim);
    assert_eq!(http.get("/v1/apps/web/machines").await.status, 503);
    assert_eq!(http.get("/v1/apps/web/machines").await.status, 503);
    assert_eq!(http.get("/v1/apps/web/machines").await.status, 200);
    let counted = sim.injected_faults();
    assert_eq!(counted.get("status_503"), Some(&2), "{counted:?}");
    assert_eq!(counted.get("delay"), Some(&1), "{counted:?}");
    assert_eq!(counted.get("delay_completed"), Some(&1), "{counted:?}");
}

/// A client that gives up on a slow create (its timeout is shorter than the injected delay):
/// the simulator still creates the machine, as Fly does (the platform does not cancel work when
/// the caller goes away). This is the ambiguous case the autoscaler must survive.
#[tokio::test]
async fn a_delayed_create_takes_effect_after_the_client_gave_up() {
    let sim = sim_with(no_limits()).await;
    sim.push_fault(ScriptedFault {
        matches: FaultMatch {
            route: Some("create".into()),
            method: None,
        },
        fault: FaultKind::Delay { ms: 400 },
    });
    let http = Http::new(&sim);
    let body = create_body("nginx", None);
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        http.post("/v1/apps/web/machines", Some(&body)),
    )
    .await;
    assert!(gave_up.is_err(), "the client timed out");
    // Poll (bounded) for the machine the abandoned request creates.
    let mut created = 0;
    for _ in 0..100 {
        created = sim.machines("web").len();
        if created == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(created, 1, "the abandoned create took effect");
    assert_eq!(sim.injected_faults().get("delay_completed"), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn purge_destroyed_forgets_only_machines_get_no_longer_shows() {
    let mut cfg = no_limits();
    cfg.timing.destroyed_visible_ms = 1_000;
    let sim = sim_with(cfg).await;
    let gone = sim.add_machine("web", MachineSpec::new().state("stopped"));
    let kept = sim.add_machine("web", MachineSpec::new().state("stopped"));
    let http = Http::new(&sim);
    assert_eq!(
        http.delete(&format!("/v1/apps/web/machines/{gone}"))
            .await
            .status,
        200
    );
    assert_eq!(sim.purge_destroyed(), 0, "still visible to GET");
    advance(Duration::from_millis(1_000)).await;
    assert_eq!(sim.purge_destroyed(), 1);
    let ids: Vec<String> = sim.machines("web").into_iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![kept]);
}

#[tokio::test]
async fn drain_request_log_returns_each_request_once() {
    let sim = sim_with(no_limits()).await;
    let http = Http::new(&sim);
    http.get("/v1/apps/web/machines").await;
    http.get("/v1/apps/web/machines").await;
    assert_eq!(sim.drain_request_log().len(), 2);
    http.get("/v1/apps/web/machines").await;
    let rest = sim.drain_request_log();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].route, "list");
    assert!(sim.request_log().is_empty());
}

#[tokio::test]
async fn a_skip_launch_clone_drawn_to_fail_fails_at_its_first_start_only() {
    let mut cfg = no_limits();
    cfg.faults.boot_failure_probability = 1.0;
    let sim = sim_with(cfg).await;
    let http = Http::new(&sim);
    let mut body = create_body("nginx", None);
    body["skip_launch"] = true.into();
    let r = http.post("/v1/apps/web/machines", Some(&body)).await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(sim.machine("web", &id).unwrap().state, "stopped");
    let start = format!("/v1/apps/web/machines/{id}/start");
    assert_eq!(http.post(&start, None).await.status, 200);
    assert_eq!(sim.machine("web", &id).unwrap().state, "failed");
    // A later start boots it: the failure was the clone's first boot.
    assert_eq!(http.post(&start, None).await.status, 200);
    assert_eq!(sim.machine("web", &id).unwrap().state, "started");
    assert_eq!(sim.injected_faults().get("boot_failure"), Some(&1));
}

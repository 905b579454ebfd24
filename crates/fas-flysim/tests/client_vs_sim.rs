//! The typed client (fas-flyapi) against the simulator, endpoint by endpoint.

use std::time::Duration;

use fas_flyapi::{
    Client, ClientConfig, CreateMachineRequest, DestroyOptions, Error, HostStatus, LeaseRequest,
    ListMachinesOptions, MachineConfig, MachineState, StopRequest, WaitOptions,
};
use fas_flysim::{MachineSpec, RateLimits, SimConfig, Simulator};
use serde_json::json;

fn client_with_token(sim: &Simulator, token: &str) -> Client {
    let mut cfg = ClientConfig::new(token);
    cfg.machines_base_url = sim.base_url();
    cfg.graphql_base_url = sim.base_url();
    Client::new(cfg).unwrap()
}

fn client(sim: &Simulator) -> Client {
    client_with_token(sim, sim.token())
}

async fn sim() -> Simulator {
    let sim = Simulator::start(SimConfig::instant()).await.unwrap();
    sim.add_app("acme", "web");
    sim
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn ids(ms: &[fas_flyapi::Machine]) -> Vec<String> {
    sorted(ms.iter().map(|m| m.id.clone()).collect())
}

#[tokio::test]
async fn list_with_filters() {
    let sim = sim().await;
    let a = sim.add_machine("web", MachineSpec::new().region("iad"));
    let b = sim.add_machine("web", MachineSpec::new().state("stopped"));
    let c = sim.add_machine(
        "web",
        MachineSpec::new()
            .process_group(Some("worker"))
            .state("suspended"),
    );
    let d = sim.add_machine("web", MachineSpec::new().state("destroyed"));
    let cl = client(&sim);
    let all = cl
        .list_machines("web", &ListMachinesOptions::default())
        .await
        .unwrap();
    assert_eq!(ids(&all), sorted(vec![a.clone(), b.clone(), c.clone()]));
    let opts = ListMachinesOptions {
        include_deleted: true,
        ..Default::default()
    };
    assert_eq!(cl.list_machines("web", &opts).await.unwrap().len(), 4);
    let opts = ListMachinesOptions {
        region: Some("iad".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&cl.list_machines("web", &opts).await.unwrap()),
        vec![a.clone()]
    );
    let opts = ListMachinesOptions {
        states: vec![MachineState::Stopped, MachineState::Suspended],
        ..Default::default()
    };
    assert_eq!(
        ids(&cl.list_machines("web", &opts).await.unwrap()),
        sorted(vec![b.clone(), c.clone()])
    );
    let opts = ListMachinesOptions {
        metadata: vec![("fly_process_group".into(), "worker".into())],
        ..Default::default()
    };
    assert_eq!(
        ids(&cl.list_machines("web", &opts).await.unwrap()),
        vec![c.clone()]
    );
    sim.lease_all("web");
    let opts = ListMachinesOptions {
        include_leases: true,
        region: Some("iad".into()),
        ..Default::default()
    };
    let leased = cl.list_machines("web", &opts).await.unwrap();
    assert_eq!(leased[0].lease.as_ref().unwrap().owner, "deploy@flysim");
    let _ = d;
    // Six lists in a row are paced by the client's list budget (0.9/s, burst 3: 10 % under the server's
    // 1/s so that the TCP connect delaying the first arrival cannot make a paced request land early).
    assert_eq!(sim.rate_limited_count(), 0);
}

#[tokio::test]
async fn get_decodes_every_field_the_autoscaler_needs() {
    let sim = sim().await;
    let id = sim.add_machine(
        "web",
        MachineSpec::new().image("registry.fly.io/web:deployment-9@sha256:abc"),
    );
    let m = client(&sim).get_machine("web", &id).await.unwrap();
    assert_eq!(m.id, id);
    assert_eq!(m.state, MachineState::Started);
    assert_eq!(m.host_status, HostStatus::Ok);
    assert_eq!(m.process_group(), Some("app"));
    assert_eq!(
        m.full_image_ref().as_deref(),
        Some("registry.fly.io/web:deployment-9@sha256:abc")
    );
    assert_eq!(m.instance_id.len(), 26);
    assert!(!m.events.is_empty());
    assert_eq!(
        m.config
            .as_ref()
            .map(|c| serde_json::Value::Object(c.as_json().clone())),
        Some(sim.machine("web", &id).unwrap().config)
    );

    sim.set_host_status("web", &id, "unreachable");
    let m = client(&sim).get_machine("web", &id).await.unwrap();
    assert_eq!(m.host_status, HostStatus::Unreachable);
    assert!(m.config.is_none());
    assert_eq!(
        m.process_group(),
        Some("app"),
        "read from incomplete_config"
    );
}

#[tokio::test]
async fn create_with_skip_launch_and_lease_ttl_keeps_config_exactly() {
    let sim = sim().await;
    let cl = client(&sim);
    let mut config = MachineConfig::with_image("registry.fly.io/web:v1@sha256:1");
    config.set_metadata("fly_process_group", "app");
    config
        .as_json_mut()
        .insert("future_field".into(), json!({"x": [1, 2]}));
    let req = CreateMachineRequest {
        config: config.clone(),
        region: Some("iad".into()),
        skip_launch: true,
        lease_ttl: Some(30),
        ..Default::default()
    };
    let m = cl.create_machine("web", &req).await.unwrap();
    assert_eq!(m.state, MachineState::Created);
    assert_eq!(m.region, "iad");
    let nonce = m.nonce.clone().expect("nonce from lease_ttl");
    assert_eq!(m.config.as_ref(), Some(&config));
    assert_eq!(
        sim.machine("web", &m.id).unwrap().state,
        "stopped",
        "skip_launch"
    );
    let err = cl.start_machine("web", &m.id, None).await.unwrap_err();
    assert!(err.is_lease_held(), "{err}");
    let started = cl.start_machine("web", &m.id, Some(&nonce)).await.unwrap();
    assert_eq!(started.previous_state, "stopped");
    // The create body on the wire kept the unknown config field.
    let body = sim
        .request_log()
        .into_iter()
        .find(|r| r.route == "create")
        .unwrap()
        .body;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["config"]["future_field"], json!({"x": [1, 2]}));
    assert_eq!(body["skip_launch"], true);
}

#[tokio::test]
async fn start_stop_suspend_destroy() {
    let sim = sim().await;
    let cl = client(&sim);
    let id = sim.add_machine("web", MachineSpec::new().state("stopped"));
    assert_eq!(
        cl.start_machine("web", &id, None)
            .await
            .unwrap()
            .previous_state,
        "stopped"
    );
    assert_eq!(sim.machine("web", &id).unwrap().state, "started");
    let err = cl.start_machine("web", &id, None).await.unwrap_err();
    assert_eq!(err.status(), Some(412), "{err}");
    cl.suspend_machine("web", &id, None).await.unwrap();
    assert_eq!(sim.machine("web", &id).unwrap().state, "suspended");
    cl.stop_machine("web", &id, &StopRequest::default(), None)
        .await
        .unwrap();
    assert_eq!(sim.machine("web", &id).unwrap().state, "stopped");
    let sig = StopRequest {
        signal: Some("SIGTERM".into()),
        timeout: Some("10s".into()),
    };
    cl.start_machine("web", &id, None).await.unwrap();
    cl.stop_machine("web", &id, &sig, None).await.unwrap();
    cl.start_machine("web", &id, None).await.unwrap();
    cl.destroy_machine("web", &id, &DestroyOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(sim.machine("web", &id).unwrap().state, "destroyed");
    let destroy = sim
        .request_log()
        .into_iter()
        .find(|r| r.route == "destroy")
        .unwrap();
    assert_eq!(destroy.query, "force=true");
    let err = cl.get_machine("web", &id).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn wait_reaches_state_and_times_out_with_408() {
    let mut cfg = SimConfig::default();
    cfg.timing.starting = fas_flysim::DurRange::ms(300, 300);
    let sim = Simulator::start(cfg).await.unwrap();
    sim.add_app("acme", "web");
    let cl = client(&sim);
    let id = sim.add_machine("web", MachineSpec::new().state("stopped"));
    cl.start_machine("web", &id, None).await.unwrap();
    let opts = WaitOptions {
        states: vec![MachineState::Started],
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let w = cl.wait_machine("web", &id, &opts).await.unwrap();
    assert_eq!(w.state.as_deref(), Some("started"));
    let opts = WaitOptions {
        states: vec![MachineState::Suspended],
        timeout: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let err = cl.wait_machine("web", &id, &opts).await.unwrap_err();
    assert_eq!(err.status(), Some(408), "{err}");
}

#[tokio::test]
async fn lease_acquire_get_release_and_409() {
    let sim = sim().await;
    let cl = client(&sim);
    let id = sim.add_machine("web", MachineSpec::new());
    let lease = cl
        .acquire_lease("web", &id, &LeaseRequest::default(), None)
        .await
        .unwrap();
    assert_eq!(lease.nonce.len(), 12);
    assert!(lease.expires_at.is_some());
    assert_eq!(cl.get_lease("web", &id).await.unwrap().nonce, lease.nonce);
    let err = cl
        .acquire_lease("web", &id, &LeaseRequest::default(), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    let err = cl
        .stop_machine("web", &id, &StopRequest::default(), None)
        .await
        .unwrap_err();
    assert!(err.is_lease_held(), "{err}");
    cl.stop_machine("web", &id, &StopRequest::default(), Some(&lease.nonce))
        .await
        .unwrap();
    cl.release_lease("web", &id, &lease.nonce).await.unwrap();
    let err = cl.get_lease("web", &id).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(sim.rate_limited_count(), 0);
}

#[tokio::test]
async fn apps_release_and_org_paging() {
    let mut cfg = SimConfig::instant();
    cfg.graphql_page_cap = Some(2);
    let sim = Simulator::start(cfg).await.unwrap();
    for i in 0..5 {
        sim.add_app("acme", &format!("app-{i}"));
    }
    sim.add_app("other", "not-mine");
    let cl = client(&sim);
    let apps = cl.list_apps("acme").await.unwrap();
    assert_eq!(
        apps.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["app-0", "app-1", "app-2", "app-3", "app-4"]
    );

    assert_eq!(cl.current_release("app-0").await.unwrap(), None);
    sim.set_release_status("app-0", Some("running"));
    let rel = cl.current_release("app-0").await.unwrap().unwrap();
    assert!(rel.in_progress());
    sim.set_release_status("app-0", Some("complete"));
    assert!(
        !cl.current_release("app-0")
            .await
            .unwrap()
            .unwrap()
            .in_progress()
    );
    let err = cl.current_release("ghost").await.unwrap_err();
    assert!(err.to_string().contains("Could not find App"), "{err}");

    let org_apps = cl.org_apps("acme").await.unwrap();
    assert_eq!(org_apps.len(), 5);
    assert_eq!(
        sim.count_route("graphql"),
        4 + 1 + 3,
        "4 release queries, 1 org query, 3 pages of at most 2"
    );
}

#[tokio::test]
async fn bad_token_is_401_and_unknowns_are_404() {
    let sim = sim().await;
    let bad = client_with_token(&sim, "FlyV1 fm2_not-the-token");
    let err = bad
        .list_machines("web", &ListMachinesOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    let cl = client(&sim);
    let err = cl.get_machine("web", "0123456789abcd").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.message().unwrap().contains("machine not found"));
    let err = cl
        .list_machines("ghost", &ListMachinesOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

/// Issue acceptance: 100 stopped machines, one start each, concurrently, under the client's default rate-limit
/// budget and the simulator's documented limits: no 429, and all 100 end up started (default timing: each
/// start spends 0.5–2 s in `starting`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_starts_get_no_429() {
    hundred_starts(SimConfig::default()).await;
}

/// The same with instant transitions: the time is the client + simulator overhead alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_starts_get_no_429_instant() {
    hundred_starts(SimConfig::instant()).await;
}

async fn hundred_starts(cfg: SimConfig) {
    assert_eq!(cfg.rate_limits, RateLimits::default());
    assert!(cfg.rate_limits.enabled);
    let sim = Simulator::start(cfg).await.unwrap();
    sim.add_app("acme", "web");
    let ids: Vec<String> = (0..100)
        .map(|_| sim.add_machine("web", MachineSpec::new().state("stopped")))
        .collect();
    let cl = client(&sim);
    let starts = ids.iter().map(|id| {
        let cl = cl.clone();
        let id = id.clone();
        async move {
            cl.start_machine("web", &id, None).await?;
            let opts = WaitOptions {
                states: vec![MachineState::Started],
                timeout: Some(Duration::from_secs(10)),
                ..Default::default()
            };
            cl.wait_machine("web", &id, &opts).await
        }
    });
    let results = futures_util::future::join_all(starts).await;
    for r in &results {
        assert!(r.is_ok(), "{:?}", r.as_ref().err());
    }
    assert_eq!(sim.rate_limited_count(), 0);
    assert_eq!(sim.count_route("start"), 100, "one start each, no retries");
    assert_eq!(sim.count_in_state("web", "started"), 100);
    assert_eq!(sim.peak_started("web"), 100);
}

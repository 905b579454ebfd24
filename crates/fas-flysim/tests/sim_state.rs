//! The state machine on a paused tokio clock: timing, destroyed window, wait, peak started, external actors.

mod common;

use std::time::Duration;

use common::{Http, create_body};
use fas_flysim::{DurRange, MachineSpec, RateLimits, SimConfig, Simulator, Timing};
use serde_json::json;
use tokio::time::advance;

fn fixed_timing() -> Timing {
    Timing {
        created: DurRange::ms(100, 100),
        starting: DurRange::ms(1_000, 1_000),
        stopping: DurRange::ms(2_000, 2_000),
        suspending: DurRange::ms(500, 500),
        destroying: DurRange::ms(1_000, 1_000),
        destroyed_visible_ms: 3_000,
    }
}

async fn sim(timing: Timing) -> Simulator {
    let cfg = SimConfig {
        timing,
        rate_limits: RateLimits {
            enabled: false,
            ..Default::default()
        },
        ..SimConfig::default()
    };
    let sim = Simulator::start(cfg).await.unwrap();
    sim.add_app("acme", "web");
    sim
}

async fn state(http: &Http, id: &str) -> String {
    let r = http.get(&format!("/v1/apps/web/machines/{id}")).await;
    r.json["state"]
        .as_str()
        .map_or_else(|| format!("HTTP {}", r.status), str::to_owned)
}

#[tokio::test(start_paused = true)]
async fn create_goes_created_starting_started_on_the_tokio_clock() {
    let sim = sim(fixed_timing()).await;
    let http = Http::new(&sim);
    let r = http
        .post("/v1/apps/web/machines", Some(&create_body("nginx", None)))
        .await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(state(&http, &id).await, "created");
    advance(Duration::from_millis(150)).await;
    assert_eq!(state(&http, &id).await, "starting");
    let listed = http.get("/v1/apps/web/machines").await;
    assert_eq!(
        listed.json[0]["state"], "starting",
        "transient states show in the list"
    );
    advance(Duration::from_millis(1_000)).await;
    assert_eq!(state(&http, &id).await, "started");
}

#[tokio::test(start_paused = true)]
async fn stop_start_suspend_follow_timing() {
    let sim = sim(fixed_timing()).await;
    let http = Http::new(&sim);
    let id = sim.add_machine("web", MachineSpec::new());
    http.post(
        &format!("/v1/apps/web/machines/{id}/stop"),
        Some(&json!({})),
    )
    .await;
    assert_eq!(state(&http, &id).await, "stopping");
    advance(Duration::from_millis(1_999)).await;
    assert_eq!(state(&http, &id).await, "stopping");
    advance(Duration::from_millis(2)).await;
    assert_eq!(state(&http, &id).await, "stopped");
    let r = http
        .post(&format!("/v1/apps/web/machines/{id}/start"), None)
        .await;
    assert_eq!(r.json["previous_state"], "stopped");
    assert_eq!(state(&http, &id).await, "starting");
    // Start while starting is the configurable 412 by default.
    let r = http
        .post(&format!("/v1/apps/web/machines/{id}/start"), None)
        .await;
    assert_eq!(
        r.error(),
        "failed_precondition: unable to start machine from current state: 'starting'"
    );
    advance(Duration::from_secs(1)).await;
    assert_eq!(state(&http, &id).await, "started");
    http.post(&format!("/v1/apps/web/machines/{id}/suspend"), None)
        .await;
    assert_eq!(state(&http, &id).await, "suspending");
    advance(Duration::from_millis(500)).await;
    assert_eq!(state(&http, &id).await, "suspended");
    let events = http.get(&format!("/v1/apps/web/machines/{id}")).await.json["events"].clone();
    let statuses: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses[..7],
        [
            "suspended",
            "suspending",
            "started",
            "starting",
            "stopped",
            "stopping",
            "started"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn destroyed_is_visible_briefly_then_404_and_only_in_include_deleted() {
    let sim = sim(fixed_timing()).await;
    let http = Http::new(&sim);
    let id = sim.add_machine("web", MachineSpec::new().state("stopped"));
    assert_eq!(
        http.delete(&format!("/v1/apps/web/machines/{id}"))
            .await
            .status,
        200
    );
    assert_eq!(state(&http, &id).await, "destroying");
    assert_eq!(
        http.get("/v1/apps/web/machines")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    advance(Duration::from_millis(1_000)).await;
    assert_eq!(state(&http, &id).await, "destroyed");
    assert_eq!(http.get("/v1/apps/web/machines").await.json, json!([]));
    advance(Duration::from_millis(3_000)).await;
    assert_eq!(state(&http, &id).await, "HTTP 404");
    let all = http.get("/v1/apps/web/machines?include_deleted=true").await;
    assert_eq!(all.json[0]["state"], "destroyed");
}

#[tokio::test(start_paused = true)]
async fn wait_returns_when_state_is_reached_and_408_on_timeout() {
    let sim = sim(fixed_timing()).await;
    let http = Http::new(&sim);
    let id = sim.add_machine("web", MachineSpec::new().state("stopped"));
    http.post(&format!("/v1/apps/web/machines/{id}/start"), None)
        .await;
    let t0 = tokio::time::Instant::now();
    let r = http
        .get(&format!(
            "/v1/apps/web/machines/{id}/wait?state=started&timeout=10"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["state"], "started");
    assert_eq!(r.json["ok"], true);
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(1),
        "returns exactly when the transition is due"
    );

    let r = http
        .get(&format!(
            "/v1/apps/web/machines/{id}/wait?state=suspended&timeout=5"
        ))
        .await;
    assert_eq!(r.status, 408);
    assert_eq!(t0.elapsed(), Duration::from_secs(6));

    let r = http
        .get(&format!("/v1/apps/web/machines/{id}/wait?state=stopped"))
        .await;
    assert_eq!(r.status, 400, "stopped needs instance_id");
    let instance = sim.machine("web", &id).unwrap().instance_id;
    let r = http
        .get(&format!(
            "/v1/apps/web/machines/{id}/wait?state=started&timeout=61"
        ))
        .await;
    assert_eq!(r.status, 400);
    let r = http
        .get(&format!("/v1/apps/web/machines/{id}/wait?state=bogus"))
        .await;
    assert_eq!(r.status, 400);

    // A wait for stopped wakes up when another request stops the machine.
    let waiter = {
        let http = Http::new(&sim);
        let path = format!(
            "/v1/apps/web/machines/{id}/wait?state=stopped&instance_id={instance}&timeout=60"
        );
        tokio::spawn(async move { http.get(&path).await })
    };
    tokio::task::yield_now().await;
    http.post(&format!("/v1/apps/web/machines/{id}/stop"), None)
        .await;
    let r = waiter.await.unwrap();
    assert_eq!((r.status, r.json["state"].as_str()), (200, Some("stopped")));
}

#[tokio::test(start_paused = true)]
async fn wait_wakes_on_external_state_change() {
    let sim = sim(fixed_timing()).await;
    let id = sim.add_machine("web", MachineSpec::new().state("stopped"));
    let waiter = {
        let http = Http::new(&sim);
        let path = format!("/v1/apps/web/machines/{id}/wait?state=started&timeout=60");
        tokio::spawn(async move { http.get(&path).await })
    };
    // Let the wait request reach the server before the external actor acts.
    for _ in 0..50 {
        tokio::task::yield_now().await;
        if sim.count_route("wait") > 0 || !sim.request_log().is_empty() {
            break;
        }
    }
    advance(Duration::from_secs(5)).await;
    assert!(
        sim.set_state("web", &id, "started"),
        "autostart by the proxy"
    );
    let r = waiter.await.unwrap();
    assert_eq!((r.status, r.json["state"].as_str()), (200, Some("started")));
}

#[tokio::test(start_paused = true)]
async fn peak_started_is_exact_when_transitions_are_applied_late() {
    let sim = sim(fixed_timing()).await;
    let http = Http::new(&sim);
    let a = sim.add_machine("web", MachineSpec::new());
    let b = sim.add_machine("web", MachineSpec::new().state("stopped"));
    assert_eq!(sim.peak_started("web"), 1);
    // b is started from t=1s; a leaves `started` at t=1.5s: for half a second both are started.
    http.post(&format!("/v1/apps/web/machines/{b}/start"), None)
        .await;
    advance(Duration::from_millis(1_500)).await;
    http.post(&format!("/v1/apps/web/machines/{a}/stop"), None)
        .await;
    advance(Duration::from_secs(10)).await;
    assert_eq!(sim.peak_started("web"), 2);
    assert_eq!(sim.count_in_state("web", "started"), 1);

    // d leaves `started` at once (stopping); c arrives at +3.5 s: never two at once.
    let sim2 = sim_pair().await;
    let (c, d) = (sim2.1.clone(), sim2.2.clone());
    let http2 = Http::new(&sim2.0);
    http2
        .post(&format!("/v1/apps/web/machines/{d}/stop"), None)
        .await; // d: started -> stopped at +2s
    advance(Duration::from_millis(2_500)).await;
    http2
        .post(&format!("/v1/apps/web/machines/{c}/start"), None)
        .await; // c: started at +3.5s
    advance(Duration::from_secs(10)).await;
    assert_eq!(sim2.0.peak_started("web"), 1, "never two at once");
    assert_eq!(sim2.0.count_in_state("web", "started"), 1);
}

async fn sim_pair() -> (Simulator, String, String) {
    let sim = sim(fixed_timing()).await;
    let c = sim.add_machine("web", MachineSpec::new().state("stopped"));
    let d = sim.add_machine("web", MachineSpec::new());
    (sim, c, d)
}

#[tokio::test(start_paused = true)]
async fn default_timing_is_within_documented_ranges_and_seeded() {
    let durations = |seed: u64| async move {
        let cfg = SimConfig {
            seed,
            rate_limits: RateLimits {
                enabled: false,
                ..Default::default()
            },
            ..SimConfig::default()
        };
        let sim = Simulator::start(cfg).await.unwrap();
        sim.add_app("acme", "web");
        let http = Http::new(&sim);
        let mut out = Vec::new();
        for _ in 0..5 {
            let id = sim.add_machine("web", MachineSpec::new().state("stopped"));
            http.post(&format!("/v1/apps/web/machines/{id}/start"), None)
                .await;
            let t0 = tokio::time::Instant::now();
            let r = http
                .get(&format!(
                    "/v1/apps/web/machines/{id}/wait?state=started&timeout=60"
                ))
                .await;
            assert_eq!(r.status, 200);
            out.push(t0.elapsed());
        }
        out
    };
    let a = durations(7).await;
    assert!(
        a.iter()
            .all(|d| *d >= Duration::from_millis(500) && *d <= Duration::from_secs(2)),
        "{a:?}"
    );
    assert_eq!(a, durations(7).await, "same seed, same timings");
    assert_ne!(a, durations(8).await);
}

#[tokio::test(start_paused = true)]
async fn external_actors_set_state_and_other_groups() {
    let sim = sim(fixed_timing()).await;
    let a = sim.add_machine("web", MachineSpec::new());
    sim.add_machine("web", MachineSpec::new().process_group(None));
    sim.add_machine(
        "web",
        MachineSpec::new().process_group(Some("fly_app_release_command")),
    );
    assert!(sim.set_state("web", &a, "stopped"));
    assert_eq!(sim.count_in_state("web", "stopped"), 1);
    assert_eq!(sim.count_in_state("web", "started"), 2);
    let groups: Vec<Option<String>> = sim
        .machines("web")
        .into_iter()
        .map(|m| m.process_group)
        .collect();
    assert!(groups.contains(&None));
    assert!(!sim.set_state("web", "ffffffffffffff", "stopped"));
}

//! Rate limits, leases, and fault injection.

mod common;

use std::time::Duration;

use common::{Http, create_body};
use fas_flysim::{
    FaultKind, FaultMatch, MachineSpec, RandomFault, RateLimits, ScriptedFault, SimConfig,
    Simulator,
};
use serde_json::json;
use tokio::time::{Instant, advance};

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

fn on(route: &str) -> FaultMatch {
    FaultMatch {
        route: Some(route.to_owned()),
        method: None,
    }
}

#[tokio::test(start_paused = true)]
async fn action_limit_is_per_machine_burst_3_then_429_with_retry_after_and_refills() {
    let sim = sim_with(SimConfig::instant()).await;
    let http = Http::new(&sim);
    let a = sim.add_machine("web", MachineSpec::new());
    let b = sim.add_machine("web", MachineSpec::new());
    let cordon = |id: &str| format!("/v1/apps/web/machines/{id}/cordon");
    for _ in 0..3 {
        assert_eq!(http.post(&cordon(&a), None).await.status, 200);
    }
    let r = http.post(&cordon(&a), None).await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.json,
        json!({"error": "resource_exhausted: rate limit exceeded"})
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    // Another machine has its own bucket; another action on the same machine too.
    assert_eq!(http.post(&cordon(&b), None).await.status, 200);
    assert_eq!(
        http.post(&format!("/v1/apps/web/machines/{a}/uncordon"), None)
            .await
            .status,
        200
    );
    // 1 token per second.
    advance(Duration::from_secs(1)).await;
    assert_eq!(http.post(&cordon(&a), None).await.status, 200);
    assert_eq!(http.post(&cordon(&a), None).await.status, 429);
    assert_eq!(sim.rate_limited_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn get_is_5_per_second_burst_10_and_list_and_create_are_keyed_by_app() {
    let sim = sim_with(SimConfig::instant()).await;
    sim.add_app("acme", "api");
    let http = Http::new(&sim);
    let id = sim.add_machine("web", MachineSpec::new());
    let get = format!("/v1/apps/web/machines/{id}");
    for _ in 0..10 {
        assert_eq!(http.get(&get).await.status, 200);
    }
    assert_eq!(http.get(&get).await.status, 429);
    advance(Duration::from_millis(200)).await;
    assert_eq!(
        http.get(&get).await.status,
        200,
        "5/s refills one token in 200 ms"
    );

    for _ in 0..3 {
        assert_eq!(http.get("/v1/apps/web/machines").await.status, 200);
    }
    assert_eq!(http.get("/v1/apps/web/machines").await.status, 429);
    assert_eq!(http.get("/v1/apps/api/machines").await.status, 200);

    for _ in 0..3 {
        assert_eq!(
            http.post("/v1/apps/web/machines", Some(&create_body("nginx", None)))
                .await
                .status,
            200
        );
    }
    let r = http
        .post("/v1/apps/web/machines", Some(&create_body("nginx", None)))
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(
        http.post("/v1/apps/api/machines", Some(&create_body("nginx", None)))
            .await
            .status,
        200
    );
    assert_eq!(
        sim.machines("web").len(),
        4,
        "the rate-limited create created nothing"
    );
}

#[tokio::test]
async fn retry_after_can_be_switched_off_and_limits_disabled() {
    let mut cfg = SimConfig::instant();
    cfg.rate_limits.retry_after = false;
    let sim = sim_with(cfg).await;
    let http = Http::new(&sim);
    let mut last = None;
    for _ in 0..4 {
        last = Some(http.get("/v1/apps/web/machines").await);
    }
    let r = last.unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);

    sim.configure(|c| c.rate_limits.enabled = false);
    for _ in 0..20 {
        assert_eq!(http.get("/v1/apps/web/machines").await.status, 200);
    }
    assert_eq!(sim.rate_limited_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn leases_conflict_guard_mutations_and_expire() {
    let sim = sim_with(no_limits()).await;
    let http = Http::new(&sim);
    let id = sim.add_machine("web", MachineSpec::new());
    let lease = format!("/v1/apps/web/machines/{id}/lease");
    assert_eq!(http.get(&lease).await.status, 404);
    let r = http
        .post(&lease, Some(&json!({"ttl": 10, "description": "mine"})))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json["status"], "success");
    let nonce = r.json["data"]["nonce"].as_str().unwrap().to_owned();
    assert_eq!(r.json["data"]["description"], "mine");
    assert_eq!(r.json["data"]["version"].as_str().unwrap().len(), 26);
    let expires = r.json["data"]["expires_at"].as_u64().unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expires >= now_s + 9 && expires <= now_s + 11,
        "unix seconds"
    );

    let r = http.post(&lease, Some(&json!({"ttl": 10}))).await;
    assert_eq!(r.status, 409, "second acquire");
    assert_eq!(http.get(&lease).await.json["data"]["nonce"], nonce.as_str());

    let stop = format!("/v1/apps/web/machines/{id}/stop");
    let r = http.post(&stop, None).await;
    assert_eq!(r.status, 409);
    assert!(
        r.error()
            .starts_with(&format!("machine ID {id} lease currently held by")),
        "{}",
        r.text
    );
    let r = http
        .send("POST", &stop, None, &[("fly-machine-lease-nonce", "wrong")])
        .await;
    assert_eq!(r.status, 409);
    let r = http
        .send("POST", &stop, None, &[("fly-machine-lease-nonce", &nonce)])
        .await;
    assert_eq!(r.status, 200);

    // Refresh with the nonce, then expiry after the TTL.
    advance(Duration::from_secs(8)).await;
    let r = http
        .send(
            "POST",
            &format!("{lease}?ttl=5"),
            None,
            &[("fly-machine-lease-nonce", &nonce)],
        )
        .await;
    assert_eq!(r.status, 201);
    advance(Duration::from_secs(4)).await;
    assert_eq!(
        http.get(&lease).await.status,
        200,
        "refreshed lease still held at t=12s"
    );
    advance(Duration::from_secs(1)).await;
    assert_eq!(http.get(&lease).await.status, 404, "expired");
    let r = http
        .post(&format!("/v1/apps/web/machines/{id}/start"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Release needs the nonce.
    let r = http.post(&format!("{lease}?ttl=30"), None).await;
    let nonce = r.json["data"]["nonce"].as_str().unwrap().to_owned();
    assert_eq!(http.delete(&lease).await.status, 409);
    let r = http
        .send(
            "DELETE",
            &lease,
            None,
            &[("fly-machine-lease-nonce", &nonce)],
        )
        .await;
    assert_eq!(r.json, json!({"status": "success", "data": {"ok": true}}));
    assert_eq!(http.get(&lease).await.status, 404);
}

#[tokio::test]
async fn lease_all_models_a_deploy() {
    let sim = sim_with(no_limits()).await;
    let http = Http::new(&sim);
    let ids: Vec<String> = (0..3)
        .map(|_| sim.add_machine("web", MachineSpec::new()))
        .collect();
    let leases = sim.lease_all("web");
    assert_eq!(leases.len(), 3);
    for id in &ids {
        let r = http
            .post(&format!("/v1/apps/web/machines/{id}/stop"), None)
            .await;
        assert_eq!(r.status, 409);
    }
    assert!(sim.machines("web").iter().all(|m| m.leased));
    sim.release_all("web");
    let r = http
        .post(&format!("/v1/apps/web/machines/{}/stop", ids[0]), None)
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn scripted_status_and_reset_faults_are_consumed_in_order() {
    let sim = sim_with(no_limits()).await;
    let http = Http::new(&sim);
    let id = sim.add_machine("web", MachineSpec::new().state("stopped"));
    sim.push_fault(ScriptedFault {
        matches: on("start"),
        fault: FaultKind::Status { status: 503 },
    });
    sim.push_fault(ScriptedFault {
        matches: on("start"),
        fault: FaultKind::Reset,
    });
    let start = format!("/v1/apps/web/machines/{id}/start");
    assert_eq!(http.post(&start, None).await.status, 503);
    assert_eq!(
        sim.machine("web", &id).unwrap().state,
        "stopped",
        "a 503 has no side effect"
    );
    assert!(
        http.try_send("POST", &start, None, &[]).await.is_err(),
        "connection reset"
    );
    assert_eq!(sim.machine("web", &id).unwrap().state, "stopped");
    assert_eq!(http.post(&start, None).await.status, 200);
    let statuses: Vec<u16> = sim.request_log().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 0, 200]);
    assert_eq!(sim.count_for_machine(&id), 3);
}

#[tokio::test]
async fn ambiguous_create_creates_then_fails() {
    let sim = sim_with(no_limits()).await;
    let http = Http::new(&sim);
    for status in [408, 500, 502] {
        sim.push_fault(ScriptedFault {
            matches: FaultMatch {
                route: Some("create".into()),
                method: Some("POST".into()),
            },
            fault: FaultKind::AmbiguousCreate { status },
        });
    }
    for status in [408, 500, 502] {
        let r = http
            .post("/v1/apps/web/machines", Some(&create_body("nginx", None)))
            .await;
        assert_eq!(r.status, status);
    }
    assert_eq!(
        sim.machines("web").len(),
        3,
        "each failed create still created a machine"
    );
}

#[tokio::test]
async fn quota_capacity_and_random_faults() {
    let mut cfg = no_limits();
    cfg.faults.machine_quota = Some(2);
    cfg.faults
        .capacity_exhausted_regions
        .insert("ams".to_owned());
    let sim = sim_with(cfg).await;
    let http = Http::new(&sim);
    let r = http
        .post(
            "/v1/apps/web/machines",
            Some(&create_body("nginx", Some("ams"))),
        )
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(r.json["status"], "insufficient_capacity");
    assert!(r.error().contains("could not reserve resource for machine"));
    for _ in 0..2 {
        assert_eq!(
            http.post(
                "/v1/apps/web/machines",
                Some(&create_body("nginx", Some("iad")))
            )
            .await
            .status,
            200
        );
    }
    let r = http
        .post("/v1/apps/web/machines", Some(&create_body("nginx", None)))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.error(),
        "To create more than 2 machines per app please add a payment method"
    );

    sim.set_random_faults(vec![RandomFault {
        matches: on("list"),
        probability: 1.0,
        fault: FaultKind::Status { status: 500 },
    }]);
    for _ in 0..5 {
        assert_eq!(http.get("/v1/apps/web/machines").await.status, 500);
    }
    sim.set_random_faults(vec![RandomFault {
        matches: on("list"),
        probability: 0.5,
        fault: FaultKind::Status { status: 504 },
    }]);
    let mut n504 = 0;
    for _ in 0..200 {
        if http.get("/v1/apps/web/machines").await.status == 504 {
            n504 += 1;
        }
    }
    assert!((60..=140).contains(&n504), "about half: {n504}");
}

#[tokio::test(start_paused = true)]
async fn delay_fault_and_latency_use_the_tokio_clock() {
    let mut cfg = no_limits();
    cfg.faults.latency_ms = 100;
    let sim = sim_with(cfg).await;
    let http = Http::new(&sim);
    let t0 = Instant::now();
    assert_eq!(http.get("/v1/apps/web/machines").await.status, 200);
    assert_eq!(t0.elapsed(), Duration::from_millis(100));
    sim.push_fault(ScriptedFault {
        matches: on("list"),
        fault: FaultKind::Delay { ms: 30_000 },
    });
    let t0 = Instant::now();
    assert_eq!(http.get("/v1/apps/web/machines").await.status, 200);
    assert_eq!(t0.elapsed(), Duration::from_millis(30_100));
}

#[tokio::test(start_paused = true)]
async fn list_lag_hides_new_machines_from_the_list_only() {
    let mut cfg = no_limits();
    cfg.faults.list_lag_ms = 2_000;
    let sim = sim_with(cfg).await;
    let http = Http::new(&sim);
    let r = http
        .post("/v1/apps/web/machines", Some(&create_body("nginx", None)))
        .await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(http.get("/v1/apps/web/machines").await.json, json!([]));
    assert_eq!(
        http.get(&format!("/v1/apps/web/machines/{id}"))
            .await
            .status,
        200
    );
    advance(Duration::from_millis(1_999)).await;
    assert_eq!(http.get("/v1/apps/web/machines").await.json, json!([]));
    advance(Duration::from_millis(1)).await;
    assert_eq!(
        http.get("/v1/apps/web/machines").await.json[0]["id"],
        id.as_str()
    );
}

#[tokio::test]
async fn scenario_json_builds_a_world_and_rejects_unknown_fields() {
    let s = fas_flysim::Scenario::from_json(
        r#"{"config": {"timing": {"created": {"min_ms": 0, "max_ms": 0}}, "rate_limits": {"enabled": false}},
            "orgs": ["empty-org"],
            "apps": [{"org": "acme", "name": "web", "release_status": "running",
                      "machines": [{"count": 3, "spec": {"state": "stopped", "region": "iad"}},
                                   {"spec": {"process_group": null}}]}]}"#,
    )
    .unwrap();
    let sim = Simulator::from_scenario("127.0.0.1:0".parse().unwrap(), &s)
        .await
        .unwrap();
    assert_eq!(sim.count_in_state("web", "stopped"), 3);
    assert_eq!(
        sim.machines("web")
            .iter()
            .filter(|m| m.process_group.is_none())
            .count(),
        1
    );
    let http = Http::new(&sim);
    assert_eq!(
        http.get("/v1/apps?org_slug=empty-org").await.json["total_apps"],
        0
    );
    let r = http
        .graphql(common::RELEASE_QUERY, json!({"appName": "web"}))
        .await;
    assert_eq!(r.json["data"]["app"]["currentRelease"]["status"], "running");

    let err =
        fas_flysim::Scenario::from_json(r#"{"apps": [{"name": "x", "machnes": []}]}"#).unwrap_err();
    let cause = std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(cause.contains("unknown field `machnes`"), "{cause}");
}

#[tokio::test]
async fn request_log_is_bounded() {
    let mut cfg = no_limits();
    cfg.request_log_limit = 10;
    let sim = sim_with(cfg).await;
    let http = Http::new(&sim);
    for i in 0..25 {
        http.get(&format!("/v1/apps/web/machines?n={i}")).await;
    }
    let log = sim.request_log();
    assert!(log.len() <= 10, "{}", log.len());
    assert_eq!(log.last().unwrap().query, "n=24");
}

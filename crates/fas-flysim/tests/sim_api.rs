//! Routes, shapes, auth, 404s, filters, outcomes, GraphQL (instant timing, real clock).

mod common;

use common::{Http, ORG_QUERY, RELEASE_QUERY, apps_query, create_body};
use fas_flysim::{MachineSpec, Outcomes, SimConfig, Simulator};
use serde_json::{Value, json};

async fn sim() -> Simulator {
    let cfg = SimConfig {
        rate_limits: fas_flysim::RateLimits {
            enabled: false,
            ..Default::default()
        },
        ..SimConfig::instant()
    };
    let sim = Simulator::start(cfg).await.unwrap();
    sim.add_app("acme", "web");
    sim
}

#[tokio::test]
async fn auth_accepts_three_schemes_and_rejects_others_with_401() {
    let sim = sim().await;
    let tok = sim.token().to_owned();
    for auth in [
        format!("Bearer {tok}"),
        format!("FlyV1 {tok}"),
        format!("Bearer FlyV1 {tok}"),
    ] {
        let r = Http::new(&sim)
            .with_auth(Some(&auth))
            .get("/v1/apps/web/machines")
            .await;
        assert_eq!(r.status, 200, "{auth}");
    }
    for auth in [
        None,
        Some("Bearer wrong".to_owned()),
        Some(tok.clone()),
        Some(format!("Basic {tok}")),
    ] {
        let r = Http::new(&sim)
            .with_auth(auth.as_deref())
            .get("/v1/apps/web/machines")
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json,
            json!({"error": "Authenticate: token validation error"})
        );
    }
    let r = Http::new(&sim)
        .with_auth(None)
        .graphql(RELEASE_QUERY, json!({"appName": "web"}))
        .await;
    assert_eq!(r.status, 401);
    // Every request is logged, including the rejected ones.
    assert_eq!(
        sim.request_log().iter().filter(|r| r.status == 401).count(),
        5
    );
}

#[tokio::test]
async fn responses_carry_content_type_and_request_id() {
    let sim = sim().await;
    let r = Http::new(&sim).get("/v1/apps/web/machines").await;
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let rid = r.header("fly-request-id").unwrap();
    assert_eq!(rid.len(), 26 + 4, "{rid}");
    let r2 = Http::new(&sim).get("/v1/apps/nope/machines").await;
    assert_ne!(r2.header("fly-request-id"), Some(rid));
}

#[tokio::test]
async fn unknown_app_and_machine_are_404() {
    let sim = sim().await;
    let http = Http::new(&sim);
    let r = http.get("/v1/apps/nope/machines").await;
    assert_eq!((r.status, r.error()), (404, "app not found"));
    let r = http.get("/v1/apps/web/machines/0123456789abcd").await;
    assert_eq!((r.status, r.error()), (404, "machine not found"));
    let r = http
        .post("/v1/apps/web/machines/0123456789abcd/start", None)
        .await;
    assert_eq!(r.status, 404);
    let r = http.delete("/v1/apps/nope/machines/0123456789abcd").await;
    assert_eq!(r.status, 404);
    let r = http
        .post("/v1/apps/nope/machines", Some(&create_body("nginx", None)))
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn create_returns_created_with_exact_config_and_derived_fields() {
    let sim = sim().await;
    let http = Http::new(&sim);
    let body = create_body("registry.fly.io/web:deployment-7@sha256:feed", Some("iad"));
    let r = http.post("/v1/apps/web/machines", Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = &r.json;
    assert_eq!(m["state"], "created");
    assert_eq!(m["region"], "iad");
    assert_eq!(m["config"], body["config"], "config kept exactly");
    let id = m["id"].as_str().unwrap();
    assert_eq!(id.len(), 14);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(m["instance_id"].as_str().unwrap().len(), 26);
    assert_eq!(m["image_ref"]["registry"], "registry.fly.io");
    assert_eq!(m["image_ref"]["repository"], "web");
    assert_eq!(m["image_ref"]["tag"], "deployment-7");
    assert_eq!(m["image_ref"]["digest"], "sha256:feed");
    assert_eq!(m["host_status"], "ok");
    assert!(m.get("nonce").is_none());
    let ev = &m["events"][0];
    assert_eq!(
        (ev["type"].as_str(), ev["status"].as_str()),
        (Some("launch"), Some("created"))
    );
    assert!(
        ev["timestamp"].as_u64().unwrap() > 1_600_000_000_000,
        "ms timestamps"
    );
    // Instant timing: the next read shows it started, with newest-first events.
    let r = http.get(&format!("/v1/apps/web/machines/{id}")).await;
    assert_eq!(r.json["state"], "started");
    assert_eq!(r.json["events"][0]["status"], "started");
    let ts: Vec<u64> = r.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["timestamp"].as_u64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] >= w[1]), "newest first: {ts:?}");
    assert_eq!(
        sim.machine("web", id).unwrap().process_group.as_deref(),
        Some("app")
    );
}

#[tokio::test]
async fn create_with_skip_launch_ends_stopped_and_lease_ttl_returns_nonce() {
    let sim = sim().await;
    let http = Http::new(&sim);
    let mut body = create_body("nginx:1.27", None);
    body["skip_launch"] = json!(true);
    body["lease_ttl"] = json!(60);
    body["name"] = json!("my-name");
    let r = http.post("/v1/apps/web/machines", Some(&body)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["region"], "ord", "default region");
    assert_eq!(r.json["name"], "my-name");
    let nonce = r.json["nonce"].as_str().unwrap().to_owned();
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(sim.machine("web", &id).unwrap().state, "stopped");
    // The lease from lease_ttl guards the machine.
    let r = http
        .post(&format!("/v1/apps/web/machines/{id}/start"), None)
        .await;
    assert_eq!(r.status, 409);
    let r = http
        .send(
            "POST",
            &format!("/v1/apps/web/machines/{id}/start"),
            None,
            &[("fly-machine-lease-nonce", &nonce)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["previous_state"], "stopped");
}

#[tokio::test]
async fn create_rejects_missing_image_with_400() {
    let sim = sim().await;
    let http = Http::new(&sim);
    let r = http
        .post("/v1/apps/web/machines", Some(&json!({"config": {}})))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("image"), "{}", r.text);
    let r = http.send("POST", "/v1/apps/web/machines", None, &[]).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn list_filters_by_region_state_metadata_and_hides_destroyed() {
    let sim = sim().await;
    let a = sim.add_machine("web", MachineSpec::new().region("iad"));
    let b = sim.add_machine("web", MachineSpec::new().state("stopped").region("ord"));
    let c = sim.add_machine("web", MachineSpec::new().process_group(Some("worker")));
    let d = sim.add_machine("web", MachineSpec::new().state("destroyed"));
    let e = sim.add_machine(
        "web",
        MachineSpec::new().process_group(None).state("suspended"),
    );
    let http = Http::new(&sim);
    let ids = |r: &common::Resp| -> Vec<String> {
        let mut v: Vec<String> = r
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&http.get("/v1/apps/web/machines").await),
        sorted(vec![&a, &b, &c, &e])
    );
    assert_eq!(
        ids(&http.get("/v1/apps/web/machines?include_deleted=true").await),
        sorted(vec![&a, &b, &c, &d, &e])
    );
    assert_eq!(
        ids(&http.get("/v1/apps/web/machines?region=iad").await),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&http
            .get("/v1/apps/web/machines?state=stopped,suspended")
            .await),
        sorted(vec![&b, &e])
    );
    assert_eq!(
        ids(&http
            .get("/v1/apps/web/machines?state=stopped&state=suspended")
            .await),
        sorted(vec![&b, &e])
    );
    assert_eq!(
        ids(&http
            .get("/v1/apps/web/machines?metadata.fly_process_group=worker")
            .await),
        vec![c.clone()]
    );
    let app_group = ids(&http
        .get("/v1/apps/web/machines?metadata.fly_process_group=app")
        .await);
    assert_eq!(app_group, sorted(vec![&a, &b]));
    // Leases appear only with include_leases.
    sim.lease_all("web");
    let r = http.get("/v1/apps/web/machines?region=iad").await;
    assert!(r.json[0].get("lease").is_none());
    let r = http
        .get("/v1/apps/web/machines?region=iad&include_leases=true")
        .await;
    assert_eq!(r.json[0]["lease"]["owner"], "deploy@flysim");
    assert!(
        r.json[0]["lease"].get("nonce").is_none(),
        "no nonce in the stripped lease"
    );
}

#[tokio::test]
async fn unreachable_host_drops_config_and_adds_incomplete_config() {
    let sim = sim().await;
    let id = sim.add_machine("web", MachineSpec::new());
    assert!(sim.set_host_status("web", &id, "unreachable"));
    let http = Http::new(&sim);
    let r = http.get(&format!("/v1/apps/web/machines/{id}")).await;
    assert_eq!(r.json["host_status"], "unreachable");
    assert!(r.json.get("config").is_none());
    assert_eq!(
        r.json["incomplete_config"]["metadata"]["fly_process_group"],
        "app"
    );
    let r = http
        .post(
            &format!("/v1/apps/web/machines/{id}/stop"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 503);
    assert!(sim.set_host_status("web", &id, "ok"));
    let r = http.get(&format!("/v1/apps/web/machines/{id}")).await;
    assert!(r.json["config"].is_object());
}

#[tokio::test]
async fn stop_accepts_empty_signal_and_go_bodies() {
    let sim = sim().await;
    let http = Http::new(&sim);
    let bodies = [
        None,
        Some(json!({})),
        Some(json!({"signal": "SIGTERM", "timeout": "10s"})),
    ];
    for body in bodies
        .iter()
        .chain([Some(json!({"id": "x", "timeout": "0s"}))].iter())
    {
        let id = sim.add_machine("web", MachineSpec::new());
        let r = http
            .post(&format!("/v1/apps/web/machines/{id}/stop"), body.as_ref())
            .await;
        assert_eq!((r.status, &r.json), (200, &json!({"ok": true})), "{body:?}");
        assert_eq!(sim.machine("web", &id).unwrap().state, "stopped");
    }
}

#[tokio::test]
async fn default_outcomes_for_unverified_cases() {
    let sim = sim().await;
    let http = Http::new(&sim);
    let started = sim.add_machine("web", MachineSpec::new());
    let stopped = sim.add_machine("web", MachineSpec::new().state("stopped"));
    let r = http
        .post(&format!("/v1/apps/web/machines/{started}/start"), None)
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(
        r.error(),
        "failed_precondition: unable to start machine from current state: 'started'"
    );
    let r = http
        .post(&format!("/v1/apps/web/machines/{stopped}/stop"), None)
        .await;
    assert_eq!((r.status, &r.json), (200, &json!({"ok": true})));
    let r = http
        .delete(&format!("/v1/apps/web/machines/{started}"))
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(sim.machine("web", &started).unwrap().state, "started");
    let r = http
        .delete(&format!("/v1/apps/web/machines/{started}?kill=true"))
        .await;
    assert_eq!(r.status, 200);
    let r = http
        .delete(&format!("/v1/apps/web/machines/{stopped}"))
        .await;
    assert_eq!(
        r.status, 200,
        "non-force destroy of a stopped machine is fine"
    );
}

#[tokio::test]
async fn alternative_outcomes_for_unverified_cases() {
    let sim = sim().await;
    sim.configure(|c| {
        c.outcomes = Outcomes {
            start_when_running_is_noop: true,
            stop_when_stopped_fails: true,
            destroy_running_without_force: true,
        }
    });
    let http = Http::new(&sim);
    let started = sim.add_machine("web", MachineSpec::new());
    let stopped = sim.add_machine("web", MachineSpec::new().state("stopped"));
    let r = http
        .post(&format!("/v1/apps/web/machines/{started}/start"), None)
        .await;
    assert_eq!(
        (r.status, r.json["previous_state"].as_str()),
        (200, Some("started"))
    );
    let r = http
        .post(&format!("/v1/apps/web/machines/{stopped}/stop"), None)
        .await;
    assert_eq!(r.status, 412);
    let r = http
        .delete(&format!("/v1/apps/web/machines/{started}"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.machine("web", &started).unwrap().state, "destroyed");
}

#[tokio::test]
async fn suspend_cordon_uncordon() {
    let sim = sim().await;
    let http = Http::new(&sim);
    let id = sim.add_machine("web", MachineSpec::new());
    let r = http
        .post(&format!("/v1/apps/web/machines/{id}/cordon"), None)
        .await;
    assert_eq!(r.json, json!({"ok": true}));
    assert!(
        http.get(&format!("/v1/apps/web/machines/{id}")).await.json["cordoned"]
            .as_bool()
            .unwrap()
    );
    http.post(&format!("/v1/apps/web/machines/{id}/uncordon"), None)
        .await;
    assert!(!sim.machine("web", &id).unwrap().cordoned);
    let r = http
        .post(&format!("/v1/apps/web/machines/{id}/suspend"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.machine("web", &id).unwrap().state, "suspended");
    let r = http
        .post(&format!("/v1/apps/web/machines/{id}/start"), None)
        .await;
    assert_eq!(
        (r.status, r.json["previous_state"].as_str()),
        (200, Some("suspended"))
    );
    let stopped = sim.add_machine("web", MachineSpec::new().state("stopped"));
    let r = http
        .post(&format!("/v1/apps/web/machines/{stopped}/suspend"), None)
        .await;
    assert_eq!(r.status, 412);
}

#[tokio::test]
async fn rest_app_list_by_org() {
    let sim = sim().await;
    sim.add_app("acme", "api");
    sim.add_app("other", "x");
    sim.add_machine("api", MachineSpec::new());
    let http = Http::new(&sim);
    let r = http.get("/v1/apps?org_slug=acme").await;
    assert_eq!(r.json["total_apps"], 2);
    let names: Vec<&str> = r.json["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(r.json["apps"][0]["machine_count"], 1);
    assert_eq!(r.json["apps"][0]["organization"]["slug"], "acme");
    assert_eq!(http.get("/v1/apps").await.status, 400);
    assert_eq!(http.get("/v1/apps?org_slug=missing").await.status, 404);
    assert_eq!(http.get("/v1/apps/web").await.json["name"], "web");
}

#[tokio::test]
async fn graphql_current_release_null_running_and_unknown_app() {
    let sim = sim().await;
    let http = Http::new(&sim);
    let r = http.graphql(RELEASE_QUERY, json!({"appName": "web"})).await;
    assert_eq!(r.json, json!({"data": {"app": {"currentRelease": null}}}));
    sim.set_release_status("web", Some("running"));
    let r = http.graphql(RELEASE_QUERY, json!({"appName": "web"})).await;
    let rel = &r.json["data"]["app"]["currentRelease"];
    assert_eq!(rel["status"], "running");
    assert_eq!(rel["version"], 1);
    assert!(rel["createdAt"].as_str().unwrap().ends_with('Z'));
    sim.set_release_status("web", Some("complete"));
    let r = http.graphql(RELEASE_QUERY, json!({"appName": "web"})).await;
    assert_eq!(r.json["data"]["app"]["currentRelease"]["version"], 2);
    let r = http
        .graphql(RELEASE_QUERY, json!({"appName": "ghost"}))
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.json["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Could not find App")
    );
}

#[tokio::test]
async fn graphql_org_and_paged_apps() {
    let sim = sim().await;
    for i in 0..5 {
        sim.add_app("acme", &format!("app-{i}"));
    }
    sim.add_app("other", "elsewhere");
    sim.set_release_status("app-1", Some("running"));
    let http = Http::new(&sim);
    let r = http.graphql(ORG_QUERY, json!({"slug": "acme"})).await;
    let org_id = r.json["data"]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.json["data"]["organization"]["slug"], "acme");
    let r = http.graphql(ORG_QUERY, json!({"slug": "nope"})).await;
    assert!(r.json["errors"][0]["message"].as_str().is_some());

    let mut names = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let r = http
            .graphql(
                &apps_query(2),
                json!({"org": org_id, "role": null, "after": after}),
            )
            .await;
        let apps = &r.json["data"]["apps"];
        let nodes = apps["nodes"].as_array().unwrap();
        assert!(nodes.len() <= 2);
        for n in nodes {
            names.push(n["name"].as_str().unwrap().to_owned());
            if n["name"] == "app-1" {
                assert_eq!(n["currentRelease"]["status"], "running");
            }
        }
        pages += 1;
        if !apps["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = apps["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["app-0", "app-1", "app-2", "app-3", "app-4", "web"]);
    // The page cap applies even when `first` is larger.
    sim.configure(|c| c.graphql_page_cap = Some(4));
    let r = http.graphql(&apps_query(200), json!({"org": org_id})).await;
    assert_eq!(r.json["data"]["apps"]["nodes"].as_array().unwrap().len(), 4);
    assert_eq!(r.json["data"]["apps"]["pageInfo"]["hasNextPage"], true);
    let _: Value = r.json;
}

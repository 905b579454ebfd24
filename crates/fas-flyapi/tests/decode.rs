//! Decoding of the JSON shapes flyapi.md documents (fixtures under `tests/fixtures/`).

use fas_flyapi::{CreateMachineRequest, HostStatus, Machine, MachineConfig, MachineState};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn rich_machine_decodes_every_field() {
    let m: Machine = serde_json::from_str(&fixture("machine_rich.json")).unwrap();
    assert_eq!(m.id, "3d8d413b29d089");
    assert_eq!(m.name, "aged-wind-2649");
    assert_eq!(m.state, MachineState::Started);
    assert_eq!(m.region, "ord");
    assert_eq!(m.instance_id, "01HDXWH0GRHYFWXPHJ4WQEPRA2");
    assert_eq!(m.version.as_deref(), Some("01HDXWH0GRHYFWXPHJ4WQEPRA2"));
    assert_eq!(m.private_ip, "fdaa:0:18:a7b:7d:f066:b83b:2");
    assert_eq!(m.created_at, "2023-10-31T02:30:10Z");
    assert_eq!(m.updated_at, "2023-10-31T02:30:11Z");
    assert_eq!(m.host_status, HostStatus::Ok);
    assert!(!m.cordoned);
    assert!(m.incomplete_config.is_none());
    assert_eq!(m.process_group(), Some("app"));
    assert_eq!(
        m.full_image_ref().as_deref(),
        Some(
            "registry.fly.io/my-app:deployment-01HDXWGDHVPMR2B8ZFFEJQ1Q3W@sha256:0b1ac2e2e8d5b5c7cb6b1b7d0e3b5ad0df07b4c3f1f21ab4e3c1c8a7a9ef3d0f"
        )
    );
    assert_eq!(m.events.len(), 3);
    assert_eq!(m.events[0].kind, "start");
    assert_eq!(m.events[0].timestamp, Some(1_698_719_411_000));
    assert_eq!(
        m.events[1].request.as_ref().unwrap()["exit_event"]["requested_stop"],
        json!(true)
    );
    assert_eq!(m.checks[0].name, "servicecheck-00-tcp-8080");
    assert_eq!(m.checks[0].status, "passing");
    assert_eq!(m.containers[0].state, "running");
    assert_eq!(m.extra["some_new_top_level_field"], json!({"a": 1}));
    let cfg = m.config.as_ref().unwrap();
    assert_eq!(
        cfg.image(),
        Some("registry.fly.io/my-app:deployment-01HDXWGDHVPMR2B8ZFFEJQ1Q3W")
    );
    assert_eq!(cfg.metadata().get("fly_platform_version"), Some(&"v2"));
    assert_eq!(m.nonce, None);
    assert_eq!(m.lease, None);
}

#[test]
fn config_round_trips_exactly_through_a_create() {
    let raw: Value = serde_json::from_str(&fixture("machine_rich.json")).unwrap();
    let m: Machine = serde_json::from_value(raw.clone()).unwrap();
    let req = CreateMachineRequest {
        config: m.config.clone().unwrap(),
        region: Some("iad".into()),
        ..Default::default()
    };
    let body = serde_json::to_value(&req).unwrap();
    // Everything, including autostop "suspend" and false, int and string durations, nulls and
    // unknown future fields, comes back unchanged.
    assert_eq!(body["config"], raw["config"]);
    assert_eq!(body["config"]["services"][0]["autostop"], json!("suspend"));
    assert_eq!(body["config"]["services"][1]["autostop"], json!(false));
    assert_eq!(
        body["config"]["checks"]["health"]["interval"],
        json!(15_000_000_000u64)
    );
    assert_eq!(
        body["config"]["future_field_2027"],
        json!({"nested": [1, 2.5, "x", null, true]})
    );

    // Changing the image touches nothing else.
    let mut cfg = m.config.clone().unwrap();
    cfg.set_image(&m.image_ref.as_ref().unwrap().full().unwrap());
    let mut expected = raw["config"].clone();
    expected["image"] = json!(m.full_image_ref().unwrap());
    assert_eq!(serde_json::to_value(&cfg).unwrap(), expected);
}

#[test]
fn whole_machine_round_trips_semantically() {
    let raw: Value = serde_json::from_str(&fixture("machine_rich.json")).unwrap();
    let m: Machine = serde_json::from_value(raw.clone()).unwrap();
    let back = serde_json::to_value(&m).unwrap();
    let again: Machine = serde_json::from_value(back).unwrap();
    assert_eq!(m, again);
}

#[test]
fn unreachable_machine_decodes() {
    let m: Machine = serde_json::from_str(&fixture("machine_unreachable.json")).unwrap();
    assert_eq!(m.host_status, HostStatus::Unreachable);
    assert!(m.config.is_none());
    assert!(m.incomplete_config.is_some());
    // Legacy `process_group`, read from incomplete_config.
    assert_eq!(m.process_group(), Some("worker"));
    assert!(m.events.is_empty() && m.checks.is_empty());
    assert_eq!(
        m.full_image_ref().as_deref(),
        Some("registry.fly.io/my-app@sha256:abc")
    );
}

#[test]
fn list_with_odd_shapes_decodes() {
    let list: Vec<Machine> = serde_json::from_str(&fixture("machines_list.json")).unwrap();
    assert_eq!(list.len(), 6);
    assert_eq!(list[0].state, MachineState::Stopped);
    assert_eq!(
        list[0].full_image_ref().as_deref(),
        Some("registry.fly.io/my-app:v1")
    );
    assert_eq!(list[1].id, "a5c5de9ce64ca12", "15-character ids are fine");
    assert!(list[1].cordoned);
    assert_eq!(list[2].state, MachineState::Replacing);
    assert_eq!(list[2].process_group(), Some("worker"));
    // No host_status but a config: ok. No process group metadata: None.
    assert_eq!(list[3].host_status, HostStatus::Ok);
    assert_eq!(list[3].process_group(), None);
    assert_eq!(list[4].state, MachineState::Unknown("hibernating".into()));
    assert_eq!(list[4].state.as_str(), "hibernating");
    assert_eq!(list[4].host_status, HostStatus::Unknown);
    assert_eq!(
        list[4].lease.as_ref().unwrap().expires_at,
        Some(1_708_569_778)
    );
    // Nulls everywhere, no config, no host_status: decoded as not ok.
    assert_eq!(list[5].state, MachineState::Unknown(String::new()));
    assert_eq!(list[5].host_status, HostStatus::Unknown);
    assert_eq!(list[5].region, "");
    assert_eq!(list[5].full_image_ref(), None);
}

#[test]
fn every_documented_state_round_trips() {
    for s in [
        "created",
        "creating",
        "starting",
        "started",
        "stopping",
        "stopped",
        "restarting",
        "suspending",
        "suspended",
        "updating",
        "replacing",
        "replaced",
        "migrated",
        "destroying",
        "destroyed",
        "failed",
        "launch_failed",
    ] {
        let st = MachineState::parse(s);
        assert!(!matches!(st, MachineState::Unknown(_)), "{s}");
        assert_eq!(serde_json::to_value(&st).unwrap(), json!(s));
        let back: MachineState = serde_json::from_value(json!(s)).unwrap();
        assert_eq!(back, st);
    }
}

#[test]
fn full_image_ref_rules() {
    let m = |v: Value| -> Machine { serde_json::from_value(json!({ "image_ref": v })).unwrap() };
    let r = |v: Value| m(v).full_image_ref();
    assert_eq!(
        r(json!({"registry":"r","repository":"p","tag":"t","digest":"d"})).as_deref(),
        Some("r/p:t@d")
    );
    assert_eq!(
        r(json!({"registry":"r","repository":"p","digest":"d"})).as_deref(),
        Some("r/p@d")
    );
    assert_eq!(
        r(json!({"registry":"r","repository":"p","tag":"t"})).as_deref(),
        Some("r/p:t")
    );
    assert_eq!(
        r(json!({"registry":"r","repository":"p"})).as_deref(),
        Some("r/p")
    );
    assert_eq!(
        r(json!({"repository":"p","tag":"t"})).as_deref(),
        Some("p:t")
    );
    assert_eq!(r(json!({"registry":"r"})), None);
    assert_eq!(r(Value::Null), None);
}

#[test]
fn process_group_prefers_fly_process_group_and_ignores_empty() {
    let cfg = |meta: Value| -> MachineConfig {
        serde_json::from_value(json!({ "metadata": meta })).unwrap()
    };
    assert_eq!(
        cfg(json!({"fly_process_group":"web","process_group":"old"})).process_group(),
        Some("web")
    );
    assert_eq!(
        cfg(json!({"fly_process_group":"","process_group":"old"})).process_group(),
        Some("old")
    );
    assert_eq!(cfg(json!({"fly_process_group":""})).process_group(), None);
    assert_eq!(cfg(json!({"fly_process_group":7})).process_group(), None);
    assert_eq!(cfg(Value::Null).process_group(), None);
    let m: Machine = serde_json::from_value(json!({
        "config": {"metadata": {"fly_process_group": "a"}},
        "incomplete_config": {"metadata": {"fly_process_group": "b"}}
    }))
    .unwrap();
    assert_eq!(
        m.process_group(),
        Some("a"),
        "config wins over incomplete_config"
    );
}

#[test]
fn set_metadata_creates_or_replaces() {
    let mut c = MachineConfig::with_image("i");
    c.set_metadata("fly_process_group", "app");
    assert_eq!(c.process_group(), Some("app"));
    let mut c: MachineConfig = serde_json::from_value(json!({"metadata": null})).unwrap();
    c.set_metadata("k", "v");
    assert_eq!(c.metadata_value("k"), Some("v"));
}

#[test]
fn host_status_alone() {
    let h: HostStatus = serde_json::from_value(json!("unreachable")).unwrap();
    assert_eq!(h, HostStatus::Unreachable);
    let h: HostStatus = serde_json::from_value(json!("degraded")).unwrap();
    assert_eq!(h, HostStatus::Other("degraded".into()));
    assert_eq!(serde_json::to_value(&h).unwrap(), json!("degraded"));
    let h: HostStatus = serde_json::from_value(Value::Null).unwrap();
    assert_eq!(h, HostStatus::Unknown);
}

//! Unit tests of the pure request builders.

use super::*;

#[test]
fn list_query_is_built_and_encoded() {
    let opts = ListMachinesOptions {
        include_deleted: true,
        region: Some("yyz".into()),
        states: vec![MachineState::Started, MachineState::Stopped],
        metadata: vec![("fly_process_group".into(), "app & web".into())],
        include_leases: true,
    };
    let r = list_machines("my-app", &opts).unwrap();
    assert_eq!(r.method, Method::GET);
    assert_eq!(
        r.path_and_query(),
        "/apps/my-app/machines?include_deleted=true&region=yyz&state=started,stopped\
         &metadata.fly_process_group=app%20%26%20web&include_leases=true"
    );
    assert_eq!(
        (r.action, r.rate_key.as_str(), r.retry),
        (Action::List, "my-app", RetryClass::Idempotent)
    );
    assert!(r.body.is_none() && r.nonce.is_none());
    assert_eq!(
        list_machines("a", &ListMachinesOptions::default())
            .unwrap()
            .path_and_query(),
        "/apps/a/machines"
    );
}

#[test]
fn path_segments_are_escaped_and_empty_names_rejected() {
    assert_eq!(
        get_machine("a/b", "x?y").unwrap().path,
        "/apps/a%2Fb/machines/x%3Fy"
    );
    let e = get_machine("", "m").unwrap_err();
    assert_eq!(e.to_string(), "invalid app name: must not be empty");
    let e = start_machine("a", " ", None).unwrap_err();
    assert_eq!(e.to_string(), "invalid machine id: must not be empty");
}

#[test]
fn create_sends_only_set_fields() {
    let mut config = MachineConfig::with_image("registry.fly.io/a:1");
    config.set_metadata("fly_process_group", "app");
    let req = CreateMachineRequest {
        config,
        region: Some("ord".into()),
        ..Default::default()
    };
    let r = create_machine("a", &req).unwrap();
    assert_eq!(
        (r.method.clone(), r.path.as_str()),
        (Method::POST, "/apps/a/machines")
    );
    assert_eq!(
        r.body.unwrap(),
        json!({"config":{"image":"registry.fly.io/a:1","metadata":{"fly_process_group":"app"}},"region":"ord"})
    );
    assert_eq!(
        (r.action, r.rate_key.as_str(), r.retry),
        (Action::Create, "a", RetryClass::Mutation)
    );
    let req = CreateMachineRequest {
        config: MachineConfig::with_image("i"),
        name: Some("n".into()),
        skip_launch: true,
        skip_service_registration: true,
        lease_ttl: Some(30),
        region: None,
    };
    assert_eq!(
        create_machine("a", &req).unwrap().body.unwrap(),
        json!({"config":{"image":"i"},"name":"n","skip_launch":true,"skip_service_registration":true,"lease_ttl":30})
    );
}

#[test]
fn start_suspend_have_no_body_and_optional_nonce() {
    let r = start_machine("a", "m1", Some("n1")).unwrap();
    assert_eq!(
        (r.method.clone(), r.path.as_str()),
        (Method::POST, "/apps/a/machines/m1/start")
    );
    assert_eq!(r.nonce.as_deref(), Some("n1"));
    assert!(r.body.is_none());
    assert_eq!((r.action, r.rate_key.as_str()), (Action::Start, "m1"));
    let r = suspend_machine("a", "m1", Some("")).unwrap();
    assert_eq!(r.path, "/apps/a/machines/m1/suspend");
    assert_eq!(r.nonce, None, "an empty nonce is not sent");
    assert!(r.body.is_none());
}

#[test]
fn stop_body_defaults_to_empty_object() {
    let r = stop_machine("a", "m1", &StopRequest::default(), None).unwrap();
    assert_eq!(r.path, "/apps/a/machines/m1/stop");
    assert_eq!(r.body.unwrap(), json!({}));
    let req = StopRequest {
        signal: Some("SIGTERM".into()),
        timeout: Some("10s".into()),
    };
    let r = stop_machine("a", "m1", &req, Some("n")).unwrap();
    assert_eq!(r.body.unwrap(), json!({"signal":"SIGTERM","timeout":"10s"}));
    assert_eq!(r.nonce.as_deref(), Some("n"));
}

#[test]
fn destroy_force_and_kill() {
    let r = destroy_machine("a", "m1", &DestroyOptions::default(), None).unwrap();
    assert_eq!(r.method, Method::DELETE);
    assert_eq!(r.path_and_query(), "/apps/a/machines/m1?force=true");
    let no_force = DestroyOptions {
        force: false,
        param: DestroyParam::Force,
    };
    assert_eq!(
        destroy_machine("a", "m1", &no_force, None)
            .unwrap()
            .path_and_query(),
        "/apps/a/machines/m1"
    );
    let kill = DestroyOptions {
        force: true,
        param: DestroyParam::Kill,
    };
    assert_eq!(
        destroy_machine("a", "m1", &kill, None)
            .unwrap()
            .path_and_query(),
        "/apps/a/machines/m1?kill=true"
    );
    let nokill = DestroyOptions {
        force: false,
        param: DestroyParam::Kill,
    };
    assert_eq!(
        destroy_machine("a", "m1", &nokill, None)
            .unwrap()
            .path_and_query(),
        "/apps/a/machines/m1?kill=false"
    );
}

#[test]
fn wait_query_and_timeout() {
    let opts = WaitOptions {
        states: vec![MachineState::Stopped, MachineState::Destroyed],
        timeout: Some(Duration::from_secs(600)),
        instance_id: Some("01HQ".into()),
        ..Default::default()
    };
    let r = wait_machine("a", "m1", &opts).unwrap();
    assert_eq!(
        r.path_and_query(),
        "/apps/a/machines/m1/wait?state=stopped,destroyed&timeout=60&instance_id=01HQ"
    );
    assert_eq!(r.min_timeout, Some(Duration::from_secs(65)));
    assert_eq!(r.retry, RetryClass::Idempotent);
    let opts = WaitOptions {
        timeout: Some(Duration::from_millis(10)),
        version: Some("01V".into()),
        from_event_id: Some("e1".into()),
        ..Default::default()
    };
    let r = wait_machine("a", "m1", &opts).unwrap();
    assert_eq!(
        r.path_and_query(),
        "/apps/a/machines/m1/wait?timeout=1&version=01V&from_event_id=e1"
    );
    assert_eq!(r.min_timeout, Some(Duration::from_secs(6)));
}

#[test]
fn lease_requests() {
    let req = LeaseRequest {
        ttl: 60,
        description: Some("autoscaler".into()),
    };
    let r = acquire_lease("a", "m1", &req, None).unwrap();
    assert_eq!(
        (r.method.clone(), r.path_and_query()),
        (Method::POST, "/apps/a/machines/m1/lease?ttl=60".to_owned())
    );
    assert_eq!(
        r.body.unwrap(),
        json!({"ttl":60,"description":"autoscaler"})
    );
    assert_eq!(r.retry, RetryClass::Mutation);
    let r = get_lease("a", "m1").unwrap();
    assert_eq!(
        (r.method.clone(), r.path.as_str()),
        (Method::GET, "/apps/a/machines/m1/lease")
    );
    let r = release_lease("a", "m1", "nonce1").unwrap();
    assert_eq!(r.method, Method::DELETE);
    assert_eq!(r.nonce.as_deref(), Some("nonce1"));
    assert!(r.body.is_none());
    assert!(release_lease("a", "m1", "").is_err());
}

#[test]
fn list_apps_and_graphql() {
    let r = list_apps("personal").unwrap();
    assert_eq!(r.path_and_query(), "/apps?org_slug=personal");
    assert_eq!(
        (r.action, r.rate_key.as_str()),
        (Action::ListApps, "personal")
    );
    let r = graphql(
        "query ($a: String!) {\n   app(name: $a)  { id }\n}",
        json!({"a":"x"}),
    );
    assert_eq!(r.api, ApiKind::GraphQl);
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.retry, RetryClass::Idempotent);
    assert_eq!(
        r.body.unwrap(),
        json!({"query":"query ($a: String!) { app(name: $a) { id } }","variables":{"a":"x"}})
    );
}

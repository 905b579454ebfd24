//! Wire-level tests against wiremock: method, path, query, headers and body of every request,
//! status mapping, retries and client-side rate limiting.

mod support;

use fas_flyapi::{
    Client, ClientConfig, CreateMachineRequest, DestroyOptions, DestroyParam, Error, LeaseRequest,
    ListMachinesOptions, MachineConfig, MachineState, RetryPolicy, StopRequest, WaitOptions,
};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "FlyV1 fm2_CANARYmacaroon,fm1r_second,oauthCANARY";
const FLAPS_AUTH: &str = "FlyV1 fm2_CANARYmacaroon,fm1r_second";
const GQL_AUTH: &str = "FlyV1 fm2_CANARYmacaroon,fm1r_second,oauthCANARY";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn config(server: &MockServer) -> ClientConfig {
    support::config_with_token(server, TOKEN)
}

fn client(server: &MockServer) -> Client {
    support::client_with_token(server, TOKEN)
}

/// Exact `Authorization` match (wiremock's `header` matcher splits values on commas).
fn auth_is(expected: &'static str) -> impl Fn(&Request) -> bool {
    move |req: &Request| {
        req.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(expected)
    }
}

fn no_content_type(req: &Request) -> bool {
    !req.headers.contains_key("content-type")
}

fn no_nonce(req: &Request) -> bool {
    !req.headers.contains_key("fly-machine-lease-nonce")
}

fn ua() -> String {
    format!("fly-autoscaler-rs/{}", env!("CARGO_PKG_VERSION"))
}

#[tokio::test]
async fn list_machines_request_and_decode() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/my-app/machines"))
        .and(query_param("state", "started,stopped"))
        .and(query_param("region", "ord"))
        .and(query_param("include_deleted", "true"))
        .and(query_param("include_leases", "true"))
        .and(query_param("metadata.fly_process_group", "app"))
        .and(auth_is(FLAPS_AUTH))
        .and(header("user-agent", ua().as_str()))
        .and(no_content_type)
        .and(no_nonce)
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("machines_list.json")))
        .expect(1)
        .mount(&server)
        .await;
    let opts = ListMachinesOptions {
        include_deleted: true,
        region: Some("ord".into()),
        states: vec![MachineState::Started, MachineState::Stopped],
        metadata: vec![("fly_process_group".into(), "app".into())],
        include_leases: true,
    };
    let list = client(&server)
        .list_machines("my-app", &opts)
        .await
        .unwrap();
    assert_eq!(list.len(), 6);
    assert_eq!(list[0].id, "e784079b449483");
    // The raw query string really has `state=started,stopped` (not fly-go's `?started`).
    let reqs = server.received_requests().await.unwrap();
    assert!(
        reqs[0]
            .url
            .query()
            .unwrap()
            .contains("state=started,stopped"),
        "{}",
        reqs[0].url
    );
}

#[tokio::test]
async fn default_list_has_no_query_and_null_body_is_empty() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines"))
        .respond_with(ResponseTemplate::new(200).set_body_string("null"))
        .mount(&server)
        .await;
    let list = client(&server)
        .list_machines("a", &ListMachinesOptions::default())
        .await
        .unwrap();
    assert!(list.is_empty());
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs[0].url.query(), None);
}

#[tokio::test]
async fn get_machine_ok_and_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines/3d8d413b29d089"))
        .and(auth_is(FLAPS_AUTH))
        .and(no_content_type)
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("machine_rich.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines/nope"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("fly-request-id", "01JNRQ9VVKJ7HZFMJWJB3M3RYN-yyz")
                .set_body_json(json!({"error": "machine not found"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let m = c.get_machine("a", "3d8d413b29d089").await.unwrap();
    assert_eq!(m.process_group(), Some("app"));
    let e = c.get_machine("a", "nope").await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert_eq!(e.request_id(), Some("01JNRQ9VVKJ7HZFMJWJB3M3RYN-yyz"));
    assert_eq!(
        e.to_string(),
        "not found (404): machine not found (fly-request-id 01JNRQ9VVKJ7HZFMJWJB3M3RYN-yyz)"
    );
}

#[tokio::test]
async fn create_sends_the_config_back_exactly() {
    let server = MockServer::start().await;
    let rich = fixture("machine_rich.json");
    let mut expected =
        json!({"config": rich["config"].clone(), "region": "iad", "skip_launch": true});
    expected["config"]["image"] = json!("registry.fly.io/my-app:t@sha256:d");
    Mock::given(method("POST"))
        .and(path("/v1/apps/my-app/machines"))
        .and(header("content-type", "application/json"))
        .and(auth_is(FLAPS_AUTH))
        .and(body_json(&expected))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("create_response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let mut config: MachineConfig = serde_json::from_value(rich["config"].clone()).unwrap();
    config.set_image("registry.fly.io/my-app:t@sha256:d");
    let req = CreateMachineRequest {
        config,
        region: Some("iad".into()),
        skip_launch: true,
        ..Default::default()
    };
    let m = client(&server)
        .create_machine("my-app", &req)
        .await
        .unwrap();
    assert_eq!(m.state, MachineState::Created);
    assert_eq!(m.nonce.as_deref(), Some("5c35f65c9f95"));
}

#[tokio::test]
async fn start_with_and_without_nonce() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/start"))
        .and(header("fly-machine-lease-nonce", "n1"))
        .and(no_content_type)
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("start_response.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m2/start"))
        .and(no_nonce)
        .and(no_content_type)
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status":"error","message":"boom"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m3/start"))
        .respond_with(ResponseTemplate::new(412).set_body_json(
            json!({"error":"failed_precondition: unable to start machine from current state: 'started'"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let r = c.start_machine("a", "m1", Some("n1")).await.unwrap();
    assert_eq!(r.previous_state, "stopped");
    let e = c.start_machine("a", "m2", None).await.unwrap_err();
    assert!(
        matches!(&e, Error::StartFailed { message } if message == "boom"),
        "{e:?}"
    );
    let e = c.start_machine("a", "m3", None).await.unwrap_err();
    assert!(matches!(e, Error::PreconditionFailed { .. }), "{e:?}");
}

#[tokio::test]
async fn stop_suspend_destroy() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/stop"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({})))
        .and(no_nonce)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m2/stop"))
        .and(body_json(json!({"signal":"SIGTERM","timeout":"10s"})))
        .and(header("fly-machine-lease-nonce", "n2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/suspend"))
        .and(no_content_type)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/a/machines/m1"))
        .and(query_param("force", "true"))
        .and(no_content_type)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/a/machines/m2"))
        .and(query_param("kill", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_string(""))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    c.stop_machine("a", "m1", &StopRequest::default(), None)
        .await
        .unwrap();
    let stop = StopRequest {
        signal: Some("SIGTERM".into()),
        timeout: Some("10s".into()),
    };
    c.stop_machine("a", "m2", &stop, Some("n2")).await.unwrap();
    c.suspend_machine("a", "m1", None).await.unwrap();
    c.destroy_machine("a", "m1", &DestroyOptions::default(), None)
        .await
        .unwrap();
    let kill = DestroyOptions {
        force: true,
        param: DestroyParam::Kill,
    };
    c.destroy_machine("a", "m2", &kill, None).await.unwrap();
}

#[tokio::test]
async fn wait_and_its_timeout_status() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines/m1/wait"))
        .and(query_param("state", "stopped"))
        .and(query_param("timeout", "30"))
        .and(query_param("instance_id", "01HQ"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok":true,"state":"stopped","version":"01HQ"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines/m2/wait"))
        .respond_with(
            ResponseTemplate::new(408)
                .set_body_json(json!({"error":"deadline_exceeded: timeout waiting"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let opts = WaitOptions {
        states: vec![MachineState::Stopped],
        timeout: Some(Duration::from_secs(30)),
        instance_id: Some("01HQ".into()),
        ..Default::default()
    };
    let w = c.wait_machine("a", "m1", &opts).await.unwrap();
    assert!(w.ok);
    assert_eq!(w.state.as_deref(), Some("stopped"));
    let e = c
        .wait_machine("a", "m2", &WaitOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(408));
}

#[tokio::test]
async fn leases() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/lease"))
        .and(query_param("ttl", "60"))
        .and(body_json(json!({"ttl": 60, "description": "fas"})))
        .and(header("content-type", "application/json"))
        .and(no_nonce)
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("lease_response.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m2/lease"))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            json!({"status":"error","message":"machine ID m2 lease currently held by deploy@fly.io"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines/m1/lease"))
        .and(no_content_type)
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("lease_response.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/a/machines/m1/lease"))
        .and(header("fly-machine-lease-nonce", "5c35f65c9f95"))
        .and(no_content_type)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status":"success","data":{"ok":true}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let req = LeaseRequest {
        ttl: 60,
        description: Some("fas".into()),
    };
    let lease = c.acquire_lease("a", "m1", &req, None).await.unwrap();
    assert_eq!(lease.nonce, "5c35f65c9f95");
    assert_eq!(lease.expires_at, Some(1_708_569_778));
    let e = c.acquire_lease("a", "m2", &req, None).await.unwrap_err();
    assert!(e.is_lease_held(), "{e:?}");
    assert_eq!(c.get_lease("a", "m1").await.unwrap().owner, "hello@fly.io");
    c.release_lease("a", "m1", &lease.nonce).await.unwrap();
}

#[tokio::test]
async fn list_apps_rest() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps"))
        .and(query_param("org_slug", "my-org"))
        .and(auth_is(FLAPS_AUTH))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_apps.json")))
        .expect(1)
        .mount(&server)
        .await;
    let apps = client(&server).list_apps("my-org").await.unwrap();
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0].organization.as_ref().unwrap().slug, "my-org");
    assert_eq!(apps[0].machine_count, Some(3));
}

#[tokio::test]
async fn current_release_query_shape_and_null() {
    let server = MockServer::start().await;
    let query = "query ($appName: String!) { app(name: $appName) { currentRelease: currentReleaseUnprocessed { \
                 id version description reason status imageRef stable user { id email name } createdAt } } }";
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(auth_is(GQL_AUTH))
        .and(header("content-type", "application/json; charset=utf-8"))
        .and(header("accept", "application/json; charset=utf-8"))
        .and(body_json(
            json!({"query": query, "variables": {"appName": "busy"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("graphql_release.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(
            json!({"variables": {"appName": "fresh"}}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixture("graphql_release_null.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(json!({"variables": {"appName": "ghost"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": null, "errors": [{"message": "Could not find App \"ghost\"", "path": ["app"]}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(
            json!({"variables": {"appName": "denied"}}),
        ))
        .respond_with(ResponseTemplate::new(403).set_body_string("forbidden"))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let r = c.current_release("busy").await.unwrap().unwrap();
    assert!(r.in_progress());
    assert_eq!(r.version, 12);
    assert_eq!(c.current_release("fresh").await.unwrap(), None);
    let e = c.current_release("ghost").await.unwrap_err();
    assert!(
        matches!(&e, Error::GraphQl { message } if message.contains("Could not find App")),
        "{e:?}"
    );
    let e = c.current_release("denied").await.unwrap_err();
    assert_eq!(e.status(), Some(403));
}

#[tokio::test]
async fn org_apps_pages_until_done() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(json!({"variables": {"slug": "my-org"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("graphql_org.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(
            json!({"variables": {"org": "org_abc123", "after": null}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("graphql_apps_page1.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(
            json!({"variables": {"org": "org_abc123", "after": "MjAw"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("graphql_apps_page2.json")))
        .expect(1)
        .mount(&server)
        .await;
    let apps = client(&server).org_apps("my-org").await.unwrap();
    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["queue-worker-1", "queue-worker-2", "web"]);
    assert_eq!(apps[2].current_release.as_ref().unwrap().status, "running");
    let reqs = server.received_requests().await.unwrap();
    let first: Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert!(
        first["query"]
            .as_str()
            .unwrap()
            .contains("apps(type: \"container\", first: 200")
    );
}

#[tokio::test]
async fn org_apps_page_cap() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(json!({"variables": {"slug": "big"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("graphql_org.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(
            json!({"variables": {"org": "org_abc123"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("graphql_apps_page1.json")))
        .expect(3)
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.max_graphql_pages = 3;
    let e = Client::new(cfg).unwrap().org_apps("big").await.unwrap_err();
    assert!(matches!(e, Error::TooManyPages { pages: 3, .. }), "{e:?}");
}

#[tokio::test]
async fn connect_errors_are_transport_errors() {
    // Bind then drop a listener to get a port with nothing behind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = ClientConfig::new("t");
    cfg.machines_base_url = format!("http://127.0.0.1:{port}");
    cfg.retry = RetryPolicy::none();
    let e = Client::new(cfg)
        .unwrap()
        .get_machine("a", "m")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { connect: true, .. }), "{e:?}");
}

#[tokio::test]
async fn token_never_shows_in_debug_display_or_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error":"Authenticate: token validation error"})),
        )
        .mount(&server)
        .await;
    let cfg = config(&server);
    assert!(!format!("{cfg:?}").contains("CANARY"));
    let c = Client::new(cfg).unwrap();
    assert!(!format!("{c:?}").contains("CANARY"), "{c:?}");
    let e = c
        .list_machines("a", &ListMachinesOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains("CANARY"), "{shown}");
    }
    // A token that cannot be a header value is refused without echoing it.
    let e = Client::new(ClientConfig::new("Bearer CANARY\u{7f}bad")).unwrap_err();
    assert!(
        !e.to_string().contains("CANARY") && !format!("{e:?}").contains("CANARY"),
        "{e}"
    );
    let e = Client::new(ClientConfig::new("FlyV1 ")).unwrap_err();
    assert!(matches!(e, Error::InvalidConfig { field: "token", .. }));
}

#[test]
fn internal_and_custom_base_urls_are_accepted() {
    let mut cfg = ClientConfig::new("t");
    cfg.machines_base_url = fas_flyapi::INTERNAL_MACHINES_BASE_URL.to_owned();
    assert!(Client::new(cfg.clone()).is_ok());
    cfg.machines_base_url = "not a url".to_owned();
    let e = Client::new(cfg).unwrap_err();
    assert!(e.to_string().contains("machines_base_url"), "{e}");
}

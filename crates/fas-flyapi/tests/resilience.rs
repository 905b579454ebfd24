//! Retries and client-side rate limiting against wiremock.

mod common;

use fas_flyapi::{
    Client, ClientConfig, CreateMachineRequest, Error, ListMachinesOptions, MachineConfig,
    MachineState, RateLimitPolicy, StopRequest,
};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn config(server: &MockServer) -> ClientConfig {
    common::config_with_token(server, "FlyV1 fm2_x")
}

fn client(server: &MockServer) -> Client {
    common::client_with_token(server, "FlyV1 fm2_x")
}

#[tokio::test]
async fn get_retries_429_then_succeeds_honouring_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines/m1"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(json!({"error":"resource_exhausted: rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines/m1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id":"m1","state":"started"})),
        )
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    let m = client(&server).get_machine("a", "m1").await.unwrap();
    assert_eq!(m.state, MachineState::Started);
}

#[tokio::test]
async fn retries_are_bounded_in_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .expect(4)
        .mount(&server)
        .await;
    let e = client(&server)
        .list_machines("a", &ListMachinesOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(
        e.message(),
        Some("request returned non-2xx status: 500: oops")
    );
}

#[tokio::test]
async fn retries_are_bounded_in_total_time() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines/m1"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .expect(1)
        .mount(&server)
        .await;
    // A Retry-After beyond the 5 s budget is not waited for.
    let e = client(&server).get_machine("a", "m1").await.unwrap_err();
    assert!(
        matches!(e, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(30)),
        "{e:?}"
    );
}

#[tokio::test]
async fn create_is_not_retried_after_ambiguous_failures() {
    for status in [502u16, 500, 408, 504] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/apps/a/machines"))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({"error": "upstream"})))
            .expect(1)
            .mount(&server)
            .await;
        let req = CreateMachineRequest {
            config: MachineConfig::with_image("img"),
            ..Default::default()
        };
        let e = client(&server).create_machine("a", &req).await.unwrap_err();
        assert_eq!(e.status(), Some(status));
        drop(server); // verifies expect(1)
    }
}

#[tokio::test]
async fn create_is_not_retried_after_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(800)))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.timeout = Duration::from_millis(200);
    let req = CreateMachineRequest {
        config: MachineConfig::with_image("img"),
        ..Default::default()
    };
    let e = Client::new(cfg)
        .unwrap()
        .create_machine("a", &req)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
}

#[tokio::test]
async fn mutations_are_retried_on_429_and_503() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("create_response.json")))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/stop"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/stop"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    let c = client(&server);
    let req = CreateMachineRequest {
        config: MachineConfig::with_image("img"),
        ..Default::default()
    };
    c.create_machine("a", &req).await.unwrap();
    c.stop_machine("a", "m1", &StopRequest::default(), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn start_is_not_retried_on_500() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/start"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server)
        .start_machine("a", "m1", None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
}

#[tokio::test]
async fn starts_of_one_machine_are_spaced_by_the_client_side_limit() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/start"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"previous_state":"stopped"})))
        .expect(5)
        .mount(&server)
        .await;
    let c = client(&server);
    let t0 = tokio::time::Instant::now();
    for _ in 0..5 {
        c.start_machine("a", "m1", None).await.unwrap();
    }
    // Burst of 3, then 1/s: the 4th and 5th wait about 1 s each.
    let elapsed = t0.elapsed();
    assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
}

#[tokio::test]
async fn limiter_can_be_disabled() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/start"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(6)
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.rate_limit = RateLimitPolicy {
        max_wait: Duration::ZERO,
        ..RateLimitPolicy::disabled()
    };
    let c = Client::new(cfg).unwrap();
    for _ in 0..6 {
        c.start_machine("a", "m1", None).await.unwrap();
    }
}

#[tokio::test]
async fn local_rate_limit_refuses_when_the_wait_is_too_long() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/stop"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(3)
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.rate_limit.max_wait = Duration::from_millis(100);
    let c = Client::new(cfg).unwrap();
    for _ in 0..3 {
        c.stop_machine("a", "m1", &StopRequest::default(), None)
            .await
            .unwrap();
    }
    let e = c
        .stop_machine("a", "m1", &StopRequest::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::LocalRateLimit { action: "stop", .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn retry_after_seconds_are_waited_for() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/suspend"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/suspend"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    let t0 = tokio::time::Instant::now();
    client(&server)
        .suspend_machine("a", "m1", None)
        .await
        .unwrap();
    // Without Retry-After the test policy's backoff is at most 20 ms.
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );
}

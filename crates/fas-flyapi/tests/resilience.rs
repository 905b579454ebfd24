//! Retries and client-side rate limiting against wiremock.

mod support;

use fas_flyapi::{
    Client, ClientConfig, CreateMachineRequest, DestroyOptions, Error, ListMachinesOptions,
    MachineConfig, MachineState, Rate, RateLimitPolicy, StopRequest, WaitOptions,
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
    support::config_with_token(server, "FlyV1 fm2_x")
}

fn client(server: &MockServer) -> Client {
    support::client_with_token(server, "FlyV1 fm2_x")
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

// The total budget (`RetryPolicy::max_total`) bounds the whole call: rate-limiter wait, every
// attempt and every backoff. These run in real time (wiremock answers from its own threads, so
// a paused tokio clock would fire the timeouts before the server could answer), with budgets
// of about a second and a slack for a loaded machine.

/// Scheduling slack allowed on top of a budget.
const SLACK: Duration = Duration::from_millis(250);

/// A client for `server` with the given total budget and per-attempt timeout.
fn budgeted(server: &MockServer, max_total: Duration, timeout: Duration) -> Client {
    let mut cfg = config(server);
    cfg.retry.max_total = max_total;
    cfg.timeout = timeout;
    Client::new(cfg).unwrap()
}

fn assert_within(elapsed: Duration, budget: Duration) {
    eprintln!("elapsed {elapsed:?}, budget {budget:?}");
    assert!(
        elapsed <= budget + SLACK,
        "the call took {elapsed:?}, budget {budget:?} + slack {SLACK:?}"
    );
}

#[tokio::test]
async fn a_slow_server_ends_a_retried_get_within_the_total_budget() {
    // Attempt 1 times out at 900 ms; the retry may only use the ~100 ms left (before the fix
    // it got a whole 900 ms timeout: about 1.8 s in all).
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines/m1"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let budget = Duration::from_secs(1);
    let c = budgeted(&server, budget, Duration::from_millis(900));
    let t0 = std::time::Instant::now();
    let e = c.get_machine("a", "m1").await.unwrap_err();
    let elapsed = t0.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert_within(elapsed, budget);
}

#[tokio::test]
async fn a_mutation_retried_after_a_slow_503_ends_within_the_total_budget() {
    // A 503 after 700 ms is retried (no side effect); the retry's timeout is cut to the
    // ~300 ms left, so the call ends at the budget instead of at ~1.4 s. (Retry-After is
    // honoured on 429 only; on a 503 the short computed backoff applies.)
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/stop"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "5")
                .set_delay(Duration::from_millis(700)),
        )
        .mount(&server)
        .await;
    let budget = Duration::from_secs(1);
    let c = budgeted(&server, budget, Duration::from_secs(2));
    let t0 = std::time::Instant::now();
    let e = c
        .stop_machine("a", "m1", &StopRequest::default(), None)
        .await
        .unwrap_err();
    let elapsed = t0.elapsed();
    assert!(
        matches!(e, Error::Timeout { timeout } if timeout < Duration::from_millis(400)),
        "{e:?}"
    );
    assert_within(elapsed, budget);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_retry_after_then_a_slow_attempt_ends_within_the_total_budget() {
    // Retry-After: 1 fits in the 1.5 s budget and is honoured; the attempt after it gets the
    // ~0.5 s left, not its 2 s timeout.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/start"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/start"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .with_priority(2)
        .mount(&server)
        .await;
    let budget = Duration::from_millis(1500);
    let c = budgeted(&server, budget, Duration::from_secs(2));
    let t0 = std::time::Instant::now();
    let e = c.start_machine("a", "m1", None).await.unwrap_err();
    let elapsed = t0.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(
        elapsed >= Duration::from_secs(1),
        "Retry-After honoured: {elapsed:?}"
    );
    assert_within(elapsed, budget);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_budget_left_returns_the_last_error_at_once() {
    // 429 after 600 ms with Retry-After: 1 while 400 ms are left: no sleep, the 429 returns.
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/a/machines/m1"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_delay(Duration::from_millis(600)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let budget = Duration::from_secs(1);
    let c = budgeted(&server, budget, Duration::from_secs(2));
    let t0 = std::time::Instant::now();
    let e = c
        .destroy_machine("a", "m1", &DestroyOptions::default(), None)
        .await
        .unwrap_err();
    let elapsed = t0.elapsed();
    assert!(
        matches!(e, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(1)),
        "{e:?}"
    );
    assert_within(elapsed, Duration::from_millis(600));
}

#[tokio::test]
async fn the_first_rate_limiter_wait_is_pacing_not_part_of_the_budget() {
    // One token per second per machine: the second stop waits about 1 s for its token, more
    // than the 600 ms budget, and is still sent: waiting one's turn is pacing (bounded by the
    // limiter's `max_wait`), the budget starts when the call may go out. Otherwise a tick's
    // creates, paced at Fly's 1/s, would be refused for waiting their turn.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/a/machines/m1/stop"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(2)
        .mount(&server)
        .await;
    let budget = Duration::from_millis(600);
    let mut cfg = config(&server);
    cfg.retry.max_total = budget;
    cfg.rate_limit.action = Rate::new(1.0, 1);
    let c = Client::new(cfg).unwrap();
    c.stop_machine("a", "m1", &StopRequest::default(), None)
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    c.stop_machine("a", "m1", &StopRequest::default(), None)
        .await
        .expect("paced, then sent");
    let elapsed = t0.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
}

#[tokio::test]
async fn a_wait_call_gets_its_whole_attempt_beyond_max_total() {
    // A wait asks for its server-side timeout plus 5 s; its budget stretches to that.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines/m1/wait"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true}))
                .set_delay(Duration::from_millis(800)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = budgeted(
        &server,
        Duration::from_millis(300),
        Duration::from_millis(200),
    );
    let opts = WaitOptions {
        timeout: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    c.wait_machine("a", "m1", &opts).await.unwrap();
}

#[test]
fn a_zero_total_budget_is_a_config_error() {
    let mut cfg = ClientConfig::new("FlyV1 fm2_x");
    cfg.retry.max_total = Duration::ZERO;
    let e = Client::new(cfg).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidConfig {
                field: "retry.max_total",
                ..
            }
        ),
        "{e:?}"
    );
}

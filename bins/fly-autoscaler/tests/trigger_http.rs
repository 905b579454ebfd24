//! `POST /trigger` over HTTP on the metrics listener, in-process: off without a token, 401 for a
//! wrong one, 404 naming an unknown app, 202 with the apps woken, Alertmanager payloads.

use std::sync::Arc;

use fly_autoscaler::telemetry::{self, Endpoints};
use fly_autoscaler::trigger::Triggers;
use metrics_exporter_prometheus::PrometheusBuilder;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "trigger-canary-7f3a";

/// Serves the endpoints with `token` for apps `a` and `b`; returns the address and the triggers.
async fn serve(token: Option<&str>) -> (std::net::SocketAddr, Arc<Triggers>, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let triggers = Arc::new(Triggers::new());
    triggers.set_known(&["a".to_owned(), "b".to_owned()]);
    let endpoints = Endpoints {
        metrics: PrometheusBuilder::new().build_recorder().handle(),
        triggers: triggers.clone(),
        trigger_token: fly_autoscaler::reload::SharedToken::new(token.map(SecretString::from)),
        reload: None,
        board: Arc::new(fly_autoscaler::status::StatusBoard::new()),
        stuck_after: std::time::Duration::from_secs(75),
        since: tokio::time::Instant::now(),
        coordinator: None,
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(telemetry::serve(listener, endpoints, shutdown.clone()));
    (addr, triggers, shutdown)
}

/// One HTTP/1.1 request; returns the status and the body.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = auth
        .map(|a| format!("authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} /trigger HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn without_a_configured_token_the_endpoint_does_not_exist() {
    let (addr, triggers, _stop) = serve(None).await;
    let (status, _) = request(addr, "POST", Some(&bearer(TOKEN)), r#"{"app":"a"}"#).await;
    assert_eq!(status, 404);
    assert!(triggers.take().is_empty());
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_and_wakes_nothing() {
    let (addr, triggers, _stop) = serve(Some(TOKEN)).await;
    for auth in [
        None,
        Some(bearer("nope")),
        Some(TOKEN.to_owned()),
        Some(bearer(&TOKEN[..5])),
    ] {
        let (status, body) = request(addr, "POST", auth.as_deref(), r#"{"app":"a"}"#).await;
        assert_eq!(status, 401, "{auth:?}");
        assert!(!body.contains(TOKEN), "the token never comes back: {body}");
    }
    assert!(triggers.take().is_empty());
}

#[tokio::test]
async fn the_right_token_wakes_the_app_and_answers_202() {
    let (addr, triggers, _stop) = serve(Some(TOKEN)).await;
    let (status, body) = request(addr, "POST", Some(&bearer(TOKEN)), r#"{"app":"a"}"#).await;
    assert_eq!(status, 202, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["woken"], serde_json::json!(["a"]));
    assert_eq!(triggers.take(), ["a".to_owned()].into());
    let (status, _) = request(addr, "GET", Some(&bearer(TOKEN)), "").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn an_unknown_app_is_404_naming_it() {
    let (addr, triggers, _stop) = serve(Some(TOKEN)).await;
    let (status, body) = request(addr, "POST", Some(&bearer(TOKEN)), r#"{"app":"ghost"}"#).await;
    assert_eq!(status, 404);
    assert!(body.contains("ghost"), "{body}");
    assert!(triggers.take().is_empty());
    let (status, body) = request(addr, "POST", Some(&bearer(TOKEN)), r#"{"nope":1}"#).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn alertmanager_payloads_wake_the_labelled_apps_or_all() {
    let (addr, triggers, _stop) = serve(Some(TOKEN)).await;
    let payload = r#"{"version":"4","groupKey":"{}:{alertname=\"QueueDeep\"}","status":"firing",
        "receiver":"fly-autoscaler","groupLabels":{"alertname":"QueueDeep"},"commonLabels":{},
        "commonAnnotations":{},"externalURL":"http://alertmanager:9093","truncatedAlerts":0,
        "alerts":[{"status":"firing","labels":{"alertname":"QueueDeep","app":"b"},
                   "annotations":{},"startsAt":"2026-11-30T10:00:00Z","endsAt":"0001-01-01T00:00:00Z",
                   "generatorURL":"http://prometheus:9090/graph","fingerprint":"c0ffee"},
                  {"status":"firing","labels":{"alertname":"QueueDeep","app":"ghost"}}]}"#;
    let (status, body) = request(addr, "POST", Some(&bearer(TOKEN)), payload).await;
    assert_eq!(status, 202, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["woken"], serde_json::json!(["b"]));
    assert_eq!(json["unknown"], serde_json::json!(["ghost"]));
    assert_eq!(triggers.take(), ["b".to_owned()].into());
    let all = r#"{"alerts":[{"status":"firing","labels":{"alertname":"QueueDeep"}}]}"#;
    let (status, _) = request(addr, "POST", Some(&bearer(TOKEN)), all).await;
    assert_eq!(status, 202);
    assert_eq!(triggers.take(), ["a".to_owned(), "b".to_owned()].into());
}

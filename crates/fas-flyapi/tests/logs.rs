//! The token never reaches tracing output (debug events on success, retry and error paths).

use fas_flyapi::{Client, ClientConfig, ListMachinesOptions, RetryPolicy};
use serde_json::json;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Writer<'a>(&'a mut String);

impl Visit for Writer<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        span.record(&mut Writer(&mut self.0.lock().unwrap()));
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        values.record(&mut Writer(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut s = self.0.lock().unwrap();
        s.push_str(event.metadata().target());
        s.push(' ');
        event.record(&mut Writer(&mut s));
        s.push('\n');
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn debug_events_never_contain_the_token() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/a/machines"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/b/machines"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "Authenticate: token validation error"})),
        )
        .mount(&server)
        .await;

    let mut cfg = ClientConfig::new("FlyV1 fm2_CANARYTOKEN,oauthCANARY");
    cfg.machines_base_url = server.uri();
    cfg.retry = RetryPolicy {
        initial_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    let c = Client::new(cfg).unwrap();
    c.list_machines("a", &ListMachinesOptions::default())
        .await
        .unwrap();
    c.list_machines("b", &ListMachinesOptions::default())
        .await
        .unwrap_err();

    let logs = capture.0.lock().unwrap().clone();
    assert!(logs.contains("fly api response"), "{logs}");
    assert!(logs.contains("retrying"), "{logs}");
    assert!(logs.contains("status=401"), "{logs}");
    assert!(!logs.contains("CANARY"), "{logs}");
}

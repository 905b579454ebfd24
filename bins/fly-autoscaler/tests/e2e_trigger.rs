//! `POST /trigger` end to end: the built `fly-autoscaler serve` with `FAS_TRIGGER_TOKEN`, the Fly API
//! simulator and a fake Prometheus. The interval is a minute, so only the trigger can explain a
//! second reconciliation within the test's wait.

mod support;

use std::io::{Read as _, Write as _};
use std::time::Duration;

use fas_flysim::MachineSpec;
use fas_testkit::free_port;
use support::{FakeProm, Fas, PromAnswer, add_machines, base_env, set, sim, wait_until};

const TOKEN: &str = "e2e-trigger-canary-91c2";

fn post_trigger(port: u16, token: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "POST /trigger HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_reconciles_at_once_with_fresh_metrics() {
    let sim = sim().await;
    add_machines(&sim, "web", 4, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(10.0)).await;
    let port = free_port();
    let mut env = base_env(&sim, &prom.url(), "web", port);
    set(&mut env, "FAS_INTERVAL", "60s");
    set(&mut env, "FAS_TRIGGER_TOKEN", TOKEN);
    let mut fas = Fas::spawn(&["serve"], &env);
    wait_until(&mut fas, "1 machine started", || {
        sim.count_in_state("web", "started") == 1
    })
    .await;

    // The queue grows; without a trigger nothing would happen for a minute.
    prom.set(PromAnswer::Value(30.0));
    let (status, _) = post_trigger(port, "wrong", r#"{"app":"web"}"#);
    assert_eq!(status, 401);
    let (status, body) = post_trigger(port, TOKEN, r#"{"app":"ghost"}"#);
    assert_eq!(status, 404, "{body}");
    let (status, body) = post_trigger(port, TOKEN, r#"{"app":"web"}"#);
    assert_eq!(status, 202, "{body}");
    assert!(body.contains(r#""woken":["web"]"#), "{body}");
    wait_until(&mut fas, "3 machines started", || {
        sim.count_in_state("web", "started") == 3
    })
    .await;

    let lines = fas.lines_with_message("reconcile");
    let triggers: Vec<_> = lines
        .iter()
        .map(|l| l["span"]["trigger"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(triggers, ["new", "trigger"], "{triggers:?}");
    assert!(
        !fas.stderr().contains(TOKEN),
        "the trigger token never reaches the logs"
    );
    fas.stop().await;
}

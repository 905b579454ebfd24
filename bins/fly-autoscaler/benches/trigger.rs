//! Reaction time of a push trigger: the metric changes, `POST /trigger` is sent at once, and the
//! clock stops when the first start call has reached the simulator. The serve loop, the metrics
//! listener with `/trigger`, the real Fly client and a real Prometheus collector (against a fake
//! Prometheus answering the current value) run in this process; the interval is a minute, so only
//! the trigger can explain the start.
//!
//! The critical path is one HTTP request to `/trigger`, a release check and a Prometheus query,
//! one machine list, then the start: about 3 × the Fly latency. Cases: 0 ms and 25 ms of latency
//! per simulator request. Run with `cargo bench -p fly-autoscaler --bench trigger` (`RUNS=n`,
//! default 20).

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fas_flysim::{MachineSpec, SimConfig, Simulator};
use fly_autoscaler::config::{self, Purpose, Sources};
use fly_autoscaler::telemetry::{self, Endpoints};
use fly_autoscaler::trigger::Triggers;
use fly_autoscaler::{cli, schedule};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-trigger-token";

#[allow(
    clippy::disallowed_methods,
    reason = "a bench binary takes its run count from RUNS, as documented above"
)]
fn runs() -> usize {
    std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(20)
}

/// A Prometheus answering `queue_depth` with the value in `value` (an f64's bits).
async fn fake_prometheus(value: Arc<AtomicU64>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(fly_autoscaler::http::serve(
        listener,
        CancellationToken::new(),
        move |_req| {
            let v = f64::from_bits(value.load(Ordering::SeqCst));
            let body = serde_json::json!({"status": "success", "data": {"resultType": "vector",
                "result": [{"metric": {}, "value": [1.0, v.to_string()]}]}})
            .to_string();
            std::future::ready(fly_autoscaler::http::response(
                hyper::StatusCode::OK,
                "application/json",
                body,
            ))
        },
    ));
    url
}

fn post_trigger(addr: std::net::SocketAddr) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let body = r#"{"app":"web"}"#;
    let req = format!(
        "POST /trigger HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// One measurement: from the metric change to the first start call at the simulator.
async fn once(latency_ms: u64) -> Duration {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = latency_ms;
    let sim = Simulator::start(cfg).await.expect("simulator");
    sim.add_machine("web", MachineSpec::new().state("started"));
    for _ in 0..4 {
        sim.add_machine("web", MachineSpec::new().state("stopped"));
    }
    let value = Arc::new(AtomicU64::new(1f64.to_bits()));
    let prom = fake_prometheus(value.clone()).await;
    let env = [
        ("FAS_APP_NAME", "web".to_owned()),
        ("FAS_API_TOKEN", sim.token().to_owned()),
        ("FLY_FLAPS_BASE_URL", sim.base_url()),
        ("FLY_API_BASE_URL", sim.base_url()),
        ("FAS_INTERVAL", "60s".to_owned()),
        ("FAS_TRIGGER_TOKEN", TOKEN.to_owned()),
        ("FAS_PROMETHEUS_ADDRESS", prom),
        ("FAS_PROMETHEUS_METRIC_NAME", "queue_depth".to_owned()),
        ("FAS_PROMETHEUS_QUERY", "queue_depth".to_owned()),
        ("FAS_STARTED_MACHINE_COUNT", "queue_depth".to_owned()),
    ];
    let env = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let config = config::load(&Sources { env, file: None }, Purpose::Serve).expect("config");
    let reconciler = Arc::new(cli::build_reconciler(config).expect("reconciler"));
    let triggers = Arc::new(Triggers::new());
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = PrometheusBuilder::new().build_recorder().handle();
    let endpoints = Endpoints::new(metrics, triggers.clone(), &reconciler);
    tokio::spawn(telemetry::serve(listener, endpoints, shutdown.clone()));
    let task = tokio::spawn(schedule::run_with(reconciler, triggers, shutdown.clone()));
    // The first tick (at start) settles: one started machine, nothing to do.
    tokio::time::sleep(Duration::from_millis(300 + 4 * latency_ms)).await;
    assert_eq!(sim.count_route("start"), 0);

    let t0 = Instant::now();
    value.store(3f64.to_bits(), Ordering::SeqCst);
    let status = tokio::task::spawn_blocking(move || post_trigger(addr))
        .await
        .unwrap();
    assert_eq!(status, 202);
    while sim.count_route("start") == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no start within 10 s"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = t0.elapsed();
    shutdown.cancel();
    let _ = task.await;
    sim.shutdown().await;
    elapsed
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = runs();
    println!("| Fly latency | runs | p50 | max |\n|---|---|---|---|");
    for latency in [0, 25] {
        let mut times = Vec::new();
        for _ in 0..runs {
            times.push(once(latency).await);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {latency} ms | {runs} | {:.1} ms | {:.1} ms |",
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1])
        );
    }
}

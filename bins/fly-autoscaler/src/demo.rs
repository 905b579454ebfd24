//! `fly-autoscaler demo`: the real `serve` loop, end to end over loopback HTTP, against the Fly
//! Machines API simulator and a synthetic `queue_depth` metric served Prometheus-style, with a load
//! curve that rises and falls. It prints the fleet once a second and ends by itself.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use fas_flysim::{MachineSpec, SimConfig, Simulator};
use http_body_util::Full;
use hyper::{Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::build_reconciler;
use crate::config::{self, Purpose, Sources};
use crate::http::response;
use crate::schedule;

const APP: &str = "demo-app";
/// Peak of the synthetic queue depth.
const PEAK: f64 = 200.0;

/// Queue depth when idle: enough for one started machine.
const BASE: f64 = 10.0;

/// The synthetic load at `elapsed` of a demo lasting `total`: BASE → PEAK → BASE, a half sine
/// with a plateau at the top.
pub fn load_at(elapsed: Duration, total: Duration) -> f64 {
    let x = (elapsed.as_secs_f64() / total.as_secs_f64().max(1.0)).clamp(0.0, 1.0);
    let shaped = ((PI * x).sin() * 1.3).min(1.0);
    (BASE + shaped * (PEAK - BASE)).round()
}

/// The Prometheus query API answer: one sample with the current synthetic value.
fn metric_response(started: tokio::time::Instant, total: Duration) -> Response<Full<Bytes>> {
    let value = load_at(started.elapsed(), total);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let body = serde_json::json!({
        "status": "success",
        "data": {"resultType": "vector", "result": [
            {"metric": {"app": APP}, "value": [now, value.to_string()]}
        ]}
    });
    response(StatusCode::OK, "application/json", body.to_string())
}

/// The environment the demo's `serve` loop is configured with (exactly what a user would set).
pub fn demo_env(sim: &Simulator, prom: &str) -> BTreeMap<String, String> {
    [
        ("FAS_APP_NAME", APP.to_owned()),
        ("FAS_API_TOKEN", sim.token().to_owned()),
        ("FLY_FLAPS_BASE_URL", sim.base_url()),
        ("FLY_API_BASE_URL", sim.base_url()),
        ("FAS_PROMETHEUS_ADDRESS", prom.to_owned()),
        ("FAS_PROMETHEUS_METRIC_NAME", "queue_depth".to_owned()),
        (
            "FAS_PROMETHEUS_QUERY",
            "sum(queue_depth{app=\"${APP_NAME}\"})".to_owned(),
        ),
        (
            "FAS_MIN_CREATED_MACHINE_COUNT",
            "ceil(queue_depth / 25)".to_owned(),
        ),
        (
            "FAS_MAX_CREATED_MACHINE_COUNT",
            "ceil(queue_depth / 25) + 2".to_owned(),
        ),
        (
            "FAS_STARTED_MACHINE_COUNT",
            "ceil(queue_depth / 25)".to_owned(),
        ),
        ("FAS_REGIONS", "iad,ord,ams".to_owned()),
        ("FAS_INTERVAL", "1s".to_owned()),
        ("FAS_TIMEOUT", "5s".to_owned()),
        ("FAS_METRICS_ADDRESS", "127.0.0.1:0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Runs the demo for `duration` (Go duration syntax) or until Ctrl-C.
pub async fn run(duration: &str) -> anyhow::Result<()> {
    let total = config::parse_go_duration(duration)
        .map_err(|e| anyhow::anyhow!("--duration {duration:?}: {e}"))?;
    let sim = Simulator::start(SimConfig::default())
        .await
        .context("starting the Fly API simulator")?;
    sim.add_app("demo-org", APP);
    sim.add_machine(
        APP,
        MachineSpec::new()
            .region("iad")
            .image("registry.fly.io/demo-app:deployment-01@sha256:5f2d1c"),
    );

    let prom = TcpListener::bind("127.0.0.1:0").await?;
    let prom_url = format!("http://{}", prom.local_addr()?);
    let started = tokio::time::Instant::now();
    let metric_stop = CancellationToken::new();
    let metric = tokio::spawn(crate::http::serve(prom, metric_stop.clone(), move |_req| {
        std::future::ready(metric_response(started, total))
    }));

    let sources = Sources {
        env: demo_env(&sim, &prom_url),
        file: None,
    };
    let config = config::load(&sources, Purpose::Serve).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::cli::init_logging_at(config::LogFormat::Text, "warn");
    println!(
        "demo: app {APP} on a local Fly API simulator at {}, queue_depth served at {prom_url}",
        sim.base_url()
    );
    println!(
        "demo: created = ceil(queue_depth / 25) .. +2, started = ceil(queue_depth / 25); interval 1s; \
         running for {total:?} (Ctrl-C to stop)\n"
    );
    let reconciler = Arc::new(build_reconciler(config)?);
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(schedule::run(reconciler, shutdown.clone()));

    let mut view = tokio::time::interval(Duration::from_secs(1));
    let end = started + total;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = tokio::time::sleep_until(end) => break,
            _ = view.tick() => print_fleet(&sim, started.elapsed(), load_at(started.elapsed(), total)),
        }
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), loop_task).await;
    metric_stop.cancel();
    let _ = metric.await;
    let requests = sim.request_log();
    let rate_limited = requests.iter().filter(|r| r.status == 429).count();
    println!(
        "\ndemo: done. {} API requests, {rate_limited} rate-limited, peak started machines {}",
        requests.len(),
        sim.peak_started(APP)
    );
    Ok(())
}

fn print_fleet(sim: &Simulator, elapsed: Duration, load: f64) {
    let machines = sim.machines(APP);
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for m in &machines {
        *by_state.entry(m.state.clone()).or_default() += 1;
    }
    let bar: String = machines
        .iter()
        .map(|m| match m.state.as_str() {
            "started" => '█',
            "starting" | "created" => '▓',
            "stopping" | "destroying" => '▒',
            "stopped" | "suspended" => '░',
            _ => '·',
        })
        .collect();
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "{:>4}s  queue_depth {:>4}  target started {:>2}  |{bar:<12}| {}",
        elapsed.as_secs(),
        load,
        (load / 25.0).ceil(),
        states.join(", ")
    );
}

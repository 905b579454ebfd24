//! A fleet in one process: `fly-autoscaler serve` (the release binary, as a child process) in
//! wildcard mode over 5 000 apps × 3 started machines, nothing to scale, against the in-process
//! simulator with 50 ms latency per request and Fly's rate limits on, and a fake Prometheus
//! answering one grouped query (`sum by (app) (queue_depth)`, `group-by: app`).
//!
//! Measured after a warm-up, over `WINDOWS` (default 4) windows of one interval (15 s): the apps
//! reconciled in each window (5 000 = a full pass within the interval), Fly requests per app tick
//! by route, Prometheus queries per pass, and the child's own CPU (utime + stime from
//! `/proc/PID/stat`) and RSS (`VmRSS`, `VmHWM`). The simulator and the fake Prometheus run in
//! this process, so the child's numbers are the autoscaler's alone.
//!
//! Run with `cargo bench -p fly-autoscaler --bench fleet` (`APPS=n`, `CONCURRENCY=n`,
//! `WINDOWS=n` change the defaults: 5 000, 64, 4). `WRAP="heaptrack -o /tmp/fleet"` (any command
//! prefix, split on spaces, given `PATH`) runs the child under it: CPU and RSS are still read
//! from the `fly-autoscaler` process itself, which is killed at the end (SIGKILL), so heaptrack's
//! "leaked" memory is the live heap at steady state.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fas_flysim::{MachineSpec, SimConfig, Simulator};

const INTERVAL: Duration = Duration::from_secs(15);
const LATENCY_MS: u64 = 50;

#[allow(
    clippy::disallowed_methods,
    reason = "a bench binary reads its knobs from the environment, as documented above"
)]
fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

#[allow(
    clippy::disallowed_methods,
    reason = "a bench binary reads its knobs from the environment, as documented above"
)]
/// The `WRAP` command prefix, and the `PATH` the wrapper needs (none without a wrapper).
fn wrap() -> (Vec<String>, Option<std::ffi::OsString>) {
    let wrap: Vec<String> = std::env::var("WRAP")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let path = std::env::var_os("PATH").filter(|_| !wrap.is_empty());
    (wrap, path)
}

/// `pid` itself or its first descendant named `fly-autoscaler` (the child under a `WRAP`
/// command), waiting for it to appear.
fn autoscaler_pid(pid: u32) -> u32 {
    let name = |p: u32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
    let parent = |p: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        rest.split_whitespace()
            .nth(1)
            .and_then(|f| f.parse::<u32>().ok())
    };
    for _ in 0..100 {
        let procs: Vec<u32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        for &p in &procs {
            if !name(p).starts_with("fly-autoscaler") {
                continue;
            }
            let mut q = Some(p);
            while let Some(x) = q.filter(|&x| x > 1) {
                if x == pid {
                    return p;
                }
                q = parent(x);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    pid
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the state (index 0).
    (ticks(11) + ticks(12)) / 100.0
}

/// `VmRSS` and `VmHWM` of `pid`, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A Prometheus answering every query with `queue_depth` = 3 for each app, grouped by `app`.
async fn fake_prometheus(apps: Arc<Vec<String>>, queries: Arc<AtomicU64>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let body: bytes::Bytes = {
        let result: Vec<serde_json::Value> = apps
            .iter()
            .map(|a| serde_json::json!({"metric": {"app": a}, "value": [1.0, "3"]}))
            .collect();
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}})
            .to_string()
            .into()
    };
    tokio::spawn(fly_autoscaler::http::serve(
        listener,
        tokio_util::sync::CancellationToken::new(),
        move |_req| {
            queries.fetch_add(1, Ordering::Relaxed);
            let body = body.clone();
            async move {
                fly_autoscaler::http::response(hyper::StatusCode::OK, "application/json", body)
            }
        },
    ));
    url
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n_apps = knob("APPS", 5_000);
    let concurrency = knob("CONCURRENCY", 64);
    let windows = knob("WINDOWS", 4);

    let mut cfg = SimConfig::default();
    cfg.faults.latency_ms = LATENCY_MS;
    let sim = Simulator::start(cfg).await.expect("simulator");
    let apps: Vec<String> = (0..n_apps).map(|i| format!("fleet-{i:05}")).collect();
    sim.add_org("bench");
    for app in &apps {
        sim.add_app("bench", app);
        for _ in 0..3 {
            sim.add_machine(app, MachineSpec::new().state("started"));
        }
    }
    let queries = Arc::new(AtomicU64::new(0));
    let prom = fake_prometheus(Arc::new(apps.clone()), queries.clone()).await;

    let metrics_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (wrap, path) = wrap();
    let mut command = match wrap.split_first() {
        None => Command::new(env!("CARGO_BIN_EXE_fly-autoscaler")),
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(env!("CARGO_BIN_EXE_fly-autoscaler"));
            c
        }
    };
    let mut child = command
        .arg("serve")
        .env_clear()
        .envs([
            ("FAS_APP_NAME", "fleet-*".to_owned()),
            ("FAS_ORG", "bench".to_owned()),
            ("FAS_API_TOKEN", sim.token().to_owned()),
            ("FLY_FLAPS_BASE_URL", sim.base_url()),
            ("FLY_API_BASE_URL", sim.base_url()),
            ("FAS_INTERVAL", "15s".to_owned()),
            ("FAS_CONCURRENCY", concurrency.to_string()),
            ("FAS_METRICS_ADDRESS", format!("127.0.0.1:{metrics_port}")),
            ("FAS_PROMETHEUS_ADDRESS", prom),
            ("FAS_PROMETHEUS_METRIC_NAME", "queue_depth".to_owned()),
            (
                "FAS_PROMETHEUS_QUERY",
                "sum by (app) (queue_depth)".to_owned(),
            ),
            ("FAS_PROMETHEUS_GROUP_BY", "app".to_owned()),
            ("FAS_STARTED_MACHINE_COUNT", "queue_depth".to_owned()),
        ])
        .envs(path.map(|p| ("PATH", p)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fly-autoscaler (cargo bench builds it)");
    let pid = autoscaler_pid(child.id());
    println!(
        "fleet: {n_apps} apps x 3 machines, {LATENCY_MS} ms latency, rate limits on, concurrency {concurrency}, interval 15 s"
    );

    // Warm-up: the first pass (phases spread over one interval) and the first app-list reads.
    tokio::time::sleep(INTERVAL + Duration::from_secs(5)).await;
    sim.clear_log();
    let q0 = queries.load(Ordering::Relaxed);
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let mut routes: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_window = Vec::new();
    for w in 0..windows {
        tokio::time::sleep(INTERVAL).await;
        let log = sim.request_log();
        sim.clear_log();
        let listed: BTreeSet<&str> = log
            .iter()
            .filter(|r| r.route == "list")
            .filter_map(|r| r.app.as_deref())
            .collect();
        for r in &log {
            *routes.entry(r.route.clone()).or_default() += 1;
        }
        let (rss, _) = memory_mib(pid);
        println!(
            "window {w}: {} of {n_apps} apps reconciled, {} requests, RSS {rss:.1} MiB",
            listed.len(),
            log.len()
        );
        per_window.push(listed.len());
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let (rss, hwm) = memory_mib(pid);
    let prom_queries = queries.load(Ordering::Relaxed) - q0;
    let ticks = routes.get("list").copied().unwrap_or(0).max(1) as f64;
    let total: u64 = routes.values().sum();
    println!("\n| measure | value |\n|---|---|");
    println!(
        "| apps reconciled per 15 s window (min) | {} of {n_apps} |",
        per_window.iter().min().unwrap_or(&0)
    );
    println!("| app ticks in {wall:.0} s | {ticks:.0} |");
    println!(
        "| Fly requests per app tick | {:.3} |",
        total as f64 / ticks
    );
    for (route, n) in &routes {
        println!("| ... `{route}` per app tick | {:.3} |", *n as f64 / ticks);
    }
    println!(
        "| Prometheus queries per pass (15 s) | {:.2} |",
        prom_queries as f64 / (wall / INTERVAL.as_secs_f64())
    );
    println!(
        "| CPU (autoscaler process) | {:.1} % of one core |",
        100.0 * cpu / wall
    );
    println!("| RSS at the end / peak | {rss:.1} MiB / {hwm:.1} MiB |");
    if pid != child.id() {
        // Under a wrapper: kill the autoscaler and let the wrapper finish (heaptrack writes
        // its file after the profiled process is gone).
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    } else {
        let _ = child.kill();
    }
    let _ = child.wait();
}

//! Time to start 100 stopped machines in one tick (list + plan + execute until every start call
//! returned) against the in-process simulator with 100 ms latency per request and the documented
//! rate limits on, through the real client (default retry and rate-limit policy) and `FlyOps`.
//!
//! Three executor policies: (a) concurrency ≥ the number of actions, (b) the default, (c)
//! sequential. The physical limit is one list call plus one round of start calls: 2 × latency.
//!
//! Run with `cargo bench -p fly-autoscaler --bench executor` (`RUNS=n` changes the run count).

use std::time::{Duration, Instant, SystemTime};

use fas_flyapi::{Client, ClientConfig, ListMachinesOptions};
use fas_flysim::{MachineSpec, SimConfig, Simulator};
use fas_reconcile::{Bounds, ExecPolicy, Policy, RegionCursor, Targets};
use fly_autoscaler::ops::{FlyOps, to_domain};

const APP: &str = "web";
const MACHINES: usize = 100;
const LATENCY_MS: u64 = 100;

/// One run on a fresh simulator and client: the time of list + plan + execute.
async fn run(exec: ExecPolicy) -> Duration {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = LATENCY_MS;
    assert!(cfg.rate_limits.enabled);
    let sim = Simulator::start(cfg).await.expect("simulator starts");
    sim.add_app("acme", APP);
    for _ in 0..MACHINES {
        sim.add_machine(APP, MachineSpec::new().state("stopped"));
    }
    let mut cc = ClientConfig::new(sim.token());
    cc.machines_base_url = sim.base_url();
    cc.graphql_base_url = sim.base_url();
    let client = Client::new(cc).expect("client");
    let targets = Targets {
        created: None,
        started: Some(Bounds::exactly(MACHINES as u32)),
    };

    let t0 = Instant::now();
    let listed = client
        .list_machines(APP, &ListMachinesOptions::default())
        .await
        .expect("list");
    let machines: Vec<_> = listed.iter().map(to_domain).collect();
    let plan = fas_reconcile::plan(
        &machines,
        &targets,
        &Policy::default(),
        RegionCursor(0),
        SystemTime::now(),
    );
    let ops = FlyOps::new(&client, APP, &listed);
    let report = fas_reconcile::execute(&ops, &plan, &exec, std::future::pending()).await;
    let elapsed = t0.elapsed();

    assert_eq!(report.stats().start.ok as usize, MACHINES, "{report:?}");
    assert_eq!(sim.rate_limited_count(), 0, "no 429");
    assert_eq!(sim.count_in_state(APP, "started"), MACHINES);
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn measure(name: &str, exec: ExecPolicy, runs: usize) -> Duration {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(run(exec).await);
    }
    let all: Vec<String> = times.iter().map(|d| format!("{:.0}", ms(*d))).collect();
    let m = median(times);
    println!(
        "{name:<34} concurrency {:>3}: median {:>8.1} ms  (runs: {} ms)",
        exec.concurrency,
        ms(m),
        all.join(", ")
    );
    m
}

#[allow(
    clippy::disallowed_methods,
    reason = "a bench binary takes its run count from RUNS, as documented in docs/planner.md"
)]
fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let limit = Duration::from_millis(2 * LATENCY_MS);
        println!(
            "start {MACHINES} stopped machines, {LATENCY_MS} ms latency, rate limits on, {runs} runs each; \
             physical limit (list + one round of starts) = {:.0} ms",
            ms(limit)
        );
        // Warm-up (allocations, first connections): not reported.
        let _ = run(ExecPolicy { concurrency: MACHINES }).await;
        let a = measure("(a) concurrency >= actions", ExecPolicy { concurrency: MACHINES }, runs).await;
        let b = measure("(b) default (ExecPolicy::default)", ExecPolicy::default(), runs).await;
        let c = measure("(c) sequential", ExecPolicy::sequential(), runs.min(3)).await;
        let ra = a.as_secs_f64() / limit.as_secs_f64();
        let rb = c.as_secs_f64() / b.as_secs_f64();
        println!(
            "(a) / physical limit = {ra:.2}x (goal <= 1.5x: {})",
            if ra <= 1.5 { "met" } else { "MISSED" }
        );
        println!(
            "(c) / (b) = {rb:.1}x (goal >= 20x: {})",
            if rb >= 20.0 { "met" } else { "MISSED" }
        );
        println!("(c) / (a) = {:.1}x", c.as_secs_f64() / a.as_secs_f64());
        // Which default concurrency would meet the 20x goal: the time is about
        // latency x (1 + ceil(100 / concurrency)).
        println!("sweep (what the default would need):");
        for concurrency in [25, 32, 34, 50, 64] {
            let m = measure("    ", ExecPolicy { concurrency }, runs.min(3)).await;
            println!("    (c) / this = {:.1}x", c.as_secs_f64() / m.as_secs_f64());
        }
    });
}

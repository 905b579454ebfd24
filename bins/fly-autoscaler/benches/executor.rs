//! Scale-up at the physical limit: the time from a tick's list call to the last start call
//! answered, for 100 and 1 000 stopped machines, against the in-process simulator with 100 ms
//! latency per request and Fly's rate limits on, through the real client (default retry,
//! rate-limit and connection policy) and `FlyOps`. Boot is excluded: a start call answers
//! before its machine has booted.
//!
//! The physical limit is one list plus one round of starts: 2 × latency. Each case runs on a
//! fresh simulator and client; the table gives p50 and max over the runs, the connections the
//! simulator accepted during the measured tick, and those a second tick (stopping every machine
//! with the same client) had to open on top: the pool's reuse across ticks.
//!
//! Cases: plain HTTP/1.1 (as `http://_api.internal:4280`) and TLS with ALPN, where the client
//! picks HTTP/2 (as `https://api.machines.dev` may offer); the default executor policy; the
//! sequential mode at 100 machines (enough for the speed-up: it takes 100 round trips); and
//! HTTP/2 over one connection for the burst (`http2_connections = 1`), to show why the client
//! spreads a burst over several (the simulator's server caps a connection at hyper's default of
//! 200 streams).
//!
//! Run with `cargo bench -p fly-autoscaler --bench executor` (`RUNS=n` changes the run count,
//! default 5; `CASE=text` runs only the cases whose label, e.g. `HTTP/2 1000`, contains it).
//! Both ends of every connection live in this process: 1 000 HTTP/1.1 calls in flight need
//! about 2 100 file descriptors, checked against the soft limit at start.

use std::time::{Duration, Instant, SystemTime};

use fas_flyapi::{Client, ClientConfig, ListMachinesOptions};
use fas_flysim::{MachineSpec, SimConfig, Simulator};
use fas_reconcile::{Bounds, ExecPolicy, Policy, RegionCursor, Targets};
use fly_autoscaler::ops::{FlyOps, to_domain};

const APP: &str = "web";
const LATENCY_MS: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// Plain HTTP: HTTP/1.1, one connection per call in flight.
    Http1,
    /// TLS offering `h2` and `http/1.1` through ALPN: the client picks HTTP/2.
    Http2,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    transport: Transport,
    machines: usize,
    exec: ExecPolicy,
    /// `ClientConfig::http2_connections`; `None` keeps the default.
    http2_connections: Option<usize>,
}

struct Run {
    /// List call to the last start answered.
    elapsed: Duration,
    list: Duration,
    act: Duration,
    /// CPU time of the process during the measured tick.
    cpu: Option<Duration>,
    connections: u64,
    h2: u64,
    second_tick: Duration,
    second_tick_connections: u64,
}

/// Starts a simulator with `n` stopped machines and a client for it.
async fn setup(case: &Case) -> (Simulator, Client) {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = LATENCY_MS;
    assert!(cfg.rate_limits.enabled);
    let sim = match case.transport {
        Transport::Http1 => Simulator::start(cfg).await,
        Transport::Http2 => Simulator::start_tls(cfg).await,
    }
    .expect("simulator starts");
    sim.add_app("acme", APP);
    for _ in 0..case.machines {
        sim.add_machine(APP, MachineSpec::new().state("stopped"));
    }
    let mut cc = ClientConfig::new(sim.token());
    cc.machines_base_url = sim.base_url();
    cc.graphql_base_url = sim.base_url();
    if let Some(der) = sim.tls_certificate_der() {
        cc.tls_root_certificates_der = vec![der.to_vec()];
    }
    if let Some(n) = case.http2_connections {
        cc.http2_connections = n;
    }
    let client = Client::new(cc).expect("client");
    (sim, client)
}

/// What one tick did and how long its steps took.
struct Tick {
    report: fas_reconcile::Report,
    /// The list call, decoded.
    list: Duration,
    /// From the list's answer to every call of the plan answered (plan + execute).
    act: Duration,
}

/// One tick: list, plan, execute; returns when every call of the plan has answered.
async fn tick(client: &Client, started: usize, exec: &ExecPolicy) -> Tick {
    let targets = Targets {
        created: None,
        started: Some(Bounds::exactly(started as u32)),
    };
    let t0 = Instant::now();
    let listed = client
        .list_machines(APP, &ListMachinesOptions::default())
        .await
        .expect("list");
    let list = t0.elapsed();
    let machines: Vec<_> = listed.iter().map(to_domain).collect();
    let plan = fas_reconcile::plan(
        &machines,
        &targets,
        &Policy::default(),
        RegionCursor(0),
        SystemTime::now(),
    );
    let ops = FlyOps::new(client, APP, &listed);
    let report = fas_reconcile::execute(&ops, &plan, exec, std::future::pending()).await;
    Tick {
        report,
        list,
        act: t0.elapsed() - list,
    }
}

async fn run(case: &Case) -> Run {
    let (sim, client) = setup(case).await;
    let n = case.machines;

    let cpu0 = process_cpu();
    let t = tick(&client, n, &case.exec).await;
    let cpu = process_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    assert_eq!(t.report.stats().start.ok as usize, n, "{:?}", t.report);
    assert_eq!(sim.count_in_state(APP, "started"), n);
    let first = sim.connections();

    // The next tick stops every machine with the same client, reusing the pooled connections
    // (skipped for the sequential mode, which would take another 100 round trips).
    let (second_tick, second) = if case.exec.concurrency > 1 {
        let t2 = tick(&client, 0, &case.exec).await;
        assert_eq!(t2.report.stats().stop.ok as usize, n, "{:?}", t2.report);
        (t2.list + t2.act, sim.connections())
    } else {
        (Duration::ZERO, first)
    };

    assert_eq!(sim.rate_limited_count(), 0, "no 429");
    if case.transport == Transport::Http2 {
        assert_eq!(first.tls_http1, 0, "the client chose HTTP/2");
    }
    Run {
        elapsed: t.list + t.act,
        list: t.list,
        act: t.act,
        cpu,
        connections: first.accepted,
        h2: first.tls_h2,
        second_tick,
        second_tick_connections: second.accepted - first.accepted,
    }
}

/// CPU time used by this process so far (user + system, both ends of every call: the client
/// and the simulator), from `/proc/self/stat` in clock ticks of 10 ms; `None` elsewhere.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median of `v` (the upper one for an even count).
fn p50<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn max<T: PartialOrd + Copy>(v: &[T]) -> T {
    v.iter()
        .copied()
        .fold(v[0], |m, x| if x > m { x } else { m })
}

/// Ratios of one case's times to the physical limit, p50 and max over the runs.
struct Summary {
    /// To the configured limit: 2 × latency.
    nominal: (f64, f64),
    /// To the measured list call (its payload grows with the machines) plus one latency.
    measured: (f64, f64),
    p50: Duration,
}

async fn measure(case: &Case, runs: usize) -> Summary {
    let mut results = Vec::with_capacity(runs);
    for _ in 0..runs {
        results.push(run(case).await);
    }
    let latency = Duration::from_millis(LATENCY_MS);
    let nominal: Vec<f64> = results
        .iter()
        .map(|r| r.elapsed.as_secs_f64() / (2 * latency).as_secs_f64())
        .collect();
    let measured: Vec<f64> = results
        .iter()
        .map(|r| r.elapsed.as_secs_f64() / (r.list + latency).as_secs_f64())
        .collect();
    let times: Vec<Duration> = results.iter().map(|r| r.elapsed).collect();
    let s = Summary {
        nominal: (p50(nominal.clone()), max(&nominal)),
        measured: (p50(measured.clone()), max(&measured)),
        p50: p50(times.clone()),
    };
    let join = |f: &dyn Fn(&Run) -> String| results.iter().map(f).collect::<Vec<_>>().join("/");
    println!(
        "{} {}: p50 {:.1} ms, max {:.1} ms; x (2 x latency): p50 {:.2}, max {:.2}; \
         x (list + latency): p50 {:.2}, max {:.2}",
        case.name,
        case.machines,
        ms(s.p50),
        ms(max(&times)),
        s.nominal.0,
        s.nominal.1,
        s.measured.0,
        s.measured.1,
    );
    println!(
        "    p50 list {:.1} ms, plan + calls {:.1} ms; CPU of the tick (client + simulator) {} ms; \
         connections {} (HTTP/2: {}); second tick p50 {:.1} ms, new connections {}; runs {} ms",
        ms(p50(results.iter().map(|r| r.list).collect())),
        ms(p50(results.iter().map(|r| r.act).collect())),
        join(&|r| r.cpu.map_or("?".to_owned(), |c| format!("{:.0}", ms(c)))),
        join(&|r| r.connections.to_string()),
        join(&|r| r.h2.to_string()),
        ms(p50(results.iter().map(|r| r.second_tick).collect())),
        join(&|r| r.second_tick_connections.to_string()),
        join(&|r| format!("{:.0}", ms(r.elapsed))),
    );
    s
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` elsewhere.
fn open_files_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    soft.parse().ok()
}

#[allow(
    clippy::disallowed_methods,
    reason = "a bench binary takes its run count from RUNS and a case filter from CASE, as \
              documented in docs/planner.md"
)]
fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    // `CASE=...` runs only the cases whose label ("HTTP/2 1000", ...) contains it.
    let only = std::env::var("CASE").ok();
    let needed = 2_100;
    match open_files_soft_limit() {
        Some(n) if n < needed => {
            eprintln!(
                "the soft limit on open files is {n}; the 1 000-machine HTTP/1.1 case needs about \
                 {needed} (both ends of 1 000 connections): raise it with `ulimit -n {needed}`"
            );
            std::process::exit(2);
        }
        Some(n) => println!("open files soft limit: {n} (needs about {needed})"),
        None => println!("open files soft limit unknown (needs about {needed})"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let default = ExecPolicy::default();
    let case = |name, transport, machines, exec, http2_connections| Case {
        name,
        transport,
        machines,
        exec,
        http2_connections,
    };
    rt.block_on(async {
        println!(
            "scale-up of stopped machines, {LATENCY_MS} ms latency per request, rate limits on, \
             {runs} runs each, executor concurrency {}; physical limit 2 x latency = {} ms, or \
             the measured list + latency",
            default.concurrency,
            2 * LATENCY_MS
        );
        // Warm-up (allocations, TLS set-up): not reported.
        let _ = run(&case("warm-up", Transport::Http2, 100, default, None)).await;

        let (h1, h2, seq) = (Transport::Http1, Transport::Http2, ExecPolicy::sequential());
        let cases = [
            (case("HTTP/1.1", h1, 100, default, None), Some(1.2)),
            (case("HTTP/1.1", h1, 1_000, default, None), Some(1.5)),
            (case("HTTP/2", h2, 100, default, None), Some(1.2)),
            (case("HTTP/2", h2, 1_000, default, None), Some(1.5)),
            (
                case("HTTP/2, one connection", h2, 1_000, default, Some(1)),
                None,
            ),
            (case("HTTP/1.1 sequential", h1, 100, seq, None), None),
        ];
        let mut at_100 = Vec::new();
        let mut sequential = None;
        let mut verdicts = Vec::new();
        for (c, goal) in &cases {
            let label = format!("{} {}", c.name, c.machines);
            if only.as_deref().is_some_and(|o| !label.contains(o)) {
                continue;
            }
            let s = measure(c, runs).await;
            if c.exec.concurrency == 1 {
                sequential = Some(s.p50);
            } else if c.machines == 100 {
                at_100.push((c.name, s.p50));
            }
            if let Some(bound) = goal {
                let verdict = |(p, m): (f64, f64)| {
                    if m <= *bound {
                        "met"
                    } else if p <= *bound {
                        "met at p50, not at max"
                    } else {
                        "missed"
                    }
                };
                verdicts.push(format!(
                    "{label} (goal <= {bound} x): x (2 x latency) p50 {:.2} max {:.2}: {}; \
                     x (list + latency) p50 {:.2} max {:.2}: {}",
                    s.nominal.0,
                    s.nominal.1,
                    verdict(s.nominal),
                    s.measured.0,
                    s.measured.1,
                    verdict(s.measured),
                ));
            }
        }
        for v in verdicts {
            println!("{v}");
        }
        if let Some(seq) = sequential {
            for (name, p) in at_100 {
                let speedup = seq.as_secs_f64() / p.as_secs_f64();
                let verdict = if speedup >= 20.0 { "met" } else { "missed" };
                println!(
                    "sequential / default at 100 machines ({name}): {speedup:.1} x \
                     (goal >= 20 x: {verdict})"
                );
            }
        }
    });
}

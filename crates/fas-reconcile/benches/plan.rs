//! Measures `plan()` on large fleets and the executor's own overhead (no-op `MachineOps`).
//! Run: `cargo bench -p fas-reconcile --bench plan`.

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use fas_reconcile::{
    Bounds, ExecPolicy, HostStatus, Machine, MachineOps, MachineState, OpError, Policy,
    RegionCursor, Targets, execute, plan,
};

struct Noop;

#[async_trait::async_trait]
impl MachineOps for Noop {
    async fn create(&self, _: &str, _: &str, _: bool) -> Result<String, OpError> {
        Ok(String::new())
    }
    async fn start(&self, _: &str) -> Result<(), OpError> {
        Ok(())
    }
    async fn stop(&self, _: &str) -> Result<(), OpError> {
        Ok(())
    }
    async fn suspend(&self, _: &str) -> Result<(), OpError> {
        Ok(())
    }
    async fn destroy(&self, _: &str) -> Result<(), OpError> {
        Ok(())
    }
}

fn fleet(n: usize) -> Vec<Machine> {
    let states = [
        "started",
        "stopped",
        "suspended",
        "starting",
        "stopping",
        "created",
        "failed",
    ];
    (0..n)
        .map(|i| Machine {
            id: format!(
                "{:014x}",
                (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 8
            ),
            state: MachineState::parse(states[i % states.len()]),
            region: ["iad", "ams", "syd"][i % 3].to_owned(),
            process_group: Some(if i % 10 == 0 { "worker" } else { "app" }.to_owned()),
            host: if i % 50 == 0 {
                HostStatus::Unreachable
            } else {
                HostStatus::Ok
            },
            has_config: i % 17 != 0,
            created_at: Some(format!("2024-01-01T00:{:02}:{:02}Z", (i / 60) % 60, i % 60)),
        })
        .collect()
}

fn main() {
    let policy = Policy::default();
    for n in [10usize, 100, 1_000, 10_000] {
        let machines = fleet(n);
        // A start plan: min started above the started count, so every candidate is considered.
        let targets = Targets {
            created: None,
            started: Some(Bounds::exactly(n as u32)),
        };
        let iters = (200_000 / n).max(20);
        let t = Instant::now();
        for _ in 0..iters {
            black_box(plan(
                black_box(&machines),
                &targets,
                &policy,
                RegionCursor(0),
                SystemTime::UNIX_EPOCH,
            ));
        }
        let per = t.elapsed() / iters as u32;
        println!("plan: {n:>6} machines: {per:?} per plan ({iters} iterations)");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let machines = fleet(10_000);
    let targets = Targets {
        created: None,
        started: Some(Bounds::exactly(10_000)),
    };
    let p = plan(
        &machines,
        &targets,
        &policy,
        RegionCursor(0),
        SystemTime::UNIX_EPOCH,
    );
    for concurrency in [1usize, 16, 64] {
        let exec = ExecPolicy { concurrency };
        let t = Instant::now();
        let report = rt.block_on(execute(&Noop, &p, &exec, std::future::pending()));
        let el = t.elapsed();
        println!(
            "execute: {} no-op actions, concurrency {concurrency}: {el:?} ({:?} per action)",
            report.outcomes.len(),
            el / report.outcomes.len().max(1) as u32
        );
    }
}

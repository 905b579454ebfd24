//! Failover between real `fly-autoscaler serve` processes coordinated through a real PostgreSQL:
//! the process holding the app's lock is killed with SIGKILL (no shutdown code runs; the kernel
//! closes its socket, so the server ends its session and releases the lock at once), and another
//! process takes the app over and acts. The times are printed; the bound asserted is loose.

mod support;

use std::time::{Duration, Instant};

use fas_flysim::MachineSpec;
use fas_testkit::{PgServer, free_port};
use support::{FakeProm, Fas, PromAnswer, add_machines, base_env, http_get, set};

const PROCS: usize = 3;
/// The goal for a failover (owner killed → another acts).
const GOAL: Duration = Duration::from_secs(10);

/// The `replica` object of a process's `/status` (None when it does not answer).
fn replica(port: u16) -> Option<serde_json::Value> {
    let (status, body) = http_get(port, "/status")?;
    if status != 200 {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(json["replica"].clone())
}

fn owns_web(port: u16) -> bool {
    replica(port).is_some_and(|r| r["owned"] == serde_json::json!(["web"]))
}

/// 3 processes, one app (single-app mode: a leader election): exactly one owns it; SIGKILL it
/// while the metric asks for more machines; another owns the app and scales it within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_owner_hands_the_app_to_another_process() {
    let pg = PgServer::start().await;
    let sim = support::sim().await;
    add_machines(&sim, "web", 5, &MachineSpec::new().state("stopped"));
    // ceil(20 / 10) = 2 started.
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let mut procs: Vec<(Fas, u16)> = (0..PROCS)
        .map(|_| {
            let port = free_port();
            let mut env = base_env(&sim, &prom.url(), "web", port);
            set(&mut env, "FAS_POSTGRES_URL", &pg.url());
            (Fas::spawn(&["serve"], &env), port)
        })
        .collect();
    // Steady state: every process confirmed and counting all replicas, one owner, 2 started.
    let start = Instant::now();
    let holder = loop {
        for (fas, _) in &mut procs {
            fas.assert_running();
        }
        let all_in = procs.iter().all(|(_, port)| {
            replica(*port).is_some_and(|r| {
                r["confirmed"] == true && r["replicas"].as_u64() == Some(PROCS as u64)
            })
        });
        let owners: Vec<usize> = (0..PROCS).filter(|&i| owns_web(procs[i].1)).collect();
        assert!(owners.len() <= 1, "web owned by processes {owners:?}");
        if all_in && owners.len() == 1 && sim.count_in_state("web", "started") == 2 {
            break owners[0];
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no steady state after 30 s: owners {owners:?}, started {}",
            sim.count_in_state("web", "started")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "steady state after {:?}: process {holder} owns web",
        start.elapsed()
    );

    // SIGKILL the owner, and the metric asks for 4 started.
    procs[holder].0.signal("KILL");
    let t_kill = Instant::now();
    prom.set(PromAnswer::Value(40.0));
    let status = procs[holder].0.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), None, "killed by a signal: {status}");
    let mut owned_after = None;
    let acted_after = loop {
        let owners: Vec<usize> = (0..PROCS)
            .filter(|&i| i != holder && owns_web(procs[i].1))
            .collect();
        assert!(owners.len() <= 1, "web owned by processes {owners:?}");
        if owned_after.is_none() && owners.len() == 1 {
            owned_after = Some((owners[0], t_kill.elapsed()));
        }
        if sim.count_in_state("web", "started") == 4 {
            break t_kill.elapsed();
        }
        assert!(
            t_kill.elapsed() < GOAL + Duration::from_secs(5),
            "no failover within {:?} of the SIGKILL: owners {owners:?}, started {}",
            GOAL + Duration::from_secs(5),
            sim.count_in_state("web", "started")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The owner is sampled before the machines in each round: one was seen by the time they changed.
    let (new_owner, owned_after) = owned_after.expect("an owner was seen");
    eprintln!(
        "SIGKILL of process {holder}: process {new_owner} owned web after {owned_after:?} \
         (/status polled every 50 ms), the machines changed after {acted_after:?} (goal {GOAL:?})"
    );
    assert!(acted_after <= GOAL, "failover took {acted_after:?}");
    for (i, (fas, _)) in procs.iter_mut().enumerate() {
        if i != holder {
            fas.stop().await;
        }
    }
    drop(pg);
}

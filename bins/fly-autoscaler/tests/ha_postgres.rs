//! Several replicas coordinated through a real PostgreSQL (throwaway cluster, `fas-testkit`),
//! in-process against the Fly simulator (the cluster of `support/ha.rs`): each replica is a
//! `Reconciler` + loop with its own `Coordinator` and its own recording Fly seam, so every
//! mutating call is attributed to the replica that made it and checked against that replica's
//! lock at the moment it was sent.
//!
//! Covered elsewhere: a replica partitioned from PostgreSQL but not from Fly (a TCP proxy cut
//! silently) in `ha_partition.rs`; failover after a real SIGKILL of a `serve` process in
//! `ha_failover_process.rs`; the per-app state kept in PostgreSQL (scale-down window across a
//! restart of every replica) in `ha_state.rs`.

#[path = "support/ha.rs"]
mod ha;
mod support;

use std::time::Duration;

use fas_flysim::MachineSpec;
use fas_testkit::PgServer;
use fly_autoscaler::coord::CoordPolicy;
use ha::{Act, Cluster};
use tokio::time::Instant;

/// The acceptance bar: 3 replicas sharing 30 wildcard apps.
const APPS: usize = 30;
const REPLICAS: usize = 3;

async fn cluster(load: f64) -> Cluster {
    ha::cluster(APPS, REPLICAS, load).await
}

/// 3 replicas, 30 wildcard apps, a load that moves: each app has at most one owner at every
/// sample, the apps are spread within the slack, every app converges, and every mutating call
/// was made by the app's owner under a confirmed lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_the_apps_and_each_app_has_one_actor() {
    let c = cluster(2.0).await;
    let took = c
        .until(
            "every app owned",
            Duration::from_secs(15),
            Cluster::all_owned,
        )
        .await;
    eprintln!("all {APPS} apps owned after {took:?}");
    // Spread within the slack: each replica at most ⌈30/3⌉ + 1.
    c.until("spread", Duration::from_secs(10), |c| {
        c.owned_counts()
            .iter()
            .all(|&n| n <= APPS.div_ceil(REPLICAS) + 1)
            && c.all_owned()
    })
    .await;
    c.until("converged to 2", Duration::from_secs(15), |c| {
        c.converged(2)
    })
    .await;
    c.load.set(4.0);
    c.until("converged to 4", Duration::from_secs(15), |c| {
        c.converged(4)
    })
    .await;
    c.load.set(1.0);
    c.until("converged to 1", Duration::from_secs(15), |c| {
        c.converged(1)
    })
    .await;
    c.watch(Duration::from_secs(1)).await;
    // Overhead in steady state: transactions per second of the whole cluster (each coordination
    // query is one; a tick makes none), measured over 4 s while the apps tick every second.
    let (client, conn) = tokio_postgres::connect(&c.pg.url(), tokio_postgres::NoTls)
        .await
        .expect("test connection");
    let conn = tokio::spawn(conn);
    let commits = || async {
        let row = client
            .query_one(
                "select xact_commit from pg_stat_database where datname = current_database()",
                &[],
            )
            .await
            .expect("pg_stat_database");
        row.get::<_, i64>(0)
    };
    let before = commits().await;
    let ticks_before = c.sim.count_route("list");
    c.watch(Duration::from_secs(4)).await;
    // Statistics are flushed by each backend at most once per second: wait for the last flush.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = commits().await;
    let ticks = c.sim.count_route("list") - ticks_before;
    eprintln!(
        "steady state: {} transactions in ~5 s for {REPLICAS} replicas ({} ticks of {APPS} apps); \
         including this test's 2 reads",
        after - before,
        ticks
    );
    drop(client);
    conn.abort();
    let counts = c.owned_counts();
    eprintln!("owned per replica: {counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), APPS);
    assert!(
        counts.iter().all(|&n| n <= APPS.div_ceil(REPLICAS) + 1),
        "{counts:?}"
    );
    assert_eq!(c.sim.count_in_state("other", "started"), 0);
    // A fourth replica joins: the others release down to the new share (⌈30/4⌉ = 8) and it
    // takes its part.
    let mut c = c;
    c.add_replica();
    let took = c
        .until("the newcomer owns apps", Duration::from_secs(10), |c| {
            c.all_owned() && c.owned_counts()[REPLICAS] >= 2
        })
        .await;
    c.load.set(2.0);
    c.until(
        "converged to 2 on 4 replicas",
        Duration::from_secs(15),
        |c| c.converged(2),
    )
    .await;
    let counts = c.owned_counts();
    eprintln!("a fourth replica joined: owns apps after {took:?}; owned per replica: {counts:?}");
    assert_eq!(counts.iter().sum::<usize>(), APPS);
    assert!(
        counts.iter().all(|&n| n <= APPS.div_ceil(REPLICAS + 1) + 1),
        "{counts:?}"
    );
    c.check_acts();
    c.shutdown().await;
}

/// One replica stops (its session closes): the others take its apps over. Reports the
/// failover time (goal ≤ 10 s with the default knobs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_replica_s_apps_are_taken_over() {
    let c = cluster(2.0).await;
    c.until(
        "every app owned",
        Duration::from_secs(15),
        Cluster::all_owned,
    )
    .await;
    c.until("converged to 2", Duration::from_secs(15), |c| {
        c.converged(2)
    })
    .await;
    let victim = 0;
    let mut its_apps = c.replicas[victim].coord.owned();
    if its_apps.is_empty() {
        its_apps = c.replicas[1].coord.owned();
    }
    assert!(!its_apps.is_empty());
    let victim = (0..REPLICAS)
        .find(|&r| c.replicas[r].coord.may_act(&its_apps[0]))
        .unwrap();
    c.replicas[victim].loop_stop.cancel();
    c.replicas[victim].coord_stop.cancel();
    let t0 = Instant::now();
    let failover = c
        .until("failover", Duration::from_secs(10), |c| {
            its_apps
                .iter()
                .all(|a| (0..REPLICAS).any(|r| r != victim && c.replicas[r].coord.may_act(a)))
        })
        .await;
    // The new owners act: the load moves and the victim's apps follow.
    c.load.set(3.0);
    c.until("converged to 3", Duration::from_secs(15), |c| {
        c.converged(3)
    })
    .await;
    eprintln!(
        "failover: the {} apps of replica {victim} owned by another after {failover:?}; all converged after {:?}",
        its_apps.len(),
        t0.elapsed()
    );
    let counts = c.owned_counts();
    assert_eq!(counts[victim], 0);
    assert_eq!(counts.iter().sum::<usize>(), APPS, "{counts:?}");
    c.check_acts();
    let late: Vec<Act> = c
        .acts
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.replica == victim && a.at > t0)
        .cloned()
        .collect();
    assert!(late.is_empty(), "the stopped replica acted: {late:?}");
    c.shutdown().await;
}

/// PostgreSQL stops for 20 s: every replica stops acting within the fail-closed bound
/// (heartbeat + query timeout), no mutating call is made without a confirmed lock, and all
/// resume once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_database_nobody_acts_and_all_resume_after() {
    let c = cluster(2.0).await;
    c.until(
        "every app owned",
        Duration::from_secs(15),
        Cluster::all_owned,
    )
    .await;
    c.until("converged to 2", Duration::from_secs(15), |c| {
        c.converged(2)
    })
    .await;
    let bound = CoordPolicy::default().confirmation_ttl();
    c.pg.kill().await;
    let t0 = Instant::now();
    let stopped = c
        .until("nobody acts", bound, |c| {
            c.owners().values().all(|w| w.is_empty())
        })
        .await;
    eprintln!(
        "without the database: every replica stopped acting after {stopped:?} (bound {bound:?})"
    );
    // The load moves while the database is down: nothing may happen.
    c.load.set(4.0);
    let outage = Duration::from_secs(20);
    tokio::time::sleep(outage.saturating_sub(t0.elapsed())).await;
    let during: Vec<Act> = c
        .acts
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.at > t0)
        .cloned()
        .collect();
    assert!(during.is_empty(), "acted without the database: {during:?}");
    assert!(c.converged(2), "nothing changed during the outage");
    c.pg.start_again().await;
    let back = Instant::now();
    c.until("owned again", Duration::from_secs(15), Cluster::all_owned)
        .await;
    c.until("converged to 4", Duration::from_secs(15), |c| {
        c.converged(4)
    })
    .await;
    eprintln!(
        "after the database returned: converged after {:?}",
        back.elapsed()
    );
    c.check_acts();
    c.shutdown().await;
}

/// A hung database (every server process frozen: connections open, no answer): the
/// confirmation query times out and every replica stops acting within heartbeat + query
/// timeout; nobody acts while it hangs; all resume once it answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_database_stops_every_replica_within_the_bound() {
    let c = cluster(2.0).await;
    c.until(
        "every app owned",
        Duration::from_secs(15),
        Cluster::all_owned,
    )
    .await;
    c.until("converged to 2", Duration::from_secs(15), |c| {
        c.converged(2)
    })
    .await;
    let bound = CoordPolicy::default().confirmation_ttl();
    c.pg.pause();
    let t0 = Instant::now();
    let stopped = c
        .until("nobody acts", bound + Duration::from_millis(200), |c| {
            c.owners().values().all(|w| w.is_empty())
        })
        .await;
    eprintln!("hung database: every replica stopped acting after {stopped:?} (bound {bound:?})");
    c.load.set(3.0);
    tokio::time::sleep(Duration::from_secs(6)).await;
    // A call sent before the bound under a still-confirmed lock is allowed; none after it.
    let late: Vec<Act> = c
        .acts
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.at > t0 + bound)
        .cloned()
        .collect();
    assert!(late.is_empty(), "acted while the database hung: {late:?}");
    c.pg.resume();
    let back = Instant::now();
    c.until("converged to 3", Duration::from_secs(20), |c| {
        c.converged(3)
    })
    .await;
    eprintln!(
        "after the database answered again: converged after {:?}",
        back.elapsed()
    );
    c.check_acts();
    c.shutdown().await;
}

/// The built binary with `FAS_POSTGRES_URL`: it scales its app under the lock, `/status` shows
/// its replica id and owned apps, `/metrics` the coordination metrics, and the URL's password
/// never appears in its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_postgres_url_owns_its_app_and_never_shows_the_password() {
    use support::{FakeProm, Fas, PromAnswer, add_machines, base_env, http_get, set, wait_until};
    const CANARY: &str = "pg-canary-91c3";
    let pg = PgServer::start().await;
    let sim = support::sim().await;
    add_machines(&sim, "web", 3, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let port = fas_testkit::free_port();
    let mut env = base_env(&sim, &prom.url(), "web", port);
    // Trust authentication ignores the password: it is only a canary here.
    let url = pg.url().replace("fas@", &format!("fas:{CANARY}@"));
    set(&mut env, "FAS_POSTGRES_URL", &url);
    let mut fas = Fas::spawn(&["serve"], &env);
    wait_until(&mut fas, "2 machines started", || {
        sim.count_in_state("web", "started") == 2
    })
    .await;
    let (status, body) = http_get(port, "/status").expect("/status");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let replica = &json["replica"];
    assert_eq!(replica["owned"], serde_json::json!(["web"]), "{replica}");
    assert_eq!(replica["confirmed"], true);
    assert!(replica["id"].as_str().is_some_and(|id| !id.is_empty()));
    let id = replica["id"].as_str().unwrap().to_owned();
    assert_eq!(replica["holders"]["web"], id.as_str(), "{replica}");
    let (_, page) = http_get(port, "/").expect("/");
    assert!(page.contains("held here"), "{page}");
    assert!(
        page.contains(&format!("Replica <code>{id}</code>")),
        "{page}"
    );
    let (_, metrics) = http_get(port, "/metrics").expect("/metrics");
    assert!(metrics.contains("fas_owned_apps 1"), "{metrics}");
    assert!(
        metrics.contains("fas_lock_acquisitions_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("fas_lock_losses_total 0"), "{metrics}");
    fas.stop().await;
    let out = format!("{}{}{body}{metrics}", fas.stdout(), fas.stderr());
    assert!(!out.contains(CANARY), "the password leaked: {out}");
    assert!(out.contains("coordination through PostgreSQL on"), "{out}");
}

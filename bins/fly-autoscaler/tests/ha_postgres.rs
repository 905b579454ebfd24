//! Several replicas coordinated through a real PostgreSQL (throwaway cluster, `fas-testkit`),
//! in-process against the Fly simulator: each replica is a `Reconciler` + loop with its own
//! `Coordinator` and its own recording Fly seam, so every mutating call is attributed to the
//! replica that made it and checked against that replica's lock at the moment it was sent.
//!
//! Not covered here (need state persistence or more time): a replica partitioned from
//! PostgreSQL but not from Fly (TCP proxy), and continuity of the scale-down window across a
//! restart of every replica.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fas_flyapi::{Machine, Release};
use fas_flysim::{MachineSpec, SimConfig, Simulator};
use fas_reconcile::{MachineOps, OpError};
use fas_testkit::PgServer;
use fly_autoscaler::coord::{CoordPolicy, Coordinator};
use fly_autoscaler::fly::{AppInfo, Fly};
use fly_autoscaler::{cli, schedule, tick::Reconciler};
use secrecy::SecretString;
use support::fake_fly::SetCollector;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const APPS: usize = 12;
const REPLICAS: usize = 3;

/// One mutating call as a replica made it.
#[derive(Debug, Clone)]
struct Act {
    replica: usize,
    app: String,
    at: Instant,
    /// When the call returned.
    end: Instant,
    /// Whether the replica's coordinator allowed acting on the app when the call was sent.
    allowed: bool,
}

type Acts = Arc<Mutex<Vec<Act>>>;

/// The real client, recording each mutating call with its replica and its lock state.
#[derive(Debug)]
struct Recording {
    inner: Arc<fas_flyapi::Client>,
    replica: usize,
    coord: Arc<Coordinator>,
    acts: Acts,
}

#[async_trait::async_trait]
impl Fly for Recording {
    async fn current_release(&self, app: &str) -> Result<Option<Release>, fas_flyapi::Error> {
        Fly::current_release(&*self.inner, app).await
    }
    async fn list_machines(&self, app: &str) -> Result<Vec<Machine>, fas_flyapi::Error> {
        Fly::list_machines(&*self.inner, app).await
    }
    async fn org_apps(&self, org: &str) -> Result<Vec<AppInfo>, fas_flyapi::Error> {
        Fly::org_apps(&*self.inner, org).await
    }
    fn machine_ops<'a>(&'a self, app: &'a str, listed: &'a [Machine]) -> Box<dyn MachineOps + 'a> {
        Box::new(RecordingOps {
            inner: self.inner.machine_ops(app, listed),
            app,
            fly: self,
        })
    }
}

struct RecordingOps<'a> {
    inner: Box<dyn MachineOps + 'a>,
    app: &'a str,
    fly: &'a Recording,
}

impl RecordingOps<'_> {
    async fn record<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let allowed = self.fly.coord.may_act(self.app);
        let at = Instant::now();
        let out = call.await;
        self.fly.acts.lock().unwrap().push(Act {
            replica: self.fly.replica,
            app: self.app.to_owned(),
            at,
            end: Instant::now(),
            allowed,
        });
        out
    }
}

#[async_trait::async_trait]
impl MachineOps for RecordingOps<'_> {
    async fn create(&self, source: &str, region: &str, skip: bool) -> Result<String, OpError> {
        self.record(self.inner.create(source, region, skip)).await
    }
    async fn start(&self, id: &str) -> Result<(), OpError> {
        self.record(self.inner.start(id)).await
    }
    async fn stop(&self, id: &str) -> Result<(), OpError> {
        self.record(self.inner.stop(id)).await
    }
    async fn suspend(&self, id: &str) -> Result<(), OpError> {
        self.record(self.inner.suspend(id)).await
    }
    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        self.record(self.inner.destroy(id)).await
    }
}

/// One replica: its coordinator, its loop and the tokens that stop them.
struct Replica {
    coord: Arc<Coordinator>,
    coord_stop: CancellationToken,
    loop_stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

struct Cluster {
    url: SecretString,
    settings: Vec<(String, String)>,
    pg: PgServer,
    sim: Simulator,
    load: SetCollector,
    acts: Acts,
    replicas: Vec<Replica>,
    apps: Vec<String>,
}

fn app_names() -> Vec<String> {
    (0..APPS).map(|i| format!("ha-{i:02}")).collect()
}

async fn cluster(load: f64) -> Cluster {
    let pg = PgServer::start().await;
    let mut cfg = SimConfig::instant();
    cfg.rate_limits.enabled = false;
    let sim = Simulator::start(cfg).await.expect("simulator");
    let apps = app_names();
    for app in &apps {
        sim.add_app("acme", app);
        for _ in 0..5 {
            sim.add_machine(app, MachineSpec::new().state("stopped"));
        }
    }
    sim.add_app("acme", "other");
    let load = SetCollector::new("load", load);
    let base = sim.base_url();
    let settings: Vec<(String, String)> = [
        ("FAS_API_TOKEN", sim.token()),
        ("FLY_FLAPS_BASE_URL", base.as_str()),
        ("FLY_API_BASE_URL", base.as_str()),
        ("FAS_APP_NAME", "ha-*"),
        ("FAS_ORG", "acme"),
        ("FAS_STARTED_MACHINE_COUNT", "load"),
        ("FAS_INTERVAL", "1s"),
        ("FAS_CONCURRENCY", "12"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let mut c = Cluster {
        url: SecretString::from(pg.url()),
        pg,
        sim,
        load,
        acts: Acts::default(),
        replicas: Vec::new(),
        apps,
        settings,
    };
    for _ in 0..REPLICAS {
        c.add_replica();
    }
    c
}

impl Cluster {
    /// Starts one more replica: a coordinator, a reconciler over a recording seam, a loop.
    fn add_replica(&mut self) {
        let replica = self.replicas.len();
        let settings: Vec<(&str, &str)> = self
            .settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let coord_stop = CancellationToken::new();
        let coord = Coordinator::start_with_id(
            &self.url,
            CoordPolicy::default(),
            format!("test-{replica}"),
            coord_stop.clone(),
        )
        .expect("coordinator");
        let client = cli::build_client(&support::fake_fly::test_config(&settings)).expect("client");
        let fly = Recording {
            inner: Arc::new(client),
            replica,
            coord: coord.clone(),
            acts: self.acts.clone(),
        };
        let r: Arc<Reconciler> =
            support::fake_fly::reconciler(Arc::new(fly), &self.load, &settings);
        r.set_coordinator(coord.clone());
        let loop_stop = CancellationToken::new();
        let task = tokio::spawn(schedule::run(r, loop_stop.clone()));
        self.replicas.push(Replica {
            coord,
            coord_stop,
            loop_stop,
            task,
        });
    }

    /// Who may act on each app now (replica indexes; stopped replicas included).
    fn owners(&self) -> BTreeMap<String, Vec<usize>> {
        self.apps
            .iter()
            .map(|a| {
                let who = (0..self.replicas.len())
                    .filter(|&r| self.replicas[r].coord.may_act(a))
                    .collect();
                (a.clone(), who)
            })
            .collect()
    }

    /// Samples ownership every 100 ms for `d`, asserting at most one owner per app.
    async fn watch(&self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            for (app, who) in self.owners() {
                assert!(who.len() <= 1, "{app} owned by {who:?} at once");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (sampling ownership) until `cond`, panicking after `limit`; returns the time taken.
    async fn until(
        &self,
        what: &str,
        limit: Duration,
        cond: impl Fn(&Cluster) -> bool,
    ) -> Duration {
        let t0 = Instant::now();
        loop {
            for (app, who) in self.owners() {
                assert!(who.len() <= 1, "{app} owned by {who:?} at once");
            }
            if cond(self) {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < limit,
                "{what}: not within {limit:?}; owners {:?}",
                self.owners()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn all_owned(&self) -> bool {
        self.owners().values().all(|w| w.len() == 1)
    }

    fn converged(&self, started: usize) -> bool {
        self.apps
            .iter()
            .all(|a| self.sim.count_in_state(a, "started") == started)
    }

    /// Every mutating call was made under a confirmed lock, and the calls of one app never
    /// interleave between replicas (a replica's calls on an app end before another's begin, with
    /// a handover in between).
    fn check_acts(&self) {
        let acts = self.acts.lock().unwrap().clone();
        for a in &acts {
            assert!(a.allowed, "mutating call without a confirmed lock: {a:?}");
        }
        let mut by_app: BTreeMap<&str, Vec<&Act>> = BTreeMap::new();
        for a in &acts {
            by_app.entry(&a.app).or_default().push(a);
        }
        for (app, list) in by_app {
            // The calls of two replicas on one app never overlap in time: a handover (rebalance
            // or failover) happens between ticks.
            for b in &list {
                for a in list
                    .iter()
                    .filter(|a| a.replica != b.replica && a.at <= b.at)
                {
                    assert!(
                        a.end <= b.at,
                        "{app}: replica {} acted at {:?} while replica {}'s call ran until {:?}",
                        b.replica,
                        b.at,
                        a.replica,
                        a.end
                    );
                }
            }
        }
    }

    fn owned_counts(&self) -> Vec<usize> {
        self.replicas
            .iter()
            .map(|r| r.coord.owned().len())
            .collect()
    }

    async fn shutdown(self) {
        for r in &self.replicas {
            r.loop_stop.cancel();
            r.coord_stop.cancel();
        }
        for r in self.replicas {
            let _ = r.task.await;
        }
        drop(self.pg);
    }
}

/// 3 replicas, 12 wildcard apps, a load that moves: each app has at most one owner at every
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
    // Spread within the slack: each replica at most ⌈12/3⌉ + 1.
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
    assert!(counts.iter().all(|&n| n <= 5), "{counts:?}");
    assert_eq!(c.sim.count_in_state("other", "started"), 0);
    // A fourth replica joins: the others release down to the new share (3) and it takes its part.
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
    assert!(counts.iter().all(|&n| n <= 4), "{counts:?}");
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

/// PostgreSQL stops for 12 s: every replica stops acting within the fail-closed bound
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
    let outage = Duration::from_secs(12);
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

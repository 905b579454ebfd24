//! Replicas coordinated through a real PostgreSQL, in-process against the Fly simulator (the
//! `ha_*` tests): each replica is a `Reconciler` + loop with its own `Coordinator` and its own
//! recording Fly seam, so every mutating call is attributed to the replica that made it and
//! checked against that replica's lock at the moment it was sent.
//!
//! Included by the `ha_*` test files with `#[path = "support/ha.rs"] mod ha;` (not from
//! `support/mod.rs`: the other test binaries need no PostgreSQL helpers).
#![allow(dead_code, unreachable_pub)]

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
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::fake_fly::{self, SetCollector};

/// One mutating call as a replica made it.
#[derive(Debug, Clone)]
pub struct Act {
    /// The replica's index in [`Cluster::replicas`].
    pub replica: usize,
    /// The app acted on.
    pub app: String,
    /// When the call was sent.
    pub at: Instant,
    /// When the call returned.
    pub end: Instant,
    /// Whether the replica's coordinator allowed acting on the app when the call was sent.
    pub allowed: bool,
}

/// Every replica's mutating calls, in order.
pub type Acts = Arc<Mutex<Vec<Act>>>;

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
pub struct Replica {
    /// Its coordinator.
    pub coord: Arc<Coordinator>,
    /// Stops the coordinator (its session closes: the server releases its locks).
    pub coord_stop: CancellationToken,
    /// Stops the loop.
    pub loop_stop: CancellationToken,
    /// The loop.
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A PostgreSQL, a simulator with `ha-NN` apps (5 stopped machines each) and an `other` app the
/// wildcard does not match, a shared settable load, and the replicas.
pub struct Cluster {
    /// The database's URL (replicas added with [`Cluster::add_replica`] use it).
    pub url: SecretString,
    /// The `FAS_*` settings every replica shares.
    pub settings: Vec<(String, String)>,
    /// The database.
    pub pg: PgServer,
    /// The Fly simulator.
    pub sim: Simulator,
    /// The metric `load` every app's started count follows.
    pub load: SetCollector,
    /// Every replica's mutating calls.
    pub acts: Acts,
    /// The replicas, by index.
    pub replicas: Vec<Replica>,
    /// The wildcard apps.
    pub apps: Vec<String>,
}

/// A cluster of `replicas` replicas on `apps` apps (`ha-00`…), ticking every second, the started
/// count following the metric `load` (starting at `load`).
pub async fn cluster(apps: usize, replicas: usize, load: f64) -> Cluster {
    let pg = PgServer::start().await;
    let mut c = cluster_on(pg, apps, load).await;
    for _ in 0..replicas {
        c.add_replica();
    }
    c
}

/// [`cluster`] without replicas, on `pg`.
pub async fn cluster_on(pg: PgServer, apps: usize, load: f64) -> Cluster {
    let mut cfg = SimConfig::instant();
    cfg.rate_limits.enabled = false;
    let sim = Simulator::start(cfg).await.expect("simulator");
    let apps: Vec<String> = (0..apps).map(|i| format!("ha-{i:02}")).collect();
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
    Cluster {
        url: SecretString::from(pg.url()),
        pg,
        sim,
        load,
        acts: Acts::default(),
        replicas: Vec::new(),
        apps,
        settings,
    }
}

impl Cluster {
    /// Starts one more replica on the cluster's database; returns its index.
    pub fn add_replica(&mut self) -> usize {
        let url = self.url.clone();
        self.add_replica_at(&url)
    }

    /// Starts one more replica (a coordinator on `url` with the default policy, a reconciler over
    /// a recording seam, a loop); returns its index. Its replica id is `test-<index>`.
    pub fn add_replica_at(&mut self, url: &SecretString) -> usize {
        let replica = self.replicas.len();
        let settings: Vec<(&str, &str)> = self
            .settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let coord_stop = CancellationToken::new();
        let coord = Coordinator::start_with_id(
            url,
            CoordPolicy::default(),
            format!("test-{replica}"),
            coord_stop.clone(),
        )
        .expect("coordinator");
        let client = cli::build_client(&fake_fly::test_config(&settings)).expect("client");
        let fly = Recording {
            inner: Arc::new(client),
            replica,
            coord: coord.clone(),
            acts: self.acts.clone(),
        };
        let r: Arc<Reconciler> = fake_fly::reconciler(Arc::new(fly), &self.load, &settings);
        r.set_coordinator(coord.clone());
        let loop_stop = CancellationToken::new();
        let task = tokio::spawn(schedule::run(r, loop_stop.clone()));
        self.replicas.push(Replica {
            coord,
            coord_stop,
            loop_stop,
            task,
        });
        replica
    }

    /// Who may act on each app now (replica indexes; stopped replicas included).
    pub fn owners(&self) -> BTreeMap<String, Vec<usize>> {
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

    fn assert_one_owner(&self) {
        for (app, who) in self.owners() {
            assert!(who.len() <= 1, "{app} owned by {who:?} at once");
        }
    }

    /// Samples ownership every 100 ms for `d`, asserting at most one owner per app.
    pub async fn watch(&self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.assert_one_owner();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (sampling ownership every `every`, at most one owner per app at each sample) until
    /// `cond`, panicking after `limit`; returns the time taken.
    pub async fn until_every(
        &self,
        what: &str,
        limit: Duration,
        every: Duration,
        cond: impl Fn(&Cluster) -> bool,
    ) -> Duration {
        let t0 = Instant::now();
        loop {
            self.assert_one_owner();
            if cond(self) {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < limit,
                "{what}: not within {limit:?}; owners {:?}",
                self.owners()
            );
            tokio::time::sleep(every).await;
        }
    }

    /// [`Cluster::until_every`] sampling every 100 ms.
    pub async fn until(
        &self,
        what: &str,
        limit: Duration,
        cond: impl Fn(&Cluster) -> bool,
    ) -> Duration {
        self.until_every(what, limit, Duration::from_millis(100), cond)
            .await
    }

    /// Every app has exactly one owner.
    pub fn all_owned(&self) -> bool {
        self.owners().values().all(|w| w.len() == 1)
    }

    /// Every app has `started` started machines.
    pub fn converged(&self, started: usize) -> bool {
        self.apps
            .iter()
            .all(|a| self.sim.count_in_state(a, "started") == started)
    }

    /// A copy of the mutating calls so far.
    pub fn acts(&self) -> Vec<Act> {
        self.acts.lock().unwrap().clone()
    }

    /// Every mutating call was made under a confirmed lock, and the calls of one app never
    /// interleave between replicas (a replica's calls on an app end before another's begin, with
    /// a handover in between).
    pub fn check_acts(&self) {
        let acts = self.acts();
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

    /// How many apps each replica may act on now.
    pub fn owned_counts(&self) -> Vec<usize> {
        self.replicas
            .iter()
            .map(|r| r.coord.owned().len())
            .collect()
    }

    /// Stops every loop and coordinator, then the database.
    pub async fn shutdown(self) {
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

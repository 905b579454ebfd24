//! An in-memory [`Fly`] and a settable collector, for tests of the loop's policies on a paused
//! tokio clock: no socket, so `tokio::time::pause()` cannot fire a request timeout early.
//! Every call is recorded with its (tokio) time; list lag, slow calls and failures are knobs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fas_collect::{CollectError, Collector};
use fas_flyapi::{Machine, Release};
use fas_reconcile::{MachineOps, OpError};
use fly_autoscaler::config::{self, Purpose, Sources};
use fly_autoscaler::fly::{AppInfo, Fly};
use fly_autoscaler::tick::Reconciler;
use serde_json::json;
use tokio::time::Instant;

/// A configuration from the given `FAS_*` settings over a base of app `app`, a test token and a
/// Prometheus collector of metric `load` that only satisfies validation ([`reconciler`] replaces
/// it with a [`SetCollector`]).
pub fn test_config(settings: &[(&str, &str)]) -> config::Config {
    let base = [
        ("FAS_APP_NAME", "app"),
        ("FAS_API_TOKEN", "test-token"),
        ("FAS_PROMETHEUS_ADDRESS", "http://127.0.0.1:1"),
        ("FAS_PROMETHEUS_METRIC_NAME", "load"),
        ("FAS_PROMETHEUS_QUERY", "load"),
    ];
    let env: BTreeMap<String, String> = base
        .iter()
        .chain(settings)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    config::load(&Sources { env, file: None }, Purpose::Serve).expect("valid test configuration")
}

/// A reconciler over `fly` whose only collector is `load`, configured by [`test_config`].
pub fn reconciler(
    fly: Arc<dyn Fly>,
    load: &SetCollector,
    settings: &[(&str, &str)],
) -> Arc<Reconciler> {
    let config = test_config(settings);
    let collectors: Vec<Arc<dyn Collector>> = vec![Arc::new(load.clone())];
    Arc::new(Reconciler::new(Arc::new(config), fly, collectors))
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `release`, `list`, `org_apps`, `create`, `start`, `stop`, `suspend`, `destroy`.
    pub op: &'static str,
    /// The app (empty for `org_apps`).
    pub app: String,
    /// The machine id, for start/stop/suspend/destroy.
    pub id: Option<String>,
    /// When it was made, from the fake's creation.
    pub at: Duration,
}

#[derive(Debug, Default)]
struct FakeMachine {
    machine: Machine,
    /// Not in the list before this instant (read-after-write lag).
    listed_after: Option<Instant>,
}

#[derive(Debug)]
struct State {
    t0: Instant,
    apps: BTreeMap<String, Vec<FakeMachine>>,
    org_apps: Option<Vec<String>>,
    /// Release status per app (absent: no release).
    releases: BTreeMap<String, String>,
    calls: Vec<Call>,
    next_id: u32,
    /// Lists in flight per app, and the most seen at once.
    listing: BTreeMap<String, u32>,
    max_listing: BTreeMap<String, u32>,
}

/// Knobs, settable at any time.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// How long a list call takes.
    pub list_delay: Duration,
    /// How long a new machine stays out of the list.
    pub list_lag: Duration,
    /// How long a start call takes (per machine id, else `start_delay`).
    pub start_delay: Duration,
    /// Start delay for given machine ids.
    pub slow_starts: BTreeMap<String, Duration>,
    /// State new machines are listed in after a create without `skip_launch` (default `started`).
    pub boot_state: Option<String>,
}

/// The in-memory Fly.
#[derive(Debug, Clone)]
pub struct FakeFly {
    state: Arc<Mutex<State>>,
    knobs: Arc<Mutex<Knobs>>,
}

/// A machine of the `app` process group with a config (so it can be cloned).
pub fn machine(id: &str, state: &str) -> Machine {
    serde_json::from_value(json!({
        "id": id,
        "state": state,
        "region": "iad",
        "created_at": "2026-01-01T00:00:00Z",
        "host_status": "ok",
        "config": { "image": "registry.fly.io/app:v1", "metadata": { "fly_process_group": "app" } },
        "image_ref": { "registry": "registry.fly.io", "repository": "app", "tag": "v1", "digest": "sha256:abc" }
    }))
    .expect("valid machine JSON")
}

impl FakeFly {
    /// An empty Fly; time starts now.
    pub fn new() -> FakeFly {
        FakeFly {
            state: Arc::new(Mutex::new(State {
                t0: Instant::now(),
                apps: BTreeMap::new(),
                org_apps: Some(Vec::new()),
                releases: BTreeMap::new(),
                calls: Vec::new(),
                next_id: 0,
                listing: BTreeMap::new(),
                max_listing: BTreeMap::new(),
            })),
            knobs: Arc::new(Mutex::new(Knobs::default())),
        }
    }

    /// Changes the knobs.
    pub fn knobs(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.knobs.lock().unwrap());
    }

    /// Adds machines to `app` (and the app to the org).
    pub fn add(&self, app: &str, machines: impl IntoIterator<Item = Machine>) {
        let mut st = self.state.lock().unwrap();
        let list = st.apps.entry(app.to_owned()).or_default();
        list.extend(machines.into_iter().map(|machine| FakeMachine {
            machine,
            listed_after: None,
        }));
        if let Some(org) = st.org_apps.as_mut()
            && !org.iter().any(|a| a == app)
        {
            org.push(app.to_owned());
        }
    }

    /// Sets the org's app list; `None` makes `org_apps` fail.
    pub fn set_org_apps(&self, apps: Option<&[&str]>) {
        self.state.lock().unwrap().org_apps =
            apps.map(|a| a.iter().map(|s| s.to_string()).collect());
    }

    /// Sets the status of `app`'s current release (`running` = deploy in progress).
    pub fn set_release(&self, app: &str, status: Option<&str>) {
        let mut st = self.state.lock().unwrap();
        match status {
            Some(s) => st.releases.insert(app.to_owned(), s.to_owned()),
            None => st.releases.remove(app),
        };
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Calls of one op on one app.
    pub fn calls_of(&self, op: &str, app: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.op == op && c.app == app)
            .collect()
    }

    /// The most lists of `app` that were in flight at once.
    pub fn max_concurrent_lists(&self, app: &str) -> u32 {
        self.state
            .lock()
            .unwrap()
            .max_listing
            .get(app)
            .copied()
            .unwrap_or(0)
    }

    /// The machines of `app` (listed or not yet), with their states.
    pub fn states(&self, app: &str) -> Vec<(String, String)> {
        let st = self.state.lock().unwrap();
        st.apps
            .get(app)
            .map(|ms| {
                ms.iter()
                    .map(|m| (m.machine.id.clone(), m.machine.state.as_str().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn record(&self, op: &'static str, app: &str, id: Option<&str>) {
        let mut st = self.state.lock().unwrap();
        let at = st.t0.elapsed();
        st.calls.push(Call {
            op,
            app: app.to_owned(),
            id: id.map(str::to_owned),
            at,
        });
    }

    fn set_state(&self, app: &str, id: &str, state: &str) -> Result<(), OpError> {
        let mut st = self.state.lock().unwrap();
        let m = st
            .apps
            .get_mut(app)
            .and_then(|ms| ms.iter_mut().find(|m| m.machine.id == id))
            .ok_or_else(|| OpError::new(fas_reconcile::OpErrorKind::NotFound, "no machine"))?;
        m.machine.state = fas_flyapi::MachineState::parse(state);
        Ok(())
    }
}

impl Default for FakeFly {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Fly for FakeFly {
    async fn current_release(&self, app: &str) -> Result<Option<Release>, fas_flyapi::Error> {
        self.record("release", app, None);
        let st = self.state.lock().unwrap();
        Ok(st.releases.get(app).map(|status| Release {
            version: 7,
            status: status.clone(),
            ..Release::default()
        }))
    }

    async fn list_machines(&self, app: &str) -> Result<Vec<Machine>, fas_flyapi::Error> {
        self.record("list", app, None);
        {
            let mut st = self.state.lock().unwrap();
            let n = {
                let n = st.listing.entry(app.to_owned()).or_default();
                *n += 1;
                *n
            };
            let max = st.max_listing.entry(app.to_owned()).or_default();
            *max = (*max).max(n);
        }
        let delay = self.knobs.lock().unwrap().list_delay;
        // Decrement even if the tick drops this future at its deadline.
        struct Done<'a>(&'a FakeFly, &'a str);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                let mut st = self.0.state.lock().unwrap();
                *st.listing.entry(self.1.to_owned()).or_default() -= 1;
            }
        }
        let _done = Done(self, app);
        tokio::time::sleep(delay).await;
        let st = self.state.lock().unwrap();
        let now = Instant::now();
        Ok(st
            .apps
            .get(app)
            .map(|ms| {
                ms.iter()
                    .filter(|m| m.listed_after.is_none_or(|t| now >= t))
                    .map(|m| m.machine.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn org_apps(&self, _org: &str) -> Result<Vec<AppInfo>, fas_flyapi::Error> {
        self.record("org_apps", "", None);
        let st = self.state.lock().unwrap();
        let apps = st.org_apps.clone().ok_or(fas_flyapi::Error::Api {
            status: 503,
            message: "graphql unavailable".into(),
            request_id: None,
            code: None,
        })?;
        Ok(apps
            .into_iter()
            .map(|name| AppInfo {
                release_status: st.releases.get(&name).cloned(),
                name,
            })
            .collect())
    }

    fn machine_ops<'a>(&'a self, app: &'a str, _listed: &'a [Machine]) -> Box<dyn MachineOps + 'a> {
        Box::new(FakeOps { fly: self, app })
    }
}

struct FakeOps<'a> {
    fly: &'a FakeFly,
    app: &'a str,
}

#[async_trait::async_trait]
impl MachineOps for FakeOps<'_> {
    async fn create(
        &self,
        source: &str,
        region: &str,
        skip_launch: bool,
    ) -> Result<String, OpError> {
        self.fly.record("create", self.app, Some(source));
        let (lag, boot) = {
            let k = self.fly.knobs.lock().unwrap();
            (k.list_lag, k.boot_state.clone())
        };
        let mut st = self.fly.state.lock().unwrap();
        st.next_id += 1;
        let id = format!("new{:03}", st.next_id);
        let state = if skip_launch {
            "stopped".to_owned()
        } else {
            boot.unwrap_or_else(|| "started".to_owned())
        };
        let mut m = machine(&id, &state);
        m.region = region.to_owned();
        let listed_after = Some(Instant::now() + lag);
        st.apps
            .entry(self.app.to_owned())
            .or_default()
            .push(FakeMachine {
                machine: m,
                listed_after,
            });
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<(), OpError> {
        self.fly.record("start", self.app, Some(id));
        let delay = {
            let k = self.fly.knobs.lock().unwrap();
            k.slow_starts.get(id).copied().unwrap_or(k.start_delay)
        };
        tokio::time::sleep(delay).await;
        self.fly.set_state(self.app, id, "started")
    }

    async fn stop(&self, id: &str) -> Result<(), OpError> {
        self.fly.record("stop", self.app, Some(id));
        self.fly.set_state(self.app, id, "stopped")
    }

    async fn suspend(&self, id: &str) -> Result<(), OpError> {
        self.fly.record("suspend", self.app, Some(id));
        self.fly.set_state(self.app, id, "suspended")
    }

    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        self.fly.record("destroy", self.app, Some(id));
        let mut st = self.fly.state.lock().unwrap();
        if let Some(ms) = st.apps.get_mut(self.app) {
            ms.retain(|m| m.machine.id != id);
        }
        Ok(())
    }
}

/// A collector whose value tests set; it can hang for chosen apps, or fail.
#[derive(Debug, Clone)]
pub struct SetCollector {
    name: String,
    value: Arc<Mutex<f64>>,
    hang: Arc<Mutex<Vec<String>>>,
    fail: Arc<Mutex<bool>>,
    invalidations: Arc<Mutex<u32>>,
}

impl SetCollector {
    /// A collector of `name` returning `value`.
    pub fn new(name: &str, value: f64) -> SetCollector {
        SetCollector {
            name: name.to_owned(),
            value: Arc::new(Mutex::new(value)),
            hang: Arc::default(),
            fail: Arc::default(),
            invalidations: Arc::default(),
        }
    }

    /// From now on every collection fails (`true`) or answers the value again (`false`).
    pub fn fail(&self, fail: bool) {
        *self.fail.lock().unwrap() = fail;
    }

    /// How many times the loop asked for a fresh read ([`Collector::invalidate`]).
    pub fn invalidations(&self) -> u32 {
        *self.invalidations.lock().unwrap()
    }

    /// Collections for `app` never answer (an hour).
    pub fn hang_for(&self, app: &str) {
        self.hang.lock().unwrap().push(app.to_owned());
    }

    /// Changes the value.
    pub fn set(&self, value: f64) {
        *self.value.lock().unwrap() = value;
    }
}

#[async_trait::async_trait]
impl Collector for SetCollector {
    fn metric_name(&self) -> &str {
        &self.name
    }

    async fn collect(&self, app: &str) -> Result<f64, CollectError> {
        let hang = self.hang.lock().unwrap().iter().any(|a| a == app);
        if hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if *self.fail.lock().unwrap() {
            return Err(CollectError::Custom {
                at: fas_collect::Origin::new(&self.name, "test", "set-collector"),
                message: "source down".to_owned(),
                source: None,
            });
        }
        Ok(*self.value.lock().unwrap())
    }

    fn invalidate(&self) {
        *self.invalidations.lock().unwrap() += 1;
    }
}

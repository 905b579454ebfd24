//! The [`Simulator`] handle: start/stop, scenario hooks and inspection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{RandomFault, ScriptedFault, SimConfig};
use crate::conn::{ConnectionStats, Counters, Tls};
use crate::server::{self, Shared};
use crate::world::{LoggedRequest, NewMachine, SimMachine, World};

/// The image used by [`MachineSpec::default`].
pub const DEFAULT_IMAGE: &str = "registry.fly.io/flysim-app:deployment-01";

/// A machine to add directly (bypassing the API), e.g. the machines an app already has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MachineSpec {
    /// Initial state (default `started`).
    pub state: String,
    /// Region (default `ord`).
    pub region: String,
    /// `config.metadata.fly_process_group` (default `Some("app")`; `None` leaves the key out). Ignored when
    /// `config` is given.
    pub process_group: Option<String>,
    /// `ok` (default), `unknown` or `unreachable`.
    pub host_status: String,
    /// `config.image` (default [`DEFAULT_IMAGE`]). Ignored when `config` is given.
    pub image: String,
    /// The full config, kept exactly; when `None` a typical flyctl-like config is generated.
    pub config: Option<Value>,
    /// Machine name; generated when `None`.
    pub name: Option<String>,
}

impl Default for MachineSpec {
    fn default() -> Self {
        MachineSpec {
            state: "started".to_owned(),
            region: "ord".to_owned(),
            process_group: Some("app".to_owned()),
            host_status: "ok".to_owned(),
            image: DEFAULT_IMAGE.to_owned(),
            config: None,
            name: None,
        }
    }
}

impl MachineSpec {
    /// A `started` machine in `ord`, group `app`.
    pub fn new() -> MachineSpec {
        MachineSpec::default()
    }

    /// With this initial state.
    pub fn state(mut self, state: &str) -> MachineSpec {
        self.state = state.to_owned();
        self
    }

    /// In this region.
    pub fn region(mut self, region: &str) -> MachineSpec {
        self.region = region.to_owned();
        self
    }

    /// In this process group (`None`: no `fly_process_group` metadata at all).
    pub fn process_group(mut self, group: Option<&str>) -> MachineSpec {
        self.process_group = group.map(str::to_owned);
        self
    }

    /// With this host status.
    pub fn host_status(mut self, status: &str) -> MachineSpec {
        self.host_status = status.to_owned();
        self
    }

    /// With this image.
    pub fn image(mut self, image: &str) -> MachineSpec {
        self.image = image.to_owned();
        self
    }

    /// With this exact config.
    pub fn config(mut self, config: Value) -> MachineSpec {
        self.config = Some(config);
        self
    }

    /// The config the machine gets.
    pub fn build_config(&self) -> Value {
        if let Some(c) = &self.config {
            return c.clone();
        }
        let mut metadata = serde_json::Map::new();
        if let Some(g) = &self.process_group {
            metadata.insert("fly_process_group".to_owned(), json!(g));
        }
        metadata.insert("fly_platform_version".to_owned(), json!("v2"));
        json!({
            "image": self.image,
            "env": {"PRIMARY_REGION": self.region},
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
            "metadata": metadata,
            "services": [{
                "protocol": "tcp", "internal_port": 8080, "autostart": true, "autostop": "suspend",
                "min_machines_running": 0,
                "ports": [{"port": 80, "handlers": ["http"]}, {"port": 443, "handlers": ["tls", "http"]}],
            }],
            "restart": {"policy": "on-failure", "max_retries": 10},
        })
    }
}

/// A running simulator. Dropping it (or [`Simulator::shutdown`]) stops the server.
#[derive(Debug)]
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    token: String,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// The self-signed certificate (DER) when serving TLS.
    tls_certificate: Option<Vec<u8>>,
}

impl Simulator {
    /// Start on `127.0.0.1:0` (a free port).
    pub async fn start(cfg: SimConfig) -> std::io::Result<Simulator> {
        Simulator::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), cfg).await
    }

    /// Start on the given address.
    pub async fn start_on(addr: SocketAddr, cfg: SimConfig) -> std::io::Result<Simulator> {
        Simulator::start_with(addr, cfg, None).await
    }

    /// Start on `127.0.0.1:0` over TLS, offering HTTP/2 and HTTP/1.1 through ALPN like the public
    /// Machines API: the client picks. The certificate is self-signed for `localhost` and
    /// `127.0.0.1`, made at start; a client must trust [`Simulator::tls_certificate_der`].
    /// [`Simulator::base_url`] is then `https://127.0.0.1:PORT`.
    pub async fn start_tls(cfg: SimConfig) -> std::io::Result<Simulator> {
        let tls = Tls::new()?;
        Simulator::start_with(SocketAddr::from(([127, 0, 0, 1], 0)), cfg, Some(tls)).await
    }

    async fn start_with(
        addr: SocketAddr,
        cfg: SimConfig,
        tls: Option<Tls>,
    ) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let token = cfg.token.clone();
        let shared = Arc::new(Shared {
            world: Mutex::new(World::new(cfg)),
            notify: Notify::new(),
            conns: Counters::default(),
        });
        let (tx, rx) = watch::channel(false);
        let (acceptor, tls_certificate) = match tls {
            Some(t) => (Some(t.acceptor), Some(t.certificate_der)),
            None => (None, None),
        };
        let task = tokio::spawn(server::serve(listener, shared.clone(), rx, acceptor));
        Ok(Simulator {
            shared,
            addr,
            token,
            shutdown: tx,
            task: Mutex::new(Some(task)),
            tls_certificate,
        })
    }

    /// Stop accepting connections and close the open ones.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with [`Simulator::start_tls`]): the
    /// Machines API is at `{base}/v1/…`, GraphQL at `{base}/graphql`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls_certificate.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The self-signed certificate (DER) of a simulator started with [`Simulator::start_tls`], the
    /// one trust anchor its clients need; `None` for plain HTTP.
    pub fn tls_certificate_der(&self) -> Option<&[u8]> {
        self.tls_certificate.as_deref()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token the simulator accepts (send as `Bearer X`, `FlyV1 X` or `Bearer FlyV1 X`).
    pub fn token(&self) -> &str {
        &self.token
    }

    fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let r = {
            let mut w = self.shared.lock();
            f(&mut w)
        };
        self.shared.notify.notify_waiters();
        r
    }

    // ----- scenario hooks -------------------------------------------------------------------------------------

    /// Add an app (and its org, if new). Adding an existing app does nothing.
    pub fn add_app(&self, org_slug: &str, app: &str) {
        self.with(|w| w.ensure_app(org_slug, app));
    }

    /// Add an org without apps.
    pub fn add_org(&self, org_slug: &str) {
        self.with(|w| w.ensure_org(org_slug));
    }

    /// Add a machine directly in `spec.state` (no API call, no rate limit, no list lag); returns its id. An
    /// unknown app is created in org `personal`.
    pub fn add_machine(&self, app: &str, spec: MachineSpec) -> String {
        self.with(|w| {
            w.ensure_app("personal", app);
            let now = Instant::now();
            w.advance(app, now);
            let nm = NewMachine {
                name: spec.name.clone(),
                state: spec.state.clone(),
                region: spec.region.clone(),
                config: spec.build_config(),
                host_status: spec.host_status.clone(),
                list_lag_ms: 0,
            };
            w.insert_machine(app, nm, now)
        })
    }

    /// Set (or clear, with `None`) the app's current release status (`pending`, `running`, `complete`, `failed`,
    /// `interrupted`). Each call creates a new release version. Returns false for an unknown app.
    pub fn set_release_status(&self, app: &str, status: Option<&str>) -> bool {
        self.with(|w| w.set_release_status(app, status))
    }

    /// Set a machine's host status. Not `ok`: `config` is dropped from responses and `incomplete_config`
    /// appears; mutations answer 503. Returns false for an unknown machine.
    pub fn set_host_status(&self, app: &str, id: &str, status: &str) -> bool {
        self.with(
            |w| match w.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) {
                Some(m) => {
                    m.host_status = status.to_owned();
                    true
                }
                None => false,
            },
        )
    }

    /// Set a machine's state at once, as an external actor would (Fly Proxy autostop/autostart, a crash).
    /// Scheduled transitions are cancelled. Returns false for an unknown machine.
    pub fn set_state(&self, app: &str, id: &str, state: &str) -> bool {
        self.with(|w| {
            let now = Instant::now();
            w.advance(app, now);
            if !w.apps.get(app).is_some_and(|a| a.machines.contains_key(id)) {
                return false;
            }
            w.transition(app, id, now, state, &[], "flyproxy");
            true
        })
    }

    /// Lease every non-destroyed machine of `app` (a "deploy"), for one hour or until released. Returns
    /// `(machine id, nonce)` pairs. Machines already leased keep their lease.
    pub fn lease_all(&self, app: &str) -> Vec<(String, String)> {
        self.with(|w| {
            let now = Instant::now();
            let ids: Vec<String> = w
                .apps
                .get(app)
                .map(|a| {
                    a.machines
                        .values()
                        .filter(|m| m.state != "destroyed" && m.active_lease(now).is_none())
                        .map(|m| m.id.clone())
                        .collect()
                })
                .unwrap_or_default();
            let mut out = Vec::new();
            for id in ids {
                let lease = w.new_lease(
                    now,
                    Duration::from_secs(3600),
                    "deploy@flysim",
                    "flyctl deploy",
                );
                out.push((id.clone(), lease.nonce.clone()));
                if let Some(m) = w.apps.get_mut(app).and_then(|a| a.machines.get_mut(&id)) {
                    m.lease = Some(lease);
                }
            }
            out
        })
    }

    /// Drop every lease of `app` (the deploy finished).
    pub fn release_all(&self, app: &str) {
        self.with(|w| {
            if let Some(a) = w.apps.get_mut(app) {
                for m in a.machines.values_mut() {
                    m.lease = None;
                }
            }
        });
    }

    /// Queue a one-shot fault, used by the first matching request.
    pub fn push_fault(&self, fault: ScriptedFault) {
        self.with(|w| w.script.push_back(fault));
    }

    /// Replace the random faults.
    pub fn set_random_faults(&self, faults: Vec<RandomFault>) {
        self.with(|w| w.cfg.faults.random = faults);
    }

    /// Change the configuration at run time (timing, rate limits, outcomes, faults…). The token and the
    /// fault script are fixed at start; use [`Simulator::push_fault`] to queue faults.
    pub fn configure(&self, f: impl FnOnce(&mut SimConfig)) {
        self.with(|w| {
            let token = w.cfg.token.clone();
            f(&mut w.cfg);
            w.cfg.token = token;
        });
    }

    /// Apply a scenario's orgs, apps, machines and release statuses (its `config` is used by
    /// [`Simulator::from_scenario`]).
    pub fn apply_scenario(&self, scenario: &crate::Scenario) {
        for org in &scenario.orgs {
            self.add_org(org);
        }
        for app in &scenario.apps {
            self.add_app(&app.org, &app.name);
            for m in &app.machines {
                for _ in 0..m.count {
                    self.add_machine(&app.name, m.spec.clone());
                }
            }
            if app.release_status.is_some() {
                self.set_release_status(&app.name, app.release_status.as_deref());
            }
        }
    }

    /// Start with a scenario's config on `addr` and apply the scenario.
    pub async fn from_scenario(
        addr: SocketAddr,
        scenario: &crate::Scenario,
    ) -> std::io::Result<Simulator> {
        let sim = Simulator::start_on(addr, scenario.config.clone()).await?;
        sim.apply_scenario(scenario);
        Ok(sim)
    }

    // ----- inspection ------------------------------------------------------------------------------------------

    /// Snapshot of every machine of `app`, destroyed ones included, ordered by id.
    pub fn machines(&self, app: &str) -> Vec<SimMachine> {
        self.with(|w| {
            let now = Instant::now();
            w.advance(app, now);
            w.apps
                .get(app)
                .map(|a| a.machines.values().map(|m| w.snapshot(m, now)).collect())
                .unwrap_or_default()
        })
    }

    /// Snapshot of one machine.
    pub fn machine(&self, app: &str, id: &str) -> Option<SimMachine> {
        self.machines(app).into_iter().find(|m| m.id == id)
    }

    /// Machines of `app` in `state`.
    pub fn machines_in_state(&self, app: &str, state: &str) -> Vec<SimMachine> {
        self.machines(app)
            .into_iter()
            .filter(|m| m.state == state)
            .collect()
    }

    /// Number of machines of `app` in `state`.
    pub fn count_in_state(&self, app: &str, state: &str) -> usize {
        self.machines_in_state(app, state).len()
    }

    /// Every request so far, in arrival order.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// Forget the request log (counts derived from it restart at zero).
    pub fn clear_log(&self) {
        self.shared.lock().log.clear();
    }

    /// Forgets the destroyed machines that GET no longer shows (after [`crate::Timing::destroyed_visible_ms`])
    /// in every app; returns how many. Until then they are listed with `include_deleted=true`. Long runs call
    /// it now and then so the simulator's memory stays bounded.
    pub fn purge_destroyed(&self) -> usize {
        self.with(|w| {
            let now = Instant::now();
            let apps: Vec<String> = w.apps.keys().cloned().collect();
            let mut purged = 0;
            for app in apps {
                w.advance(&app, now);
                let gone: Vec<String> = w.apps[&app]
                    .machines
                    .values()
                    .filter(|m| w.is_gone(m, now))
                    .map(|m| m.id.clone())
                    .collect();
                if let Some(a) = w.apps.get_mut(&app) {
                    for id in &gone {
                        a.machines.remove(id);
                    }
                }
                purged += gone.len();
            }
            purged
        })
    }

    /// Every request logged since the last drain (or the start), in arrival order, removing them from the log
    /// in one step: a long run reads the log incrementally, without losing a request and with bounded memory.
    pub fn drain_request_log(&self) -> Vec<LoggedRequest> {
        std::mem::take(&mut self.shared.lock().log)
    }

    /// Number of requests to a route (`list`, `create`, `start`, `stop`, `destroy`, `graphql`…).
    pub fn count_route(&self, route: &str) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.route == route)
            .count()
    }

    /// Number of requests naming machine `id` in their path.
    pub fn count_for_machine(&self, id: &str) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.machine_id.as_deref() == Some(id))
            .count()
    }

    /// The most machines of `app` that were `started` at the same time.
    pub fn peak_started(&self, app: &str) -> usize {
        self.with(|w| {
            w.advance(app, Instant::now());
            w.apps.get(app).map_or(0, |a| a.peak_started)
        })
    }

    /// Faults injected so far, by kind: `status_NNN`, `reset`, `delay`, `ambiguous_create_NNN` (random or
    /// scripted), `boot_failure` and `failing_start` ([`crate::Faults`]), and `delay_completed` (delayed
    /// requests still handled after their delay: the client had not closed the connection, or the server kept
    /// serving it).
    pub fn injected_faults(&self) -> std::collections::BTreeMap<String, usize> {
        self.shared.lock().injected.clone()
    }

    /// Connections accepted so far: how many a client opened, and over TLS which protocol it chose.
    pub fn connections(&self) -> ConnectionStats {
        self.shared.conns.snapshot()
    }

    /// Number of 429 responses returned.
    pub fn rate_limited_count(&self) -> usize {
        self.shared.lock().rate_limited
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }
}

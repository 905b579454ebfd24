//! The simulated platform: orgs, apps, machines, leases, and the lazily applied state machine.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::config::{DurRange, ScriptedFault, SimConfig};
use crate::util;

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string (empty when absent).
    pub query: String,
    /// Request body as text (lossy UTF-8).
    pub body: String,
    /// Status returned; 0 when the connection was reset without a response.
    pub status: u16,
    /// Route name (`list`, `create`, `start`…; `unknown` for unmatched paths).
    pub route: String,
    /// The app named in the path, if any.
    pub app: Option<String>,
    /// The machine id named in the path, if any.
    pub machine_id: Option<String>,
    /// Simulator time when the request arrived (since the simulator started; follows tokio's paused clock).
    pub at: Duration,
}

/// A snapshot of one machine, for test assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct SimMachine {
    /// Machine id (14 lowercase hex characters).
    pub id: String,
    /// Machine name.
    pub name: String,
    /// Current state (`started`, `stopped`…).
    pub state: String,
    /// Region code.
    pub region: String,
    /// `config.metadata.fly_process_group`, if set.
    pub process_group: Option<String>,
    /// `ok`, `unknown` or `unreachable`.
    pub host_status: String,
    /// The config exactly as created.
    pub config: Value,
    /// Instance id (26-character ULID-like).
    pub instance_id: String,
    /// Whether the machine is cordoned.
    pub cordoned: bool,
    /// Whether a lease is currently held.
    pub leased: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub(crate) id: String,
    pub(crate) slug: String,
    pub(crate) name: String,
    pub(crate) numeric_id: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Release {
    pub(crate) id: String,
    pub(crate) version: i64,
    pub(crate) status: String,
    pub(crate) created_at: SystemTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub(crate) nonce: String,
    pub(crate) owner: String,
    pub(crate) description: String,
    pub(crate) version: String,
    pub(crate) expires: Instant,
}

#[derive(Debug)]
pub(crate) struct App {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) org_slug: String,
    pub(crate) numeric_id: u64,
    pub(crate) machines: BTreeMap<String, Machine>,
    pub(crate) release: Option<Release>,
    pub(crate) release_versions: i64,
    pub(crate) peak_started: usize,
}

#[derive(Debug)]
pub(crate) struct Machine {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) state: String,
    pub(crate) region: String,
    pub(crate) instance_id: String,
    pub(crate) private_ip: String,
    pub(crate) created_at: Instant,
    pub(crate) updated_at: Instant,
    pub(crate) config: Value,
    pub(crate) host_status: String,
    /// Newest first.
    pub(crate) events: VecDeque<Value>,
    pub(crate) cordoned: bool,
    pub(crate) lease: Option<Lease>,
    /// Scheduled transitions, oldest first: (when, new state).
    pub(crate) pending: VecDeque<(Instant, String)>,
    /// Not in the default list before this instant (list lag).
    pub(crate) listed_after: Instant,
    /// Counter for event ids.
    pub(crate) event_seq: u64,
    /// Created with `skip_launch` and drawn to fail at boot: its first start ends `failed`.
    pub(crate) fails_first_boot: bool,
}

/// Maximum number of events kept per machine.
const MAX_EVENTS: usize = 20;

impl Machine {
    pub(crate) fn process_group(&self) -> Option<&str> {
        let md = self.config.get("metadata")?;
        md.get("fly_process_group")
            .or_else(|| md.get("process_group"))?
            .as_str()
    }

    /// The lease if held and not expired.
    pub(crate) fn active_lease(&self, now: Instant) -> Option<&Lease> {
        self.lease.as_ref().filter(|l| l.expires > now)
    }
}

#[derive(Debug, Clone, Copy)]
struct BucketState {
    tokens: f64,
    last: Instant,
}

/// All mutable simulator state, behind one mutex (never held across an await).
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) cfg: SimConfig,
    pub(crate) start: Instant,
    pub(crate) wall_start: SystemTime,
    pub(crate) rng: StdRng,
    pub(crate) orgs: BTreeMap<String, Org>,
    pub(crate) apps: BTreeMap<String, App>,
    pub(crate) log: Vec<LoggedRequest>,
    pub(crate) rate_limited: usize,
    pub(crate) script: VecDeque<ScriptedFault>,
    /// Faults injected so far, by kind (see [`crate::Simulator::injected_faults`]).
    pub(crate) injected: BTreeMap<String, usize>,
    buckets: HashMap<(String, String), BucketState>,
}

impl World {
    pub(crate) fn new(cfg: SimConfig) -> World {
        let script = cfg.faults.script.iter().cloned().collect();
        World {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            start: Instant::now(),
            wall_start: SystemTime::now(),
            orgs: BTreeMap::new(),
            apps: BTreeMap::new(),
            log: Vec::new(),
            rate_limited: 0,
            script,
            injected: BTreeMap::new(),
            buckets: HashMap::new(),
        }
    }

    /// Wall-clock time corresponding to a tokio instant.
    pub(crate) fn wall(&self, t: Instant) -> SystemTime {
        self.wall_start + t.saturating_duration_since(self.start)
    }

    pub(crate) fn ulid_at(&mut self, t: Instant) -> String {
        let ms = util::unix_ms(self.wall(t));
        util::ulid(&mut self.rng, ms)
    }

    pub(crate) fn sample(&mut self, r: DurRange) -> Duration {
        let (lo, hi) = (r.min_ms.min(r.max_ms), r.max_ms.max(r.min_ms));
        Duration::from_millis(if lo == hi {
            lo
        } else {
            self.rng.random_range(lo..=hi)
        })
    }

    pub(crate) fn ensure_org(&mut self, slug: &str) {
        if self.orgs.contains_key(slug) {
            return;
        }
        let numeric_id = self.rng.random_range(10_000..1_000_000u64);
        let id = format!("org{}", util::hex(&mut self.rng, 8));
        let org = Org {
            id,
            slug: slug.to_owned(),
            name: slug.to_owned(),
            numeric_id,
        };
        self.orgs.insert(slug.to_owned(), org);
    }

    pub(crate) fn ensure_app(&mut self, org_slug: &str, name: &str) {
        self.ensure_org(org_slug);
        if self.apps.contains_key(name) {
            return;
        }
        let numeric_id = self.rng.random_range(100_000..10_000_000u64);
        let id = format!("app{}", util::hex(&mut self.rng, 10));
        let app = App {
            id,
            name: name.to_owned(),
            org_slug: org_slug.to_owned(),
            numeric_id,
            machines: BTreeMap::new(),
            release: None,
            release_versions: 0,
            peak_started: 0,
        };
        self.apps.insert(name.to_owned(), app);
    }

    pub(crate) fn set_release_status(&mut self, app: &str, status: Option<&str>) -> bool {
        let now = self.wall(Instant::now());
        let id = util::hex(&mut self.rng, 12);
        let Some(a) = self.apps.get_mut(app) else {
            return false;
        };
        a.release = status.map(|s| {
            a.release_versions += 1;
            Release {
                id,
                version: a.release_versions,
                status: s.to_owned(),
                created_at: now,
            }
        });
        true
    }

    /// Apply every scheduled transition of `app` that is due at `now`, in time order, tracking the started peak.
    pub(crate) fn advance(&mut self, app: &str, now: Instant) {
        let wall_start = self.wall_start;
        let start = self.start;
        let Some(a) = self.apps.get_mut(app) else {
            return;
        };
        let mut due: Vec<(Instant, String, String)> = Vec::new();
        for m in a.machines.values_mut() {
            while m.pending.front().is_some_and(|(at, _)| *at <= now) {
                if let Some((at, st)) = m.pending.pop_front() {
                    due.push((at, m.id.clone(), st));
                }
            }
        }
        if due.is_empty() {
            return;
        }
        due.sort_by_key(|(at, _, _)| *at);
        let mut started = a.machines.values().filter(|m| m.state == "started").count();
        for (at, id, new_state) in due {
            if let Some(m) = a.machines.get_mut(&id) {
                let was_started = m.state == "started";
                let wall = wall_start + at.saturating_duration_since(start);
                set_state_inner(m, &new_state, at, wall, "flyd");
                match (was_started, new_state == "started") {
                    (false, true) => started += 1,
                    (true, false) => started = started.saturating_sub(1),
                    _ => {}
                }
                a.peak_started = a.peak_started.max(started);
            }
        }
    }

    /// Count one injected fault of `kind`.
    pub(crate) fn count_fault(&mut self, kind: &str) {
        *self.injected.entry(kind.to_owned()).or_default() += 1;
    }

    /// Record the current started count of `app` into its peak.
    pub(crate) fn note_started(&mut self, app: &str) {
        if let Some(a) = self.apps.get_mut(app) {
            let n = a.machines.values().filter(|m| m.state == "started").count();
            a.peak_started = a.peak_started.max(n);
        }
    }

    /// Change a machine's state now (by the API or an external actor), replacing any scheduled transitions with
    /// the given chain of (delay, state) steps.
    pub(crate) fn transition(
        &mut self,
        app: &str,
        id: &str,
        now: Instant,
        state: &str,
        then: &[(Duration, &str)],
        source: &str,
    ) {
        let wall = self.wall(now);
        if let Some(m) = self.apps.get_mut(app).and_then(|a| a.machines.get_mut(id)) {
            set_state_inner(m, state, now, wall, source);
            m.pending.clear();
            let mut at = now;
            for (d, st) in then {
                at += *d;
                m.pending.push_back((at, (*st).to_owned()));
            }
        }
        self.note_started(app);
        // Zero-length steps complete at once.
        self.advance(app, now);
    }

    /// Token bucket check. Returns `Err(retry_after_secs)` when over the limit.
    pub(crate) fn take_token(&mut self, action: &str, key: &str, now: Instant) -> Result<(), u64> {
        let rl = &self.cfg.rate_limits;
        if !rl.enabled {
            return Ok(());
        }
        let bucket = match action {
            "get" => rl.get,
            "list" => rl.list,
            _ => rl.action,
        };
        let per_sec = bucket.per_sec.max(1e-9);
        let cap = f64::from(bucket.burst.max(1));
        let st = self
            .buckets
            .entry((action.to_owned(), key.to_owned()))
            .or_insert(BucketState {
                tokens: cap,
                last: now,
            });
        let elapsed = now.saturating_duration_since(st.last).as_secs_f64();
        st.tokens = (st.tokens + elapsed * per_sec).min(cap);
        st.last = now;
        if st.tokens >= 1.0 {
            st.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - st.tokens) / per_sec;
            Err(wait.ceil().max(1.0) as u64)
        }
    }

    /// Whether GET should say 404 for this destroyed machine.
    pub(crate) fn is_gone(&self, m: &Machine, now: Instant) -> bool {
        m.state == "destroyed"
            && now.saturating_duration_since(m.updated_at)
                >= Duration::from_millis(self.cfg.timing.destroyed_visible_ms)
    }

    pub(crate) fn snapshot(&self, m: &Machine, now: Instant) -> SimMachine {
        SimMachine {
            id: m.id.clone(),
            name: m.name.clone(),
            state: m.state.clone(),
            region: m.region.clone(),
            process_group: m.process_group().map(str::to_owned),
            host_status: m.host_status.clone(),
            config: m.config.clone(),
            instance_id: m.instance_id.clone(),
            cordoned: m.cordoned,
            leased: m.active_lease(now).is_some(),
        }
    }

    /// The Machine JSON object as the API returns it.
    pub(crate) fn machine_json(&self, m: &Machine, include_lease: bool, now: Instant) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(m.id));
        o.insert("name".into(), json!(m.name));
        o.insert("state".into(), json!(m.state));
        o.insert("region".into(), json!(m.region));
        o.insert("instance_id".into(), json!(m.instance_id));
        o.insert("version".into(), json!(m.instance_id));
        o.insert("private_ip".into(), json!(m.private_ip));
        o.insert(
            "created_at".into(),
            json!(util::rfc3339(self.wall(m.created_at))),
        );
        o.insert(
            "updated_at".into(),
            json!(util::rfc3339(self.wall(m.updated_at))),
        );
        if m.host_status == "ok" {
            o.insert("config".into(), m.config.clone());
        } else {
            o.insert("incomplete_config".into(), incomplete(&m.config));
        }
        if let Some(image) = m.config.get("image").and_then(Value::as_str) {
            o.insert("image_ref".into(), util::image_ref(image));
        }
        o.insert(
            "events".into(),
            Value::Array(m.events.iter().cloned().collect()),
        );
        o.insert("checks".into(), json!([]));
        o.insert("host_status".into(), json!(m.host_status));
        o.insert("cordoned".into(), json!(m.cordoned));
        if include_lease && let Some(l) = m.active_lease(now) {
            o.insert("lease".into(), self.stripped_lease(l));
        }
        Value::Object(o)
    }

    fn expires_secs(&self, l: &Lease) -> u64 {
        util::unix_ms(self.wall(l.expires)) / 1000
    }

    fn stripped_lease(&self, l: &Lease) -> Value {
        json!({"description": l.description, "expires_at": self.expires_secs(l), "owner": l.owner})
    }

    /// The lease wrapper body `{status:"success",data:{…}}`.
    pub(crate) fn lease_json(&self, l: &Lease) -> Value {
        json!({"status": "success", "data": {
            "nonce": l.nonce, "expires_at": self.expires_secs(l), "owner": l.owner,
            "description": l.description, "version": l.version,
        }})
    }

    /// The 409 message for a mutation on a leased machine.
    pub(crate) fn lease_held_message(&self, id: &str, l: &Lease) -> String {
        format!(
            "machine ID {id} lease currently held by {}, expires at {}",
            l.owner,
            util::rfc3339(self.wall(l.expires))
        )
    }

    /// Create a lease on a machine (no checks).
    pub(crate) fn new_lease(
        &mut self,
        now: Instant,
        ttl: Duration,
        owner: &str,
        description: &str,
    ) -> Lease {
        Lease {
            nonce: util::hex(&mut self.rng, 12),
            owner: owner.to_owned(),
            description: description.to_owned(),
            version: self.ulid_at(now),
            expires: now + ttl,
        }
    }

    /// Insert a new machine in `created` state (or in `state` directly) and return its id.
    pub(crate) fn insert_machine(&mut self, app: &str, spec: NewMachine, now: Instant) -> String {
        let mut id = util::hex(&mut self.rng, 14);
        while self.apps.values().any(|a| a.machines.contains_key(&id)) {
            id = util::hex(&mut self.rng, 14);
        }
        let name = spec
            .name
            .unwrap_or_else(|| util::machine_name(&mut self.rng));
        let instance_id = self.ulid_at(now);
        let a1 = self.rng.random_range(0..0xffffu32);
        let a2 = self.rng.random_range(0..0xffffu32);
        let private_ip = format!("fdaa:0:1:a7b:{a1:x}:{a2:x}:1:2");
        let event = json!({
            "id": self.ulid_at(now), "type": "launch", "status": "created", "source": "user",
            "timestamp": util::unix_ms(self.wall(now)),
        });
        let listed_after = now + Duration::from_millis(spec.list_lag_ms);
        let mut events = VecDeque::from([event]);
        if spec.state != "created" {
            events.push_front(json!({
                "id": self.ulid_at(now), "type": event_type(&spec.state), "status": spec.state, "source": "flyd",
                "timestamp": util::unix_ms(self.wall(now)),
            }));
        }
        let m = Machine {
            id: id.clone(),
            name,
            state: spec.state.clone(),
            region: spec.region,
            instance_id,
            private_ip,
            created_at: now,
            updated_at: now,
            config: spec.config,
            host_status: spec.host_status,
            events,
            cordoned: false,
            lease: None,
            pending: VecDeque::new(),
            listed_after,
            event_seq: 0,
            fails_first_boot: false,
        };
        if let Some(a) = self.apps.get_mut(app) {
            a.machines.insert(id.clone(), m);
        }
        self.note_started(app);
        id
    }
}

/// What [`World::insert_machine`] needs.
#[derive(Debug)]
pub(crate) struct NewMachine {
    pub(crate) name: Option<String>,
    pub(crate) state: String,
    pub(crate) region: String,
    pub(crate) config: Value,
    pub(crate) host_status: String,
    pub(crate) list_lag_ms: u64,
}

fn set_state_inner(m: &mut Machine, state: &str, at: Instant, wall: SystemTime, source: &str) {
    if m.state == state {
        return;
    }
    m.state = state.to_owned();
    m.updated_at = at;
    let kind = event_type(state);
    let ms = util::unix_ms(wall);
    m.event_seq += 1;
    m.events.push_front(json!({
        "id": format!("{}{:016}", m.instance_id.get(..10).unwrap_or("0000000000"), m.event_seq),
        "type": kind, "status": state, "source": source, "timestamp": ms,
    }));
    m.events.truncate(MAX_EVENTS);
}

/// The partial config shown as `incomplete_config` when the host is not `ok`.
fn incomplete(config: &Value) -> Value {
    let mut o = Map::new();
    for key in ["image", "metadata", "guest"] {
        if let Some(v) = config.get(key) {
            o.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(o)
}

/// The event `type` recorded when a machine enters `state`.
fn event_type(state: &str) -> &'static str {
    match state {
        "created" => "launch",
        "starting" | "started" => "start",
        "stopping" | "stopped" => "exit",
        "suspending" | "suspended" => "suspend",
        "destroying" | "destroyed" => "destroy",
        _ => "update",
    }
}

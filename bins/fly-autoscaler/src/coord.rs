//! Coordination of replicas through PostgreSQL (`postgres-url`): which apps this replica may act
//! on. Without a URL nothing here runs and the process acts on every app, as it always did.
//!
//! # Design
//!
//! - One dedicated connection per replica (tokio-postgres; TLS over the workspace's rustls with
//!   the webpki roots when the URL says `sslmode=require`, plain otherwise), its
//!   `application_name` is `fly-autoscaler/<replica id>` (the id is random at start).
//! - Each app is owned through a **session advisory lock** whose key is [`lock_key`]: the FNV-1a
//!   64-bit hash of `"fly-autoscaler:" + app` read as a signed `bigint`. The key is part of the
//!   protocol between versions: it never changes. The server releases the lock when the session
//!   ends, including when it notices a dead peer (the session sets short server-side TCP
//!   keepalives, see [`CoordPolicy`]).
//! - Live replicas are the sessions of the same database whose `application_name` starts with
//!   `fly-autoscaler/` (`pg_stat_activity`): no gossip, no heartbeat table.
//! - Every [`CoordPolicy::heartbeat`] a background task counts the live replicas (this query is
//!   also the session's confirmation, bounded by [`CoordPolicy::query_timeout`]), computes the
//!   fair share `⌈apps / replicas⌉`, takes unheld apps (orphans included) with
//!   `pg_try_advisory_lock` while under it, and, when it holds more than share + slack, releases
//!   back down to the share (`pg_advisory_unlock`), never an app whose tick is acting.
//! - **Fail closed**: [`Coordinator::begin_acting`] (asked by a tick just before it executes its
//!   plan) answers only for an app whose lock is held on a session confirmed within the last
//!   `heartbeat + query_timeout`. A query that fails or times out drops every ownership at once,
//!   closes the connection and reconnects with a bounded backoff; apps are acquired again
//!   afterwards.
//!
//! - The state the ticks remember (target history, last scale-up, fallback values, region
//!   cursor, decision records) is kept in the database on the same session ([`crate::store`]):
//!   the schema is migrated when a session opens, a tick loads an app's state when this replica
//!   took the app (a new [`Coordinator::ownership`] number) and saves it after each tick, a save
//!   landing only while the session holds the app's lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_postgres::config::{Host, SslMode};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::telemetry as m;

/// The prefix of every replica's `application_name` (followed by the replica id).
pub const APPLICATION_PREFIX: &str = "fly-autoscaler/";

/// The prefix of a dry-run replica's `application_name`: it is not counted among the live
/// replicas (it takes no app, so counting it would shrink the others' fair share and leave apps
/// unowned).
pub const SHADOW_PREFIX: &str = "fly-autoscaler-shadow/";

/// The prefix hashed with the app name into its lock key (the namespace of the locks).
pub const LOCK_NAMESPACE: &str = "fly-autoscaler:";

/// The advisory lock key of `app`: FNV-1a 64 of `"fly-autoscaler:" + app`, as PostgreSQL's signed
/// `bigint`. Stable across versions (replicas of different versions must agree on it).
pub fn lock_key(app: &str) -> i64 {
    fnv1a64(&format!("{LOCK_NAMESPACE}{app}"))
}

/// FNV-1a 64 of `text`, as PostgreSQL's signed `bigint` (the advisory lock keys).
pub fn fnv1a64(text: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// The knobs of the coordination (defaults in [`CoordPolicy::default`]).
///
/// Bounds they give: a replica that loses the database stops acting within
/// `heartbeat + query_timeout` (3 s by default); an app whose owner died is taken over within
/// about one `heartbeat` after the server released the lock (at once for a process that exited
/// or was killed: the kernel closes its socket; for a silent peer the server notices after its
/// keepalives, `keepalive_idle + keepalive_interval × keepalive_count`, 11 s by default), plus
/// the new owner's tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordPolicy {
    /// Period of the background round (count replicas, confirm, acquire, release). Default 2 s.
    pub heartbeat: Duration,
    /// Bound of each query; a query over it loses the session. Default 1 s.
    pub query_timeout: Duration,
    /// Bound of a connection attempt (TCP, TLS, startup). Default 5 s.
    pub connect_timeout: Duration,
    /// First delay before reconnecting; doubled after each failed attempt. Default 250 ms.
    pub min_backoff: Duration,
    /// Largest delay between two connection attempts. Default 5 s.
    pub max_backoff: Duration,
    /// Apps a replica may hold above its fair share before it releases some. Default 1.
    pub slack: usize,
    /// Idle time before TCP keepalive probes, both sides (the server's `tcp_keepalives_idle`
    /// for this session). Default 5 s.
    pub keepalive_idle: Duration,
    /// Time between two keepalive probes. Default 2 s.
    pub keepalive_interval: Duration,
    /// Unanswered probes before the peer is declared dead. Default 3.
    pub keepalive_count: u32,
}

impl Default for CoordPolicy {
    fn default() -> Self {
        CoordPolicy {
            heartbeat: Duration::from_secs(2),
            query_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            slack: 1,
            keepalive_idle: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(2),
            keepalive_count: 3,
        }
    }
}

impl CoordPolicy {
    /// How long a confirmation of the session stands: `heartbeat + query_timeout`. Past it, the
    /// replica acts on nothing (the fail-closed bound).
    pub fn confirmation_ttl(&self) -> Duration {
        self.heartbeat + self.query_timeout
    }

    /// The policy from the three configuration knobs (`postgres-heartbeat`,
    /// `postgres-query-timeout`, `postgres-slack`); the rest keeps its default.
    ///
    /// The keepalives follow the heartbeat so that the fencing margin always holds:
    /// `keepalive_interval = ⌈heartbeat⌉` and `keepalive_idle = ⌈2.5 × heartbeat⌉` (whole
    /// seconds, what the server takes), 3 probes, so the server drops a silent session
    /// (and its locks) no sooner than `5.5 × heartbeat` after the last heartbeat, while the
    /// replica has stopped acting after `heartbeat + query_timeout` (< `2 × heartbeat` when
    /// `query_timeout < heartbeat`, which the configuration checks). The defaults
    /// (2 s, 1 s, 1) give [`CoordPolicy::default`].
    pub fn from_knobs(heartbeat: Duration, query_timeout: Duration, slack: usize) -> Self {
        fn ceil_secs(d: Duration) -> Duration {
            Duration::from_secs((d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1))
        }
        CoordPolicy {
            heartbeat,
            query_timeout,
            slack,
            keepalive_idle: ceil_secs(heartbeat.saturating_mul(5) / 2),
            keepalive_interval: ceil_secs(heartbeat),
            keepalive_count: 3,
            ..CoordPolicy::default()
        }
    }

    /// When the server declares a silent session dead and releases its locks, counted from the
    /// last answered probe: `keepalive_idle + keepalive_interval × keepalive_count`.
    pub fn keepalive_detection(&self) -> Duration {
        self.keepalive_idle + self.keepalive_interval * self.keepalive_count
    }
}

/// The fair share of one replica: `⌈apps / replicas⌉` (replicas counted at least 1).
pub fn fair_share(apps: usize, replicas: usize) -> usize {
    apps.div_ceil(replicas.max(1))
}

/// What to release and how many apps to try to acquire: apps no longer listed are released; above
/// `share + slack` (or above `share` when a replica just joined, `joined`, so that the newcomer
/// finds apps to take) the excess is released down to `share`; `busy` apps are never released.
fn rebalance(
    owned: &BTreeSet<String>,
    apps: &BTreeSet<String>,
    busy: &HashMap<String, usize>,
    share: usize,
    slack: usize,
    joined: bool,
) -> (Vec<String>, usize) {
    let mut release: Vec<String> = owned
        .iter()
        .filter(|a| !apps.contains(*a) && !busy.contains_key(*a))
        .cloned()
        .collect();
    let kept: Vec<&String> = owned.iter().filter(|a| apps.contains(*a)).collect();
    let limit = if joined { share } else { share + slack };
    if kept.len() > limit {
        let excess = kept.len() - share;
        release.extend(
            kept.iter()
                .rev()
                .filter(|a| !busy.contains_key(**a))
                .take(excess)
                .map(|a| (*a).clone()),
        );
    }
    (release, share.saturating_sub(kept.len()))
}

/// An error of the coordination connection. Never carries the URL (it holds a password).
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The URL does not parse (the message names no part of it).
    #[error("postgres-url is not a valid PostgreSQL URL or connection string")]
    InvalidUrl,
    /// Connecting failed or timed out.
    #[error("connecting to PostgreSQL at {host}: {message}")]
    Connect {
        /// Host and port (never the user or password).
        host: String,
        /// What failed.
        message: String,
    },
    /// A query failed.
    #[error("coordination query failed: {0}")]
    Query(String),
    /// A query did not answer within the query timeout.
    #[error("coordination query timed out after {0:?}")]
    Timeout(Duration),
}

/// The PostgreSQL URL, parsed; `Debug` shows the host only.
#[derive(Clone)]
struct Target {
    config: tokio_postgres::Config,
    host: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target").field("host", &self.host).finish()
    }
}

impl Target {
    fn parse(url: &SecretString) -> Result<Target, CoordError> {
        let config: tokio_postgres::Config = url
            .expose_secret()
            .parse()
            .map_err(|_| CoordError::InvalidUrl)?;
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        Ok(Target {
            config,
            host: format!("{host}:{port}"),
        })
    }
}

/// Live replicas: the sessions of this database named `fly-autoscaler/…` (also the session's
/// confirmation: it answers only on a live session), and who holds which advisory lock (the
/// `bigint` keys rebuilt from `pg_locks`' halves, with the holder's `application_name`).
const COUNT_REPLICAS: &str = "select \
     (select count(*) from pg_stat_activity \
         where datname = current_database() and application_name like 'fly-autoscaler/%'), \
     coalesce(array_agg((l.classid::int8 << 32) | l.objid::int8), '{}'::int8[]), \
     coalesce(array_agg(a.application_name), '{}'::text[]) \
     from pg_locks l join pg_stat_activity a on a.pid = l.pid \
     where l.locktype = 'advisory' and l.granted and l.objsubid = 1 \
     and l.database = (select oid from pg_database where datname = current_database()) \
     and a.application_name like 'fly-autoscaler/%'";
/// Releases the given locks.
const UNLOCK: &str = "select pg_advisory_unlock(k) from unnest($1::bigint[]) as k";
/// Tries each given lock once, in order (one boolean per key).
const TRY_LOCK: &str = "select pg_try_advisory_lock(t.k) \
     from unnest($1::bigint[]) with ordinality as t(k, i) order by t.i";

/// The statements of one session, prepared once.
#[derive(Debug)]
struct Statements {
    count: tokio_postgres::Statement,
    unlock: tokio_postgres::Statement,
    try_lock: tokio_postgres::Statement,
}

/// What the coordinator knows, under one lock.
#[derive(Debug, Default)]
struct State {
    /// The apps the loop manages (set by the loop after each app-list read).
    apps: BTreeSet<String>,
    /// The apps whose lock this replica's current session holds.
    owned: BTreeSet<String>,
    /// When the last successful confirmation query was sent (the session was alive after it).
    confirmed_at: Option<Instant>,
    /// Live replicas at the last count.
    replicas: usize,
    /// Ticks acting per app ([`ActGuard`]): such an app is not released voluntarily.
    busy: HashMap<String, usize>,
    /// Per owned app, the number of the acquisition that gave it (a new number each time the
    /// lock is taken again): a tick reloads the app's stored state when it changes.
    tokens: HashMap<String, u64>,
    /// The last acquisition number given.
    last_token: u64,
    /// Who held each managed app's lock at the last round (app → replica id); apps nobody
    /// held are absent.
    holders: BTreeMap<String, String>,
    /// The live session, for the state store (`None` between sessions).
    session: Option<Session>,
    /// A dry run: the session is named with [`SHADOW_PREFIX`] and holds no app.
    shadow: bool,
}

/// The session's client and whether the state store is usable on it.
#[derive(Debug, Clone)]
struct Session {
    client: Arc<tokio_postgres::Client>,
    /// The store's statements, prepared once the schema is migrated (`None`: no store on this
    /// session, e.g. the role may not create tables; the loop then keeps state in memory only).
    store: Option<Arc<StoreStatements>>,
}

/// The store's statements ([`crate::store`]).
#[derive(Debug)]
struct StoreStatements {
    load: tokio_postgres::Statement,
    save: tokio_postgres::Statement,
}

/// Whether a save of an app's state landed ([`Coordinator::save_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Written.
    Ok,
    /// Not written: this session does not hold the app's lock (another replica may own it).
    Fenced,
    /// No store on this session (coordination off, no session, or no schema).
    NoStore,
}

/// One app's state row read back ([`Coordinator::load_state`]).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The JSON document ([`crate::store::StoredApp`]).
    pub state: String,
    /// The replica that wrote it.
    pub holder: String,
    /// When it was written (Unix seconds, the database's clock).
    pub updated_at: f64,
}

/// The coordination of this replica with the others (see the module docs). Shared by the loop,
/// the ticks and `/status`.
#[derive(Debug)]
pub struct Coordinator {
    id: String,
    policy: CoordPolicy,
    host: String,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

/// While held, the app's tick is acting: the coordinator does not release the app voluntarily
/// (a lost session still drops it). Returned by [`Coordinator::begin_acting`].
#[derive(Debug)]
pub struct ActGuard {
    coord: Arc<Coordinator>,
    app: String,
}

impl Drop for ActGuard {
    fn drop(&mut self) {
        let mut st = self.coord.lock();
        if let Some(n) = st.busy.get_mut(&self.app) {
            *n -= 1;
            if *n == 0 {
                st.busy.remove(&self.app);
            }
        }
    }
}

/// A random replica id: 12 hex digits from the standard library's random hasher keys.
fn random_id() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

impl Coordinator {
    /// Parses `url` and starts the background task (it connects, then keeps the session and the
    /// locks) until `shutdown` is cancelled; on cancellation every ownership is dropped and the
    /// connection closed (the server releases the locks). A database that cannot be reached is
    /// not an error here: the replica acts on nothing until it connects.
    pub fn start(
        url: &SecretString,
        policy: CoordPolicy,
        shutdown: CancellationToken,
    ) -> Result<Arc<Coordinator>, CoordError> {
        Self::start_with_id(url, policy, random_id(), shutdown)
    }

    /// [`Coordinator::start`] with a given replica id (tests; at most 47 characters).
    pub fn start_with_id(
        url: &SecretString,
        policy: CoordPolicy,
        id: String,
        shutdown: CancellationToken,
    ) -> Result<Arc<Coordinator>, CoordError> {
        let target = Target::parse(url)?;
        let (changed, _) = watch::channel(0);
        let coord = Arc::new(Coordinator {
            id,
            policy,
            host: target.host.clone(),
            state: Mutex::new(State::default()),
            changed,
        });
        metrics::gauge!(m::OWNED_APPS).set(0.0);
        metrics::counter!(m::LOCK_ACQUISITIONS).increment(0);
        metrics::counter!(m::LOCK_LOSSES).increment(0);
        info!(replica = %coord.id, host = %coord.host, heartbeat = ?policy.heartbeat, "coordination through PostgreSQL on");
        tokio::spawn(coord.clone().run(target, shutdown));
        Ok(coord)
    }

    /// This replica's id (random at start; `application_name` = `fly-autoscaler/<id>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The knobs.
    pub fn policy(&self) -> &CoordPolicy {
        &self.policy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn confirmed(&self, st: &State) -> bool {
        st.confirmed_at
            .is_some_and(|t| t.elapsed() < self.policy.confirmation_ttl())
    }

    /// Makes this replica a shadow (a dry run: from its next round it releases its apps, takes
    /// none and is not counted among the live replicas) or a live replica again.
    pub fn set_shadow(&self, shadow: bool) {
        self.lock().shadow = shadow;
    }

    /// The session's `application_name`.
    fn application_name(&self, shadow: bool) -> String {
        let prefix = if shadow {
            SHADOW_PREFIX
        } else {
            APPLICATION_PREFIX
        };
        format!("{prefix}{}", self.id)
    }

    /// Tells the coordinator which apps the loop manages (after each app-list read).
    pub fn set_apps<'a>(&self, apps: impl IntoIterator<Item = &'a String>) {
        let apps: BTreeSet<String> = apps.into_iter().cloned().collect();
        self.lock().apps = apps;
    }

    /// Whether this replica may act on `app` now: its lock is held on a session confirmed within
    /// the last `heartbeat + query_timeout`. The loop ticks only such apps.
    pub fn may_act(&self, app: &str) -> bool {
        let st = self.lock();
        self.confirmed(&st) && st.owned.contains(app)
    }

    /// [`Coordinator::may_act`], and if so a guard that keeps the app from being released
    /// voluntarily while the tick acts. Asked by a tick just before it executes its plan.
    pub fn begin_acting(self: &Arc<Self>, app: &str) -> Option<ActGuard> {
        let mut st = self.lock();
        if !(self.confirmed(&st) && st.owned.contains(app)) {
            return None;
        }
        *st.busy.entry(app.to_owned()).or_default() += 1;
        Some(ActGuard {
            coord: self.clone(),
            app: app.to_owned(),
        })
    }

    /// The apps this replica may act on now (empty when the session is not confirmed).
    pub fn owned(&self) -> Vec<String> {
        let st = self.lock();
        if self.confirmed(&st) {
            st.owned.iter().cloned().collect()
        } else {
            Vec::new()
        }
    }

    /// Live replicas at the last count (0 before the first).
    pub fn replicas(&self) -> usize {
        self.lock().replicas
    }

    /// The number of the acquisition by which this replica holds `app` (a new number each time
    /// the lock is taken again), when it may act on it: a tick whose remembered state was loaded
    /// under another number loads it again from the database.
    pub fn ownership(&self, app: &str) -> Option<u64> {
        let st = self.lock();
        if self.confirmed(&st) && st.owned.contains(app) {
            st.tokens.get(app).copied()
        } else {
            None
        }
    }

    /// Who held each managed app's lock at the last round (app → replica id).
    pub fn holders(&self) -> BTreeMap<String, String> {
        self.lock().holders.clone()
    }

    /// What the status page shows of this replica ([`crate::page::ReplicaView`]).
    pub fn page_view(&self) -> crate::page::ReplicaView {
        let st = self.lock();
        crate::page::ReplicaView {
            id: self.id.clone(),
            confirmed: self.confirmed(&st),
            replicas: st.replicas,
            holders: st.holders.clone(),
        }
    }

    /// Whether the state store is usable on the current session.
    pub fn has_store(&self) -> bool {
        self.lock()
            .session
            .as_ref()
            .is_some_and(|s| s.store.is_some())
    }

    fn store_session(&self) -> Option<(Arc<tokio_postgres::Client>, Arc<StoreStatements>)> {
        let st = self.lock();
        let session = st.session.as_ref()?;
        Some((session.client.clone(), session.store.clone()?))
    }

    /// Reads `app`'s stored state on the coordination session, bounded by the query timeout.
    /// `Ok(None)`: no row (never saved), or no store on this session.
    pub async fn load_state(&self, app: &str) -> Result<Option<Loaded>, CoordError> {
        let Some((client, statements)) = self.store_session() else {
            return Ok(None);
        };
        let rows = self.query(&client, &statements.load, &[&app]).await?;
        Ok(rows.first().map(|r| Loaded {
            state: r.get(0),
            holder: r.get(1),
            updated_at: r.get(2),
        }))
    }

    /// Writes `app`'s state (`state`: the JSON document) on the coordination session, only while
    /// that session holds the app's lock ([`crate::store::SAVE`]), bounded by the query timeout.
    pub async fn save_state(&self, app: &str, state: &str) -> Result<Saved, CoordError> {
        let Some((client, statements)) = self.store_session() else {
            return Ok(Saved::NoStore);
        };
        let (hi, lo) = crate::store::lock_halves(lock_key(app));
        let id = self.id.as_str();
        let written = match tokio::time::timeout(
            self.policy.query_timeout,
            client.execute(&statements.save, &[&app, &state, &id, &hi, &lo]),
        )
        .await
        {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(CoordError::Query(e.to_string())),
            Err(_) => return Err(CoordError::Timeout(self.policy.query_timeout)),
        };
        Ok(if written == 1 {
            Saved::Ok
        } else {
            Saved::Fenced
        })
    }

    /// Waits until ownership or the session's confirmation changes (the loop wakes on it).
    pub async fn changed(&self) {
        let mut rx = self.changed.subscribe();
        let _ = rx.changed().await;
    }

    /// What `/status` shows: `{"id", "host", "confirmed", "replicas", "owned", "holders",
    /// "unheld", "store"}`: `holders` maps every managed app whose lock was held at the last
    /// round to its replica id (this one's included), `unheld` lists the others.
    pub fn status_json(&self) -> serde_json::Value {
        let st = self.lock();
        let confirmed = self.confirmed(&st);
        let owned: Vec<&String> = if confirmed {
            st.owned.iter().collect()
        } else {
            Vec::new()
        };
        let unheld: Vec<&String> = st
            .apps
            .iter()
            .filter(|a| !st.holders.contains_key(*a))
            .collect();
        serde_json::json!({
            "id": self.id,
            "host": self.host,
            "confirmed": confirmed,
            "replicas": st.replicas,
            "owned": owned,
            "holders": st.holders,
            "unheld": unheld,
            "store": st.session.as_ref().is_some_and(|s| s.store.is_some()),
        })
    }

    /// Drops every ownership at once (the session is lost or closing).
    fn lose_all(&self, why: &str) {
        let lost = {
            let mut st = self.lock();
            st.confirmed_at = None;
            st.session = None;
            st.tokens.clear();
            st.holders.clear();
            std::mem::take(&mut st.owned)
        };
        metrics::gauge!(m::OWNED_APPS).set(0.0);
        if why == "shutdown" {
            info!(replica = %self.id, apps = lost.len(), "coordination session closed: the locks are released");
        } else if !lost.is_empty() {
            metrics::counter!(m::LOCK_LOSSES).increment(lost.len() as u64);
            warn!(replica = %self.id, apps = lost.len(), reason = why, "coordination session lost: acting on no app until the locks are taken again");
        }
        self.notify();
    }

    async fn run(self: Arc<Self>, target: Target, shutdown: CancellationToken) {
        let mut backoff = self.policy.min_backoff;
        loop {
            // The session is named for what this replica is now; a later change renames it.
            let shadow = self.lock().shadow;
            let connected = tokio::select! {
                () = shutdown.cancelled() => break,
                r = self.connect(&target, shadow) => r,
            };
            match connected {
                Ok((client, mut connection)) => {
                    let client = Arc::new(client);
                    backoff = self.policy.min_backoff;
                    info!(replica = %self.id, host = %self.host, "coordination session open");
                    let reason = self
                        .session(&client, &mut connection, shadow, &shutdown)
                        .await;
                    self.lose_all(&reason);
                    drop(client);
                    connection.abort();
                    if shutdown.is_cancelled() {
                        break;
                    }
                }
                Err(e) => {
                    warn!(replica = %self.id, error = %e, retry_in = ?backoff, "coordination: cannot connect")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
        self.lose_all("shutdown");
        info!(replica = %self.id, "coordination stopped");
    }

    async fn connect(
        &self,
        target: &Target,
        shadow: bool,
    ) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), CoordError> {
        let p = &self.policy;
        let mut config = target.config.clone();
        config
            .application_name(self.application_name(shadow))
            .connect_timeout(p.connect_timeout)
            .keepalives(true)
            .keepalives_idle(p.keepalive_idle)
            .keepalives_interval(p.keepalive_interval)
            .keepalives_retries(p.keepalive_count)
            .tcp_user_timeout(p.keepalive_idle + p.keepalive_interval * p.keepalive_count);
        let err = |message: String| CoordError::Connect {
            host: target.host.clone(),
            message,
        };
        let connect = async {
            if config.get_ssl_mode() == SslMode::Require {
                let tls = tls_connector().map_err(err)?;
                let (client, connection) =
                    config.connect(tls).await.map_err(|e| err(e.to_string()))?;
                Ok((client, tokio::spawn(drive(connection))))
            } else {
                config.ssl_mode(SslMode::Disable);
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| err(e.to_string()))?;
                Ok((client, tokio::spawn(drive(connection))))
            }
        };
        let (client, connection) = tokio::time::timeout(p.connect_timeout, connect)
            .await
            .map_err(|_| err(format!("timed out after {:?}", p.connect_timeout)))??;
        // The server side of the session notices a silent peer after these keepalives and then
        // releases its locks. Best effort: a server or pooler that refuses them keeps its defaults.
        let keepalives = format!(
            "SET tcp_keepalives_idle = {}; SET tcp_keepalives_interval = {}; SET tcp_keepalives_count = {}; SET tcp_user_timeout = {}",
            p.keepalive_idle.as_secs().max(1),
            p.keepalive_interval.as_secs().max(1),
            p.keepalive_count,
            (p.keepalive_idle + p.keepalive_interval * p.keepalive_count).as_millis()
        );
        match tokio::time::timeout(p.query_timeout, client.batch_execute(&keepalives)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "coordination: the server refused the session keepalive settings")
            }
            Err(_) => {
                connection.abort();
                return Err(err("setting the session keepalives timed out".into()));
            }
        }
        Ok((client, connection))
    }

    /// Keeps one session until it fails, its connection closes (noticed at once, not at the
    /// next round: a server that restarts quickly must not find this replica still acting) or
    /// `shutdown`; returns why it ended.
    async fn session(
        &self,
        client: &Arc<tokio_postgres::Client>,
        connection: &mut tokio::task::JoinHandle<()>,
        named_shadow: bool,
        shutdown: &CancellationToken,
    ) -> String {
        let statements = tokio::select! {
            r = self.prepare(client) => match r {
                Ok(s) => s,
                Err(e) => return e.to_string(),
            },
            _ = &mut *connection => return "connection closed".into(),
        };
        // The state store: the schema is created or migrated, then its statements prepared. A
        // store that cannot be set up (a role without CREATE, a timeout) leaves the replica
        // coordinating with its state in memory only, and says so.
        let store = tokio::select! {
            r = self.open_store(client) => r,
            _ = &mut *connection => return "connection closed".into(),
        };
        self.lock().session = Some(Session {
            client: client.clone(),
            store,
        });
        let mut every = tokio::time::interval(self.policy.heartbeat);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut named_shadow = named_shadow;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return "shutdown".into(),
                _ = &mut *connection => return "connection closed".into(),
                _ = every.tick() => {}
            }
            // A reload into or out of a dry run renames the session before the round counts.
            let shadow = self.lock().shadow;
            if shadow != named_shadow {
                let name = self.application_name(shadow);
                let sql = "select set_config('application_name', $1, false)";
                match tokio::time::timeout(self.policy.query_timeout, client.execute(sql, &[&name]))
                    .await
                {
                    Ok(Ok(_)) => named_shadow = shadow,
                    Ok(Err(e)) => return CoordError::Query(e.to_string()).to_string(),
                    Err(_) => return CoordError::Timeout(self.policy.query_timeout).to_string(),
                }
            }
            let round = tokio::select! {
                r = self.round(client, &statements) => r,
                _ = &mut *connection => return "connection closed".into(),
            };
            if let Err(e) = round {
                return e.to_string();
            }
        }
    }

    /// Migrates the schema and prepares the store's statements, bounded by a few query
    /// timeouts (the first start of a replica may create the tables). `None` when that failed.
    async fn open_store(&self, client: &tokio_postgres::Client) -> Option<Arc<StoreStatements>> {
        let bound = self.policy.query_timeout * 5;
        let open = async {
            let migrated = crate::store::migrate(client, &self.id)
                .await
                .map_err(|e| e.to_string())?;
            // Tables made by another role may not be usable by this one: better no store than
            // every tick failing to load.
            let usable: bool = client
                .query_one(crate::store::USABLE, &[])
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            if !usable {
                return Err("this role may not read and write fas_app_state".to_owned());
            }
            let statements = StoreStatements {
                load: client
                    .prepare(crate::store::LOAD)
                    .await
                    .map_err(|e| e.to_string())?,
                save: client
                    .prepare(crate::store::SAVE)
                    .await
                    .map_err(|e| e.to_string())?,
            };
            Ok::<_, String>((migrated, statements))
        };
        match tokio::time::timeout(bound, open).await {
            Ok(Ok((migrated, statements))) => {
                if migrated.from != migrated.to {
                    info!(replica = %self.id, from = migrated.from, to = migrated.to, "state schema migrated");
                } else if migrated.from > crate::store::latest_version() {
                    warn!(replica = %self.id, found = migrated.from, known = crate::store::latest_version(), "the state schema is newer than this version: reading and writing the fields this version knows");
                }
                Some(Arc::new(statements))
            }
            Ok(Err(e)) => {
                tracing::error!(replica = %self.id, error = %e, "state store unavailable: per-app state (scale-down window, cooldown, fallbacks, records) stays in memory on this session");
                None
            }
            Err(_) => {
                tracing::error!(replica = %self.id, bound = ?bound, "state store unavailable (schema migration timed out): per-app state stays in memory on this session");
                None
            }
        }
    }

    /// Prepares the session's statements (once per session: each round is then one round trip
    /// per query).
    async fn prepare(&self, client: &tokio_postgres::Client) -> Result<Statements, CoordError> {
        let prepare = async {
            Ok::<_, tokio_postgres::Error>(Statements {
                count: client.prepare(COUNT_REPLICAS).await?,
                unlock: client.prepare(UNLOCK).await?,
                try_lock: client.prepare(TRY_LOCK).await?,
            })
        };
        match tokio::time::timeout(self.policy.query_timeout * 3, prepare).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(CoordError::Query(e.to_string())),
            Err(_) => Err(CoordError::Timeout(self.policy.query_timeout * 3)),
        }
    }

    async fn query(
        &self,
        client: &tokio_postgres::Client,
        statement: &tokio_postgres::Statement,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, CoordError> {
        match tokio::time::timeout(self.policy.query_timeout, client.query(statement, params)).await
        {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(CoordError::Query(e.to_string())),
            Err(_) => Err(CoordError::Timeout(self.policy.query_timeout)),
        }
    }

    /// One round: count and confirm, release, acquire.
    async fn round(
        &self,
        client: &tokio_postgres::Client,
        statements: &Statements,
    ) -> Result<(), CoordError> {
        let sent = Instant::now();
        let rows = self.query(client, &statements.count, &[]).await?;
        let replicas = rows
            .first()
            .map_or(1, |r| usize::try_from(r.get::<_, i64>(0)).unwrap_or(1))
            .max(1);
        let held: Vec<(i64, String)> = rows
            .first()
            .map(|r| {
                let keys: Vec<i64> = r.get(1);
                let names: Vec<String> = r.get(2);
                keys.into_iter().zip(names).collect()
            })
            .unwrap_or_default();
        let (release, want, candidates, was_confirmed) = {
            let mut st = self.lock();
            let was_confirmed = self.confirmed(&st);
            st.confirmed_at = Some(sent);
            let by_key: HashMap<i64, &String> = st.apps.iter().map(|a| (lock_key(a), a)).collect();
            let holders: BTreeMap<String, String> = held
                .iter()
                .filter_map(|(k, name)| {
                    let app = by_key.get(k)?;
                    let id = name.strip_prefix(APPLICATION_PREFIX).unwrap_or(name);
                    Some(((*app).clone(), id.to_owned()))
                })
                .collect();
            st.holders = holders;
            // Within one session: a replica joined since the last round.
            let joined = was_confirmed && replicas > st.replicas;
            st.replicas = replicas;
            // A shadow (dry run) wants no app: it releases what it holds and takes nothing,
            // while still knowing the apps (for `holders`).
            let none = BTreeSet::new();
            let wanted = if st.shadow { &none } else { &st.apps };
            let share = fair_share(wanted.len(), replicas);
            let (release, want) = rebalance(
                &st.owned,
                wanted,
                &st.busy,
                share,
                self.policy.slack,
                joined,
            );
            // Unheld apps, in an order of this replica's own (so replicas try different apps
            // first and rarely collide on the same locks).
            let mut candidates: Vec<String> = wanted
                .iter()
                .filter(|a| !st.owned.contains(*a))
                .cloned()
                .collect();
            candidates.sort_by_key(|a| lock_key(&format!("{}/{a}", self.id)));
            (release, want, candidates, was_confirmed)
        };
        if !was_confirmed {
            self.notify();
        }
        if !release.is_empty() {
            {
                // Not acted on from now, even before the server confirms the unlock.
                let mut st = self.lock();
                for a in &release {
                    st.owned.remove(a);
                    st.tokens.remove(a);
                    st.holders.remove(a);
                }
            }
            let keys: Vec<i64> = release.iter().map(|a| lock_key(a)).collect();
            self.query(client, &statements.unlock, &[&keys]).await?;
            info!(replica = %self.id, apps = %release.join(","), replicas, "released apps above the fair share");
            self.notify();
        }
        let mut want = want;
        let mut acquired = Vec::new();
        let mut next = 0;
        while want > 0 && next < candidates.len() {
            let chunk = &candidates[next..(next + want).min(candidates.len())];
            next += chunk.len();
            let keys: Vec<i64> = chunk.iter().map(|a| lock_key(a)).collect();
            // Each key is tried once: at most `want` locks are taken.
            let rows = self.query(client, &statements.try_lock, &[&keys]).await?;
            for (app, row) in chunk.iter().zip(rows) {
                if row.get::<_, bool>(0) {
                    acquired.push(app.clone());
                    want -= 1;
                }
            }
        }
        let owned = {
            let mut st = self.lock();
            for app in &acquired {
                st.last_token += 1;
                let token = st.last_token;
                st.tokens.insert(app.clone(), token);
                st.holders.insert(app.clone(), self.id.clone());
            }
            st.owned.extend(acquired.iter().cloned());
            st.owned.len()
        };
        metrics::gauge!(m::OWNED_APPS).set(owned as f64);
        if !acquired.is_empty() {
            metrics::counter!(m::LOCK_ACQUISITIONS).increment(acquired.len() as u64);
            info!(replica = %self.id, apps = %acquired.join(","), owned, replicas, "acquired apps");
            self.notify();
        } else {
            debug!(replica = %self.id, owned, replicas, "coordination round");
        }
        Ok(())
    }
}

/// Resolves once this replica may no longer act on `app` (lock released or lost, or the session's
/// confirmation expired); never without a coordinator. A tick's executor stops launching machine
/// calls when it resolves.
pub async fn lost(coord: Option<&Arc<Coordinator>>, app: &str) {
    let Some(c) = coord else {
        return std::future::pending().await;
    };
    let mut rx = c.changed.subscribe();
    loop {
        let expires = {
            let st = c.lock();
            match st.confirmed_at {
                Some(t) if c.confirmed(&st) && st.owned.contains(app) => {
                    t + c.policy.confirmation_ttl()
                }
                _ => return,
            }
        };
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            () = tokio::time::sleep_until(expires) => {}
        }
    }
}

/// Drives a connection until it ends (its errors end the session's queries too).
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        debug!(error = %e, "coordination connection ended");
    }
}

/// The rustls connector: ring, the webpki roots (the workspace's one TLS stack).
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS configuration: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn lock_keys_are_fnv1a_64_of_the_namespaced_name_and_never_change() {
        // FNV-1a 64 of "" is the offset basis; these values are part of the protocol.
        assert_eq!(lock_key("app-1"), lock_key("app-1"));
        assert_ne!(lock_key("app-1"), lock_key("app-2"));
        let expect = {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in b"fly-autoscaler:my-app" {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x100_0000_01b3);
            }
            h as i64
        };
        assert_eq!(lock_key("my-app"), expect);
        expect_test::expect!["936688476897007388"].assert_eq(&lock_key("my-app").to_string());
    }

    #[test]
    fn fair_share_rounds_up() {
        assert_eq!(fair_share(12, 3), 4);
        assert_eq!(fair_share(13, 3), 5);
        assert_eq!(fair_share(1, 3), 1);
        assert_eq!(fair_share(5, 0), 5);
        assert_eq!(fair_share(0, 2), 0);
    }

    #[test]
    fn rebalance_releases_down_to_the_share_only_above_the_slack() {
        let apps = set(&["a", "b", "c", "d", "e", "f"]);
        let busy = HashMap::new();
        // 5 owned, share 4, slack 1: kept.
        let (rel, want) = rebalance(&set(&["a", "b", "c", "d", "e"]), &apps, &busy, 4, 1, false);
        assert!(rel.is_empty());
        assert_eq!(want, 0);
        // 6 owned, share 2, slack 1: down to 2.
        let (rel, want) = rebalance(&apps, &apps, &busy, 2, 1, false);
        assert_eq!(rel.len(), 4);
        assert_eq!(want, 0);
        // Under the share: acquire the difference.
        let (rel, want) = rebalance(&set(&["a"]), &apps, &busy, 3, 1, false);
        assert!(rel.is_empty());
        assert_eq!(want, 2);
    }

    #[test]
    fn a_replica_that_joins_gets_apps_even_when_the_others_are_within_the_slack() {
        // 12 apps on 3 replicas (4 each); a 4th joins: share 3, 4 <= 3 + 1 but the newcomer
        // would get nothing: each releases down to 3.
        let apps: BTreeSet<String> = (0..12).map(|i| format!("a{i:02}")).collect();
        let owned: BTreeSet<String> = apps.iter().take(4).cloned().collect();
        let busy = HashMap::new();
        let (rel, want) = rebalance(&owned, &apps, &busy, 3, 1, false);
        assert!(rel.is_empty());
        assert_eq!(want, 0);
        let (rel, want) = rebalance(&owned, &apps, &busy, 3, 1, true);
        assert_eq!(rel.len(), 1);
        assert_eq!(want, 0);
    }

    #[test]
    fn rebalance_releases_unlisted_apps_and_never_a_busy_one() {
        let apps = set(&["a", "b"]);
        let mut busy = HashMap::new();
        busy.insert("z".to_owned(), 1);
        busy.insert("b".to_owned(), 1);
        let (rel, _) = rebalance(&set(&["a", "b", "y", "z"]), &apps, &busy, 1, 0, false);
        // "y" is unlisted, "z" unlisted but busy; above share+slack (2 > 1) "a" goes, "b" is busy.
        assert_eq!(rel, vec!["y".to_owned(), "a".to_owned()]);
    }

    #[test]
    fn the_url_never_shows_in_debug_or_errors() {
        let url = SecretString::from("postgres://fas:hunter2-canary@db.example:6543/x".to_owned());
        let t = Target::parse(&url).unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.example:6543"), "{shown}");
        let bad = SecretString::from("postgres://fas:hunter2-canary@db:notaport/x".to_owned());
        let e = Target::parse(&bad).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn from_knobs_with_the_defaults_is_the_default_policy() {
        let p = CoordPolicy::from_knobs(Duration::from_secs(2), Duration::from_secs(1), 1);
        assert_eq!(p, CoordPolicy::default());
        assert_eq!(p.keepalive_detection(), Duration::from_secs(11));
        assert_eq!(p.confirmation_ttl(), Duration::from_secs(3));
    }

    #[test]
    fn from_knobs_rounds_the_keepalives_up_to_whole_seconds() {
        let p = CoordPolicy::from_knobs(Duration::from_millis(1500), Duration::from_millis(500), 0);
        assert_eq!(p.keepalive_interval, Duration::from_secs(2));
        assert_eq!(p.keepalive_idle, Duration::from_secs(4)); // 3.75 s
        assert_eq!(p.keepalive_count, 3);
        assert_eq!(p.slack, 0);
        let p = CoordPolicy::from_knobs(Duration::from_secs(10), Duration::from_secs(3), 2);
        assert_eq!(p.keepalive_interval, Duration::from_secs(10));
        assert_eq!(p.keepalive_idle, Duration::from_secs(25));
        assert_eq!(p.keepalive_detection(), Duration::from_secs(55));
    }

    proptest::proptest! {
        /// The fencing margin: the server releases a silent replica's locks (keepalive
        /// detection, at least 5.5 × heartbeat) only long after that replica stopped acting
        /// (heartbeat + query timeout, the query timeout being under the heartbeat).
        #[test]
        fn keepalive_detection_outlasts_the_fail_closed_bound(
            heartbeat_ms in 1_000u64..600_000,
            timeout_permille in 1u64..1000,
        ) {
            let heartbeat = Duration::from_millis(heartbeat_ms);
            let query_timeout = Duration::from_millis((heartbeat_ms * timeout_permille / 1000).max(1));
            proptest::prop_assume!(query_timeout < heartbeat);
            let p = CoordPolicy::from_knobs(heartbeat, query_timeout, 1);
            proptest::prop_assert!(p.keepalive_detection() > p.confirmation_ttl());
            proptest::prop_assert!(p.keepalive_detection().as_secs_f64() >= 5.5 * heartbeat.as_secs_f64());
        }
    }
}

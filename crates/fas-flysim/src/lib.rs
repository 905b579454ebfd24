//! An in-process fake of the Fly.io Machines API and of the GraphQL calls a metrics autoscaler makes.
//!
//! The simulator is a hyper 1 server bound to `127.0.0.1:0` (or any address). It serves the Machines API under
//! `{base}/v1/…` and GraphQL at `{base}/graphql`, following the "Simulator checklist" of `flyapi.md` §8. It is
//! written from the documented wire format only; it does not depend on the typed client (`fas-flyapi`).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use fas_flysim::{MachineSpec, SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::instant()).await?;
//! sim.add_app("acme", "web");
//! let id = sim.add_machine("web", MachineSpec::new().state("stopped").region("iad"));
//! // point a client at sim.base_url() with sim.token() ...
//! assert_eq!(sim.count_in_state("web", "stopped"), 1);
//! # let _ = id; Ok(()) }
//! ```
//!
//! # What it simulates
//! - **Orgs and apps**: `GET /v1/apps?org_slug=` (`{total_apps, apps:[…]}`), `GET /v1/apps/{app}`.
//! - **Machines**: list (`include_deleted`, `region`, `state=a,b`, `metadata.KEY=value`, `include_leases`;
//!   destroyed machines only with `include_deleted=true`), get, create (200, `state:"created"`; `config` kept
//!   exactly as sent, unknown request fields ignored; `region`, `name`, `skip_launch`, `lease_ttl`), destroy
//!   (`force` or `kill`), start/stop/suspend/cordon/uncordon, `wait` (408 at the timeout, 400 for `stopped`
//!   without `instance_id`/`version`, timeout ≤ 60 s), leases (GET/POST/DELETE).
//! - **Machine objects**: 14-hex-char ids, generated names, `instance_id`/`version` (26-char ULID-like),
//!   `image_ref` parsed from `config.image` (`registry/repository:tag@digest`; a deterministic fake digest is added
//!   when the image has none, as Fly resolves tags), events newest first with millisecond timestamps,
//!   `host_status` (`config` is replaced by `incomplete_config` when not `ok`), `cordoned`.
//! - **State machine** with configurable [`Timing`], computed lazily from stored deadlines on `tokio::time`, so
//!   tests can pause and advance the clock. Defaults: `created` 100–300 ms, `starting` 0.5–2 s, `stopping` 1–3 s,
//!   `suspending` 1–3 s, `destroying` 1–3 s, then `destroyed` stays visible to GET for 5 s before 404.
//!   Durations are drawn from a seeded RNG ([`SimConfig::seed`]). [`SimConfig::instant`] makes every transition
//!   immediate.
//! - **GraphQL**: `currentReleaseUnprocessed` (`{"data":{"app":{"currentRelease":…|null}}}`; an unknown app gives
//!   HTTP 200 with `errors[0].message` containing `Could not find App`), `organization(slug:)` and the paged
//!   `apps(…)` query (cursor pagination honouring `first`/`after`, optionally capped by
//!   [`SimConfig::graphql_page_cap`]). The query is recognised by the field names in its text.
//! - **Auth**: `Bearer X`, `FlyV1 X` or `Bearer FlyV1 X` with the configured token ([`DEFAULT_TOKEN`] unless
//!   changed); otherwise 401 `{"error":"Authenticate: token validation error"}`.
//! - **Errors**: `{"error":"…"}` bodies; unknown app → 404 `app not found`, unknown machine → 404
//!   `machine not found`. Every response has `content-type: application/json; charset=utf-8` and a
//!   `fly-request-id`.
//! - **Rate limits** ([`RateLimits`]): token buckets per (action, machine id); create and list are keyed by app;
//!   actions 1/s burst 3, get 5/s burst 10, list 1/s burst 3. Over the limit: 429
//!   `{"error":"resource_exhausted: rate limit exceeded"}` with `Retry-After` (whole seconds) when
//!   [`RateLimits::retry_after`] is on. They can be turned off.
//! - **Leases**: acquire → 201 `{status:"success",data:{nonce,expires_at,owner,description,version}}`, TTL from
//!   the body `{"ttl":N}` or `?ttl=N` (default 30 s); acquire while held → 409 unless the matching nonce is sent
//!   (a refresh); mutations on a leased machine without the matching `fly-machine-lease-nonce` → 409
//!   `machine ID … lease currently held by …`; leases expire on the tokio clock; [`Simulator::lease_all`] models a
//!   deploy.
//! - **Faults** ([`Faults`]): by probability or by script (one-shot, matched by route and method): any status
//!   (500/502/503/504…), connection reset (the connection closes without a response), delay, ambiguous create
//!   (the machine is created, then 408/500/502 is returned); a machine quota (422 `To create more than N machines
//!   per app please add a payment method`); `insufficient_capacity` per region (412 with `"status"`); list lag
//!   (a created machine appears in the list only after a delay); fixed latency on every request; boot failures
//!   (a created machine ends `failed`, [`Faults::boot_failure_probability`]) and machines whose every start
//!   fails ([`Faults::failing_starts`]). A request is handled in its own task, so one whose client gave up
//!   (a delay beyond the client's timeout) still takes effect, as on Fly. [`Simulator::injected_faults`]
//!   counts the faults by kind.
//! - **External actors**: [`Simulator::set_host_status`], [`Simulator::set_state`] (autostop/autostart),
//!   [`Simulator::add_machine`] with another (or no) process group, [`Simulator::set_release_status`].
//! - **Inspection**: [`Simulator::machines`], [`Simulator::count_in_state`], [`Simulator::request_log`]
//!   (method, path, query, body, status, route, time), [`Simulator::count_route`],
//!   [`Simulator::count_for_machine`], [`Simulator::peak_started`] (computed in time order even when the clock
//!   jumps), [`Simulator::rate_limited_count`], [`Simulator::connections`] (connections accepted, and over TLS
//!   the protocol chosen).
//! - **TLS** ([`Simulator::start_tls`]): a self-signed certificate made at start and ALPN offering `h2` and
//!   `http/1.1`, so a client's HTTP/2 path can be exercised; plain HTTP (the default) serves HTTP/1.1 and h2c.
//!
//! # Standalone binary
//! `fas-flysim --listen 127.0.0.1:4280 --scenario FILE.json` serves a [`Scenario`] (config toggles, orgs, apps
//! with machines and release status; unknown fields are errors) until Ctrl-C, for demos and manual testing.
//!
//! # UNVERIFIED behaviours: configurable, with these defaults ([`Outcomes`], [`RateLimits`])
//! | case | default | alternative |
//! |---|---|---|
//! | start on `started`/`starting`/`replacing` | 412 `failed_precondition: unable to start machine from current state: 'started'` | 200 no-op |
//! | stop on `stopped` | 200 `{"ok":true}` no-op | 412 |
//! | destroy of a running machine without `force`/`kill` | 412 | allowed |
//! | `Retry-After` on 429 | sent | not sent |
//! | rate limit of List Machines | 1/s burst 3 per app | any [`Bucket`] |
//!
//! # Interpretations (not settled by flyapi.md)
//! - Running states for the destroy rule: `started`, `starting`, `replacing`, `stopping`, `suspending`.
//! - Stop on `suspended`, `created` or `failed` goes straight to `stopped`; stop on `stopping` is a no-op.
//!   Start from `stopping`, `suspending`, `destroying` or `destroyed` is always 412.
//! - Destroy on `destroying`/`destroyed` (still visible) is a 200 no-op; destroy removes the lease.
//! - Mutations on a machine whose host is not `ok` answer 503 `unavailable: host for machine … is unreachable`.
//! - `wait` with `timeout` > 60 answers 400 (rather than clamping); `settled` matches any non-transient state.
//! - `wait`, lease and cordon calls are rate limited like the other actions, each route with its own bucket per
//!   machine; `GET /v1/apps` has a bucket per org slug; GraphQL is not rate limited.
//! - `summary=true` is ignored (full objects are returned).
//! - Times: wall-clock time = the wall clock at start plus the tokio time elapsed since start.
//!
//! # Invariants and the tests that guard them
//! - Transitions are applied in time order across an app's machines, so [`Simulator::peak_started`] is exact
//!   (`tests/sim_state.rs`).
//! - The lock on the world is never held across an await (the `wait` handler re-locks after each sleep).
//! - Rate limits, leases, auth, 404s, filters, pagination, faults and list lag: `tests/sim_*.rs`; the typed
//!   client against the simulator: `tests/client_vs_sim.rs`.
// Library crates document every public item; the workspace lint only warns (binaries).
#![deny(missing_docs)]

mod api;
mod config;
mod conn;
mod graphql;
mod scenario;
mod server;
mod sim;
mod util;
mod world;

pub use config::{
    Bucket, DEFAULT_TOKEN, DurRange, FaultKind, FaultMatch, Faults, Outcomes, RandomFault,
    RateLimits, ScriptedFault, SimConfig, Timing,
};
pub use conn::ConnectionStats;
pub use scenario::{Scenario, ScenarioApp, ScenarioMachines};
pub use sim::{DEFAULT_IMAGE, MachineSpec, Simulator};
pub use world::{LoggedRequest, SimMachine};

/// Errors of the simulator crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A scripted or random fault asked the server to drop the connection without a response.
    #[error("connection reset injected by a fault")]
    ConnectionReset,
    /// A scenario file is not valid JSON or does not match the schema.
    #[error("invalid scenario")]
    Scenario {
        /// The parse error (names the line, column and field).
        #[source]
        source: serde_json::Error,
    },
}

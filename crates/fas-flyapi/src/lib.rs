//! A typed client of the Fly.io Machines API ("flaps") and of the one GraphQL query family a
//! metrics autoscaler needs, written for `fly-autoscaler-rs`.
//!
//! # Example
//!
//! ```no_run
//! use fas_flyapi::{Client, ClientConfig, ListMachinesOptions, MachineState};
//!
//! # async fn run() -> Result<(), fas_flyapi::Error> {
//! let mut cfg = ClientConfig::new("FlyV1 fm2_...");
//! // The library never reads the environment; the binary passes FLY_FLAPS_BASE_URL here.
//! cfg.machines_base_url = "http://_api.internal:4280".to_owned();
//! let client = Client::new(cfg)?;
//!
//! let machines = client.list_machines("my-app", &ListMachinesOptions::default()).await?;
//! for m in machines.iter().filter(|m| {
//!     m.host_status.is_ok() && m.process_group() == Some("app") && m.state == MachineState::Stopped
//! }) {
//!     client.start_machine("my-app", &m.id, None).await?;
//! }
//!
//! // Skip apps that are being deployed (None = no release yet, not an error).
//! if client.current_release("my-app").await?.is_some_and(|r| r.in_progress()) {
//!     return Ok(());
//! }
//! # Ok(()) }
//! ```
//!
//! # Architecture
//!
//! - [`request`]: one pure function per endpoint builds an [`request::ApiRequest`] (method,
//!   path, query, nonce, JSON body, rate-limit key, retry class). Unit-tested, and checked
//!   on the wire by `tests/wire.rs` (wiremock).
//! - [`Client`]: one private `send()` takes a token from the client-side rate limiter, sends
//!   under the per-request timeout, maps the status to [`Error`] and retries per
//!   [`retry::should_retry`]. Transport: hyper 1 + hyper-util's pooled client (connection
//!   reuse) + hyper-rustls with the ring provider passed explicitly and webpki roots;
//!   HTTP/1.1 and HTTP/2 (negotiated by ALPN over TLS; plain `http://` such as
//!   `http://_api.internal:4280` uses HTTP/1.1). The connect timeout is separate.
//! - [`auth`]: the `Authorization` header, built exactly as fly-go does (pure functions).
//!   The token lives in a [`secrecy::SecretString`] and in header values marked sensitive; it
//!   never appears in `Debug`, `Display`, errors or logs (canary tests in `auth`, `config`,
//!   `client`, `tests/wire.rs` and `tests/logs.rs`, which captures every tracing event).
//! - Types ([`Machine`], [`MachineConfig`], …) decode tolerantly: missing and `null` fields
//!   take defaults, unknown fields are kept in `extra`. [`MachineConfig`] is the exact JSON
//!   object, so a config fetched and sent back in a create is preserved byte for byte
//!   semantically, unknown fields included (`tests/decode.rs` round-trip test).
//!
//! # Retry policy
//!
//! [`RetryPolicy`] (default: 4 attempts, backoff 100 ms doubling to 2 s with jitter in
//! `[0.5, 1]` of the step, the whole call within 10 s). A `Retry-After` header on a 429
//! replaces the computed backoff; when the wait would end past the total budget the error is
//! returned at once. The budget covers the whole call once its first request may go out (the
//! wait for the first rate-limiter token is pacing, bounded by the limiter's `max_wait`): every
//! attempt (each attempt's timeout is cut to what is left), every retry's rate-limiter wait and
//! every backoff, so retries never outlive `max_total` (`tests/resilience.rs`,
//! `*_within_the_total_budget`).
//!
//! - GETs and GraphQL queries are retried on 429, 5xx, client timeouts and transport errors.
//! - Mutations (start, stop, suspend, destroy, lease, **create**) are retried only when no side
//!   effect is proven: a connect error (nothing was sent), 429 or 503. A create is never
//!   retried after 408, 500, 502, 504, a timeout or a mid-flight connection error: the machine
//!   may exist; the caller must re-list. (fly-go replays creates on 502/503; we do not.)
//! - 408 on wait (the server-side wait expired) is returned, not retried.
//!
//! # Client-side rate limiting
//!
//! [`RateLimitPolicy`] keeps each (action, key) within Fly's published budget so a healthy
//! run sees no 429: start/stop/suspend/destroy/wait/lease 1/s burst 3 per machine id; create
//! 1/s burst 3 per app; get 5/s burst 10 per machine id; list machines 1/s burst 3 per app and
//! REST list apps 1/s burst 3 per org. The defaults pace 10 % under these rates (0.9/s, 4.5/s):
//! the server's bucket starts when the first request arrives, after the client's connect, so a
//! request paced exactly on time could land early. GraphQL is not limited. A request that finds its bucket
//! empty waits (with `tokio::time`) for its token; if the wait would exceed `max_wait`
//! (default 30 s) it fails with [`Error::LocalRateLimit`] instead. Buckets are evicted once
//! full again (then they are equivalent to new ones), keeping memory bounded.
//!
//! # Interpretations of unverified or ambiguous facts
//!
//! - **List machines rate limit**: Fly publishes none; assumed the generic 1/s burst 3, keyed
//!   by app. Create is keyed by app (no machine id exists yet).
//! - **`Retry-After`**: no Fly source says it is sent; it is honoured when present (seconds or
//!   HTTP date) and otherwise the jittered backoff applies.
//! - **Destroy**: [`DestroyOptions::default`] is `force: true` sent as `?force=true` (the
//!   documented name); [`DestroyParam::Kill`] sends `?kill=<bool>` like fly-go / the Go
//!   autoscaler.
//! - **Missing `host_status`**: decoded as `ok` when the machine has a `config`, else
//!   `unknown` (Fly drops `config` exactly when the host is not ok).
//! - **Lease acquire**: the TTL is sent both as the documented body `{"ttl":N}` and as
//!   fly-go's `?ttl=N` query, so either server reading works.
//! - **Wait**: `state` comma-separated (several allowed, as in current fly-go), `timeout` in
//!   whole seconds clamped to 1–60; the per-request timeout is raised to that plus 5 s.
//! - **Start on `started` / stop on `stopped`**: undocumented; whatever the server answers is
//!   returned as a typed error (usually [`Error::PreconditionFailed`]) and not retried. A 200
//!   start with `"status":"error"` is [`Error::StartFailed`] (as flyctl).
//! - **Organization query**: `limitedAccessTokens` (fly-go v0.1.36) is left out, as newer
//!   fly-go does; only the org `id` is used.
//! - **Release in progress**: [`Release::in_progress`] is `status == "running"` only, as the
//!   Go autoscaler; `pending` does not block scaling.
//! - **FullImageRef**: an empty registry gives `repository…` without fly-go's leading `/`.
//! - **Process group**: empty metadata values count as absent; there is no `"app"` default.
//! - **Token parsing**: empty comma-separated pieces are dropped (fly-go would keep them).
// Library crates document every public item; the workspace lint only warns (binaries).
#![deny(missing_docs)]

pub mod auth;
mod client;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod graphql;
mod ratelimit;
pub mod request;
mod responses;
pub mod retry;
mod types;

pub use client::Client;
pub use config::{
    ClientConfig, DEFAULT_GRAPHQL_BASE_URL, DEFAULT_MACHINES_BASE_URL, INTERNAL_MACHINES_BASE_URL,
    Rate, RateLimitPolicy, RetryPolicy, default_user_agent,
};
pub use error::Error;
pub use request::{
    CreateMachineRequest, DestroyOptions, DestroyParam, LeaseRequest, ListMachinesOptions,
    StopRequest, WaitOptions,
};
pub use responses::{
    App, AppOrganization, Lease, OrgApp, OrgAppRelease, OrgRef, Release, ReleaseUser,
    StartResponse, WaitResponse,
};
pub use types::{
    CheckStatus, ContainerStatus, HostStatus, ImageRef, Machine, MachineConfig, MachineEvent,
    MachineLease, MachineState,
};

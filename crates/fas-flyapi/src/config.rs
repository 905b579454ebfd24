//! Client configuration: base URLs, token, timeouts, retry and rate-limit policies.

use secrecy::SecretString;
use std::time::Duration;

/// The public Machines API base URL.
pub const DEFAULT_MACHINES_BASE_URL: &str = "https://api.machines.dev";
/// The Machines API base URL reachable over 6PN/WireGuard (plain HTTP).
pub const INTERNAL_MACHINES_BASE_URL: &str = "http://_api.internal:4280";
/// The GraphQL base URL (`/graphql` is appended).
pub const DEFAULT_GRAPHQL_BASE_URL: &str = "https://api.fly.io";

/// The default user agent, `fly-autoscaler-rs/<crate version>`.
pub fn default_user_agent() -> String {
    format!("fly-autoscaler-rs/{}", env!("CARGO_PKG_VERSION"))
}

/// Everything [`crate::Client::new`] needs. `Debug` never shows the token.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Machines API base URL without `/v1` (default [`DEFAULT_MACHINES_BASE_URL`]; also
    /// [`INTERNAL_MACHINES_BASE_URL`] or a simulator's `http://127.0.0.1:PORT`).
    pub machines_base_url: String,
    /// GraphQL base URL without `/graphql` (default [`DEFAULT_GRAPHQL_BASE_URL`]).
    pub graphql_base_url: String,
    /// The API token, with or without a `Bearer `/`FlyV1 ` prefix; may hold several tokens
    /// separated by commas.
    pub token: SecretString,
    /// Per-request timeout, covering connect, send and reading the whole body (default 10 s).
    /// A wait call uses at least its own server-side timeout plus 5 s. An attempt's timeout is
    /// cut to what is left of the call's [`RetryPolicy::max_total`].
    pub timeout: Duration,
    /// TCP connect timeout (default 5 s).
    pub connect_timeout: Duration,
    /// `User-Agent` header (default [`default_user_agent`]).
    pub user_agent: String,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Client-side rate limiting.
    pub rate_limit: RateLimitPolicy,
    /// Maximum number of GraphQL pages fetched by [`crate::Client::org_apps`] (default 50,
    /// i.e. 10 000 apps at 200 per page).
    pub max_graphql_pages: usize,
    /// HTTP/2 connections per host (default 10; 0 is treated as 1), used once the server has
    /// answered over HTTP/2 (negotiated through ALPN over TLS); the calls go to them in turn.
    ///
    /// One HTTP/2 connection multiplexes many calls, but a server caps its streams
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`: hyper's default 200, Go's 250, at least 100 per RFC
    /// 9113's advice) and hyper queues the calls beyond the cap instead of opening a second
    /// connection; ten connections carry 1 000 calls at once even at 100 streams each. Plain
    /// HTTP/1.1 (`http://_api.internal:4280`, the simulator) does not use them: each call in
    /// flight holds its own pooled connection.
    pub http2_connections: usize,
    /// Idle connections kept per host in a pool, for reuse by the next calls and ticks
    /// (default 1 024): at least as many as the executor's calls in flight,
    /// so that an HTTP/1.1 round of a thousand calls finds its connections open the next tick.
    pub pool_max_idle_per_host: usize,
    /// How long an idle pooled connection is kept (default 90 s, longer than the default 15 s
    /// interval, so each tick reuses the previous tick's connections).
    pub pool_idle_timeout: Duration,
    /// Trust anchors (DER certificates) for TLS. Empty (the default): Mozilla's roots
    /// (webpki-roots), as for `api.machines.dev`. Not empty: these certificates only, e.g. a
    /// private CA or a test server such as the simulator's TLS mode.
    pub tls_root_certificates_der: Vec<Vec<u8>>,
}

impl ClientConfig {
    /// A config with every default and the given token.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            machines_base_url: DEFAULT_MACHINES_BASE_URL.to_owned(),
            graphql_base_url: DEFAULT_GRAPHQL_BASE_URL.to_owned(),
            token: SecretString::from(token.into()),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            user_agent: default_user_agent(),
            retry: RetryPolicy::default(),
            rate_limit: RateLimitPolicy::default(),
            max_graphql_pages: 50,
            http2_connections: 10,
            pool_max_idle_per_host: 1_024,
            pool_idle_timeout: Duration::from_secs(90),
            tls_root_certificates_der: Vec::new(),
        }
    }
}

/// Bounded retries with jittered exponential backoff, all within one total budget.
///
/// Attempt `n` (1-based) that fails retryably waits `min(max_delay, initial_delay·2^(n-1))`
/// scaled by a random factor in `[0.5, 1.0]`, or the server's `Retry-After` when present.
///
/// # Guarantee: a call ends within `max_total`
///
/// A call of [`crate::Client`] returns (with the response, or the error of its last attempt)
/// within `max_total` of the moment its first request may go out, plus scheduling slack of a
/// few milliseconds:
///
/// - the wait for the first token of the client-side rate limiter is pacing, not retrying: it
///   is bounded by the limiter's own `max_wait`, and the budget starts after it;
/// - a retry's rate-limiter wait counts: a token that would come later than what is left of
///   the budget is not waited for (the last error is returned, nothing more is sent);
/// - each attempt's timeout ([`ClientConfig::timeout`]) is cut to what is left of the
///   budget, so a slow server ends the call with [`crate::Error::Timeout`] at the deadline;
/// - a backoff or `Retry-After` wait that would leave (almost) no time for the next attempt
///   is not slept: the last error is returned at once (waiting only to fail later helps no
///   one, and retrying before the server's `Retry-After` would be rude).
///
/// A wait call ([`crate::Client::wait_machine`]) asks for a longer attempt (its server-side
/// timeout plus 5 s); its budget is the larger of `max_total` and that attempt timeout.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (default 4; 1 disables retries).
    pub max_attempts: u32,
    /// First backoff (default 100 ms).
    pub initial_delay: Duration,
    /// Backoff cap (default 2 s).
    pub max_delay: Duration,
    /// Budget for one whole call once it may go out: all attempts and all waits between them
    /// (default 10 s; must be greater than zero).
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_total: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// A token-bucket rate: `per_second` tokens refill per second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Bucket size (requests allowed back to back).
    pub burst: u32,
}

impl Rate {
    /// Builds a rate.
    pub const fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }
}

/// Client-side token buckets keyed by (action, machine id or app name), so that a healthy run
/// never meets Fly's 429. Requests wait for a token (up to `max_wait`) instead of failing.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitPolicy {
    /// Turn the limiter off entirely.
    pub enabled: bool,
    /// Mutations per machine (start, stop, suspend, destroy, lease, wait) and create per app
    /// (default 0.9/s, burst 3: Fly's published per-action budget of 1/s burst 3, paced 10 %
    /// under so that a request sent exactly on time never arrives early: the server's bucket
    /// starts when the first request arrives, after the client's connect).
    pub action: Rate,
    /// Get machine, per machine (default 4.5/s, burst 10: Fly's published 5/s, 10 % under).
    pub get: Rate,
    /// List machines per app and list apps per org (default 0.9/s, burst 3; Fly publishes no
    /// separate number, this assumes the generic per-action budget, 10 % under).
    pub list: Rate,
    /// Longest a request may wait for a token before failing with
    /// [`crate::Error::LocalRateLimit`] (default 30 s).
    pub max_wait: Duration,
    /// Bucket count above which idle (full) buckets are evicted (default 1024).
    pub max_buckets: usize,
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            action: Rate::new(0.9, 3),
            get: Rate::new(4.5, 10),
            list: Rate::new(0.9, 3),
            max_wait: Duration::from_secs(30),
            max_buckets: 1024,
        }
    }
}

impl RateLimitPolicy {
    /// No client-side rate limiting.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_token() {
        let cfg = ClientConfig::new("FlyV1 fm2_CANARY-TOKEN-1234");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }

    #[test]
    fn defaults() {
        let cfg = ClientConfig::new("t");
        assert_eq!(cfg.machines_base_url, "https://api.machines.dev");
        assert_eq!(cfg.graphql_base_url, "https://api.fly.io");
        assert!(cfg.user_agent.starts_with("fly-autoscaler-rs/"));
        assert_eq!(cfg.retry.max_attempts, 4);
        assert_eq!(cfg.rate_limit.get, Rate::new(4.5, 10));
        assert_eq!(cfg.rate_limit.action, Rate::new(0.9, 3));
        assert_eq!(cfg.http2_connections, 10);
        assert_eq!(cfg.pool_max_idle_per_host, 1_024);
        assert_eq!(cfg.pool_idle_timeout, Duration::from_secs(90));
        assert!(cfg.tls_root_certificates_der.is_empty());
    }
}

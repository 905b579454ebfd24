//! Simulator configuration: timing, rate limits, outcomes of unverified cases, faults.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The token the simulator accepts unless [`SimConfig::token`] is changed.
pub const DEFAULT_TOKEN: &str = "fm2_flysim_test_token";

/// A uniformly sampled duration range (`min..=max`). `min == max` gives a fixed duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurRange {
    /// Lower bound, in milliseconds.
    pub min_ms: u64,
    /// Upper bound, in milliseconds (inclusive).
    pub max_ms: u64,
}

impl DurRange {
    /// A range from `min_ms` to `max_ms` milliseconds.
    pub const fn ms(min_ms: u64, max_ms: u64) -> DurRange {
        DurRange { min_ms, max_ms }
    }

    /// A zero-length range (the transition completes at once).
    pub const ZERO: DurRange = DurRange::ms(0, 0);
}

/// How long each transient state lasts. Sampled per transition from the seeded RNG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// Time a newly created machine stays `created` before it boots (or becomes `stopped` with `skip_launch`).
    pub created: DurRange,
    /// Time spent in `starting` (after a create or a start).
    pub starting: DurRange,
    /// Time spent in `stopping`.
    pub stopping: DurRange,
    /// Time spent in `suspending`.
    pub suspending: DurRange,
    /// Time spent in `destroying`.
    pub destroying: DurRange,
    /// How long GET keeps answering `destroyed` before it answers 404, in milliseconds.
    pub destroyed_visible_ms: u64,
}

impl Default for Timing {
    /// The defaults: created 100–300 ms, starting 0.5–2 s, stopping 1–3 s, suspending 1–3 s, destroying 1–3 s,
    /// destroyed visible to GET for 5 s.
    fn default() -> Self {
        Timing {
            created: DurRange::ms(100, 300),
            starting: DurRange::ms(500, 2_000),
            stopping: DurRange::ms(1_000, 3_000),
            suspending: DurRange::ms(1_000, 3_000),
            destroying: DurRange::ms(1_000, 3_000),
            destroyed_visible_ms: 5_000,
        }
    }
}

impl Timing {
    /// Every transition completes at once, and destroyed machines vanish from GET at once.
    pub fn instant() -> Timing {
        Timing {
            created: DurRange::ZERO,
            starting: DurRange::ZERO,
            stopping: DurRange::ZERO,
            suspending: DurRange::ZERO,
            destroying: DurRange::ZERO,
            destroyed_visible_ms: 0,
        }
    }
}

/// One token bucket: `per_sec` tokens per second, at most `burst` stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Refill rate, tokens per second.
    pub per_sec: f64,
    /// Capacity (the burst).
    pub burst: u32,
}

/// The documented rate limits (flyapi.md §5.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Rate limiting on or off.
    pub enabled: bool,
    /// Send `Retry-After` (whole seconds) on 429 responses. UNVERIFIED whether Fly does; default on.
    pub retry_after: bool,
    /// Every action (create, start, stop, suspend, destroy, cordon, wait, lease, list apps): 1/s, burst 3.
    pub action: Bucket,
    /// Get Machine: 5/s, burst 10.
    pub get: Bucket,
    /// List Machines, keyed by app. UNVERIFIED: the generic 1/s, burst 3.
    pub list: Bucket,
}

impl Default for RateLimits {
    fn default() -> Self {
        let generic = Bucket {
            per_sec: 1.0,
            burst: 3,
        };
        RateLimits {
            enabled: true,
            retry_after: true,
            action: generic,
            get: Bucket {
                per_sec: 5.0,
                burst: 10,
            },
            list: generic,
        }
    }
}

/// Outcomes of the cases no primary source settles (flyapi.md §4.3, §2.7). `Default` = the recommended defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outcomes {
    /// Start on `started`/`starting`/`replacing`: 412 (default, `false`) or a 200 no-op (`true`).
    pub start_when_running_is_noop: bool,
    /// Stop on `stopped`: a 200 no-op (default, `false`) or 412 (`true`).
    pub stop_when_stopped_fails: bool,
    /// Destroy of a running machine without `force`/`kill`: 412 (default, `false`) or allowed (`true`).
    pub destroy_running_without_force: bool,
}

/// An error the simulator can inject instead of handling a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Answer with this status (e.g. 500, 502, 503, 504) and an `{"error":…}` body; nothing happens.
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// Close the connection without a response.
    Reset,
    /// Wait this long, then handle the request normally (a slow response beyond a client timeout).
    Delay {
        /// Delay in milliseconds.
        ms: u64,
    },
    /// Only for create: create the machine, then answer with this status (408, 500, 502…) instead of 200.
    AmbiguousCreate {
        /// The HTTP status code returned after the machine was created.
        status: u16,
    },
}

/// Which requests a fault applies to. `None` fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultMatch {
    /// The route name: `list`, `create`, `get`, `destroy`, `start`, `stop`, `suspend`, `cordon`, `uncordon`,
    /// `wait`, `lease_get`, `lease_acquire`, `lease_release`, `list_apps`, `get_app`, `graphql`.
    pub route: Option<String>,
    /// The HTTP method, e.g. `POST`.
    pub method: Option<String>,
}

/// A fault applied with a probability to every matching request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomFault {
    /// Which requests.
    #[serde(default, rename = "match")]
    pub matches: FaultMatch,
    /// Probability in `0.0..=1.0`.
    pub probability: f64,
    /// What happens.
    pub fault: FaultKind,
}

/// A fault used once, by the first matching request (scripted faults are consumed in order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFault {
    /// Which request.
    #[serde(default, rename = "match")]
    pub matches: FaultMatch,
    /// What happens.
    pub fault: FaultKind,
}

/// Fault injection and platform conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Faults drawn at random for each matching request.
    pub random: Vec<RandomFault>,
    /// One-shot faults, consumed by the first matching request, in order.
    pub script: Vec<ScriptedFault>,
    /// Once an app has this many (non-destroyed) machines, create answers 422 "please add a payment method".
    pub machine_quota: Option<usize>,
    /// Regions where create answers 412 with `"status":"insufficient_capacity"`.
    pub capacity_exhausted_regions: BTreeSet<String>,
    /// A created machine appears in the machine list only after this many milliseconds.
    pub list_lag_ms: u64,
    /// Latency added to every request, in milliseconds.
    pub latency_ms: u64,
    /// Probability in `0.0..=1.0` that a machine created through the API fails at its first boot (a clone whose
    /// image or config cannot run): it goes `created` → `starting` → `failed` instead of `started`, or, created
    /// with `skip_launch`, its first start goes `starting` → `failed`. Drawn from the seeded RNG per create.
    pub boot_failure_probability: f64,
    /// Machines (by id) whose every start fails: the start answers 500
    /// `{"error":"internal: failed to start machine: …"}` and nothing changes (other calls work).
    pub failing_starts: BTreeSet<String>,
}

/// Everything that shapes the simulator's behaviour. `Default` gives the honest defaults of flyapi.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// The accepted token (without scheme). Defaults to [`DEFAULT_TOKEN`].
    pub token: String,
    /// Seed of the RNG used for timings, ids, nonces and random faults.
    pub seed: u64,
    /// Durations of the transient states.
    pub timing: Timing,
    /// The documented rate limits.
    pub rate_limits: RateLimits,
    /// Outcomes of the unverified cases.
    pub outcomes: Outcomes,
    /// Fault injection.
    pub faults: Faults,
    /// Region used by create when the request has none.
    pub default_region: String,
    /// The lease owner reported for leases taken through the API.
    pub lease_owner: String,
    /// Largest page the GraphQL `apps` query returns, whatever `first` says (`None`: only `first` counts).
    pub graphql_page_cap: Option<usize>,
    /// Most requests kept in the request log; the oldest tenth is dropped when it is exceeded (default 100 000).
    pub request_log_limit: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            token: DEFAULT_TOKEN.to_owned(),
            seed: 42,
            timing: Timing::default(),
            rate_limits: RateLimits::default(),
            outcomes: Outcomes::default(),
            faults: Faults::default(),
            default_region: "ord".to_owned(),
            lease_owner: "flysim@example.com".to_owned(),
            graphql_page_cap: None,
            request_log_limit: 100_000,
        }
    }
}

impl SimConfig {
    /// The defaults with every transition instant (for fast tests).
    pub fn instant() -> SimConfig {
        SimConfig {
            timing: Timing::instant(),
            ..SimConfig::default()
        }
    }

    /// Latency added to each request.
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.faults.latency_ms)
    }
}

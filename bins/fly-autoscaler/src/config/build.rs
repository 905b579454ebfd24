//! From the merged raw layer to a typed [`Config`], collecting every problem. One function per concern: the app
//! and its credentials, the schedule, the process (logs, metrics, API URLs), the planner policy, the collectors
//! (`collectors.rs`) and the targets (`counts.rs`); [`build`] puts them together.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use fas_reconcile::{ActionLimits, Behavior, InitialState, Policy, ScaleDown};
use secrecy::SecretString;

use super::counts::{both_names, counts};
use super::duration::format_go_duration;
use super::keys::Key;
use super::problem::{ConfigProblem, Findings, Rejected};
use super::raw::Layer;
use super::{
    Config, DEFAULT_APP_LIST_REFRESH_INTERVAL, DEFAULT_FLAPS_BASE_URL, DEFAULT_GRAPHQL_BASE_URL,
    DEFAULT_INTERVAL, DEFAULT_METRICS_ADDRESS, DEFAULT_POSTGRES_HEARTBEAT,
    DEFAULT_POSTGRES_QUERY_TIMEOUT, DEFAULT_POSTGRES_SLACK, DEFAULT_TIMEOUT,
    DEFAULT_TRIGGER_MIN_GAP, LogFormat, MAX_POSTGRES_HEARTBEAT, MIN_POSTGRES_HEARTBEAT, Purpose,
    collectors, parse,
};

/// Parses an optional setting with `parse`; on error records the problem and returns `default`.
fn parse_or<T>(
    layer: &Layer,
    key: Key,
    default: T,
    findings: &mut Findings,
    parse: impl FnOnce(&str) -> Result<T, Rejected>,
) -> T {
    match layer.get(key) {
        None => default,
        Some(s) => parse(s.value.trim()).unwrap_or_else(|rejected| {
            findings.problem(rejected.at(s));
            default
        }),
    }
}

/// `app-name`, `org` and `api-token`.
struct App {
    app_name: String,
    org: Option<String>,
    api_token: Option<SecretString>,
}

fn app(layer: &Layer, purpose: Purpose, findings: &mut Findings) -> App {
    let app_name = layer.text(Key::AppName);
    if app_name.is_none() {
        findings.problem(
            ConfigProblem::new("app name required")
                .hint(format!("set {}", both_names(Key::AppName))),
        );
    }
    let app_name = app_name.unwrap_or_default();
    let org = layer.text(Key::Org);
    if app_name.contains('*') && org.is_none() {
        findings.problem(
            ConfigProblem::new("organization required if app name uses a wildcard").hint(format!(
                "app name is {app_name:?}, set {}",
                both_names(Key::Org)
            )),
        );
    }
    let api_token = layer.text(Key::ApiToken).map(SecretString::from);
    if purpose == Purpose::Serve && api_token.is_none() {
        findings.problem(
            ConfigProblem::new("api token required")
                .hint(format!("set {}", both_names(Key::ApiToken))),
        );
    }
    App {
        app_name,
        org,
        api_token,
    }
}

/// How often and how long: `concurrency`, `interval`, `timeout`, `app-list-refresh-interval`,
/// `scale-down-window`.
struct Schedule {
    concurrency: usize,
    interval: Duration,
    timeout: Duration,
    app_list_refresh_interval: Duration,
    scale_down_window: Duration,
    trigger_min_gap: Duration,
}

fn schedule(layer: &Layer, findings: &mut Findings) -> Schedule {
    Schedule {
        concurrency: concurrency(layer, findings),
        interval: parse_or(
            layer,
            Key::Interval,
            DEFAULT_INTERVAL,
            findings,
            parse::nonzero_duration,
        ),
        timeout: parse_or(
            layer,
            Key::Timeout,
            DEFAULT_TIMEOUT,
            findings,
            parse::nonzero_duration,
        ),
        app_list_refresh_interval: parse_or(
            layer,
            Key::AppListRefreshInterval,
            DEFAULT_APP_LIST_REFRESH_INTERVAL,
            findings,
            parse::nonzero_duration,
        ),
        scale_down_window: parse_or(
            layer,
            Key::ScaleDownWindow,
            Duration::ZERO,
            findings,
            parse::duration,
        ),
        trigger_min_gap: parse_or(
            layer,
            Key::TriggerMinGap,
            DEFAULT_TRIGGER_MIN_GAP,
            findings,
            parse::duration,
        ),
    }
}

/// Rules against flapping: `scale-up-max-step`, `scale-down-max-step`, `scale-down-cooldown` (unset: off).
fn behavior(layer: &Layer, findings: &mut Findings) -> Behavior {
    Behavior {
        scale_up_max_step: parse_or(layer, Key::ScaleUpMaxStep, None, findings, parse::up_step),
        scale_down_max_step: parse_or(
            layer,
            Key::ScaleDownMaxStep,
            None,
            findings,
            parse::down_step,
        ),
        scale_down_cooldown: parse_or(
            layer,
            Key::ScaleDownCooldown,
            Duration::ZERO,
            findings,
            parse::duration,
        ),
    }
}

/// `concurrency`: 0 or negative is clamped to 1 with a warning, as the Go version did.
fn concurrency(layer: &Layer, findings: &mut Findings) -> usize {
    let Some(s) = layer.get(Key::Concurrency) else {
        return 1;
    };
    match parse::integer(s.value.trim()) {
        Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
        Ok(_) => {
            findings.warn(
                ConfigProblem::invalid(s, "invalid concurrency")
                    .hint("must be at least 1; using 1, as the Go version does"),
            );
            1
        }
        Err(rejected) => {
            findings.problem(rejected.at(s));
            1
        }
    }
}

/// The process itself: `verbose`, `log-format`, `metrics-address` and the Fly API base URLs.
struct Process {
    verbose: bool,
    log_format: LogFormat,
    metrics_address: SocketAddr,
    flaps_base_url: String,
    graphql_base_url: String,
}

fn process(layer: &Layer, findings: &mut Findings) -> Process {
    // The default is a valid address; fall back to the unspecified one only to keep collecting problems.
    let default_addr = parse::socket_addr(DEFAULT_METRICS_ADDRESS)
        .unwrap_or(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 9090)));
    Process {
        verbose: parse_or(layer, Key::Verbose, false, findings, parse::boolean),
        log_format: parse_or(
            layer,
            Key::LogFormat,
            LogFormat::Json,
            findings,
            parse::log_format,
        ),
        metrics_address: parse_or(
            layer,
            Key::MetricsAddress,
            default_addr,
            findings,
            parse::socket_addr,
        ),
        flaps_base_url: parse_or(
            layer,
            Key::FlapsBaseUrl,
            DEFAULT_FLAPS_BASE_URL.to_owned(),
            findings,
            parse::base_url,
        ),
        graphql_base_url: parse_or(
            layer,
            Key::GraphqlBaseUrl,
            DEFAULT_GRAPHQL_BASE_URL.to_owned(),
            findings,
            parse::base_url,
        ),
    }
}

/// What the planner and executor are told: `regions`, `process-group`, `initial-machine-state`, `scale-down`,
/// the per-tick caps and `action-concurrency`.
struct PolicySettings {
    regions: Vec<String>,
    process_group: String,
    initial_state: InitialState,
    scale_down: ScaleDown,
    limits: ActionLimits,
    action_concurrency: Option<usize>,
}

/// The per-tick caps; an unset key keeps fas-reconcile's default.
fn limits(layer: &Layer, findings: &mut Findings) -> ActionLimits {
    let mut limits = ActionLimits::default();
    for (key, slot) in [
        (Key::MaxCreatesPerTick, &mut limits.creates),
        (Key::MaxDestroysPerTick, &mut limits.destroys),
        (Key::MaxStartsPerTick, &mut limits.starts),
        (Key::MaxStopsPerTick, &mut limits.stops),
    ] {
        let current = *slot;
        *slot = parse_or(layer, key, current, findings, parse::limit);
    }
    limits
}

fn policy_settings(layer: &Layer, findings: &mut Findings) -> PolicySettings {
    PolicySettings {
        regions: layer
            .get(Key::Regions)
            .map(|s| parse::regions(&s.value))
            .unwrap_or_default(),
        process_group: layer
            .text(Key::ProcessGroup)
            .unwrap_or_else(|| "app".to_owned()),
        initial_state: parse_or(
            layer,
            Key::InitialMachineState,
            InitialState::Started,
            findings,
            parse::initial_state,
        ),
        scale_down: parse_or(
            layer,
            Key::ScaleDown,
            ScaleDown::Stop,
            findings,
            parse::scale_down,
        ),
        limits: limits(layer, findings),
        action_concurrency: parse_or(layer, Key::ActionConcurrency, None, findings, |v| {
            parse::positive_integer(v).map(Some)
        }),
    }
}

/// The coordination knobs: `postgres-heartbeat`, `postgres-query-timeout`, `postgres-slack` (read
/// whether or not `postgres-url` is set, so that a bad value is found before it matters).
struct Coordination {
    heartbeat: Duration,
    query_timeout: Duration,
    slack: usize,
}

fn coordination(layer: &Layer, findings: &mut Findings) -> Coordination {
    let before = findings.problems.len();
    let heartbeat = parse_or(
        layer,
        Key::PostgresHeartbeat,
        DEFAULT_POSTGRES_HEARTBEAT,
        findings,
        |v| parse::duration_between(v, MIN_POSTGRES_HEARTBEAT, MAX_POSTGRES_HEARTBEAT),
    );
    let query_timeout = parse_or(
        layer,
        Key::PostgresQueryTimeout,
        DEFAULT_POSTGRES_QUERY_TIMEOUT,
        findings,
        parse::nonzero_duration,
    );
    let slack = parse_or(
        layer,
        Key::PostgresSlack,
        DEFAULT_POSTGRES_SLACK,
        findings,
        parse::non_negative_integer,
    );
    // The fail-closed bound (heartbeat + query timeout) must stay under the server's keepalive
    // detection (at least 5.5 × heartbeat): a query timeout under the heartbeat guarantees it.
    // Compared only when both values parsed; named by the one set (the query timeout if both).
    if findings.problems.len() == before && query_timeout >= heartbeat {
        let shown = |key: Key, d: Duration| match layer.get(key) {
            Some(_) => format_go_duration(d),
            None => format!("{}, the default", format_go_duration(d)),
        };
        let problem = match layer.get(Key::PostgresQueryTimeout) {
            Some(s) => ConfigProblem::invalid(s, "postgres query timeout not under the heartbeat")
                .hint(format!(
                    "must be less than {} ({})",
                    both_names(Key::PostgresHeartbeat),
                    shown(Key::PostgresHeartbeat, heartbeat)
                )),
            // Only the heartbeat is set (to the default query timeout or less).
            None => match layer.get(Key::PostgresHeartbeat) {
                Some(s) => {
                    ConfigProblem::invalid(s, "postgres heartbeat not above the query timeout")
                        .hint(format!(
                            "must be more than {} ({}); set a shorter one",
                            both_names(Key::PostgresQueryTimeout),
                            shown(Key::PostgresQueryTimeout, query_timeout)
                        ))
                }
                None => ConfigProblem::new("postgres query timeout not under the heartbeat"),
            },
        };
        findings.problem(problem);
    }
    Coordination {
        heartbeat,
        query_timeout,
        slack,
    }
}

/// Turns the merged layer into a [`Config`] (with its warnings), or records every problem in `findings` and
/// returns `None`.
pub(crate) fn build(
    layer: &Layer,
    env: &BTreeMap<String, String>,
    purpose: Purpose,
    findings: &mut Findings,
) -> Option<Config> {
    let app = app(layer, purpose, findings);
    let schedule = schedule(layer, findings);
    let behavior = behavior(layer, findings);
    let process = process(layer, findings);
    let policy = policy_settings(layer, findings);
    let coordination = coordination(layer, findings);
    let raw_collectors = layer.collectors.as_deref().unwrap_or_default();
    let (collectors, on_error) = collectors::collectors(
        raw_collectors,
        schedule.timeout,
        schedule.interval,
        env,
        findings,
    );
    let mut known = collectors::declared_names(raw_collectors);
    // Context variables: machine counts and the calendar (a metric of that name is a problem of
    // its collector).
    known.extend(
        fas_expr::COUNT_VARIABLES
            .iter()
            .chain(&fas_expr::TIME_VARIABLES)
            .map(|v| (*v).to_owned()),
    );
    let counts = counts(layer, &known, findings);
    let timezone = layer.get(Key::Timezone).and_then(|s| {
        parse::timezone(s.value.trim())
            .map_err(|rejected| findings.problem(rejected.at(s)))
            .ok()
    });
    let dry_run = parse_or(layer, Key::DryRun, false, findings, parse::boolean);
    if !findings.problems.is_empty() {
        return None;
    }
    Some(Config {
        app_name: app.app_name,
        org: app.org,
        regions: policy.regions,
        process_group: policy.process_group,
        created: counts.created,
        started: counts.started,
        initial_state: policy.initial_state,
        concurrency: schedule.concurrency,
        interval: schedule.interval,
        timeout: schedule.timeout,
        app_list_refresh_interval: schedule.app_list_refresh_interval,
        scale_down_window: schedule.scale_down_window,
        behavior,
        timezone,
        trigger_min_gap: schedule.trigger_min_gap,
        // An empty token (e.g. `${UNSET}`) leaves the endpoint off: it never accepts "Bearer ".
        trigger_token: layer
            .text(Key::TriggerToken)
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
        // Coordination of replicas (crate::coord); empty (e.g. `${UNSET}`) = alone, as today.
        postgres_url: layer
            .text(Key::PostgresUrl)
            .filter(|t| !t.trim().is_empty())
            .map(SecretString::from),
        postgres_heartbeat: coordination.heartbeat,
        postgres_query_timeout: coordination.query_timeout,
        postgres_slack: coordination.slack,
        api_token: app.api_token,
        verbose: process.verbose,
        dry_run,
        log_format: process.log_format,
        metrics_address: process.metrics_address,
        flaps_base_url: process.flaps_base_url,
        graphql_base_url: process.graphql_base_url,
        collectors,
        on_error,
        scale_down: policy.scale_down,
        limits: policy.limits,
        action_concurrency: policy.action_concurrency,
        warnings: Vec::new(),
    })
}

/// The planner policy of a configuration.
pub(crate) fn policy(c: &Config) -> Policy {
    Policy {
        process_group: c.process_group.clone(),
        regions: c.regions.clone(),
        initial_state: c.initial_state,
        scale_down: c.scale_down,
        limits: c.limits,
    }
}

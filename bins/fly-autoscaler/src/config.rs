//! Configuration: the environment and an optional YAML file, checked and turned into a typed [`Config`].
//!
//! # How it works (two layers, "parse, don't validate")
//! 0. **One key table** (`keys.rs`): every setting is one row of a declarative macro (YAML key, `FAS_*`
//!    variable(s), raw type, secret or not), which expands into the typed keys `build` reads by, the public name
//!    tables ([`KEYS`], [`PROMETHEUS_ENV`], [`TEMPORAL_ENV`]) and the serde structs of the file.
//! 1. **Environment layer** (`raw::env_layer`): each variable of the table, as text (no TOML-ish guessing:
//!    `FAS_STARTED_MACHINE_COUNT=5` is the expression `5`). `FAS_PROMETHEUS_ADDRESS` / `FAS_TEMPORAL_ADDRESS` each
//!    add one collector. Tests pass the environment as a map in [`Sources`]; nothing here reads `std::env`.
//! 2. **File layer** (`raw::file_layer`): the file text has `$VAR` / `${VAR}` replaced by environment values
//!    ([`fas_collect::expand_vars`]; an unset variable becomes empty like Go's `os.ExpandEnv`, with a warning)
//!    except `APP_NAME`, which survives as the per-app placeholder, and `$1`-style references, which PromQL
//!    needs. Then figment's YAML provider deserializes it into the raw serde struct with `deny_unknown_fields`,
//!    every scalar kept as text (so unquoted `started-machine-count: 5` works).
//! 3. **Overlay**: the file is laid over the environment per key (the file wins); a `metric-collectors` list in
//!    the file replaces the env-defined collectors. Every value remembers where it came from.
//! 4. **Build** (`build.rs`, one function per concern, with `collectors.rs`, `counts.rs` and the value parsers
//!    of `parse.rs`): durations, integers, booleans and enums parsed, expressions compiled and checked against the
//!    configured metric names, the contract's validation rules applied. Every problem is a [`ConfigProblem`]
//!    (key, value unless secret, message, hint) rendered by its `Display`; [`load`] returns all of them at once in
//!    [`ConfigErrors`]. Non-fatal findings are [`ConfigWarning`]s in [`Config::warnings`], for the caller to log
//!    once logging is set up ([`Config::log_warnings`]).
//!
//! # Invariants and the tests that guard them (`tests/config.rs`, `tests/config_problems.rs`)
//! - env name <-> key mapping: `env_and_yaml_keys_map_to_the_same_field`; defaults: `defaults`; one table:
//!   `keys::tests`.
//! - file over env, collectors replaced: `file_wins_over_env_per_key`, `file_collectors_replace_env_collectors`.
//! - `${VAR}` expansion, `${APP_NAME}` and `$1` survive, unset variables are empty with a warning:
//!   `file_expansion_*`, `unset_variables_*`.
//! - all problems at once, rendered one way: `five_problems_are_reported_together`, the snapshots of
//!   `tests/config_problems.rs`; each contract message: `validation_*`.
//! - secrets never shown: `token_canary_*`; reference file parses: `reference_yaml_file_loads`.
//! - `scale-down-window` takes `0` (unlike `interval`): `scale_down_window_accepts_zero_and_go_durations`.

mod args;
mod build;
mod collectors;
mod counts;
mod duration;
mod keys;
mod parse;
mod problem;
mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

pub use args::normalize_args;
pub use duration::parse_go_duration;
pub use keys::{KEYS, PROMETHEUS_ENV, TEMPORAL_ENV};
pub use problem::{ConfigProblem, ConfigWarning};

use problem::Findings;

/// Default time between reconciliations (`interval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
/// Default limit on one app's reconciliation (`timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default refresh period of the wildcard app list (`app-list-refresh-interval`).
pub const DEFAULT_APP_LIST_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Default per-collector timeout (never more than the app `timeout`).
pub const DEFAULT_COLLECTOR_TIMEOUT: Duration = Duration::from_secs(10);
/// Default least time between two triggered ticks of one app (`trigger-min-gap`).
pub const DEFAULT_TRIGGER_MIN_GAP: Duration = Duration::from_secs(1);
/// Default period of the coordination round (`postgres-heartbeat`).
pub const DEFAULT_POSTGRES_HEARTBEAT: Duration = Duration::from_secs(2);
/// Shortest `postgres-heartbeat` (the server's keepalives count in whole seconds).
pub const MIN_POSTGRES_HEARTBEAT: Duration = Duration::from_secs(1);
/// Longest `postgres-heartbeat` (the keepalives derived from it must stay within what the
/// server's `tcp_keepalives_*` settings take).
pub const MAX_POSTGRES_HEARTBEAT: Duration = Duration::from_secs(3_600);
/// Default bound of each coordination query (`postgres-query-timeout`, always under the heartbeat).
pub const DEFAULT_POSTGRES_QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// Default number of apps a replica may hold above its fair share (`postgres-slack`).
pub const DEFAULT_POSTGRES_SLACK: usize = 1;
/// Default Machines API base URL (`FLY_FLAPS_BASE_URL`).
pub const DEFAULT_FLAPS_BASE_URL: &str = "https://api.machines.dev";
/// Default GraphQL API base URL (`FLY_API_BASE_URL`).
pub const DEFAULT_GRAPHQL_BASE_URL: &str = "https://api.fly.io";
/// Default metrics listen address, Go style (`:9090` = every interface).
pub const DEFAULT_METRICS_ADDRESS: &str = ":9090";

/// Where configuration comes from. Tests build it in memory; `main()` builds it from `std::env` and `--config`.
///
/// No `Debug`: the environment holds tokens.
#[derive(Clone, Default)]
pub struct Sources {
    /// The process environment (every variable; only the ones this module knows are read).
    pub env: BTreeMap<String, String>,
    /// The YAML file given with `--config`, if any. A missing file is an error.
    pub file: Option<PathBuf>,
}

/// What the configuration is for: the API token is required only to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `fly-autoscaler serve`: scales machines, needs the API token.
    Serve,
    /// `fly-autoscaler eval`: collects and evaluates once, never calls the Fly API.
    Eval,
}

/// Every problem found in the configuration, one per entry; each names the env var or YAML key at fault.
///
/// Displayed as `invalid configuration:` and one `  - problem` line each, then, if there are any, `warnings:`
/// and one line per warning (an unknown `FAS_*` variable often explains a missing setting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The problems, in a stable order: a file that cannot be read or parsed is reported alone (nothing else can
    /// be checked without it); otherwise every setting's problems, then the collectors', then the expressions'.
    pub problems: Vec<ConfigProblem>,
    /// The warnings found on the way (logging is not set up yet when the configuration fails).
    pub warnings: Vec<ConfigWarning>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration:")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        if !self.warnings.is_empty() {
            f.write_str("\nwarnings:")?;
            for w in &self.warnings {
                write!(f, "\n  - {w}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Log output format (`log-format` / `FAS_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line, no timestamp (Fly's log shipper adds it). The Go format; the default.
    #[default]
    Json,
    /// Human-readable lines, for running by hand.
    Text,
}

/// The min and max expressions of one count (created or started). `created-machine-count` sets both to the
/// same expression.
#[derive(Debug, Clone)]
pub struct CountExprs {
    /// Lower bound: below it, machines are created (or started).
    pub min: fas_expr::Expr,
    /// Upper bound: above it, machines are destroyed (or stopped).
    pub max: fas_expr::Expr,
}

/// One configured metric collector.
#[derive(Debug, Clone)]
pub enum CollectorConfig {
    /// A Prometheus instant query.
    Prometheus(fas_collect::PrometheusConfig),
    /// A count of running Temporal workflow executions.
    Temporal(fas_collect::TemporalConfig),
}

impl CollectorConfig {
    /// The variable name the collected value is bound to in expressions.
    pub fn metric_name(&self) -> &str {
        match self {
            Self::Prometheus(c) => &c.metric_name,
            Self::Temporal(c) => &c.metric_name,
        }
    }
}

/// The checked configuration. Secrets are [`SecretString`]s, so `Debug` shows none of them.
#[derive(Debug, Clone)]
pub struct Config {
    /// App to scale; may contain `*` wildcards (then `org` is set).
    pub app_name: String,
    /// Organization slug used to list apps in wildcard mode.
    pub org: Option<String>,
    /// Regions for new machines, round-robin; empty: the cloned machine's region.
    pub regions: Vec<String>,
    /// Only machines of this process group are counted and acted on (default `app`).
    pub process_group: String,
    /// Created-machine bounds; `None` = not configured.
    pub created: Option<CountExprs>,
    /// Started-machine bounds; `None` = not configured.
    pub started: Option<CountExprs>,
    /// State of newly created machines (default started).
    pub initial_state: fas_reconcile::InitialState,
    /// Apps reconciled at once in wildcard mode (default 1, at least 1).
    pub concurrency: usize,
    /// Time between reconciliations (default 15 s, never zero).
    pub interval: Duration,
    /// Limit on one app's reconciliation (default 30 s, never zero).
    pub timeout: Duration,
    /// How often the wildcard app list is refreshed (default 60 s, never zero).
    pub app_list_refresh_interval: Duration,
    /// Scale-down stabilization window (default 0 = none, the Go behaviour): the max bounds used to stop or
    /// destroy machines are the highest evaluated over this window ([`fas_reconcile::TargetHistory`]).
    pub scale_down_window: Duration,
    /// Rules against flapping (`scale-up-max-step`, `scale-down-max-step`, `scale-down-cooldown`; default all
    /// off, the Go behaviour): applied after the window ([`fas_reconcile::BehaviorState`]).
    pub behavior: fas_reconcile::Behavior,
    /// `timezone`: the zone of the calendar variables of expressions (`hour`, `minute`,
    /// `weekday`, `day_of_month`); `None` is UTC.
    pub timezone: Option<jiff::tz::TimeZone>,
    /// Fly API token; always `Some` for [`Purpose::Serve`].
    pub api_token: Option<SecretString>,
    /// Bearer token of `POST /trigger` (`trigger-token` / `FAS_TRIGGER_TOKEN`); without one the endpoint
    /// answers 404.
    pub trigger_token: Option<SecretString>,
    /// PostgreSQL URL of the replicas' coordination (`postgres-url` / `FAS_POSTGRES_URL`, a secret:
    /// it holds a password); `None` = this process runs alone ([`crate::coord`]).
    pub postgres_url: Option<SecretString>,
    /// Period of the coordination round (`postgres-heartbeat`, default 2 s, at least 1 s). Read at
    /// start only: a reload keeps the running value. The server keepalives follow it
    /// ([`crate::coord::CoordPolicy::from_knobs`]).
    pub postgres_heartbeat: Duration,
    /// Bound of each coordination query (`postgres-query-timeout`, default 1 s, more than zero and
    /// less than the heartbeat). Read at start only.
    pub postgres_query_timeout: Duration,
    /// Apps a replica may hold above its fair share (`postgres-slack`, default 1). Read at start
    /// only.
    pub postgres_slack: usize,
    /// Least time between two triggered ticks of one app (`trigger-min-gap`, default 1 s).
    pub trigger_min_gap: Duration,
    /// Shadow mode (`dry-run` / `FAS_DRY_RUN`, `serve --dry-run`): collect, evaluate, list and plan,
    /// never a mutating call; plans are logged, counted and shown in `/status` as "would".
    pub dry_run: bool,
    /// Debug logging.
    pub verbose: bool,
    /// Log output format (default JSON).
    pub log_format: LogFormat,
    /// Where `/metrics` is served (default `:9090`, i.e. `[::]:9090`).
    pub metrics_address: SocketAddr,
    /// Machines API base URL, without a trailing `/`.
    pub flaps_base_url: String,
    /// GraphQL API base URL, without a trailing `/`.
    pub graphql_base_url: String,
    /// The collectors, in configuration order; metric names are unique.
    pub collectors: Vec<CollectorConfig>,
    /// Each collector's `on-error` policy (`on-error`, `on-error-value`, `max-age`, `failure-threshold`), by metric
    /// name; a metric without an entry is skipped on error, the Go behaviour ([`crate::fallback`]).
    pub on_error: BTreeMap<String, crate::fallback::OnError>,
    /// How started machines are scaled down: stop (default) or suspend.
    pub scale_down: fas_reconcile::ScaleDown,
    /// Per-tick caps on each kind of action (unset keys keep fas-reconcile's defaults).
    pub limits: fas_reconcile::ActionLimits,
    /// Machine calls in flight per app; `None` = the executor's default.
    pub action_concurrency: Option<usize>,
    /// Non-fatal findings to log at startup, once logging is set up ([`Config::log_warnings`]): a `FAS_*`
    /// variable that no setting reads, `concurrency` below 1 (clamped to 1), an unset variable in a query or in
    /// the file (expanded to the empty string).
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    /// The planner policy this configuration describes.
    pub fn policy(&self) -> fas_reconcile::Policy {
        build::policy(self)
    }

    /// The metric names of the collectors, in configuration order (the variables expressions may read).
    pub fn metric_names(&self) -> Vec<String> {
        self.collectors
            .iter()
            .map(|c| c.metric_name().to_owned())
            .collect()
    }

    /// Whether a count expression reads a machine-count variable (`started`, `stopped`,
    /// `suspended`, `created`): then a tick lists the machines before it evaluates.
    pub fn uses_counts(&self) -> bool {
        [&self.created, &self.started]
            .into_iter()
            .flatten()
            .any(|e| e.min.uses_counts() || e.max.uses_counts())
    }

    /// Whether `app_name` is a pattern (`*`), in which case apps are listed from `org`.
    pub fn has_wildcard(&self) -> bool {
        self.app_name.contains('*')
    }

    /// Logs every [`Config::warnings`] entry as a `tracing` warning (`warning` field, message `configuration`).
    /// Call it once, after logging is set up.
    pub fn log_warnings(&self) {
        for w in &self.warnings {
            tracing::warn!(warning = %w, "configuration");
        }
    }
}

/// Loads and checks the configuration: environment first, the file (if any) laid over it.
///
/// Returns every problem at once. The file must exist when given. Warnings are in [`Config::warnings`] (or, when
/// the configuration is invalid, in [`ConfigErrors::warnings`]).
///
/// ```
/// use fly_autoscaler::config::{load, Purpose, Sources};
/// let mut sources = Sources::default();
/// sources.env.insert("FAS_APP_NAME".into(), "my-app".into());
/// sources.env.insert("FAS_STARTED_MACHINE_COUNT".into(), "2".into());
/// let config = load(&sources, Purpose::Eval).unwrap();
/// assert_eq!(config.app_name, "my-app");
/// assert_eq!(config.started.unwrap().min.source(), "2");
/// ```
pub fn load(sources: &Sources, purpose: Purpose) -> Result<Config, ConfigErrors> {
    let mut findings = Findings::default();
    let env_layer = raw::env_layer(&sources.env);
    let layer = match &sources.file {
        None => env_layer,
        Some(path) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
                problems: vec![
                    ConfigProblem::new(format!("cannot read config file: {e}")).at(&shown),
                ],
                warnings: unknown_env_warnings(&sources.env),
            })?;
            findings
                .warnings
                .extend(unset_file_variables(&text, &sources.env, &shown));
            let expanded = expand_file_text(&text, &sources.env);
            match raw::file_layer(&expanded, &shown) {
                Ok(file) => env_layer.overlay(file),
                Err(problems) => {
                    findings.warnings.extend(unknown_env_warnings(&sources.env));
                    return Err(ConfigErrors {
                        problems,
                        warnings: findings.warnings,
                    });
                }
            }
        }
    };
    let config = build::build(&layer, &sources.env, purpose, &mut findings);
    findings.warnings.extend(unknown_env_warnings(&sources.env));
    match config {
        Some(mut config) => {
            config.warnings = findings.warnings;
            Ok(config)
        }
        None => Err(ConfigErrors {
            problems: findings.problems,
            warnings: findings.warnings,
        }),
    }
}

/// A warning for each `FAS_*` variable that no setting reads (probably a typo), with the closest known one.
fn unknown_env_warnings(env: &BTreeMap<String, String>) -> Vec<ConfigWarning> {
    let known = raw::known_env_vars();
    raw::unknown_env_vars(env)
        .into_iter()
        .map(|var| {
            let hint = raw::closest(&var, &known).map(|near| format!("did you mean {near}?"));
            let warning = ConfigProblem::new("not a fly-autoscaler setting (ignored)").at(var);
            match hint {
                Some(hint) => warning.hint(hint),
                None => warning,
            }
        })
        .collect()
}

/// Replaces `$VAR` / `${VAR}` in the YAML text with values from `env` (undefined: empty, like Go's
/// `os.ExpandEnv`), except `APP_NAME`, which stays as written for the collectors to fill in per app.
/// `$1`, `$2`... and `$$` are never touched (see [`fas_collect::expand_vars`]).
pub fn expand_file_text(text: &str, env: &BTreeMap<String, String>) -> String {
    fas_collect::expand_vars(text, &|name| {
        if name == "APP_NAME" {
            None
        } else {
            Some(env.get(name).cloned().unwrap_or_default())
        }
    })
}

/// A warning (`file:line`) for each variable the file text refers to that is not set, outside comments: it
/// expands to the empty string. A variable in a comment expands too, harmlessly, and is not reported.
fn unset_file_variables(
    text: &str,
    env: &BTreeMap<String, String>,
    file_name: &str,
) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for name in collectors::referenced_vars(strip_yaml_comment(line)) {
            if name != "APP_NAME" && !env.contains_key(&name) {
                warnings.push(collectors::unset_variable(
                    format!("{file_name}:{}", i + 1),
                    &name,
                ));
            }
        }
    }
    warnings
}

/// The line without its YAML comment: from a `#` at the start or after a blank, outside quoted scalars (a quote
/// opens one only where a scalar can start: after a blank or `[{,:`). A block scalar line is treated the same way;
/// this only decides what is worth a warning.
fn strip_yaml_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') if prev == ' ' || prev == '\t' => return &line[..i],
            (None, '"' | '\'') if matches!(prev, ' ' | '\t' | '[' | '{' | ',' | ':') => {
                quote = Some(c)
            }
            (Some(q), _) if c == q => quote = None,
            _ => {}
        }
        prev = c;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_comments_are_stripped_outside_quotes() {
        let cases = [
            ("# all comment $X", ""),
            ("  # indented", "  "),
            ("a: b # c", "a: b "),
            ("a: b#c", "a: b#c"),
            ("q: 'x # y' # z", "q: 'x # y' "),
            ("q: \"x # y\"", "q: \"x # y\""),
            ("q: don't # $X", "q: don't "),
            ("- ['a # b', c] # d", "- ['a # b', c] "),
            ("plain", "plain"),
        ];
        for (line, want) in cases {
            assert_eq!(strip_yaml_comment(line), want, "{line:?}");
        }
    }
}

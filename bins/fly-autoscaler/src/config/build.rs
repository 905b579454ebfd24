//! From the merged raw layer to a typed [`Config`], collecting every problem.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use fas_collect::{MultipleSeries, PrometheusConfig, TemporalConfig};
use fas_expr::Expr;
use fas_reconcile::{ActionLimits, InitialState, Policy, ScaleDown};
use secrecy::SecretString;

use super::duration::{format_go_duration, parse_go_duration};
use super::raw::{CollectorOrigin, KEYS, Layer, RawCollector, Setting};
use super::{
    CollectorConfig, Config, ConfigErrors, CountExprs, DEFAULT_APP_LIST_REFRESH_INTERVAL,
    DEFAULT_COLLECTOR_TIMEOUT, DEFAULT_FLAPS_BASE_URL, DEFAULT_GRAPHQL_BASE_URL, DEFAULT_INTERVAL,
    DEFAULT_METRICS_ADDRESS, DEFAULT_TIMEOUT, LogFormat, Purpose,
};

/// `app-name (FAS_APP_NAME)`: how to tell the user where a missing setting goes.
fn both_names(key: &str) -> String {
    match KEYS.iter().find(|(k, _)| *k == key) {
        Some((_, env)) => format!("{key} or {env}"),
        None => key.to_owned(),
    }
}

/// Parses an optional setting with `parse`; on error records `"{name}: {error}"` and returns `default`.
fn parse_or<T>(
    layer: &Layer,
    key: &str,
    default: T,
    problems: &mut Vec<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> T {
    match layer.get(key) {
        None => default,
        Some(s) => match parse(s.value.trim()) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{}: {e}", s.name));
                default
            }
        },
    }
}

fn nonzero_duration(v: &str) -> Result<Duration, String> {
    match parse_go_duration(v)? {
        d if d.is_zero() => Err(format!("must be greater than zero, got {v:?}")),
        d => Ok(d),
    }
}

fn positive_integer(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "invalid integer {v:?}: expected a whole number of 1 or more"
        )),
    }
}

/// A per-tick cap: a whole number, or `unlimited` for no cap (the Go behaviour).
fn limit(v: &str) -> Result<Option<u32>, String> {
    if v.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    v.parse::<u32>().map(Some).map_err(|_| {
        format!("invalid integer {v:?}: expected a whole number of 0 or more, or \"unlimited\"")
    })
}

/// Go's `strconv.ParseBool` values, plus yes/no/on/off.
fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "y" | "on" => Ok(true),
        "0" | "f" | "false" | "no" | "n" | "off" => Ok(false),
        _ => Err(format!("invalid boolean {v:?}: expected true or false")),
    }
}

/// `:9090` (every interface, IPv4 and IPv6 like Go), `localhost:9090`, `127.0.0.1:9090`, `[::1]:9090`.
fn socket_addr(v: &str) -> Result<SocketAddr, String> {
    let bad =
        || format!("invalid address {v:?}: expected [host]:port such as :9090 or 127.0.0.1:9090");
    if let Some(port) = v.strip_prefix(':') {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::from((Ipv6Addr::UNSPECIFIED, p)))
            .map_err(|_| bad());
    }
    if let Some(port) = v.strip_prefix("localhost:") {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
            .map_err(|_| bad());
    }
    v.parse::<SocketAddr>().map_err(|_| bad())
}

fn base_url(v: &str) -> Result<String, String> {
    let trimmed = v.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(trimmed.to_owned()),
        _ => Err(format!(
            "invalid URL {v:?}: expected http://host[:port] or https://host[:port]"
        )),
    }
}

/// `FAS_REGIONS=iad,ord` (spaces tolerated; empty items dropped).
fn split_regions(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `name` can be read as a variable in an expression.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Compiles one expression setting and checks its variables; records problems under the setting's name.
fn compile(s: &Setting, known: &[String], problems: &mut Vec<String>) -> Option<Expr> {
    match Expr::compile(s.value.trim()) {
        Ok(e) => match e.check_variables(known) {
            Ok(()) => Some(e),
            Err(err) => {
                problems.push(format!("{}: {err}", s.name));
                None
            }
        },
        Err(err) => {
            problems.push(format!("{}: {err}", s.name));
            None
        }
    }
}

/// One of the two counts (`which` is "created" or "started"). Returns (defined, compiled bounds).
fn count_exprs(
    layer: &Layer,
    which: &str,
    known: &[String],
    problems: &mut Vec<String>,
) -> (bool, Option<CountExprs>) {
    let single_key = format!("{which}-machine-count");
    let min_key = format!("min-{which}-machine-count");
    let max_key = format!("max-{which}-machine-count");
    let (single, min, max) = (
        layer.get(&single_key),
        layer.get(&min_key),
        layer.get(&max_key),
    );
    let defined = single.is_some() || min.is_some() || max.is_some();
    let mut exprs = None;
    match (single, min, max) {
        (None, None, None) => {}
        (Some(s), None, None) => {
            if let Some(e) = compile(s, known, problems) {
                exprs = Some(CountExprs { min: e.clone(), max: e });
            }
        }
        (Some(s), lo, hi) => {
            let others: Vec<&str> = [lo, hi].into_iter().flatten().map(|x| x.name.as_str()).collect();
            problems.push(format!(
                "cannot define {which} machine count and min/max {which} machine count: {} is set together with {}",
                s.name,
                others.join(" and ")
            ));
        }
        (None, Some(lo), None) => problems.push(format!(
            "max {which} machine count required if min {which} machine count is defined: {} is set, set {} too",
            lo.name,
            both_names(&max_key)
        )),
        (None, None, Some(hi)) => problems.push(format!(
            "min {which} machine count required if max {which} machine count is defined: {} is set, set {} too",
            hi.name,
            both_names(&min_key)
        )),
        (None, Some(lo), Some(hi)) => {
            let lo = compile(lo, known, problems);
            let hi = compile(hi, known, problems);
            if let (Some(min), Some(max)) = (lo, hi) {
                exprs = Some(CountExprs { min, max });
            }
        }
    }
    (defined, exprs)
}

/// The environment values a query refers to (`${VAR}` / `$VAR`, not `APP_NAME`), so that a collector carries only
/// what it needs instead of the whole environment (which holds the API token).
fn referenced_env(text: &str, env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let names = RefCell::new(Vec::new());
    fas_collect::expand_vars(text, &|name| {
        names.borrow_mut().push(name.to_owned());
        None
    });
    names
        .into_inner()
        .into_iter()
        .filter(|n| n != "APP_NAME")
        .filter_map(|n| env.get(&n).map(|v| (n, v.clone())))
        .collect()
}

fn build_collectors(
    raw: &[RawCollector],
    app_timeout: Duration,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) -> Vec<CollectorConfig> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for c in raw {
        let origin: CollectorOrigin = c.origin;
        let label = origin.label();
        let get = |k: &str| c.fields.get(k).filter(|s| !s.value.trim().is_empty());
        let text = |k: &str| get(k).map(|s| s.value.trim().to_owned());
        let before = problems.len();

        let metric_name = text("metric-name");
        match &metric_name {
            None => problems.push(format!("{label}: metric name required (set {})", origin.key_name("metric-name"))),
            Some(name) if !is_identifier(name) => problems.push(format!(
                "{label}: metric name {name:?} must be a variable name (letters, digits and '_', not starting with a digit)"
            )),
            Some(name) if !seen.insert(name.clone()) => {
                problems.push(format!("{label}: duplicate metric name {name:?} (each collector needs its own)"))
            }
            Some(_) => {}
        }

        let default_timeout = DEFAULT_COLLECTOR_TIMEOUT.min(app_timeout);
        let timeout = match get("timeout") {
            None => default_timeout,
            Some(s) => match nonzero_duration(s.value.trim()) {
                Ok(d) if d > app_timeout => {
                    problems.push(format!(
                        "{}: collector timeout {} must not exceed the app timeout {}",
                        s.name,
                        format_go_duration(d),
                        format_go_duration(app_timeout)
                    ));
                    default_timeout
                }
                Ok(d) => d,
                Err(e) => {
                    problems.push(format!("{}: {e}", s.name));
                    default_timeout
                }
            },
        };

        let kind = text("type");
        let built = match kind.as_deref() {
            None => {
                problems.push(format!("{label}: type required (prometheus or temporal)"));
                None
            }
            Some("prometheus") => {
                let address = text("address");
                let query = text("query");
                if address.is_none() {
                    problems.push(format!(
                        "{label}: prometheus address required (set {})",
                        origin.key_name("address")
                    ));
                }
                if query.is_none() {
                    problems.push(format!(
                        "{label}: prometheus query required (set {})",
                        origin.key_name("query")
                    ));
                }
                let multiple_series = match get("multiple-series") {
                    None => MultipleSeries::Error,
                    Some(s) => match s.value.trim().to_ascii_lowercase().as_str() {
                        "error" => MultipleSeries::Error,
                        "sum" => MultipleSeries::Sum,
                        other => {
                            problems.push(format!(
                                "{}: invalid value {other:?}: expected \"error\" or \"sum\"",
                                s.name
                            ));
                            MultipleSeries::Error
                        }
                    },
                };
                match (metric_name.clone(), address, query) {
                    (Some(metric_name), Some(address), Some(query)) => {
                        Some(CollectorConfig::Prometheus(PrometheusConfig {
                            env: referenced_env(&query, env),
                            metric_name,
                            address,
                            query,
                            token: text("token").map(SecretString::from),
                            timeout,
                            multiple_series,
                        }))
                    }
                    _ => None,
                }
            }
            Some("temporal") => {
                let address = text("address");
                if address.is_none() {
                    problems.push(format!(
                        "{label}: temporal address required (set {})",
                        origin.key_name("address")
                    ));
                }
                if let Some(s) = get("multiple-series") {
                    problems.push(format!(
                        "{}: multiple-series applies to prometheus collectors only",
                        s.name
                    ));
                }
                let cert = text("cert-data");
                let key = get("key-data").map(|s| s.value.clone());
                if cert.is_some() != key.is_some() {
                    problems.push(format!(
                        "{label}: TLS needs both a certificate and a key: set {} and {} together",
                        origin.key_name("cert-data"),
                        origin.key_name("key-data")
                    ));
                }
                let query = text("query");
                match (metric_name.clone(), address) {
                    (Some(metric_name), Some(address)) => {
                        Some(CollectorConfig::Temporal(TemporalConfig {
                            env: query
                                .as_deref()
                                .map(|q| referenced_env(q, env))
                                .unwrap_or_default(),
                            metric_name,
                            address,
                            namespace: text("namespace").unwrap_or_else(|| "default".to_owned()),
                            query,
                            cert_pem: cert,
                            key_pem: key.map(SecretString::from),
                            ca_pem: text("ca-data"),
                            timeout,
                        }))
                    }
                    _ => None,
                }
            }
            Some(other) => {
                problems.push(format!(
                    "{label}: invalid type: {other:?} (expected prometheus or temporal)"
                ));
                None
            }
        };
        if problems.len() == before {
            out.extend(built);
        }
    }
    out
}

/// Turns the merged layer into a [`Config`], or every problem found.
pub(crate) fn build(
    layer: &Layer,
    env: &BTreeMap<String, String>,
    purpose: Purpose,
) -> Result<Config, ConfigErrors> {
    let mut p = Vec::new();
    let problems = &mut p;
    let text = |k: &str| layer.get(k).map(|s| s.value.trim().to_owned());

    let app_name = text("app-name");
    if app_name.is_none() {
        problems.push(format!("app name required: set {}", both_names("app-name")));
    }
    let app_name = app_name.unwrap_or_default();
    let org = text("org");
    if app_name.contains('*') && org.is_none() {
        problems.push(format!(
            "organization required if app name uses a wildcard: app name is {app_name:?}, set {}",
            both_names("org")
        ));
    }
    let regions = layer
        .get("regions")
        .map(|s| split_regions(&s.value))
        .unwrap_or_default();
    let process_group = text("process-group").unwrap_or_else(|| "app".to_owned());
    let initial_state = parse_or(
        layer,
        "initial-machine-state",
        InitialState::Started,
        problems,
        |v| match v.to_ascii_lowercase().as_str() {
            "started" => Ok(InitialState::Started),
            "stopped" => Ok(InitialState::Stopped),
            _ => Err(format!(
                "initial machine state must be either 'started' or 'stopped', got {v:?}"
            )),
        },
    );
    let concurrency = parse_or(layer, "concurrency", 1, problems, positive_integer);
    let interval = parse_or(
        layer,
        "interval",
        DEFAULT_INTERVAL,
        problems,
        nonzero_duration,
    );
    let timeout = parse_or(
        layer,
        "timeout",
        DEFAULT_TIMEOUT,
        problems,
        nonzero_duration,
    );
    let app_list_refresh_interval = parse_or(
        layer,
        "app-list-refresh-interval",
        DEFAULT_APP_LIST_REFRESH_INTERVAL,
        problems,
        nonzero_duration,
    );
    let scale_down_window = parse_or(
        layer,
        "scale-down-window",
        Duration::ZERO,
        problems,
        parse_go_duration,
    );
    let api_token = text("api-token").map(SecretString::from);
    if purpose == Purpose::Serve && api_token.is_none() {
        problems.push(format!(
            "api token required: set {}",
            both_names("api-token")
        ));
    }
    let verbose = parse_or(layer, "verbose", false, problems, boolean);
    let log_format = parse_or(layer, "log-format", LogFormat::Json, problems, |v| match v
        .to_ascii_lowercase()
        .as_str()
    {
        "json" => Ok(LogFormat::Json),
        "text" => Ok(LogFormat::Text),
        _ => Err(format!(
            "invalid log format {v:?}: expected \"json\" or \"text\""
        )),
    });
    // The default is a valid address; fall back to the unspecified one only to keep collecting problems.
    let default_addr = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 9090));
    let metrics_address = parse_or(
        layer,
        "metrics-address",
        socket_addr(DEFAULT_METRICS_ADDRESS).unwrap_or(default_addr),
        problems,
        socket_addr,
    );
    let flaps_base_url = parse_or(
        layer,
        "flaps-base-url",
        DEFAULT_FLAPS_BASE_URL.to_owned(),
        problems,
        base_url,
    );
    let graphql_base_url = parse_or(
        layer,
        "graphql-base-url",
        DEFAULT_GRAPHQL_BASE_URL.to_owned(),
        problems,
        base_url,
    );
    let scale_down = parse_or(layer, "scale-down", ScaleDown::Stop, problems, |v| match v
        .to_ascii_lowercase()
        .as_str()
    {
        "stop" => Ok(ScaleDown::Stop),
        "suspend" => Ok(ScaleDown::Suspend),
        _ => Err(format!(
            "invalid scale-down {v:?}: expected \"stop\" or \"suspend\""
        )),
    });
    let mut limits = ActionLimits::default();
    for (key, slot) in [
        ("max-creates-per-tick", &mut limits.creates),
        ("max-destroys-per-tick", &mut limits.destroys),
        ("max-starts-per-tick", &mut limits.starts),
        ("max-stops-per-tick", &mut limits.stops),
    ] {
        let current = *slot;
        *slot = parse_or(layer, key, current, problems, limit);
    }
    let action_concurrency = parse_or(layer, "action-concurrency", None, problems, |v| {
        positive_integer(v).map(Some)
    });

    let collectors = build_collectors(
        layer.collectors.as_deref().unwrap_or_default(),
        timeout,
        env,
        problems,
    );
    // Names of every collector that declares one, even a collector with other problems, so that expressions are not
    // also reported for reading it.
    let known: Vec<String> = layer
        .collectors
        .iter()
        .flatten()
        .filter_map(|c| {
            c.fields
                .get("metric-name")
                .map(|s| s.value.trim().to_owned())
        })
        .filter(|n| !n.is_empty())
        .collect();
    let (created_defined, created) = count_exprs(layer, "created", &known, problems);
    let (started_defined, started) = count_exprs(layer, "started", &known, problems);
    if !created_defined && !started_defined {
        problems.push(format!(
            "must define either created machine count or started machine count: set {} or {} (or a min/max pair)",
            both_names("created-machine-count"),
            both_names("started-machine-count")
        ));
    }

    if !p.is_empty() {
        return Err(ConfigErrors { problems: p });
    }
    Ok(Config {
        app_name,
        org,
        regions,
        process_group,
        created,
        started,
        initial_state,
        concurrency,
        interval,
        timeout,
        app_list_refresh_interval,
        scale_down_window,
        api_token,
        verbose,
        log_format,
        metrics_address,
        flaps_base_url,
        graphql_base_url,
        collectors,
        scale_down,
        limits,
        action_concurrency,
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

//! Configuration tests: every source is built in memory (the process environment is never touched) and YAML files
//! live in temporary directories.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use fly_autoscaler::config::{
    CollectorConfig, Config, KEYS, LogFormat, Purpose, Sources, load, parse_go_duration,
};
use secrecy::ExposeSecret;

/// Sources from env pairs and optional YAML text (the returned guard keeps the file alive).
fn sources(env: &[(&str, &str)], yaml: Option<&str>) -> (Sources, Option<tempfile::TempDir>) {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match yaml {
        None => (Sources { env, file: None }, None),
        Some(text) => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("fly-autoscaler.yml");
            std::fs::File::create(&path)
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            (
                Sources {
                    env,
                    file: Some(path),
                },
                Some(dir),
            )
        }
    }
}

fn load_ok(env: &[(&str, &str)], yaml: Option<&str>) -> Config {
    let (s, _guard) = sources(env, yaml);
    match load(&s, Purpose::Serve) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid configuration, got {e}"),
    }
}

fn load_err_with(env: &[(&str, &str)], yaml: Option<&str>, purpose: Purpose) -> Vec<String> {
    let (s, _guard) = sources(env, yaml);
    match load(&s, purpose) {
        Ok(c) => panic!("expected problems, got {c:?}"),
        Err(e) => rendered(&e.problems),
    }
}

/// Each problem as it is shown.
fn rendered(problems: &[fly_autoscaler::config::ConfigProblem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

fn load_err(env: &[(&str, &str)], yaml: Option<&str>) -> Vec<String> {
    load_err_with(env, yaml, Purpose::Serve)
}

/// Exactly one problem, and it contains every fragment.
#[track_caller]
fn assert_one_problem(problems: &[String], fragments: &[&str]) {
    assert_eq!(problems.len(), 1, "expected one problem, got {problems:#?}");
    for f in fragments {
        assert!(
            problems[0].contains(f),
            "{:?} does not contain {f:?}",
            problems[0]
        );
    }
}

const APP: (&str, &str) = ("FAS_APP_NAME", "my-app");
const TOKEN: (&str, &str) = ("FAS_API_TOKEN", "tok");
const STARTED: (&str, &str) = ("FAS_STARTED_MACHINE_COUNT", "1");

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------------------------------------------------------
// Mapping and defaults

type Check = fn(&Config) -> String;
/// (YAML key, env var, value).
type Setting = (&'static str, &'static str, &'static str);

/// (settings, what the config must show, how to read it).
fn mapping_table() -> Vec<(Vec<Setting>, &'static str, Check)> {
    fn src(e: &Option<fly_autoscaler::config::CountExprs>) -> String {
        e.as_ref().map_or("none".into(), |c| {
            format!("{}/{}", c.min.source(), c.max.source())
        })
    }
    vec![
        (
            vec![("app-name", "FAS_APP_NAME", "other-app")],
            "other-app",
            |c| c.app_name.clone(),
        ),
        (vec![("org", "FAS_ORG", "my-org")], "my-org", |c| {
            c.org.clone().unwrap_or_default()
        }),
        (
            vec![("regions", "FAS_REGIONS", "iad,ord")],
            "iad ord",
            |c| c.regions.join(" "),
        ),
        (
            vec![("process-group", "FAS_PROCESS_GROUP", "worker")],
            "worker",
            |c| c.process_group.clone(),
        ),
        (
            vec![("created-machine-count", "FAS_CREATED_MACHINE_COUNT", "3")],
            "3/3",
            |c| src(&c.created),
        ),
        (
            vec![
                (
                    "min-created-machine-count",
                    "FAS_MIN_CREATED_MACHINE_COUNT",
                    "2",
                ),
                (
                    "max-created-machine-count",
                    "FAS_MAX_CREATED_MACHINE_COUNT",
                    "7",
                ),
            ],
            "2/7",
            |c| src(&c.created),
        ),
        (
            vec![("started-machine-count", "FAS_STARTED_MACHINE_COUNT", "4")],
            "4/4",
            |c| src(&c.started),
        ),
        (
            vec![
                (
                    "min-started-machine-count",
                    "FAS_MIN_STARTED_MACHINE_COUNT",
                    "1",
                ),
                (
                    "max-started-machine-count",
                    "FAS_MAX_STARTED_MACHINE_COUNT",
                    "9",
                ),
            ],
            "1/9",
            |c| src(&c.started),
        ),
        (
            vec![(
                "initial-machine-state",
                "FAS_INITIAL_MACHINE_STATE",
                "stopped",
            )],
            "Stopped",
            |c| format!("{:?}", c.initial_state),
        ),
        (vec![("concurrency", "FAS_CONCURRENCY", "4")], "4", |c| {
            c.concurrency.to_string()
        }),
        (vec![("interval", "FAS_INTERVAL", "1m30s")], "90s", |c| {
            format!("{:?}", c.interval)
        }),
        (vec![("timeout", "FAS_TIMEOUT", "45s")], "45s", |c| {
            format!("{:?}", c.timeout)
        }),
        (
            vec![(
                "app-list-refresh-interval",
                "FAS_APP_LIST_REFRESH_INTERVAL",
                "2m",
            )],
            "120s",
            |c| format!("{:?}", c.app_list_refresh_interval),
        ),
        (
            vec![("scale-down-window", "FAS_SCALE_DOWN_WINDOW", "5m")],
            "300s",
            |c| format!("{:?}", c.scale_down_window),
        ),
        (
            vec![("scale-up-max-step", "FAS_SCALE_UP_MAX_STEP", "3")],
            "Some(Machines(3))",
            |c| format!("{:?}", c.behavior.scale_up_max_step),
        ),
        (
            vec![("scale-down-max-step", "FAS_SCALE_DOWN_MAX_STEP", "50%")],
            "Some(Percent(50))",
            |c| format!("{:?}", c.behavior.scale_down_max_step),
        ),
        (
            vec![("scale-down-cooldown", "FAS_SCALE_DOWN_COOLDOWN", "2m")],
            "120s",
            |c| format!("{:?}", c.behavior.scale_down_cooldown),
        ),
        (
            vec![("timezone", "FAS_TIMEZONE", "Europe/Paris")],
            "Some(\"Europe/Paris\")",
            |c| format!("{:?}", c.timezone.as_ref().and_then(|t| t.iana_name())),
        ),
        (
            vec![("api-token", "FAS_API_TOKEN", "FlyV1 fm2_abc")],
            "FlyV1 fm2_abc",
            |c| {
                c.api_token
                    .as_ref()
                    .map_or(String::new(), |t| t.expose_secret().to_owned())
            },
        ),
        (vec![("verbose", "FAS_VERBOSE", "true")], "true", |c| {
            c.verbose.to_string()
        }),
        (
            vec![("log-format", "FAS_LOG_FORMAT", "text")],
            "Text",
            |c| format!("{:?}", c.log_format),
        ),
        (
            vec![("metrics-address", "FAS_METRICS_ADDRESS", "127.0.0.1:9100")],
            "127.0.0.1:9100",
            |c| c.metrics_address.to_string(),
        ),
        (
            vec![("scale-down", "FAS_SCALE_DOWN", "suspend")],
            "Suspend",
            |c| format!("{:?}", c.scale_down),
        ),
        (
            vec![("max-creates-per-tick", "FAS_MAX_CREATES_PER_TICK", "3")],
            "Some(3)",
            |c| format!("{:?}", c.limits.creates),
        ),
        (
            vec![("max-destroys-per-tick", "FAS_MAX_DESTROYS_PER_TICK", "4")],
            "Some(4)",
            |c| format!("{:?}", c.limits.destroys),
        ),
        (
            vec![("max-starts-per-tick", "FAS_MAX_STARTS_PER_TICK", "5")],
            "Some(5)",
            |c| format!("{:?}", c.limits.starts),
        ),
        (
            vec![("max-stops-per-tick", "FAS_MAX_STOPS_PER_TICK", "6")],
            "Some(6)",
            |c| format!("{:?}", c.limits.stops),
        ),
        (
            vec![("action-concurrency", "FAS_ACTION_CONCURRENCY", "8")],
            "Some(8)",
            |c| format!("{:?}", c.action_concurrency),
        ),
        (
            vec![(
                "flaps-base-url",
                "FLY_FLAPS_BASE_URL",
                "http://127.0.0.1:4280/",
            )],
            "http://127.0.0.1:4280",
            |c| c.flaps_base_url.clone(),
        ),
        (
            vec![(
                "graphql-base-url",
                "FLY_API_BASE_URL",
                "http://127.0.0.1:4281",
            )],
            "http://127.0.0.1:4281",
            |c| c.graphql_base_url.clone(),
        ),
        (vec![("dry-run", "FAS_DRY_RUN", "true")], "true", |c| {
            c.dry_run.to_string()
        }),
        (
            vec![("trigger-min-gap", "FAS_TRIGGER_MIN_GAP", "250ms")],
            "250ms",
            |c| format!("{:?}", c.trigger_min_gap),
        ),
        (
            vec![(
                "postgres-url",
                "FAS_POSTGRES_URL",
                "postgres://fas:pw@db.internal:5432/fas?sslmode=require",
            )],
            "postgres://fas:pw@db.internal:5432/fas?sslmode=require",
            |c| {
                c.postgres_url
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned())
                    .unwrap_or_default()
            },
        ),
        (
            vec![("postgres-heartbeat", "FAS_POSTGRES_HEARTBEAT", "5s")],
            "5s",
            |c| format!("{:?}", c.postgres_heartbeat),
        ),
        (
            vec![(
                "postgres-query-timeout",
                "FAS_POSTGRES_QUERY_TIMEOUT",
                "1500ms",
            )],
            "1.5s",
            |c| format!("{:?}", c.postgres_query_timeout),
        ),
        (
            vec![("postgres-slack", "FAS_POSTGRES_SLACK", "0")],
            "0",
            |c| c.postgres_slack.to_string(),
        ),
        (
            vec![("trigger-token", "FAS_TRIGGER_TOKEN", "t0k3n")],
            "t0k3n",
            |c| {
                c.trigger_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned())
                    .unwrap_or_default()
            },
        ),
    ]
}

#[test]
fn env_and_yaml_keys_map_to_the_same_field() {
    let table = mapping_table();
    // The table covers every documented key, and nothing else.
    let covered: BTreeSet<(&str, &str)> = table
        .iter()
        .flat_map(|(s, _, _)| s.iter().map(|(k, e, _)| (*k, *e)))
        .collect();
    let all: BTreeSet<(&str, &str)> = KEYS.iter().copied().collect();
    assert_eq!(covered, all);

    for (settings, expected, check) in &table {
        // The base provides an app, a token and a count that does not collide with the settings under test.
        let touches_created = settings.iter().any(|(k, _, _)| k.contains("created"));
        let count = if touches_created {
            STARTED
        } else {
            ("FAS_CREATED_MACHINE_COUNT", "1")
        };
        let base = vec![APP, TOKEN, count];

        let mut env = base.clone();
        env.extend(settings.iter().map(|(_, e, v)| (*e, *v)));
        let from_env = load_ok(&env, None);
        assert_eq!(check(&from_env), *expected, "env {settings:?}");

        let yaml: String = settings
            .iter()
            .map(|(k, _, v)| format!("{k}: {v:?}\n"))
            .collect();
        let from_file = load_ok(&base, Some(&yaml));
        assert_eq!(check(&from_file), *expected, "yaml {yaml}");
    }
}

#[test]
fn defaults() {
    let c = load_ok(&[APP, TOKEN, STARTED], None);
    assert_eq!(c.app_name, "my-app");
    assert_eq!(c.org, None);
    assert!(c.regions.is_empty());
    assert_eq!(c.process_group, "app");
    assert!(c.created.is_none());
    assert_eq!(
        c.started.as_ref().map(|s| (s.min.source(), s.max.source())),
        Some(("1", "1"))
    );
    assert_eq!(c.initial_state, fas_reconcile::InitialState::Started);
    assert_eq!(c.concurrency, 1);
    assert_eq!(c.interval, secs(15));
    assert_eq!(c.timeout, secs(30));
    assert_eq!(c.app_list_refresh_interval, secs(60));
    assert_eq!(
        c.scale_down_window,
        Duration::ZERO,
        "no window: the Go behaviour"
    );
    assert_eq!(
        c.behavior,
        fas_reconcile::Behavior::default(),
        "no step, no cooldown: the Go behaviour"
    );
    assert!(!c.verbose);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(
        c.metrics_address,
        "[::]:9090".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.flaps_base_url, "https://api.machines.dev");
    assert_eq!(c.graphql_base_url, "https://api.fly.io");
    assert!(c.collectors.is_empty());
    assert_eq!(c.scale_down, fas_reconcile::ScaleDown::Stop);
    assert_eq!(c.limits, fas_reconcile::ActionLimits::default());
    assert_eq!(c.action_concurrency, None);
    assert!(c.postgres_url.is_none());
    assert_eq!(c.postgres_heartbeat, secs(2));
    assert_eq!(c.postgres_query_timeout, secs(1));
    assert_eq!(c.postgres_slack, 1);
    assert!(c.warnings.is_empty());
    assert!(!c.has_wildcard());
    let policy = c.policy();
    assert_eq!(policy.process_group, "app");
    assert_eq!(policy.initial_state, fas_reconcile::InitialState::Started);
}

#[test]
fn policy_carries_the_configured_values() {
    let c = load_ok(
        &[
            APP,
            TOKEN,
            STARTED,
            ("FAS_PROCESS_GROUP", "worker"),
            ("FAS_REGIONS", "iad,ord"),
            ("FAS_INITIAL_MACHINE_STATE", "stopped"),
            ("FAS_SCALE_DOWN", "suspend"),
            ("FAS_MAX_CREATES_PER_TICK", "2"),
        ],
        None,
    );
    let p = c.policy();
    assert_eq!(p.process_group, "worker");
    assert_eq!(p.regions, ["iad", "ord"]);
    assert_eq!(p.initial_state, fas_reconcile::InitialState::Stopped);
    assert_eq!(p.scale_down, fas_reconcile::ScaleDown::Suspend);
    assert_eq!(p.limits.creates, Some(2));
    assert_eq!(
        p.limits.destroys,
        fas_reconcile::ActionLimits::default().destroys
    );
}

#[test]
fn metrics_address_accepts_go_style_and_explicit_hosts() {
    for (value, expected) in [
        (":9100", "[::]:9100"),
        ("0.0.0.0:9090", "0.0.0.0:9090"),
        ("localhost:9091", "127.0.0.1:9091"),
        ("[::1]:9092", "[::1]:9092"),
    ] {
        let c = load_ok(&[APP, TOKEN, STARTED, ("FAS_METRICS_ADDRESS", value)], None);
        assert_eq!(
            c.metrics_address,
            expected.parse::<SocketAddr>().unwrap(),
            "{value}"
        );
    }
    let p = load_err(
        &[APP, TOKEN, STARTED, ("FAS_METRICS_ADDRESS", "9090")],
        None,
    );
    assert_one_problem(&p, &["FAS_METRICS_ADDRESS", "\"9090\""]);
}

// ---------------------------------------------------------------------------------------------------------------
// Layers

#[test]
fn file_wins_over_env_per_key() {
    let c = load_ok(
        &[
            APP,
            TOKEN,
            STARTED,
            ("FAS_INTERVAL", "20s"),
            ("FAS_ORG", "env-org"),
            ("FAS_REGIONS", "sjc"),
        ],
        Some("interval: 1m\nregions: [iad, ord]\n"),
    );
    assert_eq!(c.interval, secs(60), "the file's interval wins");
    assert_eq!(
        c.regions,
        ["iad", "ord"],
        "the file's regions replace the env's"
    );
    assert_eq!(
        c.org.as_deref(),
        Some("env-org"),
        "a key absent from the file keeps the env value"
    );
}

const PROM_ENV: [(&str, &str); 4] = [
    ("FAS_PROMETHEUS_ADDRESS", "http://prom:9090"),
    ("FAS_PROMETHEUS_METRIC_NAME", "queue_depth"),
    ("FAS_PROMETHEUS_QUERY", "sum(queue_depth)"),
    ("FAS_PROMETHEUS_TOKEN", "FlyV1 secret"),
];

#[test]
fn env_prometheus_collector() {
    let mut env = vec![
        APP,
        TOKEN,
        ("FAS_STARTED_MACHINE_COUNT", "ceil(queue_depth / 10)"),
    ];
    env.extend(PROM_ENV);
    let c = load_ok(&env, None);
    assert_eq!(c.metric_names(), ["queue_depth"]);
    let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
        panic!("not prometheus: {:?}", c.collectors)
    };
    assert_eq!(p.address, "http://prom:9090");
    assert_eq!(p.query, "sum(queue_depth)");
    assert_eq!(
        p.token.as_ref().map(|t| t.expose_secret()),
        Some("FlyV1 secret")
    );
    assert_eq!(p.timeout, secs(10));
    assert_eq!(
        p.multiple_series,
        fas_collect::MultipleSeries::First,
        "no multiple-series: the collector's default, the Go behaviour"
    );
}

#[test]
fn group_by_reaches_the_collector_config() {
    use fas_collect::{GroupBy, PrometheusCollector};
    let prometheus = |c: &Config| match &c.collectors[0] {
        CollectorConfig::Prometheus(p) => p.clone(),
        other => panic!("not prometheus: {other:?}"),
    };
    // Env: FAS_PROMETHEUS_GROUP_BY; the result serves every app for the interval minus 1 s.
    let mut env = vec![APP, TOKEN, ("FAS_STARTED_MACHINE_COUNT", "queue_depth")];
    env.extend(PROM_ENV);
    let p = prometheus(&load_ok(&env, None));
    assert_eq!(p.group_by, None, "no group-by: one query per app, as Go");
    env.push(("FAS_PROMETHEUS_GROUP_BY", " app "));
    let p = prometheus(&load_ok(&env, None));
    assert_eq!(p.group_by, Some(GroupBy::new("app", secs(14))));
    let collector = PrometheusCollector::new(p).unwrap();
    assert_eq!(collector.group_by(), Some("app"));
    env.push(("FAS_INTERVAL", "5s"));
    let p = prometheus(&load_ok(&env, None));
    assert_eq!(
        p.group_by,
        Some(GroupBy::new("app", Duration::from_millis(4_500)))
    );

    // YAML: group-by, with the file's interval.
    let yaml = "interval: 1m\nstarted-machine-count: q\nmetric-collectors:\n  - type: prometheus\n    metric-name: q\n    address: http://p\n    query: sum by (app_name) (queue_depth)\n    group-by: app_name\n";
    let p = prometheus(&load_ok(&[APP, TOKEN], Some(yaml)));
    assert_eq!(p.group_by, Some(GroupBy::new("app_name", secs(59))));
    assert_eq!(p.query, "sum by (app_name) (queue_depth)");

    // A grouped env query that still filters by app is refused, naming both variables.
    let mut env = vec![APP, TOKEN, ("FAS_STARTED_MACHINE_COUNT", "q")];
    env.extend([
        ("FAS_PROMETHEUS_ADDRESS", "http://prom:9090"),
        ("FAS_PROMETHEUS_METRIC_NAME", "q"),
        ("FAS_PROMETHEUS_QUERY", r#"sum(q{app="$APP_NAME"})"#),
        ("FAS_PROMETHEUS_GROUP_BY", "app"),
    ]);
    assert_one_problem(
        &load_err(&env, None),
        &[
            "FAS_PROMETHEUS_QUERY: a query grouped by `app` cannot read ${APP_NAME}",
            "or remove FAS_PROMETHEUS_GROUP_BY",
        ],
    );
}

#[test]
fn on_error_policies_from_env_and_yaml() {
    use fly_autoscaler::fallback::OnError;
    let policy = |c: &Config, metric: &str| c.on_error.get(metric).copied();
    // Default: skip, the Go behaviour, for the env and the file collectors.
    let mut env = vec![APP, TOKEN, ("FAS_STARTED_MACHINE_COUNT", "queue_depth")];
    env.extend(PROM_ENV);
    assert_eq!(
        policy(&load_ok(&env, None), "queue_depth"),
        Some(OnError::Skip)
    );
    // Env: hold with its default max-age, then a given one.
    let mut hold = env.clone();
    hold.push(("FAS_PROMETHEUS_ON_ERROR", "hold"));
    assert_eq!(
        policy(&load_ok(&hold, None), "queue_depth"),
        Some(OnError::Hold { max_age: secs(300) })
    );
    hold.push(("FAS_PROMETHEUS_MAX_AGE", "90s"));
    assert_eq!(
        policy(&load_ok(&hold, None), "queue_depth"),
        Some(OnError::Hold { max_age: secs(90) })
    );
    // Env: value with the default threshold of 3, then a given one.
    let mut value = env.clone();
    value.extend([
        ("FAS_PROMETHEUS_ON_ERROR", "value"),
        ("FAS_PROMETHEUS_ON_ERROR_VALUE", "250"),
    ]);
    assert_eq!(
        policy(&load_ok(&value, None), "queue_depth"),
        Some(OnError::Value {
            value: 250.0,
            failure_threshold: 3
        })
    );
    value.push(("FAS_PROMETHEUS_FAILURE_THRESHOLD", "1"));
    assert_eq!(
        policy(&load_ok(&value, None), "queue_depth"),
        Some(OnError::Value {
            value: 250.0,
            failure_threshold: 1
        })
    );
    // The env temporal collector.
    let temporal = [
        APP,
        TOKEN,
        ("FAS_STARTED_MACHINE_COUNT", "running"),
        ("FAS_TEMPORAL_ADDRESS", "localhost:7233"),
        ("FAS_TEMPORAL_METRIC_NAME", "running"),
        ("FAS_TEMPORAL_ON_ERROR", "hold"),
        ("FAS_TEMPORAL_MAX_AGE", "2m"),
    ];
    assert_eq!(
        policy(&load_ok(&temporal, None), "running"),
        Some(OnError::Hold { max_age: secs(120) })
    );
    // YAML: flat keys, per collector, unquoted numbers.
    let yaml = "started-machine-count: a + b + c
metric-collectors:
  - {type: prometheus, metric-name: a, address: http://p, query: a, on-error: hold, max-age: 10m}
  - {type: prometheus, metric-name: b, address: http://p, query: b, on-error: value, on-error-value: 12.5, failure-threshold: 5}
  - {type: temporal, metric-name: c, address: t:7233}
";
    let c = load_ok(&[APP, TOKEN], Some(yaml));
    assert_eq!(policy(&c, "a"), Some(OnError::Hold { max_age: secs(600) }));
    assert_eq!(
        policy(&c, "b"),
        Some(OnError::Value {
            value: 12.5,
            failure_threshold: 5
        })
    );
    assert_eq!(policy(&c, "c"), Some(OnError::Skip));
}

#[test]
fn on_error_problems_name_the_key() {
    let cases = [
        (
            "on-error: zero",
            "metric-collectors[0].on-error: invalid on-error \"zero\": expected skip, hold or value",
        ),
        (
            "on-error: value",
            "metric-collectors[0]: on-error value required: set metric-collectors[0].on-error-value",
        ),
        (
            "{on-error: value, on-error-value: many}",
            "metric-collectors[0].on-error-value: invalid number \"many\": expected a finite number",
        ),
        (
            "{on-error: value, on-error-value: .nan}",
            "metric-collectors[0].on-error-value: invalid number",
        ),
        (
            "{on-error: value, on-error-value: 5, failure-threshold: 0}",
            "metric-collectors[0].failure-threshold: invalid integer \"0\": expected a whole number of 1 or more",
        ),
        (
            "{on-error: hold, max-age: 0s}",
            "metric-collectors[0].max-age: invalid duration \"0s\": must be greater than zero",
        ),
        (
            "{on-error: hold, max-age: 5 minutes}",
            "metric-collectors[0].max-age: invalid duration",
        ),
        (
            "{on-error: hold, on-error-value: 5}",
            "metric-collectors[0].on-error-value: on-error-value applies to on-error: value only: set metric-collectors[0].on-error to value, or remove it",
        ),
        (
            "{max-age: 1m}",
            "metric-collectors[0].max-age: max-age applies to on-error: hold only",
        ),
        (
            "{on-error: hold, failure-threshold: 2}",
            "metric-collectors[0].failure-threshold: failure-threshold applies to on-error: value only",
        ),
    ];
    for (policy, message) in cases {
        let fields = policy.trim_start_matches('{').trim_end_matches('}');
        let yaml = format!(
            "metric-collectors:\n  - {{type: prometheus, metric-name: q, address: http://p, query: q, {fields}}}\n"
        );
        let p = load_err(&[APP, TOKEN, STARTED], Some(&yaml));
        assert_one_problem(&p, &[message]);
    }
    // The nested form (`on-error: {value: 100}`) is not accepted: the keys are flat.
    let nested = "metric-collectors:\n  - {type: prometheus, metric-name: q, address: http://p, query: q, on-error: {value: 100}}\n";
    let p = load_err(&[APP, TOKEN, STARTED], Some(nested));
    assert_one_problem(
        &p,
        &["metric-collectors[0].on-error: invalid type: found map, expected a string"],
    );
    // Env collectors name their variables.
    let mut env = vec![APP, TOKEN, STARTED];
    env.extend(PROM_ENV);
    env.extend([
        ("FAS_PROMETHEUS_ON_ERROR", "value"),
        ("FAS_PROMETHEUS_FAILURE_THRESHOLD", "0"),
    ]);
    let p = load_err(&env, None);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with("FAS_PROMETHEUS_FAILURE_THRESHOLD: invalid integer \"0\""),
        "{p:?}"
    );
    assert!(
        p[1].contains("on-error value required: set FAS_PROMETHEUS_ON_ERROR_VALUE"),
        "{p:?}"
    );
}

#[test]
fn env_temporal_collector_prefers_temporal_tls_variables() {
    let c = load_ok(
        &[
            APP,
            TOKEN,
            ("FAS_STARTED_MACHINE_COUNT", "running"),
            ("FAS_TEMPORAL_ADDRESS", "localhost:7233"),
            ("FAS_TEMPORAL_METRIC_NAME", "running"),
            ("FAS_TEMPORAL_QUERY", "WorkflowType=\"x\""),
            ("TEMPORAL_TLS_CERT_DATA", "CERT-A"),
            ("FAS_TEMPORAL_CERT_DATA", "CERT-B"),
            ("FAS_TEMPORAL_KEY_DATA", "KEY-B"),
            ("TEMPORAL_TLS_CA_DATA", "CA-A"),
            ("FAS_TEMPORAL_CA_DATA", "CA-B"),
        ],
        None,
    );
    let CollectorConfig::Temporal(t) = &c.collectors[0] else {
        panic!("not temporal")
    };
    assert_eq!(t.address, "localhost:7233");
    assert_eq!(t.namespace, "default");
    assert_eq!(t.query.as_deref(), Some("WorkflowType=\"x\""));
    assert_eq!(
        t.cert_pem.as_deref(),
        Some("CERT-A"),
        "TEMPORAL_TLS_CERT_DATA wins"
    );
    assert_eq!(
        t.key_pem.as_ref().map(|k| k.expose_secret()),
        Some("KEY-B"),
        "falls back to FAS_TEMPORAL_KEY_DATA"
    );
    assert_eq!(
        t.ca_pem.as_deref(),
        Some("CA-A"),
        "TEMPORAL_TLS_CA_DATA wins"
    );

    let c = load_ok(
        &[
            APP,
            TOKEN,
            ("FAS_STARTED_MACHINE_COUNT", "running"),
            ("FAS_TEMPORAL_ADDRESS", "localhost:7233"),
            ("FAS_TEMPORAL_NAMESPACE", "prod"),
            ("FAS_TEMPORAL_METRIC_NAME", "running"),
        ],
        None,
    );
    let CollectorConfig::Temporal(t) = &c.collectors[0] else {
        panic!("not temporal")
    };
    assert_eq!(t.namespace, "prod");
    assert_eq!(t.query, None);
    assert!(t.cert_pem.is_none() && t.key_pem.is_none() && t.ca_pem.is_none());
}

#[test]
fn temporal_ca_data_from_env_fallback_and_yaml_without_a_client_certificate() {
    // FAS_TEMPORAL_CA_DATA alone, no client certificate: server-authenticated TLS is valid config
    let c = load_ok(
        &[
            APP,
            TOKEN,
            ("FAS_STARTED_MACHINE_COUNT", "running"),
            ("FAS_TEMPORAL_ADDRESS", "temporal.internal:7233"),
            ("FAS_TEMPORAL_METRIC_NAME", "running"),
            ("FAS_TEMPORAL_CA_DATA", "CA-B"),
        ],
        None,
    );
    let CollectorConfig::Temporal(t) = &c.collectors[0] else {
        panic!("not temporal")
    };
    assert_eq!(
        t.ca_pem.as_deref(),
        Some("CA-B"),
        "falls back to FAS_TEMPORAL_CA_DATA"
    );
    assert!(t.cert_pem.is_none() && t.key_pem.is_none());

    let yaml = "metric-collectors:\n  - type: temporal\n    metric-name: running\n    address: temporal.internal:7233\n    ca-data: |\n      -----BEGIN CERTIFICATE-----\n      CA-YAML\n      -----END CERTIFICATE-----\n";
    let c = load_ok(
        &[APP, TOKEN, ("FAS_STARTED_MACHINE_COUNT", "running")],
        Some(yaml),
    );
    let CollectorConfig::Temporal(t) = &c.collectors[0] else {
        panic!("not temporal")
    };
    assert_eq!(
        t.ca_pem.as_deref(),
        Some("-----BEGIN CERTIFICATE-----\nCA-YAML\n-----END CERTIFICATE-----")
    );
}

#[test]
fn file_collectors_replace_env_collectors() {
    let mut env = vec![APP, TOKEN, ("FAS_STARTED_MACHINE_COUNT", "running")];
    env.extend(PROM_ENV);
    let yaml = "metric-collectors:\n  - type: temporal\n    metric-name: running\n    address: localhost:7233\n";
    let c = load_ok(&env, Some(yaml));
    assert_eq!(
        c.metric_names(),
        ["running"],
        "the env prometheus collector is gone"
    );
    assert!(matches!(c.collectors[0], CollectorConfig::Temporal(_)));

    // A file without `metric-collectors` keeps the env collectors.
    let mut env = vec![APP, TOKEN, ("FAS_STARTED_MACHINE_COUNT", "queue_depth")];
    env.extend(PROM_ENV);
    let c = load_ok(&env, Some("interval: 10s\n"));
    assert_eq!(c.metric_names(), ["queue_depth"]);
}

#[test]
fn yaml_collector_keys() {
    let yaml = r#"
app-name: my-app
started-machine-count: ceil(q / 10) + t
metric-collectors:
  - type: prometheus
    metric-name: q
    address: https://api.fly.io/prometheus/my-org
    query: sum(q)
    token: "FlyV1 abc"
    multiple-series: sum
    timeout: 5s
  - type: temporal
    metric-name: t
    address: ns.tmprl.cloud:7233
    namespace: ns
    query: WorkflowType="w"
    cert-data: CERT
    key-data: KEY
    ca-data: CA
    timeout: 2s
"#;
    let c = load_ok(&[TOKEN], Some(yaml));
    assert_eq!(c.metric_names(), ["q", "t"]);
    let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
        panic!()
    };
    assert_eq!(p.multiple_series, fas_collect::MultipleSeries::Sum);
    assert_eq!(p.timeout, secs(5));
    assert_eq!(
        p.token.as_ref().map(|t| t.expose_secret()),
        Some("FlyV1 abc")
    );
    let CollectorConfig::Temporal(t) = &c.collectors[1] else {
        panic!()
    };
    assert_eq!((t.namespace.as_str(), t.timeout), ("ns", secs(2)));
    assert_eq!(t.query.as_deref(), Some("WorkflowType=\"w\""));
    assert_eq!(t.cert_pem.as_deref(), Some("CERT"));
    assert_eq!(t.ca_pem.as_deref(), Some("CA"));
}

#[test]
fn collector_timeout_defaults_to_10s_bounded_by_the_app_timeout() {
    let mut env = vec![
        APP,
        TOKEN,
        ("FAS_STARTED_MACHINE_COUNT", "queue_depth"),
        ("FAS_TIMEOUT", "4s"),
    ];
    env.extend(PROM_ENV);
    let c = load_ok(&env, None);
    let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
        panic!()
    };
    assert_eq!(p.timeout, secs(4));

    env.push(("FAS_PROMETHEUS_TIMEOUT", "5s"));
    let p = load_err(&env, None);
    assert_one_problem(&p, &["FAS_PROMETHEUS_TIMEOUT", "5s", "4s"]);
}

#[test]
fn unquoted_yaml_scalars_are_accepted() {
    let yaml = "app-name: my-app\nstarted-machine-count: 5\nmax-created-machine-count: 2.5\nmin-created-machine-count: 1\nverbose: true\nconcurrency: 3\n";
    let c = load_ok(&[TOKEN], Some(yaml));
    assert_eq!(c.started.as_ref().unwrap().min.source(), "5");
    assert_eq!(c.created.as_ref().unwrap().max.source(), "2.5");
    assert!(c.verbose);
    assert_eq!(c.concurrency, 3);
}

#[test]
fn empty_and_comment_only_files_set_nothing() {
    for text in ["", "# nothing here\n\n", "---\n"] {
        let c = load_ok(&[APP, TOKEN, STARTED], Some(text));
        assert_eq!(c.app_name, "my-app");
    }
}

#[test]
fn a_missing_file_is_an_error() {
    let s = Sources {
        env: [APP, TOKEN, STARTED]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        file: Some(PathBuf::from("/nonexistent/fly-autoscaler.yml")),
    };
    let e = load(&s, Purpose::Serve).unwrap_err();
    assert_one_problem(
        &rendered(&e.problems),
        &["cannot read config file", "/nonexistent/fly-autoscaler.yml"],
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Expansion

#[test]
fn file_expansion_replaces_env_vars_and_keeps_app_name() {
    let yaml = r#"
app-name: ${TARGET}
api-token: $MY_TOKEN
started-machine-count: q
metric-collectors:
  - type: prometheus
    metric-name: q
    address: ${PROM_URL}
    query: 'sum(q{app="${APP_NAME}", alt="$APP_NAME", env="${STAGE}", gone="${UNDEFINED_VAR}"})'
"#;
    let c = load_ok(
        &[
            ("TARGET", "my-app"),
            ("MY_TOKEN", "tok"),
            ("PROM_URL", "http://prom:9090"),
            ("STAGE", "prod"),
        ],
        Some(yaml),
    );
    assert_eq!(c.app_name, "my-app");
    assert_eq!(c.api_token.as_ref().unwrap().expose_secret(), "tok");
    let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
        panic!()
    };
    assert_eq!(p.address, "http://prom:9090");
    assert_eq!(
        p.query,
        r#"sum(q{app="${APP_NAME}", alt="$APP_NAME", env="prod", gone=""})"#
    );
}

#[test]
fn file_expansion_keeps_label_replace_groups() {
    let query = r#"label_replace(sum by (job) (q), "svc", "$1", "job", "(.*)-${1}")"#;
    let yaml = format!(
        "app-name: a\nstarted-machine-count: q\nmetric-collectors:\n  - type: prometheus\n    metric-name: q\n    address: http://p\n    query: '{query}'\n"
    );
    let c = load_ok(&[TOKEN], Some(&yaml));
    let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
        panic!()
    };
    assert_eq!(p.query, query);
}

#[test]
fn env_query_keeps_references_and_gets_only_the_variables_it_reads() {
    let c = load_ok(
        &[
            APP,
            TOKEN,
            ("FAS_STARTED_MACHINE_COUNT", "q"),
            ("FAS_PROMETHEUS_ADDRESS", "http://p"),
            ("FAS_PROMETHEUS_METRIC_NAME", "q"),
            (
                "FAS_PROMETHEUS_QUERY",
                r#"sum(q{app="${APP_NAME}", env="${STAGE}"})"#,
            ),
            ("STAGE", "prod"),
        ],
        None,
    );
    let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
        panic!()
    };
    assert_eq!(
        p.query, r#"sum(q{app="${APP_NAME}", env="${STAGE}"})"#,
        "the collector expands per app"
    );
    assert_eq!(
        p.env,
        BTreeMap::from([("STAGE".to_string(), "prod".to_string())]),
        "no FAS_API_TOKEN in env"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Values

#[test]
fn durations_table() {
    let ok = [
        ("15s", Duration::from_secs(15)),
        ("1m30s", Duration::from_secs(90)),
        ("500ms", Duration::from_millis(500)),
        ("1h", Duration::from_secs(3600)),
        ("1.5s", Duration::from_millis(1500)),
        ("2h45m", Duration::from_secs(2 * 3600 + 45 * 60)),
        ("300us", Duration::from_micros(300)),
        ("300µs", Duration::from_micros(300)),
        ("300μs", Duration::from_micros(300)),
        ("10ns", Duration::from_nanos(10)),
        (".5s", Duration::from_millis(500)),
        ("1.s", Duration::from_secs(1)),
        ("0", Duration::ZERO),
        ("0s", Duration::ZERO),
        ("+5s", Duration::from_secs(5)),
        ("1h1m1s1ms", Duration::from_millis(3_661_001)),
        ("0.000000001s", Duration::from_nanos(1)),
    ];
    for (s, d) in ok {
        assert_eq!(parse_go_duration(s), Ok(d), "{s}");
    }
    let bad = [
        ("", "empty"),
        ("15", "missing unit"),
        ("abc", "expected a number"),
        ("5x", "unknown unit"),
        ("1d", "unknown unit"),
        ("-5s", "negative"),
        (".s", "expected a number"),
        ("1s2", "missing unit"),
        ("9999999999h", "too large"),
    ];
    for (s, why) in bad {
        let e = parse_go_duration(s).unwrap_err();
        assert!(e.contains(&format!("{s:?}")) && e.contains(why), "{s}: {e}");
    }
}

#[test]
fn regions_split_on_commas_and_spaces() {
    let c = load_ok(
        &[APP, TOKEN, STARTED, ("FAS_REGIONS", " iad, ord ,,sjc ")],
        None,
    );
    assert_eq!(c.regions, ["iad", "ord", "sjc"]);
    let c = load_ok(&[APP, TOKEN, STARTED], Some("regions:\n  - iad\n  - ord\n"));
    assert_eq!(c.regions, ["iad", "ord"]);
    let c = load_ok(&[APP, TOKEN, STARTED], Some("regions: iad,ord\n"));
    assert_eq!(c.regions, ["iad", "ord"]);
}

#[test]
fn env_values_that_look_like_numbers_stay_expressions() {
    let c = load_ok(
        &[
            APP,
            TOKEN,
            ("FAS_STARTED_MACHINE_COUNT", "5"),
            ("FAS_CREATED_MACHINE_COUNT", "2.5"),
        ],
        None,
    );
    assert_eq!(c.started.unwrap().max.source(), "5");
    assert_eq!(c.created.unwrap().min.source(), "2.5");
}

#[test]
fn booleans() {
    for (v, expected) in [
        ("true", true),
        ("1", true),
        ("TRUE", true),
        ("false", false),
        ("0", false),
        ("f", false),
    ] {
        assert_eq!(
            load_ok(&[APP, TOKEN, STARTED, ("FAS_VERBOSE", v)], None).verbose,
            expected,
            "{v}"
        );
    }
    let p = load_err(&[APP, TOKEN, STARTED, ("FAS_VERBOSE", "maybe")], None);
    assert_one_problem(&p, &["FAS_VERBOSE", "\"maybe\""]);
    let p = load_err(&[APP, TOKEN, STARTED], Some("verbose: maybe\n"));
    assert_one_problem(&p, &["verbose", "\"maybe\""]);
}

#[test]
fn unknown_fas_variables_are_warned_about() {
    let c = load_ok(
        &[
            APP,
            TOKEN,
            STARTED,
            ("FAS_STARTED_MACHINES_COUNT", "3"),
            ("HOME", "/root"),
        ],
        None,
    );
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0]
            .to_string()
            .contains("FAS_STARTED_MACHINES_COUNT")
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Validation (contract.md "Validation messages")

#[test]
fn validation_app_name_required() {
    assert_one_problem(
        &load_err(&[TOKEN, STARTED], None),
        &["app name required", "FAS_APP_NAME", "app-name"],
    );
}

#[test]
fn validation_must_define_a_count() {
    assert_one_problem(
        &load_err(&[APP, TOKEN], None),
        &[
            "must define either created machine count or started machine count",
            "FAS_STARTED_MACHINE_COUNT",
        ],
    );
}

#[test]
fn validation_count_and_min_max_are_exclusive() {
    for which in ["CREATED", "STARTED"] {
        let single = format!("FAS_{which}_MACHINE_COUNT");
        let min = format!("FAS_MIN_{which}_MACHINE_COUNT");
        let lower = which.to_lowercase();
        let p = load_err(&[APP, TOKEN, (&single, "1"), (&min, "1")], None);
        assert_one_problem(
            &p,
            &[
                &format!("cannot define {lower} machine count and min/max {lower} machine count"),
                &single,
                &min,
            ],
        );
    }
    // The same through the file, and mixed sources (env count, file min/max) too.
    let p = load_err(
        &[APP, TOKEN, ("FAS_STARTED_MACHINE_COUNT", "1")],
        Some("min-started-machine-count: 1\nmax-started-machine-count: 2\n"),
    );
    assert_one_problem(
        &p,
        &[
            "cannot define started",
            "min-started-machine-count",
            "max-started-machine-count",
        ],
    );
}

#[test]
fn validation_min_and_max_come_in_pairs() {
    for which in ["created", "started"] {
        let min_env = format!("FAS_MIN_{}_MACHINE_COUNT", which.to_uppercase());
        let max_env = format!("FAS_MAX_{}_MACHINE_COUNT", which.to_uppercase());
        let p = load_err(&[APP, TOKEN, (&min_env, "1")], None);
        assert_one_problem(
            &p,
            &[
                &format!(
                    "max {which} machine count required if min {which} machine count is defined"
                ),
                &min_env,
                &max_env,
            ],
        );
        let p = load_err(&[APP, TOKEN, (&max_env, "1")], None);
        assert_one_problem(
            &p,
            &[
                &format!(
                    "min {which} machine count required if max {which} machine count is defined"
                ),
                &max_env,
                &min_env,
            ],
        );
    }
}

#[test]
fn validation_initial_machine_state() {
    let p = load_err(
        &[
            APP,
            TOKEN,
            STARTED,
            ("FAS_INITIAL_MACHINE_STATE", "running"),
        ],
        None,
    );
    assert_one_problem(
        &p,
        &[
            "FAS_INITIAL_MACHINE_STATE",
            "initial machine state must be either 'started' or 'stopped'",
            "\"running\"",
        ],
    );
}

#[test]
fn validation_collector_messages() {
    let cases = [
        (
            "    type: prometheus\n    address: http://p\n    query: q\n",
            "metric-collectors[0]: metric name required",
        ),
        (
            "    metric-name: q\n    address: http://p\n    query: q\n",
            "metric-collectors[0]: type required",
        ),
        (
            "    type: graphite\n    metric-name: q\n",
            "metric-collectors[0].type: invalid type \"graphite\": expected prometheus or temporal",
        ),
        (
            "    type: prometheus\n    metric-name: q\n    query: q\n",
            "metric-collectors[0]: prometheus address required",
        ),
        (
            "    type: prometheus\n    metric-name: q\n    address: http://p\n",
            "metric-collectors[0]: prometheus query required",
        ),
        (
            "    type: temporal\n    metric-name: q\n",
            "metric-collectors[0]: temporal address required",
        ),
        (
            "    type: temporal\n    metric-name: q\n    address: a:1\n    cert-data: C\n",
            "metric-collectors[0]: TLS needs both a certificate and a key",
        ),
        (
            "    type: prometheus\n    metric-name: q\n    address: http://p\n    query: q\n    multiple-series: last\n",
            "metric-collectors[0].multiple-series: invalid value \"last\"",
        ),
        (
            "    type: prometheus\n    metric-name: queue-depth\n    address: http://p\n    query: q\n",
            "metric-collectors[0].metric-name: invalid metric name \"queue-depth\": must be a variable name",
        ),
        (
            "    type: temporal\n    metric-name: q\n    address: a:1\n    group-by: app\n",
            "metric-collectors[0].group-by: group-by applies to prometheus collectors only",
        ),
        (
            "    type: prometheus\n    metric-name: q\n    address: http://p\n    query: q\n    group-by: app-name\n",
            "metric-collectors[0].group-by: invalid group-by label \"app-name\": must be a prometheus label name",
        ),
        (
            "    type: prometheus\n    metric-name: q\n    address: http://p\n    query: 'sum(q{app=\"${APP_NAME}\"})'\n    group-by: app\n",
            "metric-collectors[0].query: a query grouped by `app` cannot read ${APP_NAME}: it runs once for every app: drop the app filter and keep the label, e.g. sum by (app) (...), or remove metric-collectors[0].group-by",
        ),
    ];
    for (entry, message) in cases {
        let yaml = format!("metric-collectors:\n  -\n{entry}");
        let p = load_err(&[APP, TOKEN, STARTED], Some(&yaml));
        assert_one_problem(&p, &[message]);
    }
    // Index of the second entry, and a duplicate name.
    let yaml = "metric-collectors:\n  - {type: prometheus, metric-name: q, address: http://p, query: q}\n  - {type: prometheus, metric-name: q, address: http://p, query: q}\n";
    assert_one_problem(
        &load_err(&[APP, TOKEN, STARTED], Some(yaml)),
        &["metric-collectors[1]: duplicate metric name \"q\""],
    );
    // Env collectors name their variables.
    let p = load_err(
        &[APP, TOKEN, STARTED, ("FAS_PROMETHEUS_ADDRESS", "http://p")],
        None,
    );
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].contains("metric name required") && p[0].contains("FAS_PROMETHEUS_METRIC_NAME"),
        "{p:?}"
    );
    assert!(
        p[1].contains("prometheus query required") && p[1].contains("FAS_PROMETHEUS_QUERY"),
        "{p:?}"
    );
}

#[test]
fn validation_wildcard_requires_org() {
    let p = load_err(&[("FAS_APP_NAME", "my-app-*"), TOKEN, STARTED], None);
    assert_one_problem(
        &p,
        &[
            "organization required if app name uses a wildcard",
            "FAS_ORG",
            "\"my-app-*\"",
        ],
    );
    let c = load_ok(
        &[
            ("FAS_APP_NAME", "my-app-*"),
            ("FAS_ORG", "my-org"),
            TOKEN,
            STARTED,
        ],
        None,
    );
    assert!(c.has_wildcard());
}

#[test]
fn validation_api_token_required_for_serve_only() {
    let p = load_err_with(&[APP, STARTED], None, Purpose::Serve);
    assert_one_problem(&p, &["api token required", "FAS_API_TOKEN"]);
    let (s, _g) = sources(&[APP, STARTED], None);
    let c = load(&s, Purpose::Eval).expect("eval needs no token");
    assert!(c.api_token.is_none());
}

#[test]
fn behavior_steps_take_machines_percentages_or_unlimited() {
    use fas_reconcile::Step;
    for (value, expected) in [
        ("1", Some(Step::Machines(1))),
        ("25", Some(Step::Machines(25))),
        ("50%", Some(Step::Percent(50))),
        ("100%", Some(Step::Percent(100))),
        ("unlimited", None),
    ] {
        let c = load_ok(
            &[
                APP,
                TOKEN,
                STARTED,
                ("FAS_SCALE_UP_MAX_STEP", value),
                ("FAS_SCALE_DOWN_MAX_STEP", value),
            ],
            None,
        );
        assert_eq!(c.behavior.scale_up_max_step, expected, "up {value}");
        assert_eq!(c.behavior.scale_down_max_step, expected, "down {value}");
    }
    // A scale-up may more than double; unquoted in the file, and the file wins.
    let c = load_ok(
        &[APP, TOKEN, STARTED, ("FAS_SCALE_UP_MAX_STEP", "1")],
        Some("scale-up-max-step: 300%\nscale-down-max-step: 2\nscale-down-cooldown: 5m\n"),
    );
    assert_eq!(c.behavior.scale_up_max_step, Some(Step::Percent(300)));
    assert_eq!(c.behavior.scale_down_max_step, Some(Step::Machines(2)));
    assert_eq!(c.behavior.scale_down_cooldown, secs(300));
    for bad in ["0", "0%", "-1", "1.5", "50 percent", "%"] {
        let p = load_err(&[APP, TOKEN, STARTED, ("FAS_SCALE_UP_MAX_STEP", bad)], None);
        assert_one_problem(&p, &["FAS_SCALE_UP_MAX_STEP: invalid step"]);
    }
    let p = load_err(
        &[APP, TOKEN, STARTED, ("FAS_SCALE_DOWN_MAX_STEP", "150%")],
        None,
    );
    assert_one_problem(&p, &["FAS_SCALE_DOWN_MAX_STEP", "from 1% to 100%"]);
    let p = load_err(
        &[APP, TOKEN, STARTED],
        Some("scale-down-cooldown: 1 minute\n"),
    );
    assert_one_problem(&p, &["scale-down-cooldown: invalid duration"]);
}

#[test]
fn scale_down_window_accepts_zero_and_go_durations() {
    for (value, expected) in [
        ("0", Duration::ZERO),
        ("0s", Duration::ZERO),
        ("90s", secs(90)),
        ("1m30s", secs(90)),
        ("750ms", Duration::from_millis(750)),
    ] {
        let c = load_ok(
            &[APP, TOKEN, STARTED, ("FAS_SCALE_DOWN_WINDOW", value)],
            None,
        );
        assert_eq!(c.scale_down_window, expected, "env {value}");
    }
    // Unquoted in the file, and the file wins over the environment.
    let c = load_ok(
        &[APP, TOKEN, STARTED, ("FAS_SCALE_DOWN_WINDOW", "1m")],
        Some("scale-down-window: 10m\n"),
    );
    assert_eq!(c.scale_down_window, secs(600));
    let c = load_ok(&[APP, TOKEN, STARTED], Some("scale-down-window: 0\n"));
    assert_eq!(c.scale_down_window, Duration::ZERO);
    let p = load_err(
        &[APP, TOKEN, STARTED],
        Some("scale-down-window: 5 minutes\n"),
    );
    assert_one_problem(&p, &["scale-down-window: invalid duration \"5 minutes\""]);
}

#[test]
fn validation_unparsable_values_name_the_variable_and_the_value() {
    let cases = [
        ("FAS_INTERVAL", "soon"),
        ("FAS_TIMEOUT", "30"),
        ("FAS_APP_LIST_REFRESH_INTERVAL", "-1m"),
        ("FAS_CONCURRENCY", "two"),
        ("FAS_CONCURRENCY", "1.5"),
        ("FAS_MAX_CREATES_PER_TICK", "-1"),
        ("FAS_ACTION_CONCURRENCY", "1.5"),
        ("FAS_SCALE_DOWN", "destroy"),
        ("FAS_LOG_FORMAT", "xml"),
        ("FLY_FLAPS_BASE_URL", "api.machines.dev"),
        ("FAS_INTERVAL", "0s"),
        ("FAS_SCALE_DOWN_WINDOW", "5"),
        ("FAS_SCALE_DOWN_WINDOW", "-30s"),
    ];
    for (var, value) in cases {
        let p = load_err(&[APP, TOKEN, STARTED, (var, value)], None);
        assert_one_problem(&p, &[var, &format!("{value:?}")]);
    }
    // The same through the file names the key.
    let p = load_err(&[APP, TOKEN, STARTED], Some("interval: soon\n"));
    assert_one_problem(&p, &["interval: invalid duration \"soon\""]);
}

#[test]
fn postgres_knobs_default_to_the_coordination_defaults() {
    let c = load_ok(&[APP, TOKEN, STARTED], None);
    let policy = fly_autoscaler::coord::CoordPolicy::from_knobs(
        c.postgres_heartbeat,
        c.postgres_query_timeout,
        c.postgres_slack,
    );
    assert_eq!(policy, fly_autoscaler::coord::CoordPolicy::default());
}

#[test]
fn postgres_knobs_from_env_and_file_and_the_file_wins() {
    let env = [
        APP,
        TOKEN,
        STARTED,
        ("FAS_POSTGRES_HEARTBEAT", "10s"),
        ("FAS_POSTGRES_QUERY_TIMEOUT", "3s"),
        ("FAS_POSTGRES_SLACK", "2"),
    ];
    let c = load_ok(&env, None);
    assert_eq!(
        (
            c.postgres_heartbeat,
            c.postgres_query_timeout,
            c.postgres_slack
        ),
        (secs(10), secs(3), 2)
    );
    // Unquoted in the file, over the environment; the smallest heartbeat is 1s.
    let c = load_ok(
        &env,
        Some("postgres-heartbeat: 1s\npostgres-query-timeout: 900ms\npostgres-slack: 0\n"),
    );
    assert_eq!(
        (
            c.postgres_heartbeat,
            c.postgres_query_timeout,
            c.postgres_slack
        ),
        (secs(1), Duration::from_millis(900), 0)
    );
}

#[test]
fn postgres_knob_problems_name_the_key() {
    // Each bad value alone: one problem naming its variable and showing the value.
    for (var, value, fragment) in [
        ("FAS_POSTGRES_HEARTBEAT", "soon", "invalid duration"),
        (
            "FAS_POSTGRES_HEARTBEAT",
            "999ms",
            "must be from 1s to 1h0m0s",
        ),
        ("FAS_POSTGRES_HEARTBEAT", "0s", "must be from 1s to 1h0m0s"),
        ("FAS_POSTGRES_HEARTBEAT", "2h", "must be from 1s to 1h0m0s"),
        ("FAS_POSTGRES_HEARTBEAT", "-2s", "negative"),
        ("FAS_POSTGRES_QUERY_TIMEOUT", "1", "missing unit"),
        (
            "FAS_POSTGRES_QUERY_TIMEOUT",
            "0s",
            "must be greater than zero",
        ),
        (
            "FAS_POSTGRES_QUERY_TIMEOUT",
            "2s",
            "postgres-heartbeat or FAS_POSTGRES_HEARTBEAT",
        ),
        ("FAS_POSTGRES_SLACK", "-1", "whole number of 0 or more"),
        ("FAS_POSTGRES_SLACK", "1.5", "invalid integer"),
        ("FAS_POSTGRES_SLACK", "many", "invalid integer"),
    ] {
        let p = load_err(&[APP, TOKEN, STARTED, (var, value)], None);
        assert_one_problem(&p, &[&format!("{var}: "), &format!("{value:?}"), fragment]);
    }
    // The same through the file names the key.
    let p = load_err(&[APP, TOKEN, STARTED], Some("postgres-slack: -1\n"));
    assert_one_problem(&p, &["postgres-slack: invalid integer \"-1\""]);
    let p = load_err(&[APP, TOKEN, STARTED], Some("postgres-heartbeat: 500ms\n"));
    assert_one_problem(&p, &["postgres-heartbeat: invalid duration \"500ms\""]);
}

#[test]
fn postgres_query_timeout_must_be_under_the_heartbeat_and_the_problem_names_both_keys() {
    // Both set, in the environment and in the file.
    let p = load_err(
        &[
            APP,
            TOKEN,
            STARTED,
            ("FAS_POSTGRES_HEARTBEAT", "3s"),
            ("FAS_POSTGRES_QUERY_TIMEOUT", "3s"),
        ],
        None,
    );
    assert_one_problem(
        &p,
        &[
            "FAS_POSTGRES_QUERY_TIMEOUT: ",
            "\"3s\"",
            "must be less than postgres-heartbeat or FAS_POSTGRES_HEARTBEAT (3s)",
        ],
    );
    let p = load_err(
        &[APP, TOKEN, STARTED],
        Some("postgres-heartbeat: 2s\npostgres-query-timeout: 5s\n"),
    );
    assert_one_problem(
        &p,
        &[
            "postgres-query-timeout: ",
            "\"5s\"",
            "must be less than postgres-heartbeat or FAS_POSTGRES_HEARTBEAT (2s)",
        ],
    );
    // Only the query timeout, against the default heartbeat.
    let p = load_err(
        &[APP, TOKEN, STARTED, ("FAS_POSTGRES_QUERY_TIMEOUT", "2s")],
        None,
    );
    assert_one_problem(
        &p,
        &[
            "FAS_POSTGRES_QUERY_TIMEOUT: ",
            "postgres-heartbeat or FAS_POSTGRES_HEARTBEAT (2s, the default)",
        ],
    );
    // Only the heartbeat, down to the default query timeout: named by the heartbeat.
    let p = load_err(
        &[APP, TOKEN, STARTED, ("FAS_POSTGRES_HEARTBEAT", "1s")],
        None,
    );
    assert_one_problem(
        &p,
        &[
            "FAS_POSTGRES_HEARTBEAT: ",
            "\"1s\"",
            "must be more than postgres-query-timeout or FAS_POSTGRES_QUERY_TIMEOUT (1s, the default)",
        ],
    );
    let c = load_ok(
        &[
            APP,
            TOKEN,
            STARTED,
            ("FAS_POSTGRES_HEARTBEAT", "1s"),
            ("FAS_POSTGRES_QUERY_TIMEOUT", "999ms"),
        ],
        None,
    );
    assert_eq!(c.postgres_query_timeout, Duration::from_millis(999));
    // A value that does not parse is reported alone (no comparison against a default).
    let p = load_err(
        &[
            APP,
            TOKEN,
            STARTED,
            ("FAS_POSTGRES_HEARTBEAT", "soon"),
            ("FAS_POSTGRES_QUERY_TIMEOUT", "5s"),
        ],
        None,
    );
    assert_one_problem(&p, &["FAS_POSTGRES_HEARTBEAT: invalid duration \"soon\""]);
}

#[test]
fn validation_expression_errors_name_the_key() {
    let p = load_err(&[APP, TOKEN, ("FAS_STARTED_MACHINE_COUNT", "ceil(")], None);
    assert_one_problem(&p, &["FAS_STARTED_MACHINE_COUNT: "]);
    let p = load_err(&[APP, TOKEN], Some("created-machine-count: '1 +* 2'\n"));
    assert_one_problem(&p, &["created-machine-count: "]);
}

#[test]
fn validation_unknown_variables_are_checked_against_metric_names() {
    let mut env = vec![
        APP,
        TOKEN,
        ("FAS_STARTED_MACHINE_COUNT", "ceil(queu_depth / 10)"),
    ];
    env.extend(PROM_ENV);
    let p = load_err(&env, None);
    assert_one_problem(
        &p,
        &["FAS_STARTED_MACHINE_COUNT: ", "queu_depth", "queue_depth"],
    );
    // Both bounds are checked.
    let p = load_err(
        &[APP, TOKEN],
        Some("min-created-machine-count: a\nmax-created-machine-count: b + 1\n"),
    );
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with("min-created-machine-count: ") && p[0].contains('a'),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("max-created-machine-count: ") && p[1].contains('b'),
        "{p:?}"
    );
}

#[test]
fn unknown_yaml_keys_are_rejected() {
    let p = load_err(&[APP, TOKEN, STARTED], Some("app-nmae: x\n"));
    assert_one_problem(
        &p,
        &[
            "fly-autoscaler.yml: unknown key `app-nmae` (did you mean `app-name`?); valid keys: app-name, org,",
        ],
    );
    let p = load_err(
        &[APP, TOKEN, STARTED],
        Some(
            "metric-collectors:\n  - type: prometheus\n    metric-name: q\n    adress: http://p\n",
        ),
    );
    assert_one_problem(
        &p,
        &[
            "unknown key `adress` in metric-collectors[0] (did you mean `address`?); valid keys: type,",
        ],
    );
    // A key far from every valid one gets no suggestion.
    let p = load_err(&[APP, TOKEN, STARTED], Some("completely-different: 1\n"));
    assert_one_problem(
        &p,
        &["unknown key `completely-different`; valid keys: app-name"],
    );
    // Other structural errors name the key too.
    let p = load_err(&[APP, TOKEN, STARTED], Some("metric-collectors: 3\n"));
    assert_one_problem(&p, &["metric-collectors: invalid type"]);
}

#[test]
fn five_problems_are_reported_together() {
    let p = load_err(
        &[
            TOKEN,
            ("FAS_INTERVAL", "soon"),
            ("FAS_CONCURRENCY", "many"),
            ("FAS_INITIAL_MACHINE_STATE", "running"),
            ("FAS_MIN_STARTED_MACHINE_COUNT", "1"),
        ],
        None,
    );
    assert_eq!(p.len(), 5, "{p:#?}");
    for fragment in [
        "app name required",
        "FAS_INTERVAL",
        "FAS_CONCURRENCY",
        "FAS_INITIAL_MACHINE_STATE",
        "max started",
    ] {
        assert!(
            p.iter().any(|x| x.contains(fragment)),
            "{fragment} missing from {p:#?}"
        );
    }
    // Display lists one per line after the header; the api token problem makes it six for serve.
    let (s, _g) = sources(&[("FAS_INTERVAL", "soon")], None);
    let rendered = load(&s, Purpose::Serve).unwrap_err().to_string();
    assert!(
        rendered.starts_with("invalid configuration:\n  - "),
        "{rendered}"
    );
    assert_eq!(rendered.lines().count(), 1 + 4, "{rendered}");
}

// ---------------------------------------------------------------------------------------------------------------
// Secrets

const CANARY: &str = "CANARY-7f3a9c";

#[test]
fn token_canary_never_in_debug() {
    let c = load_ok(
        &[
            APP,
            ("FAS_API_TOKEN", CANARY),
            ("FAS_STARTED_MACHINE_COUNT", "q + r"),
            ("FAS_PROMETHEUS_ADDRESS", "http://p"),
            ("FAS_PROMETHEUS_METRIC_NAME", "q"),
            ("FAS_PROMETHEUS_QUERY", "sum(q)"),
            ("FAS_PROMETHEUS_TOKEN", CANARY),
            ("FAS_TEMPORAL_ADDRESS", "t:7233"),
            ("FAS_TEMPORAL_METRIC_NAME", "r"),
            ("FAS_TEMPORAL_CERT_DATA", "CERT"),
            ("FAS_TEMPORAL_KEY_DATA", CANARY),
        ],
        None,
    );
    let debug = format!("{c:?} {:?}", c.policy());
    assert!(!debug.contains(CANARY), "{debug}");
    assert!(
        debug.contains("my-app"),
        "the Debug output is real: {debug}"
    );
}

#[test]
fn token_canary_never_in_errors() {
    let yaml = format!(
        "api-token: {CANARY}\ninterval: nope\nmetric-collectors:\n  - type: prometheus\n    metric-name: q\n    token: {CANARY}\n  - type: temporal\n    key-data: {CANARY}\n    multiple-series: {CANARY}x\n"
    );
    let (s, _g) = sources(
        &[("FAS_API_TOKEN", CANARY), ("FAS_PROMETHEUS_TOKEN", CANARY)],
        Some(&yaml),
    );
    let e = load(&s, Purpose::Serve).unwrap_err();
    assert!(e.problems.len() >= 5, "{e}");
    let rendered = format!("{e} {e:?}");
    // The multiple-series value is not a secret and is shown; the secrets are not.
    assert!(
        !rendered.replace(&format!("{CANARY}x"), "").contains(CANARY),
        "{rendered}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Reference documentation

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn reference_yaml_file_loads() {
    let s = Sources {
        env: [
            ("FAS_API_TOKEN", "FlyV1 from-env"),
            ("PROMETHEUS_TOKEN", "FlyV1 prom"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        file: Some(docs_dir().join("fly-autoscaler.yml")),
    };
    let c = load(&s, Purpose::Serve).unwrap_or_else(|e| panic!("docs/fly-autoscaler.yml: {e}"));
    assert_eq!(c.app_name, "my-app");
    assert_eq!(
        c.api_token.as_ref().unwrap().expose_secret(),
        "FlyV1 from-env"
    );
    assert_eq!(c.metric_names(), ["queue_depth"]);
    let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
        panic!()
    };
    assert!(p.query.contains("${APP_NAME}"), "{}", p.query);
    assert_eq!(p.token.as_ref().unwrap().expose_secret(), "FlyV1 prom");
    assert!(
        c.warnings.is_empty(),
        "variables in comments are not reported: {:?}",
        c.warnings
    );
}

#[test]
fn reference_docs_mention_every_key_and_variable() {
    let yml = std::fs::read_to_string(docs_dir().join("fly-autoscaler.yml")).unwrap();
    let md = std::fs::read_to_string(docs_dir().join("configuration.md")).unwrap();
    let collector_keys = [
        "type",
        "metric-name",
        "address",
        "query",
        "token",
        "namespace",
        "cert-data",
        "key-data",
        "ca-data",
        "multiple-series",
        "group-by",
        "timeout",
        "on-error",
        "on-error-value",
        "max-age",
        "failure-threshold",
    ];
    for (key, env) in KEYS {
        assert!(
            yml.contains(&format!("{key}:")),
            "docs/fly-autoscaler.yml lacks {key}"
        );
        assert!(
            md.contains(&format!("`{key}`")),
            "docs/configuration.md lacks {key}"
        );
        assert!(
            md.contains(&format!("`{env}`")),
            "docs/configuration.md lacks {env}"
        );
    }
    for key in collector_keys {
        assert!(
            yml.contains(&format!("{key}:")),
            "docs/fly-autoscaler.yml lacks collector key {key}"
        );
        assert!(
            md.contains(&format!("`{key}`")),
            "docs/configuration.md lacks collector key {key}"
        );
    }
    for (_, env) in fly_autoscaler::config::PROMETHEUS_ENV {
        assert!(
            md.contains(&format!("`{env}`")),
            "docs/configuration.md lacks {env}"
        );
    }
    for (_, envs) in fly_autoscaler::config::TEMPORAL_ENV {
        for env in *envs {
            assert!(
                md.contains(&format!("`{env}`")),
                "docs/configuration.md lacks {env}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Go behaviours: clamped concurrency, unset variables, multiple series

/// Each warning as it is shown.
fn warnings(c: &Config) -> Vec<String> {
    c.warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn concurrency_below_one_is_clamped_to_one_with_a_warning() {
    for value in ["0", "-3"] {
        let c = load_ok(&[APP, TOKEN, STARTED, ("FAS_CONCURRENCY", value)], None);
        assert_eq!(c.concurrency, 1, "{value}");
        assert_eq!(
            warnings(&c),
            [format!(
                "FAS_CONCURRENCY: invalid concurrency {value:?}: must be at least 1; using 1, as the Go version does"
            )]
        );
    }
    let c = load_ok(&[APP, TOKEN, STARTED], Some("concurrency: 0\n"));
    assert_eq!(c.concurrency, 1);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].key.as_deref(), Some("concurrency"));
    // Not a number is still an error.
    let p = load_err(&[APP, TOKEN, STARTED, ("FAS_CONCURRENCY", "none")], None);
    assert_one_problem(&p, &["FAS_CONCURRENCY: invalid integer \"none\""]);
}

#[test]
fn multiple_series_accepts_first_error_and_sum() {
    use fas_collect::MultipleSeries;
    for (value, expected) in [
        ("first", MultipleSeries::First),
        ("error", MultipleSeries::Error),
        ("sum", MultipleSeries::Sum),
        ("FIRST", MultipleSeries::First),
    ] {
        let mut env = vec![APP, TOKEN, ("FAS_STARTED_MACHINE_COUNT", "queue_depth")];
        env.extend(PROM_ENV);
        env.push(("FAS_PROMETHEUS_MULTIPLE_SERIES", value));
        let c = load_ok(&env, None);
        let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
            panic!()
        };
        assert_eq!(p.multiple_series, expected, "{value}");
    }
    let yaml = "started-machine-count: q\nmetric-collectors:\n  - {type: prometheus, metric-name: q, address: http://p, query: q, multiple-series: first}\n";
    let c = load_ok(&[APP, TOKEN], Some(yaml));
    let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
        panic!()
    };
    assert_eq!(p.multiple_series, MultipleSeries::First);
}

#[test]
fn unset_variables_in_env_queries_expand_to_empty_with_a_warning() {
    let c = load_ok(
        &[
            APP,
            TOKEN,
            ("FAS_STARTED_MACHINE_COUNT", "q + r"),
            ("FAS_PROMETHEUS_ADDRESS", "http://p"),
            ("FAS_PROMETHEUS_METRIC_NAME", "q"),
            (
                "FAS_PROMETHEUS_QUERY",
                r#"label_replace(sum(q{app="${APP_NAME}", env="${STAGE}", zone="$ZONE", x="$UNSET"}), "a", "$1", "b", "(.*)")"#,
            ),
            ("FAS_TEMPORAL_ADDRESS", "t:7233"),
            ("FAS_TEMPORAL_METRIC_NAME", "r"),
            ("FAS_TEMPORAL_QUERY", "TaskQueue=\"${QUEUE}\""),
            ("STAGE", "prod"),
            ("ZONE", ""),
        ],
        None,
    );
    let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
        panic!()
    };
    assert_eq!(
        p.env,
        BTreeMap::from([
            ("STAGE".to_string(), "prod".to_string()),
            ("UNSET".to_string(), String::new()),
            ("ZONE".to_string(), String::new()),
        ]),
        "an unset variable expands to the empty string, like Go's os.Expand; APP_NAME and $1 are not variables"
    );
    let CollectorConfig::Temporal(t) = &c.collectors[1] else {
        panic!()
    };
    assert_eq!(
        t.env,
        BTreeMap::from([("QUEUE".to_string(), String::new())])
    );
    // Only unset variables are reported (a set but empty one is the user's choice), each naming the variable.
    assert_eq!(
        warnings(&c),
        [
            "FAS_PROMETHEUS_QUERY: unset variable `UNSET`: it expands to the empty string",
            "FAS_TEMPORAL_QUERY: unset variable `QUEUE`: it expands to the empty string",
        ]
    );
}

#[test]
fn unset_variables_in_the_file_expand_to_empty_with_a_warning() {
    let yaml = r##"# $IN_A_COMMENT is not reported
app-name: my-app
started-machine-count: q
metric-collectors:
  - type: prometheus
    metric-name: q
    address: ${PROM_URL}   # ${ALSO_A_COMMENT}
    query: 'sum(q{app="${APP_NAME}", gone="${GONE}", hash="#$HASHED"})'
"##;
    let (s, _g) = sources(&[TOKEN, ("PROM_URL", "http://p")], Some(yaml));
    let c = load(&s, Purpose::Serve).unwrap_or_else(|e| panic!("{e}"));
    let CollectorConfig::Prometheus(p) = &c.collectors[0] else {
        panic!()
    };
    assert_eq!(
        p.query, r##"sum(q{app="${APP_NAME}", gone="", hash="#"})"##,
        "unset variables are empty, as with Go's os.ExpandEnv"
    );
    let shown: Vec<String> = warnings(&c)
        .iter()
        .map(|w| w.replace(&s.file.as_ref().unwrap().display().to_string(), "FILE"))
        .collect();
    assert_eq!(
        shown,
        [
            "FILE:8: unset variable `GONE`: it expands to the empty string",
            "FILE:8: unset variable `HASHED`: it expands to the empty string",
        ]
    );
}

#[test]
fn unknown_fas_variables_get_a_suggestion_and_show_with_errors() {
    let (s, _g) = sources(&[TOKEN, STARTED, ("FAS_APP_NAM", "my-app")], None);
    let e = load(&s, Purpose::Serve).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid configuration:\n  - app name required: set app-name or FAS_APP_NAME\nwarnings:\n  - FAS_APP_NAM: not a fly-autoscaler setting (ignored): did you mean FAS_APP_NAME?"
    );
}

#[test]
fn an_empty_trigger_token_leaves_the_endpoint_off() {
    let c = load_ok(&[APP, TOKEN, STARTED, ("FAS_TRIGGER_TOKEN", "  ")], None);
    assert!(c.trigger_token.is_none());
    let c = load_ok(&[APP, TOKEN, STARTED], Some("trigger-token: ''\n"));
    assert!(c.trigger_token.is_none());
    let c = load_ok(&[APP, TOKEN, STARTED], None);
    assert_eq!(c.trigger_min_gap, std::time::Duration::from_secs(1));
}

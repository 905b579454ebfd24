//! Snapshots of the rendered configuration problems and warnings: every problem of a configuration at once, each
//! rendered by `ConfigProblem`'s `Display` (`key: message "value": hint`), never a secret. Update with
//! `UPDATE_EXPECT=1 cargo test -p fly-autoscaler --test config_problems`.

use std::collections::BTreeMap;

use expect_test::{Expect, expect};
use fly_autoscaler::config::{Purpose, Sources, load};

const CANARY: &str = "CANARY-51f0";

/// Loads `env` (and `yaml`, written to a temporary file shown as `FILE`) and checks the rendered outcome: the
/// error with every problem, or the warnings of a valid configuration.
fn check(env: &[(&str, &str)], yaml: Option<&str>, purpose: Purpose, expect: Expect) {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = yaml.map(|text| {
        let path = dir.path().join("fas.yml");
        std::fs::write(&path, text).unwrap();
        path
    });
    let shown = file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let rendered = match load(&Sources { env, file }, purpose) {
        Err(e) => e.to_string(),
        Ok(c) => {
            let mut out = String::from("valid; warnings:");
            for w in &c.warnings {
                out.push_str(&format!("\n  - {w}"));
            }
            out
        }
    };
    let rendered = if shown.is_empty() {
        rendered
    } else {
        rendered.replace(&shown, "FILE")
    };
    assert!(!rendered.contains(CANARY), "a secret is shown: {rendered}");
    expect.assert_eq(&rendered);
}

#[test]
fn every_problem_of_the_environment_at_once() {
    check(
        &[
            ("FAS_API_TOKEN", ""),
            ("FAS_ORG", "my-org"),
            ("FAS_CONCURRENCY", "many"),
            ("FAS_INTERVAL", "soon"),
            ("FAS_TIMEOUT", "0s"),
            ("FAS_APP_LIST_REFRESH_INTERVAL", "-1m"),
            ("FAS_SCALE_DOWN_WINDOW", "5"),
            ("FAS_SCALE_UP_MAX_STEP", "0"),
            ("FAS_SCALE_DOWN_MAX_STEP", "150%"),
            ("FAS_SCALE_DOWN_COOLDOWN", "-30s"),
            ("FAS_VERBOSE", "maybe"),
            ("FAS_LOG_FORMAT", "xml"),
            ("FAS_METRICS_ADDRESS", "9090"),
            ("FLY_FLAPS_BASE_URL", "api.machines.dev"),
            ("FLY_API_BASE_URL", "ftp://x"),
            ("FAS_INITIAL_MACHINE_STATE", "running"),
            ("FAS_SCALE_DOWN", "destroy"),
            ("FAS_MAX_CREATES_PER_TICK", "-1"),
            ("FAS_MAX_STOPS_PER_TICK", "lots"),
            ("FAS_ACTION_CONCURRENCY", "0"),
            ("FAS_POSTGRES_HEARTBEAT", "500ms"),
            ("FAS_POSTGRES_QUERY_TIMEOUT", "0s"),
            ("FAS_POSTGRES_SLACK", "-1"),
            ("FAS_CREATED_MACHINE_COUNT", "1"),
            ("FAS_MIN_CREATED_MACHINE_COUNT", "1"),
            ("FAS_MIN_STARTED_MACHINE_COUNT", "ceil(queu_depth / 10)"),
            ("FAS_PROMETHEUS_ADDRESS", "http://prom:9090"),
            ("FAS_PROMETHEUS_TOKEN", CANARY),
            ("FAS_PROMETHEUS_MULTIPLE_SERIES", "last"),
            ("FAS_PROMETHEUS_GROUP_BY", "app-name"),
            ("FAS_PROMETHEUS_TIMEOUT", "1m"),
            ("FAS_PROMETHEUS_ON_ERROR", "value"),
            ("FAS_PROMETHEUS_FAILURE_THRESHOLD", "0"),
            ("FAS_TEMPORAL_ADDRESS", "temporal:7233"),
            ("FAS_TEMPORAL_METRIC_NAME", "running"),
            ("FAS_TEMPORAL_CERT_DATA", "CERT"),
            ("FAS_STARTED_MACHINES_COUNT", "3"),
        ],
        None,
        Purpose::Serve,
        expect![[r#"
            invalid configuration:
              - app name required: set app-name or FAS_APP_NAME
              - api token required: set api-token or FAS_API_TOKEN
              - FAS_CONCURRENCY: invalid integer "many": expected a whole number of 1 or more
              - FAS_INTERVAL: invalid duration "soon": expected a number (examples: 15s, 1m30s, 500ms)
              - FAS_TIMEOUT: invalid duration "0s": must be greater than zero
              - FAS_APP_LIST_REFRESH_INTERVAL: invalid duration "-1m": negative durations are not allowed (examples: 15s, 1m30s, 500ms)
              - FAS_SCALE_DOWN_WINDOW: invalid duration "5": missing unit (examples: 15s, 1m30s, 500ms)
              - FAS_SCALE_UP_MAX_STEP: invalid step "0": expected a number of machines of 1 or more, a percentage of the current count such as "50%", or "unlimited"
              - FAS_SCALE_DOWN_MAX_STEP: invalid step "150%": a scale-down percentage must be from 1% to 100%
              - FAS_SCALE_DOWN_COOLDOWN: invalid duration "-30s": negative durations are not allowed (examples: 15s, 1m30s, 500ms)
              - FAS_VERBOSE: invalid boolean "maybe": expected true or false
              - FAS_LOG_FORMAT: invalid log format "xml": expected "json" or "text"
              - FAS_METRICS_ADDRESS: invalid address "9090": expected [host]:port such as :9090 or 127.0.0.1:9090
              - FLY_FLAPS_BASE_URL: invalid URL "api.machines.dev": expected http://host[:port] or https://host[:port]
              - FLY_API_BASE_URL: invalid URL "ftp://x": expected http://host[:port] or https://host[:port]
              - FAS_INITIAL_MACHINE_STATE: invalid value "running": initial machine state must be either 'started' or 'stopped'
              - FAS_SCALE_DOWN: invalid scale-down "destroy": expected "stop" or "suspend"
              - FAS_MAX_CREATES_PER_TICK: invalid integer "-1": expected a whole number of 0 or more, or "unlimited"
              - FAS_MAX_STOPS_PER_TICK: invalid integer "lots": expected a whole number of 0 or more, or "unlimited"
              - FAS_ACTION_CONCURRENCY: invalid integer "0": expected a whole number of 1 or more
              - FAS_POSTGRES_HEARTBEAT: invalid duration "500ms": must be from 1s to 1h0m0s
              - FAS_POSTGRES_QUERY_TIMEOUT: invalid duration "0s": must be greater than zero
              - FAS_POSTGRES_SLACK: invalid integer "-1": expected a whole number of 0 or more
              - prometheus collector (FAS_PROMETHEUS_ADDRESS): metric name required: set FAS_PROMETHEUS_METRIC_NAME
              - FAS_PROMETHEUS_TIMEOUT: invalid collector timeout "1m": must not exceed the app timeout 30s
              - FAS_PROMETHEUS_FAILURE_THRESHOLD: invalid integer "0": expected a whole number of 1 or more
              - prometheus collector (FAS_PROMETHEUS_ADDRESS): on-error value required: set FAS_PROMETHEUS_ON_ERROR_VALUE to the number used after 3 consecutive failures (e.g. a safe high value)
              - prometheus collector (FAS_PROMETHEUS_ADDRESS): prometheus query required: set FAS_PROMETHEUS_QUERY
              - FAS_PROMETHEUS_MULTIPLE_SERIES: invalid value "last": expected "first", "error" or "sum"
              - FAS_PROMETHEUS_GROUP_BY: invalid group-by label "app-name": must be a prometheus label name (letters, digits and '_', not starting with a digit), e.g. app
              - temporal collector (FAS_TEMPORAL_ADDRESS): TLS needs both a certificate and a key: set TEMPORAL_TLS_CERT_DATA or FAS_TEMPORAL_CERT_DATA and TEMPORAL_TLS_KEY_DATA or FAS_TEMPORAL_KEY_DATA together
              - cannot define created machine count and min/max created machine count: FAS_CREATED_MACHINE_COUNT is set together with FAS_MIN_CREATED_MACHINE_COUNT
              - max started machine count required if min started machine count is defined: FAS_MIN_STARTED_MACHINE_COUNT is set, set max-started-machine-count or FAS_MAX_STARTED_MACHINE_COUNT too
            warnings:
              - FAS_STARTED_MACHINES_COUNT: not a fly-autoscaler setting (ignored): did you mean FAS_STARTED_MACHINE_COUNT?"#]],
    );
}

#[test]
fn every_problem_of_the_file_at_once() {
    let yaml = format!(
        r#"
app-name: "web-*"
api-token: {CANARY}
interval: 1 minute
scale-up-max-step: half
postgres-heartbeat: 2s
postgres-query-timeout: 2s
started-machine-count: 2
min-started-machine-count: 1
min-created-machine-count: 1
max-created-machine-count: q + missing
metric-collectors:
  - type: prometheus
    metric-name: queue-depth
    token: {CANARY}
  - type: graphite
    metric-name: q
  - metric-name: q
  - type: temporal
    metric-name: t
    address: t:7233
    key-data: {CANARY}
    multiple-series: sum
    group-by: app
    timeout: 0
    max-age: 1m
  - type: prometheus
    metric-name: f
    address: http://p
    query: f
    on-error: never
  - type: prometheus
    metric-name: g
    address: http://p
    query: sum(q{{app="${{APP_NAME}}"}})
    group-by: app
"#
    );
    check(
        &[("FAS_API_TOKEN", CANARY)],
        Some(&yaml),
        Purpose::Serve,
        expect![[r#"
            invalid configuration:
              - organization required if app name uses a wildcard: app name is "web-*", set org or FAS_ORG
              - interval: invalid duration "1 minute": unknown unit " minute" (use ns, us, ms, s, m or h) (examples: 15s, 1m30s, 500ms)
              - scale-up-max-step: invalid step "half": expected a number of machines of 1 or more, a percentage of the current count such as "50%", or "unlimited"
              - postgres-query-timeout: postgres query timeout not under the heartbeat "2s": must be less than postgres-heartbeat or FAS_POSTGRES_HEARTBEAT (2s)
              - metric-collectors[0].metric-name: invalid metric name "queue-depth": must be a variable name (letters, digits and '_', not starting with a digit)
              - metric-collectors[0]: prometheus address required: set metric-collectors[0].address
              - metric-collectors[0]: prometheus query required: set metric-collectors[0].query
              - metric-collectors[1].type: invalid type "graphite": expected prometheus or temporal
              - metric-collectors[2]: duplicate metric name "q": each collector needs its own
              - metric-collectors[2]: type required: set metric-collectors[2].type to prometheus or temporal
              - metric-collectors[3].timeout: invalid duration "0": must be greater than zero
              - metric-collectors[3].max-age: max-age applies to on-error: hold only: set metric-collectors[3].on-error to hold, or remove it
              - metric-collectors[3].multiple-series: multiple-series applies to prometheus collectors only
              - metric-collectors[3].group-by: group-by applies to prometheus collectors only
              - metric-collectors[3]: TLS needs both a certificate and a key: set metric-collectors[3].cert-data and metric-collectors[3].key-data together
              - metric-collectors[4].on-error: invalid on-error "never": expected skip, hold or value
              - metric-collectors[5].query: a query grouped by `app` cannot read ${APP_NAME}: it runs once for every app: drop the app filter and keep the label, e.g. sum by (app) (...), or remove metric-collectors[5].group-by
              - max-created-machine-count: unknown variable `missing` in `q + missing`; known: created, day_of_month, f, g, hour, minute, q, queue-depth, started, stopped, suspended, t, weekday
              - cannot define started machine count and min/max started machine count: started-machine-count is set together with min-started-machine-count"#]],
    );
}

#[test]
fn a_file_that_does_not_parse_is_reported_alone() {
    check(
        &[],
        Some("app-nmae: web\nstarted-machine-count: 1\n"),
        Purpose::Eval,
        expect![[r#"
            invalid configuration:
              - FILE: unknown key `app-nmae` (did you mean `app-name`?); valid keys: app-name, org, regions, process-group, created-machine-count, min-created-machine-count, max-created-machine-count, started-machine-count, min-started-machine-count, max-started-machine-count, initial-machine-state, concurrency, interval, timeout, app-list-refresh-interval, scale-down-window, scale-up-max-step, scale-down-max-step, scale-down-cooldown, timezone, api-token, verbose, log-format, metrics-address, scale-down, max-creates-per-tick, max-destroys-per-tick, max-starts-per-tick, max-stops-per-tick, action-concurrency, flaps-base-url, graphql-base-url, trigger-token, dry-run, trigger-min-gap, postgres-url, postgres-heartbeat, postgres-query-timeout, postgres-slack, metric-collectors"#]],
    );
    check(
        &[],
        Some("app-name: web\nmetric-collectors:\n  - type: prometheus\n    adress: http://p\n"),
        Purpose::Eval,
        expect![[r#"
            invalid configuration:
              - FILE: unknown key `adress` in metric-collectors[0] (did you mean `address`?); valid keys: type, metric-name, address, query, token, namespace, cert-data, key-data, ca-data, multiple-series, group-by, timeout, on-error, on-error-value, max-age, failure-threshold"#]],
    );
    check(
        &[],
        Some("app-name: web\nregions: {iad: 1}\n"),
        Purpose::Eval,
        expect![[r#"
            invalid configuration:
              - FILE: regions: invalid type: found map, expected a list of regions or a comma separated string"#]],
    );
    check(
        &[],
        Some("app-name: [\n"),
        Purpose::Eval,
        expect![[r#"
        invalid configuration:
          - FILE: did not find expected node content at line 2 column 1, while parsing a flow node"#]],
    );
}

#[test]
fn warnings_found_before_a_file_problem_are_kept() {
    check(
        &[("FAS_APP_NAM", "web")],
        Some("app-name: ${NAME}\nbogus: 1\n"),
        Purpose::Eval,
        expect![[r#"
            invalid configuration:
              - FILE: unknown key `bogus`; valid keys: app-name, org, regions, process-group, created-machine-count, min-created-machine-count, max-created-machine-count, started-machine-count, min-started-machine-count, max-started-machine-count, initial-machine-state, concurrency, interval, timeout, app-list-refresh-interval, scale-down-window, scale-up-max-step, scale-down-max-step, scale-down-cooldown, timezone, api-token, verbose, log-format, metrics-address, scale-down, max-creates-per-tick, max-destroys-per-tick, max-starts-per-tick, max-stops-per-tick, action-concurrency, flaps-base-url, graphql-base-url, trigger-token, dry-run, trigger-min-gap, postgres-url, postgres-heartbeat, postgres-query-timeout, postgres-slack, metric-collectors
            warnings:
              - FILE:1: unset variable `NAME`: it expands to the empty string
              - FAS_APP_NAM: not a fly-autoscaler setting (ignored): did you mean FAS_APP_NAME?"#]],
    );
}

#[test]
fn warnings_of_a_valid_configuration() {
    check(
        &[
            ("FAS_APP_NAME", "web"),
            ("FAS_CONCURRENCY", "0"),
            ("FAS_STARTED_MACHINE_COUNT", "q"),
            ("FAS_PROMETHEUS_ADDRESS", "http://prom:9090"),
            ("FAS_PROMETHEUS_METRIC_NAME", "q"),
            (
                "FAS_PROMETHEUS_QUERY",
                r#"sum(q{app="${APP_NAME}", env="${STAGE}"})"#,
            ),
            ("FAS_INTERVALL", "10s"),
        ],
        Some("timeout: ${APP_TIMEOUT}20s\n"),
        Purpose::Eval,
        expect![[r#"
            valid; warnings:
              - FILE:1: unset variable `APP_TIMEOUT`: it expands to the empty string
              - FAS_CONCURRENCY: invalid concurrency "0": must be at least 1; using 1, as the Go version does
              - FAS_PROMETHEUS_QUERY: unset variable `STAGE`: it expands to the empty string
              - FAS_INTERVALL: not a fly-autoscaler setting (ignored): did you mean FAS_INTERVAL?"#]],
    );
}

#[test]
fn a_metric_named_like_a_context_variable_and_an_unknown_time_zone() {
    check(
        &[
            ("FAS_APP_NAME", "web"),
            ("FAS_TIMEZONE", "Europe/Pariss"),
            ("FAS_STARTED_MACHINE_COUNT", "started + 1"),
            ("FAS_PROMETHEUS_ADDRESS", "http://prom:9090"),
            ("FAS_PROMETHEUS_METRIC_NAME", "started"),
            ("FAS_PROMETHEUS_QUERY", "sum(up)"),
        ],
        None,
        Purpose::Eval,
        expect![[r#"
            invalid configuration:
              - FAS_PROMETHEUS_METRIC_NAME: metric name clashes with a context variable of expressions "started": metric `started` would hide the context variable `started`; choose another metric-name (context variables: started, stopped, suspended, created, hour, minute, weekday, day_of_month; see docs/expressions.md)
              - FAS_TIMEZONE: unknown time zone "Europe/Pariss": expected an IANA time zone name such as UTC or Europe/Paris"#]],
    );
}

#[test]
fn an_unknown_variable_lists_the_metrics_and_the_context_variables() {
    check(
        &[
            ("FAS_APP_NAME", "web"),
            (
                "FAS_STARTED_MACHINE_COUNT",
                "if hours > 8 { queue } else { 0 }",
            ),
            ("FAS_PROMETHEUS_ADDRESS", "http://prom:9090"),
            ("FAS_PROMETHEUS_METRIC_NAME", "queue"),
            ("FAS_PROMETHEUS_QUERY", "sum(queue)"),
        ],
        None,
        Purpose::Eval,
        expect![[r#"
            invalid configuration:
              - FAS_STARTED_MACHINE_COUNT: unknown variable `hours` in `if hours > 8 { queue } else { 0 }`; known: created, day_of_month, hour, minute, queue, started, stopped, suspended, weekday"#]],
    );
}

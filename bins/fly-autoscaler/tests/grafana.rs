//! The Grafana dashboard `docs/grafana/fly-autoscaler.json`.
//!
//! - `dashboard_json_is_well_formed` (pure): valid JSON, the `datasource` and `app` template
//!   variables, every panel a `timeseries` or `stat` with the `${datasource}` data source and at
//!   least one PromQL target, unique panel ids and refIds, `$app` only ever matched with `=~`,
//!   every panel classified as main or optional below, every metric it reads documented.
//! - `every_query_parses_and_main_panels_have_data`: the built `fly-autoscaler serve` scales an app
//!   on the simulator (a start that fails, creates, collector failures, destroys and stops) while a
//!   REAL Prometheus scrapes its `/metrics` every second; then every expression of the dashboard,
//!   its Grafana variables substituted, runs as an instant query: each must parse (`success`), each
//!   target of a main panel must return at least one sample, and a few return known values.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fas_flysim::{FaultKind, FaultMatch, MachineSpec, ScriptedFault};
use fas_testkit::{PromServer, free_port};
use serde_json::Value;
use support::{
    FakeProm, Fas, PromAnswer, add_machines, base_env, http_get, live, set, sim, wait_until,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The dashboard, as shipped.
const DASHBOARD: &str = include_str!("../../../docs/grafana/fly-autoscaler.json");
/// The observability guide, whose metric tables name every exported metric.
const OBSERVABILITY: &str = include_str!("../../../docs/observability.md");

/// Panels every target of which must return data once the autoscaler has scaled an app, failed a
/// start and failed a few collections.
const MAIN_PANELS: &[&str] = &[
    "Last successful tick age",
    "Started machines",
    "Skipped ticks",
    "Failed machine calls (all apps)",
    "Started machines vs target",
    "Created machines vs target",
    "Machines by state",
    "Metric values",
    "Reconciliations by decision (all apps)",
    "Ticks by outcome",
    "Machine calls",
    "Failed machine calls",
    "Fly API latency",
    "Fly API calls",
    "Fly API failures",
    "Tick duration",
    "Collector latency",
    "Seconds since last successful tick",
    "Collector failures",
];

/// Panels whose series exist only after rarer events (a fallback, a query returning several
/// series, clones that cannot boot): their queries must parse, data is not required.
const OPTIONAL_PANELS: &[&str] = &[
    "Collector fallbacks",
    "Multiple-series warnings",
    "Creates that all failed",
];

/// Metrics the dashboard reads that the observability guide does not list yet (being added in
/// parallel with the dashboard).
const NOT_YET_DOCUMENTED: &[&str] = &[];

/// The app the live test scales.
const APP: &str = "web";

/// How long the live test waits for Prometheus to see a state.
const PROM_DEADLINE: Duration = Duration::from_secs(25);

// ----- reading the dashboard -------------------------------------------------------------------------------------

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).expect("docs/grafana/fly-autoscaler.json is valid JSON")
}

/// Every panel, the ones nested in rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// One PromQL expression of the dashboard.
#[derive(Debug, Clone)]
struct Query {
    panel: String,
    ref_id: String,
    expr: String,
}

fn queries(dashboard: &Value) -> Vec<Query> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| Query {
                    panel: title.clone(),
                    ref_id: t["refId"].as_str().unwrap_or_default().to_owned(),
                    expr: t["expr"].as_str().unwrap_or_default().to_owned(),
                })
        })
        .collect()
}

/// The expression as Grafana would send it with "All" apps selected and a 15 s step: `$app` is
/// the variable's `allValue` (`.*`), `$__rate_interval` 1m, `$__interval` 15s, `$__range` 1h.
fn substitute(expr: &str) -> String {
    let out = expr
        .replace("${app}", ".*")
        .replace("$app", ".*")
        .replace("$__rate_interval", "1m")
        .replace("${__rate_interval}", "1m")
        .replace("$__interval", "15s")
        .replace("${__interval}", "15s")
        .replace("$__range", "1h")
        .replace("${__range}", "1h");
    assert!(
        !out.contains('$'),
        "an unknown Grafana variable is left in `{out}` (from `{expr}`): teach `substitute` about it"
    );
    out
}

/// The `fas_*` metric names an expression reads (histogram series suffixes removed).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("fas_") {
        let start = i + pos;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            let name = &expr[start..end];
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| b.ends_with("_seconds")))
                .unwrap_or(name);
            names.insert(base.to_owned());
        }
        i = end.max(start + 4);
    }
    names
}

// ----- the pure test -------------------------------------------------------------------------------------------

#[test]
fn dashboard_json_is_well_formed() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "schemaVersion: {}",
        d["schemaVersion"]
    );
    assert_eq!(d["uid"], "fly-autoscaler");
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));

    // Template variables: the Prometheus data source, and the apps from `fas_machines`.
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable `{name}`"))
    };
    let ds = var("datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let app = var("app");
    assert_eq!(app["type"], "query");
    assert_eq!(app["datasource"]["uid"], "${datasource}");
    assert_eq!(app["definition"], "label_values(fas_machines, app)");
    assert_eq!(app["query"]["query"], "label_values(fas_machines, app)");
    assert_eq!(app["includeAll"], true);
    assert_eq!(app["multi"], true);
    assert_eq!(
        app["allValue"], ".*",
        "All must be a regex: the panels match `app=~\"$app\"`"
    );

    let all = panels(&d);
    assert!(all.len() >= 10, "only {} panels", all.len());
    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for panel in &all {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(titles.insert(title), "two panels titled `{title}`");
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("`{title}` has no numeric id"));
        assert!(ids.insert(id), "panel id {id} is used twice (`{title}`)");
        let kind = panel["type"].as_str().unwrap_or_default();
        assert!(
            kind == "timeseries" || kind == "stat",
            "`{title}`: panel type `{kind}`"
        );
        assert_eq!(
            panel["datasource"],
            serde_json::json!({"type": "prometheus", "uid": "${datasource}"}),
            "`{title}`: data source"
        );
        let grid = &panel["gridPos"];
        let (x, w, h) = (grid["x"].as_u64(), grid["w"].as_u64(), grid["h"].as_u64());
        assert!(
            matches!((x, w, h), (Some(x), Some(w), Some(h)) if w > 0 && h > 0 && x + w <= 24)
                && grid["y"].is_u64(),
            "`{title}`: gridPos {grid}"
        );
        assert!(
            panel["description"].as_str().is_some_and(|s| !s.is_empty()),
            "`{title}` has no description"
        );
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert!(!targets.is_empty(), "`{title}` has no target");
        let mut refs = BTreeSet::new();
        for t in targets {
            let ref_id = t["refId"].as_str().unwrap_or_default();
            assert!(
                !ref_id.is_empty() && refs.insert(ref_id),
                "`{title}`: refId `{ref_id}`"
            );
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "`{title}` {ref_id}: empty expr");
            if !t["datasource"].is_null() {
                assert_eq!(t["datasource"], panel["datasource"], "`{title}` {ref_id}");
            }
        }
        assert!(
            MAIN_PANELS.contains(&title) ^ OPTIONAL_PANELS.contains(&title),
            "`{title}` must be in exactly one of MAIN_PANELS and OPTIONAL_PANELS"
        );
    }
    for title in MAIN_PANELS.iter().chain(OPTIONAL_PANELS) {
        assert!(titles.contains(title), "no panel titled `{title}`");
    }

    let documented: String = OBSERVABILITY
        .lines()
        .filter(|l| l.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut read = BTreeSet::new();
    for q in queries(&d) {
        // `$app` is multi-valued: Grafana gives a regex (`a|b`, `.*` for All), so only `=~` works.
        let uses = q.expr.matches("$app").count();
        let regex_uses = q.expr.matches("app=~\"$app\"").count();
        assert_eq!(
            uses, regex_uses,
            "`{}` {}: `$app` outside `app=~\"$app\"`: {}",
            q.panel, q.ref_id, q.expr
        );
        let _ = substitute(&q.expr);
        let names = metric_names(&q.expr);
        assert!(
            !names.is_empty(),
            "`{}` {} reads no fas_ metric: {}",
            q.panel,
            q.ref_id,
            q.expr
        );
        read.extend(names);
    }
    for name in &read {
        assert!(
            documented.contains(&format!("`{name}`"))
                || NOT_YET_DOCUMENTED.contains(&name.as_str()),
            "the dashboard reads `{name}`, which no metrics table of docs/observability.md lists"
        );
    }
    // The list: targets, actions, failures, API latency, collectors, last tick age.
    for name in [
        "fas_target_machine_count",
        "fas_machines",
        "fas_reconcile_count",
        "fas_machine_start_count",
        "fas_machine_stop_count",
        "fas_machine_create_count",
        "fas_machine_destroy_count",
        "fas_api_call_duration_seconds",
        "fas_api_call_failures_total",
        "fas_collect_failures_total",
        "fas_collect_fallback_total",
        "fas_collect_multiple_series_total",
        "fas_last_successful_reconcile_timestamp_seconds",
        "fas_creates_all_failed_total",
    ] {
        assert!(read.contains(name), "no panel reads `{name}`");
    }
}

#[test]
fn metric_names_are_extracted() {
    let names = metric_names(
        "histogram_quantile(0.5, sum by (op, le) (rate(fas_api_call_duration_seconds_bucket[1m]))) + fas_machine_start_count + my_fas_x",
    );
    let want: BTreeSet<String> = ["fas_api_call_duration_seconds", "fas_machine_start_count"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(names, want);
    assert_eq!(
        substitute("increase(x{app=~\"$app\"}[$__rate_interval]) / $__range"),
        "increase(x{app=~\".*\"}[1m]) / 1h"
    );
}

// ----- the Prometheus HTTP API ---------------------------------------------------------------------------------

/// `GET {base}{path_and_query}` as HTTP/1.0 (no chunked body): status and body.
async fn get(base: &str, path_and_query: &str) -> (u16, String) {
    let host = base.strip_prefix("http://").expect("an http:// url");
    let call = async {
        let mut stream = tokio::net::TcpStream::connect(host)
            .await
            .expect("connect to prometheus");
        let request = format!("GET {path_and_query} HTTP/1.0\r\nHost: {host}\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read the answer");
        String::from_utf8_lossy(&raw).into_owned()
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("prometheus answered within 10 s");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {raw}"));
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The answer of an instant query: HTTP status and the JSON body.
async fn instant(prom: &PromServer, query: &str) -> (u16, Value) {
    let (status, body) = get(
        &prom.url(),
        &format!("/api/v1/query?query={}", encode(query)),
    )
    .await;
    let json =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("`{query}`: not JSON ({e}): {body}"));
    (status, json)
}

/// One sample of a query's answer: its labels (without `__name__`) and value.
type Sample = (BTreeMap<String, String>, f64);

/// The samples of a successful vector (or scalar) answer.
fn samples(answer: &Value) -> Vec<Sample> {
    match answer["data"]["resultType"].as_str() {
        Some("vector") => answer["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| *k != "__name__")
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect(),
        Some("scalar") => {
            let value = answer["data"]["result"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            vec![(BTreeMap::new(), value)]
        }
        _ => Vec::new(),
    }
}

/// Polls `query` until `ok` holds for its samples (bounded by [`PROM_DEADLINE`]).
async fn wait_prom(prom: &PromServer, fas: &mut Fas, query: &str, ok: impl Fn(&[Sample]) -> bool) {
    let start = Instant::now();
    loop {
        let (_, answer) = instant(prom, query).await;
        if ok(&samples(&answer)) {
            return;
        }
        fas.assert_running();
        assert!(
            start.elapsed() < PROM_DEADLINE,
            "prometheus did not show the expected `{query}` within {PROM_DEADLINE:?}; last answer: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The single value of `query`'s answer, or the value of the sample whose labels include `with`.
fn value_with(samples: &[Sample], with: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(labels, _)| {
            with.iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
}

// ----- the live test -------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_parses_and_main_panels_have_data() {
    let d = dashboard();
    let all = queries(&d);

    // The autoscaler: created = ceil(q / 10) + 1, started = ceil(q / 10), clones created stopped.
    let sim = sim().await;
    add_machines(&sim, APP, 2, &MachineSpec::new().state("stopped"));
    let fake = FakeProm::start(PromAnswer::Value(5.0)).await;
    let port = free_port();
    let prom = PromServer::start(&[SocketAddr::from(([127, 0, 0, 1], port))]).await;
    let mut env = base_env(&sim, &fake.url(), APP, port);
    set(
        &mut env,
        "FAS_CREATED_MACHINE_COUNT",
        "ceil(queue_depth / 10) + 1",
    );
    set(&mut env, "FAS_INITIAL_MACHINE_STATE", "stopped");
    let mut fas = Fas::spawn(&["serve"], &env);

    // Steady at 1 started of 2 until Prometheus has scraped the autoscaler (~6 s after its start),
    // so the counters' later increases fall inside the queries' windows.
    wait_until(&mut fas, "1 started", || {
        sim.count_in_state(APP, "started") == 1
    })
    .await;
    wait_prom(
        &prom,
        &mut fas,
        &format!("fas_machines{{app=\"{APP}\",state=\"started\"}}"),
        |s| s.iter().any(|(_, v)| *v == 1.0),
    )
    .await;

    // Up: 2 clones, then starts, the first of which fails (once) and is retried.
    sim.push_fault(ScriptedFault {
        matches: FaultMatch {
            route: Some("start".into()),
            method: None,
        },
        fault: FaultKind::Status { status: 500 },
    });
    fake.set(PromAnswer::Value(25.0));
    wait_until(&mut fas, "3 started of 4", || {
        sim.count_in_state(APP, "started") == 3 && live(&sim, APP) == 4
    })
    .await;

    // The collector fails (each failure skips the app's tick) until Prometheus has scraped the
    // failure counter twice: the counter appears with the first failure, and `increase` only sees
    // what a series gained between two samples.
    fake.set(PromAnswer::Status(500));
    wait_prom(
        &prom,
        &mut fas,
        &format!("increase(fas_collect_failures_total{{app=\"{APP}\"}}[1m]) > 0"),
        |s| !s.is_empty(),
    )
    .await;

    // Down: 2 destroyed, 1 stopped.
    fake.set(PromAnswer::Value(5.0));
    wait_until(&mut fas, "1 started of 2", || {
        sim.count_in_state(APP, "started") == 1 && live(&sim, APP) == 2
    })
    .await;
    fas.wait_ticks(2).await;

    // Prometheus has scraped the end state.
    wait_prom(
        &prom,
        &mut fas,
        &format!("sum(fas_machine_destroy_count{{app=\"{APP}\",status=\"ok\"}}) >= 2 and sum(fas_machines{{app=\"{APP}\",state=\"started\"}}) == 1"),
        |s| !s.is_empty(),
    )
    .await;

    // The harness tells a parse error from a result.
    let (status, broken) = instant(&prom, "sum(fas_machines").await;
    assert_eq!(
        (status, &broken["status"]),
        (400, &Value::from("error")),
        "{broken}"
    );

    // The `app` variable: label_values(fas_machines, app).
    let app_var = d["templating"]["list"]
        .as_array()
        .and_then(|l| l.iter().find(|v| v["name"] == "app"))
        .expect("the app variable");
    let definition = app_var["definition"].as_str().unwrap_or_default();
    let (metric, label) = definition
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .and_then(|s| s.split_once(','))
        .map(|(m, l)| (m.trim(), l.trim()))
        .unwrap_or_else(|| panic!("not label_values(metric, label): {definition}"));
    let (status, body) = get(
        &prom.url(),
        &format!("/api/v1/label/{label}/values?match[]={}", encode(metric)),
    )
    .await;
    let values: Value = serde_json::from_str(&body).expect("label values JSON");
    assert_eq!(status, 200, "{body}");
    assert_eq!(values["data"], serde_json::json!([APP]), "{body}");

    // Every expression parses; every target of a main panel has data.
    let mut answers: BTreeMap<(String, String), Vec<Sample>> = BTreeMap::new();
    let mut failures = Vec::new();
    for q in &all {
        let promql = substitute(&q.expr);
        let (status, answer) = instant(&prom, &promql).await;
        if status != 200 || answer["status"] != "success" {
            failures.push(format!(
                "`{}` {}: does not run ({status}): {promql}\n  {answer}",
                q.panel, q.ref_id
            ));
            continue;
        }
        let got = samples(&answer);
        if MAIN_PANELS.contains(&q.panel.as_str()) && got.is_empty() {
            failures.push(format!("`{}` {}: no data: {promql}", q.panel, q.ref_id));
        }
        answers.insert((q.panel.clone(), q.ref_id.clone()), got);
    }
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries failed:\n{}\n--- autoscaler /metrics ---\n{}",
        failures.len(),
        all.len(),
        failures.join("\n"),
        http_get(port, "/metrics")
            .map(|(_, t)| t)
            .unwrap_or_default()
    );
    assert!(answers.len() >= 30, "only {} queries", answers.len());

    // The main panels show what happened.
    let get_answer = |panel: &str, ref_id: &str| -> &[Sample] {
        answers
            .get(&(panel.to_owned(), ref_id.to_owned()))
            .unwrap_or_else(|| panic!("no target {ref_id} in `{panel}`"))
    };
    let val = |panel: &str, ref_id: &str, with: &[(&str, &str)]| -> f64 {
        let got = get_answer(panel, ref_id);
        value_with(got, with)
            .unwrap_or_else(|| panic!("`{panel}` {ref_id}: no sample with {with:?}: {got:?}"))
    };
    let app = ("app", APP);
    assert_eq!(val("Started machines", "A", &[app]), 1.0);
    assert_eq!(val("Started machines vs target", "A", &[app]), 1.0);
    assert_eq!(
        val("Started machines vs target", "B", &[app, ("bound", "min")]),
        1.0
    );
    assert_eq!(
        val("Started machines vs target", "B", &[app, ("bound", "max")]),
        1.0
    );
    assert_eq!(val("Created machines vs target", "A", &[app]), 2.0);
    assert_eq!(
        val("Created machines vs target", "B", &[app, ("bound", "max")]),
        2.0
    );
    assert_eq!(
        val("Machines by state", "A", &[app, ("state", "stopped")]),
        1.0
    );
    assert_eq!(
        val("Metric values", "A", &[app, ("metric", "queue_depth")]),
        5.0
    );
    assert!(val("Collector failures", "A", &[app, ("metric", "queue_depth")]) > 0.0);
    assert!(val("Skipped ticks", "A", &[app]) > 0.0);
    assert!(val("Ticks by outcome", "A", &[app, ("status", "skipped_error")]) > 0.0);
    // The failed start is there; its increase may be 0: `fas_api_call_failures_total{op}` starts
    // at the first failure, and Prometheus' `increase` does not count a series' first sample.
    let start_failures = val("Fly API failures", "A", &[("op", "start")]);
    assert!(start_failures.is_finite(), "{start_failures}");
    assert!(val("Failed machine calls", "A", &[("status", "failed")]) > 0.0);
    assert!(val("Failed machine calls (all apps)", "A", &[]) > 0.0);
    assert!(
        val("Machine calls", "C", &[app, ("status", "ok")]) > 0.0,
        "creates"
    );
    assert!(
        val("Machine calls", "D", &[app, ("status", "ok")]) > 0.0,
        "destroys"
    );
    // Every decision taken has its series (a decision's first occurrence creates it, so only the
    // steady `no_scale` is sure to have grown between two samples).
    let decisions = "Reconciliations by decision (all apps)";
    assert!(val(decisions, "A", &[("status", "no_scale")]) > 0.0);
    for status in ["create", "start", "destroy", "stop"] {
        assert!(
            val(decisions, "A", &[("status", status)]).is_finite(),
            "{status}"
        );
    }
    let p95 = val("Fly API latency", "B", &[("op", "list")]);
    assert!(p95 > 0.0 && p95 < 30.0, "p95 of list: {p95}");
    assert!(val("Fly API calls", "A", &[("op", "list")]) > 0.0);
    for panel in [
        "Last successful tick age",
        "Seconds since last successful tick",
    ] {
        let age = val(panel, "A", &[app]);
        assert!((0.0..15.0).contains(&age), "`{panel}`: {age}");
    }
    fas.stop().await;
}

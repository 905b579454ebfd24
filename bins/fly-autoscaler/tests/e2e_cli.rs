//! End-to-end tests of the commands, exit codes, signals, `/metrics`, logs and secrets: the built binary as a
//! child process with a cleared environment, against the in-process Fly API simulator and a fake Prometheus.

mod support;

use fas_flysim::{MachineSpec, SimConfig};
use fas_testkit::free_port;
use serde_json::{Value, json};
use support::{
    FakeProm, Fas, PromAnswer, add_machines, base_env, env, http_get, mutations, parse_metrics,
    run, sample, set, sim, sim_with, wait_until,
};

fn stopped() -> MachineSpec {
    MachineSpec::new().state("stopped")
}

/// Several configuration problems: exit 1, `ERROR:` first, every problem listed; nothing is started.
#[test]
fn bad_config_lists_every_problem() {
    let (code, out, err) = run(
        &["serve"],
        &env(&[
            ("FAS_INTERVAL", "soon"),
            ("FAS_INITIAL_MACHINE_STATE", "running"),
            ("FAS_CONCURRENCY", "many"),
            ("FAS_MIN_STARTED_MACHINE_COUNT", "1"),
        ]),
    );
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.starts_with("ERROR:"), "{err}");
    assert!(out.is_empty(), "{out}");
    for needle in [
        "app name required",
        "FAS_INTERVAL",
        "\"soon\"",
        "initial machine state must be either 'started' or 'stopped'",
        "\"running\"",
        "FAS_CONCURRENCY",
        "\"many\"",
        "max started machine count required",
        "api token required",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    // One problem per line after the header.
    assert!(err.lines().count() >= 7, "{err}");

    // Without counts at all: the "either created or started" rule.
    let (code, _, err) = run(&["eval"], &env(&[("FAS_APP_NAME", "web")]));
    assert_eq!(code, Some(1));
    assert!(err.starts_with("ERROR:"), "{err}");
    assert!(
        err.contains("must define either created machine count or started machine count"),
        "{err}"
    );

    // An unknown YAML key is an error naming it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fas.yml");
    std::fs::write(
        &path,
        "app-name: web\nstarted-machine-count: 1\nstarted-machine-cuont: 2\n",
    )
    .unwrap();
    let (code, _, err) = run(&["eval", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("ERROR:") && err.contains("started-machine-cuont"),
        "{err}"
    );

    // A missing config file is an error naming it.
    let (code, _, err) = run(&["serve", "--config", "/nonexistent/fas.yml"], &[]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("ERROR:") && err.contains("/nonexistent/fas.yml"),
        "{err}"
    );
}

/// No command: usage on stderr, exit 2. Unknown command: `ERROR:`, exit 1.
#[test]
fn no_command_and_unknown_command() {
    let (code, out, err) = run(&[], &[]);
    assert_eq!(code, Some(2), "out: {out} err: {err}");
    assert!(err.to_lowercase().contains("usage"), "{err}");

    let (code, _, err) = run(&["frobnicate"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("ERROR:"), "{err}");
    assert!(err.contains("frobnicate"), "{err}");
}

/// `version` prints the version; `--help`, `-h` and `help` list the commands.
#[test]
fn version_and_help() {
    let (code, out, _) = run(&["version"], &[]);
    assert_eq!(code, Some(0));
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    assert!(out.starts_with("fly-autoscaler"), "{out}");

    for flag in ["--help", "-h", "help"] {
        let (code, out, err) = run(&[flag], &[]);
        assert!(matches!(code, Some(0 | 2)), "{flag}: {code:?}");
        let text = format!("{out}{err}");
        for cmd in ["serve", "eval", "version"] {
            assert!(text.contains(cmd), "{flag} does not list {cmd}: {text}");
        }
    }
}

/// `eval` prints the contract JSON and makes no Machines API call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_prints_targets_and_touches_nothing() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(45.0)).await;
    let mut env = base_env(&sim, &prom.url(), "web", free_port());
    env.retain(|(k, _)| k != "FAS_API_TOKEN");
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&["eval"], &env))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let got: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        got,
        json!({"created": {"min": null, "max": null}, "started": {"min": 5, "max": 5}})
    );
    assert!(sim.request_log().is_empty(), "{:?}", sim.request_log());
    assert_eq!(prom.queries(), ["sum(queue_depth{app=\"web\"})"]);

    // Separate bounds and a created count.
    let mut env = base_env(&sim, &prom.url(), "web", free_port());
    env.retain(|(k, _)| k != "FAS_STARTED_MACHINE_COUNT");
    set(&mut env, "FAS_MIN_CREATED_MACHINE_COUNT", "1");
    set(&mut env, "FAS_MAX_CREATED_MACHINE_COUNT", "queue_depth / 2");
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&["eval"], &env))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        got,
        json!({"created": {"min": 1, "max": 23}, "started": {"min": null, "max": null}}),
        "22.5 rounds half away from zero"
    );
    assert!(sim.request_log().is_empty());
}

async fn exits_cleanly_on(signal: &str) {
    let sim = sim().await;
    add_machines(&sim, "web", 2, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(10.0)).await;
    let env = base_env(&sim, &prom.url(), "web", free_port());
    let mut fas = Fas::spawn(&["serve"], &env);
    fas.wait_for_lines("reconcile", 2).await;
    fas.signal(signal);
    let status = fas.wait_exit(std::time::Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "{}", fas.stderr());
    assert!(
        !fas.lines_with_message("stopped").is_empty(),
        "{}",
        fas.stderr()
    );
    assert!(
        !fas.lines_with_message("reconciliation loop stopped")
            .is_empty()
    );
}

/// SIGTERM: exit code 0 within a few seconds, the log says it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero() {
    exits_cleanly_on("TERM").await;
}

/// SIGINT: the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_zero() {
    exits_cleanly_on("INT").await;
}

/// `/metrics` after scaling up and down: the Go names and the per-app ones; `/healthz` answers 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let port = free_port();
    let env = base_env(&sim, &prom.url(), "web", port);
    let mut fas = Fas::spawn(&["serve"], &env);

    wait_until(&mut fas, "2 started", || {
        sim.count_in_state("web", "started") == 2
    })
    .await;
    fas.wait_ticks(2).await;
    prom.set(PromAnswer::Value(0.0));
    wait_until(&mut fas, "0 started", || {
        sim.count_in_state("web", "started") == 0
    })
    .await;
    fas.wait_ticks(2).await;

    let (status, body) = http_get(port, "/healthz").expect("GET /healthz");
    assert_eq!(status, 200);
    let (status, text) = http_get(port, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let s = parse_metrics(&text);
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&s, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{text}"))
    };
    let _ = body;
    assert_eq!(get("fas_reconcile_count", &[("status", "start")]), 1.0);
    assert_eq!(get("fas_reconcile_count", &[("status", "stop")]), 1.0);
    assert!(get("fas_reconcile_count", &[("status", "no_scale")]) >= 3.0);
    // Exported at 0 from the start, so that `increase()` sees the first create or destroy.
    assert_eq!(get("fas_reconcile_count", &[("status", "create")]), 0.0);
    assert_eq!(get("fas_reconcile_count", &[("status", "destroy")]), 0.0);
    assert_eq!(get("fas_machine_start_count", &[("status", "ok")]), 2.0);
    assert_eq!(get("fas_machine_stop_count", &[("status", "ok")]), 2.0);
    assert!(sample(&s, "fas_machine_start_count", &[("status", "failed")]).unwrap_or(0.0) == 0.0);
    assert_eq!(
        get("fas_machines", &[("app", "web"), ("state", "stopped")]),
        3.0
    );
    // No machine is started any more: the gauge of that state must not keep its old value (2).
    let started_gauge = sample(&s, "fas_machines", &[("app", "web"), ("state", "started")]);
    assert!(
        started_gauge.is_none_or(|v| v == 0.0),
        "stale fas_machines{{state=\"started\"}} = {started_gauge:?} with 0 started machines"
    );
    for bound in ["min", "max"] {
        assert_eq!(
            get(
                "fas_target_machine_count",
                &[("app", "web"), ("count", "started"), ("bound", bound)]
            ),
            0.0
        );
    }
    assert_eq!(
        get(
            "fas_metric_value",
            &[("app", "web"), ("metric", "queue_depth")]
        ),
        0.0
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = get(
        "fas_last_successful_reconcile_timestamp_seconds",
        &[("app", "web")],
    );
    assert!((now - last).abs() < 60.0, "last success {last}, now {now}");
    assert!(
        get(
            "fas_app_reconcile_count",
            &[("app", "web"), ("status", "no_scale")]
        ) >= 3.0
    );
    assert!(
        text.contains("fas_reconcile_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("fas_api_call_duration_seconds"), "{text}");
    assert_eq!(http_get(port, "/nope").unwrap().0, 404);
    fas.stop().await;
}

/// stderr is JSON lines without a timestamp; one `reconcile` line per tick with counts, targets and actions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_with_one_reconcile_line_per_tick() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let mut env = base_env(&sim, &prom.url(), "web", free_port());
    set(&mut env, "FAS_STARTED_MACHINES_COUNT", "99");
    let mut fas = Fas::spawn(&["serve"], &env);
    wait_until(&mut fas, "2 started", || {
        sim.count_in_state("web", "started") == 2
    })
    .await;
    fas.wait_ticks(3).await;
    fas.stop().await;

    let lines = fas.json_lines();
    assert!(!lines.is_empty());
    for l in &lines {
        let obj = l
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {l}"));
        for key in ["timestamp", "time", "ts"] {
            assert!(!obj.contains_key(key), "line has `{key}`: {l}");
        }
        assert!(
            obj.contains_key("level") && obj.contains_key("message"),
            "{l}"
        );
    }
    let typo: Vec<_> = lines
        .iter()
        .filter(|l| l["level"] == "WARN" && l.to_string().contains("FAS_STARTED_MACHINES_COUNT"))
        .collect();
    assert_eq!(
        typo.len(),
        1,
        "an unknown FAS_* variable is warned about once"
    );
    let reconcile = fas.lines_with_message("reconcile");
    assert_eq!(
        reconcile.len(),
        sim.count_route("list"),
        "one reconcile line per tick (one machine list per tick)"
    );
    let first = &reconcile[0];
    assert_eq!(first["app"], "web", "{first}");
    assert_eq!(first["started"], 0, "{first}");
    assert_eq!(first["decision"], "start", "{first}");
    let parse = |v: &Value| -> Value {
        match v {
            Value::String(s) => serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}")),
            other => other.clone(),
        }
    };
    let counts = parse(&first["counts"]);
    assert_eq!(counts["started"], 0, "{counts}");
    let targets = parse(&first["targets"]).to_string();
    assert!(
        targets.contains('2'),
        "targets name the target 2: {targets}"
    );
    let actions = parse(&first["actions"]);
    assert_eq!(
        actions.as_array().map(Vec::len),
        Some(2),
        "two planned starts: {actions}"
    );
    assert!(
        actions.to_string().to_lowercase().contains("start"),
        "{actions}"
    );
    assert_eq!(parse(&first["metrics"])["queue_depth"], 20.0, "{first}");
    let last = reconcile.last().unwrap();
    assert_eq!(last["started"], 2, "{last}");
    assert_eq!(last["decision"], "no_scale", "{last}");
    assert_eq!(parse(&last["actions"]), json!([]), "{last}");
}

const API_CANARY: &str = "fm2_CANARY_api_9f3c1e7a5b";
const PROM_CANARY: &str = "CANARY_prom_4d2b8e6f01";

fn assert_no_canary(what: &str, text: &str) {
    for canary in [API_CANARY, PROM_CANARY, "9f3c1e7a5b", "4d2b8e6f01"] {
        assert!(
            !text.contains(canary),
            "{what} contains a token ({canary}):\n{text}"
        );
    }
}

/// Canary tokens never appear in stderr, stdout or `/metrics`, with verbose logging and in a config error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_leak() {
    let sim = sim_with(SimConfig {
        token: API_CANARY.to_owned(),
        ..SimConfig::instant()
    })
    .await;
    add_machines(&sim, "web", 3, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let port = free_port();
    let mut env = base_env(&sim, &prom.url(), "web", port);
    set(&mut env, "FAS_PROMETHEUS_TOKEN", PROM_CANARY);
    set(&mut env, "FAS_VERBOSE", "true");
    let mut fas = Fas::spawn(&["serve"], &env);
    // The tokens work: the simulator accepted the API token, the fake Prometheus got the bearer token.
    wait_until(&mut fas, "2 started", || {
        sim.count_in_state("web", "started") == 2
    })
    .await;
    fas.wait_ticks(2).await;
    assert!(
        prom.auth_headers()
            .iter()
            .all(|h| h.as_deref() == Some(&format!("Bearer {PROM_CANARY}")))
    );
    assert!(
        fas.json_lines().iter().any(|l| l["level"] == "DEBUG"),
        "verbose logs debug lines"
    );
    let (_, metrics) = http_get(port, "/metrics").unwrap();
    fas.stop().await;
    assert_no_canary("stderr (verbose)", &fas.stderr());
    assert_no_canary("stdout", &fas.stdout());
    assert_no_canary("/metrics", &metrics);

    // A bad configuration with both tokens set, and the tokens in the wrong places.
    let mut bad = env.clone();
    set(&mut bad, "FAS_INTERVAL", "bogus");
    set(&mut bad, "FAS_APP_NAME", "");
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&["serve"], &bad))
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert!(err.starts_with("ERROR:"), "{err}");
    assert_no_canary("config error", &format!("{out}{err}"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fas.yml");
    std::fs::write(
        &path,
        format!(
            "app-name: web\napi-token: {API_CANARY}\nstarted-machine-count: nope(\nbogus-key: 1\n\
             metric-collectors:\n  - type: prometheus\n    metric-name: queue_depth\n    token: {PROM_CANARY}\n"
        ),
    )
    .unwrap();
    let file_env = env.clone();
    let p = path.to_str().unwrap().to_owned();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run(&["serve", "--config", &p], &file_env))
            .await
            .unwrap();
    assert_eq!(code, Some(1));
    assert!(err.starts_with("ERROR:"), "{err}");
    assert_no_canary("file config error", &format!("{out}{err}"));
}

/// The README's first command: `demo` runs the real loop against the simulator, scales up as the
/// synthetic load rises, stays within Fly's rate budget and ends by itself.
#[test]
fn demo_scales_and_ends_by_itself() {
    let (code, out, err) = run(&["demo", "--duration", "8s"], &[]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("demo: done"), "{out}");
    assert!(out.contains(" 0 rate-limited"), "{out}");
    let peak: usize = out
        .rsplit("peak started machines ")
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {out}"));
    assert!(
        peak >= 3,
        "the rising load should have started several machines: {out}"
    );
    assert!(
        out.matches("queue_depth").count() >= 6,
        "one line a second: {out}"
    );
}

/// `plan` lists the machines and prints what `serve` would do, as a table or JSON, without acting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_the_decision_and_changes_nothing() {
    let sim = sim().await;
    let ids = add_machines(&sim, "web", 4, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(25.0)).await;
    let env = base_env(&sim, &prom.url(), "web", free_port());
    let env2 = env.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&["plan"], &env))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("app web"), "{out}");
    let mut sorted = ids.clone();
    sorted.sort();
    for id in &sorted[..3] {
        assert!(
            out.contains(id.as_str()),
            "start of {id} missing from the table: {out}"
        );
    }
    let actions = out
        .split("actions:")
        .nth(1)
        .and_then(|rest| rest.split("spares:").next())
        .unwrap_or_default();
    assert!(
        !actions.contains(sorted[3].as_str()),
        "only 3 starts (the 4th machine is a spare): {out}"
    );

    let (code, out, err) = tokio::task::spawn_blocking(move || run(&["plan", "--json"], &env2))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(plan["kind"], "start", "{plan}");
    assert_eq!(plan["actions"].as_array().map(Vec::len), Some(3), "{plan}");
    assert!(
        mutations(&sim).is_empty(),
        "plan must not act: {:?}",
        mutations(&sim)
    );
    assert_eq!(sim.count_in_state("web", "stopped"), 4);
}

/// A signal while a tick is still reading (a slow Fly API) abandons the reading at once: nothing
/// was changed yet, so there is nothing to drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_reading_exits_at_once() {
    let sim = sim().await;
    add_machines(&sim, "web", 2, &stopped());
    let prom = FakeProm::start(PromAnswer::Value(10.0)).await;
    let env = base_env(&sim, &prom.url(), "web", free_port());
    let mut fas = Fas::spawn(&["serve"], &env);
    fas.wait_for_lines("reconcile", 1).await;
    // Every request now takes 8 s: the next tick hangs in its release check.
    sim.configure(|c| c.faults.latency_ms = 8_000);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    fas.signal("TERM");
    // The wait is shorter than the 8 s the reading would take: only abandoning it can pass.
    let status = fas.wait_exit(std::time::Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "{}", fas.stderr());
    assert!(
        fas.stderr().contains("shutting down before acting"),
        "{}",
        fas.stderr()
    );
}

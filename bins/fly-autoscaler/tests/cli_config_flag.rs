//! The Go command line: `-config PATH` with one dash (Go's `flag` package takes one or two) for `serve`, `eval`
//! and `plan`, and `eval`'s output (created bounds at least 1, as Go prints them). The built binary runs with a
//! cleared environment and a configuration without collectors, so nothing touches the network.

use std::process::Command;

use fas_reconcile::{Bounds, Targets};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_fly-autoscaler");

/// Runs the binary with `args` and only `env`: (exit code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn eval_takes_the_config_flag_with_one_or_two_dashes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fas.yml");
    std::fs::write(
        &path,
        "app-name: web\ncreated-machine-count: 0\nstarted-machine-count: 2\nconcurrency: 0\n",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let joined = |prefix: &str| format!("{prefix}={path}");
    for args in [
        vec!["eval", "-config", path],
        vec!["eval", &joined("-config")],
        vec!["eval", "--config", path],
        vec!["eval", &joined("--config")],
    ] {
        let (code, out, err) = run(&args, &[]);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        let got: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(
            got,
            json!({"created": {"min": 1, "max": 1}, "started": {"min": 2, "max": 2}}),
            "{args:?}: a created count of 0 prints 1, as the Go eval does"
        );
        // The configuration warning (concurrency 0 clamped to 1) is logged, as JSON on stderr.
        let warning = err
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["message"] == "configuration")
            .unwrap_or_else(|| panic!("{args:?}: no configuration warning in {err}"));
        assert_eq!(warning["level"], "WARN", "{warning}");
        assert!(
            warning["warning"]
                .as_str()
                .is_some_and(|w| w.starts_with("concurrency: invalid concurrency \"0\"")),
            "{warning}"
        );
    }
}

#[test]
fn serve_and_plan_take_the_config_flag_with_one_dash() {
    for command in ["serve", "plan"] {
        for args in [
            vec![command, "-config", "/nonexistent/fas.yml"],
            vec![command, "-config=/nonexistent/fas.yml"],
        ] {
            let (code, _, err) = run(&args, &[]);
            assert_eq!(code, Some(1), "{args:?}: {err}");
            assert!(
                err.starts_with("ERROR: ")
                    && err.contains("/nonexistent/fas.yml: cannot read config file"),
                "{args:?}: the flag was taken and the file read: {err}"
            );
        }
    }
    // Other single-dash spellings stay errors, as clap reports them.
    let (code, _, err) = run(&["eval", "-configfile", "x"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("ERROR: "), "{err}");
}

#[test]
fn eval_json_prints_created_bounds_of_at_least_one() {
    let targets = Targets {
        created: Some(Bounds { min: 0, max: 0 }),
        started: Some(Bounds { min: 0, max: 0 }),
    };
    let got: Value = serde_json::from_str(&fly_autoscaler::cli::eval_json(&targets)).unwrap();
    assert_eq!(
        got,
        json!({"created": {"min": 1, "max": 1}, "started": {"min": 0, "max": 0}}),
        "started counts may be 0"
    );
    let got: Value =
        serde_json::from_str(&fly_autoscaler::cli::eval_json(&Targets::default())).unwrap();
    assert_eq!(
        got,
        json!({"created": {"min": null, "max": null}, "started": {"min": null, "max": null}})
    );
}

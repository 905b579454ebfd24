//! The production image carries no simulator: `fas-flysim` and the demo are behind the `demo`
//! feature (on by default for `cargo run -- demo`), which the Dockerfile turns off.

use std::process::Command;

/// The packages of the normal dependency graph of `fly-autoscaler` with the given feature flags.
fn packages(extra: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "fly-autoscaler",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "--locked", "--offline"])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_simulator_is_only_in_the_demo_build() {
    assert!(
        packages(&[]).iter().any(|p| p == "fas-flysim"),
        "default build has the demo"
    );
    let image = packages(&["--no-default-features"]);
    assert!(
        image.iter().any(|p| p == "fas-reconcile"),
        "the parser sees the graph"
    );
    assert!(!image.iter().any(|p| p == "fas-flysim"), "{image:?}");
}

#[test]
fn the_dockerfile_builds_without_the_demo() {
    let dockerfile = include_str!("../../../Dockerfile");
    let build = dockerfile
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build line");
    assert!(build.contains("--no-default-features"), "{build}");
}

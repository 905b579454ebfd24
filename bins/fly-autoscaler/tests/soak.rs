//! The chaos soak: the real loop over the real Fly API client and the simulator with faults
//! (5xx, 429, slow answers that still take effect, unreachable hosts, clones failing at boot, a
//! machine whose start always fails, deploys) and moving per-app metrics; the invariants are
//! listed on `support::soak::Soak::run`. `soak_short` runs in the test command (about 60 s);
//! `soak_long` is run by `scripts/soak --minutes N` (`FAS_SOAK_MINUTES`).

mod support;

use std::time::Duration;

use support::soak::{Soak, SoakReport, target_created, target_started};

fn assert_clean(report: &SoakReport, min_ticks: u64, also: &[&str]) {
    eprintln!("{report}");
    assert_eq!(report.violation_count, 0, "{report}");
    assert!(!report.loop_exited_early, "{report}");
    assert!(report.ticks >= min_ticks, "too few ticks: {report}");
    // The faults did happen, so the run proved something.
    for kind in [
        "status_429",
        "status_503",
        "delay",
        "deploy",
        "host_unreachable",
    ]
    .iter()
    .chain(also)
    {
        assert!(
            report.faults.get(*kind).copied().unwrap_or(0) > 0,
            "no `{kind}` fault was injected: {report}"
        );
    }
    assert!(
        report.outcomes.keys().any(|k| k.starts_with("start ok")),
        "{report}"
    );
}

#[test]
fn targets_follow_the_expressions() {
    assert_eq!(target_created(0.0), 2);
    assert_eq!(target_created(9.0), 4);
    assert_eq!(target_started(0.0), 0);
    assert_eq!(target_started(9.0), 2);
    assert_eq!(target_started(48.0), 6);
}

/// About 60 s: 45 s of chaos over 4 apps, then convergence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_short() {
    let report = Soak {
        chaos: Duration::from_secs(45),
        apps: 4,
        seed: 7,
        concurrency: 1,
    }
    .run()
    .await;
    // The failing machine is started only when its app needs a start while it is the first
    // candidate, and a clone fails at boot only at its first start: both rare in 45 s (the
    // short run need not meet them), certain in the long run, which requires both. The bugs this soak found (a spare
    // start, or the next tick's start, after a timed-out start that took effect,
    // `support::soak::KNOWN_SPARE`) are fixed: no violation is tolerated.
    assert_clean(&report, 40, &[]);
}

/// `FAS_SOAK_MINUTES` (default 30) of chaos over `FAS_SOAK_APPS` apps (default 24: about 10 000
/// ticks in 30 minutes); `scripts/soak --minutes N [--apps A]` runs it and keeps the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with scripts/soak --minutes N"]
async fn soak_long() {
    #[allow(
        clippy::disallowed_methods,
        reason = "the long soak's length is chosen by scripts/soak through the environment"
    )]
    let minutes: u64 = std::env::var("FAS_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(30);
    #[allow(clippy::disallowed_methods, reason = "the seed of a replayed run")]
    let seed: u64 = std::env::var("FAS_SOAK_SEED")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(11);
    #[allow(clippy::disallowed_methods, reason = "the long soak's fleet size")]
    let apps: usize = std::env::var("FAS_SOAK_APPS")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(24);
    let report = Soak {
        chaos: Duration::from_secs(minutes * 60),
        apps,
        seed,
        concurrency: 8,
    }
    .run()
    .await;
    #[allow(
        clippy::disallowed_methods,
        reason = "where scripts/soak keeps the report"
    )]
    let report_path = std::env::var_os("FAS_SOAK_REPORT");
    if let Some(path) = report_path {
        std::fs::write(path, report.to_string()).expect("write the soak report");
    }
    assert_clean(
        &report,
        minutes * 60 * 4,
        &["failing_start", "boot_failure"],
    );
}

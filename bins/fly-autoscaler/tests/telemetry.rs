//! What the loop exports, read from the real Prometheus recorder (one per process, so one test):
//! the Go counters' rules and the per-app gauges of an app that leaves the wildcard list.

mod support;

use std::sync::Arc;
use std::time::Duration;

use fly_autoscaler::{schedule, telemetry, tick::Reconciler};
use support::fake_fly::{FakeFly, SetCollector, machine};
use support::{parse_metrics, sample};
use tokio_util::sync::CancellationToken;

fn reconciler(fly: &FakeFly, settings: &[(&str, &str)]) -> Arc<Reconciler> {
    let load = SetCollector::new("load", 3.0);
    support::fake_fly::reconciler(Arc::new(fly.clone()), &load, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_counters_and_per_app_gauges() {
    let handle = telemetry::install_recorder(Duration::from_millis(1500)).expect("recorder");

    // A start plan with no stopped machine to start still counts as `start`, as in Go.
    let fly = FakeFly::new();
    fly.add("solo", [machine("s1", "started")]);
    let r = reconciler(
        &fly,
        &[
            ("FAS_APP_NAME", "solo"),
            ("FAS_STARTED_MACHINE_COUNT", "load"),
        ],
    );
    let outcome = r
        .reconcile("solo", &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome.plan.kind().as_str(), "start");
    assert!(outcome.plan.actions.is_empty());
    let m = parse_metrics(&handle.render());
    assert_eq!(
        sample(&m, "fas_reconcile_count", &[("status", "start")]),
        Some(1.0)
    );

    // Wildcard: app-b leaves the org's list; its gauges leave /metrics, app-a's stay.
    let fly = FakeFly::new();
    fly.add("app-a", [machine("a1", "started")]);
    fly.add("app-b", [machine("b1", "started")]);
    let r = reconciler(
        &fly,
        &[
            ("FAS_APP_NAME", "app-*"),
            ("FAS_ORG", "org"),
            ("FAS_CONCURRENCY", "2"),
            ("FAS_INTERVAL", "100ms"),
            ("FAS_APP_LIST_REFRESH_INTERVAL", "200ms"),
            ("FAS_STARTED_MACHINE_COUNT", "1"),
        ],
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(schedule::run(r.clone(), shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = parse_metrics(&handle.render());
    for app in ["app-a", "app-b"] {
        assert_eq!(
            sample(&m, "fas_machines", &[("app", app), ("state", "started")]),
            Some(1.0)
        );
        assert!(
            sample(
                &m,
                "fas_last_successful_reconcile_timestamp_seconds",
                &[("app", app)]
            )
            .is_some()
        );
    }
    fly.set_org_apps(Some(&["app-a"]));
    // The exporter notices idle series when it renders (a scrape): one scrape after the removal,
    // then one more past the idle timeout.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = handle.render();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let text = handle.render();
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let m = parse_metrics(&text);
    assert_eq!(r.remembered_apps(), ["app-a"]);
    assert_eq!(
        sample(
            &m,
            "fas_machines",
            &[("app", "app-b"), ("state", "started")]
        ),
        None
    );
    assert_eq!(
        sample(
            &m,
            "fas_target_machine_count",
            &[("app", "app-b"), ("count", "started"), ("bound", "min")]
        ),
        None
    );
    assert_eq!(
        sample(
            &m,
            "fas_machines",
            &[("app", "app-a"), ("state", "started")]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &m,
            "fas_last_successful_reconcile_timestamp_seconds",
            &[("app", "app-a")]
        )
        .is_some()
    );
}

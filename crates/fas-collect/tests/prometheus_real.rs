//! Against a real Prometheus (Debian's), scraping a local exporter. One server start (~6 s until
//! the first scrape) serves every check of one test; the grouped query has its own server (its
//! series would change the sums of the other test), started in parallel.

use std::time::Duration;

use fas_collect::{
    CollectError, Collector, GroupBy, MultipleSeries, PrometheusCollector, PrometheusConfig,
};
use fas_testkit::{Exporter, PromServer};

const METRICS: &str = "\
queue_depth{queue=\"a\"} 42
queue_depth{queue=\"b\"} 8
app_queue{app=\"my-app\"} 5
app_queue{app=\"other-app\"} 9
weird_value{kind=\"nan\"} NaN
weird_value{kind=\"inf\"} +Inf
";

fn collector(prom: &PromServer, query: &str, multiple: MultipleSeries) -> PrometheusCollector {
    let mut cfg = PrometheusConfig::new("queue_depth", &prom.url(), query);
    cfg.multiple_series = multiple;
    cfg.timeout = Duration::from_secs(5);
    PrometheusCollector::new(cfg).unwrap()
}

async fn value(prom: &PromServer, query: &str, app: &str) -> Result<f64, CollectError> {
    collector(prom, query, MultipleSeries::Error)
        .collect(app)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_queries() {
    let exporter = Exporter::start().await;
    exporter.set(METRICS);
    let prom = PromServer::start(&[exporter.addr()]).await;
    prom.wait_for("weird_value").await;

    // a one-sample vector is its value
    assert_eq!(value(&prom, "sum(queue_depth)", "x").await.unwrap(), 50.0);
    // a scalar
    assert_eq!(
        value(&prom, "scalar(sum(queue_depth))", "x").await.unwrap(),
        50.0
    );
    assert_eq!(value(&prom, "3 * 4", "x").await.unwrap(), 12.0);
    // several series, by default: the first in Prometheus' order, as the Go version
    // (`sort`/`sort_desc` make that order certain here)
    for (query, want) in [("sort_desc(queue_depth)", 42.0), ("sort(queue_depth)", 8.0)] {
        let mut cfg = PrometheusConfig::new("queue_depth", &prom.url(), query);
        cfg.timeout = Duration::from_secs(5);
        let c = PrometheusCollector::new(cfg).unwrap();
        assert_eq!(c.collect("x").await.unwrap(), want, "{query}");
    }
    // `multiple-series: error` says to aggregate; `sum` adds them
    let err = value(&prom, "queue_depth", "x").await.unwrap_err();
    assert!(
        matches!(err, CollectError::MultipleSeries { n: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("sum("), "{err}");
    assert_eq!(
        collector(&prom, "queue_depth", MultipleSeries::Sum)
            .collect("x")
            .await
            .unwrap(),
        50.0
    );
    // empty results
    let err = value(&prom, "no_such_metric", "x").await.unwrap_err();
    assert!(matches!(err, CollectError::EmptyResult { .. }), "{err:?}");
    assert!(
        err.to_string().ends_with("empty prometheus result"),
        "{err}"
    );
    let err = value(&prom, "sum(no_such_metric)", "x").await.unwrap_err();
    assert!(matches!(err, CollectError::EmptyResult { .. }), "{err:?}");
    // a bad query: Prometheus' 400 bad_data with its error text
    let err = value(&prom, "sum(queue_depth", "x").await.unwrap_err();
    match &err {
        CollectError::PrometheusError {
            status: 400,
            error_type,
            error,
            ..
        } => {
            assert_eq!(error_type, "bad_data");
            assert!(error.contains("parse error"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // ${APP_NAME} / $APP_NAME in a label matcher, and PromQL's own $1 left alone
    assert_eq!(
        value(&prom, r#"sum(app_queue{app="${APP_NAME}"})"#, "my-app")
            .await
            .unwrap(),
        5.0
    );
    assert_eq!(
        value(&prom, r#"sum(app_queue{app="$APP_NAME"})"#, "other-app")
            .await
            .unwrap(),
        9.0
    );
    let relabel =
        r#"sum(label_replace(app_queue{app="${APP_NAME}"}, "short", "$1", "app", "(.*)-app"))"#;
    assert_eq!(value(&prom, relabel, "other-app").await.unwrap(), 9.0);
    let by_short = r#"sum(label_replace(app_queue, "short", "$1", "app", "(.*)-app") and on() vector(1)) by (short)"#;
    assert!(matches!(
        value(&prom, by_short, "x").await,
        Err(CollectError::MultipleSeries { n: 2, .. })
    ));
    // NaN and +Inf pass through as f64
    assert!(
        value(&prom, r#"sum(weird_value{kind="nan"})"#, "x")
            .await
            .unwrap()
            .is_nan()
    );
    assert_eq!(
        value(&prom, r#"sum(weird_value{kind="inf"})"#, "x")
            .await
            .unwrap(),
        f64::INFINITY
    );
    // a matrix is not supported
    let err = value(&prom, "queue_depth[1m]", "x").await.unwrap_err();
    assert!(
        matches!(err, CollectError::UnsupportedResultType { ref result_type, .. } if result_type == "matrix"),
        "{err:?}"
    );

    // a changed value shows up after the next scrapes (bounded wait)
    exporter.set(&METRICS.replace("} 42", "} 100"));
    let c = collector(&prom, "sum(queue_depth)", MultipleSeries::Error);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if c.collect("x").await.unwrap() == 108.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new value never showed up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_grouped_query() {
    let exporter = Exporter::start().await;
    exporter.set(
        "\
queue_depth{app=\"my-app\",queue=\"a\"} 5
queue_depth{app=\"my-app\",queue=\"b\"} 2
queue_depth{app=\"other-app\",queue=\"a\"} 9
queue_depth{queue=\"no-app\"} 100
",
    );
    let prom = PromServer::start(&[exporter.addr()]).await;
    prom.wait_for("queue_depth").await;

    let mut cfg = PrometheusConfig::new("queue_depth", &prom.url(), "sum by (app) (queue_depth)");
    cfg.timeout = Duration::from_secs(5);
    cfg.multiple_series = MultipleSeries::Error;
    cfg.group_by = Some(GroupBy::new("app", Duration::from_secs(60)));
    let c = PrometheusCollector::new(cfg).unwrap();
    // `sum by (app)` gives one series per app, and one without the label (ignored).
    assert_eq!(c.collect("my-app").await.unwrap(), 7.0);
    assert_eq!(c.collect("other-app").await.unwrap(), 9.0);
    let err = c.collect("third-app").await.unwrap_err();
    assert!(matches!(err, CollectError::EmptyResult { .. }), "{err:?}");
    assert!(
        err.to_string().ends_with("empty prometheus result"),
        "{err}"
    );

    // The result is kept; after `invalidate` the next collection sees the new scrape.
    exporter.set("queue_depth{app=\"my-app\",queue=\"a\"} 50\nqueue_depth{app=\"third-app\"} 1\n");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        c.invalidate();
        if c.collect("my-app").await.unwrap() == 50.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new value never showed up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(c.collect("third-app").await.unwrap(), 1.0);
    assert!(matches!(
        c.collect("other-app").await,
        Err(CollectError::EmptyResult { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_range_query() {
    let exporter = Exporter::start().await;
    exporter.set(METRICS);
    let prom = PromServer::start(&[exporter.addr()]).await;
    prom.wait_for("queue_depth").await;
    // Two more scrapes, so the range has several points.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let step = Duration::from_secs(1);
    let history = collector(&prom, "sum(queue_depth)", MultipleSeries::Error)
        .query_range("x", now - 30.0, now, step)
        .await
        .unwrap();
    assert!(history.len() >= 2, "{history:?}");
    assert!(history.iter().all(|(_, v)| *v == 50.0), "{history:?}");
    assert!(history.windows(2).all(|w| w[0].0 < w[1].0), "in time order");
    // several series per step follow multiple-series, as a tick does
    let sorted = collector(&prom, "sort_desc(queue_depth)", MultipleSeries::Sum)
        .query_range("x", now - 30.0, now, step)
        .await
        .unwrap();
    assert!(sorted.iter().all(|(_, v)| *v == 50.0), "{sorted:?}");
    let err = collector(&prom, "queue_depth", MultipleSeries::Error)
        .query_range("x", now - 30.0, now, step)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CollectError::MultipleSeries { n: 2, .. }),
        "{err:?}"
    );
    // a grouped collector reads its app's series
    let mut cfg = PrometheusConfig::new("app_queue", &prom.url(), "sum by (app) (app_queue)");
    cfg.timeout = Duration::from_secs(5);
    cfg.group_by = Some(GroupBy::new("app", Duration::from_secs(10)));
    let grouped = PrometheusCollector::new(cfg).unwrap();
    let mine = grouped
        .query_range("my-app", now - 30.0, now, step)
        .await
        .unwrap();
    assert!(mine.iter().all(|(_, v)| *v == 5.0), "{mine:?}");
    let none = grouped
        .query_range("ghost", now - 30.0, now, step)
        .await
        .unwrap_err();
    assert!(matches!(none, CollectError::EmptyResult { .. }), "{none:?}");
}

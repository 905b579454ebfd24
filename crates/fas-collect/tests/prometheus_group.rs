//! Batch collection (`group-by`) against wiremock: one query serves every app within its maximum
//! age, concurrent collections share one request, a missing app fails alone, a failure is shared
//! by the waiters and not kept, and `invalidate` forces a new query.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fas_collect::{
    CollectError, Collector, GroupBy, MultipleSeries, PrometheusCollector, PrometheusConfig,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const QUERY: &str = "sum by (app) (queue_depth)";

/// A vector of `(labels, value)` samples.
fn vector(samples: &[(Value, &str)]) -> Value {
    let result: Vec<Value> = samples
        .iter()
        .map(|(labels, v)| json!({"metric": labels, "value": [1795948788.673, v]}))
        .collect();
    json!({"status": "success", "data": {"resultType": "vector", "result": result}})
}

/// One sample per app: `app` → `value + call number * 100` (the first call is number 0), so a
/// test sees which query answered.
struct PerCall {
    calls: AtomicUsize,
    apps: Vec<(String, f64)>,
    delay: Duration,
}

impl Respond for PerCall {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) as f64;
        let samples: Vec<(Value, String)> = self
            .apps
            .iter()
            .map(|(app, v)| (json!({"app": app}), (v + n * 100.0).to_string()))
            .collect();
        let samples: Vec<(Value, &str)> = samples
            .iter()
            .map(|(l, v)| (l.clone(), v.as_str()))
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(vector(&samples))
            .set_delay(self.delay)
    }
}

async fn serve_per_call(apps: &[(&str, f64)], delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/query"))
        .respond_with(PerCall {
            calls: AtomicUsize::new(0),
            apps: apps.iter().map(|(a, v)| (a.to_string(), *v)).collect(),
            delay,
        })
        .mount(&server)
        .await;
    server
}

async fn serve(body: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    server
}

fn grouped(address: &str, max_age: Duration) -> PrometheusCollector {
    let mut cfg = PrometheusConfig::new("queue_depth", address, QUERY);
    cfg.group_by = Some(GroupBy::new("app", max_age));
    PrometheusCollector::new(cfg).unwrap()
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn one_query_serves_every_app_within_max_age() {
    let server = serve_per_call(&[("a", 1.0), ("b", 2.0), ("c", 3.0)], Duration::ZERO).await;
    let c = grouped(&server.uri(), Duration::from_secs(60));
    for _ in 0..3 {
        for (app, want) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
            assert_eq!(c.collect(app).await.unwrap(), want, "{app}");
        }
    }
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1, "one query for 3 apps × 3 ticks");
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&sent[0].body)
        .into_owned()
        .collect();
    assert_eq!(form, [("query".to_owned(), QUERY.to_owned())]);
    assert_eq!(c.group_by(), Some("app"));
    assert_eq!(c.expanded_query("a"), QUERY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_request() {
    let names: Vec<String> = (0..50).map(|i| format!("app-{i}")).collect();
    let apps: Vec<(&str, f64)> = names
        .iter()
        .zip(0..)
        .map(|(a, i)| (a.as_str(), f64::from(i)))
        .collect();
    let server = serve_per_call(&apps, Duration::from_millis(300)).await;
    let c: Arc<dyn Collector> = Arc::new(grouped(&server.uri(), Duration::from_secs(60)));
    let tasks: Vec<_> = apps
        .iter()
        .map(|&(app, want)| {
            let (c, app) = (Arc::clone(&c), app.to_owned());
            tokio::spawn(async move { (c.collect(&app).await.unwrap(), want) })
        })
        .collect();
    for task in tasks {
        let (got, want) = task.await.unwrap();
        assert_eq!(got, want);
    }
    assert_eq!(
        requests(&server).await,
        1,
        "exactly one request for 50 concurrent apps"
    );
}

#[tokio::test]
async fn a_missing_app_gets_the_empty_result_error_alone() {
    let server = serve_per_call(&[("a", 1.0), ("b", 2.0)], Duration::ZERO).await;
    let c = grouped(&server.uri(), Duration::from_secs(60));
    let err = c.collect("missing").await.unwrap_err();
    assert!(matches!(err, CollectError::EmptyResult { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.ends_with("empty prometheus result"), "{text}");
    assert!(
        text.contains("queue_depth") && text.contains(&server.uri()),
        "names metric and address: {text}"
    );
    assert_eq!(c.collect("a").await.unwrap(), 1.0);
    assert_eq!(c.collect("b").await.unwrap(), 2.0);
    assert!(c.collect("missing").await.is_err());
    assert_eq!(
        requests(&server).await,
        1,
        "a missing app is no reason to query again"
    );
}

#[tokio::test]
async fn queries_again_after_max_age() {
    let server = serve_per_call(&[("a", 1.0)], Duration::ZERO).await;
    let c = grouped(&server.uri(), Duration::from_millis(500));
    assert_eq!(c.collect("a").await.unwrap(), 1.0);
    assert_eq!(c.collect("a").await.unwrap(), 1.0);
    assert_eq!(requests(&server).await, 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        c.collect("a").await.unwrap(),
        101.0,
        "the second query's value"
    );
    assert_eq!(c.collect("a").await.unwrap(), 101.0);
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn invalidate_forces_a_new_query() {
    let server = serve_per_call(&[("a", 1.0), ("b", 2.0)], Duration::ZERO).await;
    let c: Arc<dyn Collector> = Arc::new(grouped(&server.uri(), Duration::from_secs(60)));
    assert_eq!(c.collect("a").await.unwrap(), 1.0);
    c.invalidate();
    assert_eq!(
        c.collect("b").await.unwrap(),
        102.0,
        "fresh after invalidate"
    );
    assert_eq!(c.collect("a").await.unwrap(), 101.0, "and shared again");
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_woken_after_one_invalidation_share_one_fresh_query() {
    let server = serve_per_call(&[("a", 1.0), ("b", 2.0)], Duration::from_millis(100)).await;
    let c: Arc<dyn Collector> = Arc::new(grouped(&server.uri(), Duration::from_secs(60)));
    assert_eq!(c.collect("a").await.unwrap(), 1.0);
    c.invalidate();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let c = Arc::clone(&c);
            let app = if i % 2 == 0 { "a" } else { "b" };
            tokio::spawn(async move { c.collect(app).await.unwrap() })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let want = if i % 2 == 0 { 101.0 } else { 102.0 };
        assert_eq!(task.await.unwrap(), want);
    }
    assert_eq!(requests(&server).await, 2, "one query before, one after");
}

#[tokio::test]
async fn invalidate_during_a_query_makes_the_next_collection_query_again() {
    let server = serve_per_call(&[("a", 1.0)], Duration::from_millis(300)).await;
    let c = Arc::new(grouped(&server.uri(), Duration::from_secs(60)));
    let first = tokio::spawn({
        let c = Arc::clone(&c);
        async move { c.collect("a").await.unwrap() }
    });
    while requests(&server).await == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.invalidate();
    assert_eq!(
        first.await.unwrap(),
        1.0,
        "the query in flight still answers its caller"
    );
    assert_eq!(
        c.collect("a").await.unwrap(),
        101.0,
        "but its result was asked for before the invalidation"
    );
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn ungrouped_collectors_ignore_invalidate() {
    let server = serve(vector(&[(json!({}), "5")])).await;
    let c = PrometheusCollector::new(PrometheusConfig::new("m", &server.uri(), "sum(x)")).unwrap();
    assert_eq!(c.group_by(), None);
    c.invalidate();
    assert_eq!(c.collect("a").await.unwrap(), 5.0);
    assert_eq!(c.collect("a").await.unwrap(), 5.0);
    assert_eq!(
        requests(&server).await,
        2,
        "one query per collection, as before"
    );
}

/// Fails the first call (slowly), answers the others.
struct FailFirst(AtomicUsize);

impl Respond for FailFirst {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            ResponseTemplate::new(503)
                .set_body_string("upstream connect error")
                .set_delay(Duration::from_millis(300))
        } else {
            ResponseTemplate::new(200).set_body_json(vector(&[(json!({"app": "a"}), "7")]))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_reaches_every_waiter_and_is_not_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(FailFirst(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let c = Arc::new(grouped(&server.uri(), Duration::from_secs(60)));
    let tasks: Vec<_> = ["a", "b", "c", "d", "e"]
        .into_iter()
        .map(|app| {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.collect(app).await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, CollectError::Http { status: 503, body, .. } if body.contains("upstream")),
            "{err:?}"
        );
    }
    assert_eq!(
        requests(&server).await,
        1,
        "the waiters got the one failure"
    );
    assert_eq!(c.collect("a").await.unwrap(), 7.0, "the next call retries");
    assert_eq!(c.collect("a").await.unwrap(), 7.0);
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn a_timeout_is_shared_and_retried() {
    let server = serve_per_call(&[("a", 1.0)], Duration::from_secs(5)).await;
    let mut cfg = PrometheusConfig::new("queue_depth", &server.uri(), QUERY);
    cfg.group_by = Some(GroupBy::new("app", Duration::from_secs(60)));
    cfg.timeout = Duration::from_millis(200);
    let c = PrometheusCollector::new(cfg).unwrap();
    let (a, b) = tokio::join!(c.collect("a"), c.collect("b"));
    for err in [a.unwrap_err(), b.unwrap_err()] {
        assert!(matches!(err, CollectError::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains("timed out after 200ms"), "{err}");
    }
    assert!(c.collect("a").await.is_err());
    assert_eq!(requests(&server).await, 2, "one per attempt, none kept");
}

#[tokio::test]
async fn several_series_per_app_follow_multiple_series() {
    let body = vector(&[
        (json!({"app": "a", "queue": "x"}), "4"),
        (json!({"app": "b"}), "1"),
        (json!({"app": "a", "queue": "y"}), "6"),
        (json!({"queue": "no-app"}), "100"),
    ]);
    let server = serve(body).await;
    for (multiple, want_a) in [
        (MultipleSeries::First, Ok(4.0)),
        (MultipleSeries::Sum, Ok(10.0)),
        (MultipleSeries::Error, Err("returned 2 series")),
    ] {
        let mut cfg = PrometheusConfig::new("queue_depth", &server.uri(), "queue_depth");
        cfg.group_by = Some(GroupBy::new("app", Duration::from_secs(60)));
        cfg.multiple_series = multiple;
        let c = PrometheusCollector::new(cfg).unwrap();
        match (c.collect("a").await, want_a) {
            (Ok(v), Ok(w)) => assert_eq!(v, w, "{multiple:?}"),
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{multiple:?}: {e}"),
            (got, want) => panic!("{multiple:?}: got {got:?}, want {want:?}"),
        }
        assert_eq!(
            c.collect("b").await.unwrap(),
            1.0,
            "{multiple:?}: b has one series"
        );
        // The sample without the label belongs to no app (not even one named like its value).
        assert!(matches!(
            c.collect("no-app").await,
            Err(CollectError::EmptyResult { .. })
        ));
    }
}

#[tokio::test]
async fn results_without_series_per_app_are_errors_for_every_app() {
    let scalar =
        json!({"status":"success","data":{"resultType":"scalar","result":[1795948788.673,"50"]}});
    let server = serve(scalar).await;
    let c = grouped(&server.uri(), Duration::from_secs(60));
    let err = c.collect("a").await.unwrap_err();
    assert!(matches!(err, CollectError::NotGroupable { .. }), "{err:?}");
    assert!(err.to_string().contains("group-by `app`"), "{err}");

    let server = serve(vector(&[])).await;
    let c = grouped(&server.uri(), Duration::from_secs(60));
    for app in ["a", "b"] {
        assert!(matches!(
            c.collect(app).await,
            Err(CollectError::EmptyResult { .. })
        ));
    }
    assert_eq!(
        requests(&server).await,
        1,
        "an empty vector is a result, kept"
    );

    let bad = vector(&[(json!({"app": "a"}), "1"), (json!({"app": "b"}), "x")]);
    let server = serve(bad).await;
    let c = grouped(&server.uri(), Duration::from_secs(60));
    let err = c.collect("a").await.unwrap_err();
    assert!(matches!(err, CollectError::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn the_query_expands_variables_once() {
    let server = serve(vector(&[(json!({"app": "a"}), "3")])).await;
    let mut cfg = PrometheusConfig::new(
        "queue_depth",
        &server.uri(),
        r#"sum by (app) (queue_depth{region="${REGION}"})"#,
    );
    cfg.env.insert("REGION".into(), "ams".into());
    cfg.group_by = Some(GroupBy::new("app", Duration::from_secs(60)));
    let c = PrometheusCollector::new(cfg).unwrap();
    assert_eq!(c.collect("a").await.unwrap(), 3.0);
    let sent = server.received_requests().await.unwrap();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&sent[0].body)
        .into_owned()
        .collect();
    assert_eq!(form[0].1, r#"sum by (app) (queue_depth{region="ams"})"#);
}

#[test]
fn bad_group_configs_name_the_key() {
    for (label, query, key) in [
        ("", QUERY, "group-by"),
        ("app-name", QUERY, "group-by"),
        ("2app", QUERY, "group-by"),
        ("app", r#"sum(queue_depth{app="${APP_NAME}"})"#, "query"),
        ("app", r#"sum(queue_depth{app="$APP_NAME"})"#, "query"),
    ] {
        let mut cfg = PrometheusConfig::new("m", "http://p", query);
        cfg.group_by = Some(GroupBy::new(label, Duration::from_secs(14)));
        let err = PrometheusCollector::new(cfg).unwrap_err();
        assert!(
            matches!(&err, CollectError::Config { key: k, .. } if *k == key),
            "{label:?} {query:?}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("invalid {key}")),
            "names the key: {text}"
        );
        assert!(
            text.contains(&format!("`{label}`")),
            "names the value: {text}"
        );
    }
}

#[tokio::test]
async fn the_token_never_leaks_from_a_shared_failure() {
    const CANARY: &str = "canary-group-5e1d-SECRET";
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string("unauthorized"))
        .mount(&server)
        .await;
    let mut cfg = PrometheusConfig::new("queue_depth", &server.uri(), QUERY);
    cfg.token = Some(CANARY.into());
    cfg.group_by = Some(GroupBy::new("app", Duration::from_secs(60)));
    let c = PrometheusCollector::new(cfg).unwrap();
    let rendered = format!("{c:?}");
    let (a, b) = tokio::join!(c.collect("a"), c.collect("b"));
    let rendered = format!("{rendered}\n{:?}\n{:?}", a.unwrap_err(), b.unwrap_err());
    assert!(rendered.contains("group_by: Some(\"app\")"), "{rendered}");
    assert!(!rendered.contains(CANARY), "{rendered}");
}

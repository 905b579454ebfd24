//! Prometheus wire shapes against wiremock: what is sent (method, path, form, headers) and how
//! every response shape of a real Prometheus (toolchain.md §3) is decoded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fas_collect::{
    CollectError, Collector, MULTIPLE_SERIES_TOTAL, MultipleSeries, PrometheusCollector,
    PrometheusConfig,
};
use metrics::{Key, KeyName, Metadata, SharedString, Unit};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn vector(values: &[&str]) -> Value {
    let result: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"metric": {"__name__": "queue_depth", "queue": format!("q{i}")}, "value": [1795948788.673, v]}))
        .collect();
    json!({"status": "success", "data": {"resultType": "vector", "result": result}})
}

async fn serve(status: u16, body: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    server
}

fn collector(address: &str, query: &str) -> PrometheusCollector {
    PrometheusCollector::new(PrometheusConfig::new("queue_depth", address, query)).unwrap()
}

/// The decoded form body of the only request the server received.
async fn sent_query(server: &MockServer) -> (wiremock::Request, String) {
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = requests.into_iter().next().unwrap();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    assert_eq!(form.len(), 1, "only `query` is sent: {form:?}");
    assert_eq!(form[0].0, "query");
    let query = form[0].1.clone();
    (request, query)
}

#[tokio::test]
async fn posts_a_form_with_the_expanded_query() {
    let server = serve(200, vector(&["42"])).await;
    let mut cfg = PrometheusConfig::new(
        "queue_depth",
        &format!("{}/", server.uri()),
        r#"label_replace(sum(queue_depth{app="${APP_NAME}", other="$APP_NAME", r="${REGION}", u="${UNSET}"}), "x", "$1", "a", "(.*)") + 0 * ${1}"#,
    );
    cfg.env.insert("REGION".into(), "ams & co".into());
    let c = PrometheusCollector::new(cfg).unwrap();
    assert_eq!(c.collect("my-app").await.unwrap(), 42.0);
    let (request, query) = sent_query(&server).await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/api/v1/query");
    assert_eq!(
        query,
        r#"label_replace(sum(queue_depth{app="my-app", other="my-app", r="ams & co", u="${UNSET}"}), "x", "$1", "a", "(.*)") + 0 * ${1}"#
    );
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header("authorization"), None, "no token, no header");
}

#[tokio::test]
async fn address_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/prometheus/my-org/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector(&["7"])))
        .expect(1)
        .mount(&server)
        .await;
    let c = collector(&format!("{}/prometheus/my-org", server.uri()), "sum(x)");
    assert_eq!(c.collect("a").await.unwrap(), 7.0);
}

#[tokio::test]
async fn authorization_header_follows_the_token_rules() {
    for (token, want) in [
        ("FlyV1 fm2_abc,fm2_def", "FlyV1 fm2_abc,fm2_def"),
        ("plain-token", "Bearer plain-token"),
    ] {
        let server = serve(200, vector(&["1"])).await;
        let mut cfg = PrometheusConfig::new("m", &server.uri(), "up");
        cfg.token = Some(token.into());
        PrometheusCollector::new(cfg)
            .unwrap()
            .collect("a")
            .await
            .unwrap();
        let (request, _) = sent_query(&server).await;
        assert_eq!(
            request
                .headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap(),
            want
        );
    }
    let server = serve(200, vector(&["1"])).await;
    let mut cfg = PrometheusConfig::new("m", &server.uri(), "up");
    cfg.token = Some("".into());
    PrometheusCollector::new(cfg)
        .unwrap()
        .collect("a")
        .await
        .unwrap();
    let (request, _) = sent_query(&server).await;
    assert!(
        request.headers.get("authorization").is_none(),
        "an empty token sends no header"
    );
}

#[tokio::test]
async fn result_shapes() {
    let cases: Vec<(Value, MultipleSeries, Result<f64, &str>)> = vec![
        (vector(&["50"]), MultipleSeries::Error, Ok(50.0)),
        (vector(&["1e+06"]), MultipleSeries::Error, Ok(1e6)),
        (vector(&["+Inf"]), MultipleSeries::Error, Ok(f64::INFINITY)),
        (
            vector(&["-Inf"]),
            MultipleSeries::Error,
            Ok(f64::NEG_INFINITY),
        ),
        (
            vector(&[]),
            MultipleSeries::Error,
            Err("empty prometheus result"),
        ),
        (
            vector(&[]),
            MultipleSeries::Sum,
            Err("empty prometheus result"),
        ),
        (
            vector(&["42", "8"]),
            MultipleSeries::Error,
            Err("returned 2 series"),
        ),
        (vector(&["42", "8"]), MultipleSeries::Sum, Ok(50.0)),
        (vector(&["42", "8"]), MultipleSeries::First, Ok(42.0)),
        (vector(&["8", "42", "1"]), MultipleSeries::First, Ok(8.0)),
        (vector(&["50"]), MultipleSeries::First, Ok(50.0)),
        (
            vector(&[]),
            MultipleSeries::First,
            Err("empty prometheus result"),
        ),
        (vector(&["42", "8", "0.5"]), MultipleSeries::Sum, Ok(50.5)),
        (
            json!({"status":"success","data":{"resultType":"scalar","result":[1795948788.673,"50"]}}),
            MultipleSeries::Error,
            Ok(50.0),
        ),
        (
            json!({"status":"success","data":{"resultType":"string","result":[1795948788.673,"hello"]}}),
            MultipleSeries::Error,
            Err("unsupported prometheus result type `string`"),
        ),
        (
            json!({"status":"success","data":{"resultType":"matrix","result":[]}}),
            MultipleSeries::Error,
            Err("unsupported prometheus result type `matrix`"),
        ),
        (
            json!({"status":"success","data":{"resultType":"vector","result":{"oops":1}}}),
            MultipleSeries::Error,
            Err("cannot decode response: bad vector result"),
        ),
        (
            json!({"status":"success"}),
            MultipleSeries::Error,
            Err("missing `data`"),
        ),
    ];
    for (body, multiple, want) in cases {
        let server = serve(200, body.clone()).await;
        let mut cfg = PrometheusConfig::new("queue_depth", &server.uri(), "q");
        cfg.multiple_series = multiple;
        let got = PrometheusCollector::new(cfg).unwrap().collect("a").await;
        match (got, want) {
            (Ok(v), Ok(w)) => assert_eq!(v, w, "{body}"),
            (Err(e), Err(w)) => {
                let text = e.to_string();
                assert!(text.contains(w), "{body}: `{text}` should contain `{w}`");
                assert!(
                    text.contains("queue_depth") && text.contains(&server.uri()),
                    "names metric and address: {text}"
                );
            }
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }
}

#[tokio::test]
async fn nan_passes_through() {
    let server = serve(200, vector(&["NaN"])).await;
    assert!(
        collector(&server.uri(), "q")
            .collect("a")
            .await
            .unwrap()
            .is_nan()
    );
}

#[tokio::test]
async fn several_series_error_says_to_aggregate() {
    let server = serve(200, vector(&["1", "2", "3"])).await;
    let mut cfg = PrometheusConfig::new("queue_depth", &server.uri(), "queue_depth");
    cfg.multiple_series = MultipleSeries::Error;
    let err = PrometheusCollector::new(cfg)
        .unwrap()
        .collect("a")
        .await
        .unwrap_err();
    assert!(
        matches!(err, CollectError::MultipleSeries { n: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("sum("), "{err}");
}

#[tokio::test]
async fn http_and_json_errors_are_typed() {
    let bad_data = json!({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:16: parse error: unclosed left parenthesis"});
    let server = serve(400, bad_data).await;
    let err = collector(&server.uri(), "sum(queue_depth")
        .collect("a")
        .await
        .unwrap_err();
    match &err {
        CollectError::PrometheusError {
            status,
            error_type,
            error,
            at,
        } => {
            assert_eq!((*status, error_type.as_str()), (400, "bad_data"));
            assert!(error.contains("unclosed left parenthesis"));
            assert_eq!(at.metric, "queue_depth");
        }
        other => panic!("{other:?}"),
    }

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string("<html>upstream connect error</html>"),
        )
        .mount(&server)
        .await;
    let err = collector(&server.uri(), "q")
        .collect("a")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CollectError::Http { status: 503, body, .. } if body.contains("upstream connect error")),
        "{err:?}"
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(5000)))
        .mount(&server)
        .await;
    let err = collector(&server.uri(), "q")
        .collect("a")
        .await
        .unwrap_err();
    match &err {
        CollectError::Decode { body, .. } => {
            assert!(body.len() < 400, "snippet is bounded: {}", body.len())
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn falls_back_to_get_when_post_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(405))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(wiremock::matchers::query_param(
            "query",
            "sum(x{app=\"a b\"})",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector(&["3"])))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        collector(&server.uri(), "sum(x{app=\"${APP_NAME}\"})")
            .collect("a b")
            .await
            .unwrap(),
        3.0
    );
}

#[tokio::test]
async fn slow_server_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(vector(&["1"]))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let mut cfg = PrometheusConfig::new("queue_depth", &server.uri(), "q");
    cfg.timeout = Duration::from_millis(200);
    let err = PrometheusCollector::new(cfg)
        .unwrap()
        .collect("a")
        .await
        .unwrap_err();
    assert!(matches!(err, CollectError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out after 200ms"), "{err}");
}

#[tokio::test]
async fn refused_connection_is_a_transport_error_naming_metric_and_address() {
    let port = fas_testkit::free_port();
    let address = format!("http://127.0.0.1:{port}");
    let err = collector(&address, "q").collect("a").await.unwrap_err();
    assert!(matches!(err, CollectError::Transport { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("queue_depth") && text.contains(&address),
        "{text}"
    );
}

#[test]
fn bad_configs_name_the_key() {
    for (address, query, key) in [
        ("", "q", "address"),
        ("not a url", "q", "address"),
        ("ftp://x", "q", "address"),
        ("http://x", " ", "query"),
    ] {
        let err = PrometheusCollector::new(PrometheusConfig::new("m", address, query)).unwrap_err();
        assert!(
            matches!(&err, CollectError::Config { key: k, .. } if *k == key),
            "{address:?}: {err:?}"
        );
    }
}

/// A `MakeWriter` that keeps everything logged, for the canary and warnings checks.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn warnings_are_logged_and_the_token_never_leaks() {
    const CANARY: &str = "canary-7f3a9c-SECRET";
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut with_warning = vector(&["5"]);
    with_warning["warnings"] = json!(["PromQL info: metric might not be a counter"]);
    let bodies = [
        (200, with_warning),
        (
            400,
            json!({"status":"error","errorType":"bad_data","error":"parse error"}),
        ),
        (200, vector(&["1", "2"])),
        (200, vector(&[])),
    ];
    let mut rendered = String::new();
    for token in [format!("FlyV1 {CANARY}"), CANARY.to_owned()] {
        for (status, body) in &bodies {
            let server = serve(*status, body.clone()).await;
            let mut cfg = PrometheusConfig::new("queue_depth", &server.uri(), "q");
            cfg.token = Some(token.clone().into());
            rendered.push_str(&format!("{cfg:?}\n"));
            let c = PrometheusCollector::new(cfg).unwrap();
            rendered.push_str(&format!("{c:?}\n"));
            match c.collect("a").await {
                Ok(v) => rendered.push_str(&format!("{v}\n")),
                Err(e) => rendered.push_str(&format!("{e}\n{e:?}\n")),
            }
            let (request, _) = sent_query(&server).await;
            assert!(
                request
                    .headers
                    .get("authorization")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .contains(CANARY)
            );
        }
        // a transport error and a timeout too
        let mut cfg = PrometheusConfig::new(
            "queue_depth",
            &format!("http://127.0.0.1:{}", fas_testkit::free_port()),
            "q",
        );
        cfg.token = Some(token.clone().into());
        let e = PrometheusCollector::new(cfg)
            .unwrap()
            .collect("a")
            .await
            .unwrap_err();
        rendered.push_str(&format!("{e}\n{e:?}\n"));
    }
    // a token that is not a valid header value: the error names the key, not the value
    let mut cfg = PrometheusConfig::new("m", "http://x", "q");
    cfg.token = Some(format!("{CANARY}\u{1}x").into());
    let e = PrometheusCollector::new(cfg).unwrap_err();
    rendered.push_str(&format!("{e}\n{e:?}\n"));

    let logs = logs.text();
    assert!(
        logs.contains("metric might not be a counter"),
        "warnings logged: {logs}"
    );
    assert!(rendered.contains("REDACTED"), "{rendered}");
    assert!(
        !rendered.contains(CANARY),
        "token leaked in Debug/errors:\n{rendered}"
    );
    assert!(!logs.contains(CANARY), "token leaked in logs:\n{logs}");
}

/// A `metrics` recorder that keeps the counters, keyed by their name and sorted labels.
#[derive(Default)]
struct Counters(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

struct CounterCell(Arc<AtomicU64>);

impl metrics::CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let cell = self.0.lock().unwrap().entry(name).or_default().clone();
        metrics::Counter::from_arc(Arc::new(CounterCell(cell)))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

impl Counters {
    fn get(&self, name: &str) -> Option<u64> {
        let counters = self.0.lock().unwrap();
        counters.get(name).map(|c| c.load(Ordering::Relaxed))
    }
}

#[test]
fn several_series_use_the_first_and_warn() {
    // The Go version read result[0]; so does the default, with a warning and a counter.
    const CANARY: &str = "canary-91d2-SECRET";
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let counters = Counters::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let query = r#"queue_depth{app="${APP_NAME}"}"#;
    let (first, single) = metrics::with_local_recorder(&counters, || {
        runtime.block_on(async {
            let server = serve(200, vector(&["7", "2", "3"])).await;
            let mut cfg = PrometheusConfig::new("queue_depth", &server.uri(), query);
            cfg.token = Some(CANARY.into());
            assert_eq!(cfg.multiple_series, MultipleSeries::First, "the default");
            let c = PrometheusCollector::new(cfg).unwrap();
            let first = c.collect("my-app").await.unwrap();
            c.collect("my-app").await.unwrap();
            // One series: no warning, no count.
            let server = serve(200, vector(&["5"])).await;
            let single = collector(&server.uri(), "sum(x)").collect("other").await;
            (first, single.unwrap())
        })
    });
    assert_eq!((first, single), (7.0, 5.0));
    let logs = logs.text();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "one warning per collection: {logs}");
    for w in &warnings {
        assert!(w.contains("several series"), "{w}");
        assert!(w.contains(query), "names the query: {w}");
        assert!(w.contains("series=3"), "names the series count: {w}");
        assert!(
            w.contains("metric=queue_depth") && w.contains("app=\"my-app\""),
            "{w}"
        );
    }
    assert!(!logs.contains(CANARY), "token leaked in logs:\n{logs}");
    assert_eq!(
        counters.get(&format!(
            "{MULTIPLE_SERIES_TOTAL}{{app=my-app,metric=queue_depth}}"
        )),
        Some(2)
    );
    assert_eq!(
        counters.get(&format!(
            "{MULTIPLE_SERIES_TOTAL}{{app=other,metric=queue_depth}}"
        )),
        None
    );
}

//! The example collector against a wiremock JSON endpoint, used through `Box<dyn Collector>`.

use std::time::Duration;

use custom_collector::JsonQueueCollector;
use fas_collect::{CollectError, Collector};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn reads_the_queue_length_of_each_app() {
    let server = MockServer::start().await;
    for (app, pending) in [("app-a", 17), ("app-b", 3)] {
        Mock::given(method("GET"))
            .and(path(format!("/queues/{app}")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"stats": {"pending": pending, "done": 99}})),
            )
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/queues/broken"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"stats": {"pending": "many"}})),
        )
        .mount(&server)
        .await;

    let collectors: Vec<Box<dyn Collector>> = vec![Box::new(JsonQueueCollector::new(
        "pending_jobs",
        &format!("{}/queues/${{APP_NAME}}", server.uri()),
        "/stats/pending",
        Duration::from_secs(2),
    ))];
    let c = &collectors[0];
    assert_eq!(c.metric_name(), "pending_jobs");
    assert_eq!(c.collect("app-a").await.unwrap(), 17.0);
    assert_eq!(c.collect("app-b").await.unwrap(), 3.0);

    let err = c.collect("broken").await.unwrap_err();
    assert!(matches!(err, CollectError::Custom { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("pending_jobs")
            && text.contains("/queues/broken")
            && text.contains("not a number"),
        "{text}"
    );

    // unknown app: wiremock's 404
    let err = c.collect("nope").await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!(1))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let c = JsonQueueCollector::new("q", &server.uri(), "", Duration::from_millis(200));
    assert!(matches!(
        c.collect("a").await,
        Err(CollectError::Timeout { .. })
    ));
}

//! Against the real Temporal dev server (gRPC frontend, h2c), with workflows started through its
//! CLI. They have no worker, so they stay Running.

use std::time::Duration;

use fas_collect::{CollectError, Collector, TemporalCollector, TemporalConfig};
use fas_testkit::TemporalServer;

fn collector(address: &str, namespace: &str, query: Option<&str>) -> TemporalCollector {
    let mut cfg = TemporalConfig::new("running_workflows", address);
    cfg.namespace = namespace.to_owned();
    cfg.query = query.map(str::to_owned);
    cfg.timeout = Duration::from_secs(5);
    TemporalCollector::new(cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_running_workflows_on_the_dev_server() {
    let server = TemporalServer::start().await;
    let address = server.grpc_address();
    let count = |namespace: &str, query: Option<&str>, app: &str| {
        let c = collector(&address, namespace, query);
        let app = app.to_owned();
        async move { c.collect(&app).await }
    };

    // nothing started yet
    assert_eq!(count("default", None, "app").await.unwrap(), 0.0);

    for i in 1..=3 {
        server
            .start_workflow("default", "T", &format!("wf-{i}"))
            .await;
    }
    server
        .start_workflow_on_queue("default", "billing-worker", "billing", "wf-4")
        .await;

    // The dev server's visibility store shows a started workflow a moment later: wait (bounded)
    // until all four are visible, then every count below reads a settled store.
    let mut seen = 0.0;
    for _ in 0..100 {
        seen = count("default", None, "app").await.unwrap();
        if seen == 4.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 4.0, "four running workflows within 10 s");
    assert_eq!(
        count("default", Some(r#"WorkflowType="T""#), "app")
            .await
            .unwrap(),
        3.0
    );
    // ${APP_NAME} expansion inside the query, ANDed with the running status
    assert_eq!(
        count(
            "default",
            Some(r#"WorkflowType="${APP_NAME}-worker""#),
            "billing"
        )
        .await
        .unwrap(),
        1.0
    );
    assert_eq!(
        count("default", Some(r#"TaskQueue="$APP_NAME""#), "billing")
            .await
            .unwrap(),
        1.0
    );
    assert_eq!(
        count(
            "default",
            Some(r#"WorkflowType="T" OR TaskQueue="billing""#),
            "x"
        )
        .await
        .unwrap(),
        4.0
    );
    // zero matches is 0 (the count field is absent from the response)
    assert_eq!(
        count("default", Some(r#"WorkflowType="Nope""#), "app")
            .await
            .unwrap(),
        0.0
    );
    // an explicit http:// prefix is the same plain h2c connection
    assert_eq!(count_with(&format!("http://{address}")).await, 4.0);

    // unknown namespace: NOT_FOUND
    let err = count("no-such-namespace", None, "app").await.unwrap_err();
    match &err {
        CollectError::Grpc {
            code: 5,
            message,
            at,
        } => {
            assert!(message.contains("no-such-namespace"), "{message}");
            assert_eq!(
                (at.metric.as_str(), at.address.as_str()),
                ("running_workflows", address.as_str())
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("NOT_FOUND"), "{err}");
    // an invalid search attribute: INVALID_ARGUMENT with the server's text
    let err = count("default", Some(r#"Bogus="x""#), "app")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CollectError::Grpc { code: 3, message, .. } if message.contains("Bogus")),
        "{err:?}"
    );
}

async fn count_with(address: &str) -> f64 {
    collector(address, "default", None)
        .collect("app")
        .await
        .unwrap()
}

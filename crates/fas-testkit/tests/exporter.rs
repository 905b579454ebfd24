//! The exporter serves what was last set, and only at /metrics.

use fas_testkit::{Exporter, free_port};

async fn get(url: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(
        url.trim_start_matches("http://").split('/').next().unwrap(),
    )
    .await
    .unwrap();
    let path = format!(
        "/{}",
        url.trim_start_matches("http://")
            .split_once('/')
            .map_or("", |(_, p)| p)
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn serves_the_current_text_at_metrics() {
    let exporter = Exporter::start().await;
    let base = format!("http://{}", exporter.addr());
    assert_eq!(get(&format!("{base}/metrics")).await, (200, String::new()));
    exporter.set("queue_depth 42\n");
    assert_eq!(
        get(&format!("{base}/metrics")).await,
        (200, "queue_depth 42\n".into())
    );
    exporter.set("queue_depth 7\n");
    assert_eq!(
        get(&format!("{base}/metrics")).await,
        (200, "queue_depth 7\n".into())
    );
    assert_eq!(get(&format!("{base}/other")).await.0, 404);

    let addr = exporter.addr();
    drop(exporter);
    tokio::task::yield_now().await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "stopped on drop"
    );
}

#[test]
fn free_port_is_bindable() {
    let port = free_port();
    assert_ne!(port, 0);
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

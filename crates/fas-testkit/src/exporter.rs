//! A tiny Prometheus exporter whose `/metrics` text tests can change at run time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// An HTTP/1 server on `127.0.0.1:<random port>` serving the current text at `/metrics`
/// (404 elsewhere). Dropping it stops the server and closes its open connections.
#[derive(Debug)]
pub struct Exporter {
    addr: SocketAddr,
    text: Arc<Mutex<String>>,
    task: JoinHandle<()>,
}

impl Exporter {
    /// Starts the server with an empty body. Must be called inside a tokio runtime.
    pub async fn start() -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the exporter on 127.0.0.1:0");
        let addr = listener.local_addr().expect("exporter local address");
        let text = Arc::new(Mutex::new(String::new()));
        let shared = Arc::clone(&text);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let shared = Arc::clone(&shared);
                        async move {
                            let response = if request.uri().path() == "/metrics" {
                                let body = shared.lock().map(|t| t.clone()).unwrap_or_default();
                                Response::builder()
                                    .header("content-type", "text/plain; version=0.0.4")
                                    .body(Full::new(Bytes::from(body)))
                            } else {
                                Response::builder()
                                    .status(404)
                                    .body(Full::new(Bytes::from_static(b"not found")))
                            };
                            Ok::<_, Infallible>(response.unwrap_or_default())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Exporter { addr, text, task }
    }

    /// The address to scrape.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the exposition text (Prometheus text format, e.g. `"queue_depth{queue=\"a\"} 42\n"`).
    pub fn set(&self, text: &str) {
        if let Ok(mut current) = self.text.lock() {
            *current = text.to_owned();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

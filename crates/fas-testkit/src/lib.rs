//! Test helpers that run real servers for fly-autoscaler's integration tests (dev-only).
//!
//! - [`PromServer`]: Debian's `prometheus` scraping given targets every second.
//! - [`Exporter`]: a tiny HTTP server serving Prometheus text at `/metrics`, changeable at run time.
//! - [`TemporalServer`]: the Temporal CLI's dev server (in-memory), with [`TemporalServer::start_workflow`].
//! - [`PgServer`]: a throwaway PostgreSQL cluster (`initdb` + `pg_ctl`, `fsync=off`), stoppable and
//!   restartable for outage tests.
//! - [`Proxy`]: a TCP proxy that can be cut silently (a network partition), close its server
//!   sides (a server that noticed the dead peer) and heal.
//! - [`free_port`]: a currently free loopback port.
//!
//! Binaries are found through `FAS_TEST_PROMETHEUS_BIN` / `FAS_TEST_TEMPORAL_BIN` (exported by
//! `scripts/test`), else `prometheus` on `PATH` and `<workspace>/.tools/bin/temporal`. A missing
//! binary panics with a message saying to run `scripts/test`: tests never skip silently.
//! Every server is killed and reaped when its handle is dropped (the Temporal dev server is a
//! single process; the CLI invocations of `start_workflow` are awaited).
//!
//! Waiting is always bounded: readiness and data polls panic after a deadline, with the server's
//! log tail in the message.
// Library crates document every public item; the workspace lint only warns (binaries).
#![deny(missing_docs)]

mod exporter;
mod hostile;
mod postgres;
mod process;
mod prom;
mod proxy;
mod temporal;

pub use exporter::Exporter;
pub use hostile::{Hostile, hostile};
pub use postgres::PgServer;
pub use prom::PromServer;
pub use proxy::Proxy;
pub use temporal::TemporalServer;

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
///
/// Another process may take it before it is used; the servers here start quickly enough that
/// this does not happen in practice on a test machine.
pub fn free_port() -> u16 {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

/// `GET url` on loopback with a 2 s limit: the status and body, or `None` when it failed.
pub(crate) async fn http_get(url: &str) -> Option<(u16, String)> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let uri: hyper::Uri = url.parse().ok()?;
    let call = async {
        let response = client.get(uri).await.ok()?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), call)
        .await
        .ok()
        .flatten()
}

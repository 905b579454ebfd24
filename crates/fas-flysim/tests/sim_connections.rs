//! Connections: the simulator counts what it accepts and serves TLS with ALPN; the typed client
//! multiplexes its calls over HTTP/2 there and reuses its HTTP/1.1 connections across rounds.

use fas_flyapi::{Client, ClientConfig, ListMachinesOptions, StopRequest};
use fas_flysim::{ConnectionStats, MachineSpec, SimConfig, Simulator};
use futures_util::future::join_all;

fn client(sim: &Simulator, http2_connections: usize) -> Client {
    let mut cfg = ClientConfig::new(sim.token());
    cfg.machines_base_url = sim.base_url();
    cfg.graphql_base_url = sim.base_url();
    cfg.http2_connections = http2_connections;
    if let Some(der) = sim.tls_certificate_der() {
        cfg.tls_root_certificates_der = vec![der.to_vec()];
    }
    Client::new(cfg).unwrap()
}

async fn with_machines(sim: Simulator, n: usize) -> (Simulator, Vec<String>) {
    sim.add_app("acme", "web");
    let ids = (0..n)
        .map(|_| sim.add_machine("web", MachineSpec::new().state("stopped")))
        .collect();
    (sim, ids)
}

/// Lists, then starts every machine at once, like one tick of the executor.
async fn list_then_start_all(cl: &Client, ids: &[String]) {
    cl.list_machines("web", &ListMachinesOptions::default())
        .await
        .unwrap();
    let starts = ids.iter().map(|id| cl.start_machine("web", id, None));
    for r in join_all(starts).await {
        r.unwrap();
    }
}

/// Over TLS the client offers `h2` and `http/1.1`: its first call (the tick's list) learns that
/// the server speaks HTTP/2, and the burst that follows goes over `http2_connections`
/// connections, one each, whatever the calls in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_client_multiplexes_its_calls_on_http2_connections() {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = 20;
    let (sim, ids) = with_machines(Simulator::start_tls(cfg).await.unwrap(), 300).await;
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));

    // One HTTP/2 connection for the burst: the 300 starts share it (beyond the 200 streams of
    // hyper's server default they queue on it rather than open another).
    let cl = client(&sim, 1);
    list_then_start_all(&cl, &ids).await;
    assert_eq!(
        sim.connections(),
        ConnectionStats {
            accepted: 2,
            tls_h2: 2,
            tls_http1: 0
        },
        "the list's connection and one for the burst"
    );
    assert_eq!(sim.count_in_state("web", "started"), 300);

    // Four: one connection each, then the next round reuses them all.
    let cl = client(&sim, 4);
    cl.list_machines("web", &ListMachinesOptions::default())
        .await
        .unwrap();
    let stop = StopRequest::default();
    let stops = ids.iter().map(|id| cl.stop_machine("web", id, &stop, None));
    for r in join_all(stops).await {
        r.unwrap();
    }
    let c = sim.connections();
    assert_eq!((c.accepted, c.tls_h2), (2 + 5, 2 + 5), "{c:?}");
    list_then_start_all(&cl, &ids).await;
    assert_eq!(sim.connections(), c, "no new connection");
    assert_eq!(sim.rate_limited_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_plain_http_connections_are_kept_for_the_next_round() {
    let mut cfg = SimConfig::instant();
    cfg.faults.latency_ms = 20;
    let (sim, ids) = with_machines(Simulator::start(cfg).await.unwrap(), 100).await;
    assert!(sim.tls_certificate_der().is_none());
    let cl = client(&sim, 1);

    list_then_start_all(&cl, &ids).await;
    let first = sim.connections();
    assert!(
        (1..=101).contains(&first.accepted),
        "at most one connection per call: {first:?}"
    );
    assert_eq!((first.tls_h2, first.tls_http1), (0, 0));

    // The next round (a list, then 100 stops at once) finds the connections in the pool. A few
    // may have been lost in the first burst: hyper-util's pool can hand a new connection to a
    // request that has just stopped waiting for it, and then drops it.
    cl.list_machines("web", &ListMachinesOptions::default())
        .await
        .unwrap();
    let stop = StopRequest::default();
    let stops = ids.iter().map(|id| cl.stop_machine("web", id, &stop, None));
    for r in join_all(stops).await {
        r.unwrap();
    }
    let second = sim.connections();
    assert!(
        second.accepted - first.accepted <= 5,
        "reused: {first:?} then {second:?}"
    );
    assert_eq!(sim.rate_limited_count(), 0);
}

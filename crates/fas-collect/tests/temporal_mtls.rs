//! Real mutual TLS against a Temporal-like gRPC server: a CA, a server certificate and client
//! certificates are made at test time (rcgen); the server (tokio-rustls + hyper HTTP/2) requires a
//! client certificate signed by the CA and answers `CountWorkflowExecutions`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fas_collect::{CollectError, Collector, TemporalCollector, TemporalConfig};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const PATH: &str = "/temporal.api.workflowservice.v1.WorkflowService/CountWorkflowExecutions";
const COUNT: u8 = 42;

/// A certificate authority: its certificate and key.
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

/// A leaf certificate (PEM) and its key (PEM).
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca { cert, key }
}

fn leaf(ca: &Ca, name: &str, server: bool) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::ExplicitNoCa; // basicConstraints CA:FALSE
    params.distinguished_name.push(DnType::CommonName, name);
    if server {
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress("127.0.0.1".parse().unwrap()),
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    } else {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    }
}

/// What the server saw: one entry per request, and the handshakes it refused.
#[derive(Default)]
struct Seen {
    requests: Vec<SeenRequest>,
    handshake_failures: Vec<String>,
}

struct SeenRequest {
    path: String,
    namespace: String,
    query: String,
    /// The client certificate presented in the handshake (the server requires one).
    peer_cert: Option<CertificateDer<'static>>,
}

/// Reads the length-delimited string fields 1 (namespace) and 2 (query) of a
/// `CountWorkflowExecutionsRequest` inside one gRPC frame.
fn decode_request(body: &[u8]) -> (String, String) {
    assert_eq!(body[0], 0, "uncompressed grpc frame");
    let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    let mut msg = &body[5..5 + len];
    let varint = |msg: &mut &[u8]| {
        let mut value = 0usize;
        let mut shift = 0;
        loop {
            let b = msg[0];
            *msg = &msg[1..];
            value |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    };
    let (mut namespace, mut query) = (String::new(), String::new());
    while !msg.is_empty() {
        let tag = varint(&mut msg);
        assert_eq!(tag & 7, 2, "only string fields expected");
        let n = varint(&mut msg);
        let text = String::from_utf8(msg[..n].to_vec()).unwrap();
        msg = &msg[n..];
        match tag >> 3 {
            1 => namespace = text,
            2 => query = text,
            other => panic!("unexpected field {other}"),
        }
    }
    (namespace, query)
}

/// Starts the server on 127.0.0.1:0; returns its port and what it records.
async fn serve(ca: &Ca, server: &Leaf) -> (u16, Arc<Mutex<Seen>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain = vec![CertificateDer::from_pem_slice(server.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = record.clone();
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        seen.lock().unwrap().handshake_failures.push(e.to_string());
                        return;
                    }
                };
                let peer_cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.clone().into_owned());
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    let peer_cert = peer_cert.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let (namespace, query) = decode_request(&body);
                        seen.lock().unwrap().requests.push(SeenRequest {
                            path,
                            namespace,
                            query,
                            peer_cert,
                        });
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        // CountWorkflowExecutionsResponse { count: COUNT } in one grpc frame
                        let body = Full::new(Bytes::from(vec![0, 0, 0, 0, 2, 0x08, COUNT]))
                            .with_trailers(async move { Some(Ok(trailers)) });
                        let mut response = http::Response::new(body);
                        response.headers_mut().insert(
                            "content-type",
                            http::HeaderValue::from_static("application/grpc"),
                        );
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, seen)
}

fn config(port: u16, client: Option<&Leaf>, ca_pem: Option<&str>) -> TemporalConfig {
    let mut cfg = TemporalConfig::new("running_workflows", &format!("localhost:{port}"));
    cfg.namespace = "prod".into();
    cfg.query = Some(r#"TaskQueue="${APP_NAME}""#.into());
    cfg.cert_pem = client.map(|c| c.cert_pem.clone());
    cfg.key_pem = client.map(|c| c.key_pem.clone().into());
    cfg.ca_pem = ca_pem.map(str::to_owned);
    cfg.timeout = Duration::from_secs(5);
    cfg
}

/// The error, its `Debug`, and every source's `Display` and `Debug`.
fn error_text(err: &CollectError) -> String {
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!(" | {s} {s:?}"));
        source = s.source();
    }
    text
}

/// The base64 body of a PEM key (what would leak if the key were quoted).
fn key_body(key_pem: &str) -> String {
    key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

fn assert_no_key(text: &str, keys: &[&Leaf]) {
    for key in keys {
        let body = key_body(&key.key_pem);
        for line in key.key_pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!text.contains(line), "key leaked: {text}");
        }
        assert!(!text.contains(&body), "key leaked: {text}");
    }
}

/// Waits (bounded) until the server has recorded a refused handshake.
async fn handshake_failures(seen: &Mutex<Seen>) -> Vec<String> {
    for _ in 0..50 {
        let failures = seen.lock().unwrap().handshake_failures.clone();
        if !failures.is_empty() {
            return failures;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Vec::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_with_a_private_ca_counts_and_the_server_sees_the_client_certificate() {
    let ca = ca("fas test CA");
    let server = leaf(&ca, "temporal.test", true);
    let client = leaf(&ca, "fas-test-client", false);
    let (port, seen) = serve(&ca, &server).await;

    let cfg = config(port, Some(&client), Some(&ca.cert.pem()));
    let collector = TemporalCollector::new(cfg).unwrap();
    assert!(format!("{collector:?}").contains("tls: true"));
    assert_eq!(collector.collect("my-app").await.unwrap(), f64::from(COUNT));

    {
        let seen = seen.lock().unwrap();
        assert!(
            seen.handshake_failures.is_empty(),
            "{:?}",
            seen.handshake_failures
        );
        assert_eq!(seen.requests.len(), 1);
        let req = &seen.requests[0];
        assert_eq!(req.path, PATH);
        assert_eq!(req.namespace, "prod");
        assert_eq!(
            req.query,
            r#"ExecutionStatus="Running" AND (TaskQueue="my-app")"#
        );
        assert_eq!(
            req.peer_cert.as_ref(),
            Some(&client.der),
            "the server saw the client's certificate"
        );
    }

    // 127.0.0.1 is in the server certificate's SANs too (https:// form of the address)
    let mut cfg = config(port, Some(&client), Some(&ca.cert.pem()));
    cfg.address = format!("https://127.0.0.1:{port}");
    let collector = TemporalCollector::new(cfg).unwrap();
    assert_eq!(collector.collect("my-app").await.unwrap(), f64::from(COUNT));
    assert_eq!(seen.lock().unwrap().requests.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_a_client_without_a_certificate() {
    let ca = ca("fas test CA");
    let server = leaf(&ca, "temporal.test", true);
    let (port, seen) = serve(&ca, &server).await;

    // ca-data alone: TLS that verifies the server, no client certificate
    let collector = TemporalCollector::new(config(port, None, Some(&ca.cert.pem()))).unwrap();
    assert!(format!("{collector:?}").contains("tls: true"));
    let err = collector.collect("my-app").await.unwrap_err();
    assert!(matches!(err, CollectError::Transport { .. }), "{err:?}");
    let text = err.to_string();
    let address = format!("localhost:{port}");
    assert!(
        text.contains("running_workflows") && text.contains(&address),
        "{text}"
    );
    let failures = handshake_failures(&seen).await;
    assert!(!failures.is_empty(), "the server refused the handshake");
    assert!(
        failures
            .iter()
            .any(|f| f.to_lowercase().contains("certificate")),
        "{failures:?}"
    );
    assert!(seen.lock().unwrap().requests.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_another_ca_is_refused() {
    let ca = ca("fas test CA");
    let server = leaf(&ca, "temporal.test", true);
    let other_ca = ca_other();
    let stranger = leaf(&other_ca, "stranger", false);
    let (port, seen) = serve(&ca, &server).await;

    let cfg = config(port, Some(&stranger), Some(&ca.cert.pem()));
    let err = TemporalCollector::new(cfg)
        .unwrap()
        .collect("my-app")
        .await
        .unwrap_err();
    assert!(matches!(err, CollectError::Transport { .. }), "{err:?}");
    assert_no_key(&error_text(&err), &[&stranger]);
    let failures = handshake_failures(&seen).await;
    assert!(
        failures.iter().any(|f| f.contains("UnknownIssuer")),
        "the server rejected the unknown issuer: {failures:?}"
    );
    assert!(seen.lock().unwrap().requests.is_empty());
}

fn ca_other() -> Ca {
    ca("some other CA")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ca_data_the_private_server_is_not_trusted() {
    let ca = ca("fas test CA");
    let server = leaf(&ca, "temporal.test", true);
    let client = leaf(&ca, "fas-test-client", false);
    let (port, seen) = serve(&ca, &server).await;

    // webpki roots only: the client refuses the server's private CA
    let err = TemporalCollector::new(config(port, Some(&client), None))
        .unwrap()
        .collect("my-app")
        .await
        .unwrap_err();
    assert!(matches!(err, CollectError::Transport { .. }), "{err:?}");
    let text = error_text(&err);
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains(&format!("localhost:{port}")), "{text}");
    assert_no_key(&text, &[&client]);

    // a bundle of another CA does not vouch for it either
    let other = ca_other();
    let err = TemporalCollector::new(config(port, Some(&client), Some(&other.cert.pem())))
        .unwrap()
        .collect("my-app")
        .await
        .unwrap_err();
    assert!(error_text(&err).contains("UnknownIssuer"), "{err:?}");
    assert!(seen.lock().unwrap().requests.is_empty());
}

#[test]
fn bad_ca_data_is_a_config_error_naming_ca_data_without_leaking_the_key() {
    let ca = ca("fas test CA");
    let client = leaf(&ca, "fas-test-client", false);
    let bad_pem = "-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n-----END CERTIFICATE-----\n";
    let cases: [(&str, &str); 5] = [
        ("", "empty"),
        ("  \n", "empty"),
        ("just some text", "no PEM certificate"),
        (bad_pem, "not a PEM"),
        // a key pasted where the CA belongs: no certificate, and the key is not quoted
        (&client.key_pem, "no PEM certificate"),
    ];
    for (ca_pem, want) in cases {
        let err = TemporalCollector::new(config(7233, Some(&client), Some(ca_pem))).unwrap_err();
        match &err {
            CollectError::Config { key, metric, .. } => {
                assert_eq!((*key, metric.as_str()), ("ca-data", "running_workflows"));
            }
            other => panic!("{ca_pem:?}: {other:?}"),
        }
        let text = error_text(&err);
        assert!(text.contains(want), "{ca_pem:?}: {text}");
        assert!(text.contains("ca-data"), "{text}");
        assert_no_key(&text, &[&client]);
    }
    // TLS material over an explicit http:// address is a contradiction
    let mut cfg = config(7233, None, Some(&ca.cert.pem()));
    cfg.address = "http://localhost:7233".into();
    assert!(matches!(
        TemporalCollector::new(cfg),
        Err(CollectError::Config { key: "address", .. })
    ));
    // a bundle of two CAs is accepted
    let two = format!("{}{}", ca.cert.pem(), ca_other().cert.pem());
    assert!(TemporalCollector::new(config(7233, None, Some(&two))).is_ok());
}

//! Temporal collector behaviour that needs no Temporal server: configuration (mTLS material,
//! addresses), timeouts, and a server that does not speak gRPC.

use std::time::Duration;

use fas_collect::{CollectError, Collector, TemporalCollector, TemporalConfig};

/// A throwaway self-signed test certificate and its key (generated for these tests only).
const CERT: &str = "\
-----BEGIN CERTIFICATE-----
MIIBizCCATGgAwIBAgIUelqGKblWQM2/UJx75z1aKT/L30YwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPZmFzLXRlc3QtY2xpZW50MCAXDTI2MTEyOTEyNTE1NFoYDzIx
MjYxMTA1MTI1MTU0WjAaMRgwFgYDVQQDDA9mYXMtdGVzdC1jbGllbnQwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAASvXt1egWCOCiWlpCKKWpVdPuFSopqf04/zR4iM
HgGHGFqkf5KK6HZSlsMv/sZLBtApqqixzMVoNKW6uOL/Meq3o1MwUTAdBgNVHQ4E
FgQUrQ3ZnebJmB/hXr7MlxjDMmb2QrEwHwYDVR0jBBgwFoAUrQ3ZnebJmB/hXr7M
lxjDMmb2QrEwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA7A6C
S1jLxdAubKFTEsJXMZ6l9xOd2KBDCXEyWb0u9ecCIF2cHVLI4XYJbwTJGeU/mR6T
3fKrOqHJ8Hq9byVAnl/C
-----END CERTIFICATE-----
";
const KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqNGMT/Haj706r+PA
UaXcdKIF7QMjyXAAJ96b2gHC0NqhRANCAASvXt1egWCOCiWlpCKKWpVdPuFSopqf
04/zR4iMHgGHGFqkf5KK6HZSlsMv/sZLBtApqqixzMVoNKW6uOL/Meq3
-----END PRIVATE KEY-----
";

fn with_tls(cert: Option<&str>, key: Option<&str>) -> TemporalConfig {
    let mut cfg = TemporalConfig::new("running_workflows", "ns.example.tmprl.cloud:7233");
    cfg.cert_pem = cert.map(str::to_owned);
    cfg.key_pem = key.map(|k| k.into());
    cfg
}

#[test]
fn mtls_material_is_parsed_and_errors_name_the_key_without_leaking_it() {
    let c = TemporalCollector::new(with_tls(Some(CERT), Some(KEY))).unwrap();
    assert!(format!("{c:?}").contains("tls: true"), "{c:?}");
    let plain = TemporalCollector::new(with_tls(None, None)).unwrap();
    assert!(format!("{plain:?}").contains("tls: false"), "{plain:?}");

    let canary_key = "-----BEGIN PRIVATE KEY-----\ncanary-SECRET-key\n-----END PRIVATE KEY-----\n";
    let cases = [
        (with_tls(Some(CERT), None), "key-data"),
        (with_tls(None, Some(KEY)), "cert-data"),
        (with_tls(Some("not pem"), Some(KEY)), "cert-data"),
        (with_tls(Some(CERT), Some(canary_key)), "key-data"),
        (with_tls(Some(CERT), Some("canary-SECRET-key")), "key-data"),
    ];
    for (cfg, want_key) in cases {
        let debug_cfg = format!("{cfg:?}");
        assert!(!debug_cfg.contains("canary-SECRET"), "{debug_cfg}");
        let err = TemporalCollector::new(cfg).unwrap_err();
        match &err {
            CollectError::Config { key, metric, .. } => {
                assert_eq!(
                    (*key, metric.as_str()),
                    (want_key, "running_workflows"),
                    "{err}"
                );
            }
            other => panic!("{other:?}"),
        }
        let mut chain = format!("{err} {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push_str(&format!(" {s} {s:?}"));
            source = s.source();
        }
        assert!(!chain.contains("canary-SECRET"), "key leaked: {chain}");
    }
    // mTLS over an explicit http:// address is a contradiction
    let mut cfg = with_tls(Some(CERT), Some(KEY));
    cfg.address = "http://localhost:7233".into();
    assert!(matches!(
        TemporalCollector::new(cfg),
        Err(CollectError::Config { key: "address", .. })
    ));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // accepts TCP connections and never answers
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let _accept = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mut cfg = TemporalConfig::new("running_workflows", &address);
    cfg.timeout = Duration::from_millis(300);
    let err = TemporalCollector::new(cfg)
        .unwrap()
        .collect("app")
        .await
        .unwrap_err();
    assert!(matches!(err, CollectError::Timeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("running_workflows") && text.contains(&address),
        "{text}"
    );
}

#[tokio::test]
async fn http2_responses_map_to_typed_results() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    const PATH: &str = "/temporal.api.workflowservice.v1.WorkflowService/CountWorkflowExecutions";
    // wiremock answers h2c prior knowledge, so it can stand in for a gRPC server (without trailers).
    let server = MockServer::start().await;
    let address = server.address().to_string();
    let collector = |namespace: &str| {
        let mut cfg = TemporalConfig::new("running_workflows", &address);
        cfg.namespace = namespace.into();
        TemporalCollector::new(cfg).unwrap()
    };
    // success: count 5 plus an unknown field, status in the headers
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(header("content-type", "application/grpc"))
        .and(header("temporal-namespace", "ok"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("grpc-status", "0")
                .set_body_raw(vec![0, 0, 0, 0, 4, 0x08, 5, 0x18, 1], "application/grpc"),
        )
        .mount(&server)
        .await;
    // trailers-only failure
    Mock::given(method("POST"))
        .and(header("temporal-namespace", "denied"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("grpc-status", "7")
                .insert_header("grpc-message", "Request%20unauthorized."),
        )
        .mount(&server)
        .await;
    // 200 without any grpc-status: not a gRPC server
    Mock::given(method("POST"))
        .and(header("temporal-namespace", "nostatus"))
        .respond_with(ResponseTemplate::new(200).set_body_string("hello"))
        .mount(&server)
        .await;

    assert_eq!(collector("ok").collect("app").await.unwrap(), 5.0);
    let received = server.received_requests().await.unwrap();
    let body = &received[0].body;
    assert_eq!(
        &body[..5],
        &[0, 0, 0, 0, (body.len() - 5) as u8],
        "grpc frame prefix"
    );
    assert!(
        body.windows(25)
            .any(|w| w == br#"ExecutionStatus="Running""#),
        "query sent"
    );

    let err = collector("denied").collect("app").await.unwrap_err();
    assert!(
        matches!(&err, CollectError::Grpc { code: 7, message, .. } if message == "Request unauthorized."),
        "{err:?}"
    );
    assert!(err.to_string().contains("PERMISSION_DENIED"), "{err}");
    let err = collector("nostatus").collect("app").await.unwrap_err();
    assert!(
        matches!(&err, CollectError::Decode { body, .. } if body == "hello"),
        "{err:?}"
    );
    // unmatched: wiremock's 404
    let err = collector("other").collect("app").await.unwrap_err();
    assert!(
        matches!(err, CollectError::Http { status: 404, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&address), "{err}");
}

#[tokio::test]
async fn an_http1_only_server_is_a_transport_error() {
    // answers every connection with an HTTP/1 response: the HTTP/2 preface fails
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let _serve = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let err = TemporalCollector::new(TemporalConfig::new("running_workflows", &address))
        .unwrap()
        .collect("app")
        .await
        .unwrap_err();
    assert!(matches!(err, CollectError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains(&address), "{err}");
}

/// What a TLS server saw of the client's hello, and how the handshake ended on the client side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_config_speaks_tls_with_alpn_h2_and_verifies_the_server() {
    use std::sync::Arc;
    use std::sync::mpsc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    // A std thread running rustls' server side: records SNI and ALPN, then completes the handshake
    // with a self-signed certificate that webpki roots must reject.
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut acceptor = rustls::server::Acceptor::default();
        let accepted = loop {
            acceptor.read_tls(&mut stream).unwrap();
            if let Some(accepted) = acceptor.accept().map_err(|(e, _)| e).unwrap() {
                break accepted;
            }
        };
        let hello = accepted.client_hello();
        let sni = hello.server_name().map(str::to_owned);
        let alpn: Vec<Vec<u8>> = hello
            .alpn()
            .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        tx.send((sni, alpn)).unwrap();
        let chain = vec![CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let Ok(mut conn) = accepted.into_connection(Arc::new(config)) else {
            return;
        };
        while conn.is_handshaking() {
            if conn.complete_io(&mut stream).is_err() {
                break;
            }
        }
    });

    let mut cfg = with_tls(Some(CERT), Some(KEY));
    cfg.address = format!("localhost:{port}");
    cfg.timeout = Duration::from_secs(5);
    let err = TemporalCollector::new(cfg)
        .unwrap()
        .collect("app")
        .await
        .unwrap_err();

    let (sni, alpn) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the client sent a TLS ClientHello");
    assert_eq!(sni.as_deref(), Some("localhost"));
    assert_eq!(alpn, vec![b"h2".to_vec()], "ALPN offers h2 only");
    // The self-signed server is not trusted by the webpki roots.
    assert!(matches!(err, CollectError::Transport { .. }), "{err:?}");
    let mut chain = String::new();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!("{s}; "));
        source = s.source();
    }
    assert!(
        chain.contains("certificate"),
        "rejected for its certificate: {chain}"
    );
}

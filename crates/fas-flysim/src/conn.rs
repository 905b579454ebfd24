//! Connections: counting them, and the optional TLS listener that offers HTTP/2 through ALPN.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// Connections the simulator accepted, for tests and benches that check how a client uses them
/// (see [`crate::Simulator::connections`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// TCP connections accepted since the start (plain or TLS, whatever happened next).
    pub accepted: u64,
    /// TLS connections whose client chose HTTP/2 through ALPN (`h2`).
    pub tls_h2: u64,
    /// TLS connections that went on with HTTP/1.1 (ALPN `http/1.1`, or no ALPN).
    pub tls_http1: u64,
}

/// The counters behind [`ConnectionStats`], shared by the accept loop and the handle.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    tls_h2: AtomicU64,
    tls_http1: AtomicU64,
}

impl Counters {
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn tls_handshake(&self, alpn: Option<&[u8]>) {
        let counter = if alpn == Some(b"h2".as_slice()) {
            &self.tls_h2
        } else {
            &self.tls_http1
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ConnectionStats {
        ConnectionStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            tls_h2: self.tls_h2.load(Ordering::Relaxed),
            tls_http1: self.tls_http1.load(Ordering::Relaxed),
        }
    }
}

/// A TLS set-up: a self-signed certificate for `localhost` and `127.0.0.1` made at start, and an
/// acceptor that offers `h2` and `http/1.1` through ALPN (as `api.machines.dev` may).
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) certificate_der: Vec<u8>,
}

impl Tls {
    pub(crate) fn new() -> std::io::Result<Tls> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .map_err(std::io::Error::other)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate_der: cert.to_vec(),
        })
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}
